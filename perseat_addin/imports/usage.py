"""PSA time entries and tickets → Usage rows (SPEC §9's input), and appending them to the workbook.

Sources (``perseat import SOURCE FILE --workbook WB``):

* ``connectwise-time`` — ConnectWise PSA time entries. API names (confirmed from the REST
  schema): ``company`` (exported as company/name), ``timeStart``, ``actualHours`` (decimal
  hours), ``chargeToId`` with ``chargeToType`` (the ticket), ``id``, ``billableOption``
  (``Billable``, ``DoNotBill``, ``NoCharge``, ``NoDefault``). Grid-export headers ("Company",
  "Date", "Hours", "Ticket #", "Time RecId", "Billable Option", "Bill") are accepted as aliases,
  unconfirmed, and so are the screens' spellings "Do Not Bill", "No Charge", NB and NC.
* ``autotask-time`` — Autotask time entries: ``dateWorked``/``startDateTime``, ``hoursWorked``,
  ``ticketID``, ``id``, ``isNonBillable`` (API, confirmed). The API's time entry has no company;
  the export must carry one ("Account"/"Company" column), else the tickets export is the way in.
* ``autotask-tickets`` — Autotask tickets: ``companyID``/"Company" ("[required] Company" in the
  import-template export), ``createDate``/"Create Date/Time", ``ticketNumber``, ``contact``;
  one ticket each, hours when a worked-hours column is there.
* ``halopsa-tickets`` — HaloPSA tickets: ``client_name``, ``user_email``/``user_name``,
  ``dateoccurred`` ("Date Logged"), ``timetaken`` (decimal hours, or h:mm as the UI shows it),
  ``id``, ``isbillable`` and ``nonbillable_time`` (Halo's ticket schema).
* ``halopsa-time`` — HaloPSA actions (where Halo records time): ``ticket_id``, ``id``,
  ``client_name``, ``actionarrivaldate``, ``timetaken``, ``actisbillable``, ``nonbilltime``
  (Halo's action schema).
* Any other export through a Mappings row set with Import = Usage (fields Client, UserID, Date,
  Tickets, Hours, Ticket, Ref, Billable).

Time the PSA marks as not billable to the client (SPEC §8) is imported with its hours and
Billable = No: the report counts it as work done, overage never bills it. A Halo ticket's or
action's non-billable time (``nonbillable_time``, ``nonbilltime``) is kept apart from its time
taken (the two are separate amounts in Halo's schema), as a second row with Billable = No.

Each row becomes a Usage row; a ticket counts once, on the first day it is worked (across
imports: tickets already in the Usage table are not counted again). Companies are matched to
Clients by name (case, punctuation and legal suffixes such as "LLC" ignored); rows for unknown
companies are left out with a warning naming them. Re-importing a file adds nothing: each row
carries its Source and Ref (the entry's id), and rows already there are skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from perseat_addin.cells import cell_text
from perseat_addin.errors import InputProblems, Problem
from perseat_addin.imports.exportfile import Dates, Row, export_records, load_export, match_headers, norm, yes_no
from perseat_addin.imports.mappings import Mapping
from perseat_addin.imports.names import USAGE_SOURCES as USAGE_SOURCES
from perseat_addin.model import ImportKind
from perseat_addin.money import to_decimal

_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "connectwise-time": {
        "ref": ("id", "Time RecId", "Time Entry ID", "Entry ID"),
        "company": ("company/name", "Company", "Company Name", "company/identifier", "Company ID"),
        "date": ("timeStart", "Date", "Date Start", "Time Start", "Work Date", "dateEntered"),
        "hours": ("actualHours", "Hours", "Actual Hours", "Hours Worked"),
        "ticket": ("chargeToId", "Ticket #", "Ticket Number", "Service ID", "ticket/id", "Ticket ID"),
        "charge_type": ("chargeToType", "Charge To Type"),
        "user": ("contact/name", "Contact"),
        "billable": ("billableOption", "Billable Option", "Billable", "Bill Option", "Bill"),
    },
    "autotask-time": {
        "ref": ("id", "Time Entry ID"),
        "company": ("Account", "Company", "Company Name", "Account Name", "companyName"),
        "date": ("dateWorked", "Date Worked", "startDateTime", "Start Date/Time", "Date"),
        "hours": ("hoursWorked", "Hours Worked", "Worked Hours", "Hours"),
        "ticket": ("ticketID", "Ticket Number", "Ticket ID", "Ticket"),
        "user": ("Contact", "contactName", "Contact Email"),
        "nonbillable": ("isNonBillable", "Non-Billable", "Is Non-Billable"),
        "billable": ("Billable", "Is Billable"),
    },
    "autotask-tickets": {
        "ref": ("ticketNumber", "Ticket Number", "Autotask Ticket Number (updates only)", "id", "Ticket ID"),
        "company": ("[required] Company", "Company", "Account", "companyName", "Account Name"),
        "date": ("Create Date/Time", "createDate", "Create Date", "Created"),
        "user": ("Contact", "contactEmail", "Contact Email"),
        "hours": ("Total Hours Worked", "Hours Worked", "hoursWorked", "Worked Hours"),
    },
    "halopsa-tickets": {
        "ref": ("id", "ID", "Ticket ID", "faultid", "Request ID"),
        "company": ("client_name", "Client", "Client Name", "Customer"),
        "user": ("user_email", "User Email", "user_name", "User", "End User"),
        "date": ("dateoccurred", "Date Logged", "Date Occurred", "dateoccured", "Logged"),
        "hours": ("timetaken", "Time Taken", "Total Time"),
        "billable": ("isbillable", "Is Billable", "Billable"),
        "nonbillable_hours": ("nonbillable_time", "Non-billable Time", "Non-billable Hours"),
    },
    "halopsa-time": {
        "ticket": ("ticket_id", "Ticket ID", "Ticket"),
        "ref": ("id", "Action ID"),
        "company": ("client_name", "Client", "Client Name", "Customer"),
        "user": ("user_email", "User Email", "user_name", "End User"),
        "date": ("actionarrivaldate", "actioncompletiondate", "actiondatecreated", "Arrival Date", "Action Date",
                 "Date"),
        "hours": ("timetaken", "Time Taken", "Hours"),
        "billable": ("actisbillable", "Is Billable", "Billable"),
        "nonbillable_hours": ("nonbilltime", "Non-billable Time", "Non-billable Hours"),
    },
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "connectwise-time": ("company", "date", "hours"),
    "autotask-time": ("company", "date", "hours"),
    "autotask-tickets": ("company", "date", "ref"),
    "halopsa-tickets": ("company", "date", "ref"),
    "halopsa-time": ("company", "date", "hours"),
}
_TICKET_SOURCES = {"autotask-tickets", "halopsa-tickets"}
_SUFFIXES = re.compile(r"\b(inc|llc|ltd|limited|corp|corporation|co|company|pty|plc|gmbh|llp|pc|pllc|sa|bv)\b")
_HOURS_HM = re.compile(r"^(\d+):([0-5]?\d)(?::\d\d)?$")
_HOURS_WORDS = re.compile(r"^(?:(\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?|s)?)?)?$", re.I)


_NOT_BILLED = {"donotbill", "nocharge", "nb", "nc", "notbillable", "nonbillable", "nonchargeable",
               "notchargeable", "noncharge"}
_BILLED = {"billable", "b", "nodefault", "chargeable"}


def billable_value(text: str, means_not: bool = False) -> bool | None:
    """Whether a time entry is billable to the client, from a Billable column's value (Billable, Do Not Bill, No
    Charge, NB, NC, Yes/No, true/false; ``means_not``: a Non-billable column, where Yes means not billable).
    Blank is billable; None when the value means neither."""
    if not text.strip():
        return True
    word = re.sub(r"[^a-z]", "", text.lower())
    if word in _NOT_BILLED:
        return False
    if word in _BILLED:
        return True
    flag = yes_no(text)
    if flag is None:
        return None
    return not flag if means_not else flag


def company_key(name: str) -> str:
    """A company name for matching: lower case, no punctuation or legal suffix ("Acme, LLC" = "ACME")."""
    return " ".join(_SUFFIXES.sub(" ", re.sub(r"[^0-9a-z]+", " ", name.lower())).split())


def parse_hours(text: Any) -> Decimal | None:
    """Hours as exports write them: 1.5, "1.5", "1:30" (h:mm), "1h 30m"; None when blank."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return to_decimal(text)
    s = str(text).strip()
    m = _HOURS_HM.match(s)
    if m:
        return Decimal(int(m.group(1))) + Decimal(int(m.group(2))) / 60
    w = _HOURS_WORDS.match(s)
    if w and (w.group(1) or w.group(2)):
        return Decimal(w.group(1) or 0) + Decimal(int(w.group(2) or 0)) / 60
    return to_decimal(s)  # ValueError for text that is no number


