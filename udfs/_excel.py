"""The edge between Excel and the engine: what Excel passes becomes domain values, and answers become cells.

Excel hands every argument over as COM values, which xlwings passes on
untouched (the ``raw`` conversion of ``_spec``): floats for numbers, ``None``
for blank or omitted cells, COM times (datetimes) for dates, date serial
numbers from formulas such as ``DATE()``, text, Excel errors as integer codes,
and ranges as tuples of row tuples, header row first. This module reads them
itself, a table column by column without touching each cell in Python (xlwings'
own cleaning visits every cell: seconds for a 100,000-row Roster). Everything
wrong with an argument becomes a short ``#PERSEAT! …`` text in the cell, never
a traceback.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from itertools import chain
from typing import Any, TypeVar

import pandas as pd
import xlwings as xw

from perseat_addin.cells import ExcelError, cell_text, is_excel_error, to_date
from perseat_addin.errors import ArgumentError, InputProblems, PerseatError, Problem
from perseat_addin.excel.functions import Grid
from perseat_addin.money import to_decimal

from ._spec import SPECS, FunctionSpec

PREFIX = "#PERSEAT!"
MAX_TEXT = 255
MAX_NUMBER = 10**9  # as in the workbook's tables: beyond any price or count
MAX_COUNT = 10**7  # users or devices: ten times Excel's rows

STRICT = False
"""Tests set this: unexpected exceptions are raised instead of becoming ``#PERSEAT! internal error`` text."""

log = logging.getLogger("perseat_addin.udfs")
T = TypeVar("T")
_REQUIRED: Any = object()


class Upstream(Exception):
    """An argument holds another function's ``#PERSEAT!`` message: show that one, as Excel passes #N/A on."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def message(text: str) -> str:
    """``#PERSEAT! text``, cut to what a cell shows."""
    out = f"{PREFIX} {text}"
    return out if len(out) <= MAX_TEXT else out[: MAX_TEXT - 1] + "…"


def problems_text(problems: Iterable[Problem]) -> str:
    """The first problem, short: ``Roster row 5, Start: cell holds the Excel error #N/A (+2 more)``."""
    ps = list(problems)
    errors = [p for p in ps if p.severity == "error"] or ps
    if not errors:
        return "the tables have problems"
    p = errors[0]
    where = ""
    if p.sheet:
        col = re.sub(r" \([A-Z]{1,3}\)$", "", p.column) if p.column else ""
        where = p.sheet + (f" row {p.row}" if p.row is not None else "") + (f", {col}" if col else "") + ": "
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{p.message}{more}"


# --------------------------------------------------------------------------
# COM values

XL_ERRORS = {2000: "#NULL!", 2007: "#DIV/0!", 2015: "#VALUE!", 2023: "#REF!", 2029: "#NAME?", 2036: "#NUM!",
             2042: "#N/A", 2043: "#GETTING_DATA", 2045: "#SPILL!", 2046: "#CONNECT!", 2047: "#BLOCKED!",
             2048: "#UNKNOWN!", 2049: "#FIELD!", 2050: "#CALC!", 2051: "#BUSY!"}
"""Excel's CVErr numbers (xlErrNA = 2042, ...) and the error each shows."""

COM_ERROR_BASE = -2146828288
"""0x800A0000 as a signed HRESULT: COM hands an error cell over as this plus its CVErr number."""


def com_cell(value: Any) -> Any:
    """One COM value as a plain cell: an error code → :class:`ExcelError`, a COM time → a naive datetime
    (its wall-clock fields, as xlwings reads it), NaN → None; anything else as it is."""
    kind = type(value)
    if kind is float:
        return None if value != value else value
    if kind is int:
        code = value - COM_ERROR_BASE
        if 0 <= code < 0x10000:
            return ExcelError(XL_ERRORS.get(code, "#N/A"))
        return float(value)
    if isinstance(value, dt.datetime) and (kind is not dt.datetime or value.tzinfo is not None):
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                           value.microsecond)
    return value


# --------------------------------------------------------------------------
# Arguments


def _big(d: Decimal) -> str:
    return f"{d.normalize():,f}" if abs(d) < 10**15 else f"{float(d):.3g}"


