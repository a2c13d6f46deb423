"""The engine behind the Excel functions (SPEC §5): plain values in, plain values out.

Tables arrive as 2-D ranges with their header row and go through the same
loaders as a workbook file (:mod:`~perseat_addin.workbook.load`, one table at a
time, over :class:`~perseat_addin.tables.MemoryTables`), so header matching and
validation exist once.
Prices come from :func:`~.pricing.price`, proration weights from
:func:`~.pricing.day_weights`, seat counts from the invoice run's own daily
series, money from :mod:`~.money`. Nothing here knows about Excel or xlwings.

A function that needs fewer tables than a workbook has (SEATCHARGE has only
Plans) loads just those tables; problems name the range's own rows and columns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import partial
from itertools import compress, count
from operator import is_not, itemgetter
from typing import Any, TypeVar, overload

import numpy as np
import pandas as pd

from perseat_addin.cells import ExcelError
from perseat_addin.engine.advice import _num
from perseat_addin.engine.daily import daily_users
from perseat_addin.engine.invoicing import Run, gc_paused, invoice_run
from perseat_addin.engine.measures import per_user, usage_totals
from perseat_addin.engine.pricing import month_of, seat_charge
from perseat_addin.errors import ArgumentError, InputProblems, Problem
from perseat_addin.model import Book, Client, Invoice, Period, Plan, Settings, Tiering
from perseat_addin.money import ZERO_MICROS, to_micros
from perseat_addin.tables import ColumnRows, RawTable, header_key
from perseat_addin.workbook import load as loader
from perseat_addin.workbook.load import load_source
from perseat_addin.workbook.reader import COLUMNAR_ROWS
from perseat_addin.workbook.schema import Table

Rows = Sequence[Sequence[Any]]
"""A range as Excel hands it over: a header row, then data rows."""

T = TypeVar("T")


# --------------------------------------------------------------------------
# Tables from ranges

PLAIN_CELLS = frozenset({float, str, type(None), bool, dt.datetime, dt.date, Decimal})
"""Cell types a range holds as they are (and any date or date-time, a COM time included: read by its fields);
any other (an error code) goes through the edge's cleaning, one cell at a time, in the columns that hold one."""


