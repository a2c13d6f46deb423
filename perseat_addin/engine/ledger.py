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
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from perseat_addin.cells import to_date
from perseat_addin.errors import FinalizedError, PerseatError, Problem
from perseat_addin.model import TOTALS, Client, DocKind, Invoice, Line, LineKind, Period, fitted
from perseat_addin.money import Cents, Rounding, cents_to_decimal, fmt_money, round_div, to_decimal
from perseat_addin.tables import RawTable, TableEdit, header_key, is_blank

INVOICE_COLUMNS = ("InvoiceNo", "Kind", "Corrects", "Client", "Period", "IssueDate", "DueDate", "Subtotal",
                   "Discount", "Tax", "Total", "Status", "File", "Seats", "Reason")
LINE_COLUMNS = ("InvoiceNo", "Line", "Kind", "Description", "Quantity", "UnitPrice", "Amount", "Taxable")
REQUIRED = {"Invoices": ("InvoiceNo", "Client", "Period", "Status"), "InvoiceLines": ("InvoiceNo", "Amount"),
            "Settings": ("Setting", "Value")}
"""Columns a table must have before the program writes to it."""
ADDED = {"Invoices": ("Kind", "Corrects", "Seats", "Reason"),
         "InvoiceLines": ("Kind", "Description", "Quantity", "UnitPrice", "Taxable")}
"""Columns the program adds the first time it records into a table made before them (SPEC §3)."""

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


def is_draft(t: RawTable, row: Sequence[Any]) -> bool:
    """A Draft row: the only kind the program may rewrite or delete."""
    return _status(t, row) == "draft"


def is_recorded(t: RawTable, row: Sequence[Any]) -> bool:
    """A recorded document (SPEC §3): a non-blank row whose Status is anything but Draft — Final, Sent,
    Paid, Void, any word staff type, or blank."""
    return not is_blank(row) and not is_draft(t, row)


def doc_kind(t: RawTable, row: Sequence[Any]) -> DocKind:
    """The row's Kind (a workbook made before the column: every row is an invoice)."""
    return DocKind.CREDIT if _text(t.get(row, "Kind")).lower() == "credit" else DocKind.INVOICE


def period_documents(invoices: RawTable, period: Period) -> list[str]:
    """Numbers of ``period``'s recorded documents (its invoices and the credit notes a negative month
    gave; not the credit notes issued later against one invoice)."""
    p = str(period)
    return [_text(invoices.get(r, "InvoiceNo")) for r in invoices.rows
            if is_recorded(invoices, r) and Period.key(invoices.get(r, "Period")) == p
            and not _text(invoices.get(r, "Corrects"))]


def recorded_periods(invoices: RawTable) -> list[str]:
    """Every period with a recorded document, sorted (YYYY-MM)."""
    return sorted({Period.key(invoices.get(r, "Period")) for r in invoices.rows if is_recorded(invoices, r)}
                  - {""})


# --------------------------------------------------------------------------
# Reading recorded documents back


def _kind_of_line(text: str) -> LineKind:
    try:
        return LineKind(text.strip().lower())
    except ValueError:
        return LineKind.ADDON  # a kind this version does not know: an ordinary charge


def _decimal(v: Any) -> Decimal:
    try:
        return to_decimal(v) if v is not None and _text(v) else Decimal(0)
    except (ValueError, ArithmeticError):
        return Decimal(0)


