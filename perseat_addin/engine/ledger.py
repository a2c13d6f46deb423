"""Record invoices in the workbook's Invoices, InvoiceLines and Settings tables.

The rules are pure functions over table rows (:class:`RawTable` in,
:class:`TableEdit` out): recording a period replaces that period's Draft rows
(and their lines), never touches a Final row, and refuses to reuse an invoice
number; finalizing marks the period's Drafts Final and advances
NextInvoiceNumber and BillingPeriod. The tasks hand the edits to either port
(:mod:`perseat_addin.tasks.invoice`): the file on disk (``perseat invoice
--finalize``) or the workbook open in Excel (the ribbon).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from perseat_addin.errors import FinalizedError, PerseatError, Problem
from perseat_addin.model import Invoice, Period
from perseat_addin.money import cents_to_decimal, fmt_money, to_decimal
from perseat_addin.tables import RawTable, TableEdit, header_key, is_blank

INVOICE_COLUMNS = ("InvoiceNo", "Client", "Period", "IssueDate", "DueDate", "Subtotal", "Discount", "Tax",
                   "Total", "Status", "File")
LINE_COLUMNS = ("InvoiceNo", "Line", "Kind", "Description", "Quantity", "UnitPrice", "Amount")
REQUIRED = {"Invoices": ("InvoiceNo", "Client", "Period", "Status"), "InvoiceLines": ("InvoiceNo", "Amount"),
            "Settings": ("Setting", "Value")}
"""Columns a table must have before the program writes to it."""

NUMBER_FORMATS = {"IssueDate": "yyyy-mm-dd", "DueDate": "yyyy-mm-dd", "Subtotal": "#,##0.00",
                  "Discount": "#,##0.00", "Tax": "#,##0.00", "Total": "#,##0.00", "UnitPrice": "#,##0.00",
                  "Amount": "#,##0.00"}
"""Number formats of the written columns (for writers that must set them on new rows)."""


# --------------------------------------------------------------------------
# Table rows and edits: plain values


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return "" if v is None else str(v).strip()


def _status(t: RawTable, row: Sequence[Any]) -> str:
    return _text(t.get(row, "Status")).lower()


# --------------------------------------------------------------------------
# The rules


def writeback_problems(tables: Mapping[str, RawTable | None]) -> list[Problem]:
    """Problems that stop the program writing to Invoices, InvoiceLines or Settings (missing tables, columns)."""
    out: list[Problem] = []
    for name, needed in REQUIRED.items():
        t = tables.get(name)
        if t is None:
            out.append(Problem(name, None, None, f"the workbook has no {name} table to write to",
                               f"add the {name} sheet and table from the template (perseat template)"))
            continue
        missing = t.missing(needed)
        if missing:
            out.append(Problem(name, None, None, f"the {name} table lacks column(s) {', '.join(missing)}",
                               "add them to the table's header row (see the template)"))
    return out


def _require(t: RawTable, kind: str) -> None:
    missing = t.missing(REQUIRED[kind])
    if missing:
        raise PerseatError(f"the {t.name} table lacks column(s) {', '.join(missing)}; add them to its header row "
                           "(see the template) and try again")


def _excel_datetime(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time())


def invoice_row(t: RawTable, inv: Invoice, status: str, file: str = "") -> tuple[Any, ...]:
    """An Invoices row (money as Excel numbers, dates as Excel dates)."""
    return t.make({
        "InvoiceNo": inv.number, "Client": inv.client.name, "Period": str(inv.period),
        "IssueDate": _excel_datetime(inv.issue_date), "DueDate": _excel_datetime(inv.due_date),
        "Subtotal": float(cents_to_decimal(inv.subtotal_cents)),
        "Discount": float(cents_to_decimal(inv.discount_cents)),
        "Tax": float(cents_to_decimal(inv.tax_cents)), "Total": float(cents_to_decimal(inv.total_cents)),
        "Status": status, "File": file,
    })


def line_rows(t: RawTable, inv: Invoice) -> list[tuple[Any, ...]]:
    """The InvoiceLines rows of one invoice, numbered from 1."""
    return [t.make({"InvoiceNo": inv.number, "Line": k, "Kind": str(ln.kind), "Description": ln.description,
                    "Quantity": float(ln.quantity), "UnitPrice": float(ln.unit_price),
                    "Amount": float(ln.amount)})
            for k, ln in enumerate(inv.lines, start=1)]


def replaced_drafts(invoices: RawTable, period: Period) -> list[int]:
    """Indexes of ``period``'s rows that are not Final (what recording the period replaces)."""
    p = str(period)
    return [i for i, row in enumerate(invoices.rows)
            if not is_blank(row) and Period.key(invoices.get(row, "Period")) == p and _status(invoices, row) != "final"]