@dataclass(frozen=True, eq=False)
class Grid:
    """A range with its header row, by row and by column, its Excel error cells noted (and read as blank).

    ``key`` identifies the content: equal ranges passed again find what was loaded from them.
    """

    headers: tuple[Any, ...]
    rows: Sequence[Sequence[Any]]
    columns: Sequence[Sequence[Any]]
    errors: Mapping[tuple[int, int], ExcelError]
    key: Any
    kinds: Sequence[frozenset[type]] = ()  # each column's cell types
    days: Mapping[int, tuple[Any, Any]] = field(default_factory=dict)  # date column → (blank mask, ordinals)
    arrays: list[Any] | None = None  # a large range's Arrow columns, made once each when first asked for

    @classmethod
    def of(cls, values: Grid | Rows, clean: Callable[[Any], Any] | None = None, skip: Collection[str] = ()) -> Grid:
        """From a 2-D range (header first); ``clean`` turns a cell of an unusual type into a plain value or
        an :class:`ExcelError` (and is called only for such cells). Columns headed by a name in ``skip``
        (matched like every header) are left out: never read, and no part of the key."""
        if isinstance(values, Grid):
            return values
        rows: Sequence[Sequence[Any]] = values if isinstance(values, tuple) else tuple(values)
        if not rows:
            return cls((), (), (), {}, ("grid", 0), ())
        if not all(isinstance(r, tuple | list) for r in rows[:1]):
            rows = (tuple(rows),)
        width = len(rows[0])
        data: Sequence[Sequence[Any]] = rows[1:]
        if set(map(len, data)) - {width}:  # a range from Excel is rectangular
            data = tuple((*r[:width], *[None] * (width - len(r))) for r in map(tuple, data))
        left_out = {header_key(k) for k in skip}
        keep = [j for j, h in enumerate(rows[0]) if not (isinstance(h, str) and header_key(h) in left_out)]
        headers = tuple(rows[0][j] for j in keep)
        columns = [list(map(itemgetter(j), data)) for j in keep]
        if len(keep) < width:
            width, rows = len(keep), (headers,)
            data = _ZipRows(columns, len(data))
        errors: dict[tuple[int, int], ExcelError] = {}
        changed: set[int] = set()
        arrays: list[Any] | None = None
        if len(data) >= COLUMNAR_ROWS:  # text and TRUE/FALSE columns typed in C, as Arrow, in one pass
            arrays = [None] * width
            kinds = []
            for j, col in enumerate(columns):
                arrays[j], k = _typed_column(col)
                kinds.append(k if k is not None else frozenset(map(type, col)))
        else:
            kinds = [frozenset(map(type, col)) for col in columns]
        dated = [j for j, k in enumerate(kinds) if k - {_NONE} and all(issubclass(t, dt.date) or t is _NONE for t in k)]
        if arrays is not None:  # dates by their fields in C, hashed by their day; numbers hashed as Arrow
            for j in dated:
                arrays[j] = _arrow_column(columns[j], kinds[j], len(data))
            for j, k in enumerate(kinds):
                if arrays[j] is None and k - {_NONE} == {float}:
                    arrays[j] = _arrow_column(columns[j], k, len(data))
            if any(arrays[j] is None for j in dated):
                arrays = None  # a date before March 1900: read cell by cell, as from a file
        days = {} if arrays is not None else {j: _days(columns[j]) for j in dated}
        key = _content_key(headers, len(data), columns, kinds, days, arrays)
        for j, col in enumerate(columns):
            odd = {k for k in kinds[j] - PLAIN_CELLS if not issubclass(k, dt.date)}  # COM times: read by fields
            if not odd:
                continue
            kinds[j] = frozenset()  # counted again below
            for i, v in enumerate(col):
                if type(v) in odd:
                    c = clean(v) if clean is not None else v
                    if isinstance(c, ExcelError):
                        errors[(i, j)] = c
                        c = None
                    elif isinstance(c, float) and c != c:
                        c = None
                    col[i] = c
                    changed.add(i)
        if changed and not isinstance(data, _ZipRows):  # (zipped rows are made from the cleaned columns)
            fixed = list(data)
            for i in changed:
                fixed[i] = tuple(col[i] for col in columns)
            data = tuple(fixed)
        kinds = [k or frozenset(map(type, col)) for k, col in zip(kinds, columns, strict=True)]
        return cls(headers, data, columns, errors, key, kinds, days, arrays)

    @property
    def blank(self) -> bool:
        """Every cell, header included, is empty (a table's headers answer at once)."""
        if not all(_blank_cell(h) for h in self.headers):
            return False
        return all(all(_blank_cell(v) for v in r) for r in self.rows)

    def raw(self, name: str, skip: Collection[str] = ()) -> RawTable:
        """The range as the workbook loader reads a table (row 1 = the header): a large one as Arrow columns
        when every column holds one kind of value, as a large table read from a file is. ``skip``: headers of
        columns left out (matched like every header)."""
        headers = tuple("" if h is None else str(h).strip() for h in self.headers)
        keep = [j for j, h in enumerate(headers) if header_key(h) not in {header_key(k) for k in skip}]
        arrays = self.arrow(keep) if len(self.rows) >= COLUMNAR_ROWS else None
        if len(keep) == len(headers):
            rows: Sequence[Sequence[Any]] = self.rows if arrays is None else ColumnRows(arrays, len(self.rows))
            return RawTable(name, name, headers, rows, errors=dict(self.errors), columns=self.columns)
        at = {j: n for n, j in enumerate(keep)}
        errors = {(i, at[j]): e for (i, j), e in self.errors.items() if j in at}
        columns = [self.columns[j] for j in keep]
        rows = ColumnRows(arrays, len(self.rows)) if arrays is not None else \
            tuple(zip(*columns, strict=True)) if columns else tuple(() for _ in self.rows)
        return RawTable(name, name, tuple(headers[j] for j in keep), rows, errors=errors, columns=columns)

    def arrow(self, keep: Sequence[int] | None = None) -> list[Any] | None:
        """Each column as an Arrow array of one type (text, number, TRUE/FALSE or whole days), or None when a
        column mixes kinds. Dates are read by their day, as the workbook loader reads a date cell."""
        n = len(self.rows)
        out: list[Any] = []
        for j in range(len(self.columns)) if keep is None else keep:
            found = self.arrays[j] if self.arrays is not None else None
            if found is None:
                found = _arrow_column(self.columns[j], self.kinds[j], n)
                if found is None:
                    return None
                if self.arrays is not None:
                    self.arrays[j] = found
            out.append(found)
        return out


