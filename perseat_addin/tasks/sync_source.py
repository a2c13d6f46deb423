"""Sync sources (SPEC §8 "Live sources"): each client's users fetched from a service's API and synced into
its Roster by the file imports' own path (:mod:`perseat_addin.tasks.import_roster`: plan, hazards, apply).

One task for ``perseat sync SOURCE`` and, later, the ribbon's *Sync sources*. A :class:`LiveSource`
(``sources/graph.py``'s ``GraphClient``; the PSA clients to come) says which Clients column names a
client's record in it (TenantID, PSACompanyID) and fetches one client's users as an
:class:`~perseat_addin.imports.roster.ImportResult`. Each client is fetched and planned on its own:
a failure (a refused sign-in, a fetch that broke part-way, a hazard that needs --force) is that
client's, with its reason, and changes nothing for it. The clients that succeeded are written in
one all-or-nothing write, as one Roster edit and one ChangeLog edit.

A source that also holds time (a PSA: :class:`UsageSource`, with ``fetch_usage``) brings each client's
time entries of the period into Usage with the same client: by the usage import's rules (Source and Ref
kept, so a second sync of the period adds nothing), fetched after the users, and failing with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from perseat_addin.cells import plain_text
from perseat_addin.engine.roster_sync import ImportPlan, changelog_rows
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.imports.roster import ImportResult
from perseat_addin.imports.usage import UsageImport
from perseat_addin.model import Period
from perseat_addin.tables import TableEdit, is_blank
from perseat_addin.tasks import import_roster, import_usage
from perseat_addin.tasks.import_roster import Hazards
from perseat_addin.tasks.import_usage import UsagePlan
from perseat_addin.tasks.port import BookPort, require
from perseat_addin.workbook.load import load_source


class LiveSource(Protocol):
    """A service a client's users can be fetched from."""

    label: str  # "Microsoft Graph": the ChangeLog Source of what a sync writes
    key_column: str  # the Clients column naming the client's record there: "TenantID", "PSACompanyID"

    def fetch(self, key: str, progress: Callable[[int], None] | None = None) -> ImportResult:
        """The client's users, every page, or a SourceError (nothing half-fetched)."""
        ...


@runtime_checkable
class UsageSource(Protocol):
    """A live source that also holds the time worked for a client (a PSA's time entries)."""

    usage_label: str  # "ConnectWise PSA time entries": the Usage Source of its rows (as its export's importer)

    def fetch_usage(self, key: str, period: str, client: str | None = None,
                    progress: Callable[[int], None] | None = None) -> UsageImport:
        """The time of ``key``'s record in ``period`` (YYYY-MM) as Usage rows of ``client``, by the rules of the
        source's time export, every page, or a SourceError."""
        ...


@dataclass(frozen=True)
class Target:
    """A client to sync, and its record in the source."""

    client: str
    key: str


@dataclass
class ClientSync:
    """One client's sync: planned, or failed with its reason."""

    client: str
    key: str
    plan: ImportPlan | None = None
    hazards: Hazards | None = None
    error: str | None = None
    usage: UsagePlan | None = None  # the period's time entries not yet in Usage (a UsageSource)

    @property
    def ok(self) -> bool:
        return self.error is None and self.plan is not None


def targets(book: BookPort, key_column: str, client: str | None, every: bool) -> tuple[list[Target], list[str]]:
    """The clients to sync (``client``, or ``every`` client with a ``key_column``), and the names of the
    clients left out because that cell is blank (with ``every``) or because they are Inactive."""
    clients = require(book, "Clients")
    ci, ki, si = clients.col("Client"), clients.col(key_column), clients.col("Status")
    if ci is None:
        raise PerseatError("the Clients table has no Client column")
    if ki is None:
        raise PerseatError(f"the Clients table has no {key_column} column: add a {key_column} column to Clients and "
                           f"fill in each client's {key_column}")
    found: list[Target] = []
    skipped: list[str] = []
    for row in clients.rows:
        name, key = plain_text(row[ci]), plain_text(row[ki])
        status = plain_text(row[si]) if si is not None else ""
        if not name:
            continue
        if client is not None:
            if name.lower() == client.strip().lower():
                if not key:
                    raise PerseatError(f"{name} has no {key_column} in Clients; type it there, then sync again")
                return [Target(name, key)], []
            continue
        if status.lower() == "inactive" or not key:
            skipped.append(name)
        elif every:
            found.append(Target(name, key))
    if client is not None:
        raise InputProblems([Problem("Clients", None, "Client", f'client "{client.strip()}" not in Clients',
                                     "add the client to Clients first, or fix the client name")])
    return found, skipped