def record_edits(invoices_t: RawTable, lines_t: RawTable, invoices: Sequence[Invoice], period: Period, *,
                 final: bool = False, files: Mapping[str, str] | None = None) -> tuple[TableEdit, TableEdit]:
    """Edits that replace ``period``'s Draft invoices (and their lines) with ``invoices``.

    Final rows are never changed: a Final invoice of the same client and period
    raises :class:`FinalizedError`; a new number already used by a row that
    stays raises :class:`PerseatError`. Blank rows are removed.
    """
    _require(invoices_t, "Invoices")
    _require(lines_t, "InvoiceLines")
    p = str(period)
    drafts = set(replaced_drafts(invoices_t, period))
    new_clients = {i.client.name.strip().lower() for i in invoices}
    delete: list[int] = []
    dropped: set[str] = set()
    kept: dict[str, tuple[str, str]] = {}
    for i, row in enumerate(invoices_t.rows):
        number = _text(invoices_t.get(row, "InvoiceNo"))
        if is_blank(row) or i in drafts:
            delete.append(i)
            if number:
                dropped.add(number.lower())
            continue
        client = _text(invoices_t.get(row, "Client"))
        row_period = Period.key(invoices_t.get(row, "Period"))
        if row_period == p and client.lower() in new_clients:
            raise FinalizedError(f"{number} for {client} ({p}) is Final and cannot be replaced; "
                                 "issue a credit invoice instead")
        kept[number.lower()] = (_text(invoices_t.get(row, "Status")) or "Draft", row_period)
    for inv in invoices:
        if inv.number.lower() in kept:
            status, used_in = kept[inv.number.lower()]
            raise PerseatError(
                f"invoice number {inv.number} is already used by the {status} invoice for {used_in} in the "
                f"Invoices table; finalize or delete that period's Draft rows, or set NextInvoiceNumber in "
                "Settings above the highest number used")
    dropped -= set(kept)
    line_delete = tuple(i for i, row in enumerate(lines_t.rows)
                        if is_blank(row) or _text(lines_t.get(row, "InvoiceNo")).lower() in dropped)
    status = "Final" if final else "Draft"
    new_invoices = tuple(invoice_row(invoices_t, inv, status, (files or {}).get(inv.number, "")) for inv in invoices)
    new_lines = tuple(r for inv in invoices for r in line_rows(lines_t, inv))
    return (TableEdit(invoices_t.name, delete=tuple(delete), append=new_invoices),
            TableEdit(lines_t.name, delete=line_delete, append=new_lines))


def finalize_edit(invoices_t: RawTable, period: Period) -> tuple[TableEdit, tuple[str, ...]]:
    """Mark ``period``'s Draft rows Final; returns the edit and their invoice numbers (none: nothing to do)."""
    _require(invoices_t, "Invoices")
    j = invoices_t.col("Status")
    assert j is not None  # _require
    rows = replaced_drafts(invoices_t, period)
    numbers = tuple(_text(invoices_t.get(invoices_t.rows[i], "InvoiceNo")) for i in rows)
    return TableEdit(invoices_t.name, cells=tuple((i, j, "Final") for i in rows)), numbers