def _shown(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def one(value: Any, name: str) -> Any:
    """The single value of an argument (blank → None); a range, an error or an upstream message is refused."""
    kind = type(value)
    if kind is float:  # the usual cases first: a number or a text cell
        return None if value != value else value
    if kind is str and value[:1] not in ("#", "") and not value[:1].isspace():  # not an error, message or blank
        return value
    if isinstance(value, pd.DataFrame):
        raise ArgumentError(f"{name} must be one cell, not a table")
    if isinstance(value, list | tuple):
        cells = [c for r in value for c in (r if isinstance(r, list | tuple) else [r])]
        if len(cells) != 1:
            raise ArgumentError(f"{name} must be one cell, not a range of {len(cells)} cells")
        value = cells[0]
    if isinstance(value, str):
        if value.startswith(PREFIX):
            raise Upstream(value)
        if not value.strip():
            return None
    else:
        value = com_cell(value)
    if isinstance(value, ExcelError):
        raise ArgumentError(f"{name} is the Excel error {value}")
    if is_excel_error(value):
        raise ArgumentError(f"{name} is the Excel error {str(value).strip().upper()}")
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def blank(name: str, default: Any) -> Any:
    """What a blank argument gives: its default, or an error when it is required."""
    if default is _REQUIRED:
        raise ArgumentError(f"{name} is blank")
    return default


def number(value: Any, name: str, default: Any = _REQUIRED, *, percent: bool = False) -> Any:
    """A number as an exact Decimal (floats through their shortest form; numeric text accepted)."""
    if type(value) is float and -MAX_NUMBER < value < MAX_NUMBER:  # the usual case: a number cell
        return to_decimal(value)
    v = one(value, name)
    if v is None:
        return blank(name, default)
    if isinstance(v, bool):
        raise ArgumentError(f"{name} is {'TRUE' if v else 'FALSE'}, not a number")
    if isinstance(v, dt.date):
        raise ArgumentError(f"{name} is a date, not a number")
    try:
        if percent and isinstance(v, str) and v.strip().endswith("%"):
            d = to_decimal(v.strip()[:-1]) / 100
        else:
            d = to_decimal(v)
    except ValueError:
        raise ArgumentError(f"{name}: {_shown(v)} is not a number") from None
    if abs(d) >= MAX_NUMBER:
        raise ArgumentError(f"{name}: {_big(d)} is too large")
    return d


def count(value: Any, name: str, default: Any = _REQUIRED) -> Any:
    """A whole number ≥ 0 (a count of users or devices)."""
    if type(value) is float and value.is_integer() and 0 <= value <= MAX_COUNT:  # the usual case
        return int(value)
    d = number(value, name, default)
    if d is default and default is not _REQUIRED:
        return d
    if d != d.to_integral_value():
        raise ArgumentError(f"{name}: {d.normalize():f} is not a whole number")
    if d < 0:
        raise ArgumentError(f"{name} cannot be negative ({d.normalize():f})")
    if d > MAX_COUNT:
        raise ArgumentError(f"{name}: {d.normalize():f} is more than {MAX_COUNT:,}")
    return int(d)


def text(value: Any, name: str, default: Any = _REQUIRED) -> Any:
    """Text, trimmed (a whole-number cell such as 1001 reads as "1001")."""
    v = one(value, name)
    if v is None:
        return blank(name, default)
    return cell_text(v)


def date(value: Any, name: str, default: Any = _REQUIRED) -> Any:
    """A date: an Excel date (datetime), a date serial number, or text such as 2026-11-15."""
    if isinstance(value, dt.datetime):  # a date cell (a COM time): its day, by its fields
        return dt.date(value.year, value.month, value.day)
    v = one(value, name)
    if v is None:
        return blank(name, default)
    if isinstance(v, bool):
        raise ArgumentError(f"{name} is {'TRUE' if v else 'FALSE'}, not a date")
    try:
        return to_date(v)  # the same rule as a date cell in a table
    except ValueError as exc:
        raise ArgumentError(f"{name}: {exc}") from None


def choice(value: Any, name: str, options: Mapping[str, T], default: T) -> T:
    """One of ``options`` (any case); blank = ``default``."""
    if value is None:
        return default
    v = text(value, name, None)
    if v is None:
        return default
    try:
        return options[v.lower()]
    except KeyError:
        raise ArgumentError(f"{name} {_shown(v)} is not one of: {', '.join(options)}") from None


SMALL_TABLE = 2_000
"""Cells up to which a range is remembered by its content (a Plans or Tiers table, not a Roster)."""

_small_grids: OrderedDict[Any, Grid] = OrderedDict()


def _remember(key: Any, grid: Grid) -> Grid:
    try:
        _small_grids[key] = grid
    except TypeError:  # a cell that cannot be hashed: not remembered
        return grid
    while len(_small_grids) > 64:
        _small_grids.popitem(last=False)
    return grid


def table(value: Any, name: str, skip: Collection[str] = ()) -> Grid | None:
    """A range with its header row (None when blank), read column by column; columns headed by a name in
    ``skip`` are left out."""
    if value is None or isinstance(value, Grid):
        return value
    if isinstance(value, pd.DataFrame):  # a caller using xlwings' DataFrame conversion
        header = [None if isinstance(h, float) and math.isnan(h) else h for h in value.columns]
        body = value.astype(object).where(value.notna(), None).to_numpy().tolist()
        rows: Any = [header, *body]
    elif isinstance(value, list | tuple):  # a 2-D range; a flat one is a single row
        rows = (tuple(value),) if value and not isinstance(value[0], list | tuple) else value
    else:
        if one(value, name) is None:
            return None
        raise ArgumentError(f"{name} must be a table with its header row, e.g. {name.capitalize()}[#All]")
    small = isinstance(rows, tuple) and len(rows) * len(rows[0]) <= SMALL_TABLE if rows else False
    if small:  # Plans, Tiers, UserTypes: passed again on every row of a column, read once
        key = (rows, tuple(map(type, chain.from_iterable(rows))), tuple(skip))  # TRUE == 1.0 in a tuple: types too
        try:
            grid = _small_grids[key]
            _small_grids.move_to_end(key)
        except (KeyError, TypeError):
            grid = _remember(key, Grid.of(rows, com_cell, skip))
    else:
        grid = Grid.of(rows, com_cell, skip)
    if grid.blank:
        return None
    if not any(isinstance(h, str) and h.strip() for h in grid.headers):  # numbers or dates where headers belong
        raise ArgumentError(f"{name} must be a table with its header row, e.g. {name.capitalize()}[#All]")
    return grid


def required_table(value: Any, name: str, title: str, skip: Collection[str] = ()) -> Grid:
    rows = table(value, name, skip)
    if rows is None:
        raise ArgumentError(f"{name} is blank: give the {title} table with its header row, e.g. {title}[#All]")
    return rows


# --------------------------------------------------------------------------
# Answers


def money(cents: int) -> float:
    """Cents as the cell's number of currency units (the nearest float to the exact cents)."""
    return cents / 100


# --------------------------------------------------------------------------
# The decorator


def _check_signature(fn: Callable[..., Any], spec: FunctionSpec) -> None:
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params]
    if names != [a.name for a in spec.args]:
        raise TypeError(f"{fn.__name__}{names} does not match its FunctionSpec {[a.name for a in spec.args]}")
    for p, a in zip(params, spec.args, strict=True):
        has_default = p.default is not inspect.Parameter.empty
        if has_default != a.optional or (has_default and p.default is not None):
            want = "default to None" if a.optional else "be required"
            raise TypeError(f"{fn.__name__}: argument {a.name} must {want}")