def _typed_column(col: list[Any]) -> tuple[Any, frozenset[type] | None]:
    """A column of text or of TRUE/FALSE (and blanks) as an Arrow array with its cell types, when its first
    value says so and Arrow's strict conversion takes every cell; else (None, None): look at each cell."""
    import pyarrow as pa

    first = next(filter(partial(is_not, None), col), None)
    if first is None:
        return pa.nulls(len(col)), frozenset({_NONE})
    kind = first.__class__
    if kind is not str and kind is not bool:
        return None, None
    try:
        arr = pa.array(col, type=pa.string() if kind is str else pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None, None
    return arr, frozenset({kind, _NONE} if arr.null_count else {kind})


def _arrow_column(col: Sequence[Any], kinds: frozenset[type], n: int) -> Any:
    """A column as an Arrow array of one kind (text, number, TRUE/FALSE or whole days, as the workbook loader
    reads a large table from a file), or None when it mixes kinds or holds a date before March 1900 (such a
    range is read cell by cell). Dates are read by their fields, in C."""
    import pyarrow as pa
    import pyarrow.compute as pc

    k = kinds - {_NONE}
    if not k:
        return pa.nulls(n)
    if k == {str}:
        return pa.array(col, type=pa.string())
    if k == {float}:
        return pa.array(col, type=pa.float64())
    if k == {bool}:
        return pa.array(col, type=pa.bool_())
    if all(issubclass(t, dt.date) for t in k):
        days = pa.array(col, type=pa.date32())
        if days.null_count < n and pc.min(days).as_py() < _FIRST_DATE:
            return None
        return days.cast(pa.timestamp("ms"))
    return None


class _ZipRows(Sequence[tuple[Any, ...]]):
    """A range's rows made from its columns on first use (a range read with some columns left out)."""

    def __init__(self, columns: Sequence[list[Any]], n: int):
        self._columns, self._n = columns, n
        self._rows: list[tuple[Any, ...]] | None = None

    def __len__(self) -> int:
        return self._n

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = list(zip(*self._columns, strict=True)) if self._columns else [() for _ in range(self._n)]
        return self._rows

    @overload
    def __getitem__(self, i: int) -> tuple[Any, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[Any, ...]]: ...
    def __getitem__(self, i: int | slice) -> tuple[Any, ...] | Sequence[tuple[Any, ...]]:
        return self._all()[i]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._all())


