"""Invoice e-mails (SPEC §6–7 *Send invoices*): one message per recorded document, built with the standard
library's :class:`email.message.EmailMessage` (it refuses line breaks in headers), and ``.eml`` drafts that
Outlook, Apple Mail and Thunderbird open."""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping, Sequence
from email import policy
from email.errors import HeaderDefect, HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from perseat_addin.model import (
    DEFAULT_EMAIL_BODY,
    DEFAULT_EMAIL_SUBJECT,
    EMAIL_PLACEHOLDERS,
    DocKind,
    Invoice,
    Settings,
)
from perseat_addin.money import fmt_money

CREDIT_EMAIL_SUBJECT = "Credit note {invoice} for {period}"
"""A credit note's subject when Settings.EmailSubject is blank."""

CREDIT_EMAIL_BODY = ("Dear {client},\n\nPlease find attached credit note {invoice} for {period}: {total}. It reduces "
                     "what you owe us; nothing needs to be paid.\n\nThank you for your business.")
"""A credit note's body when Settings.EmailBody is blank."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SEPARATORS = re.compile(r"[;,]")


def addresses(text: str) -> tuple[Address, ...]:
    """The e-mail addresses in a BillingEmail or MSPEmail cell (several separated by ``;`` or ``,``);
    ValueError saying what is wrong with the first bad one ("is blank", "holds 'x', which is not …")."""
    found = []
    for part in (p.strip() for p in _SEPARATORS.split(text or "")):
        if not part:
            continue
        if _CONTROL.search(part):
            raise ValueError(f"holds {part!r}, with a line break or control character")
        try:
            addr = Address(addr_spec=part)
        except (ValueError, HeaderParseError, HeaderDefect, IndexError):
            raise ValueError(f"holds {part!r}, which is not an e-mail address") from None
        if not addr.username or "." not in addr.domain.strip(".") or addr.domain.startswith("["):
            raise ValueError(f"holds {part!r}, which is not an e-mail address (name@domain.example)")
        found.append(addr)
    if not found:
        raise ValueError("is blank")
    return tuple(found)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and control characters become single spaces (a header never
    carries them)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def long_date(d: dt.date) -> str:
    """``December 31, 2026``."""
    return f"{d:%B} {d.day}, {d.year}"


def fields(doc: Invoice) -> dict[str, str]:
    """The values of the e-mail placeholders (see :data:`~perseat_addin.model.EMAIL_PLACEHOLDERS`) for ``doc``;
    a credit note's total as its PDF prints it (``-USD 145.00``)."""
    total = doc.total_cents
    money = f"{doc.currency} {fmt_money(total)}" if total >= 0 else f"-{doc.currency} {fmt_money(-total)}"
    return {"client": doc.client.name, "invoice": doc.number, "period": doc.period.label(), "total": money,
            "due": long_date(doc.due_date)}


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its {placeholders} filled in (checked when the workbook was loaded); a value is never
    read as a template itself."""
    out = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, "") if name in EMAIL_PLACEHOLDERS else "")
    return "".join(out)


def sender(settings: Settings) -> Address:
    """From: MSPName <MSPEmail> (the first address when MSPEmail lists several)."""
    first = addresses(settings.msp_email)[0]
    return Address(one_line(settings.msp_name), first.username, first.domain)


def invoice_message(doc: Invoice, settings: Settings, to: Sequence[Address], pdf: bytes, pdf_name: str, *,
                    draft: bool, when: dt.datetime) -> EmailMessage:
    """The e-mail for ``doc``: To ``to``, From MSPName <MSPEmail>, Subject and body from EmailSubject and
    EmailBody, the PDF attached as ``pdf_name``. A ``draft`` carries ``X-Unsent: 1`` so Outlook opens the
    .eml as a message to send."""
    values = fields(doc)
    frm = sender(settings)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = frm
    msg["To"] = [Address(one_line(doc.client.billing_contact), a.username, a.domain) for a in to]
    credit = doc.kind is DocKind.CREDIT
    subject = settings.email_subject or (CREDIT_EMAIL_SUBJECT if credit else DEFAULT_EMAIL_SUBJECT)
    msg["Subject"] = one_line(fill(subject, values))
    msg["Date"] = format_datetime(when if when.tzinfo else when.astimezone())
    msg["Message-ID"] = make_msgid("perseat", domain=frm.domain)
    if draft:
        msg["X-Unsent"] = "1"
    body = fill(settings.email_body or (CREDIT_EMAIL_BODY if credit else DEFAULT_EMAIL_BODY), values)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    msg.set_content(body + ("" if body.endswith("\n") else "\n"))
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=one_line(pdf_name))
    return msg


def eml_name(doc: Invoice) -> str:
    """The draft's file name: the PDF's name with ``.eml`` (a plain name: the client part is sanitised)."""
    return f"{doc.file_stem}.eml"


def eml_bytes(msg: EmailMessage) -> bytes:
    """The message as an ``.eml`` file (CRLF line ends, as mail programs write them)."""
    return msg.as_bytes(policy=policy.SMTP)


__all__ = ["CREDIT_EMAIL_BODY", "CREDIT_EMAIL_SUBJECT", "addresses",
           "eml_bytes", "eml_name", "fields", "fill", "invoice_message", "long_date", "one_line",
           "sender"]
