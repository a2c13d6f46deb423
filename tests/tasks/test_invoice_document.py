"""The printed invoice (SPEC §11): what a client needs to pay it, read back from the PDF LibreOffice makes of
it (pdftotext, pdfimages), and a bad LogoFile refused before anything is written."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl_book import set_settings

from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.model import Invoice, Line, LineKind
from perseat_addin.outputs.layout import SIDE_CHARS, TEXT_CHARS, client_users, invoice_layout, wrapped
from perseat_addin.outputs.logo import read_logo
from perseat_addin.outputs.pdf import invoice_pdfs
from perseat_addin.outputs.xlsx import invoices_xlsx
from perseat_addin.workbook.load import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
LOGO = ROOT / "tests" / "fixtures" / "logo.png"  # 340 × 82 pixels
needs_pdf = pytest.mark.skipif(not all(shutil.which(t) for t in ("soffice", "pdftotext", "pdfimages", "pdfinfo")),
                               reason="LibreOffice and poppler are needed to write and read the PDFs")


def perseat(*args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


def pdftext(pdf: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def workbook(folder: Path, **settings: object) -> Path:
    """The template in ``folder`` with the logo beside it and ``settings`` typed into Settings."""
    folder.mkdir(parents=True, exist_ok=True)
    wb = Path(shutil.copyfile(TEMPLATE, folder / "billing.xlsm"))
    shutil.copyfile(LOGO, folder / "logo.png")
    if settings:
        set_settings(wb, settings)
    return wb


@pytest.fixture(scope="module")
def template_run() -> Run:
    book = load(TEMPLATE)
    book = dataclasses.replace(book, settings=dataclasses.replace(book.settings, logo_file=str(LOGO)))
    return invoice_run(book, book.settings.period)


def pdf_of(run: Run, inv: Invoice, folder: Path) -> Path:
    one = dataclasses.replace(run, invoices=[inv])
    [name] = invoice_pdfs(one, folder, read_logo(one.book))
    return folder / name


# --------------------------------------------------------------------------
# what a client needs to pay


@needs_pdf
def test_the_pdf_says_how_to_pay_where_to_remit_and_shows_the_logo(tmp_path: Path) -> None:
    wb = workbook(tmp_path / "book", LogoFile="logo.png")
    perseat("invoice", wb, "--out", tmp_path / "out", "--pdf")
    pdf = sorted((tmp_path / "out").glob("HV-1001 *.pdf"))[0]
    text = pdftext(pdf)
    st = load(wb).settings
    printed = [*wrapped(st.payment_instructions, TEXT_CHARS), *wrapped(st.remit_to, SIDE_CHARS)]  # whole, a row each
    assert len(printed) >= 5 and "".join(printed).replace(" ", "") == (
        st.payment_instructions + st.remit_to).replace("\n", "").replace(" ", "")
    for line in [*printed, st.phone, st.tax_id, st.msp_email, "HOW TO PAY", "REMIT PAYMENT TO", "Net 30", "Due date"]:
        assert line.strip() in text, line
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    sizes = [tuple(row.split()[3:5]) for row in images.splitlines()[2:]]
    assert ("340", "82") in sizes, images  # the logo, at its own pixels


@needs_pdf
def test_a_long_invoice_repeats_its_column_headings_on_every_page(template_run: Run, tmp_path: Path) -> None:
    inv = template_run.invoices[0]
    extra = [Line(LineKind.ADDON, f"Offsite backup, workstation {k}", Decimal(1), Decimal(5), 500) for k in range(120)]
    pdf = pdf_of(template_run, dataclasses.replace(inv, lines=[*extra, *inv.lines]), tmp_path)
    n = pages(pdf)
    assert n >= 3
    for page in range(1, n + 1):
        text = pdftext(pdf, page)
        assert "Description" in text and "Unit price" in text, page
        assert f"Page {page} of {n}" in text and inv.number in text, page
    assert "Total due" in pdftext(pdf, n) and "HOW TO PAY" in pdftext(pdf, n)


@needs_pdf
def test_a_multi_line_bill_to_prints_each_line_once_in_order(template_run: Run, tmp_path: Path) -> None:
    lines = ["Unit 4, Harbour Building", "12 Long Wharf Road", "South Portland, ME 04106", "United States"]
    inv = template_run.invoices[0]
    inv = dataclasses.replace(inv, client=dataclasses.replace(inv.client, address="\r\n".join(lines)))
    text = pdftext(pdf_of(template_run, inv, tmp_path))
    assert all(text.count(line) == 1 for line in lines), text
    at = [text.index(line) for line in lines]
    assert at == sorted(at) and text.index("BILL TO") < at[0] < text.index("Description")
    rows = [r for r in text.splitlines() if any(line in r for line in lines)]
    assert len(rows) == len(lines)  # a row each: never printed over one another


def test_the_bill_to_and_how_to_pay_are_a_row_per_line(template_run: Run) -> None:
    st = template_run.book.settings
    inv = template_run.invoices[0]
    inv = dataclasses.replace(inv, client=dataclasses.replace(inv.client, address="A street\nB town"))
    values = [str(c.value).removeprefix("'") for c in invoice_layout(inv, template_run, "S").cells]
    assert "A street" in values and "B town" in values
    assert all("\n" not in str(v) for v in values)
    assert all(line in values for line in st.remit_to.splitlines())


# --------------------------------------------------------------------------
# the user list page


@needs_pdf
def test_the_user_list_page_appears_only_when_asked(template_run: Run, tmp_path: Path) -> None:
    inv = template_run.invoices[0]
    plain = pdf_of(template_run, inv, tmp_path / "plain")
    assert pages(plain) == 1 and "User list" not in pdftext(plain)
    asked = dataclasses.replace(template_run, book=dataclasses.replace(
        template_run.book, settings=dataclasses.replace(template_run.book.settings, attach_user_list=True)))
    pdf = pdf_of(asked, inv, tmp_path / "asked")
    assert pages(pdf) == 2
    page2 = pdftext(pdf, 2)
    users = client_users(asked)[inv.client.name.lower()]
    assert "User list" in page2 and "Reason" in page2 and "User list" not in pdftext(pdf, 1)
    assert all(u.user_id in page2 for u in users)
    assert any(not u.billed for u in users) and "not billable" in page2  # who was not billed, and why


def test_a_line_that_refers_to_the_user_list_brings_it(template_run: Run, tmp_path: Path) -> None:
    inv = template_run.invoices[0]
    note = Line(LineKind.SEAT_CHANGE, "Standard +12 users from Nov 15 (listed on the attached user list)",
                Decimal(12), Decimal(1), 1200)
    run = dataclasses.replace(template_run, invoices=[dataclasses.replace(inv, lines=[*inv.lines, note]),
                                                      *template_run.invoices[1:2]])
    invoices_xlsx(run, tmp_path / "invoices.xlsx", logo=read_logo(run.book))
    names = load_workbook(tmp_path / "invoices.xlsx", read_only=True).sheetnames
    assert f"{inv.number} users" in names and f"{run.invoices[1].number} users" not in names


# --------------------------------------------------------------------------
# a bad logo


def _bad_logos(folder: Path) -> dict[str, tuple[str, str]]:
    """LogoFile values that must be refused, and a word the message must say."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.png").write_text("this is text, not a picture\n" * 10)
    (folder / "huge.png").write_bytes(LOGO.read_bytes() + b"\0" * (5 * 1024 * 1024))
    gif = folder / "anim.png"
    gif.write_bytes(b"GIF89a" + (10).to_bytes(2, "little") * 2 + b"\0" * 60)
    return {"missing": ("nowhere.png", "no file"), "text": ("notes.png", "not a PNG or JPEG image"),
            "huge": ("huge.png", "too large"), "gif": ("anim.png", "GIF"),
            "folder": (str(folder / "sub.png"), "no file")}


