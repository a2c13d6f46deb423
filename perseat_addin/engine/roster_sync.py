"""Sync an import into one client's Roster (SPEC §8): add, end, update, return — never delete.

Pure: table rows in, edits and a change list out (``plan_sync``, ``plan_import``); the
tasks write them (:mod:`perseat_addin.tasks.import_roster`). Running the same import
twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perseat_addin.cells import date_reader, plain_text
from perseat_addin.engine.measures import billable_users
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.imports.roster import ImportedUser, ImportResult
from perseat_addin.model import Book, Period
from perseat_addin.tables import RawTable, TableEdit, TableSource, editable

ROSTER_COLUMNS = ("Client", "UserID", "Name", "Email", "Type", "Start", "End", "Status", "Source")
COMPARED = ("Name", "Email", "Type", "Status")


@dataclass(frozen=True)
class Change:
    """One change a sync makes (a ChangeLog row)."""

    action: str  # add | end | update | return
    client: str
    user: str
    field: str
    old: Any
    new: Any
    row: int | None  # position in the Roster table (None for appended rows)
    why: str = ""  # for a new user: why its Start is the day it is

    def __str__(self) -> str:
        if self.action == "update":
            return f"update {self.user}: {self.field} {self.old!r} → {self.new!r}"
        if self.action == "end":
            return f"end    {self.user}: End {self.new} (not in the import)"
        return f"{self.action:<6} {self.user}: Start {self.new}" + (f" ({self.why})" if self.why else "")


def new_start(created: dt.date | None, effective: dt.date, recorded: Period | None) -> tuple[dt.date, str]:
    """A new user's Start, and why (SPEC §8): the day the source says the account was created when that is
    later than the client's last recorded period, else the effective date."""
    if created is None:
        return effective, ""
    if recorded is None:
        return created, f"created {created.isoformat()}; no invoice recorded yet"
    if created > recorded.last:
        return created, f"created {created.isoformat()}, after the last recorded period {recorded}"
    return effective, f"the effective date: created {created.isoformat()}, within the recorded {recorded}"


def last_recorded(book: Book, client: str) -> Period | None:
    """The latest period with an invoice recorded for ``client`` (None: none yet)."""
    inv = book.invoices
    if inv.empty or "Client" not in inv or "Period" not in inv:
        return None
    key = client.strip().lower()
    found = [Period.key(p) for c, p in zip(inv["Client"], inv["Period"], strict=True)
             if plain_text(c).lower() == key and plain_text(p)]
    found = [k for k in found if re.fullmatch(r"\d{4}-\d{2}", k)]
    return Period.parse(max(found)) if found else None


def roster_values(u: ImportedUser) -> dict[str, str]:
    """The Roster fields an imported user sets (an unlicensed employee is kept but not billed: Disabled)."""
    status = u.status
    if status == "Active" and u.type == "Employee" and not u.billable_hint:
        status = "Disabled"
    return {"Name": u.name, "Email": u.email, "Type": u.type, "Status": status}


