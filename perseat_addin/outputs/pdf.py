"""PDF invoices through LibreOffice headless (the CLI's route; Excel exports its own)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from perseat_addin.engine.invoicing import Run
from perseat_addin.errors import PerseatError
from perseat_addin.outputs.layout import InvoiceDocuments
from perseat_addin.outputs.logo import Logo
from perseat_addin.outputs.xlsx import single_invoice_xlsx


def soffice() -> str | None:
    """Path of LibreOffice's ``soffice``, if installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_to_pdf(files: list[Path], out_dir: Path, timeout: float = 600) -> None:
    """Convert spreadsheets to PDF in one LibreOffice run with a private profile."""
    exe = soffice()
    if exe is None:
        raise PerseatError(
            "--pdf needs LibreOffice, which is not installed here. Install it "
            "(Debian/Ubuntu: apt-get install libreoffice-calc-nogui; macOS/Windows: libreoffice.org) "
            "or export PDFs from Excel with the Generate invoices button."
        )
    with tempfile.TemporaryDirectory(prefix="perseat-lo-") as profile:
        cmd = [exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
               "--convert-to", "pdf", "--outdir", str(out_dir), *map(str, files)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    missing = [f for f in files if not (out_dir / (f.stem + ".pdf")).exists()]
    if proc.returncode != 0 or missing:
        raise PerseatError(f"LibreOffice could not make PDFs for {len(missing)} file(s): "
                           f"{proc.stderr.strip()[:500]}")


def invoice_pdfs(run: Run, out_dir: Path, logo: Logo | None = None) -> list[str]:
    """One PDF per invoice in ``out_dir`` (with its user list page when it carries one); returns their names."""
    docs = InvoiceDocuments(run, logo)
    with tempfile.TemporaryDirectory(prefix="perseat-pdf-") as tmp:
        sources = []
        for inv in run.invoices:
            src = Path(tmp) / f"{inv.file_stem}.xlsx"
            single_invoice_xlsx(docs, inv, src)
            sources.append(src)
        for i in range(0, len(sources), 200):
            convert_to_pdf(sources[i:i + 200], out_dir)
    return [f"{inv.file_stem}.pdf" for inv in run.invoices]
