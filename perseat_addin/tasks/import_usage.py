"""Import usage (SPEC §8): PSA time entries, tickets or a mapped export → new rows of the Usage table.

One task for ``perseat import <usage source>`` and the ribbon's *Import roster* button
(which takes usage exports too): :func:`read` validates the workbook and reads the export,
:func:`plan` finds the rows not yet in the Usage table (each keeps its Source and Ref, so a
second import of the same file adds nothing), :func:`apply` writes them and one ChangeLog row
per client through the :class:`~perseat_addin.tasks.port.BookPort`. :func:`preview` is the
dry run's per-client summary, with the time not billable to the client shown apart.

Time the PSA marks as not billable is written with Billable = No (the column is added to a
Usage table made before it, only when such time arrives).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from perseat_addin.cells import cell_text
from perseat_addin.engine.roster_sync import Change, changelog_rows
from perseat_addin.errors import PerseatError
from perseat_addin.imports.exportfile import norm
from perseat_addin.imports.mappings import Mapping
from perseat_addin.imports.usage import UsageImport, UsageRow, non_billable_totals, read_usage, usage_totals
from perseat_addin.model import Book
from perseat_addin.tables import TableEdit, TableSource, is_blank
from perseat_addin.tasks.port import BookPort, require
from perseat_addin.workbook.load import load_source


@dataclass(frozen=True)
class UsagePlan:
    """What an import adds: the new rows, how many were already there, and the table edits."""

    imported: UsageImport
    added: list[UsageRow]
    already: int  # rows of the file already in the Usage table
    edits: tuple[TableEdit, ...]


def known_tickets(source: TableSource) -> set[str]:
    """``source|ticket`` of every ticket the Usage table already counts."""
    raw = source.table("Usage")
    out: set[str] = set()
    if raw is None:
        return out
    cols = {norm(h): j for j, h in enumerate(raw.headers)}
    s, t, n = cols.get("source"), cols.get("ticket"), cols.get("tickets")
    if s is None or t is None:
        return out
    for row in raw.rows:
        if cell_text(row[t]) and (n is None or cell_text(row[n]) not in ("", "0")):
            out.add(f"{cell_text(row[s])}|{cell_text(row[t])}")
    return out


def read(book: BookPort, file: Path, source: str | Mapping, loaded: Book | None = None) -> UsageImport:
    """Validate the workbook (problems anywhere stop the import; ``loaded``: already validated), then read the
    export for its Clients."""
    if loaded is None:
        loaded = load_source(book.source(), name=book.name)
    return read_usage(file, source, [c.name for c in loaded.clients], known_tickets=known_tickets(book.source()))


def without_known_tickets(imported: UsageImport, known: set[str]) -> UsageImport:
    """``imported`` with no ticket counted that the Usage table already counts (``known``: ``source|ticket``, see
    :func:`known_tickets`) — a ticket counts once across imports, as :func:`read` gives when it passes them in."""
    rows = [dataclasses.replace(u, tickets=0) if u.tickets and u.ticket and f"{u.source}|{u.ticket}" in known else u
            for u in imported.rows]
    return dataclasses.replace(imported, rows=rows)


def plan(book: BookPort, imported: UsageImport, now: dt.datetime | None = None, *, log: bool = True) -> UsagePlan:
    """The rows of ``imported`` the Usage table does not hold yet, as edits of Usage and ChangeLog (only of Usage
    without ``log``: a caller that writes its own ChangeLog rows adds :func:`usage_changes`)."""
    usage = require(book, "Usage")
    lacking = usage.missing(("Source", "Ref"))
    if lacking:
        raise PerseatError(f"the Usage table lacks column(s) {', '.join(lacking)}: add them to its header row "
                           "(as in the template) so a second import of the same file adds nothing")
    have = {(cell_text(usage.get(r, "Source")), cell_text(usage.get(r, "Ref"))) for r in usage.rows}
    new = [u for u in imported.rows if (u.source, u.ref) not in have]
    if not new:
        return UsagePlan(imported, new, len(imported.rows), ())
    blank = tuple(i for i, r in enumerate(usage.rows) if is_blank(r))
    added = ("Billable",) if any(not u.billable for u in new) and usage.col("Billable") is None else ()
    usage = usage.with_columns(added)
    day = dt.datetime.combine
    rows = tuple(usage.make({"Client": u.client, "UserID": u.user or None, "Date": day(u.date, dt.time()),
                             "Tickets": u.tickets, "Hours": u.hours, "Ticket": u.ticket or None,
                             "Source": u.source, "Ref": u.ref, "Billable": "Yes" if u.billable else "No"})
                 for u in new)
    edits = [TableEdit(usage.name, (), blank, rows, add_columns=added)]
    table = book.rows("ChangeLog") if log else None
    if table is not None:
        when = now or dt.datetime.now().replace(microsecond=0)
        log_rows = changelog_rows(table, usage_changes(new), imported.source, when)
        edits.append(TableEdit(table.name, (), tuple(i for i, r in enumerate(table.rows) if is_blank(r)),
                               tuple(log_rows)))
    return UsagePlan(imported, new, len(imported.rows) - len(new), tuple(edits))


def usage_changes(rows: list[UsageRow]) -> list[Change]:
    """One ChangeLog change per client of the Usage rows added: rows, tickets, hours (and those not billable)."""
    apart = non_billable_totals(rows)
    return [Change("usage", c, "", "Usage", None, f"{n} rows, {t} tickets, {h.normalize():f} h"
                   + (f" ({apart[c][1].normalize():f} h not billable)" if c in apart else ""), None)
            for c, (n, t, h) in usage_totals(rows).items()]


def apply(book: BookPort, planned: UsagePlan) -> None:
    """Write the planned rows (all or nothing)."""
    book.write(planned.edits)


def preview(planned: UsagePlan) -> list[str]:
    """One line per client of the rows to add: rows, tickets and hours, and of those hours the ones not billable
    to the client (kept for the report, never billed as overage)."""
    apart = non_billable_totals(planned.added)
    out = []
    for c, (n, t, h) in sorted(usage_totals(planned.added).items()):
        line = f"{c}: {n} rows, {t} tickets, {h.normalize():f} h"
        if c in apart:
            k, nb = apart[c]
            line += f", of which {nb.normalize():f} h ({k} rows) not billable to the client"
        out.append(line)
    return out


def non_billable(planned: UsagePlan) -> tuple[int, dict[str, str]]:
    """Rows not billable to the client among those to add, and their hours per client (as text, for --json)."""
    apart = non_billable_totals(planned.added)
    return sum(n for n, _ in apart.values()), {c: f"{h.normalize():f}" for c, (_, h) in sorted(apart.items())}


__all__ = ["UsagePlan", "apply", "known_tickets", "non_billable", "plan", "preview", "read", "usage_changes",
           "without_known_tickets"]
