"""Send invoices (SPEC §6–7): one e-mail per recorded document of a period to the client's BillingEmail, its
PDF attached — ``.eml`` drafts, SMTP (``perseat send --smtp``) or Outlook drafts (the ribbon on Windows).

One task for ``perseat send`` and the ribbon's *Send invoices*, over the
:class:`~perseat_addin.tasks.port.BookPort`: :func:`plan_send` validates the workbook and every address
before anything is written or sent, :func:`earlier_sends` reads from ChangeLog what was already e-mailed,
:func:`log_edit` records each message sent or drafted as one ChangeLog row. The Invoices rows are never
changed (recorded documents are never rewritten): staff mark a row Sent themselves.

The period: ``--period``, else the latest period with recorded documents (BillingPeriod has moved on to the
next month once a period is finalized).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from perseat_addin.cells import plain_text
from perseat_addin.engine.invoicing import Run
from perseat_addin.engine.ledger import is_recorded, recorded_documents, recorded_periods
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.model import Book, Invoice, Period
from perseat_addin.outputs.mail import addresses, eml_bytes, eml_name, invoice_message
from perseat_addin.outputs.publish import check_destination
from perseat_addin.tables import RawTable, TableEdit, is_blank
from perseat_addin.tasks.invoice import recorded_run
from perseat_addin.tasks.port import BookPort, require, validated

if TYPE_CHECKING:  # the Excel side: loaded by the ribbon's task only
    from perseat_addin.tasks.livebook import LiveBook, Outcome

EML, SMTP, OUTLOOK = "eml", "smtp", "outlook"
"""How a message went out: the ChangeLog's Source."""

ACTIONS = {EML: "Invoice e-mail drafted", SMTP: "Invoice e-mailed", OUTLOOK: "Invoice e-mail drafted in Outlook"}
"""The ChangeLog's Action for each way."""

EMAILED = (SMTP, OUTLOOK)
"""Ways that reach (or are about to reach) the client: doing it twice is asked first."""

MAIL_FOLDER = "mail"
"""The .eml drafts' folder inside the period's output folder."""


@dataclass(frozen=True)
class Mail:
    """One document to e-mail and its recipients."""

    doc: Invoice
    to: tuple[Address, ...]

    @property
    def to_text(self) -> str:
        return ", ".join(a.addr_spec for a in self.to)

    @property
    def pdf_name(self) -> str:
        return f"{self.doc.file_stem}.pdf"


@dataclass
class SendPlan:
    """The period's recorded documents, each with a checked address."""

    book: Book
    period: Period
    mails: list[Mail]
    run: Run  # the documents as a run, for drawing their PDFs


@dataclass(frozen=True)
class Earlier:
    """A document's earlier e-mail, as ChangeLog records it."""

    number: str
    when: str
    to: str
    source: str

    def __str__(self) -> str:
        how = "drafted in Outlook" if self.source == OUTLOOK else "e-mailed"
        return f"{self.number} was {how} on {self.when}" + (f" to {self.to}" if self.to else "")


def send_period(invoices: RawTable, period: str | None) -> Period:
    """``period`` if it has recorded documents, else the latest period that has; PerseatError in words."""
    done = recorded_periods(invoices)
    if period is None:
        if not done:
            raise PerseatError("no period is recorded yet, so there is no invoice to send: finalize the period first "
                               "(perseat invoice WORKBOOK --finalize, or Finalize period on the ribbon)")
        return Period.parse(done[-1])
    p = Period.parse(period)
    if str(p) not in done:
        latest = f"; the latest recorded period is {done[-1]}" if done else ""
        raise PerseatError(f"{p.label()} has no recorded invoices to send: only Final (or Sent, Paid, …) invoices "
                           f"are sent, never drafts — finalize {p} first{latest}")
    return p


