"""Printable sheets as plain data (cells, styles, page setup): one invoice layout for every writer.

``invoice_layout`` is drawn by XlsxWriter into invoices.xlsx (the CLI) and by the
live-workbook adapter into Excel (the ribbon), so both print the same invoice.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perseat_addin.engine.invoicing import Run
from perseat_addin.model import TOTALS, DocKind, Invoice
from perseat_addin.outputs.logo import Logo

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
class Picture:
    """An image placed with its top-left corner at cell (row, col), ``offset`` points in from it, printed
    ``width`` × ``height`` points (``scale`` of its natural size); ``path`` is its file, ``data`` its bytes."""

    row: int
    col: int
    path: str
    data: bytes
    width: float
    height: float
    scale: float = 1.0
    offset: tuple[float, float] = (2.0, 2.0)  # right, down


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
    pictures: tuple[Picture, ...] = ()
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


def wrapped(text: str, width: int) -> list[str]:
    """``text`` as printed lines of at most ``width`` characters: its own line breaks kept, long lines wrapped
    at spaces (one row per line, so nothing depends on a spreadsheet fitting row heights to wrapped text)."""
    out: list[str] = []
    for para in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        out += textwrap.wrap(para, width, break_long_words=True, break_on_hyphens=False) or ([""] if out else [])
    while out and not out[-1]:
        out.pop()
    return out


def _tax_id(text: str) -> str:
    """The tax id as printed: as typed when it names its kind (EIN 47-…, VAT GB…), else after "Tax ID"."""
    return "" if not text else text if re.match(r"[^\W\d_]{2,}\.?[\s:#]", text) else f"Tax ID {text}"


def _terms(days: int) -> str:
    """Payment terms in words: Net N, or due on receipt."""
    return "Due on receipt" if days <= 0 else f"Net {days}"


WIDTHS = ((1, 58), (2, 9), (3, 13), (4, 15))
"""The invoice's four columns: description, quantity, unit price, amount."""

TEXT_CHARS, SIDE_CHARS, FULL_CHARS = 80, 32, 125
"""Characters per printed line (conservatively): columns A:B at 10 pt, C:D at 10 pt, A:D at 9 pt."""

LINE_CHARS = 62
"""Characters of a line's description per printed line in column A (11 pt): its row is that many lines tall."""


