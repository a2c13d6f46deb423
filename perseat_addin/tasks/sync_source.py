"""Sync sources (SPEC §8 "Live sources"): each client's users fetched from a service's API and synced into
its Roster by the file imports' own path (:mod:`perseat_addin.tasks.import_roster`: plan, hazards, apply).

One task for ``perseat sync SOURCE`` and the ribbon's *Sync sources* (:func:`sync_sources`). A :class:`LiveSource`
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
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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
from perseat_addin.tasks.push import psa_of
from perseat_addin.workbook.load import load_source

if TYPE_CHECKING:
    from perseat_addin.tasks.livebook import LiveBook, Outcome

SOURCES = {"graph": "Microsoft 365 (Microsoft Graph)", "connectwise": "ConnectWise PSA", "autotask": "Autotask",
           "halopsa": "HaloPSA"}
"""The live sources (SPEC §8), by the name ``perseat sync`` and the ribbon take."""


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


def open_source(name: str) -> Any:
    """The client of live source ``name``, its credentials read now (environment, then the OS keyring); a
    PerseatError for an unknown name. Use it as a context manager."""
    key = name.strip().lower()
    if key == "connectwise":
        from perseat_addin.sources.connectwise import ConnectWiseClient

        return ConnectWiseClient.from_env()
    if key == "autotask":
        from perseat_addin.sources.autotask import AutotaskClient

        return AutotaskClient.from_env()
    if key == "halopsa":
        from perseat_addin.sources.halopsa import HaloClient

        return HaloClient.from_env()
    if key == "graph":
        from perseat_addin.sources.graph import GraphClient

        return GraphClient.from_env()
    raise PerseatError(f'no live source called "{name}": use one of {", ".join(SOURCES)}')


def client_preview(r: ClientSync, label: str, key_column: str, effective: dt.date) -> tuple[list[str], list[str]]:
    """A planned client's preview, as ``perseat sync`` prints it: (the lines of changes, drift and usage; the
    notes — usage problems, cautions, warnings)."""
    assert r.plan is not None
    planned = r.plan
    out = [f"{r.client} ({key_column} {r.key}): {len(planned.imported.rows)} users in {label}, effective {effective}:"]
    out += [f"  {c}" for c in planned.changes] or ["  no changes: the Roster already matches"]
    out.append(f"  Drift: {planned.drift}")
    notes: list[str] = []
    if r.usage is not None:
        u = r.usage
        out.append(f"  Usage: {len(u.imported.rows)} time entries in {label}; {len(u.added)} new, {u.already} "
                   "already in the Usage table")
        out += [f"    {line}" for line in import_usage.preview(u)]
        notes += [f"{p.severity}: {r.client}: {p}" for p in u.imported.problems]
    notes += [f"warning: {r.client}: {t}" for t in (r.hazards.needs_force if r.hazards else ())]
    notes += [f"warning: {r.client}: {w}" for w in planned.warnings]
    return out, notes


def failure_line(r: ClientSync) -> str:
    """A failed client, in words."""
    return f"{r.client}: {r.error}; nothing was changed for {r.client}."


def change_count(results: Sequence[ClientSync]) -> int:
    """Roster changes and new Usage rows of the clients that succeeded."""
    ok = [r for r in results if r.ok]
    return sum(len(r.plan.changes) for r in ok if r.plan is not None) + \
        sum(len(r.usage.added) for r in ok if r.usage is not None)


def configured(book: BookPort) -> list[str]:
    """The live sources this workbook is set up for: graph when a client has a TenantID, Settings PSA when a
    client has a PSACompanyID."""
    clients = require(book, "Clients")
    out = []
    for name, column in (("graph", "TenantID"), ("psa", "PSACompanyID")):
        j = clients.col(column)
        if j is None or not any(plain_text(row[j]) for row in clients.rows):
            continue
        if name == "psa":
            try:
                name = psa_of(book)
            except PerseatError:
                continue
        out.append(name)
    return out


def sync_sources(live: LiveBook, today: dt.date | None = None,
                 open_source: Callable[[str], Any] = open_source) -> Outcome:
    """Sync sources (the ribbon): ask which configured source, fetch and plan every client that has its key,
    show the preview ``perseat sync --all`` prints, and on Yes write Roster, Usage and ChangeLog. A client
    whose change needs ``--force`` on the command line fails here, with its reason: the preview is exactly
    what Yes writes."""
    from perseat_addin.tasks.livebook import PREFIX, ExcelBook, Outcome, Progress, capped

    title = f"{PREFIX}: Sync sources"
    live.status(f"{PREFIX}: reading the workbook…")
    book = ExcelBook(live)
    choices = configured(book)
    if not choices:
        raise PerseatError("no live source is set up: type each client's TenantID (Microsoft 365) or PSACompanyID in "
                           "Clients, and for a PSA its name in Settings PSA (connectwise, autotask or halopsa)")
    typed = live.ask(f"Sync which source? Type one of: {', '.join(choices)}.", title, choices[0])
    if typed is None or not typed.strip():
        return Outcome("Nothing was changed.")
    name = typed.strip().lower()
    if name not in choices:
        raise PerseatError(f'"{typed.strip()}" is not a source this workbook is set up for; type one of '
                           f"{', '.join(choices)}")
    effective = today or dt.date.today()
    with open_source(name) as source:
        todo, skipped = targets(book, source.key_column, None, True)
        if not todo:
            raise PerseatError(f"no client has a {source.key_column} in Clients; type each client's "
                               f"{source.key_column} there, then sync again")
        tick = Progress(live, f"reading {source.label}:", len(todo), "clients")

        def pages(t: Target) -> Callable[[int], None]:
            seen = [0]

            def page(n: int) -> None:
                seen[0] += n
                live.status(f"{PREFIX}: {t.client}: {seen[0]:,} records read from {source.label}…")
            return page
        results = plan_all(book, source, todo, effective, apply=True, progress=pages, done=lambda r: tick(1))
    label, usage_label = source.label, getattr(source, "usage_label", "")
    lines: list[str] = []
    notes: list[str] = []
    for r in results:
        if r.ok:
            out, more = client_preview(r, label, source.key_column, effective)
            lines += out
            notes += more
    failed = [failure_line(r) for r in results if not r.ok]
    ok = sum(r.ok for r in results)
    done = f"{ok} of {len(results)} clients synced"
    if skipped:
        done += f"; {len(skipped)} without a {source.key_column} or Inactive left out"
    n = change_count(results)
    body = [*capped(lines, 40), *(["", *capped(failed, 10)] if failed else []),
            *(["", *capped(notes, 10)] if notes else [])]
    if not n:
        return Outcome("\n".join([*body, "", f"{done}: nothing to change."]), ok=not failed)
    what = "Roster, Usage and ChangeLog" if usage_label else "Roster and ChangeLog"
    if not live.confirm("\n".join([*body, "", f"{done}: {n} changes. Write them to the {what}? (No rows are "
                                   "deleted.)"]), title):
        return Outcome("Nothing was changed.")
    live.status(f"{PREFIX}: writing the {what}…")
    written = apply_all(book, results, label, usage_source=usage_label)
    return Outcome(f"{done}: {written} changes written to the {what}, each logged in ChangeLog. Save the workbook "
                   "to keep them." + ("\n\n" + "\n".join(capped(failed, 10)) if failed else ""), ok=not failed)


__all__ = ["SOURCES", "ClientSync", "LiveSource", "Target", "UsageSource", "apply_all", "change_count",
           "client_preview", "configured", "failure_line", "open_source", "plan_all", "sync_sources", "targets"]