def plan_all(book: BookPort, source: LiveSource, todo: Sequence[Target], effective: dt.date, *,
             apply: bool = False, force: bool = False, period: Period | None = None,
             progress: Callable[[Target], Callable[[int], None] | None] | None = None,
             done: Callable[[ClientSync], None] | None = None) -> list[ClientSync]:
    """Fetch and plan every client of ``todo``; each succeeds or fails on its own. Problems in the workbook
    itself stop them all (InputProblems). ``apply``/``force`` decide which hazards block, as for
    ``perseat import``; ``progress(target)`` gives a per-page callback, ``done`` hears of each client. A
    :class:`UsageSource` also brings each client's time of ``period`` (default: Settings BillingPeriod)."""
    require(book, "Roster")
    loaded = load_source(book.source(), name=book.name)
    usage = source if isinstance(source, UsageSource) else None
    if usage is not None:
        require(book, "Usage", " to add the time entries to")
        period = period or loaded.settings.period
        tickets = import_usage.known_tickets(book.source())
    out: list[ClientSync] = []
    for t in todo:
        result = ClientSync(t.client, t.key)
        try:
            imported = source.fetch(t.key, progress(t) if progress is not None else None)
            why = f"its {source.key_column} is {t.key}"
            planned = import_roster.plan(book, imported, t.client, why, effective, loaded)
            danger = import_roster.hazards(book, planned)
            blocking = danger.refused + ([] if force else [x for x in danger.needs_force if danger.mismatch or apply])
            result.plan, result.hazards = planned, danger
            if blocking:
                result.error = "; ".join(blocking)
            elif usage is not None and period is not None:
                time = usage.fetch_usage(t.key, str(period), t.client)
                result.usage = import_usage.plan(book, import_usage.without_known_tickets(time, tickets), log=False)
        except InputProblems as exc:
            result.error = "; ".join(str(p) for p in exc.problems)
        except PerseatError as exc:  # SourceError among them: a message in words, no secret
            result.error = str(exc)
        out.append(result)
        if done is not None:
            done(result)
    return out


def apply_all(book: BookPort, results: Sequence[ClientSync], source: str,
              when: dt.datetime | None = None, usage_source: str = "") -> int:
    """Write every successful client's Roster changes, its new Usage rows and their ChangeLog rows (Source
    ``source``; ``usage_source`` for the Usage rows) in one write; the number of changes written (a client's
    new Usage rows count as one)."""
    ok = [r for r in results if r.ok and r.plan is not None]
    plans = [r.plan for r in ok if r.plan is not None and r.plan.changes]
    added = [u for r in ok if r.usage is not None for u in r.usage.added]
    if not plans and not added:
        return 0
    log = require(book, "ChangeLog", " to record the sync in")
    stamp = when or dt.datetime.now().replace(microsecond=0)
    edits: list[TableEdit] = []
    rows = [row for p in plans for row in changelog_rows(log, p.changes, source, stamp)]
    if plans:
        roster = require(book, "Roster")
        cells = tuple(c for p in plans for c in p.edit.cells)
        append = tuple(a for p in plans for a in p.edit.append)
        edits.append(TableEdit(roster.name, cells, (), append))
    if added:
        merged = UsageImport(added, [], usage_source or source, "")
        edits += import_usage.plan(book, merged, log=False).edits
        rows += changelog_rows(log, import_usage.usage_changes(added), usage_source or source, stamp)
    edits.append(TableEdit(log.name, (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), tuple(rows)))
    book.write(edits)
    return sum(len(p.changes) for p in plans) + len({u.client for u in added})


__all__ = ["ClientSync", "LiveSource", "Target", "UsageSource", "apply_all", "plan_all", "targets"]
