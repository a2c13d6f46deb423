"""Publishing a run: every output written beside its final name, then moved into place together (nothing
half-written), the output folder beside the workbook, and how the Invoices table names a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from perseat_addin.engine.invoicing import Run
from perseat_addin.errors import PerseatError, os_error_text
from perseat_addin.model import Period
from perseat_addin.outputs.accounting import (
    cents_text,
    has_credits,
    quickbooks_credit_memos_csv,
    quickbooks_csv,
    users_csv,
    xero_credit_notes_csv,
    xero_csv,
)
from perseat_addin.outputs.logo import read_logo
from perseat_addin.outputs.pdf import invoice_pdfs
from perseat_addin.outputs.xlsx import invoices_xlsx


def summary(run: Run, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Machine-readable summary of a run; amounts are decimal strings."""

    money = cents_text  # f"{cents_to_decimal(c):.2f}", without making a Decimal

    invs = run.invoices
    return {
        "workbook": run.book.path,
        "period": str(run.period),
        "currency": run.book.settings.currency,
        "invoices": [
            {
                "number": i.number, "client": i.client.name, "status": i.status,
                "issue_date": i.issue_date.isoformat(), "due_date": i.due_date.isoformat(),
                "seats": i.seats,
                "lines": [
                    {"kind": str(ln.kind), "description": ln.description, "quantity": f"{ln.quantity.normalize():f}",
                     "unit_price": f"{ln.unit_price.normalize():f}", "amount": money(ln.amount_cents),
                     "taxable": ln.taxable}
                    for ln in i.lines
                ],
                "subtotal": money(i.subtotal_cents), "discount": money(i.discount_cents),
                "tax": money(i.tax_cents), "total": money(i.total_cents),
            }
            for i in invs
        ],
        "skipped": [{"client": c, "reason": r} for c, r in run.skipped],
        "totals": {
            "invoices": len(invs),
            "subtotal": money(sum(i.subtotal_cents for i in invs)),
            "discount": money(sum(i.discount_cents for i in invs)),
            "tax": money(sum(i.tax_cents for i in invs)),
            "total": money(run.total_cents),
        },
        "warnings": [p.as_dict() for p in run.book.warnings],
        "outputs": outputs or {},
    }


def write_outputs(run: Run, out_dir: Path, *, pdf: bool = False,
                  progress: Callable[[int], None] | None = None,
                  before_publish: Callable[[], None] | None = None, credits_only: bool = False,
                  inputs: Sequence[Path] = (), rollback: Callable[[], None] | None = None) -> dict[str, str]:
    """Write every output into ``out_dir``; record and publish succeed or fail together.

    Every file is written into a staging folder inside ``out_dir`` first (which also proves the folder
    writable), and each destination is checked — not a folder, not one of ``inputs`` (the workbook) —
    before ``before_publish`` runs (it records the documents in the workbook). The files are then moved into
    place; if a move fails, the files already replaced are put back, ``rollback`` undoes the record, and the
    error says so.
    """
    logo = read_logo(run.book)  # a bad LogoFile refuses before anything is written
    created = prepare_folder(out_dir)
    clear_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=out_dir))
    try:
        texts: dict[str, Callable[[Run], str]] = {} if credits_only else {
            "quickbooks.csv": quickbooks_csv, "xero.csv": xero_csv, "users.csv": users_csv}
        if has_credits(run):
            texts |= {"quickbooks_credit_memos.csv": quickbooks_credit_memos_csv,
                      "xero_credit_notes.csv": xero_credit_notes_csv}
        with ThreadPoolExecutor(max_workers=1) as pool:  # users.csv is Arrow work, done beside the rest
            users = pool.submit(users_csv, run) if "users.csv" in texts else None
            invoices_xlsx(run, staging / "invoices.xlsx", progress, logo)
            for name, make in texts.items():
                text = users.result() if name == "users.csv" and users is not None else make(run)
                (staging / name).write_text(text, encoding="utf-8-sig", newline="")
        files = ["invoices.xlsx", *texts]
        if pdf:
            files += invoice_pdfs(run, staging, logo)
        for name in files:
            check_destination(out_dir, name, inputs)
        if before_publish is not None:
            before_publish()
            (staging / _RECORDED).write_text("\n".join(files), encoding="utf-8")  # a kill from here on: the
            # next run into this folder finishes moving these files into place (see clear_stale_staging)
        return _publish(staging, out_dir, files, rollback)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_STAGING_PREFIX = ".perseat-staging-"