def _blank_cell(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _days(col: Sequence[Any]) -> tuple[Any, Any]:
    """A column of dates and blanks as (blank mask, each date's ordinal day), with C loops."""
    blank = np.equal(np.fromiter(map(type, col), dtype=object, count=len(col)), _NONE)
    return blank, np.fromiter(map(dt.date.toordinal, compress(col, ~blank)), dtype=np.int64)


def _content_key(headers: Sequence[Any], n: int, columns: Sequence[list[Any]],
                 kinds: Sequence[frozenset[type]], days: Mapping[int, tuple[Any, Any]],
                 arrays: Sequence[Any] | None = None) -> Any:
    """A key for a range's exact cells: its shape, a hash of each column and each column's cell types (TRUE
    and 1 hash alike), or a digest of its pickle when a cell cannot be hashed.

    Dates are hashed by their day (as the workbook loader reads them), from ``days`` or from their Arrow
    column in ``arrays``: hashing a timezone-aware COM time as it is costs ten times more.
    """
    try:
        parts: list[Any] = [hash(tuple(headers))]
        for j, (col, k) in enumerate(zip(columns, kinds, strict=True)):
            if arrays is not None and arrays[j] is not None:
                parts.append(tuple(None if b is None else hash(b.to_pybytes()) for b in arrays[j].buffers()))
            elif j in days:
                blank, ordinals = days[j]
                parts.append((hash(blank.tobytes()), hash(ordinals.tobytes())))
            elif not any(issubclass(t, dt.date) for t in k):
                parts.append(hash(tuple(col)))
            else:
                parts.append(hash(tuple(map(_date_key, col))))
        return ("grid", n, len(headers), tuple(parts), tuple(kinds))
    except TypeError:
        pass
    try:
        data = pickle.dumps([list(headers), *columns], protocol=5)
    except Exception:  # a cell pickle cannot take: such a range is simply not remembered
        return object()
    return ("pickle", hashlib.blake2b(data, digest_size=32).digest())


_NONE: Any = type(None)
_FIRST_DATE = dt.date(1900, 3, 1)


def _date_key(v: Any) -> Any:
    return v.toordinal() if isinstance(v, dt.date) else v




GridLike = Grid | Rows


def as_grid(values: GridLike | None) -> Grid | None:
    return None if values is None else Grid.of(values)


class RangeSource:
    """SPEC §3 tables given as ranges (name → Grid, rows or a RawTable), each read once however often it is
    asked for."""

    def __init__(self, tables: Mapping[str, GridLike | RawTable | None]):
        self._raw: dict[str, RawTable] = {}
        for name, value in tables.items():
            if value is None:
                continue
            raw = value if isinstance(value, RawTable) else Grid.of(value).raw(name)
            self._raw[name.lower()] = raw

    def table(self, name: str) -> RawTable | None:
        return self._raw.get(name.lower())


def load_ranges(tables: Mapping[str, GridLike | RawTable | None]) -> Book:
    """Validate ranges into a Book like a workbook file; raises :class:`InputProblems`."""
    return load_source(RangeSource(tables), name="<ranges>")


def _checked(found: list[Problem]) -> Callable[[tuple[T, list[Problem]]], T]:
    """A collector for per-table loaders' ``(value, problems)``: keeps the value, gathers the problems."""

    def keep(value_problems: tuple[T, list[Problem]]) -> T:
        value, problems = value_problems
        found.extend(problems)
        return value

    return keep


def _raise_errors(found: list[Problem]) -> None:
    errors = [p for p in found if p.severity != "warning"]
    if errors:
        raise InputProblems(errors)


def _distinct(values: Iterable[str]) -> list[str]:
    """Non-blank texts once each (any case), first spelling kept."""
    seen: dict[str, str] = {}
    for text in values:
        text = str(text).strip()
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())


_MEASURE_SETTINGS = Settings(period=Period(2000, 1), next_invoice_number=1)
"""Settings for a Book built from a Roster range alone: the measures take their own dates and count users,
so BillingPeriod and prices play no part (day count, rounding and the rest are the SPEC defaults)."""


