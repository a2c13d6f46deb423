"""Sync an import into one client's Roster (SPEC §8): add, end, update, return — never delete.

``plan_sync`` is pure (table rows in, edits and a change list out); ``apply_sync``
writes Roster and ChangeLog into the workbook file atomically, keeping its VBA
project and ribbon. Running the same import twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputProblems, PerseatError, Problem
from .importers import ImportedUser, ImportResult
from .schema import parse_date_text
from .writeback import TableEdit, TableRows, _SheetTable, is_blank, open_workbook, save_workbook

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

    def __str__(self) -> str:
        if self.action == "update":
            return f"update {self.user}: {self.field} {self.old!r} → {self.new!r}"
        if self.action == "end":
            return f"end    {self.user}: End {self.new} (not in the import)"
        return f"{self.action:<6} {self.user}: Start {self.new}"


def _date(v: Any) -> dt.date | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, int | float):
        return dt.date(1899, 12, 30) + dt.timedelta(days=int(v))
    return parse_date_text(str(v))


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def roster_values(u: ImportedUser) -> dict[str, str]:
    """The Roster fields an imported user sets (an unlicensed employee is kept but not billed: Disabled)."""
    status = u.status
    if status == "Active" and u.type == "Employee" and not u.billable_hint:
        status = "Disabled"
    return {"Name": u.name, "Email": u.email, "Type": u.type, "Status": status}


def plan_sync(roster: TableRows, client: str, imported: ImportResult,
              effective: dt.date) -> tuple[TableEdit, list[Change]]:
    """Edits to ``roster`` that make ``client``'s users match ``imported`` from ``effective`` on."""
    if not imported.ok:
        raise InputProblems([p for p in imported.problems if p.severity == "error"])
    missing = roster.missing(("Client", "UserID", "Start", "End"))
    if missing:
        raise PerseatError(f"the Roster table lacks column(s) {', '.join(missing)}")
    key = client.strip().lower()
    rows_by_user: dict[str, list[int]] = {}
    for i, row in enumerate(roster.rows):
        if is_blank(row) or _text(roster.get(row, "Client")).lower() != key:
            continue
        rows_by_user.setdefault(_text(roster.get(row, "UserID")).lower(), []).append(i)
    cells: list[tuple[int, int, Any]] = []
    append: list[tuple[Any, ...]] = []
    changes: list[Change] = []
    start = dt.datetime.combine(effective, dt.time())
    source = imported.source or "import"
    seen: set[str] = set()
    for u in imported.rows:
        uid = u.user_id.strip()
        k = uid.lower()
        if not k or k in seen:
            continue
        seen.add(k)
        values = roster_values(u)
        active = [i for i in rows_by_user.get(k, []) if _active_on(roster, roster.rows[i], effective)]
        if active:
            i = max(active, key=lambda r: (_date(roster.get(roster.rows[r], "Start")) or dt.date.min, r))
            for field in COMPARED:
                j = roster.col(field)
                new = values[field]
                old = _text(roster.rows[i][j]) if j is not None else ""
                if field == "Type" and new == "Employee" and old:
                    continue  # a source says "a person"; keep the roster's Contractor, Intern, Seasonal...
                if j is not None and new and old.lower() != new.lower():
                    cells.append((i, j, new))
                    changes.append(Change("update", client, uid, field, old, new, i))
            continue
        action = "return" if k in rows_by_user else "add"
        append.append(roster.make({"Client": client, "UserID": uid, "Start": start, "Source": source, **values}))
        changes.append(Change(action, client, uid, "Start", None, effective.isoformat(), None))
    end_day = effective - dt.timedelta(days=1)
    end_col = roster.col("End")
    assert end_col is not None
    for k, idx in rows_by_user.items():
        if k in seen:
            continue
        for i in idx:
            row = roster.rows[i]
            s = _date(roster.get(row, "Start"))
            if not _active_on(roster, row, effective) or (s is not None and s > end_day):
                continue  # already ended, or starts on/after the effective date: leave it to the user
            cells.append((i, end_col, dt.datetime.combine(end_day, dt.time())))
            old_end = _date(roster.get(row, "End"))
            changes.append(Change("end", client, _text(roster.get(row, "UserID")), "End",
                                  old_end.isoformat() if old_end else None, end_day.isoformat(), i))
    return TableEdit("Roster", tuple(cells), (), tuple(append)), changes


def _active_on(roster: TableRows, row: Sequence[Any], day: dt.date) -> bool:
    s, e = _date(roster.get(row, "Start")), _date(roster.get(row, "End"))
    current = (s is None or s <= day) and (e is None or e >= day)
    return current or (s is not None and s > day)  # a row starting later is that user's row too


def changelog_rows(log: TableRows, changes: Sequence[Change], source: str, when: dt.datetime) -> list[tuple[Any, ...]]:
    """ChangeLog rows for ``changes``."""
    return [log.make({"Timestamp": when, "Action": f"import {c.action}", "Client": c.client, "UserID": c.user,
                      "Field": c.field, "Old": c.old, "New": c.new, "Source": source}) for c in changes]


def apply_sync(path: str | Path, client: str, imported: ImportResult, effective: dt.date, *,
               apply: bool, now: dt.datetime | None = None) -> list[Change]:
    """Plan the sync and, with ``apply``, write Roster and ChangeLog into the workbook atomically."""
    path = Path(path)
    original = path.read_bytes()
    wb = open_workbook(original, path)
    roster_t, log_t = _SheetTable(wb, "Roster"), _SheetTable(wb, "ChangeLog")
    edit, changes = plan_sync(roster_t.read(), client, imported, effective)
    if apply and changes:
        log = log_t.read()
        when = now or dt.datetime.now().replace(microsecond=0)
        rows = changelog_rows(log, changes, imported.source or "import", when)
        roster_t.apply(edit)
        log_t.apply(TableEdit("ChangeLog", (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), tuple(rows)))
        save_workbook(wb, path, original)
    return changes


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


def drift(path: str | Path, client: str, imported: ImportResult, day: dt.date) -> Drift:
    """Source licences vs. roster billable users vs. the seats last invoiced, for ``client``."""
    from .functions import billable_users
    from .load import load
    from .model import Period
    from .reader import Workbook

    book = load(path)
    licensed = sum(1 for u in imported.rows if u.billable_hint)
    in_roster = billable_users(book, client, day)
    inv = book.invoices
    last: str | None = None
    if not inv.empty and "Client" in inv and "InvoiceNo" in inv:
        mine = [(Period.key(p), str(n)) for c, p, n in zip(inv["Client"], inv.get("Period", [""] * len(inv)),
                                                          inv["InvoiceNo"], strict=True)
                if _text(c).lower() == client.lower() and _text(n)]
        last = max(mine)[1] if mine else None
    seats: int | None = None
    if last is not None:
        raw = Workbook(path).table("InvoiceLines")
        seats = 0
        if raw is not None:
            t = TableRows("InvoiceLines", tuple(raw.headers), tuple(tuple(r) for r in raw.rows))
            for row in t.rows:
                if _text(t.get(row, "InvoiceNo")) == last and _text(t.get(row, "Kind")) in ("seats", "seat-change"):
                    q = t.get(row, "Quantity")  # day-1 seats plus each change: the seats at the period's end
                    seats += int(q) if isinstance(q, int | float) else 0
    return Drift(client, licensed, in_roster, seats, last)


__all__ = ["Change", "Drift", "Problem", "apply_sync", "drift", "plan_sync"]
