"""Credit notes through ``perseat credit``: the whole invoice, one line, an amount; recorded in the workbook at
once, in invoices.xlsx, the PDF and both accounting files, with totals that sum; never more than what is left."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.model import DocKind, Period
from perseat_addin.tasks.credit import parse_choice
from perseat_addin.tasks.filebook import FileBook

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


def perseat(*args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def rows(path: Path, table: str) -> list[dict[str, Any]]:
    t = FileBook(path).rows(table)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows if any(v is not None for v in r)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def cents(v: Any) -> int:
    return int((Decimal(str(v)) * 100).quantize(Decimal(1)))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with November finalized (seven recorded invoices)."""
    tmp = tmp_path_factory.mktemp("credit")
    wb = Path(shutil.copyfile(TEMPLATE, tmp / "wb.xlsm"))
    perseat("invoice", wb, "--finalize", "--out", tmp / "nov")
    return wb


@pytest.fixture
def wb(ledger: Path, tmp_path: Path) -> Path:
    return Path(shutil.copyfile(ledger, tmp_path / "wb.xlsm"))


def invoice_total(path: Path, number: str) -> int:
    return next(cents(r["Total"]) for r in rows(path, "Invoices") if r["InvoiceNo"] == number)


@pytest.mark.parametrize(("args", "expected"), [
    ([], -144500),  # the whole of HV-1003
    (["--line", "2"], -14500),  # its Premium line
    (["--amount", "100"], -10000),  # an amount (Cobalt pays no tax)
])
def test_a_credit_note_is_recorded_and_published(wb: Path, tmp_path: Path, args: list[str], expected: int) -> None:
    out = tmp_path / "cn"
    doc = json.loads(perseat("credit", wb, "HV-1003", *args, "--reason", "Kiosks were down", "--out", out,
                             "--json").stdout)
    [note] = doc["invoices"]
    assert note["number"] == "CN-1008" and cents(note["total"]) == expected
    assert sum(cents(ln["amount"]) for ln in note["lines"]) == expected
    recorded = {r["InvoiceNo"]: r for r in rows(wb, "Invoices")}
    row = recorded["CN-1008"]
    assert (row["Kind"], row["Corrects"], row["Status"], row["Reason"]) == ("Credit", "HV-1003", "Final",
                                                                          "Kiosks were down")
    assert cents(row["Total"]) == expected and row["Period"] == "2026-11"
    lines = [r for r in rows(wb, "InvoiceLines") if r["InvoiceNo"] == "CN-1008"]
    assert lines and all(cents(r["Amount"]) < 0 for r in lines) and sum(cents(r["Amount"]) for r in lines) == expected
    assert {r["Setting"]: r["Value"] for r in rows(wb, "Settings")}["NextInvoiceNumber"] == 1009
    assert recorded["HV-1003"]["Status"] == "Final"  # the invoice itself is never touched
    memos = read_csv(out / "quickbooks_credit_memos.csv")
    assert {m["CreditMemoNo"] for m in memos} == {"CN-1008"}
    assert sum(cents(m["ItemAmount"]) for m in memos) == -expected  # a credit memo's amounts are positive
    xero = read_csv(out / "xero_credit_notes.csv")
    assert {x["*CreditNoteNumber"] for x in xero} == {"CN-1008"} and {x["Reference"] for x in xero} == {"HV-1003"}
    assert sum(cents(Decimal(x["*Quantity"]) * Decimal(x["*UnitAmount"])) + cents(x["TaxAmount"])
               for x in xero) == -expected
    assert not (out / "quickbooks.csv").exists() and not (out / "users.csv").exists()
    book = load_workbook(out / "invoices.xlsx", read_only=True)
    try:
        sheet = book["CN-1008"]
        texts = {str(c.value) for r in sheet.iter_rows() for c in r if c.value is not None}
        assert "CREDIT NOTE" in texts and "HV-1003" in texts
    finally:
        book.close()


def test_credits_never_exceed_what_is_left(wb: Path) -> None:
    perseat("credit", wb, "HV-1002", "--amount", "700", "--reason", "Goodwill")
    before = wb.read_bytes()
    proc = perseat("credit", wb, "HV-1002", "--amount", "200", "--reason", "More goodwill", code=1)
    assert "more than what is left of HV-1002" in proc.stderr
    proc = perseat("credit", wb, "HV-1002", "--reason", "All of it", code=1)
    assert "already partly credited" in proc.stderr
    assert wb.read_bytes() == before


@pytest.mark.parametrize(("args", "message", "code"), [
    (["HV-9999", "--reason", "x"], "there is no invoice HV-9999", 1),
    (["HV-1003", "--line", "9", "--reason", "x"], "HV-1003 has no charge line 9", 1),
    (["HV-1003", "--amount", "ten", "--reason", "x"], "--amount: 'ten' is not an amount", 2),
    (["HV-1003", "--amount", "5", "--line", "1", "--reason", "x"], "not allowed with argument", 2),
])
def test_bad_credit_requests_change_nothing(wb: Path, args: list[str], message: str, code: int) -> None:
    before = wb.read_bytes()
    proc = perseat("credit", wb, *args, code=code)
    assert message in proc.stderr
    assert wb.read_bytes() == before


def test_a_credit_note_never_moves_a_draft_above_a_recorded_row(wb: Path, tmp_path: Path) -> None:
    perseat("credit", wb, "HV-1001", "--amount", "10", "--reason", "Late fix")
    invoices = rows(wb, "Invoices")
    assert [r["InvoiceNo"] for r in invoices][-1] == "CN-1008"
    assert all(r["Status"] != "Draft" for r in invoices)


def test_a_negative_month_is_a_credit_note(book) -> None:
    b = book(roster=[{"Client": "Acme", "UserID": "a@x"}],
             addons=[{"Client": "Acme", "Description": "Loyalty credit", "UnitPrice": -50}])
    [doc] = invoice_run(b, Period(2026, 11)).invoices
    assert doc.kind is DocKind.CREDIT and doc.number == "CN-1" and doc.total_cents == -4000
    assert doc.due_date == doc.issue_date


@pytest.mark.parametrize(("typed", "lines", "amount"), [
    ("ALL", [], None), ("", [], None), ("line 2", [2], None), ("1 3", [1, 3], None), ("1,3", [1, 3], None),
    ("120.50", [], 12050), ("$1,200.00", [], 120000),
])
def test_the_ribbon_reads_what_to_credit(typed: str, lines: list[int], amount: int | None) -> None:
    assert parse_choice(typed) == (lines, amount)


@pytest.mark.parametrize("typed", ["2", "some", "1.234"])
def test_the_ribbon_asks_again_for_an_unclear_answer(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_choice(typed)


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="LibreOffice and poppler are needed to write and read the PDF")
def test_the_credit_note_pdf_is_titled_credit_note(wb: Path, tmp_path: Path) -> None:
    out = tmp_path / "cn"
    perseat("credit", wb, "HV-1002", "--line", "2", "--reason", "Firewall offline", "--out", out, "--pdf")
    [pdf] = list(out.glob("*.pdf"))
    assert pdf.name == "CN-1008 Birch _ Lowe LLP.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "CREDIT NOTE" in text and "HV-1002" in text and "Reason: Firewall offline" in text
    assert "Total credited" in text and "-USD 114.00" in text  # 120.00 less its 5 % discount share