def invoice_layout(inv: Invoice, run: Run, name: str, logo: Logo | None = None) -> SheetLayout:
    """One printable invoice or credit note: the MSP block (logo, name, address, phone, e-mail, tax id), the
    document's facts and terms, Bill-To, the lines under headings repeated on every page, the totals, and how
    to pay (PaymentInstructions, RemitTo)."""
    st = run.book.settings
    credit = inv.kind is DocKind.CREDIT
    msp = Style(bold=True, size=14, color=NAVY)
    title = Style(bold=True, size=22, color=NAVY, align="right", valign="top")
    small = Style(size=10, color=GREY)
    label = Style(bold=True, size=9, color=NAVY)
    note = Style(size=9, color=GREY)
    key = Style(bold=True, color=GREY, align="right")
    right = Style(align="right")
    date_r = Style(number_format="mmm d, yyyy", align="right")
    head = Style(bold=True, color="#FFFFFF", fill=NAVY, valign="center")
    head_r = Style(bold=True, color="#FFFFFF", fill=NAVY, align="right", valign="center")
    wrap = Style(wrap=True, valign="top", bottom="thin", border_color=RULE)
    line_qty = Style(number_format="#,##0.####", valign="top", bottom="thin", border_color=RULE)
    line_money = Style(number_format=MONEY, valign="top", bottom="thin", border_color=RULE)
    total_label = Style(bold=True, size=12, align="right", top="medium", bottom="medium")
    total = Style(bold=True, size=12, number_format=f'"{st.currency} "#,##0.00', top="medium", bottom="medium")
    cells: list[Cell] = []
    heights: list[tuple[int, float]] = []

    def put(row: int, col: int, value: Any, style: Style = Style(), to: tuple[int, int] | None = None) -> None:
        cells.append(Cell(row, col, typed(value), style, to))

    def block(row: int, col: int, heading: str, lines: list[str], style: Style = small) -> int:
        """A heading and its lines, a row each, from ``row``; the row after them."""
        put(row, col, heading, label)
        for k, text in enumerate(lines, start=1):
            if text:
                put(row + k, col, text, style)
        return row + 1 + len(lines)

    pictures: tuple[Picture, ...] = ()
    if logo is not None:
        pictures = (Picture(1, 1, logo.path, logo.data, logo.width, logo.height, logo.scale),)
        heights.append((1, logo.height + 6))
    else:
        heights.append((1, 30))
        put(1, 1, st.msp_name or ("Credit note" if credit else "Invoice"), msp)
    put(1, 4, "CREDIT NOTE" if credit else "INVOICE", title)
    ours: list[tuple[str, Style]] = [(st.msp_name, Style(bold=True, size=11, color=NAVY))] if logo and st.msp_name \
        else []
    ours += [(text, small) for text in wrapped(st.msp_address, TEXT_CHARS)]
    ours += [(text, small) for text in (f"Phone {st.phone}" if st.phone else "", st.msp_email,
                                        _tax_id(st.tax_id)) if text]
    days = (inv.due_date - inv.issue_date).days
    facts: list[tuple[str, Any]] = [("Credit note no.", inv.number), ("Issue date", inv.issue_date)] if credit \
        else [("Invoice no.", inv.number), ("Issue date", inv.issue_date), ("Due date", inv.due_date),
              ("Terms", _terms(days))]
    facts.append(("Period", inv.period.label()))
    if credit and inv.corrects:
        facts.append(("Credits invoice", inv.corrects))
    if inv.client.po_number:
        facts.append(("PO number", inv.client.po_number))
    for i, (text, style) in enumerate(ours):
        put(2 + i, 1, text, style)
    for i, (fact, v) in enumerate(facts):
        put(2 + i, 3, fact, key)
        put(2 + i, 4, v, date_r if isinstance(v, dt.date) else right)
    row = 3 + max(len(ours), len(facts))
    bill = [inv.client.name]
    if inv.client.billing_contact:
        bill.append(f"Attn: {inv.client.billing_contact}")
    bill += [text for text in wrapped(inv.client.address, TEXT_CHARS) if text]
    if inv.client.billing_email:
        bill.append(inv.client.billing_email)
    put(row, 1, "CREDIT TO" if credit else "BILL TO", label)
    for k, bill_line in enumerate(bill, start=1):
        put(row + k, 1, bill_line, Style(bold=True) if k == 1 else Style())
    row += len(bill) + 2
    if credit and inv.reason:
        for text in wrapped(f"Reason: {inv.reason}", 92):  # columns A:D at 11 pt bold
            put(row, 1, text, Style(bold=True, color=NAVY))
            row += 1
        row += 1
    heading = row
    put(row, 1, "Description", head)
    for col, text in ((2, "Qty"), (3, "Unit price"), (4, f"Amount ({inv.currency})")):
        put(row, col, text, head_r)
    heights.append((row, 18))
    row += 1
    for ln in inv.lines:
        if ln.kind in TOTALS:
            continue
        put(row, 1, ln.description, wrap)
        put(row, 2, float(ln.quantity), line_qty)
        put(row, 3, float(ln.unit_price), line_money)
        put(row, 4, float(ln.amount), line_money)
        n = len(wrapped(ln.description, LINE_CHARS))
        if n > 1:
            heights.append((row, 15.0 * n + 1))
        row += 1
    row += 1
    totals = [("Subtotal", inv.subtotal_cents)]
    totals += [(ln.description, ln.amount_cents) for ln in inv.lines if ln.kind in TOTALS]
    for text, cents in totals:
        put(row, 1, text, right, to=(row, 3))
        put(row, 4, cents / 100, Style(number_format=MONEY))
        row += 1
    put(row, 1, "Total credited" if credit else "Total due", total_label, to=(row, 3))
    put(row, 4, inv.total_cents / 100, total)
    heights.append((row, 20))
    row += 2
    if not credit and (st.payment_instructions or st.remit_to):
        end = row
        if st.payment_instructions:
            end = block(row, 1, "HOW TO PAY", wrapped(st.payment_instructions, TEXT_CHARS), Style(size=10))
        if st.remit_to:
            end = max(end, block(row, 3, "REMIT PAYMENT TO", wrapped(st.remit_to, SIDE_CHARS), Style(size=10)))
        row = end + 1
    if credit:
        terms = (f"This credit note reduces what you owe on invoice {inv.corrects}; nothing needs to be paid."
                 if inv.corrects else "This credit is carried to your account; nothing needs to be paid.")
    else:
        terms = (f"Payment due by {_long_date(inv.due_date)} ({_terms(days).lower()}). "
                 if days > 0 else f"Payment due on receipt ({_long_date(inv.due_date)}). ")
        terms += f"Please quote {inv.number} with your payment."
    if st.msp_email:
        terms += f" Questions about this {'credit note' if credit else 'invoice'}: {st.msp_email}."
    terms += (" Per-user charges are prorated by day: a user added mid-month is charged from their start date, a "
              "user who leaves is credited from the day after their last day.")
    for text in wrapped(terms, FULL_CHARS):
        put(row, 1, text, note)
        row += 1
    last = row - 1
    what = "Credit note" if credit else "Invoice"
    return SheetLayout(
        name=name, cells=tuple(cells), widths=WIDTHS, heights=tuple(heights),
        print_area=(1, 1, last, 4), paper=_paper(st.currency), pictures=pictures, repeat_rows=(heading, heading),
        footer_left=_footer(st.msp_name), footer_right=f"{what} {_footer(inv.number)} · Page &P of &N")


def _paper(currency: str) -> str:
    return "letter" if currency in ("USD", "CAD") else "a4"