def recorded_documents(invoices: RawTable, lines: RawTable, numbers: Sequence[str], clients: Mapping[str, Client],
                       currency: str) -> list[Invoice]:
    """The recorded documents ``numbers`` as they were recorded: header cells from Invoices, every line from
    InvoiceLines (in table order). Raises :class:`PerseatError` naming the row when a document's Total is
    not the sum of its lines (the ledger was edited by hand)."""
    wanted = {n.lower() for n in numbers}
    by_number: dict[str, list[Line]] = {}
    for row in lines.rows:
        number = _text(lines.get(row, "InvoiceNo")).lower()
        if number not in wanted or is_blank(row):
            continue
        taxable = _text(lines.get(row, "Taxable")).lower()
        kind = _kind_of_line(_text(lines.get(row, "Kind")))
        by_number.setdefault(number, []).append(Line(
            kind, _text(lines.get(row, "Description")), _decimal(lines.get(row, "Quantity")),
            _decimal(lines.get(row, "UnitPrice")), Cents(_cents(lines.get(row, "Amount")) or 0),
            taxable in ("yes", "true", "1") if taxable else kind not in (LineKind.DISCOUNT, LineKind.TAX)))
    out: list[Invoice] = []
    for i, row in enumerate(invoices.rows):
        number = _text(invoices.get(row, "InvoiceNo"))
        if number.lower() not in wanted or not is_recorded(invoices, row):
            continue
        name = _text(invoices.get(row, "Client"))
        client = clients.get(name.lower()) or Client(name, "", 0, billing_contact="")
        period = Period.parse(Period.key(invoices.get(row, "Period")))
        issue = _date(invoices.get(row, "IssueDate")) or period.next().first
        doc = Invoice(number, client, period, issue, _date(invoices.get(row, "DueDate")) or issue, currency,
                      tuple(by_number.get(number.lower(), ())), status=_text(invoices.get(row, "Status")),
                      seats=int(_decimal(invoices.get(row, "Seats"))), kind=doc_kind(invoices, row),
                      corrects=_text(invoices.get(row, "Corrects")), reason=_text(invoices.get(row, "Reason")))
        total = _cents(invoices.get(row, "Total"))
        if total is not None and total != doc.total_cents:
            raise PerseatError(
                f"Invoices row {invoices.first_row + i}: {number}'s Total {fmt_money(total)} is not the sum of its "
                f"{len(doc.lines)} InvoiceLines rows ({fmt_money(doc.total_cents)}); a recorded document was edited "
                "by hand. Restore its rows as recorded (File ▸ Info ▸ Version History), then try again")
        out.append(doc)
    return out


def _date(v: Any) -> dt.date | None:
    try:
        return to_date(v)
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Credit notes


def credited_cents(invoices: RawTable, number: str) -> int:
    """What recorded credit notes have already given back on invoice ``number`` (a positive amount)."""
    out = 0
    for row in invoices.rows:
        if is_recorded(invoices, row) and doc_kind(invoices, row) is DocKind.CREDIT \
                and _text(invoices.get(row, "Corrects")).lower() == number.lower():
            out -= _cents(invoices.get(row, "Total")) or 0
    return out


def _share(total: int, part: int, whole: int, rounding: Rounding) -> int:
    """``total × part / whole`` in cents, rounded once, by magnitude (a credit never rounds up by sign)."""
    if not whole:
        return 0
    sign = -1 if (total < 0) != (part * whole < 0) else 1
    return sign * round_div(abs(total * part), abs(whole), rounding)