def _documents(invoices: RawTable, period: Period) -> list[str]:
    """Numbers of every recorded document (invoices and credit notes) whose Period is ``period``."""
    out: list[str] = []
    for row in invoices.rows:
        if is_recorded(invoices, row) and Period.key(invoices.get(row, "Period")) == str(period):
            number = plain_text(invoices.get(row, "InvoiceNo"))
            if number and number.lower() not in {n.lower() for n in out}:
                out.append(number)
    return out


def _settings_row(book: BookPort, name: str) -> int | None:
    t = book.rows("Settings")
    if t is None:
        return None
    for i, row in enumerate(t.rows):
        if plain_text(t.get(row, "Setting")).replace(" ", "").lower() == name.lower():
            return t.first_row + i
    return None


def plan_send(book: BookPort, period: str | None = None) -> SendPlan:
    """The documents to e-mail for ``period`` (default: the latest recorded one), each with its client's
    BillingEmail checked; InputProblems listing every client without a usable address and a missing MSPEmail,
    before anything is written or sent."""
    loaded, _ = validated(book)
    inv_t, lines_t = require(book, "Invoices"), require(book, "InvoiceLines")
    p = send_period(inv_t, period)
    clients = {c.name.lower(): c for c in loaded.clients}
    docs = recorded_documents(inv_t, lines_t, _documents(inv_t, p), clients, loaded.settings.currency)
    problems: list[Problem] = []
    try:
        addresses(loaded.settings.msp_email)
    except ValueError as exc:
        row = _settings_row(book, "MSPEmail")
        problems.append(Problem("Settings", row, "Value" if row else "Setting",
                                f"MSPEmail {exc}: invoices are sent from this address",
                                "type your billing address (e.g. billing@yourmsp.example) as MSPEmail's Value" if row
                                else "add a Settings row MSPEmail with your billing address as its Value"))
    mails: list[Mail] = []
    seen: set[str] = set()
    for doc in docs:
        client = clients.get(doc.client.name.lower())
        if client is None:
            if doc.client.name.lower() not in seen:
                seen.add(doc.client.name.lower())
                problems.append(Problem("Clients", None, "Client", f"{doc.number} is for {doc.client.name!r}, which "
                                        "is not in Clients, so it has no BillingEmail",
                                        "add the client back to Clients with its BillingEmail"))
            continue
        try:
            to = addresses(client.billing_email)
        except ValueError as exc:
            if client.name.lower() not in seen:
                seen.add(client.name.lower())
                problems.append(Problem("Clients", client.row, "BillingEmail",
                                        f"{client.name}'s BillingEmail {exc}, so {doc.number} cannot be e-mailed",
                                        "type the address invoices go to (several: separate them with ;)"))
            continue
        mails.append(Mail(replace(doc, client=client), to))
    if problems:
        raise InputProblems(problems)
    base = recorded_run(book, loaded, p)  # with today's user reasons, for an attached user list
    run = Run(loaded, p, [], []) if base is None else base
    return SendPlan(loaded, p, mails, replace(run, invoices=[m.doc for m in mails], skipped=[]))


def earlier_sends(book: BookPort, mails: Sequence[Mail]) -> dict[str, list[Earlier]]:
    """InvoiceNo (lower case) → its earlier e-mails (SMTP or Outlook) that ChangeLog records."""
    log = book.rows("ChangeLog")
    wanted = {m.doc.number.lower() for m in mails}
    out: dict[str, list[Earlier]] = {}
    if log is None:
        return out
    for row in log.rows:
        if plain_text(log.get(row, "Field")).lower() != "invoiceno":
            continue
        source = plain_text(log.get(row, "Source")).lower()
        new = plain_text(log.get(row, "New"))
        number, _, rest = new.partition(" ")
        if source not in EMAILED or number.lower() not in wanted:
            continue
        stamp = log.get(row, "Timestamp")
        when = f"{stamp:%Y-%m-%d %H:%M}" if isinstance(stamp, dt.datetime) else plain_text(stamp)
        out.setdefault(number.lower(), []).append(Earlier(number, when, rest.removeprefix("to ").strip(), source))
    return out