@dataclass(frozen=True)
class UsageRow:
    """One Usage row to add."""

    client: str
    user: str
    date: dt.date
    tickets: int
    hours: Decimal
    ticket: str
    source: str
    ref: str
    line: int
    billable: bool = True  # False: the PSA marks this time as not billable to the client (never overage)


@dataclass
class UsageImport:
    """Rows read from one export, and what was wrong with it."""

    rows: list[UsageRow]
    problems: list[Problem]
    source: str
    file: str
    unknown: dict[str, int] = field(default_factory=dict)  # company as written → rows left out

    def totals(self) -> dict[str, tuple[int, int, Decimal]]:
        """client → (rows, tickets, hours)."""
        return usage_totals(self.rows)

    def non_billable(self) -> dict[str, tuple[int, Decimal]]:
        """client → (rows, hours) of the time not billable to the client."""
        return non_billable_totals(self.rows)


def usage_totals(rows: Iterable[UsageRow]) -> dict[str, tuple[int, int, Decimal]]:
    """client → (rows, tickets, hours) of ``rows``."""
    out: dict[str, tuple[int, int, Decimal]] = {}
    for r in rows:
        n, t, h = out.get(r.client, (0, 0, Decimal(0)))
        out[r.client] = (n + 1, t + r.tickets, h + r.hours)
    return out


