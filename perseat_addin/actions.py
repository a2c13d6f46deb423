"""The ribbon actions (SPEC §6) over any open workbook: generate, finalize, check, import, report, help.

Everything an action decides lives here and is shared with the CLI: reading the
tables into :class:`~.reader.MemoryTables`, pricing with :func:`~.invoicing.invoice_run`,
the Draft/Final row rules of :mod:`~.writeback`, the invoice sheet layout, the
output folder, the messages. The open workbook is reached only through the
small :class:`LiveBook` protocol: ``perseat_addin.macros`` implements it over
xlwings (Excel), the test suite over openpyxl. Nothing here imports xlwings.

Each action returns one :class:`Outcome`; :func:`perform` runs an action with
screen updating off, clears the status bar, turns every problem into one
message box, and shows that box.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import InputProblems, PerseatError, Problem
from .importers import Mapping, detect_source, mapping_problems, read_export, saved_mappings
from .invoicing import Invoice, Run, invoice_run
from .layout import Cell, SheetLayout, Style, invoice_layout, invoice_sheet_names, typed
from .load import load_source
from .model import Book, Period
from .money import fmt_money
from .outputs import write_outputs
from .reader import MemoryTables, RawTable, col_letter
from .schema import SCHEMA
from .sync import changelog_rows, check_types, drift_of, guess_client, plan_sync
from .writeback import (
    NUMBER_FORMATS,
    TableEdit,
    TableRows,
    advanced_settings,
    draft_differences,
    finalize_edit,
    is_blank,
    record_edits,
    replaced_drafts,
    settings_edit,
    writeback_problems,
)

PREFIX = "Per-Seat Billing"
"""Status bar and message box prefix."""

MAX_LINES = 25
"""Most problem (or invoice) lines one message box lists."""

WRITTEN_TABLES = ("Invoices", "InvoiceLines", "Settings")


# --------------------------------------------------------------------------
# The open workbook, as the actions need it


@dataclass(frozen=True)
class TableRef:
    """Where an Excel table (ListObject) sits. Rows and columns are Excel's, 1-based."""

    name: str
    sheet: str
    header_row: int
    first_col: int
    n_cols: int
    n_rows: int  # data rows; 0 for a table with only its header
    totals_row: bool = False

    @property
    def last_row(self) -> int:
        """Excel row of the last data row (the header row when there is none)."""
        return self.header_row + self.n_rows

    def address(self, row: int, n_rows: int) -> str:
        a, b = col_letter(self.first_col - 1), col_letter(self.first_col + self.n_cols - 2)
        return f"{self.sheet}!{a}{row}:{b}{row + n_rows - 1}"