def plan_sync(roster: RawTable, client: str, imported: ImportResult,
              effective: dt.date, recorded: Period | None = None) -> tuple[TableEdit, list[Change]]:
    """Edits to ``roster`` that make ``client``'s users match ``imported`` from ``effective`` on (``recorded``:
    the client's last recorded period, which decides a new user's Start: :func:`new_start`)."""
    if not imported.ok:
        raise InputProblems([p for p in imported.problems if p.severity == "error"])
    missing = roster.missing(("Client", "UserID", "Start", "End"))
    if missing:
        raise PerseatError(f"the Roster table lacks column(s) {', '.join(missing)}")
    key = client.strip().lower()
    ci, ui, si, ei = (roster.col(h) for h in ("Client", "UserID", "Start", "End"))
    assert ci is not None and ui is not None and si is not None and ei is not None
    rows = roster.rows
    # each of the client's users: their rows with (Start, End, in use on the day), and the row the import
    # compares with (in use on the day or starting later: the latest Start, then the last row)
    rows_by_user: dict[str, list[tuple[int, dt.date | None, dt.date | None, bool]]] = {}
    current: dict[str, tuple[dt.date, int]] = {}
    day_of = date_reader()
    for i, row in enumerate(rows):
        c = row[ci]
        if not isinstance(c, str) or c.strip().lower() != key:
            continue
        u = row[ui]
        k = ("" if u is None else str(u).strip()).lower()
        s, e = day_of(row[si]), day_of(row[ei])
        in_use = ((s is None or s <= effective) and (e is None or e >= effective)) or (s is not None and s > effective)
        mine = rows_by_user.get(k)
        if mine is None:
            rows_by_user[k] = [(i, s, e, in_use)]
        else:
            mine.append((i, s, e, in_use))
        if in_use:
            at = s or dt.date.min
            best = current.get(k)
            if best is None or at >= best[0]:
                current[k] = (at, i)
    cells: list[tuple[int, int, Any]] = []
    append: list[tuple[Any, ...]] = []
    changes: list[Change] = []
    source = imported.source or "import"
    seen: set[str] = set()
    compared = [(f, roster.col(f)) for f in COMPARED]
    for u in imported.rows:
        uid = u.user_id.strip()
        k = uid.lower()
        if not k or k in seen:
            continue
        seen.add(k)
        values = roster_values(u)
        found = current.get(k)
        if found is not None:
            i = found[1]
            row = rows[i]
            for field, j in compared:
                new = values[field]
                if j is None or not new:
                    continue
                v = row[j]
                old = "" if v is None else str(v).strip()
                if old == new or (field == "Type" and new == "Employee" and old):
                    continue  # (Type: a source says "a person"; keep the roster's Contractor, Intern, Seasonal...)
                if old.lower() != new.lower():
                    cells.append((i, j, new))
                    changes.append(Change("update", client, uid, field, old, new, i))
            continue
        action = "return" if k in rows_by_user else "add"
        day, why = (effective, "") if action == "return" else new_start(u.created, effective, recorded)
        append.append(roster.make({"Client": client, "UserID": uid, "Start": dt.datetime.combine(day, dt.time()),
                                   "Source": source, **values}))
        changes.append(Change(action, client, uid, "Start", None, day.isoformat(), None, why))
    end_day = effective - dt.timedelta(days=1)
    end_col = roster.col("End")
    assert end_col is not None
    stamp = dt.datetime.combine(end_day, dt.time())
    for k, mine in rows_by_user.items():
        if k in seen:
            continue
        for i, s, old_end, in_use in mine:
            if not in_use or (s is not None and s > end_day):
                continue  # already ended, or starts on/after the effective date: leave it to the user
            cells.append((i, end_col, stamp))
            changes.append(Change("end", client, plain_text(rows[i][ui]), "End",
                                  old_end.isoformat() if old_end else None, end_day.isoformat(), i))
    return TableEdit("Roster", tuple(cells), (), tuple(append)), changes


def changelog_rows(log: RawTable, changes: Sequence[Change], source: str, when: dt.datetime) -> list[tuple[Any, ...]]:
    """ChangeLog rows for ``changes``."""
    return [log.make({"Timestamp": when, "Action": f"import {c.action}", "Client": c.client, "UserID": c.user,
                      "Field": c.field, "Old": c.old, "New": c.new, "Source": source}) for c in changes]


def check_types(roster: RawTable, edit: TableEdit, book: Book) -> None:
    """Refuse an import that would give users a Type the workbook's UserTypes does not define."""
    unknown = sorted({v for _, _, v in _written(roster, edit, "Type") if plain_text(v).lower() not in book.user_types})
    if unknown:
        raise InputProblems([Problem("UserTypes", None, "Type", f'the import sets Type "{t}", which UserTypes '
                                     "does not define", f'add "{t}" to UserTypes (Billable No for guests, rooms, '
                                     "shared and service accounts), then import again") for t in unknown])


def guess_client(imported: ImportResult, clients: Sequence[str], roster: RawTable) -> tuple[str | None, str]:
    """The client an export belongs to, and why: its Company column, else the e-mail domains its users
    share with one client's Roster. (None, why not) when neither decides."""
    by_name = {c.strip().lower(): c for c in clients if c.strip()}
    companies = {u.company.strip().lower() for u in imported.rows if u.company.strip()}
    named = {by_name[c] for c in companies if c in by_name}
    if len(companies) == 1 and len(named) == 1:
        client = named.pop()
        return client, f'the export\'s company column says "{client}"'
    ci, ui = roster.col("Client"), roster.col("UserID")
    domains: dict[str, dict[str, int]] = {}
    if ci is not None and ui is not None:
        for row in roster.rows:
            c, uid = plain_text(row[ci]), plain_text(row[ui]).lower()
            if c.lower() in by_name and "@" in uid:
                d = domains.setdefault(uid.rsplit("@", 1)[1], {})
                d[by_name[c.lower()]] = d.get(by_name[c.lower()], 0) + 1
    votes: dict[str, int] = {}
    for u in imported.rows:
        owners = domains.get(u.user_id.lower().rsplit("@", 1)[-1], {})
        if len(owners) == 1:
            c = next(iter(owners))
            votes[c] = votes.get(c, 0) + 1
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    if ranked and (len(ranked) == 1 or ranked[0][1] > 2 * ranked[1][1]):
        client, n = ranked[0]
        return client, f"{n} of {len(imported.rows)} users share e-mail domains with {client}'s Roster"
    if len(companies) > 1:
        return None, f"the export holds {len(companies)} companies"
    return None, "neither a company column nor the users' e-mail domains point to one client"


