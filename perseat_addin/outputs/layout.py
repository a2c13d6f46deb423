"""Printable sheets as plain data (cells, styles, page setup): one invoice layout for every writer.

``invoice_layout`` is drawn by XlsxWriter into invoices.xlsx (the CLI) and by the
live-workbook adapter into Excel (the ribbon), so both print the same invoice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perseat_addin.engine.invoicing import Run
from perseat_addin.model import TOTALS, DocKind, Invoice

# --------------------------------------------------------------------------
# Values as Excel reads typed input

_COERCIBLE = re.compile(r"^[=+\-@'#]|\d|^\s*(true|false)\s*$", re.IGNORECASE)


def typed(value: Any) -> Any:
    """``value`` as it must be entered so that Excel keeps it: text that Excel would turn into a number,
    date, boolean, error or formula gets an apostrophe; Decimals become floats; dates datetimes."""
    if isinstance(value, str):
        return "'" + value if value and _COERCIBLE.search(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


@dataclass(frozen=True)
class Style:
    """The few cell formats an invoice uses. Colours are '#RRGGBB'; borders 'thin' or 'medium'."""

    bold: bool = False
    size: float | None = None
    color: str | None = None
    fill: str | None = None
    number_format: str | None = None
    align: str | None = None  # left | center | right
    valign: str | None = None  # top | center | bottom
    wrap: bool = False
    top: str | None = None
    bottom: str | None = None
    border_color: str | None = None


@dataclass(frozen=True)
class Cell:
    """A value at (row, col), 1-based, entered as typed; ``to`` merges it down/right to that cell."""

    row: int
    col: int
    value: Any
    style: Style = Style()
    to: tuple[int, int] | None = None


Block = tuple[int, int, int, int]
"""Cells of the same sheet: first row, first col, last row, last col (1-based, inclusive)."""


@dataclass(frozen=True)
class Series:
    """One chart series: ``values`` against ``categories`` (x values on a scatter chart)."""

    name: str
    categories: Block
    values: Block
    kind: str | None = None  # draw this series as another kind (e.g. "line" on a column chart)
    secondary: bool = False  # on the secondary value axis
    labels: Block | None = None  # cells whose text labels each point (a scatter's client names)
    color: str | None = None


@dataclass(frozen=True)
class Chart:
    """A native Excel chart: column, line or scatter, placed with its top-left corner at ``anchor``."""

    kind: str  # column | line | scatter
    title: str
    anchor: tuple[int, int]
    series: tuple[Series, ...]
    x_title: str = ""
    y_title: str = ""
    y2_title: str = ""
    size: tuple[int, int] = (560, 300)  # width, height in pixels
    y_format: str = "General"


@dataclass(frozen=True)
class SheetLayout:
    """A printable sheet: cells, column widths, row heights and page setup (margins in inches)."""

    name: str
    cells: tuple[Cell, ...]
    widths: tuple[tuple[int, float], ...] = ()
    heights: tuple[tuple[int, float], ...] = ()
    print_area: tuple[int, int, int, int] = (1, 1, 1, 1)  # first row, first col, last row, last col
    paper: str = "letter"  # letter | a4
    margins: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 0.7)  # left, right, top, bottom
    fit_width: int = 1  # pages wide; tall is free; 0: printed at 100 %, split across pages (never shrunk)
    footer_left: str = ""  # Excel header/footer codes (&P page, &N pages, && a literal &)
    footer_right: str = ""
    footer_size: int = 8
    gridlines: bool = False
    landscape: bool = False
    charts: tuple[Chart, ...] = ()
    freeze: tuple[int, int] | None = None  # rows, columns kept in view
    repeat_rows: tuple[int, int] | None = None  # first, last row printed at the top of every page from there on
    row_breaks: tuple[int, ...] = ()  # a new page starts at each of these rows
    column_breaks: tuple[int, ...] = ()  # a new page starts at each of these columns

    def value(self, row: int, col: int) -> Any:
        for c in self.cells:
            if (c.row, c.col) == (row, col):
                return c.value
        return None


NAVY, GREY, RULE = "#1F3864", "#555555", "#D9D9D9"
MONEY = "#,##0.00;[Red]-#,##0.00"


def _long_date(d: dt.date) -> str:
    return f"{d:%B} {d.day}, {d.year}"  # not %-d: Windows' strftime has no '-' flag


def _footer(text: str) -> str:
    return text.replace("&", "&&")


def invoice_sheet_names(numbers: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """A valid, unique Excel sheet name for each invoice number (≤ 31 characters, no []:*?/\\)."""
    used = {t.lower() for t in taken}
    out: dict[str, str] = {}
    for number in numbers:
        base = re.sub(r"[\[\]:*?/\\]", "_", number).strip("'")[:31] or "Invoice"
        name, k = base, 2
        while name.lower() in used:
            name = f"{base[:27]}~{k}"
            k += 1
        used.add(name.lower())
        out[number] = name
    return out


def invoice_layout(inv: Invoice, run: Run, name: str) -> SheetLayout:
    """One printable invoice on one page: the same facts, lines and totals as ``invoices.xlsx``."""
    st = run.book.settings
    msp = Style(bold=True, size=14, color=NAVY)
    title = Style(bold=True, size=22, color=NAVY, align="right")
    small = Style(size=9, color=GREY)
    small_wrap = Style(size=9, color=GREY, wrap=True, valign="top")
    key = Style(bold=True, color=GREY, align="right")
    right = Style(align="right")
    date_r = Style(number_format="mmm d, yyyy", align="right")
    head = Style(bold=True, color="#FFFFFF", fill=NAVY)
    head_r = Style(bold=True, color="#FFFFFF", fill=NAVY, align="right")
    wrap = Style(wrap=True, valign="top", bottom="thin", border_color=RULE)
    line_qty = Style(number_format="#,##0.##", valign="top", bottom="thin", border_color=RULE)
    line_money = Style(number_format=MONEY, valign="top", bottom="thin", border_color=RULE)
    total_label = Style(bold=True, size=12, align="right", top="medium", bottom="medium")
    total = Style(bold=True, size=12, number_format=f'"{st.currency} "#,##0.00', top="medium", bottom="medium")
    cells: list[Cell] = []
    heights: list[tuple[int, float]] = [(1, 30)]

    def put(row: int, col: int, value: Any, style: Style = Style(), to: tuple[int, int] | None = None) -> None:
        cells.append(Cell(row, col, typed(value), style, to))

    credit = inv.kind is DocKind.CREDIT
    put(1, 1, st.msp_name or ("Credit note" if credit else "Invoice"), msp)
    put(1, 4, "CREDIT NOTE" if credit else "INVOICE", title)
    for i, text in enumerate([st.msp_address, st.msp_email]):
        if text:
            put(2 + i, 1, text, small)
    facts: list[tuple[str, Any]] = [("Credit note no.", inv.number), ("Issue date", inv.issue_date)] if credit \
        else [("Invoice no.", inv.number), ("Issue date", inv.issue_date), ("Due date", inv.due_date)]
    facts.append(("Period", inv.period.label()))
    if credit and inv.corrects:
        facts.append(("Credits invoice", inv.corrects))
    if inv.client.po_number:
        facts.append(("PO number", inv.client.po_number))
    for i, (k, v) in enumerate(facts):
        put(2 + i, 3, k, key)
        put(2 + i, 4, v, date_r if isinstance(v, dt.date) else right)
    row = 3 + max(len(facts), 3)
    put(row, 1, "BILL TO", small)
    put(row + 1, 1, inv.client.name, Style(bold=True))
    row += 2
    for text in [inv.client.billing_contact, inv.client.address, inv.client.billing_email]:
        if text:
            put(row, 1, text)
            row += 1
    row += 1
    put(row, 1, "Description", head)
    for col, text in ((2, "Qty"), (3, "Unit price"), (4, f"Amount ({inv.currency})")):
        put(row, col, text, head_r)
    row += 1
    for ln in inv.lines:
        if ln.kind in TOTALS:
            continue
        put(row, 1, ln.description, wrap)
        put(row, 2, float(ln.quantity), line_qty)
        put(row, 3, float(ln.unit_price), line_money)
        put(row, 4, float(ln.amount), line_money)
        if len(ln.description) > 62:
            heights.append((row, 30))
        row += 1
    row += 1
    totals = [("Subtotal", inv.subtotal_cents)]
    totals += [(ln.description, ln.amount_cents) for ln in inv.lines if ln.kind in TOTALS]
    for label, cents in totals:
        put(row, 1, label, right, to=(row, 3))
        put(row, 4, cents / 100, Style(number_format=MONEY))
        row += 1
    put(row, 1, "Total credited" if credit else "Total due", total_label, to=(row, 3))
    put(row, 4, inv.total_cents / 100, total)
    row += 3
    if credit:
        terms = (f"Reason: {inv.reason}. " if inv.reason else "") + (
            f"This credit note reduces what you owe on invoice {inv.corrects}; nothing needs to be paid."
            if inv.corrects else "This credit is carried to your account; nothing needs to be paid.")
    else:
        days = (inv.due_date - inv.issue_date).days
        terms = (f"Payment due by {_long_date(inv.due_date)} ({days} days). "
                 f"Please quote {inv.number} with your payment.")
    if st.msp_email:
        terms += f" Questions about this {'credit note' if credit else 'invoice'}: {st.msp_email}."
    put(row, 1, terms, small_wrap, to=(row + 1, 4))
    put(row + 2, 1, "Per-user charges are prorated by day: a user added mid-month is charged from their start "
        "date, a user who leaves is credited from the day after their last day.", small_wrap, to=(row + 3, 4))
    return SheetLayout(
        name=name, cells=tuple(cells), widths=((1, 58), (2, 9), (3, 13), (4, 15)), heights=tuple(heights),
        print_area=(1, 1, row + 3, 4), paper="letter" if st.currency in ("USD", "CAD") else "a4",
        footer_left=_footer(st.msp_name), footer_right=f"{_footer(inv.number)} · page &P of &N")


# --------------------------------------------------------------------------
# Reading the open workbook