@runtime_checkable
class LiveBook(Protocol):
    """The open workbook: what an action reads, writes and shows. Excel semantics throughout.

    ``write`` enters values as if typed: Excel reads text that looks like a number,
    a date or a formula as one, unless it starts with an apostrophe (see :func:`typed`).
    """

    @property
    def fullname(self) -> str:
        """The workbook's full path (``Book1`` when never saved; a URL when opened from the web)."""
        ...

    def table(self, name: str) -> TableRef | None:
        """The Excel table ``name`` (any case), or None."""
        ...

    def used_range(self, sheet: str) -> tuple[str, int, int, list[list[Any]]] | None:
        """(real sheet name, first row, first column, values) of a sheet without a table; None if no such sheet."""
        ...

    def read(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> list[list[Any]]:
        """Cell values, 2-D: numbers as float, dates as datetime, blanks as None, errors as '#N/A'-style text."""
        ...

    def write(self, sheet: str, row: int, col: int, values: Sequence[Sequence[Any]],
              number_formats: Sequence[str | None] | None = None) -> None:
        """Enter a 2-D block of values (None clears a cell); ``number_formats`` per column of the block."""
        ...

    def resize_table(self, name: str, n_rows: int) -> None:
        """Make table ``name`` span its header and ``n_rows`` data rows (same columns)."""
        ...

    def delete_rows(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> None:
        """Delete cells (whole table rows), shifting the cells below up."""
        ...

    def sheet_names(self) -> list[str]:
        ...

    def put_sheet(self, layout: SheetLayout) -> None:
        """Add sheet ``layout.name`` after the last sheet (replacing one of that name) and lay it out."""
        ...

    def delete_sheet(self, name: str) -> None:
        ...

    def export_pdf(self, sheet: str, path: Path) -> None:
        """Export one sheet (its print area and page setup) to a PDF file."""
        ...

    def status(self, text: str | None) -> None:
        """Show ``text`` in the status bar; None gives the status bar back to Excel."""
        ...

    def alert(self, message: str, title: str, error: bool = False) -> None:
        """One modal message box."""
        ...

    def set_updating(self, on: bool) -> None:
        """False: no screen redraws or recalculation while writing. True: restore what was there before."""
        ...

    def save(self) -> None:
        ...

    def confirm(self, message: str, title: str) -> bool:
        """A Yes/No message box; True for Yes."""
        ...

    def selected_row(self) -> tuple[str, int] | None:
        """(sheet name, Excel row) of the active cell, if any."""
        ...


# --------------------------------------------------------------------------
# A printable sheet, described as values


@dataclass
class LiveTables:
    """Every SPEC §3 table of the open workbook, read once."""

    specs: dict[str, tuple[list[list[Any]], str, int, int]] = field(default_factory=dict)
    refs: dict[str, TableRef] = field(default_factory=dict)
    rows: dict[str, TableRows | None] = field(default_factory=dict)

    def source(self) -> MemoryTables:
        return MemoryTables(dict(self.specs))


def _sheet_block(found: tuple[str, int, int, list[list[Any]]]) -> tuple[list[list[Any]], str, int, int]:
    """A table-less sheet as the file reader sees it: the first non-blank row is the header."""
    sheet, row, col, values = found
    k = 0
    while k < len(values) and is_blank(values[k]):
        k += 1
    values = values[k:]
    width = len(values[0]) if values else 0
    while width and values[0][width - 1] in (None, ""):
        width -= 1
    return [list(r[:width]) for r in values], sheet, row + k, col - 1


def read_tables(live: LiveBook) -> LiveTables:
    """Read the SPEC tables (and the written ones) from the open workbook."""
    out = LiveTables()
    for name in (*SCHEMA, "InvoiceLines"):
        ref = live.table(name)
        if ref is not None:
            values = live.read(ref.sheet, ref.header_row, ref.first_col, ref.n_rows + 1, ref.n_cols)
            out.refs[name] = ref
            out.specs[name] = (values, ref.sheet, ref.header_row, ref.first_col - 1)
            if name in WRITTEN_TABLES:
                out.rows[name] = TableRows.of(ref.name, values)
            continue
        if name in WRITTEN_TABLES:
            out.rows[name] = None  # the program writes only to real tables
        found = live.used_range(name)
        if found is not None:
            out.specs[name] = _sheet_block(found)
    return out


def _load(live: LiveBook, tables: LiveTables) -> Book:
    """Validate like ``perseat check``; also require the tables the program writes to."""
    problems = writeback_problems(tables.rows)
    try:
        book = load_source(tables.source(), name=live.fullname)
    except InputProblems as exc:
        raise InputProblems([*exc.problems, *problems]) from None
    if problems:
        raise InputProblems(problems)
    return book


# --------------------------------------------------------------------------
# Writing table edits into the open workbook


def _runs(indexes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted indexes as (first, count) runs of consecutive values."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(indexes)):
        if out and out[-1][0] + out[-1][1] == i:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out


def check_room(live: LiveBook, ref: TableRef, edit: TableEdit) -> None:
    """Refuse before anything is written if the table cannot grow by ``edit``'s new rows."""
    if not edit.changes:
        return
    if ref.totals_row:
        raise PerseatError(f"the {ref.name} table has a Total Row; turn it off (Table Design ▸ Total Row) "
                           "and try again")
    n = len(edit.append)
    if n and any(not is_blank(r) for r in live.read(ref.sheet, ref.last_row + 1, ref.first_col, n, ref.n_cols)):
        raise PerseatError(f"the {ref.name} table must grow by {n} rows into {ref.address(ref.last_row + 1, n)}, "
                           "but those cells are not empty; move what is there and try again")


def apply_edit_live(live: LiveBook, ref: TableRef, t: TableRows, edit: TableEdit) -> None:
    """Apply ``edit`` with Excel's own table operations: only changed cells are written, so rows that
    stay (Final invoices, formulas in extra columns) are never rewritten. Appends first, then deletes
    bottom-up, so the table never becomes empty on the way."""
    first = ref.header_row + 1
    by_col: dict[int, dict[int, Any]] = {}
    for i, j, v in edit.cells:
        by_col.setdefault(j, {})[i] = v
    for j, cells in sorted(by_col.items()):
        fmt = NUMBER_FORMATS.get(t.headers[j])
        for i0, n in _runs(cells):
            live.write(ref.sheet, first + i0, ref.first_col + j, [[typed(cells[i])] for i in range(i0, i0 + n)],
                       [fmt] if fmt else None)
    n_rows = ref.n_rows
    if edit.append:
        live.resize_table(ref.name, n_rows + len(edit.append))
        owned = [j for j in range(ref.n_cols) if any(r[j] is not None for r in edit.append)]
        for j0, w in _runs(owned):
            block = [[typed(r[j]) for j in range(j0, j0 + w)] for r in edit.append]
            formats = [NUMBER_FORMATS.get(t.headers[j]) for j in range(j0, j0 + w)]
            live.write(ref.sheet, first + n_rows, ref.first_col + j0, block, formats)
        n_rows += len(edit.append)
    delete = sorted(set(edit.delete))
    if delete and len(delete) == n_rows:  # an Excel table keeps one (blank) data row
        live.write(ref.sheet, first + delete[0], ref.first_col, [[None] * ref.n_cols])
        delete = delete[1:]
    for i0, n in reversed(_runs(delete)):
        live.delete_rows(ref.sheet, first + i0, ref.first_col, n, ref.n_cols)


def apply_edits(live: LiveBook, tables: LiveTables, edits: Sequence[TableEdit]) -> None:
    """Check every table has room, then apply every edit."""
    todo = []
    for edit in edits:
        name = next(k for k, v in tables.rows.items() if v is not None and v.name == edit.table)
        ref, rows = tables.refs[name], tables.rows[name]
        assert rows is not None
        check_room(live, ref, edit)
        todo.append((ref, rows, edit))
    for ref, rows, edit in todo:
        if edit.changes:
            live.status(f"{PREFIX}: writing the {ref.name} table…")
            apply_edit_live(live, ref, rows, edit)


# --------------------------------------------------------------------------
# Messages, progress, folders


@dataclass(frozen=True)
class Outcome:
    """What an action tells the user, in one message box."""

    message: str
    ok: bool = True


def problems_text(problems: Sequence[Problem], head: str | None = None, limit: int = MAX_LINES) -> str:
    """One message listing each problem's sheet, row, column and fix (at most ``limit`` lines)."""
    n = len(problems)
    lines = [head or f"{n} problem{'s' if n != 1 else ''} in the workbook; nothing was written.", ""]
    lines += [f"• {p}" for p in problems[:limit]]
    if n > limit:
        lines.append(f"…and {n - limit} more. Fix these, then press Check workbook to see the rest.")
    return "\n".join(lines)


def _capped(lines: Sequence[str], limit: int = MAX_LINES) -> list[str]:
    return [*lines[:limit], *([f"…and {len(lines) - limit} more."] if len(lines) > limit else [])]


class Progress:
    """Status bar progress, e.g. 'Per-Seat Billing: pricing 3/8 clients…' (about 100 updates at most)."""

    def __init__(self, live: LiveBook, verb: str, total: int, noun: str = ""):
        self.live, self.verb, self.total, self.noun = live, verb, max(total, 1), noun
        self.done, self.shown = 0, -1
        self.step = max(1, self.total // 100)

    def __call__(self, n: int = 1) -> None:
        self.done += n
        if self.done - self.shown >= self.step or self.done >= self.total:
            self.shown = self.done
            noun = f" {self.noun}" if self.noun else ""
            self.live.status(f"{PREFIX}: {self.verb} {min(self.done, self.total)}/{self.total}{noun}…")


def workbook_folder(fullname: str) -> Path:
    """The folder of the open workbook; refuses for a never-saved or web-only workbook."""
    if "://" in fullname:
        raise PerseatError(f"the workbook is open from a web address ({fullname}), not a folder: open it from "
                           "its synced OneDrive/SharePoint folder, or set OutputFolder in Settings to a full "
                           "path such as C:\\Billing\\invoices")
    path = Path(fullname)
    if not path.is_absolute() and path.parent == Path("."):
        raise PerseatError("save the workbook first: invoices are written to its OutputFolder, beside it")
    return path.resolve().parent


def output_dir(fullname: str, folder: str, period: Period) -> Path:
    """``OutputFolder/PERIOD``: relative to the workbook's folder unless OutputFolder is a full path."""
    f = os.path.expanduser(os.path.expandvars(folder or "invoices"))
    base = Path(f) if os.path.isabs(f) else workbook_folder(fullname) / f
    return (base / str(period)).resolve()


def file_ref(path: Path, fullname: str) -> str:
    """How the Invoices table's File column names an output: relative to the workbook's folder if inside it."""
    try:
        return str(path.relative_to(workbook_folder(fullname)))
    except (ValueError, PerseatError):
        return str(path)


def check_summary(book: Book) -> dict[str, Any]:
    """What ``perseat check`` and Check workbook report for a valid workbook."""
    run = invoice_run(book)
    why = run.user_reasons()
    billable = int(why.str.startswith("billable").sum()) if len(why) else 0
    return {
        "ok": True, "period": str(book.settings.period), "clients": len(book.clients),
        "active_clients": sum(c.active for c in book.clients), "roster_rows": len(book.roster),
        "billable_users": billable, "plans": len(book.plans),
        "warnings": [w.as_dict() for w in book.warnings],
    }


# --------------------------------------------------------------------------
# The actions


def _invoice_list(invoices: Sequence[Invoice]) -> list[str]:
    return [f"  {i.number}  {i.client.name}: {fmt_money(i.total_cents)}" for i in invoices]


def generate_invoices(live: LiveBook) -> Outcome:
    """Draft the BillingPeriod's invoices: Invoices/InvoiceLines rows (replacing the period's drafts,
    never Final rows), one invoice sheet per client, PDFs (Excel's export) and the accounting CSVs.

    Everything that can refuse (problems in the tables, a Final invoice in the way, a reused number,
    no room below a table, no folder to write to) does so before the workbook is touched."""
    live.status(f"{PREFIX}: reading the workbook…")
    tables = read_tables(live)
    book = _load(live, tables)
    period = book.settings.period
    out_dir = output_dir(live.fullname, book.settings.output_folder, period)
    run = invoice_run(book, progress=Progress(live, "pricing", sum(c.active for c in book.clients), "clients"))
    inv_t, lines_t = tables.rows["Invoices"], tables.rows["InvoiceLines"]
    assert inv_t is not None and lines_t is not None  # _load
    pdfs = {i.number: f"{i.file_stem}.pdf" for i in run.invoices}
    old = [inv_t.rows[i] for i in replaced_drafts(inv_t, period)]
    edits = record_edits(inv_t, lines_t, run.invoices, period,
                         files={n: file_ref(out_dir / f, live.fullname) for n, f in pdfs.items()})
    names, stale = _invoice_sheets(live, tables, run, [str(inv_t.get(r, "InvoiceNo") or "") for r in old])
    stale_pdfs = _stale_files(old, inv_t, live.fullname, out_dir, set(pdfs.values()))
    if not run.invoices:
        apply_edits(live, tables, edits)
        for sheet in stale:
            live.delete_sheet(sheet)
        reasons = [f"  {c}: {r}" for c, r in run.skipped] or ["  no active clients"]
        removed = f"\n\nRemoved {len(old)} earlier draft(s) of this period." if old else ""
        return Outcome("\n".join([f"No invoices for {period.label()}:", *_capped(reasons)]) + removed)
    for edit in edits:
        check_room(live, tables.refs["Invoices" if edit is edits[0] else "InvoiceLines"], edit)
    written = _write_invoices(live, run, names, stale, pdfs, out_dir, lambda: apply_edits(live, tables, edits))
    for f in stale_pdfs:
        f.unlink(missing_ok=True)
    n = len(run.invoices)
    lines = [f"{n} draft invoice{'s' if n != 1 else ''} for {period.label()}, total {book.settings.currency} "
             f"{fmt_money(run.total_cents)}:", *_capped(_invoice_list(run.invoices))]
    if run.skipped:
        lines += ["", "Not invoiced: " + "; ".join(f"{c} ({r})" for c, r in run.skipped[:MAX_LINES]) + "."]
    first, last = names[run.invoices[0].number], names[run.invoices[-1].number]
    sheets = f"Invoice sheets {first} … {last} are" if n > 1 else f"Invoice sheet {first} is"
    lines += ["", f"{sheets} in this workbook; the PDFs and {', '.join(sorted(written))} are in {out_dir}.",
              "Review them, then press Finalize period."]
    return Outcome("\n".join(lines + _warnings(book)))


def _invoice_sheets(live: LiveBook, tables: LiveTables, run: Run,
                    old_numbers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Sheet name of each new invoice, and the sheets of replaced drafts that no new invoice reuses."""
    data = {ref.sheet.lower() for ref in tables.refs.values()}
    names = invoice_sheet_names([i.number for i in run.invoices])
    clash = sorted(n for n in names.values() if n.lower() in data)
    if clash:
        raise PerseatError(f"invoice sheet {clash[0]} would replace a data sheet; change InvoicePrefix in Settings")
    new = {n.lower() for n in names.values()}
    existing = {s.lower(): s for s in live.sheet_names()}
    stale = [existing[s.lower()] for s in invoice_sheet_names(old_numbers).values()
             if s.lower() in existing and s.lower() not in new | data]
    return names, stale


def _write_invoices(live: LiveBook, run: Run, names: dict[str, str], stale: Sequence[str], pdfs: dict[str, str],
                    out_dir: Path, record: Callable[[], None]) -> dict[str, str]:
    """Invoice sheets, their PDFs (staged beside the outputs), the CSVs; ``record`` edits the tables once
    every file is complete, and only then are the files moved into place."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".perseat-pdf-", dir=out_dir))
    published = False
    try:
        tick = Progress(live, "writing invoice sheets", len(run.invoices))
        for inv in run.invoices:
            live.put_sheet(invoice_layout(inv, run, names[inv.number]))
            tick()
        for sheet in stale:
            live.delete_sheet(sheet)
        tick = Progress(live, "exporting PDFs", len(run.invoices))
        for inv in run.invoices:
            target = staging / pdfs[inv.number]
            live.export_pdf(names[inv.number], target)
            if not target.is_file():
                raise PerseatError(f"Excel did not export {target.name}; check that {out_dir} can be written to")
            tick()
        live.status(f"{PREFIX}: writing the accounting files…")
        written = write_outputs(run, out_dir, before_publish=record)
        published = True
        for name in pdfs.values():
            os.replace(staging / name, out_dir / name)
        return written
    except BaseException:
        if created and not published:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stale_files(old: Sequence[Sequence[Any]], inv_t: TableRows, fullname: str, out_dir: Path,
                 keep: set[str]) -> list[Path]:
    """PDFs of replaced drafts that the new run does not rewrite (only inside the output folder)."""
    out = []
    for row in old:
        ref = str(inv_t.get(row, "File") or "").strip()
        if not ref.lower().endswith(".pdf"):
            continue
        path = Path(ref) if os.path.isabs(ref) else workbook_folder(fullname) / ref
        path = path.resolve()
        if path.parent == out_dir and path.name not in keep:
            out.append(path)
    return out


def _warnings(book: Book) -> list[str]:
    if not book.warnings:
        return []
    return ["", "Warnings:", *_capped([f"• {w}" for w in book.warnings], 10)]


def finalize_period(live: LiveBook) -> Outcome:
    """Mark the BillingPeriod's drafts Final (if they are still what the workbook gives), advance
    NextInvoiceNumber and BillingPeriod, and save the workbook."""
    live.status(f"{PREFIX}: reading the workbook…")
    tables = read_tables(live)
    book = _load(live, tables)
    period = book.settings.period
    inv_t, lines_t, settings_t = (tables.rows[k] for k in WRITTEN_TABLES)
    assert inv_t is not None and lines_t is not None and settings_t is not None  # _load
    edit, numbers = finalize_edit(inv_t, period)
    if not numbers:
        finals = sum(1 for r in inv_t.rows if str(inv_t.get(r, "Status") or "").strip().lower() == "final"
                     and Period.key(inv_t.get(r, "Period")) == str(period))
        already = f" {finals} invoice(s) of {period.label()} are already Final." if finals else ""
        return Outcome(f"There are no draft invoices for {period.label()} to finalize.{already}\n\n"
                       "Press Generate invoices first, review the drafts, then Finalize period.", ok=False)
    run = invoice_run(book, progress=Progress(live, "re-checking", sum(c.active for c in book.clients), "clients"))
    diffs = draft_differences(inv_t, lines_t, run.invoices, period)
    if diffs:
        return Outcome("\n".join([f"The drafts for {period.label()} no longer match the workbook; nothing was "
                                  "finalized.", "", *_capped([f"• {d}" for d in diffs]), "",
                                  "Press Generate invoices to refresh the drafts, review them, then Finalize "
                                  "period."]), ok=False)
    changes = advanced_settings(settings_t, numbers, period)
    apply_edits(live, tables, [edit, settings_edit(settings_t, changes)])
    live.status(f"{PREFIX}: saving the workbook…")
    try:
        live.save()
    except Exception as exc:  # Excel's own save failed (read-only copy, file locked, disk full)
        return Outcome(f"The invoices of {period.label()} are marked Final in the open workbook, but it could not "
                       f"be saved ({exc}). Save it now (File ▸ Save As if it is read-only) so the Final invoices "
                       "and the new BillingPeriod are kept.", ok=False)
    lines = [f"Finalized {len(numbers)} invoice{'s' if len(numbers) != 1 else ''} for {period.label()}: "
             f"{numbers[0]} … {numbers[-1]}." if len(numbers) > 1 else
             f"Finalized invoice {numbers[0]} for {period.label()}."]
    lines += [f"{k} is now {v}." for k, v in changes.items()]
    lines += ["The workbook was saved. Final invoices are never changed again: a correction is a new credit "
              "invoice."]
    return Outcome("\n".join(lines))


def check_workbook(live: LiveBook) -> Outcome:
    """Validate every table (SPEC §3) and the tables the program writes to; report all problems at once."""
    live.status(f"{PREFIX}: checking the workbook…")
    tables = read_tables(live)
    mapped = _mapping_table(live)
    found = mapping_problems(mapped)
    try:
        book = _load(live, tables)
        if found:
            raise InputProblems([])
    except InputProblems as exc:
        every = [*exc.problems, *found]
        n = len(every)
        return Outcome(problems_text(every, f"{n} problem{'s' if n != 1 else ''} in the workbook:"), ok=False)
    info = check_summary(book)
    lines = [f"No problems found: {info['clients']} clients ({info['active_clients']} active), "
             f"{info['billable_users']} billable users ({info['roster_rows']} roster rows), {info['plans']} plans; "
             f"billing period {book.settings.period.label()}."]
    try:
        folder = output_dir(live.fullname, book.settings.output_folder, book.settings.period)
        lines.append(f"Invoices will be written to {folder}.")
    except PerseatError as exc:
        lines.append(f"Before generating invoices: {exc}.")
    return Outcome("\n".join(lines + _warnings(book)))


def _live_rows(live: LiveBook, name: str, tables: LiveTables | None = None) -> tuple[TableRef, TableRows] | None:
    """A table of the open workbook as rows (taken from ``tables`` when they already hold it)."""
    if tables is not None and name in tables.refs:
        return tables.refs[name], TableRows.of(tables.refs[name].name, tables.specs[name][0])
    ref = live.table(name)
    if ref is None:
        return None
    values = live.read(ref.sheet, ref.header_row, ref.first_col, ref.n_rows + 1, ref.n_cols)
    return ref, TableRows.of(ref.name, values)


PREVIEW_LINES = 15
"""Changes listed in the Import roster preview (the rest are counted)."""


def import_roster(live: LiveBook, path: str | None, today: dt.date | None = None) -> Outcome:
    """Import roster (SPEC §8): read a Microsoft 365 / PSA export (or one with a saved mapping), find its
    client, show the changes and the drift, and on Yes write Roster and ChangeLog."""
    if not path:
        raise PerseatError("choose the export file to import: press Import roster and pick the file")
    effective = today or dt.date.today()
    live.status(f"{PREFIX}: reading the workbook…")
    tables = read_tables(live)
    roster_found, log_found = _live_rows(live, "Roster", tables), _live_rows(live, "ChangeLog")
    if roster_found is None or log_found is None:
        name = "Roster" if roster_found is None else "ChangeLog"
        raise PerseatError(f"the workbook has no {name} table; add the {name} sheet from the template "
                           "(perseat template) and try again")
    roster_ref, roster = roster_found
    log_ref, log = log_found
    mappings: dict[str, Mapping]
    mappings, problems = saved_mappings(_mapping_table(live))
    if problems:
        raise InputProblems(problems)
    book = _load(live, tables)
    live.status(f"{PREFIX}: reading {Path(path).name}…")
    source = detect_source(Path(path), list(mappings.values()))
    imported = read_export(Path(path), source)
    client, why = guess_client(imported, [c.name for c in book.clients], roster)
    if client is None:
        client = _selected_client(live, tables, book)
        if client is None:
            raise PerseatError(f"cannot tell which client {Path(path).name} belongs to ({why}); select the "
                               "client's row on the Clients sheet and press Import roster again")
        why = "it is the client selected on the sheet"
    edit, changes = plan_sync(roster, client, imported, effective)
    check_types(roster, edit, book)
    report = drift_of(book, tables.source(), client, imported, effective)
    warnings = [p for p in imported.problems if p.severity != "error"]
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
    question = "\n".join([head, "", f"{summary}:", *listed, "", drift_line, *extra, "",
                          "Write these changes to the Roster and ChangeLog? (No rows are deleted.)"])
    if not live.confirm(question, f"{PREFIX}: Import roster"):
        return Outcome("Nothing was changed.")
    log_rows = changelog_rows(log, changes, imported.source or "import", dt.datetime.now().replace(microsecond=0))
    log_edit = TableEdit(log.name, (), tuple(i for i, r in enumerate(log.rows) if is_blank(r)), tuple(log_rows))
    check_room(live, roster_ref, edit)
    check_room(live, log_ref, log_edit)
    live.status(f"{PREFIX}: writing the Roster…")
    apply_edit_live(live, roster_ref, roster, edit)
    apply_edit_live(live, log_ref, log, log_edit)
    return Outcome(f"{client}: {summary} written to the Roster, each logged in ChangeLog. Save the workbook to "
                   f"keep them.\n{drift_line}")


def usage_report(live: LiveBook) -> Outcome:
    """Usage & pricing report (SPEC §9): the Report sheet with its table, advice and native charts."""
    from .report import TREND_MONTHS, build_report, report_layout

    live.status(f"{PREFIX}: reading the workbook…")
    tables = read_tables(live)
    book = load_source(tables.source(), name=live.fullname)
    rep = build_report(book, progress=Progress(live, "measuring usage", TREND_MONTHS, "months"))
    live.status(f"{PREFIX}: drawing the Report sheet…")
    live.put_sheet(report_layout(rep, book.settings.msp_name))
    outliers = [c for c in rep.clients if c.outlier]
    lines = [f"The Report sheet shows {rep.period.label()} for {len(rep.clients)} active clients, with charts of "
             "hours per user, revenue against hours, and the 12-month trend."]
    if outliers:
        lines.append("Far above the median of "
                     f"{rep.medians['hours_per_user']} support hours per user: "
                     + ", ".join(f"{c.client} ({float(c.period.hours_per_user or 0):.2f})" for c in outliers) + ".")
    counts = {k: sum(1 for a in rep.advice if a.kind == k and a.value) for k in ("price", "plan", "minfee")}
    lines.append(f"Advice: {counts['price']} prices, {counts['plan']} plans, {counts['minfee']} minimum fees, "
                 f"{len(rep.cliffs)} volume-tier cliffs — each with its reason on the sheet.")
    lines += rep.notes
    return Outcome("\n".join(lines))


def _mapping_table(live: LiveBook) -> RawTable | None:
    """The open workbook's Mappings table as the file reader sees it (for problems with sheet and row)."""
    found = _live_rows(live, "Mappings")
    if found is None:
        return None
    ref, rows = found
    return MemoryTables({"Mappings": ([list(rows.headers), *map(list, rows.rows)], ref.sheet, ref.header_row,
                                      ref.first_col - 1)}).table("Mappings")


def _selected_client(live: LiveBook, tables: LiveTables, book: Book) -> str | None:
    """The client named in the active row of the Clients or Roster sheet."""
    at = live.selected_row()
    if at is None:
        return None
    sheet, row = at
    names = {c.name.lower(): c.name for c in book.clients}
    for name in ("Clients", "Roster"):
        ref = tables.refs.get(name)
        if ref is not None and ref.sheet.lower() == sheet.lower() and ref.header_row < row <= ref.last_row:
            values = live.read(ref.sheet, ref.header_row, ref.first_col, 1, ref.n_cols)[0]
            t = TableRows.of(ref.name, [values])
            j = t.col("Client")
            if j is not None:
                cell = live.read(ref.sheet, row, ref.first_col + j, 1, 1)[0][0]
                return names.get(str(cell or "").strip().lower())
    return None


def help_text(buttons: Sequence[tuple[str, str]], docs: str) -> str:
    """The Help box: each button's label and what it does, then where the documentation is."""
    from . import __version__

    lines = [f"{PREFIX} (perseat-addin {__version__}): the buttons of this tab", ""]
    lines += [f"• {label}: {what}" for label, what in buttons]
    return "\n".join([*lines, "", docs])


def perform(live: LiveBook, title: str, action: Callable[[LiveBook], Outcome]) -> Outcome:
    """Run ``action`` with screen updating off; show its outcome, or what went wrong, in ONE message box."""
    try:
        live.set_updating(False)
        outcome = action(live)
    except InputProblems as exc:
        outcome = Outcome(problems_text(exc.problems), ok=False)
    except PerseatError as exc:
        text = str(exc).rstrip(".")
        outcome = Outcome(f"{text[:1].upper()}{text[1:]}.", ok=False)
    except PermissionError as exc:
        outcome = Outcome(f"Cannot write {exc.filename or 'a file'}: is it open in another program (a PDF "
                          "viewer, Excel)? Close it and press the button again.", ok=False)
    except OSError as exc:
        outcome = Outcome(f"A file could not be read or written: {exc}", ok=False)
    except Exception as exc:  # the ribbon's last line of defence: one readable box instead of a traceback
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        outcome = Outcome(f"Something unexpected went wrong ({type(exc).__name__}: {exc}).\n\nPlease send this to "
                          f"whoever set up the workbook:\n{tail}", ok=False)
    finally:
        live.set_updating(True)
        live.status(None)
    live.alert(outcome.message, title, error=not outcome.ok)
    return outcome


__all__ = ["Cell", "LiveBook", "Outcome", "SheetLayout", "Style", "TableRef", "check_summary", "check_workbook",
           "finalize_period", "generate_invoices", "help_text", "import_roster", "invoice_layout", "output_dir",
           "perform", "problems_text", "read_tables", "typed", "usage_report"]
