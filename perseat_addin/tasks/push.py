"""Push billed seats back to the PSA (SPEC §8 "Push-back"): ``perseat push``, one task over the workbook port.

What is pushed, per client and plan, for a recorded period (default: the latest one):

* **The seats the recorded invoice billed on the period's last day.** The ledger keeps that count on the
  invoice's Invoices row (column Seats, written when the period was recorded: MinUsers and Basis
  ``greater`` applied, as the invoice's seats line bills them). A client's users on another plan than its
  own (Roster Plan) are never padded, so the Billed table's record of that invoice (users per plan and
  day) gives each other plan its last-day users and the client's own plan the rest. Nothing is priced
  again: the counts are the recorded documents'.
* **Credit notes and corrections move money, not the count.** A later correction or a credit note for
  part of an invoice leaves the seats it billed as they are (the next period's invoice bills the roster
  as it now stands, and its push carries the change). A client whose invoice is Void, or was credited in
  full, has no billed seats for the period: it is left out, with that reason.

Where it goes: the client's PSAAgreementID (and PSACompanyID) in Clients name the agreement; the
:class:`~perseat_addin.sources.writer.PsaWriter` of Settings.PSA finds the record for the plan (ConnectWise:
the agreement addition whose product is the plan's PSAProduct, else the plan's name; Autotask: the contract
service of that service and its units from the first day after the period; HaloPSA: the recurring-invoice line
of that item, the invoice found from PSACompanyID when PSAAgreementID is blank) and its quantity now.
A dry run lists client, record id and old → new quantity; ``--apply`` writes each that differs, reads it
back, and appends one ChangeLog row per write (old and new quantity, the PSA record id as the writer read it
back — Autotask's names the adjustment made). A record already
at the billed quantity is not written and logs nothing, so a second push of a period changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from perseat_addin.cells import plain_text
from perseat_addin.engine.corrections import BILLED, read_billed
from perseat_addin.engine.ledger import credited_cents, doc_kind, is_recorded, recorded_periods
from perseat_addin.errors import PerseatError
from perseat_addin.model import DocKind, Period
from perseat_addin.money import to_decimal
from perseat_addin.sources.http import SourceError
from perseat_addin.sources.writer import PsaRecord, PsaWriter, PushTarget
from perseat_addin.tables import RawTable, TableEdit, is_blank
from perseat_addin.tasks.port import BookPort, require

PSAS = ("connectwise", "autotask", "halopsa")


@dataclass
class PushItem:
    """One quantity to push: its target, the PSA record as read, and what happened."""

    target: PushTarget
    record: PsaRecord | None = None
    error: str | None = None
    written: PsaRecord | None = None  # the record as read back after the write

    @property
    def changes(self) -> bool:
        return self.record is not None and self.error is None and self.record.quantity != self.target.seats

    def __str__(self) -> str:
        t = self.target
        if self.error is not None:
            return f"{t.client} ({t.plan}): {self.error}"
        assert self.record is not None
        old = f"{self.record.quantity:g}"
        how = f"{old} → {t.seats}" if self.changes else f"{old} (already {t.seats}: no change)"
        return f"{t.client} ({t.plan}, {self.record.what}, record {self.record.id}): quantity {how}"


def psa_of(book: BookPort) -> str:
    """Settings.PSA (connectwise, autotask, halopsa), lower case; PerseatError when blank or unknown."""
    settings = require(book, "Settings")
    for row in settings.rows:
        if plain_text(settings.get(row, "Setting")).lower() == "psa":
            value = plain_text(settings.get(row, "Value")).lower()
            if value in PSAS:
                return value
            if value:
                raise PerseatError(f"Settings PSA is {value!r}; type one of {', '.join(PSAS)} (or leave it blank "
                                   "when you use no PSA)")
    raise PerseatError("Settings names no PSA: add a PSA row to Settings with the value connectwise, autotask or "
                       "halopsa, then push again")


def recorded_period(book: BookPort, period: str | None) -> Period:
    """``period`` (YYYY-MM), or the latest recorded one; PerseatError when it has no recorded document."""
    invoices = require(book, "Invoices")
    done = recorded_periods(invoices)
    if period is None:
        if not done:
            raise PerseatError("no period is recorded yet: finalize one (perseat invoice --finalize), then push")
        return Period.parse(done[-1])
    if str(Period.parse(period)) not in done:
        raise PerseatError(f"{period} is not recorded: finalize it first (perseat invoice --period {period} "
                           "--finalize); only recorded invoices are pushed")
    return Period.parse(period)


def _int(v: object) -> int | None:
    try:
        return int(to_decimal(v)) if plain_text(v) else None
    except (ValueError, ArithmeticError):
        return None


def targets(book: BookPort, period: Period, client: str | None = None,
            by_company: bool = False) -> tuple[list[PushTarget], list[str]]:
    """Every quantity to push for ``period`` (one client with ``client``), and the clients left out, each with
    its reason (no PSAAgreementID, no recorded invoice, Void or credited in full, no Seats recorded).
    ``by_company``: a client with a PSACompanyID but no PSAAgreementID is pushed too (its writer finds the
    record from the company: HaloPSA's only active recurring invoice of the client)."""
    clients, invoices = require(book, "Clients"), require(book, "Invoices")
    if clients.col("PSAAgreementID") is None and not by_company:
        raise PerseatError("the Clients table has no PSAAgreementID column: add it and type each client's agreement "
                           "(ConnectWise: the agreement's RecID), then push again")
    if invoices.col("Seats") is None:
        raise PerseatError("the Invoices table has no Seats column (it was recorded by an older version), so the "
                           "billed seats are not known; push a period recorded by this version")
    plans = book.rows("Plans")
    product: dict[str, str] = {}
    if plans is not None:
        for row in plans.rows:
            name = plain_text(plans.get(row, "Plan"))
            if name:
                product[name.lower()] = plain_text(plans.get(row, "PSAProduct")) if plans.col("PSAProduct") \
                    is not None else ""
    billed = read_billed(book.rows(BILLED))
    docs = _period_invoices(invoices, period)
    out: list[PushTarget] = []
    skipped: list[str] = []
    found = False
    for row in clients.rows:
        name = plain_text(clients.get(row, "Client"))
        if not name or (client is not None and name.lower() != client.strip().lower()):
            continue
        found = True
        agreement = plain_text(clients.get(row, "PSAAgreementID")) if clients.col("PSAAgreementID") is not None \
            else ""
        company = plain_text(clients.get(row, "PSACompanyID")) if clients.col("PSACompanyID") is not None else ""
        if agreement.endswith(".0"):
            agreement = agreement[:-2]
        if company.endswith(".0"):
            company = company[:-2]
        own = plain_text(clients.get(row, "Plan"))
        if not agreement and not (by_company and company):
            skipped.append(f"{name}: no PSAAgreementID in Clients" + (" (nor PSACompanyID)" if by_company else ""))
            continue
        mine = docs.get(name.lower(), [])
        if not mine:
            skipped.append(f"{name}: no recorded invoice for {period}")
            continue
        if len(mine) > 1:
            skipped.append(f"{name}: {len(mine)} recorded invoices for {period} ({', '.join(n for n, _, _ in mine)}); "
                           "push needs one")
            continue
        number, seats, why = mine[0]
        if why:
            skipped.append(f"{name}: {number} {why}: nothing billed to push")
            continue
        if seats is None:
            skipped.append(f"{name}: {number} has no Seats recorded")
            continue
        others = {b.plan: b.users[-1] if b.users else 0 for b in billed
                  if b.invoice.lower() == number.lower() and str(b.period) == str(period) and b.plan
                  and b.plan.lower() != own.lower()}
        effective = period.next().first
        own_seats = seats - sum(others.values())
        for plan, n in [(own, own_seats), *sorted(others.items())]:
            if plan != own and not n:
                continue
            out.append(PushTarget(name, company, agreement, plan, product.get(plan.lower()) or plan, max(n, 0),
                                  str(period), effective))
    if client is not None and not found:
        raise PerseatError(f'client "{client.strip()}" is not in Clients; check the name')
    return out, skipped


def _period_invoices(invoices: RawTable, period: Period) -> dict[str, list[tuple[str, int | None, str]]]:
    """client (lower case) → (InvoiceNo, Seats, why it bills nothing) of each recorded invoice of ``period``."""
    out: dict[str, list[tuple[str, int | None, str]]] = {}
    for row in invoices.rows:
        if not is_recorded(invoices, row) or doc_kind(invoices, row) is not DocKind.INVOICE:
            continue
        if Period.key(invoices.get(row, "Period")) != str(period) or plain_text(invoices.get(row, "Corrects")):
            continue
        number = plain_text(invoices.get(row, "InvoiceNo"))
        status = plain_text(invoices.get(row, "Status")).lower()
        total = to_decimal(invoices.get(row, "Total") or 0)
        why = ""
        if status == "void":
            why = "is Void"
        elif total > 0 and credited_cents(invoices, number) >= int(total * 100):
            why = "was credited in full"
        out.setdefault(plain_text(invoices.get(row, "Client")).lower(), []).append(
            (number, _int(invoices.get(row, "Seats")), why))
    return out


def read_current(writer: PsaWriter, todo: Sequence[PushTarget],
                 done: Callable[[PushItem], None] | None = None) -> list[PushItem]:
    """Each target's PSA record and quantity now; a target that cannot be read fails on its own, with its reason."""
    out = []
    for t in todo:
        item = PushItem(t)
        try:
            item.record = writer.current(t)
        except (SourceError, PerseatError) as exc:
            item.error = str(exc)
        out.append(item)
        if done is not None:
            done(item)
    return out


def write(book: BookPort, writer: PsaWriter, items: Sequence[PushItem], when: dt.datetime | None = None) -> int:
    """Write every item whose quantity differs, each read back; then one ChangeLog row per write (Source: the
    PSA), in one workbook write — also when a later write failed, so every change made in the PSA is logged.
    Returns the number of writes."""
    log = require(book, "ChangeLog", " to record the push in")
    stamp = when or dt.datetime.now().replace(microsecond=0)
    rows = []
    for item in items:
        if not item.changes:
            continue
        assert item.record is not None
        try:
            item.written = writer.set(item.record, item.target.seats)
        except (SourceError, PerseatError) as exc:
            item.error = str(exc)
            continue
        t = item.target
        rows.append(log.make({"Timestamp": stamp, "Action": "push", "Client": t.client, "UserID": None,
                              "Field": f"Quantity of {item.written.id} ({t.plan}, {t.period})",
                              "Old": item.record.quantity, "New": item.written.quantity, "Source": writer.label}))
    if rows:
        book.write([TableEdit(log.name, (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), tuple(rows))])
    return len(rows)


__all__ = ["PSAS", "PushItem", "psa_of", "read_current", "recorded_period", "targets", "write"]