def non_billable_totals(rows: Iterable[UsageRow]) -> dict[str, tuple[int, Decimal]]:
    """client → (rows, hours) of the rows of ``rows`` not billable to the client."""
    out: dict[str, tuple[int, Decimal]] = {}
    for r in rows:
        if not r.billable:
            n, h = out.get(r.client, (0, Decimal(0)))
            out[r.client] = (n + 1, h + r.hours)
    return out


def detect_usage_source(data: bytes | str | Path, mappings: Iterable[Mapping] = (), *,
                        name: str | None = None) -> str | Mapping | None:
    """The usage importer whose columns this export has (a saved Usage mapping first), or None when the
    export is not a time-entry or ticket export."""
    content, shown = load_export(data, name)
    first = next(export_records(content, shown, []), None)
    headers = [cell_text(h) for h in first[1]] if first else []
    present = {norm(h) for h in headers if h.strip()}
    for m in mappings:
        if m.kind == ImportKind.USAGE and all(norm(c) in present for c in m.columns.values()):
            return m
    scores: dict[str, int] = {}
    for key, fields in _COLUMNS.items():
        index, _ = match_headers(headers, fields)
        if all(f in index for f in _REQUIRED[key]):
            scores[key] = len(index)
    return max(scores, key=lambda k: scores[k]) if scores else None


def read_usage(data: bytes | str | Path, source: str | Mapping, clients: Iterable[str], *,
               known_tickets: Iterable[str] = (), name: str | None = None) -> UsageImport:
    """Read a PSA time-entry or ticket export into Usage rows for the workbook's ``clients``.

    ``known_tickets`` are ``source|ticket`` keys already counted in the workbook's Usage table.
    """
    kind = _kind(source)
    content, shown = load_export(data, name)
    problems: list[Problem] = []
    return _read(export_records(content, shown, problems), kind, clients, known_tickets, shown, problems)