def needs_user_list(inv: Invoice, run: Run) -> bool:
    """Whether ``inv`` carries the user list page: Settings.AttachUserList, or a line that refers to it."""
    if inv.kind is DocKind.CREDIT:
        return False
    return run.book.settings.attach_user_list or any(USER_LIST_WORDS in ln.description.lower() for ln in inv.lines)


USER_LIST_WORDS = "attached user list"
"""What an invoice line says when its joiners or leavers are named on the user list page."""


@dataclass(frozen=True)
class ListedUser:
    """A Roster row as the user list prints it."""

    name: str
    user_id: str
    type: str
    billed: bool
    reason: str


def client_users(run: Run) -> dict[str, list[ListedUser]]:
    """Each client's Roster rows (key: client name, lower case) with why each is, or is not, billed (the
    reasons users.csv gives)."""
    roster = run.book.roster
    if roster is None or not len(roster):
        return {}
    reasons = run.user_reasons()
    out: dict[str, list[ListedUser]] = {}
    for client, user, name, kind, why in zip(roster["client"].astype("str"), roster["user"].astype("str"),
                                             roster["name"].astype("str"), roster["type"].astype("str"),
                                             reasons.astype("str"), strict=True):
        billed = why.startswith(("billable", "billed"))
        out.setdefault(client.strip().lower(), []).append(
            ListedUser("" if name in ("nan", "None") else name, user, "" if kind in ("nan", "None") else kind,
                       billed, why))
    for users in out.values():
        users.sort(key=lambda u: (not u.billed, u.name.lower() or u.user_id.lower()))
    return out


def user_list_layout(inv: Invoice, run: Run, name: str, users: list[ListedUser]) -> SheetLayout:
    """The user list page of ``inv``: every Roster user of its client, billed or not, and why."""
    st = run.book.settings
    cells: list[Cell] = []

    def put(row: int, col: int, value: Any, style: Style = Style(), to: tuple[int, int] | None = None) -> None:
        cells.append(Cell(row, col, typed(value), style, to))

    put(1, 1, f"User list — {inv.client.name}", Style(bold=True, size=14, color=NAVY))
    n_billed = sum(u.billed for u in users)
    put(2, 1, f"Attached to invoice {inv.number}, {inv.period.label()}: {len(users)} user"
        f"{'s' if len(users) != 1 else ''} on record, {n_billed} billed. The reason says why each user is, or is "
        "not, billed.", Style(size=9, color=GREY))
    head = Style(bold=True, color="#FFFFFF", fill=NAVY, size=10, valign="center")
    body = Style(size=9, valign="top", bottom="thin", border_color=RULE)
    body_wrap = Style(size=9, valign="top", wrap=True, bottom="thin", border_color=RULE)
    heading = 4
    for col, text in enumerate(("Name", "UserID", "Type", "Billed", "Reason"), start=1):
        put(heading, col, text, head)
    heights: list[tuple[int, float]] = [(1, 24), (heading, 18)]
    row = heading + 1
    for u in users:
        put(row, 1, u.name, body_wrap)
        put(row, 2, u.user_id, body_wrap)
        put(row, 3, u.type, body)
        put(row, 4, "Yes" if u.billed else "No", body)
        put(row, 5, u.reason, body_wrap)
        n = max(len(wrapped(u.reason, 42)), len(wrapped(u.user_id, 33)), len(wrapped(u.name, 21)), 1)
        heights.append((row, 12.5 * n + 1.5))
        row += 1
    if not users:
        put(row, 1, "No users of this client are on the Roster.", body)
        row += 1
    return SheetLayout(
        name=name, cells=tuple(cells), widths=((1, 18), (2, 27), (3, 10), (4, 6), (5, 34)), heights=tuple(heights),
        print_area=(1, 1, row - 1, 5), paper=_paper(st.currency), repeat_rows=(heading, heading),
        footer_left=_footer(st.msp_name), footer_right=f"User list, invoice {_footer(inv.number)} · Page &P of &N")


class InvoiceDocuments:
    """The printable sheets of a run's documents: each invoice, and its user list page when it carries one.
    The logo is read (and checked) once, the Roster's reasons only when a user list is printed."""

    def __init__(self, run: Run, logo: Logo | None):
        self.run, self.logo = run, logo
        self._users: dict[str, list[ListedUser]] | None = None

    def user_list(self, inv: Invoice) -> bool:
        return needs_user_list(inv, self.run)

    def sheets(self, inv: Invoice, name: str, list_name: str) -> list[SheetLayout]:
        """The invoice's sheet ``name`` and, when it carries one, its user list sheet ``list_name``."""
        out = [invoice_layout(inv, self.run, name, self.logo)]
        if self.user_list(inv):
            if self._users is None:
                self._users = client_users(self.run)
            out.append(user_list_layout(inv, self.run, list_name, self._users.get(inv.client.name.lower(), [])))
        return out


def user_list_name(number: str) -> str:
    """The user list sheet's name for invoice ``number`` (before :func:`invoice_sheet_names` makes it unique)."""
    return f"{number[:24]} users"


# --------------------------------------------------------------------------
# Reading the open workbook