class _Cache:
    """A small memo of loaded tables, keyed by their content (a recalculation passes the same ranges again)."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Any, tuple[bool, Any]] = OrderedDict()

    def get(self, key: Any, make: Callable[[], T]) -> T:
        if key in self._items:
            self._items.move_to_end(key)
            ok, value = self._items[key]
        else:
            try:
                ok, value = True, make()
            except InputProblems as exc:
                ok, value = False, exc
            self._items[key] = (ok, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        if not ok:
            raise InputProblems(value.problems)  # a fresh exception: re-raising one would grow its traceback
        result: T = value
        return result

    def clear(self) -> None:
        self._items.clear()


_plans_cache = _Cache(32)
_book_cache = _Cache(4)


def _key(*tables: GridLike | None) -> tuple[Any, ...]:
    """The content keys of ``tables`` (None for an omitted one)."""
    return tuple(None if t is None else Grid.of(t).key for t in tables)


def clear_caches() -> None:
    """Forget every loaded table and workbook handle (tests; memory)."""
    _plans_cache.clear()
    _book_cache.clear()
    HANDLES.clear()


@dataclass(frozen=True)
class PlanList:
    """A validated Plans table: lower-case name → Plan in table order, and the tiered plans given no tiers."""

    plans: Mapping[str, Plan]
    without_tiers: frozenset[str] = frozenset()
    _charges: dict[tuple[str, int], int] = field(default_factory=dict, compare=False, repr=False)

    def charge(self, plan: Plan, users: int) -> int:
        """:func:`seat_charge`'s total in cents for ``users`` on ``plan``, remembered (RECOMMENDPLAN asks for
        every plan on every Clients row)."""
        key = (plan.name, users)
        found = self._charges.get(key)
        if found is None:
            if len(self._charges) > 100_000:
                self._charges.clear()
            found = self._charges[key] = seat_charge(plan, users).total_cents
        return found

    def find(self, name: str, priced: bool = True) -> Plan:
        """The plan called ``name`` (any case); raises ArgumentError naming it.

        ``priced=False`` when only its minimums are wanted (no tiers needed).
        """
        key = name.strip().lower()
        plan = self.plans.get(key)
        if plan is None:
            raise ArgumentError(f'plan "{name.strip()}" not in Plans')
        if priced and key in self.without_tiers:
            raise ArgumentError(f'plan "{plan.name}" is {plan.tiering.value}: give the Tiers table too, '
                                "e.g. Tiers[#All]")
        return plan


def load_plans(plans: GridLike, tiers: GridLike | None = None) -> PlanList:
    """Plans (and Tiers) validated as in a workbook, remembered by content.

    Without ``tiers`` the flat plans still answer; a volume or graduated plan
    is then in ``without_tiers`` (asking for it says the Tiers table is needed).
    """
    plans_g, tiers_g = Grid.of(plans), as_grid(tiers)

    def make() -> PlanList:
        found: list[Problem] = []
        keep = _checked(found)
        source = RangeSource({"Plans": plans_g, "Tiers": tiers_g})
        plans_t = keep(loader.read_table(source, "Plans"))
        tiers_t = keep(loader.read_table(source, "Tiers"))
        listed = keep(loader.load_plans(plans_t, tiers_t, need_tiers=tiers_g is not None))
        _raise_errors(found)
        without = frozenset(k for k, p in listed.items() if p.tiering is not Tiering.FLAT) if tiers_g is None \
            else frozenset()
        return PlanList(listed, without)

    return _plans_cache.get(("plans", *_key(plans_g, tiers_g)), make)


def flat_plan(rate: Decimal) -> Plan:
    """A plan that is just a rate per user (no minimums, no devices)."""
    if rate < 0:
        raise ArgumentError(f"a rate of {_num(rate)} per user is negative")
    return Plan(name=f"{_num(rate)} per user", rate_micros=to_micros(rate))


_TIERS_PLAN = "Tiers"


def tier_plan(tiers: GridLike, mode: Tiering) -> Plan:
    """A plan made of one list of tiers (UpTo, Rate) priced ``mode`` (volume or graduated)."""
    if mode is Tiering.FLAT:
        raise ArgumentError("mode must be graduated or volume")
    g = Grid.of(tiers)

    def make() -> Plan:
        if not g.headers:
            raise ArgumentError("tiers is empty: give the UpTo and Rate columns with their header row")
        if any(header_key(h) == "plan" for h in g.headers if h is not None):
            raise ArgumentError("tiers: give only the UpTo and Rate columns of one plan (no Plan column)")
        if not any(any(v not in (None, "") for v in r) for r in g.rows):
            raise ArgumentError("tiers has no rows: one tier per row, UpTo blank on the last")
        table = [[*g.headers, "Plan"], *([*r, _TIERS_PLAN] for r in g.rows)]
        one_plan = [["Plan", "Rate", "Tiering"], [_TIERS_PLAN, 0, mode.value]]
        found: list[Problem] = []
        keep = _checked(found)
        source = RangeSource({"Plans": one_plan, "Tiers": table})
        plans = keep(loader.load_plans(keep(loader.read_table(source, "Plans")),
                                       keep(loader.read_table(source, "Tiers"))))
        errors = [p for p in found if p.severity != "warning"]
        own = [p for p in errors if p.sheet == "Tiers"]  # the one-row Plans range is ours, not the user's
        if errors:
            raise InputProblems(Problem(p.sheet, p.row, p.column, p.message.replace(f" of plan {_TIERS_PLAN!r}", ""),
                                        p.fix, p.severity) for p in own or errors)
        return plans[_TIERS_PLAN.lower()]

    return _plans_cache.get(("tiers", mode, g.key), make)


def roster_book(roster: GridLike, usertypes: GridLike | None = None, usage: GridLike | None = None) -> Book:
    """Roster (with UserTypes and Usage) validated as in a workbook: every client and plan it names is in
    scope, unpriced (the measures count users and hours, not money)."""
    grids = (Grid.of(roster), as_grid(usertypes), as_grid(usage))

    def make() -> Book:
        found: list[Problem] = []
        keep = _checked(found)
        source = RangeSource({"Roster": grids[0], "UserTypes": grids[1], "Usage": grids[2]})
        roster_t = keep(loader.read_table(source, "Roster"))
        types = keep(loader.load_user_types(keep(loader.read_table(source, "UserTypes"))))
        users = keep(loader.load_roster(roster_t, None, None, types))
        hours = keep(loader.load_usage(keep(loader.read_table(source, "Usage")), None))
        _raise_errors(found)
        plan_names = _distinct(users["plan"]) or ["Unpriced plan"]
        clients = [Client(name, plan_names[0], 0) for name in _distinct([*users["client"], *hours["client"]])]
        plans = {n.lower(): Plan(n, rate_micros=ZERO_MICROS) for n in plan_names}
        return Book("<ranges>", _MEASURE_SETTINGS, plans, types, clients, users, loader.load_devices(None, None)[0],
                    [], hours, pd.DataFrame(), [p for p in found if p.severity == "warning"])

    return _book_cache.get(("roster", *_key(*grids)), make)


def workbook_book(tables: Mapping[str, GridLike | None]) -> Book:
    """Every table of a workbook, given as ranges, validated by the workbook loader."""
    names = sorted(tables)
    grids = {n: as_grid(tables[n]) for n in names}
    return _book_cache.get(("book", tuple(names), *_key(*grids.values())), lambda: load_ranges(grids))


# --------------------------------------------------------------------------
# Workbook handles (PERSEATBOOK, PERSEATUSAGE): parse once, answer each row from memory

HANDLE_RE = re.compile(r"#(?P<id>[0-9a-f]{6}-[0-9]+)\s*$")
"""The id at the end of a handle's text: this process's nonce, then a sequence number."""


@dataclass
class UsageTable:
    """A validated Usage table, held for :func:`priced_book` (PERSEATUSAGE)."""

    table: Table
    rows: int


class Priced:
    """A workbook loaded and priced once, with what the per-client functions ask for, computed on demand."""

    def __init__(self, book: Book):
        self.book = book
        self._run: Run | None = None
        self._days: dict[Period, dict[str, Any]] = {}
        self._usage: dict[tuple[Period, str], dict[str, Fraction]] = {}
        self._invoices: dict[str, Invoice] | None = None
        self._clients: set[str] = set()

    @property
    def run(self) -> Run:
        if self._run is None:
            self._run = invoice_run(self.book)
        return self._run

    def days(self, period: Period) -> Mapping[str, Any]:
        """Billable users of every client on each day of ``period``."""
        found = self._days.get(period)
        if found is None:
            found = self._days[period] = daily_users(self.book, period)
        return found

    def billable_users(self, client: str, day: dt.date) -> int:
        users = self.days(month_of(day)).get(client.strip().lower())
        return 0 if users is None else int(users[day.day - 1])

    def usage_per_user(self, client: str, period: Period, measure: str) -> Decimal:
        totals = self._usage.get((period, measure))
        if totals is None:
            totals = self._usage[(period, measure)] = usage_totals(self.book, period, measure)
        key = client.strip().lower()
        return per_user(totals.get(key, Fraction(0)), self.days(period).get(key), period, client)

    def invoice(self, client: str) -> Invoice | None:
        """``client``'s invoice for the BillingPeriod (None when it gets none); ArgumentError for an unknown
        client."""
        if self._invoices is None:
            self._invoices = {inv.client.name.lower(): inv for inv in self.run.invoices}
            self._clients = {c.name.lower() for c in self.book.clients}
        key = client.strip().lower()
        if key not in self._clients:
            raise ArgumentError(f'client "{client.strip()}" not in Clients')
        return self._invoices.get(key)

    def billed(self, client: str) -> Invoice:
        """``client``'s invoice; ArgumentError saying why when it gets none."""
        inv = self.invoice(client)
        if inv is None:
            raise _no_invoice(self.run, client)
        return inv