def read_usage_records(headers: Sequence[str], records: Iterable[tuple[int, Sequence[Any]]], source: str,
                       clients: Iterable[str], *, shown: str, known_tickets: Iterable[str] = ()) -> UsageImport:
    """Records a live source fetched (its API's field names as ``headers``, one cell list per entry, numbered) →
    Usage rows, by exactly the rules :func:`read_usage` applies to an export of ``source`` with those columns."""
    rows = ((n, list(cells)) for n, cells in records)
    return _read(itertools.chain([(0, list(headers))], rows), _kind(source), clients, known_tickets, shown, [])


def _kind(source: str | Mapping) -> tuple[str, str, dict[str, tuple[str, ...]], tuple[str, ...]]:
    """(key, label, field aliases, required fields) of a usage source; ValueError for an unknown one."""
    if isinstance(source, Mapping):
        return "mapping", source.name, source.aliases(), ("company", "date")
    key = source.strip().lower()
    if key not in USAGE_SOURCES:
        raise ValueError(f"unknown usage source {source!r}; expected one of {', '.join(USAGE_SOURCES)}")
    return key, USAGE_SOURCES[key], _COLUMNS[key], _REQUIRED[key]


def _read(records: Iterator[tuple[int, list[Any]]],
          kind: tuple[str, str, dict[str, tuple[str, ...]], tuple[str, ...]], clients: Iterable[str],
          known_tickets: Iterable[str], shown: str, problems: list[Problem]) -> UsageImport:
    key, label, wanted, required = kind
    first = next(records, None)
    if first is None:
        raise InputProblems([Problem(shown, None, None, "the export is empty", f"export the {label} again")])
    header_line, header_cells = first
    headers = [cell_text(h) for h in header_cells]
    index, names = match_headers(headers, wanted)
    missing = [f for f in required if f not in index]
    if missing:
        found = ", ".join(f'"{h.strip()}"' for h in headers if h.strip()) or "none"
        raise InputProblems([Problem(
            shown, header_line, wanted[f][0], f'no "{wanted[f][0]}" column in this {label} export (columns found: '
            f"{found})", (f"export again with the {wanted[f][0]!r} column" +
                          (f" (also accepted: {', '.join(repr(a) for a in wanted[f][1:])})" if wanted[f][1:] else "")
                          + ("; Autotask time entries carry no company: import the tickets export instead"
                             if key == "autotask-time" and f == "company" else "")))
            for f in missing])
    by_company = {company_key(c): c for c in clients if c.strip()}
    by_exact = {c.strip().lower(): c for c in clients if c.strip()}
    dates = Dates()
    raw: list[tuple[int, str, str, Any, Decimal, str, str, Decimal | None, bool, Decimal | None]] = []
    unknown: dict[str, int] = {}
    seen_refs: dict[str, int] = {}
    for line, cells in records:
        r = Row(index, cells)
        company = r.get("company")
        if not company:
            problems.append(Problem(shown, line, names["company"], f"no {names['company']} on this line; left out",
                                    "fill in the company"))
            continue
        client = by_exact.get(company.lower()) or by_company.get(company_key(company))
        if client is None:
            unknown[company] = unknown.get(company, 0) + 1
            continue
        got = dates.parse(r.raw("date"))
        if got is None or (isinstance(got, str) and got != "ambiguous"):
            problems.append(Problem(shown, line, names["date"], f"{got or 'no date'}; the line was left out",
                                    "type the date as YYYY-MM-DD"))
            continue
        try:
            hours = parse_hours(r.raw("hours")) if "hours" in index else None
        except ValueError:
            problems.append(Problem(shown, line, names["hours"], f"{r.get('hours')!r} is not a number of hours; "
                                    "the line was left out", "type hours as 1.5 or 1:30"))
            continue
        if hours is not None and hours < 0:
            problems.append(Problem(shown, line, names["hours"], f"{hours} hours is negative; the line was left out",
                                    "fix the time entry"))
            continue
        billable = _billable(r, names, shown, line, problems)
        if billable is None:
            continue
        try:
            apart = parse_hours(r.raw("nonbillable_hours")) if "nonbillable_hours" in index else None
        except ValueError:
            apart = Decimal(-1)
        if apart is not None and apart < 0:
            problems.append(Problem(shown, line, names["nonbillable_hours"], f"{r.get('nonbillable_hours')!r} is "
                                    "not a number of hours ≥ 0; the line was left out", "type hours as 1.5 or 1:30"))
            continue
        ticket = r.get("ticket") if "ticket" in index else (r.get("ref") if key in _TICKET_SOURCES else "")
        if key == "connectwise-time" and "charge_type" in index and r.get("charge_type") and \
                "ticket" not in r.get("charge_type").lower():
            ticket = ""  # charge codes and activities are time, not tickets
        tickets: Decimal | None = None
        if "tickets" in index:
            try:
                tickets = parse_hours(r.raw("tickets")) or Decimal(0)
            except ValueError:
                tickets = None
        ref = r.get("ref") if "ref" in index else ""
        if ref and key == "halopsa-time" and ticket:
            ref = f"{ticket}/{ref}"  # a Halo action's id is numbered within its ticket
        if not ref:
            basis = "|".join([client, str(got), str(hours), ticket, r.get("user")])
            k = seen_refs[basis] = seen_refs.get(basis, 0) + 1
            ref = "h:" + hashlib.sha1(f"{basis}|{k}".encode()).hexdigest()[:12]
        raw.append((line, client, r.get("user"), got if got != "ambiguous" else r.get("date"), hours or Decimal(0),
                    ticket, ref, tickets, billable, apart))
    out: list[UsageRow] = []
    counted = set(known_tickets)
    dated = []
    for line, client, user, got, hours, ticket, ref, tickets, billable, apart in raw:
        day = got if isinstance(got, dt.date) else dates.resolve(str(got))  # an ambiguous date's text
        if day is None:
            problems.append(Problem(shown, line, names["date"], f"{got!r} could be day/month or month/day; "
                                    "the line was left out", "type the date as YYYY-MM-DD"))
            continue
        dated.append((day, line, client, user, hours, ticket, ref, tickets, billable, apart))
    for day, line, client, user, hours, ticket, ref, tickets, billable, apart in sorted(dated,
                                                                                       key=lambda x: (x[0], x[1])):
        if tickets is not None:
            n = int(tickets)
        elif key in _TICKET_SOURCES:
            n = 1
        else:
            n = 0
            if ticket and f"{label}|{ticket}" not in counted:
                counted.add(f"{label}|{ticket}")
                n = 1
        out.append(UsageRow(client, user, day, n, hours, ticket, label, ref, line, billable))
        if apart:  # Halo's non-billable time: an amount of its own beside the time taken
            out.append(UsageRow(client, user, day, 0, apart, ticket, label, f"{ref}/non-billable", line, False))
    if unknown:
        top = sorted(unknown, key=lambda c: -unknown[c])
        listed = ", ".join(f"{c} ({unknown[c]})" for c in top[:8]) + (", ..." if len(top) > 8 else "")
        problems.append(Problem(shown, None, names["company"], f"{sum(unknown.values())} line(s) for companies not "
                                f"in Clients were left out: {listed}",
                                "add them to Clients, or spell them as Clients does", "warning"))
    out.sort(key=lambda u: u.line)
    return UsageImport(out, problems, label, shown, unknown)


def _billable(r: Row, names: dict[str, str], shown: str, line: int, problems: list[Problem]) -> bool | None:
    """The line's Billable (its Billable or Non-billable column; billable without one); None, with a problem,
    when a value means neither."""
    out = True
    for f, means_not in (("billable", False), ("nonbillable", True)):
        if f not in r.index:
            continue
        got = billable_value(r.get(f), means_not)
        if got is None:
            problems.append(Problem(shown, line, names[f], f"{r.get(f)!r} does not say whether the time is billable; "
                                    "the line was left out",
                                    "type Yes or No (or Billable, Do Not Bill, No Charge)"))
            return None
        out = out and got
    return out