def apply_xlwings(fn: Callable[..., Any], spec: FunctionSpec, func: Callable[..., Any] = xw.func,
                  arg: Callable[..., Any] = xw.arg, ret: Callable[..., Any] = xw.ret) -> Callable[..., Any]:
    """``@xw.func``/``@xw.arg``/``@xw.ret`` from ``spec`` (tests pass xlwings' Windows implementations)."""
    for a in spec.args:
        fn = arg(a.name, doc=a.help, **a.convert)(fn)
    fn = ret(**spec.ret)(fn)
    decorated: Callable[..., Any] = func(category=spec.category, volatile=spec.volatile,
                                         call_in_wizard=spec.call_in_wizard)(fn)
    return decorated


def guarded(fn: Callable[..., Any], spec: FunctionSpec) -> Callable[..., Any]:
    """``fn`` answering every problem with a ``#PERSEAT!`` message instead of an exception."""

    spills = spec.ret.get("convert") != "raw"

    @functools.wraps(fn)
    def cell(*args: Any, **kwargs: Any) -> Any:
        try:
            answer = fn(*args, **kwargs)
            if spills or type(answer) is float or type(answer) is str:
                return answer
            return float(answer) if isinstance(answer, int) and not isinstance(answer, bool) else answer
        except Upstream as up:
            return up.text
        except InputProblems as exc:
            return message(problems_text(exc.problems))
        except PerseatError as exc:
            return message(str(exc))
        except Exception as exc:
            if STRICT:
                raise
            if isinstance(exc, ValueError):
                return message(str(exc))
            log.exception("%s failed", spec.name)
            return message(f"internal error: {type(exc).__name__}: {exc}")

    cell.__doc__ = spec.description
    cell.__perseat_spec__ = spec  # type: ignore[attr-defined]
    return cell


def excel_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``fn`` the Excel function of its FunctionSpec (looked up by name): guarded and xlwings-decorated."""
    spec = SPECS[fn.__name__]
    _check_signature(fn, spec)
    return apply_xlwings(guarded(fn, spec), spec)
