"""The open workbook, as the ribbon's tasks reach it: the :class:`LiveBook` protocol (Excel semantics;
``perseat_addin.macros`` implements it over xlwings, the test suite over openpyxl), :class:`ExcelBook` (the
:class:`~perseat_addin.tasks.port.BookPort` over it), applying table edits with Excel's own table operations,
status-bar progress, and :func:`perform`: runs an action with screen updating off, turns every problem into
one message box, and shows that box. Nothing here imports xlwings."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from perseat_addin.cells import col_letter
from perseat_addin.engine.ledger import (
    NUMBER_FORMATS,
    writeback_problems,
)
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.model import Book
from perseat_addin.outputs.layout import Cell, SheetLayout, Style, invoice_layout, typed
from perseat_addin.tables import MemoryTables, RawTable, TableEdit, TableSource, is_blank
from perseat_addin.version import __version__
from perseat_addin.workbook.load import load_source
from perseat_addin.workbook.schema import SCHEMA

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

    def add_columns(self, name: str, headers: Sequence[str]) -> None:
        """Widen table ``name`` by columns ``headers`` at its right end (Excel's ListColumns.Add)."""
        ...

    def add_table(self, name: str, headers: Sequence[str]) -> None:
        """A new last sheet ``name`` holding table ``name``: a header row and one blank row (ListObjects.Add)."""
        ...

    def sheet_names(self) -> list[str]:
        ...

    def put_sheet(self, layout: SheetLayout) -> None:
        """Add sheet ``layout.name`` after the last sheet (replacing one of that name) and lay it out."""
        ...

    def delete_sheet(self, name: str) -> None:
        ...

    def export_pdf(self, sheets: list[str], path: Path) -> None:
        """Export sheets (each its print area and page setup), in order, to one PDF file (a list: never one name,
        which would read as its letters)."""
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

    def ask(self, message: str, title: str, default: str = "") -> str | None:
        """A line of text typed by the user (Excel's InputBox); None for Cancel."""
        ...


# --------------------------------------------------------------------------
# A printable sheet, described as values


@dataclass
class LiveTables:
    """Every SPEC §3 table of the open workbook, read once."""

    read: dict[str, RawTable] = field(default_factory=dict)
    refs: dict[str, TableRef] = field(default_factory=dict)
    rows: dict[str, RawTable | None] = field(default_factory=dict)  # the tables the program writes to

    def source(self) -> MemoryTables:
        return MemoryTables(dict(self.read))


def _sheet_block(name: str, found: tuple[str, int, int, list[list[Any]]]) -> RawTable:
    """A table-less sheet as the file reader sees it: the first non-blank row is the header."""
    sheet, row, col, values = found
    k = 0
    while k < len(values) and is_blank(values[k]):
        k += 1
    values = values[k:]
    width = len(values[0]) if values else 0
    while width and values[0][width - 1] in (None, ""):
        width -= 1
    return RawTable.of(name, [list(r[:width]) for r in values], sheet, row + k, col - 1, is_table=False)


def _read_table(live: LiveBook, ref: TableRef) -> RawTable:
    values = live.read(ref.sheet, ref.header_row, ref.first_col, ref.n_rows + 1, ref.n_cols)
    return RawTable.of(ref.name, values, ref.sheet, ref.header_row, ref.first_col - 1)


def read_tables(live: LiveBook) -> LiveTables:
    """Read the SPEC tables (and the written ones) from the open workbook."""
    out = LiveTables()
    for name in (*SCHEMA, "InvoiceLines"):
        ref = live.table(name)
        if ref is not None:
            out.refs[name] = ref
            out.read[name] = _read_table(live, ref)
            if name in WRITTEN_TABLES:
                out.rows[name] = out.read[name]
            continue
        if name in WRITTEN_TABLES:
            out.rows[name] = None  # the program writes only to real tables
        found = live.used_range(name)
        if found is not None:
            out.read[name] = _sheet_block(name, found)
    return out


def load_live(live: LiveBook, tables: LiveTables) -> Book:
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
    k = len(edit.add_columns)
    if k and any(not is_blank(r) for r in live.read(ref.sheet, ref.header_row, ref.first_col + ref.n_cols,
                                                     ref.n_rows + 1, k)):
        raise PerseatError(f"the {ref.name} table must gain column(s) {', '.join(edit.add_columns)} at its right, "
                           "but the cells there are not empty; move what is there and try again")
    n = len(edit.append)
    if n and any(not is_blank(r) for r in live.read(ref.sheet, ref.last_row + 1, ref.first_col, n, ref.n_cols)):
        raise PerseatError(f"the {ref.name} table must grow by {n} rows into {ref.address(ref.last_row + 1, n)}, "
                           "but those cells are not empty; move what is there and try again")


def apply_edit_live(live: LiveBook, ref: TableRef, t: RawTable, edit: TableEdit) -> None:
    """Apply ``edit`` with Excel's own table operations: only changed cells are written, so rows that
    stay (Final invoices, formulas in extra columns) are never rewritten. Appends first, then deletes
    bottom-up, so the table never becomes empty on the way."""
    first = ref.header_row + 1
    if edit.add_columns:
        live.add_columns(ref.name, edit.add_columns)
        ref = replace(ref, n_cols=ref.n_cols + len(edit.add_columns))
        t = t.with_columns(edit.add_columns)
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


class ExcelBook:
    """The open workbook as a :class:`~perseat_addin.tasks.port.BookPort`: the SPEC tables read once
    (:func:`read_tables`), other tables (Mappings, ChangeLog) read when first asked for, and edits
    written with Excel's own table operations after every table was checked for room."""

    def __init__(self, live: LiveBook, tables: LiveTables | None = None):
        self.live = live
        self.tables = tables if tables is not None else read_tables(live)
        self._more: dict[str, tuple[TableRef, RawTable] | None] = {}

    @property
    def name(self) -> str:
        return self.live.fullname

    def found(self, name: str) -> tuple[TableRef, RawTable] | None:
        """(where, rows) of the real Excel table ``name``, or None."""
        for key, ref in self.tables.refs.items():
            if key.lower() == name.lower() or ref.name.lower() == name.lower():
                return ref, self.tables.read[key]
        key = name.lower()
        if key not in self._more:
            at = self.live.table(name)
            if at is None:
                self._more[key] = None
            else:
                self._more[key] = at, _read_table(self.live, at)
        return self._more[key]

    def source(self) -> TableSource:
        return _ExcelSource(self)

    def rows(self, name: str) -> RawTable | None:
        found = self.found(name)
        return None if found is None else found[1]

    def check(self, edits: Sequence[TableEdit]) -> list[tuple[TableRef, RawTable, TableEdit]]:
        """Refuse now (nothing written) if a table is missing or cannot grow by its edit."""
        todo = []
        for edit in edits:
            found = self.found(edit.table)
            if found is None and edit.create:
                if edit.table.lower() in {n.lower() for n in self.live.sheet_names()}:
                    raise PerseatError(f"a sheet named {edit.table} is in the way of the {edit.table} table the "
                                       "program keeps; rename that sheet and try again")
                continue  # created when written
            if found is None:
                raise PerseatError(f"the workbook has no {edit.table} table to write to; nothing was written")
            check_room(self.live, found[0], edit)
            todo.append((found[0], found[1], edit))
        return todo

    def write(self, edits: Sequence[TableEdit]) -> None:
        todo = self.check(edits)
        for edit in edits:
            if edit.create and self.found(edit.table) is None:
                self.live.status(f"{PREFIX}: adding the {edit.table} sheet…")
                self.live.add_table(edit.table, edit.create)
                self._more.pop(edit.table.lower(), None)
                found = self.found(edit.table)
                if found is None:
                    raise PerseatError(f"Excel did not add the {edit.table} table; nothing more was written")
                todo.append((found[0], found[1], edit))
        for ref, rows, edit in todo:
            if edit.changes:
                self.live.status(f"{PREFIX}: writing the {ref.name} table…")
                apply_edit_live(self.live, ref, rows, edit)

    def progress(self, verb: str, total: int, noun: str = "") -> Callable[[int], None]:
        return Progress(self.live, verb, total, noun)


class _ExcelSource:
    """Tables of the open workbook by name: those read at the start, others read when asked for."""

    def __init__(self, book: ExcelBook):
        self.book = book

    def table(self, name: str) -> RawTable | None:
        for key, raw in self.book.tables.read.items():
            if key.lower() == name.lower():
                return raw
        more = self.book.found(name)
        return None if more is None else more[1]


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


def capped(lines: Sequence[str], limit: int = MAX_LINES) -> list[str]:
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


# --------------------------------------------------------------------------
# The actions


def warnings_text(book: Book) -> list[str]:
    if not book.warnings:
        return []
    return ["", "Warnings:", *capped([f"• {w}" for w in book.warnings], 10)]


def help_text(buttons: Sequence[tuple[str, str]], docs: str) -> str:
    """The Help box: each button's label and what it does, then where the documentation is."""
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


__all__ = ["Cell", "ExcelBook", "LiveBook", "Outcome", "SheetLayout", "Style", "TableRef", "help_text",
           "invoice_layout",
           "perform", "problems_text", "read_tables", "typed"]