@pytest.mark.parametrize("case", ["missing", "text", "huge", "gif", "folder"])
def test_a_bad_logo_is_one_problem_and_nothing_is_written(case: str, tmp_path: Path) -> None:
    wb = workbook(tmp_path / "book")
    value, words = _bad_logos(tmp_path / "book")[case]
    (tmp_path / "book" / "sub.png").mkdir()
    set_settings(wb, {"LogoFile": value})
    before = wb.read_bytes()
    proc = perseat("invoice", wb, "--out", tmp_path / "out", "--finalize", code=1)
    assert "1 problem" in proc.stderr and "LogoFile" in proc.stderr and words in proc.stderr, proc.stderr
    assert "Settings" in proc.stderr and ("clear LogoFile" in proc.stderr or "LogoFile" in proc.stderr)
    assert not (tmp_path / "out").exists() and wb.read_bytes() == before
    checked = perseat("check", wb, code=1)
    assert "LogoFile" in checked.stdout + checked.stderr and words in checked.stdout + checked.stderr


def test_a_full_path_to_the_logo_is_allowed(tmp_path: Path) -> None:
    wb = workbook(tmp_path / "book", LogoFile=str(LOGO))
    perseat("invoice", wb, "--out", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "out" / "invoices.xlsx") as z:
        media = [n for n in z.namelist() if n.startswith("xl/media/")]
        assert media and z.read(media[0]) == LOGO.read_bytes()  # embedded once, as it is


def test_a_workbook_named_from_its_own_folder_finds_the_logo_beside_it(tmp_path: Path) -> None:
    """``perseat invoice billing.xlsm`` run in the workbook's folder: LogoFile is looked for beside it."""
    wb = workbook(tmp_path / "books", LogoFile="logo.png")
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "invoice", wb.name, "--out", "out"],
                          capture_output=True, text=True, timeout=600, cwd=wb.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(wb.parent / "out" / "invoices.xlsx") as z:
        assert any(n.startswith("xl/media/") for n in z.namelist())
