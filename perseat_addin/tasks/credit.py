"""Credit notes (SPEC §4, §6–7): one task for ``perseat credit`` and the ribbon's *Credit note* button.

A credit note is recorded at once (Status Final, Kind Credit, Corrects = the invoice), numbered
CreditPrefix + NextInvoiceNumber — the same counter as invoices, so no two documents ever share a
number — and NextInvoiceNumber moves on by one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal

from perseat_addin.engine.invoicing import Run
from perseat_addin.engine.ledger import (
    credit_edits,
    credit_note,
    credited_cents,
    is_draft,
    recorded_documents,
    settings_edit,
)
from perseat_addin.errors import PerseatError
from perseat_addin.model import Book, Invoice
from perseat_addin.money import Cents, fmt_money, to_decimal
from perseat_addin.outputs.publish import output_dir
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.invoice import invoice_sheets, write_invoices
from perseat_addin.tasks.livebook import PREFIX, ExcelBook, LiveBook, Outcome, capped
from perseat_addin.tasks.port import BookPort, require, validated


def amount_cents(text: str) -> Cents:
    """``--amount`` text (``120``, ``120.50``, ``1,200.00``) as cents; ValueError in words."""
    try:
        d = to_decimal(text.replace(",", "").strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an amount (type e.g. 120.50)") from None
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"{text} has more than two decimals")
    return Cents(int(d * 100))


def plan_credit(book: BookPort, invoice_no: str, reason: str, *, lines: Sequence[int] = (),
                amount: Cents | None = None, today: dt.date | None = None) -> tuple[Book, Invoice, list[TableEdit]]:
    """The credit note against recorded invoice ``invoice_no`` and the edits that record it; refuses (with
    what to do) for an unknown or Draft invoice, a credit note, too large a credit or bad line numbers."""
    if not reason.strip():
        raise PerseatError("give the reason for the credit (--reason): it is printed on the credit note")
    loaded, _ = validated(book)
    inv_t, lines_t, settings_t = (require(book, n) for n in ("Invoices", "InvoiceLines", "Settings"))
    match = [r for r in inv_t.rows if str(inv_t.get(r, "InvoiceNo") or "").strip().lower() == invoice_no.lower()]
    if not match:
        raise PerseatError(f"there is no invoice {invoice_no} in the Invoices table; check the number (the "
                           "InvoiceNo column)")
    if all(is_draft(inv_t, r) for r in match):
        raise PerseatError(f"{invoice_no} is a Draft: change the workbook and generate the drafts again (a draft "
                           "is not a document yet; only recorded invoices are credited)")
    clients = {c.name.lower(): c for c in loaded.clients}
    [original] = recorded_documents(inv_t, lines_t, [invoice_no], clients, loaded.settings.currency)[:1]
    st = loaded.settings
    note = credit_note(original, f"{st.credit_prefix}{st.next_invoice_number}", today or dt.date.today(),
                       reason.strip(), lines=lines, amount_cents=amount,
                       already_cents=credited_cents(inv_t, original.number), rounding=st.rounding)
    edits = [*credit_edits(inv_t, lines_t, note),
             settings_edit(settings_t, {"NextInvoiceNumber": st.next_invoice_number + 1})]
    return loaded, note, edits


def parse_choice(text: str) -> tuple[list[int], Cents | None]:
    """What the ribbon's first question answers: ``all`` (or blank) for the whole invoice, line numbers
    (``1 3``, ``1,3``), or an amount before tax (``120.50``). ValueError in words."""
    t = text.strip().lower()
    if t in ("", "all"):
        return [], None
    if "." in t or "$" in t:
        return [], amount_cents(t.lstrip("$"))
    parts = [p for p in re.split(r"[\s,;]+", t) if p]
    if all(p.isdigit() for p in parts):
        if len(parts) == 1:
            raise ValueError(f"{text!r} could be line {parts[0]} or an amount of {parts[0]}: type 'line {parts[0]}' "
                             f"or {parts[0]}.00")
        return [int(p) for p in parts], None
    if parts and parts[0] in ("line", "lines") and all(p.isdigit() for p in parts[1:]) and parts[1:]:
        return [int(p) for p in parts[1:]], None
    raise ValueError(f"{text!r} is not ALL, line numbers (line 1 3) or an amount (120.50)")


def credit_note_button(live: LiveBook) -> Outcome:
    """Credit note: for the selected Invoices row — the whole invoice, chosen lines or an amount, with a reason;
    previewed, then recorded at once (sheet, PDF and accounting files in OutputFolder), and the workbook saved."""
    port = ExcelBook(live)
    inv_t = require(port, "Invoices")
    at = live.selected_row()
    ref = live.table(inv_t.name)
    i = -1 if at is None or ref is None or at[0].lower() != ref.sheet.lower() else at[1] - ref.header_row - 1
    if not 0 <= i < len(inv_t.rows) or not str(inv_t.get(inv_t.rows[i], "InvoiceNo") or "").strip():
        return Outcome("Select the row of the invoice to credit in the Invoices table, then press Credit note.",
                       ok=False)
    number = str(inv_t.get(inv_t.rows[i], "InvoiceNo")).strip()
    title = f"{PREFIX}: Credit note"
    answer = live.ask(f"Credit {number}: type ALL for the whole invoice, line numbers such as 'line 1 3' (the "
                      "Line column of InvoiceLines), or an amount before tax such as 120.50.", title, "ALL")
    if answer is None:
        return Outcome("No credit note was issued.", ok=False)
    try:
        lines, amount = parse_choice(answer)
    except ValueError as exc:
        return Outcome(f"No credit note was issued: {exc}.", ok=False)
    reason = live.ask(f"Why is {number} credited? (printed on the credit note)", title, "")
    if not reason or not reason.strip():
        return Outcome("No credit note was issued: a credit note needs a reason.", ok=False)
    loaded, note, edits = plan_credit(port, number, reason, lines=lines, amount=amount)
    port.check(edits)
    preview = "\n".join([f"Record credit note {note.number} for {note.client.name} on {number}: "
                         f"{loaded.settings.currency} {fmt_money(-note.total_cents)}?", "",
                         *capped([f"  {ln.description}: {fmt_money(ln.amount_cents)}" for ln in note.lines]), "",
                         "It is recorded at once, as Final, and the workbook is saved."])
    if not live.confirm(preview, title):
        return Outcome("No credit note was issued.", ok=False)
    run = Run(loaded, note.period, [note], [])
    out_dir = output_dir(live.fullname, loaded.settings.output_folder, note.period) / note.file_stem
    names, stale = invoice_sheets(live, port.tables, run, [])
    written = write_invoices(live, run, names, stale, {note.number: f"{note.file_stem}.pdf"}, out_dir,
                             lambda: port.write(edits), credits_only=True)
    live.status(f"{PREFIX}: saving the workbook…")
    try:
        live.save()
    except Exception as exc:  # Excel's own save failed (read-only copy, file locked, disk full)
        return Outcome(f"Credit note {note.number} is recorded in the open workbook, but it could not be saved "
                       f"({exc}). Save it now so the credit note is kept.", ok=False)
    return Outcome(f"Credit note {note.number} ({fmt_money(-note.total_cents)}) is recorded for {number}; its sheet "
                   f"{names[note.number]} is in this workbook and the PDF and {', '.join(sorted(written))} are in "
                   f"{out_dir}. The workbook was saved.")


__all__ = ["amount_cents", "credit_note_button", "parse_choice", "plan_credit"]