def _publish(staging: Path, out_dir: Path, files: Sequence[str],
             rollback: Callable[[], None] | None) -> dict[str, str]:
    """Move the staged files into place; on a failure put back what was replaced and undo the record."""
    kept = staging / ".replaced"
    kept.mkdir()
    moved: list[tuple[str, bool]] = []
    try:
        for name in files:
            dest = out_dir / name
            had = os.path.lexists(dest)
            if had:
                os.replace(dest, kept / name)
            moved.append((name, had))
            os.replace(staging / name, dest)
    except OSError as exc:
        failed = name
        for name, had in reversed(moved):
            dest = out_dir / name
            try:
                if os.path.lexists(dest) and not (staging / name).exists():
                    os.unlink(dest)
                if had:
                    os.replace(kept / name, dest)
            except OSError:
                pass
        undone = ""
        if rollback is not None:
            rollback()
            undone = " The workbook was put back as it was, so nothing is recorded."
        raise PerseatError(f"{out_dir / failed}: {os_error_text(exc)}; the files in {out_dir} are as they were."
                           f"{undone} Fix that, then run again.") from None
    return {name: str(out_dir / name) for name in files}


def prepare_folder(out_dir: Path) -> bool:
    """Create the output folder if needed (True if it was created); a file in the way says so."""
    if out_dir.exists() and not out_dir.is_dir():
        raise PerseatError(f"{out_dir} is a file, not a folder; nothing was written. Choose another folder "
                           "with --out, or change OutputFolder in Settings (or move that file).")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PerseatError(f"cannot create the output folder {out_dir}: {os_error_text(exc)}; nothing was "
                           "written. Choose another folder with --out, or change OutputFolder in Settings.") from None
    return created


def clear_stale_staging(out_dir: Path) -> None:
    """Remove staging folders that a killed run left in ``out_dir`` (their process is gone)."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return
    for n in names:
        if not n.startswith(_STAGING_PREFIX):
            continue
        pid = n[len(_STAGING_PREFIX):].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            _finish(out_dir / n, out_dir)
            shutil.rmtree(out_dir / n, ignore_errors=True)


_RECORDED = ".recorded"
"""Marks a staging folder whose documents were recorded in the workbook before its files were moved."""


def _finish(staging: Path, out_dir: Path) -> None:
    """Move into place the files of a run killed after it recorded its documents (never a recorded month
    without its files); a run killed before recording left nothing to keep."""
    marker = staging / _RECORDED
    if not marker.is_file():
        return
    for name in marker.read_text(encoding="utf-8").splitlines():
        if name and Path(name).name == name and (staging / name).is_file():
            with contextlib.suppress(OSError):
                os.replace(staging / name, out_dir / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def check_destination(out_dir: Path, name: str, inputs: Sequence[Path] = ()) -> Path:
    """``out_dir/name`` if an output may go there: a plain file name inside the folder, not a folder or device
    in the way, and never one of ``inputs`` (the workbook, an export)."""
    if not name or Path(name).name != name or name in (".", "..") or "/" in name or "\\" in name:
        raise PerseatError(f"the output name {name!r} would leave the output folder {out_dir}; nothing was "
                           "written. Check InvoicePrefix and CreditPrefix in Settings.")
    dest = out_dir / name
    if os.path.lexists(dest):
        if dest.is_dir() and not dest.is_symlink():
            raise PerseatError(f"{dest} is a folder, so {name} cannot be written there; nothing was written. "
                               "Move or rename that folder, or choose another --out folder.")
        if dest.exists() and not dest.is_file():
            raise PerseatError(f"{dest} is not a regular file, so {name} cannot be written there; nothing was "
                               "written. Choose another --out folder.")
        for src in inputs:
            try:
                same = os.path.samefile(dest, src)
            except OSError:
                same = False
            if same:
                raise PerseatError(f"the output {name} would replace {src}, an input of this run; nothing was "
                                   "written. Choose another --out folder (or rename the workbook).")
    return dest


def workbook_folder(fullname: str) -> Path:
    """The folder of the open workbook; refuses for a never-saved or web-only workbook."""
    if "://" in fullname:
        raise PerseatError(f"the workbook is open from a web address ({fullname}), not a folder: open it from "
                           "its synced OneDrive/SharePoint folder, or set OutputFolder in Settings to a full "
                           "path such as C:\\Billing\\invoices")
    path = Path(fullname)
    if not path.is_absolute() and path.parent == Path("."):
        raise PerseatError("save the workbook first: invoices are written to its OutputFolder, beside it")
    return path.resolve().parent


def output_dir(fullname: str, folder: str, period: Period) -> Path:
    """``OutputFolder/PERIOD``: relative to the workbook's folder unless OutputFolder is a full path."""
    f = os.path.expanduser(os.path.expandvars(folder or "invoices"))
    base = Path(f) if os.path.isabs(f) else workbook_folder(fullname) / f
    return (base / str(period)).resolve()


def file_ref(path: Path, fullname: str) -> str:
    """How the Invoices table's File column names an output: relative to the workbook's folder if inside it."""
    try:
        return str(path.relative_to(workbook_folder(fullname)))
    except (ValueError, PerseatError):
        return str(path)