def credit_note(original: Invoice, number: str, issue: dt.date, reason: str, *, lines: Sequence[int] = (),
                amount_cents: int | None = None, already_cents: int = 0,
                rounding: Rounding = Rounding.HALF_UP) -> Invoice:
    """A credit note against recorded invoice ``original`` (SPEC §4): all of it (no ``lines``, no amount),
    chosen lines by their Line number (with their share of the discount and tax), or ``amount_cents`` before
    tax (taxed at the invoice's own effective rate). Its lines are negative; it never gives back more than
    the invoice's remaining balance (``original`` total − ``already_cents`` credited before)."""
    if original.kind is DocKind.CREDIT:
        raise PerseatError(f"{original.number} is a credit note itself; credit the invoice it corrects "
                           f"({original.corrects or 'see its Corrects column'}) instead")
    if original.status.lower() == "void":
        raise PerseatError(f"{original.number} is Void: there is nothing to credit")
    remaining = original.total_cents - already_cents
    charges = [(k, ln) for k, ln in enumerate(original.lines, start=1) if ln.kind not in TOTALS]
    subtotal = sum(ln.amount_cents for _, ln in charges)
    taxable = sum(ln.amount_cents for _, ln in charges if ln.taxable)
    tag = f"Credit for {original.number}"
    new: list[Line] = []
    if amount_cents is None and not lines:
        if already_cents:
            raise PerseatError(f"{original.number} is already partly credited ({fmt_money(already_cents)} of "
                               f"{fmt_money(original.total_cents)}); credit the rest with --amount or --line")
        new = [replace(ln, kind=ln.kind if ln.kind in TOTALS else LineKind.CREDIT,
                       description=f"{tag}: {ln.description}", quantity=-ln.quantity,
                       amount_cents=Cents(-ln.amount_cents)) for ln in original.lines]
    else:
        if lines:
            by_number = dict(charges)
            bad = [n for n in lines if n not in by_number]
            if bad:
                raise PerseatError(f"{original.number} has no charge line {bad[0]}: its lines are "
                                   f"{', '.join(str(k) for k, _ in charges)} (discount and tax lines follow "
                                   "the lines credited)")
            chosen = [by_number[n] for n in dict.fromkeys(lines)]
            new = [replace(ln, kind=LineKind.CREDIT, description=f"{tag} line {n}: {ln.description}",
                           quantity=-ln.quantity, amount_cents=Cents(-ln.amount_cents))
                   for n, ln in zip(dict.fromkeys(lines), chosen, strict=True)]
            part: int = sum(ln.amount_cents for ln in chosen)
            part_taxable: int = sum(ln.amount_cents for ln in chosen if ln.taxable)
        else:
            assert amount_cents is not None
            if amount_cents <= 0:
                raise PerseatError("--amount must be more than 0 (the amount to give back, before tax)")
            is_taxed = bool(original.tax_cents and taxable)
            new = [Line(LineKind.CREDIT, f"{tag}: {reason}", Decimal(-1), cents_to_decimal(amount_cents),
                        Cents(-amount_cents), is_taxed)]
            # an amount is not discounted again: its tax follows the invoice's rate on its discounted base
            part = 0
            part_taxable = _share(amount_cents, subtotal, subtotal + original.discount_cents, rounding) \
                if is_taxed else 0
        discount = _share(original.discount_cents, part, subtotal, rounding)
        if discount:
            new.append(Line(LineKind.DISCOUNT, f"{tag}: its share of the discount", Decimal(1),
                            cents_to_decimal(-discount), Cents(-discount), False))
        tax = _share(original.tax_cents, part_taxable, taxable, rounding)
        if tax:
            new.append(Line(LineKind.TAX, f"{tag}: its share of the tax", Decimal(1), cents_to_decimal(-tax),
                            Cents(-tax), False))
    # a line recorded before quantities multiplied out gets its quantity solved here (the amount stays)
    doc = Invoice(number, original.client, original.period, issue, issue, original.currency,
                  tuple(fitted(ln) for ln in new), status="Final", kind=DocKind.CREDIT, corrects=original.number,
                  reason=reason)
    if -doc.total_cents > remaining:
        raise PerseatError(f"a credit of {fmt_money(-doc.total_cents)} is more than what is left of "
                           f"{original.number} ({fmt_money(remaining)} of {fmt_money(original.total_cents)}"
                           f"{', after earlier credit notes' if already_cents else ''}); credit less")
    if doc.total_cents >= 0:
        raise PerseatError(f"nothing to credit on {original.number} with these lines")
    return doc


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
        "InvoiceNo": inv.number, "Kind": str(inv.kind), "Corrects": inv.corrects or None,
        "Client": inv.client.name, "Period": str(inv.period),
        "IssueDate": _excel_datetime(inv.issue_date), "DueDate": _excel_datetime(inv.due_date),
        "Subtotal": float(cents_to_decimal(inv.subtotal_cents)),
        "Discount": float(cents_to_decimal(inv.discount_cents)),
        "Tax": float(cents_to_decimal(inv.tax_cents)), "Total": float(cents_to_decimal(inv.total_cents)),
        "Status": status, "File": file, "Seats": inv.seats if inv.kind is DocKind.INVOICE else None,
        "Reason": inv.reason or None,
    })


