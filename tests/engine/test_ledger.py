"""The Draft/Final row rules of ``writeback`` as pure functions over table rows, and the file writer that
applies them (``perseat invoice --finalize``). Tables are written in the tests as Excel shows them."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin.engine.ledger import (
    advanced_settings,
    draft_differences,
    finalize_edit,
    record_edits,
    settings_edit,
    writeback_problems,
)
from perseat_addin.errors import FinalizedError, PerseatError
from perseat_addin.excel.template import template_sheets, write_workbook
from perseat_addin.model import Client, Invoice, Line, Period
from perseat_addin.tables import RawTable, TableEdit, apply_edit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.tasks.invoice import record

NOV, DEC = Period(2026, 11), Period(2026, 12)
INVOICE_HEADS = ["InvoiceNo", "Kind", "Corrects", "Client", "Period", "IssueDate", "DueDate", "Subtotal", "Discount",
                 "Tax", "Total", "Status", "File", "Seats", "Reason"]


def invoices_table(*rows: tuple[str, str, str, float, str]) -> RawTable:
    """Invoices rows as (InvoiceNo, Client, Period, Total, Status); other columns blank."""
    return RawTable.of("Invoices", [INVOICE_HEADS, *[
        [n, "Invoice", None, c, p, None, None, t, 0.0, 0.0, t, s, "", 1, None] for n, c, p, t, s in rows]])


def lines_table(*rows: tuple[str, float]) -> RawTable:
    """InvoiceLines rows as (InvoiceNo, Amount)."""
    return RawTable.of("InvoiceLines", [["InvoiceNo", "Line", "Kind", "Description", "Quantity", "UnitPrice",
                                          "Amount", "Taxable"], *[[n, 1, "seats", "x", 1.0, a, a, "Yes"]
                                                                  for n, a in rows]])


def invoice(number: str, client: str, amount: str, period: Period = NOV) -> Invoice:
    cents = int(Decimal(amount) * 100)
    return Invoice(number, Client(client, "Std", 2), period, period.next().first,
                   period.next().first + dt.timedelta(days=30), "USD",
                   (Line("seats", f"{client} seats", Decimal(1), Decimal(amount), cents),))


def settings_table(**values: Any) -> RawTable:
    return RawTable.of("Settings", [["Setting", "Value"], *[[k, v] for k, v in values.items()]])


def column(t: RawTable, header: str) -> list[Any]:
    return [t.get(r, header) for r in t.rows]


# --------------------------------------------------------------------------
# recording a period


def test_recording_replaces_the_periods_drafts_and_their_lines() -> None:
    inv = invoices_table(
        ("HV-990", "Acme", "2026-10", 100.0, "Final"),
        ("HV-1001", "Acme", "2026-11", 110.0, "Draft"),
        ("HV-1002", "Birch", "2026-11", 50.0, "Draft"),
    )
    lines = lines_table(("HV-990", 100.0), ("HV-1001", 110.0), ("HV-1002", 50.0))
    new = [invoice("HV-1001", "Acme", "120.00")]
    inv_edit, line_edit = record_edits(inv, lines, new, NOV)
    after = apply_edit(inv, inv_edit)
    assert column(after, "InvoiceNo") == ["HV-990", "HV-1001"]
    assert column(after, "Status") == ["Final", "Draft"]
    assert column(after, "Total") == [100.0, 120.0]
    assert column(after, "Period") == ["2026-10", "2026-11"]
    assert after.rows[0] == inv.rows[0]  # the Final row is untouched
    assert inv_edit.delete == (2,)  # the new invoice takes the first draft's place; the other draft goes
    assert {i for i, _, _ in inv_edit.cells} == {1}
    after_lines = apply_edit(lines, line_edit)
    assert [(r[0], r[6]) for r in after_lines.rows] == [("HV-990", 100.0), ("HV-1001", 120.0)]


def test_recording_writes_excel_values() -> None:
    inv = invoices_table()
    inv_edit, line_edit = record_edits(inv, lines_table(), [invoice("HV-1", "Acme", "12.34")], NOV,
                                       files={"HV-1": "invoices/2026-11/HV-1 Acme.pdf"})
    (row,) = inv_edit.append
    values = dict(zip(INVOICE_HEADS, row, strict=True))
    assert values["IssueDate"] == dt.datetime(2026, 12, 1) and values["DueDate"] == dt.datetime(2026, 12, 31)
    assert values["Total"] == 12.34 and isinstance(values["Total"], float)
    assert (values["Status"], values["File"]) == ("Draft", "invoices/2026-11/HV-1 Acme.pdf")
    assert line_edit.append == (("HV-1", 1, "seats", "Acme seats", 1.0, 12.34, 12.34, "Yes"),)


def test_blank_rows_are_reused_or_removed_and_extra_columns_left_alone() -> None:
    inv = RawTable.of("Invoices", [[*INVOICE_HEADS, "Paid"], [None] * 16, [None] * 16])
    inv_edit, _ = record_edits(inv, lines_table(), [invoice("HV-1", "Acme", "1.00")], NOV)
    assert inv_edit.delete == (1,) and not inv_edit.append  # the first blank row takes the invoice
    assert all(j != len(INVOICE_HEADS) for _, j, _ in inv_edit.cells)  # 'Paid' is the user's column
    assert column(apply_edit(inv, inv_edit), "InvoiceNo") == ["HV-1"]


def test_a_final_invoice_is_never_replaced() -> None:
    inv = invoices_table(("HV-1001", "Acme", "2026-11", 110.0, "Final"))
    with pytest.raises(FinalizedError, match=r"November 2026 is already recorded \(HV-1001\)"):
        record_edits(inv, lines_table(), [invoice("HV-1002", "ACME", "1.00")], NOV)


def test_an_invoice_number_is_never_reused() -> None:
    inv = invoices_table(("HV-1001", "Acme", "2026-10", 110.0, "Draft"))
    with pytest.raises(PerseatError, match="HV-1001 is already used by the Draft document for 2026-10"):
        record_edits(inv, lines_table(), [invoice("HV-1001", "Birch", "1.00")], NOV)


def test_lines_of_a_kept_invoice_survive_a_number_clash_with_a_dropped_draft() -> None:
    inv = invoices_table(("HV-7", "Acme", "2026-10", 1.0, "Final"), ("HV-7", "Birch", "2026-11", 2.0, "Draft"))
    lines = lines_table(("HV-7", 1.0), ("HV-7", 2.0))
    _, line_edit = record_edits(inv, lines, [], NOV)
    assert line_edit.delete == ()  # cannot tell them apart: keep the Final invoice's lines


def test_period_cells_excel_made_into_dates_still_match() -> None:
    inv = invoices_table(("HV-1", "Acme", dt.datetime(2026, 11, 1), 1.0, "Draft"))  # type: ignore[arg-type]
    inv_edit, _ = record_edits(inv, lines_table(), [], NOV)
    assert inv_edit.delete == (0,)


def test_missing_columns_are_reported_with_the_fix() -> None:
    with pytest.raises(PerseatError, match=r"lacks column\(s\) Status"):
        record_edits(RawTable.of("Invoices", [["InvoiceNo", "Client", "Period"]]), lines_table(), [], NOV)
    problems = writeback_problems({"Invoices": None, "InvoiceLines": lines_table(),
                                   "Settings": RawTable.of("Settings", [["Setting"]])})
    assert [(p.sheet, p.message) for p in problems] == [
        ("Invoices", "the workbook has no Invoices table to write to"),
        ("Settings", "the Settings table lacks column(s) Value")]


# --------------------------------------------------------------------------
# finalizing a period


def test_finalize_marks_only_the_periods_drafts() -> None:
    inv = invoices_table(
        ("HV-990", "Acme", "2026-10", 100.0, "Final"),
        ("HV-1001", "Acme", "2026-11", 110.0, "Draft"),
        ("HV-1002", "Birch", "2026-11", 50.0, ""),
        ("HV-1003", "Cobalt", "2026-12", 70.0, "Draft"),
    )
    edit, numbers = finalize_edit(inv, NOV)
    assert numbers == ("HV-1001",)  # a blank Status is not Draft: a recorded row, left alone
    assert column(apply_edit(inv, edit), "Status") == ["Final", "Final", "", "Draft"]
    assert not edit.delete and not edit.append
    none, nothing = finalize_edit(invoices_table(("HV-990", "Acme", "2026-11", 1.0, "Final")), NOV)
    assert nothing == () and not none.changes


def test_finalize_advances_the_settings() -> None:
    st = settings_table(BillingPeriod="2026-11", NextInvoiceNumber=1001.0)
    assert advanced_settings(st, ["HV-1001", "HV-1007"], NOV) == {"NextInvoiceNumber": 1008,
                                                                   "BillingPeriod": "2026-12"}
    edit = settings_edit(st, {"NextInvoiceNumber": 1008, "BillingPeriod": "2026-12"})
    assert apply_edit(st, edit).rows == (("BillingPeriod", "2026-12"), ("NextInvoiceNumber", 1008))


def test_settings_never_go_backwards() -> None:
    st = settings_table(BillingPeriod=dt.datetime(2027, 1, 1), NextInvoiceNumber=2000)
    assert advanced_settings(st, ["INV1001"], NOV) == {}
    assert advanced_settings(settings_table(), ["INV1001"], NOV) == {"NextInvoiceNumber": 1002,
                                                                     "BillingPeriod": "2026-12"}


def test_a_missing_setting_row_is_appended() -> None:
    st = settings_table(BillingPeriod="2026-11")
    edit = settings_edit(st, {"NextInvoiceNumber": 5})
    assert edit.append == (("NextInvoiceNumber", 5),) and not edit.cells


def test_draft_differences() -> None:
    inv = invoices_table(("HV-1", "Acme", "2026-11", 10.0, "Draft"), ("HV-2", "Birch", "2026-11", 20.0, "Draft"))
    lines = lines_table(("HV-1", 10.0), ("HV-2", 20.0))
    same = [invoice("HV-1", "Acme", "10.00"), invoice("HV-2", "Birch", "20.00")]
    assert draft_differences(inv, lines, same, NOV) == []
    changed = [invoice("HV-1", "Acme", "10.00"), invoice("HV-2", "Birch", "25.00"), invoice("HV-3", "Cobalt", "1")]
    assert draft_differences(inv, lines, changed, NOV) == [
        "HV-2 (Birch): draft total 20.00, the workbook now gives 25.00",
        "HV-3 (Cobalt): new since the drafts were made"]


def test_apply_edit() -> None:
    t = RawTable.of("T", [["A", "B"], [1, "x"], [2, "y"], [3, "z"]])
    edit = TableEdit("T", cells=((0, 1, "X"),), delete=(1,), append=((4, "w"),))
    assert apply_edit(t, edit).rows == ((1, "X"), (3, "z"), (4, "w"))


# --------------------------------------------------------------------------
# the file writer applies the same edits


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    path = tmp_path / "wb.xlsm"
    write_workbook(path, template_sheets())
    return path


def table(path: Path, name: str) -> list[tuple[Any, ...]]:
    wb = load_workbook(path)
    for ws in wb.worksheets:
        if name in ws.tables:
            cells = ws[ws.tables[name].ref]
            return [tuple(c.value for c in r) for r in cells[1:] if any(c.value is not None for c in r)]
    raise KeyError(name)


def test_file_writer_records_drafts_then_finals(workbook: Path, tmp_path: Path) -> None:
    nov = [invoice("HV-1001", "Acme Dental Group", "10.00"), invoice("HV-1002", "Elm Street Bakery", "250.00")]
    sample = table(workbook, "Invoices")  # the template's sample ledger (October), never touched
    record(FileBook(workbook), nov, NOV, final=False)
    drafts = table(workbook, "Invoices")
    assert drafts[:len(sample)] == sample
    assert [(r[0], r[11]) for r in drafts[len(sample):]] == [("HV-1001", "Draft"), ("HV-1002", "Draft")]
    record(FileBook(workbook), nov[:1], NOV, final=True)
    finals = table(workbook, "Invoices")
    assert [(r[0], r[11]) for r in finals[len(sample):]] == [("HV-1001", "Final")]  # replaced, not duplicated
    assert [r[0] for r in table(workbook, "InvoiceLines")][-1:] == ["HV-1001"]
    settings = {r[0]: r[1] for r in table(workbook, "Settings")}
    assert (settings["NextInvoiceNumber"], settings["BillingPeriod"]) == (1002, "2026-12")
    copy = Path(shutil.copyfile(workbook, tmp_path / "again.xlsm"))
    with pytest.raises(FinalizedError):
        record(FileBook(copy), nov[:1], NOV, final=True)
    assert copy.read_bytes() == workbook.read_bytes()