class Handles:
    """The workbooks and Usage tables behind handle texts: at most ``size`` of each, the oldest forgotten.

    A handle's id is unique to this Python process (a random nonce and a counter), so a handle from before a
    restart, or one forgotten, is never mistaken for another workbook: it asks for a recalculation instead.
    """

    def __init__(self, size: int = 4):
        self.size = size
        self.nonce = secrets.token_hex(3)
        self._seq = count(1)
        self._by_key: OrderedDict[Any, str] = OrderedDict()
        self._items: dict[str, Priced | UsageTable] = {}

    def clear(self) -> None:
        self._by_key.clear()
        self._items.clear()

    def get_or_add(self, key: Any, make: Callable[[], Priced | UsageTable]) -> tuple[str, Priced | UsageTable]:
        """The id and item for content ``key`` (made once)."""
        hid = self._by_key.get(key)
        if hid is not None and hid in self._items:
            self._by_key.move_to_end(key)
            return hid, self._items[hid]
        item = make()
        hid = f"{self.nonce}-{next(self._seq)}"
        self._by_key[key] = hid
        self._items[hid] = item
        kinds = type(item)
        same = [k for k, h in self._by_key.items() if isinstance(self._items.get(h), kinds)]
        for k in same[: max(len(same) - self.size, 0)]:
            self._items.pop(self._by_key.pop(k), None)
        return hid, item

    def find(self, text: str, what: str) -> Priced | UsageTable:
        """The item behind a handle's text; ArgumentError in words when it is not held."""
        m = HANDLE_RE.search(text)
        if m is None:
            raise ArgumentError(f"{what}: {text.strip()[:40]!r} is not a handle from PERSEATBOOK or PERSEATUSAGE")
        item = self._items.get(m.group("id"))
        if item is None:
            raise ArgumentError(f"{what} is out of date (Python restarted or newer workbooks took its place): "
                                "recalculate with Ctrl+Alt+F9")
        return item


