"""Tables as plain values: a table as read and edited (RawTable), edits to it (TableEdit), and anything that
hands tables over by name (TableSource, MemoryTables)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Protocol, overload

if TYPE_CHECKING:
    import pyarrow as pa

from perseat_addin.cells import ExcelError, col_letter, is_excel_error


@dataclass(frozen=True)
class TableEdit:
    """Changes to one table: set cells in rows that stay, delete rows, append rows.

    Row indexes refer to :attr:`RawTable.rows` as read. Appended rows are full
    width; a None cell is left as the new row has it (blank, or an Excel
    calculated column's formula).
    """

    table: str
    cells: tuple[tuple[int, int, Any], ...] = ()
    delete: tuple[int, ...] = ()
    append: tuple[tuple[Any, ...], ...] = ()
    add_columns: tuple[str, ...] = ()
    """Headers added at the table's right end first (a workbook made before the column existed); cell
    indexes and appended rows already count them."""
    create: tuple[str, ...] = ()
    """When the workbook has no such table: create it on a new sheet with these headers (and one blank row,
    which the edit's rows see as row 0)."""

    @property
    def changes(self) -> bool:
        return bool(self.cells or self.delete or self.append or self.add_columns or self.create)


def apply_edit(t: RawTable, edit: TableEdit) -> RawTable:
    """The table after ``edit``: columns added, cells set, deleted rows gone, appended rows at the end."""
    t = t.with_columns(edit.add_columns)
    rows = [list(r) for r in t.rows]
    for i, j, v in edit.cells:
        rows[i][j] = v
    gone = set(edit.delete)
    kept = [tuple(r) for i, r in enumerate(rows) if i not in gone]
    return replace(t, rows=(*kept, *edit.append), errors={}, columns=None)


def edited_rows(t: RawTable, edit: TableEdit) -> set[int]:
    """Row positions whose contents ``edit`` changes (every row after the first deleted one moves up)."""
    out = {i for i, _, _ in edit.cells}
    if edit.delete:
        out |= set(range(min(edit.delete), len(t.rows)))
    n_new = len(t.rows) - len(set(edit.delete)) + len(edit.append)
    return out | set(range(len(t.rows) - len(set(edit.delete)), n_new))


def is_blank(row: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


class ColumnRows(Sequence[Sequence[Any]]):
    """A table's rows held as one Arrow array per column (a large table read column by column).

    Code that converts whole columns uses :attr:`columns`; anything that walks rows gets the same Python
    values the cell reader gives (a blank cell is ``''``, a number a float, a whole-day date a ``date``),
    built once, on first use.
    """

    def __init__(self, columns: Sequence[pa.Array], length: int):
        self.columns = list(columns)
        self._len = length
        self._rows: list[list[Any]] | None = None

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> Sequence[Any]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Sequence[Any]]: ...
    def __getitem__(self, i: int | slice) -> Sequence[Any] | Sequence[Sequence[Any]]:
        return self.as_lists()[i]

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return iter(self.as_lists())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnRows):
            other = other.as_lists()
        return self.as_lists() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ColumnRows({self._len} rows × {len(self.columns)} columns)"

    def as_lists(self) -> list[list[Any]]:
        """Every row as a list of Python values (built on first use)."""
        if self._rows is None:
            cols = [cell_values(c) for c in self.columns]
            self._rows = [list(r) for r in zip(*cols, strict=True)] if cols else [[] for _ in range(self._len)]
        return self._rows


def cell_values(arr: pa.Array) -> list[Any]:
    """An Arrow column as the cell reader's Python values: blank → ``''``, a date at midnight → ``date``."""
    import pyarrow as pa  # (loaded by the reader before any such column exists)

    if pa.types.is_timestamp(arr.type):
        return ["" if v is None else (v.date() if v.hour == v.minute == v.second == v.microsecond == 0 else v)
                for v in arr.to_pylist()]
    if pa.types.is_null(arr.type):
        return [""] * len(arr)
    return ["" if v is None else v for v in arr.to_pylist()]


BOOK_TABLES = ("Settings", "Plans", "Tiers", "UserTypes", "Clients", "Roster", "Devices", "AddOns", "Usage",
               "Invoices")
"""The tables a workbook is validated from, in the order they are read (the keys of
:data:`perseat_addin.workbook.schema.SCHEMA`, named here so a command can start reading them before it
imports the engine)."""


@dataclass(frozen=True)
class RawTable:
    """One table as it sits in the workbook: headers, every data row (blank ones included; index = position
    in the table), where they are, and the Excel error values found in it (their cells read as None)."""

    name: str
    sheet: str
    headers: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    first_row: int = 2  # Excel row number of the first data row
    first_col: int = 0  # zero-based column index of the table's first column
    is_table: bool = True  # False when read from a sheet without an Excel table
    errors: dict[tuple[int, int], ExcelError] = field(default_factory=dict)
    columns: Sequence[Sequence[Any]] | None = field(default=None, compare=False, repr=False)
    """The same cells by column, when the source has them that way (a range from Excel): saves a
    transposition; error cells are None here as in :attr:`rows`."""

    @classmethod
    def of(cls, name: str, values: Sequence[Sequence[Any] | Any] | None, sheet: str | None = None,
           header_row: int = 1, first_col: int = 0, is_table: bool = True) -> RawTable:
        """From a 2-D range, header row first, as Excel hands a table over: error values become None (kept
        in :attr:`errors`), a pandas NaN is a blank cell, and every row is cut or padded to the header."""
        grid = [list(r) if isinstance(r, list | tuple) else [r] for r in (values or [])]
        sheet = name if sheet is None else sheet
        if not grid:
            return cls(name, sheet, (), (), header_row + 1, first_col, is_table)
        headers = tuple("" if h is None else str(h).strip() for h in grid[0])
        width = len(headers)
        errors: dict[tuple[int, int], ExcelError] = {}
        rows: list[tuple[Any, ...]] = []
        for i, r in enumerate(grid[1:]):
            out: list[Any] = []
            for j, v in enumerate(r[:width]):
                if is_excel_error(v):
                    errors[(i, j)] = v if isinstance(v, ExcelError) else ExcelError(str(v).strip().upper())
                    out.append(None)
                elif isinstance(v, float) and v != v:
                    out.append(None)
                else:
                    out.append(v)
            rows.append((*out, *[None] * (width - len(out))))
        return cls(name, sheet, headers, tuple(rows), header_row + 1, first_col, is_table, errors)

    def column_letter(self, index: int) -> str:
        """Excel column letter of the table's ``index``-th column."""
        return col_letter(self.first_col + index)

    @cached_property
    def _positions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j, h in enumerate(self.headers):
            out.setdefault(header_key(h), j)
        return out

    def col(self, header: str) -> int | None:
        """Position of ``header`` (matched like every SPEC header), or None."""
        return self._positions.get(header_key(header))

    def get(self, row: Sequence[Any], header: str) -> Any:
        j = self.col(header)
        return row[j] if j is not None and j < len(row) else None

    def make(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """A full-width row; columns not in ``values`` are None (left alone by writers)."""
        by = {header_key(k): v for k, v in values.items()}
        return tuple(by.get(header_key(h)) for h in self.headers)

    def missing(self, headers: Iterable[str]) -> list[str]:
        return [h for h in headers if self.col(h) is None]

    def with_columns(self, headers: Sequence[str]) -> RawTable:
        """This table with blank columns ``headers`` added at its right end (those it lacks)."""
        new = tuple(h for h in headers if self.col(h) is None)
        if not new:
            return self
        pad = (None,) * len(new)
        return replace(self, headers=(*self.headers, *new), rows=tuple((*r, *pad) for r in self.rows),
                       columns=None)


class TableSource(Protocol):
    """Anything that can hand over SPEC §3 tables by name."""

    def table(self, name: str) -> RawTable | None: ...


class MemoryTables:
    """Tables held in memory: a :class:`RawTable`, a 2-D list with a header row (what Excel passes to a
    function or macro), or ``(values, sheet_name, excel_row_of_header, first_col)`` so problems can still
    name the sheet, row and column."""

    def __init__(self, tables: Mapping[str, Any]):
        self._tables = {k.lower(): v for k, v in tables.items()}

    def table(self, name: str) -> RawTable | None:
        spec = self._tables.get(name.lower())
        if spec is None or isinstance(spec, RawTable):
            return spec
        if isinstance(spec, tuple):
            values, sheet, header_row, first_col = spec
            return RawTable.of(name, values, sheet, header_row, first_col)
        return RawTable.of(name, spec)


@lru_cache(maxsize=4096)
def header_key(text: Any) -> str:
    """Header matching key: case-insensitive, spaces, underscores and stars ignored."""
    return re.sub(r"[\s_*]+", "", str(text)).lower()


def editable(raw: RawTable | None) -> RawTable | None:
    """``raw`` if it is a real Excel table (the program writes only to those), else None."""
    return raw if raw is not None and raw.is_table else None
