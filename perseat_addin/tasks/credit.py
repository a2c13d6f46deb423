"""Credit notes (SPEC §4, §6–7): one task for ``perseat credit`` and the ribbon's *Credit note* button.

A credit note is recorded at once (Status Final, Kind Credit, Corrects = the invoice), numbered
CreditPrefix + NextInvoiceNumber — the same counter as invoices, so no two documents ever share a
number — and NextInvoiceNumber moves on by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

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
from perseat_addin.money import Cents, to_decimal
from perseat_addin.tables import TableEdit
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


__all__ = ["amount_cents", "plan_credit"]
