"""Import roster (SPEC §8): a Microsoft 365 / PSA user export, or one described in Mappings, synced into
one client's Roster, with ChangeLog rows and the drift report.

One task for ``perseat import`` and the ribbon's *Import roster* button, over the
:class:`~perseat_addin.tasks.port.BookPort`: :func:`source_of` names the importer,
:func:`find_client` the client, :func:`plan` the Roster edit (pure rules in
:mod:`perseat_addin.engine.roster_sync`), :func:`apply` writes Roster and ChangeLog. The
ribbon's :func:`import_roster` adds the preview and the Yes/No; an export of time entries or
tickets goes to :mod:`perseat_addin.tasks.import_usage` instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perseat_addin.cells import date_reader, plain_text
from perseat_addin.engine.roster_sync import ImportPlan, changelog_rows, guess_client, plan_import
from perseat_addin.errors import InputProblems, PerseatError, Problem, UsageError
from perseat_addin.imports.mappings import SOURCES, Mapping, saved_mappings
from perseat_addin.imports.roster import ImportResult, detect_source, read_export
from perseat_addin.imports.usage import USAGE_SOURCES, detect_usage_source
from perseat_addin.model import Book, ImportKind
from perseat_addin.tables import TableEdit, is_blank
from perseat_addin.tasks import import_usage
from perseat_addin.tasks.port import BookPort, require
from perseat_addin.workbook.load import load_source

if TYPE_CHECKING:  # the Excel side: loaded by the ribbon's task only (start-up time of the command line)
    from perseat_addin.tasks.livebook import ExcelBook, LiveBook, Outcome

PREVIEW_LINES = 15
"""Changes listed in the Import roster preview (the rest are counted)."""


def mappings(book: BookPort, kind: ImportKind = ImportKind.ROSTER) -> dict[str, Mapping]:
    """The workbook's saved column mappings of ``kind`` (``Roster`` also gives the Usage ones, after the
    Roster ones); InputProblems if the Mappings table has any."""
    raw = book.source().table("Mappings")
    found, problems = saved_mappings(raw, kind)
    if problems:
        raise InputProblems(problems)
    if kind == ImportKind.ROSTER:
        usage, problems = saved_mappings(raw, ImportKind.USAGE)
        if problems:
            raise InputProblems(problems)
        found = {**usage, **found}
    return found


def source_of(book: BookPort, name: str, file: Path) -> str | Mapping:
    """The importer SOURCE names: a built-in one, ``auto`` (recognised from the headers), or a saved
    mapping (Roster or Usage). Usage sources come back as their key (see :data:`USAGE_SOURCES`)."""
    key = name.strip().lower()
    if key in USAGE_SOURCES or key in SOURCES:
        return key if key in USAGE_SOURCES else name
    saved = mappings(book)
    if key == "auto":
        return detect_source(file, [m for m in saved.values() if m.kind == ImportKind.ROSTER])
    found = saved.get(key)
    if found is None:
        known = [*SOURCES, *USAGE_SOURCES, *(m.name for m in saved.values())]
        raise UsageError(f'no importer or saved mapping called "{name}": use one of {", ".join(known)}; or add '
                         f"rows for {name} to the workbook's Mappings table (Source, Field, Column)")
    return found


def is_usage(source: str | Mapping) -> bool:
    """True for a time-entry or ticket source (rows for the Usage table)."""
    return source.kind == ImportKind.USAGE if isinstance(source, Mapping) else source in USAGE_SOURCES


def find_client(book: BookPort, imported: ImportResult, client: str | None) -> tuple[str | None, str]:
    """The client (as Clients spells it) and how it was found; (None, why not) when the export does not
    say. A named client that is not in Clients is a problem."""
    clients = book.rows("Clients")
    names = [plain_text(clients.get(r, "Client")) for r in clients.rows] if clients is not None else []
    if client is None:
        roster = require(book, "Roster")
        found, why = guess_client(imported, names, roster)
        if found is None:
            return None, why
        client = found
    else:
        why = ""
    for name in names:
        if name and name.lower() == client.strip().lower():
            return name, why
    raise InputProblems([Problem("Clients", None, "Client", f'client "{client.strip()}" not in Clients',
                                 "add the client to Clients first, or fix the client name")])


def plan(book: BookPort, imported: ImportResult, client: str, why: str, effective: dt.date,
         loaded: Book | None = None) -> ImportPlan:
    """The sync of ``imported`` into ``client``'s Roster from ``effective``; problems anywhere in the
    workbook stop it (``loaded``: the workbook already validated)."""
    roster = require(book, "Roster")
    if loaded is None:
        loaded = load_source(book.source(), name=book.name)
    return plan_import(roster, client, why, imported, effective, loaded, book.source())


@dataclass(frozen=True)
class Hazards:
    """What makes an import dangerous to apply: ``refused`` never applies (an export naming no users);
    ``needs_force`` applies only when confirmed (``--force`` on the command line, Yes in Excel)."""

    refused: list[str]
    needs_force: list[str]
    mismatch: bool  # the export's e-mail domains match none of the client's: even the preview needs --force


def hazards(book: BookPort, planned: ImportPlan) -> Hazards:
    """An import that cannot destroy (SPEC §8): a header-only or failed export never ends anyone; an export
    whose e-mail domains match none of the client's Roster, or that would end more than half of the client's
    current users, needs confirming."""
    imported, client = planned.imported, planned.client
    name = Path(imported.file).name if imported.file else "the export"
    refused: list[str] = []
    if not imported.rows:
        left = f" ({len(imported.problems)} rows could not be read)" if imported.problems else ""
        refused.append(f"{name} names no users{left} — a header-only or failed export; it would end every user "
                       f"of {client}, so nothing was changed. Export the users again and check the file")
    roster = require(book, "Roster")
    ci, ui, si, ei = (roster.col(h) for h in ("Client", "UserID", "Start", "End"))
    key = client.lower()
    mine = [r for r in roster.rows if plain_text(r[ci]).lower() == key] if ci is not None else []
    ids = [plain_text(r[ui]) for r in mine] if ui is not None else []
    theirs = {u.lower().rsplit("@", 1)[1] for u in ids if "@" in u}
    incoming = {u.user_id.lower().rsplit("@", 1)[1] for u in imported.rows if "@" in u.user_id}
    needs: list[str] = []
    mismatch = bool(theirs and incoming and not theirs & incoming)
    if mismatch:
        needs.append(f"none of the e-mail domains in {name} ({', '.join(sorted(incoming)[:3])}"
                     f"{', …' if len(incoming) > 3 else ''}) is used by {client}'s Roster "
                     f"({', '.join(sorted(theirs)[:3])}{', …' if len(theirs) > 3 else ''}) — is this {client}'s "
                     "export? If it is, confirm with --force")
    day = planned.effective
    day_of = date_reader()
    active = sum(1 for r in mine
                 if (si is None or (day_of(r[si]) or day) <= day) and (ei is None or (day_of(r[ei]) or day) >= day))
    ends = sum(1 for c in planned.changes if c.action == "end")
    if imported.rows and active and ends * 2 > active:
        needs.append(f"the import would end {ends} of {client}'s {active} current users (more than half) — check "
                     f"that {name} is complete; to apply it anyway add --force")
    return Hazards(refused, needs, mismatch)


def apply(book: BookPort, planned: ImportPlan, when: dt.datetime | None = None) -> None:
    """Write the Roster edit and one ChangeLog row per change (all or nothing)."""
    if not planned.changes:
        return
    log = require(book, "ChangeLog", " to record the import in")
    rows = changelog_rows(log, planned.changes, planned.imported.source or "import",
                          when or dt.datetime.now().replace(microsecond=0))
    log_edit = TableEdit(log.name, (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), tuple(rows))
    book.write([planned.edit, log_edit])


def import_roster(live: LiveBook, path: str | None, today: dt.date | None = None) -> Outcome:
    """Import roster (SPEC §8): read a Microsoft 365 / PSA export (or one with a saved mapping), find its
    client, show the changes and the drift, and on Yes write Roster and ChangeLog. A PSA time-entry or
    ticket export (or a saved Usage mapping) adds its rows to the Usage table instead."""
    from perseat_addin.tasks.livebook import PREFIX, ExcelBook, Outcome, load_live

    if not path:
        raise PerseatError("choose the export file to import: press Import roster and pick the file")
    effective = today or dt.date.today()
    live.status(f"{PREFIX}: reading the workbook…")
    book = ExcelBook(live)
    saved = mappings(book)
    usage_source = detect_usage_source(Path(path), saved.values())
    if usage_source is not None:
        return _import_usage(live, book, Path(path), usage_source)
    for name in ("Roster", "ChangeLog"):
        require(book, name)
    loaded = load_live(live, book.tables)
    live.status(f"{PREFIX}: reading {Path(path).name}…")
    source = detect_source(Path(path), [m for m in saved.values() if m.kind == ImportKind.ROSTER])
    imported = read_export(Path(path), source)
    client, why = find_client(book, imported, None)
    if client is None:
        client = _selected_client(book, loaded)
        if client is None:
            raise PerseatError(f"cannot tell which client {Path(path).name} belongs to ({why}); select the "
                               "client's row on the Clients sheet and press Import roster again")
        why = "it is the client selected on the sheet"
    planned = plan(book, imported, client, why, effective, loaded)
    danger = hazards(book, planned)
    if danger.refused:
        raise PerseatError(danger.refused[0])
    report, changes, warnings = planned.drift, planned.changes, planned.warnings
    head = (f"{Path(path).name}: {len(imported.rows)} users read as a {imported.source} export, for "
            f"{client} ({why}). Changes take effect {effective.isoformat()}.")
    drift_line = (f"Drift: licensed in the export {report.licensed_in_source}, billable in the Roster "
                  f"{report.billable_in_roster}, seats on the last invoice "
                  f"{'never invoiced' if report.last_invoice is None else report.seats_on_last_invoice}.")
    extra = [f"{len(warnings)} warning(s) about the file, e.g. {warnings[0]}"] if warnings else []
    if not changes:
        return Outcome("\n".join([head, "", "The Roster already matches: nothing to change.", drift_line, *extra]))
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    summary = ", ".join(f"{n} to {a}" if a in ("add", "end", "return") else f"{n} field update{'s' * (n != 1)}"
                        for a, n in counts.items())
    listed = [f"• {c}" for c in changes[:PREVIEW_LINES]]
    if len(changes) > PREVIEW_LINES:
        listed.append(f"…and {len(changes) - PREVIEW_LINES} more.")
    caution = [f"CAUTION: {t.replace('confirm with --force', 'answer Yes').replace('add --force', 'answer Yes')}."
               for t in danger.needs_force]
    question = "\n".join([head, "", *caution, *([""] if caution else []), f"{summary}:", *listed, "", drift_line,
                          *extra, "", "Write these changes to the Roster and ChangeLog? (No rows are deleted.)"])
    if not live.confirm(question, f"{PREFIX}: Import roster"):
        return Outcome("Nothing was changed.")
    live.status(f"{PREFIX}: writing the Roster…")
    apply(book, planned)
    return Outcome(f"{client}: {summary} written to the Roster, each logged in ChangeLog. Save the workbook to "
                   f"keep them.\n{drift_line}")


def _import_usage(live: LiveBook, book: ExcelBook, path: Path, source: str | Mapping) -> Outcome:
    """The Usage path of Import roster: preview the new rows per client; on Yes add them to Usage."""
    from perseat_addin.tasks.livebook import PREFIX, Outcome, load_live

    loaded = load_live(live, book.tables)
    live.status(f"{PREFIX}: reading {path.name}…")
    imported = import_usage.read(book, path, source, loaded)
    planned = import_usage.plan(book, imported)
    head = (f"{path.name}: {len(imported.rows)} usage rows read as {imported.source}; {len(planned.added)} new, "
            f"{planned.already} already in the Usage table.")
    issues = list(imported.problems)
    extra = [f"{len(issues)} note(s) about the file, e.g. {issues[0]}"] if issues else []
    if not planned.added:
        return Outcome("\n".join([head, "", "Nothing to add.", *extra]))
    listed = [f"• {line}" for line in import_usage.preview(planned)]
    if len(listed) > PREVIEW_LINES:
        listed = [*listed[:PREVIEW_LINES], f"…and {len(listed) - PREVIEW_LINES} more clients."]
    question = "\n".join([head, "", *listed, *extra, "", "Add these rows to the Usage table?"])
    if not live.confirm(question, f"{PREFIX}: Import usage"):
        return Outcome("Nothing was changed.")
    import_usage.apply(book, planned)
    return Outcome(f"Added {len(planned.added)} rows to the Usage table, logged in ChangeLog. Save the workbook "
                   "to keep them.")


def _selected_client(book: ExcelBook, loaded: Book) -> str | None:
    """The client named in the active row of the Clients or Roster sheet."""
    live = book.live
    at = live.selected_row()
    if at is None:
        return None
    sheet, row = at
    names = {c.name.lower(): c.name for c in loaded.clients}
    for name in ("Clients", "Roster"):
        found = book.found(name)
        if found is None:
            continue
        ref, rows = found
        if ref.sheet.lower() == sheet.lower() and ref.header_row < row <= ref.last_row:
            j = rows.col("Client")
            if j is not None:
                cell = live.read(ref.sheet, row, ref.first_col + j, 1, 1)[0][0]
                return names.get(str(cell or "").strip().lower())
    return None


__all__ = ["PREVIEW_LINES", "apply", "find_client", "import_roster", "is_usage", "mappings", "plan", "source_of"]