_TAIL = re.compile(r"(\d+)\s*$")


def advanced_settings(settings_t: RawTable, numbers: Iterable[str], period: Period) -> dict[str, Any]:
    """Settings after finalizing ``period`` with invoice ``numbers``: NextInvoiceNumber past the highest
    number used, BillingPeriod the month after ``period``. Neither ever goes backwards."""
    current = {header_key(_text(settings_t.get(r, "Setting"))): settings_t.get(r, "Value") for r in settings_t.rows}
    out: dict[str, Any] = {}
    used = [int(m.group(1)) for n in numbers if (m := _TAIL.search(str(n)))]
    if used:
        nxt = max(used) + 1
        try:
            now = int(float(current.get("nextinvoicenumber")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            now = None
        if now is None or nxt > now:
            out["NextInvoiceNumber"] = nxt
    now_p = Period.key(current.get("billingperiod"))
    if not re.fullmatch(r"\d{4}-\d{2}", now_p) or now_p <= str(period):
        out["BillingPeriod"] = str(period.next())
    return out


def settings_edit(settings_t: RawTable, values: Mapping[str, Any]) -> TableEdit:
    """Set Settings values by name; a setting without a row gets one appended."""
    _require(settings_t, "Settings")
    j = settings_t.col("Value")
    assert j is not None  # _require
    cells: list[tuple[int, int, Any]] = []
    append: list[tuple[Any, ...]] = []
    for name, value in values.items():
        for i, row in enumerate(settings_t.rows):
            if header_key(_text(settings_t.get(row, "Setting"))) == header_key(name):
                cells.append((i, j, value))
                break
        else:
            append.append(settings_t.make({"Setting": name, "Value": value}))
    return TableEdit(settings_t.name, cells=tuple(cells), append=tuple(append))


def _cents(v: Any) -> int | None:
    try:
        return int((to_decimal(v) * 100).quantize(Decimal(1), ROUND_HALF_UP))
    except (ValueError, ArithmeticError):
        return None


def draft_differences(invoices_t: RawTable, lines_t: RawTable, invoices: Sequence[Invoice],
                      period: Period) -> list[str]:
    """How ``period``'s Draft rows differ from ``invoices`` (the workbook priced now): numbers, clients,
    totals and line amounts. Empty when the drafts are what the workbook gives today."""
    drafts: dict[str, tuple[str, int | None]] = {}
    for i in replaced_drafts(invoices_t, period):
        row = invoices_t.rows[i]
        drafts[_text(invoices_t.get(row, "InvoiceNo"))] = (_text(invoices_t.get(row, "Client")),
                                                           _cents(invoices_t.get(row, "Total")))
    amounts: dict[str, list[int | None]] = {}
    for row in lines_t.rows:
        if not is_blank(row):
            amounts.setdefault(_text(lines_t.get(row, "InvoiceNo")), []).append(_cents(lines_t.get(row, "Amount")))
    out: list[str] = []
    fresh = {inv.number: inv for inv in invoices}
    for number, (client, total) in drafts.items():
        inv = fresh.get(number)
        if inv is None:
            out.append(f"{number} ({client}): the workbook no longer gives this invoice")
        elif inv.client.name != client:
            out.append(f"{number}: drafted for {client}, the workbook now gives it to {inv.client.name}")
        elif total != inv.total_cents:
            shown = "blank" if total is None else fmt_money(total)
            out.append(f"{number} ({client}): draft total {shown}, the workbook now gives {fmt_money(inv.total_cents)}")
        elif amounts.get(number, []) != [ln.amount_cents for ln in inv.lines]:
            out.append(f"{number} ({client}): the draft's lines differ from what the workbook now gives")
    out += [f"{inv.number} ({inv.client.name}): new since the drafts were made" for inv in invoices
            if inv.number not in drafts]
    return out


# --------------------------------------------------------------------------
# The file writer (openpyxl)