HANDLES = Handles()


def is_handle(value: Any) -> bool:
    """True for text that looks like a workbook or Usage handle."""
    return isinstance(value, str) and value.startswith("perseat") and HANDLE_RE.search(value) is not None


USAGE_UNREAD = ("UserID", "Ticket", "Source", "Ref")
"""Usage columns billing and the per-user measures never read: left out of a PERSEATUSAGE handle."""


def usage_handle(usage: GridLike) -> str:
    """PERSEATUSAGE: the Usage table validated once, as a short text handle."""
    g = Grid.of(usage)

    def make() -> UsageTable:
        found: list[Problem] = []
        raw = g.raw("Usage", skip=USAGE_UNREAD)
        table = _checked(found)(loader.read_table(RangeSource({"Usage": raw}), "Usage"))
        _raise_errors(found)
        if table is None:
            raise ArgumentError("usage has no rows")
        return UsageTable(table, len(table.frame))

    hid, item = HANDLES.get_or_add(("usage", g.key), make)
    assert isinstance(item, UsageTable)
    return f"perseat usage · {item.rows:,} rows · #{hid}"


def priced_book(tables: Mapping[str, GridLike | None], usage: str | GridLike | None) -> str:
    """PERSEATBOOK: every table validated and priced once, as a short text handle."""
    names = sorted(tables)
    grids = {n: as_grid(tables[n]) for n in names}
    held: UsageTable | None = None
    if isinstance(usage, str):
        found_usage = HANDLES.find(usage, "usage")
        if not isinstance(found_usage, UsageTable):
            raise ArgumentError("usage: give the Usage table or a PERSEATUSAGE handle, not a PERSEATBOOK one")
        held = found_usage
        usage_key: Any = ("held", HANDLE_RE.search(usage).group("id"))  # type: ignore[union-attr]
    else:
        grids["Usage"] = as_grid(usage)
        usage_key = None

    def make() -> Priced:
        pre = {"Usage": held.table} if held is not None else {}
        book = load_source(RangeSource(grids), name="<ranges>", converted=pre)
        priced = Priced(book)
        priced.run  # noqa: B018 - priced now, so each row only looks up
        return priced

    key = ("book", tuple(grids), *_key(*grids.values()), usage_key)
    hid, item = HANDLES.get_or_add(key, make)
    assert isinstance(item, Priced)
    book = item.book
    return f"perseat · {len(book.clients):,} clients · {len(book.roster):,} users · #{hid}"