def line_rows(t: RawTable, inv: Invoice) -> list[tuple[Any, ...]]:
    """The InvoiceLines rows of one invoice, numbered from 1."""
    return [t.make({"InvoiceNo": inv.number, "Line": k, "Kind": str(ln.kind), "Description": ln.description,
                    "Quantity": float(ln.quantity), "UnitPrice": float(ln.unit_price),
                    "Amount": float(ln.amount), "Taxable": "Yes" if ln.taxable else "No"})
            for k, ln in enumerate(inv.lines, start=1)]


def replaced_drafts(invoices: RawTable, period: Period) -> list[int]:
    """Indexes of ``period``'s Draft rows (what recording the period replaces)."""
    p = str(period)
    return [i for i, row in enumerate(invoices.rows)
            if is_draft(invoices, row) and Period.key(invoices.get(row, "Period")) == p]


def widened(t: RawTable, kind: str) -> tuple[RawTable, tuple[str, ...]]:
    """The table with the columns the program writes (those it lacks added at the right end), and those."""
    add = tuple(t.missing(ADDED.get(kind, ())))
    return t.with_columns(add), add


def _last_recorded(t: RawTable, numbers: set[str] | None = None) -> int:
    """Index of the last row that must never move: a recorded document (or, for lines, a line of one of
    ``numbers``); -1 when none."""
    last = -1
    for i, row in enumerate(t.rows):
        if numbers is None:
            keep = is_recorded(t, row)
        else:
            keep = not is_blank(row) and _text(t.get(row, "InvoiceNo")).lower() in numbers
        if keep:
            last = i
    return last


def replace_rows(t: RawTable, add: tuple[str, ...], positions: Sequence[int], new: Sequence[tuple[Any, ...]],
                 fixed_until: int) -> TableEdit:
    """Put ``new`` rows where the rows at ``positions`` were: in place first (so rows below never move),
    the rest appended; surplus old rows and blank rows below ``fixed_until`` deleted."""
    spots = sorted(set(positions))
    blank = [i for i in range(fixed_until + 1, len(t.rows)) if is_blank(t.rows[i]) and i not in spots]
    spots = sorted(set(spots) | set(blank))
    cells: list[tuple[int, int, Any]] = []
    for i, row in zip(spots, new, strict=False):
        old = t.rows[i]
        for j, v in enumerate(row):
            if v is not None or (j < len(old) and old[j] is not None and t.headers[j] in _OWNED):
                cells.append((i, j, v))
    surplus = spots[len(new):]
    moved = [i for i in surplus if i <= fixed_until]
    if moved:
        # a draft above a recorded row: blank it in place rather than move the recorded rows up
        cells += [(i, j, None) for i in moved for j, h in enumerate(t.headers) if h in _OWNED]
        surplus = [i for i in surplus if i > fixed_until]
    return TableEdit(t.name, cells=tuple(cells), delete=tuple(surplus), append=tuple(new[len(spots):]),
                     add_columns=add)


_OWNED = frozenset(INVOICE_COLUMNS) | frozenset(LINE_COLUMNS)
"""Columns the program writes (an in-place row's other columns are the user's and stay)."""