def log_edit(book: BookPort, done: Sequence[Mail], source: str, when: dt.datetime) -> list[TableEdit]:
    """One ChangeLog row per message sent or drafted (New: the number and the address)."""
    if not done:
        return []
    log = require(book, "ChangeLog", " to record the e-mails in")
    rows = tuple(log.make({"Timestamp": when, "Action": ACTIONS[source], "Client": m.doc.client.name,
                           "UserID": None, "Field": "InvoiceNo", "Old": None, "New": f"{m.doc.number} to {m.to_text}",
                           "Source": source}) for m in done)
    return [TableEdit(log.name, (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), rows)]


def messages(plan: SendPlan, mails: Sequence[Mail], pdfs: Mapping[str, Path], *, draft: bool,
             when: dt.datetime) -> list[EmailMessage]:
    """Each mail's message, its PDF (``pdfs``: InvoiceNo → file) attached."""
    out = []
    for m in mails:
        data = pdfs[m.doc.number].read_bytes()
        if not data.startswith(b"%PDF"):
            raise PerseatError(f"{pdfs[m.doc.number]} is not a PDF; nothing was sent")
        out.append(invoice_message(m.doc, plan.book.settings, m.to, data, m.pdf_name, draft=draft, when=when))
    return out


def write_drafts(mails: Sequence[Mail], msgs: Sequence[EmailMessage], out_dir: Path, record: Callable[[], None],
                 inputs: Sequence[Path] = (), rollback: Callable[[], None] | None = None) -> list[Path]:
    """One ``.eml`` per message in ``out_dir``: written beside their names first, then ``record`` (the
    ChangeLog rows), then moved into place — all or nothing."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [eml_name(m.doc) for m in mails]
    staging = Path(tempfile.mkdtemp(prefix=".perseat-mail-", dir=out_dir))
    recorded = False
    try:
        for name, msg in zip(names, msgs, strict=True):
            check_destination(out_dir, name, inputs)
            (staging / name).write_bytes(eml_bytes(msg))
        record()
        recorded = True
        for name in names:
            os.replace(staging / name, out_dir / name)
        return [out_dir / n for n in names]
    except BaseException:
        if recorded and rollback is not None:
            rollback()
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Outlook(Protocol):
    """Outlook on this computer, as the ribbon uses it: one saved draft per call."""

    def draft(self, to: str, subject: str, body: str, attachment: Path) -> None:
        """A new mail item with these fields and the file attached, saved to Drafts (not sent)."""
        ...


def send_invoices(live: LiveBook, outlook: Outlook | None = None, when: dt.datetime | None = None) -> Outcome:
    """Send invoices (the ribbon): the latest recorded period's documents drawn and exported as PDFs by Excel,
    then one Outlook draft each (``outlook``, on Windows) or one ``.eml`` draft each in OutputFolder/PERIOD/mail;
    every one logged in ChangeLog. Drafting in Outlook a document already e-mailed or drafted there asks first."""
    from perseat_addin.outputs.layout import InvoiceDocuments, user_list_name
    from perseat_addin.outputs.logo import read_logo
    from perseat_addin.outputs.publish import output_dir
    from perseat_addin.tasks.invoice import invoice_sheets
    from perseat_addin.tasks.livebook import PREFIX, ExcelBook, Outcome, Progress, capped

    live.status(f"{PREFIX}: reading the workbook…")
    port = ExcelBook(live)
    plan = plan_send(port)
    todo = list(plan.mails)
    skipped: list[Mail] = []
    if outlook is not None:
        earlier = earlier_sends(port, todo)
        if earlier:
            said = [f"• {e[-1]}" for e in earlier.values()]
            question = "\n".join([*capped(said), "", "Draft these again in Outlook? Yes: draft every invoice; No: "
                                  "draft only the others."])
            if not live.confirm(question, f"{PREFIX}: Send invoices"):
                skipped = [m for m in todo if m.doc.number.lower() in earlier]
                todo = [m for m in todo if m.doc.number.lower() not in earlier]
    if not todo:
        return Outcome("Nothing was drafted: every invoice of the period was already e-mailed.", ok=False)
    stamp = when or dt.datetime.now().replace(microsecond=0)
    run = replace(plan.run, invoices=[m.doc for m in todo])
    names, _ = invoice_sheets(live, port.tables, run, [])
    docs = InvoiceDocuments(run, read_logo(run.book))  # drawn as Generate invoices draws them
    with tempfile.TemporaryDirectory(prefix="perseat-send-") as tmp:
        pdfs: dict[str, Path] = {}
        tick = Progress(live, "exporting PDFs", len(todo))
        for m in todo:
            layouts = docs.sheets(m.doc, names[m.doc.number], names.get(user_list_name(m.doc.number), ""))
            for layout in layouts:
                live.put_sheet(layout)
            pdfs[m.doc.number] = Path(tmp) / m.pdf_name
            live.export_pdf([layout.name for layout in layouts], pdfs[m.doc.number])
            if not pdfs[m.doc.number].is_file():
                raise PerseatError(f"Excel did not export {m.pdf_name}; nothing was sent")
            tick()
        msgs = messages(plan, todo, pdfs, draft=True, when=stamp)
        if outlook is None:
            out = output_dir(live.fullname, plan.book.settings.output_folder, plan.period) / MAIL_FOLDER
            live.status(f"{PREFIX}: writing the e-mail drafts…")
            write_drafts(todo, msgs, out, lambda: port.write(log_edit(port, todo, EML, stamp)),
                         [Path(live.fullname)])
            where = f"as .eml files in {out} (double-click one to open it in your mail program, then Send)"
        else:
            done: list[Mail] = []
            tick = Progress(live, "creating Outlook drafts", len(todo))
            try:
                for m, msg in zip(todo, msgs, strict=True):
                    body = msg.get_body(("plain",))
                    try:
                        outlook.draft(m.to_text.replace(", ", "; "), str(msg["Subject"]),
                                      body.get_content() if body is not None else "", pdfs[m.doc.number])
                    except Exception as exc:  # a COM error from Outlook (closed, busy, a security prompt refused)
                        made = (f"the {len(done)} drafts made before it are in Outlook's Drafts folder and logged in "
                                "ChangeLog" if done else "no draft was made")
                        raise PerseatError(f"Outlook could not save the e-mail for {m.doc.number} ({exc}); {made}. "
                                           "Check that Outlook is open, then press Send invoices again") from None
                    done.append(m)
                    tick()
            finally:
                port.write(log_edit(port, done, OUTLOOK, stamp))  # the drafts made are logged, even after a failure
            where = "in Outlook's Drafts folder (open each, check it, then Send)"
    n = len(todo)
    lines = [f"{n} e-mail{'s' * (n != 1)} for {plan.period.label()}, each with its PDF, {where}:",
             *capped([f"  {m.doc.number}  {m.doc.client.name}: {m.to_text}" for m in todo])]
    if skipped:
        lines += ["", "Not drafted again: " + ", ".join(m.doc.number for m in skipped) + "."]
    lines += ["", "Each is logged in ChangeLog; save the workbook to keep the log. The Invoices rows are not "
              "changed: mark them Sent yourself once the e-mails have gone."]
    return Outcome("\n".join(lines))


__all__ = ["ACTIONS", "EMAILED", "EML", "MAIL_FOLDER", "OUTLOOK", "SMTP", "Earlier", "Mail", "Outlook", "SendPlan",
           "earlier_sends", "log_edit", "messages", "plan_send", "send_invoices", "send_period",
           "write_drafts"]