def _written(t: RawTable, edit: TableEdit, header: str) -> list[tuple[int | None, int, Any]]:
    """(row, column, value) of every ``header`` cell the edit writes (row None for appended rows)."""
    j = t.col(header)
    if j is None:
        return []
    return [(i, c, v) for i, c, v in edit.cells if c == j] + [(None, j, r[j]) for r in edit.append if r[j]]


@dataclass(frozen=True)
class Drift:
    """The three numbers MSPs reconcile each month for a client."""

    client: str
    licensed_in_source: int  # billable per the export (licensed, active, not guest/service/shared)
    billable_in_roster: int  # billable users in the Roster on the day
    seats_on_last_invoice: int | None  # seats at the end of the client's latest invoice (None: never invoiced)
    last_invoice: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"client": self.client, "licensed_in_source": self.licensed_in_source,
                "billable_in_roster": self.billable_in_roster,
                "seats_on_last_invoice": self.seats_on_last_invoice, "last_invoice": self.last_invoice}

    def __str__(self) -> str:
        seats = "never invoiced" if self.last_invoice is None else f"{self.seats_on_last_invoice} ({self.last_invoice})"
        return (f"{self.client}: licensed in source {self.licensed_in_source}, billable in roster "
                f"{self.billable_in_roster}, seats on last invoice {seats}")


def drift_of(book: Book, tables: TableSource, client: str, imported: ImportResult, day: dt.date) -> Drift:
    """:class:`Drift` from a loaded workbook (``tables`` gives its InvoiceLines as read)."""
    licensed = sum(1 for u in imported.rows if u.billable_hint)
    in_roster = billable_users(book, client, day)
    inv = book.invoices
    last: str | None = None
    if not inv.empty and "Client" in inv and "InvoiceNo" in inv:
        mine = [(Period.key(p), str(n)) for c, p, n in zip(inv["Client"], inv.get("Period", [""] * len(inv)),
                                                          inv["InvoiceNo"], strict=True)
                if plain_text(c).lower() == client.lower() and plain_text(n)]
        last = max(mine)[1] if mine else None
    seats: int | None = None
    if last is not None:
        t = editable(tables.table("InvoiceLines"))
        seats = 0
        for row in t.rows if t is not None else ():
            assert t is not None
            kind = plain_text(t.get(row, "Kind"))
            if plain_text(t.get(row, "InvoiceNo")) == last and kind in ("seats", "seat-change"):
                q = t.get(row, "Quantity")  # day-1 seats plus each change: the seats at the period's end
                seats += int(q) if isinstance(q, int | float) else 0
    return Drift(client, licensed, in_roster, seats, last)


@dataclass(frozen=True)
class ImportPlan:
    """A roster import for one client, planned: the Roster edit, the changes it makes, and the drift
    (as the workbook stands before the import)."""

    client: str
    client_reason: str  # how the client was found when none was named
    imported: ImportResult
    effective: dt.date
    edit: TableEdit
    changes: list[Change]
    drift: Drift

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.imported.problems if p.severity != "error"]


def plan_import(roster: RawTable, client: str, why: str, imported: ImportResult, effective: dt.date,
                loaded: Book, tables: TableSource) -> ImportPlan:
    """Plan the sync of ``imported`` into ``client``'s Roster; refuse (InputProblems) a Type that is
    not in UserTypes. ``loaded`` is the validated workbook, ``tables`` its tables as read."""
    edit, changes = plan_sync(roster, client, imported, effective, last_recorded(loaded, client))
    drift = drift_of(loaded, tables, client, imported, effective)
    check_types(roster, edit, loaded)
    return ImportPlan(client, why, imported, effective, edit, changes, drift)


__all__ = ["Change", "Drift", "ImportPlan", "Problem", "check_types", "drift_of", "guess_client", "last_recorded",
           "new_start", "plan_import", "plan_sync"]