def record_edits(invoices_t: RawTable, lines_t: RawTable, invoices: Sequence[Invoice], period: Period, *,
                 final: bool = False, files: Mapping[str, str] | None = None) -> tuple[TableEdit, TableEdit]:
    """Edits that replace ``period``'s Draft invoices (and their lines) with ``invoices``.

    Recorded rows (any Status but Draft) are never changed or moved: a period that already has recorded
    documents raises :class:`FinalizedError`; a new number already used by a row that stays raises
    :class:`PerseatError`. New rows take the drafts' places first, so nothing below them moves.
    """
    _require(invoices_t, "Invoices")
    _require(lines_t, "InvoiceLines")
    inv_w, inv_add = widened(invoices_t, "Invoices")
    lines_w, lines_add = widened(lines_t, "InvoiceLines")
    recorded = period_documents(inv_w, period)
    if recorded and invoices:
        shown = ", ".join(recorded[:3]) + (" …" if len(recorded) > 3 else "")
        raise FinalizedError(f"{period.label()} is already recorded ({shown}); recorded documents are never "
                             f"replaced. Re-issue them with perseat invoice --period {period}; a late change is "
                             "billed as a correction on the next invoice, a mistake is corrected with a credit "
                             "note (perseat credit)")
    drafts = replaced_drafts(inv_w, period)
    dropped = {_text(inv_w.get(inv_w.rows[i], "InvoiceNo")).lower() for i in drafts} - {""}
    kept: dict[str, tuple[str, str]] = {}
    for i, row in enumerate(inv_w.rows):
        number = _text(inv_w.get(row, "InvoiceNo"))
        if is_blank(row) or i in drafts or not number:
            continue
        kept[number.lower()] = (_text(inv_w.get(row, "Status")) or "recorded", Period.key(inv_w.get(row, "Period")))
    for inv in invoices:
        if inv.number.lower() in kept:
            status, used_in = kept[inv.number.lower()]
            raise PerseatError(
                f"invoice number {inv.number} is already used by the {status} document for {used_in} in the "
                f"Invoices table; finalize or delete that period's Draft rows, or set NextInvoiceNumber in "
                "Settings above the highest number used")
    dropped -= set(kept)
    status = "Final" if final else "Draft"
    new_invoices = [invoice_row(inv_w, inv, status, (files or {}).get(inv.number, "")) for inv in invoices]
    new_lines = [r for inv in invoices for r in line_rows(lines_w, inv)]
    old_lines = [i for i, row in enumerate(lines_w.rows)
                 if not is_blank(row) and _text(lines_w.get(row, "InvoiceNo")).lower() in dropped]
    return (replace_rows(inv_w, inv_add, drafts, new_invoices, _last_recorded(inv_w)),
            replace_rows(lines_w, lines_add, old_lines, new_lines, _last_recorded(lines_w, set(kept))))


def credit_edits(invoices_t: RawTable, lines_t: RawTable, note: Invoice) -> tuple[TableEdit, TableEdit]:
    """Record credit note ``note`` (Status Final) with its lines. Recorded rows stay where they are; the
    note goes where the first Draft row was and the drafts move down, so recorded documents always come
    before drafts (and replacing drafts later never moves a recorded row)."""
    _require(invoices_t, "Invoices")
    _require(lines_t, "InvoiceLines")
    inv_w, inv_add = widened(invoices_t, "Invoices")
    lines_w, lines_add = widened(lines_t, "InvoiceLines")
    used = {_text(inv_w.get(r, "InvoiceNo")).lower() for r in inv_w.rows if not is_blank(r)}
    if note.number.lower() in used:
        raise PerseatError(f"number {note.number} is already used in the Invoices table; set NextInvoiceNumber in "
                           "Settings above the highest number used, then try again")
    drafts = [i for i, r in enumerate(inv_w.rows) if is_draft(inv_w, r)]
    draft_numbers = {_text(inv_w.get(inv_w.rows[i], "InvoiceNo")).lower() for i in drafts} - {""}
    draft_lines = [i for i, r in enumerate(lines_w.rows)
                   if not is_blank(r) and _text(lines_w.get(r, "InvoiceNo")).lower() in draft_numbers]
    kept = used - draft_numbers
    inv_edit = replace_rows(inv_w, inv_add, drafts,
                            [invoice_row(inv_w, note, "Final"), *(tuple(inv_w.rows[i]) for i in drafts)],
                            _last_recorded(inv_w))
    line_edit = replace_rows(lines_w, lines_add, draft_lines,
                             [*line_rows(lines_w, note), *(tuple(lines_w.rows[i]) for i in draft_lines)],
                             _last_recorded(lines_w, kept))
    return inv_edit, line_edit


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


