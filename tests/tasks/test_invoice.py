"""The ledger through ``perseat invoice``: recorded documents are never rewritten or moved, a recorded
period is re-issued exactly as recorded, and finalize refuses early, twice or out of order."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from openpyxl import load_workbook

from perseat_addin.excel.template import template_sheets, write_workbook
from perseat_addin.model import Period
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def perseat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def sheet_xml(path: Path, sheet: str) -> etree._Element:
    """The worksheet part of ``sheet``, parsed."""
    with zipfile.ZipFile(path) as z:
        wb = etree.fromstring(z.read("xl/workbook.xml"))
        rels = etree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        target = {r.get("Id"): r.get("Target") for r in rels}
        rid = next(s.get(R_ID) for s in wb.iter(f"{M}sheet") if s.get("name") == sheet)
        part = str(target[rid]).lstrip("/")
        return etree.fromstring(z.read(part if part.startswith("xl/") else f"xl/{part}"))


def rows_xml(path: Path, sheet: str, first_cells: set[str]) -> dict[str, bytes]:
    """The exact XML of every row whose column-A text is in ``first_cells``, by that text."""
    root = sheet_xml(path, sheet)
    out: dict[str, bytes] = {}
    for row in root.iter(f"{M}row"):
        a = row.find(f"{M}c")
        text = "".join(a.itertext()) if a is not None else ""
        if text in first_cells:
            out.setdefault(text, b"")
            out[text] += etree.tostring(row)
    return out


def headers(path: Path, table: str) -> list[str]:
    return list(FileBook(path).reader.table(table).headers)  # type: ignore[union-attr]


def set_status(path: Path, statuses: dict[str, str]) -> None:
    """Staff mark recorded invoices Paid, Sent, Void (one cell each, as Excel would)."""
    fb = FileBook(path)
    t = fb.rows("Invoices")
    assert t is not None
    j = t.col("Status")
    cells = tuple((i, j, statuses[str(t.get(r, "InvoiceNo"))]) for i, r in enumerate(t.rows)
                  if str(t.get(r, "InvoiceNo")) in statuses)
    assert len(cells) == len(statuses) and j is not None
    fb.write([TableEdit(t.name, cells=cells)])


@pytest.fixture
def finalized(tmp_path: Path) -> Path:
    wb = Path(shutil.copyfile(TEMPLATE, tmp_path / "wb.xlsm"))
    ok(perseat("invoice", wb, "--finalize", "--out", tmp_path / "nov"))
    return wb


def test_recorded_rows_survive_every_command_byte_for_byte(finalized: Path, tmp_path: Path) -> None:
    set_status(finalized, {"HV-1001": "Paid", "HV-1002": "Sent", "HV-1003": "Void"})
    kept = {"HV-1001", "HV-1002", "HV-1003"}
    before = rows_xml(finalized, "Invoices", kept), rows_xml(finalized, "InvoiceLines", kept)
    assert len(before[0]) == 3 and len(before[1]) == 3
    export = tmp_path / "acme.csv"
    export.write_text("Block credential,Display name,Licenses,User principal name\n"
                      "False,New Person,Microsoft 365 Business Premium,new.person@acmedental.example\n",
                      encoding="utf-8")
    for args in (["invoice", finalized, "--out", tmp_path / "a"],
                 ["invoice", finalized, "--period", "2026-11", "--out", tmp_path / "b"],
                 ["invoice", finalized, "--period", "2026-11", "--finalize", "--out", tmp_path / "c"],
                 ["check", finalized],
                 ["report", finalized, "--out", tmp_path / "r"],
                 ["import", "m365", export, "--workbook", finalized, "--client", "Acme Dental Group", "--apply"],
                 ["invoice", finalized, "--finalize", "--early", "--out", tmp_path / "dec"]):
        proc = perseat(*args)
        assert "Traceback" not in proc.stdout + proc.stderr, (args, proc.stderr)
        assert (rows_xml(finalized, "Invoices", kept), rows_xml(finalized, "InvoiceLines", kept)) == before, args
    invoices = FileBook(finalized).rows("Invoices")
    assert invoices is not None
    numbers = [str(invoices.get(r, "InvoiceNo")) for r in invoices.rows]
    assert numbers[:9] == ["HV-0990", "CN-0991", *(f"HV-{n}" for n in range(1001, 1008))]  # nothing renumbered,
    # deleted or re-issued
    assert len(numbers) == len(set(numbers))
    decembers = [r for r in invoices.rows if invoices.get(r, "Period") == "2026-12"]
    assert decembers and {invoices.get(r, "Status") for r in decembers} == {"Final"}


def test_a_recorded_period_is_reissued_exactly_as_recorded(finalized: Path, tmp_path: Path) -> None:
    first = finalized.parent / "nov"
    wb_before = finalized.read_bytes()
    proc = ok(perseat("invoice", finalized, "--period", "2026-11", "--out", tmp_path / "again", "--json"))
    assert finalized.read_bytes() == wb_before  # the workbook is not touched
    again = json.loads(proc.stdout)
    assert [i["number"] for i in again["invoices"]] == [f"HV-{n}" for n in range(1001, 1008)]
    assert {i["status"] for i in again["invoices"]} == {"Final"}
    for name in ("quickbooks.csv", "xero.csv", "users.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (first / name).read_bytes(), name
    assert xlsx_parts(tmp_path / "again" / "invoices.xlsx") == xlsx_parts(first / "invoices.xlsx")
    text = ok(perseat("invoice", finalized, "--period", "2026-11", "--out", tmp_path / "text")).stdout
    assert "7 recorded documents of November 2026 (USD), re-issued exactly as recorded" in text


def xlsx_parts(path: Path) -> dict[str, bytes]:
    """Every part of a package, creation and modification times dropped."""
    stamp = re.compile(rb"<dcterms:(created|modified)[^<]*</dcterms:\1>")
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        return {n: stamp.sub(b"", z.read(n)) for n in z.namelist()}


def test_finalize_refuses_a_month_not_yet_over(tmp_path: Path) -> None:
    today = dt.date.today()
    month = f"{today.year:04d}-{today.month:02d}"
    sheets = template_sheets()
    for spec in sheets:
        if spec.name in ("Invoices", "InvoiceLines"):
            spec.rows = []  # an empty ledger, billing the month we are in
        if spec.name == "Settings":
            spec.rows = [("BillingPeriod", month, *rest) if k == "BillingPeriod" else (k, v, *rest)
                         for k, v, *rest in spec.rows]
    wb = tmp_path / "now.xlsm"
    write_workbook(wb, sheets)
    before = wb.read_bytes()
    proc = ok(perseat("invoice", wb, "--finalize", "--out", tmp_path / "x"), code=1)
    last = Period.parse(month).last
    assert (f"runs until {last:%b} {last.day}, {last.year}: finalizing before that day has passed would bill days "
            "that have not happened yet; wait until then, or add --early to finalize now. Nothing was written."
            in proc.stderr)
    assert wb.read_bytes() == before and not (tmp_path / "x").exists()
    ok(perseat("invoice", wb, "--finalize", "--early", "--out", tmp_path / "y"))
    assert wb.read_bytes() != before


@pytest.mark.parametrize(("args", "message"), [
    (["--finalize", "--period", "2026-11"], "November 2026 is already finalized (HV-1001 … HV-1007); nothing was "
                                            "changed."),
    (["--finalize", "--early", "--period", "2027-01"], "finalizing January 2027 would skip December 2026 (the last "
                                                      "finalized period is 2026-11); finalize 2026-12 first."),
])
def test_finalize_refuses_early_twice_or_out_of_order(finalized: Path, tmp_path: Path, args: list[str],
                                                      message: str) -> None:
    before = finalized.read_bytes()
    proc = ok(perseat("invoice", finalized, *args, "--out", tmp_path / "x"), code=1)
    assert message in proc.stderr
    assert finalized.read_bytes() == before and not (tmp_path / "x").exists()


def test_a_ledger_made_before_kind_and_corrects_gains_them(tmp_path: Path) -> None:
    sheets = template_sheets()
    for spec in sheets:  # the ledger tables as a workbook made by an earlier version has them
        if spec.name == "Invoices":
            spec.headers, spec.rows = ("InvoiceNo", "Client", "Period", "IssueDate", "DueDate", "Subtotal",
                                       "Discount", "Tax", "Total", "Status", "File"), []
        if spec.name == "InvoiceLines":
            spec.headers, spec.rows = ("InvoiceNo", "Line", "Kind", "Description", "Quantity", "UnitPrice",
                                       "Amount"), []
    sheets = [s for s in sheets if s.name != "Billed"]
    finalized = tmp_path / "old.xlsm"
    write_workbook(finalized, sheets)
    ok(perseat("invoice", finalized, "--finalize", "--out", tmp_path / "nov"))
    heads = headers(finalized, "Invoices")
    assert heads[-4:] == ["Kind", "Corrects", "Seats", "Reason"]  # added at the table's right end, the rest as it was
    assert headers(finalized, "InvoiceLines")[-1] == "Taxable"
    t = FileBook(finalized).rows("Invoices")
    assert t is not None
    kinds: set[Any] = {t.get(r, "Kind") for r in t.rows}
    assert kinds == {"Invoice"}
    assert [t.get(r, "Seats") for r in t.rows][:2] == [12, 5]
    # the Billed table the ledger needs was created on a sheet of its own, and openpyxl reads it as a table
    billed = FileBook(finalized).rows("Billed")
    assert billed is not None and list(billed.headers) == ["InvoiceNo", "Client", "Period", "Plan", "Users",
                                                           "Devices", "Amount", "Rules"]
    assert {billed.get(r, "InvoiceNo") for r in billed.rows} == {f"HV-{n}" for n in range(1001, 1008)}
    book = load_workbook(finalized, keep_vba=True)
    try:
        assert book.sheetnames[-1] == "Billed" and "Billed" in book["Billed"].tables
    finally:
        book.close()