def held_book(text: str, what: str = "book") -> Priced:
    """The priced workbook behind a PERSEATBOOK handle."""
    item = HANDLES.find(text, what)
    if not isinstance(item, Priced):
        raise ArgumentError(f"{what}: this is a PERSEATUSAGE handle; give the PERSEATBOOK cell (e.g. Book)")
    return item


# --------------------------------------------------------------------------
# Invoices


_run_cache: OrderedDict[int, tuple[Book, Run]] = OrderedDict()


def run_for(book: Book) -> Run:
    """The invoice run of ``book``'s BillingPeriod (remembered for the few most recent books)."""
    hit = _run_cache.get(id(book))
    if hit is not None and hit[0] is book:
        return hit[1]
    run = invoice_run(book)
    _run_cache[id(book)] = (book, run)
    while len(_run_cache) > 4:
        _run_cache.popitem(last=False)
    return run


def invoice_for(book: Book, client: str) -> Invoice:
    """The invoice ``client`` gets for the BillingPeriod, exactly as the ribbon and the CLI produce it."""
    key = client.strip().lower()
    if key not in {c.name.lower() for c in book.clients}:
        raise ArgumentError(f'client "{client.strip()}" not in Clients')
    run = run_for(book)
    for inv in run.invoices:
        if inv.client.name.lower() == key:
            return inv
    raise _no_invoice(run, client)


def _no_invoice(run: Run, client: str) -> ArgumentError:
    """Why ``client`` gets no invoice in ``run``, as a message for the cell."""
    key = client.strip().lower()
    reason = next((r for c, r in run.skipped if c.lower() == key), "nothing to bill")
    return ArgumentError(f'no invoice for "{client.strip()}" in {run.period.label()}: {reason}')


__all__ = [
    "HANDLES",
    "Grid",
    "Handles",
    "PlanList",
    "Priced",
    "RangeSource",
    "Rows",
    "UsageTable",
    "as_grid",
    "clear_caches",
    "flat_plan",
    "gc_paused",
    "held_book",
    "invoice_for",
    "is_handle",
    "load_plans",
    "load_ranges",
    "priced_book",
    "roster_book",
    "run_for",
    "tier_plan",
    "usage_handle",
    "workbook_book",
]
