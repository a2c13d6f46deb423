"""A stand-in for Excel calling the Per-Seat Billing functions through xlwings, for tests and benchmarks.

How Excel reaches a function, and what stands in for it here
-------------------------------------------------------------
On Windows a formula calls the VBA wrapper xlwings generates, which calls
``xlwings.udfs.call_udf``: an omitted Optional argument (DISP_E_PARAMNOTFOUND)
becomes the Python default; every other argument goes through
``xlwings.conversion.read(None, value, options)`` with the options of that
argument's ``@xw.arg`` (a Range argument is read through ``Range.raw_value``
first, which is the same COM value); the answer goes through
``xlwings.conversion.write``. :func:`excel` below does exactly that.

On Linux ``xlwings.engines`` is empty and ``xlwings.udfs`` cannot be imported
(it needs pywin32), so this module

- registers a **stand-in for Excel's COM value layer** as the ``excel``
  engine. Its ``clean_value_data``, ``prepare_xl_data_element``, ``name`` and
  ``type`` are xlwings' own Windows code — ``cell_errors``,
  ``_com_time_to_datetime``, ``_clean_value_data_element`` and those ``Engine``
  members of ``xlwings/_xlwindows.py`` — compiled from that file's source text
  with ``pywintypes.TimeType`` replaced by ``datetime.datetime`` (TimeType is a
  datetime subclass) and dates written back unchanged (no answer is a date).
  It therefore mirrors what xlwings does on Windows with COM values: ``None``
  or ``""`` → the ``empty`` option (None), COM times → naive datetimes, error
  ints (-2146826246 = #N/A, -2146826273 = #VALUE!, ...) → their text with
  ``err_to_str`` (else None), numbers as they are;
- builds each function's ``__xlfunc__`` with xlwings' own ``xlfunc``,
  ``xlarg`` and ``xlret`` compiled from ``xlwings/udfs.py``'s source, applied
  from the FunctionSpec registry by the same ``apply_xlwings`` the package uses.

Values are fed as COM hands them over: floats for every number, ``None`` for
blank cells, ``datetime`` for date cells, error ints, tuples of row tuples for
ranges (header row first), date serial floats for formulas such as
``DATE(2026,11,1)``, ``Decimal`` for Currency-formatted cells.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xlwings
from xlwings import conversion
from xlwings.main import Engine

from perseat_addin import udfs

_excel = udfs._excel
EPOCH = dt.date(1899, 12, 30)


def serial(d: dt.date) -> float:
    """Excel's date serial number, as a formula such as DATE(2026,11,1) passes it."""
    return float((d - EPOCH).days)


# --------------------------------------------------------------------------
# xlwings' own Windows code, compiled from its source text

XLWINGS = Path(xlwings.__file__).parent
MISSING = -2147352572  # DISP_E_PARAMNOTFOUND: what the VBA wrapper passes for an omitted Optional argument
N_A, VALUE, REF = -2146826246, -2146826273, -2146826265
def _compile(path: Path, names: set[str], namespace: dict[str, Any], classes: dict[str, set[str]] | None = None,
             ) -> dict[str, Any]:
    """Top-level functions/assignments ``names`` (and chosen members of ``classes``) of ``path``, executed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body: list[ast.stmt] = [ast.ImportFrom(module="__future__", names=[ast.alias("annotations")], level=0)]
    for node in tree.body:
        wanted = (isinstance(node, ast.FunctionDef) and node.name in names) or (
            isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets))
        if wanted:
            body.append(node)
        elif isinstance(node, ast.ClassDef) and classes and node.name in classes:
            keep = [m for m in node.body if isinstance(m, ast.FunctionDef) and m.name in classes[node.name]]
            body.append(ast.ClassDef(name=node.name, bases=[], keywords=[], body=keep, decorator_list=[],
                                     type_params=[]))
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    exec(compile(module, str(path), "exec"), namespace)
    found = {n for n in names | set(classes or {}) if n in namespace}
    assert found == names | set(classes or {}), f"{path.name} no longer defines {names - found}"
    return namespace


WINDOWS = _compile(
    XLWINGS / "_xlwindows.py",
    {"cell_errors", "_com_time_to_datetime", "_clean_value_data_element"},
    {"dt": dt, "pd": pd, "np": __import__("numpy"), "time_types": (dt.date, dt.datetime),
     "_datetime_to_com_time": lambda value: value},
    classes={"Engine": {"name", "type", "prepare_xl_data_element", "clean_value_data"}},
)
UDF_DECORATORS = _compile(
    XLWINGS / "udfs.py",
    {"func_sig", "get_category", "get_async_mode", "check_bool", "extract_type_and_annotations", "xlfunc",
     "xlarg", "xlret"},
    {"inspect": inspect, "dt": dt, "get_type_hints": typing.get_type_hints, "get_origin": typing.get_origin,
     "get_args": typing.get_args, "Annotated": typing.Annotated, "Any": Any, "Callable": Callable,
     "TypeVar": typing.TypeVar, "_F": typing.TypeVar("_F")},
)
ERROR_CODES = {text: code for code, text in WINDOWS["cell_errors"].items()}



def install() -> Any:
    """Register the stand-in ``excel`` engine (a real Excel's when there is one); returns a remover."""
    if "excel" in [e.name for e in xlwings.engines]:
        return lambda: None
    engine = Engine(impl=WINDOWS["Engine"]())
    xlwings.engines.add(engine)

    def remove() -> None:
        xlwings.engines.engines.remove(engine)
        del xlwings.engines.engines_by_name["excel"]

    return remove


def engine_installed() -> Iterator[None]:
    """The stand-in engine for the duration of a ``with``-less fixture (yield once)."""
    remove = install()
    yield
    remove()


@functools.cache
def xlfunc(name: str) -> Callable[..., Any]:
    """The function as xlwings on Windows registers it: ``__xlfunc__`` built by xlwings' own decorators."""
    udf = getattr(udfs, name)
    copy = functools.wraps(udf)(lambda *args: udf(*args))
    copy.__dict__.pop("__xlfunc__", None)
    spec = udf.__perseat_spec__
    return _excel.apply_xlwings(copy, spec, func=UDF_DECORATORS["xlfunc"], arg=UDF_DECORATORS["xlarg"],
                                ret=UDF_DECORATORS["xlret"])


def excel(name: str, *args: Any) -> Any:
    """Call ``name`` like Excel does: pad omitted arguments, convert each like ``call_udf``, write the answer."""
    fn = xlfunc(name)
    info = fn.__xlfunc__
    values = list(args) + [MISSING] * (len(info["args"]) - len(args))
    for i, value in enumerate(values):
        arg_info = info["args"][min(i, len(info["args"]) - 1)]
        if isinstance(value, int) and value == MISSING:
            values[i] = arg_info.get("optional", None)
        else:
            values[i] = conversion.read(None, value, arg_info["options"])
    out = conversion.write(fn(*values), None, info["ret"]["options"])
    if not isinstance(out, list):  # a raw answer: one value, as Excel receives it
        return out
    return out[0][0] if len(out) == 1 and len(out[0]) == 1 else out


def rng(*rows: Any) -> tuple[tuple[Any, ...], ...]:
    """A range as COM returns ``Range.Value``: a tuple of row tuples, numbers as floats."""
    def com(v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) and v not in WINDOWS["cell_errors"] else v
    return tuple(tuple(com(v) for v in r) for r in rows)




class Formulas:
    """Just enough of Excel's formula language to evaluate the template's own formulas with these functions.

    Structured references (``Roster[#All]``, ``Settings[Value]``, ``[@Client]``,
    ``[[#This Row],Client]``), defined names, text, numbers, ``&``, ``*``, and the
    worksheet functions the template uses next to ours (INDEX, MATCH, DATEVALUE,
    EOMONTH, COUNTIFS). Anything else fails the test: a formula this cannot
    read is a formula to look at.
    """

    TOKEN = re.compile(r'\s*(?:(?P<str>"[^"]*")|(?P<num>\d+(?:\.\d+)?)'
                       r"|(?:\w+)?\[\[#This Row\],\s*\[?(?P<this>[^\]]+)\]?\]|\[@(?P<at>[^\]]+)\]"
                       r"|(?P<ref>[A-Za-z_][\w.]*\[(?:\[[^\]]+\],?:?)+\]|[A-Za-z_][\w.]*\[[^\]]+\])"
                       r"|(?P<name>[A-Za-z_][\w.]*)|(?P<op>[(),&*]))")

    def __init__(self, tables: Mapping[str, Any], names: Mapping[str, str]):
        self.tables, self.names = tables, names
        self.cache: dict[str, Any] = {}
        self.cells_passed: dict[str, int] = {}  # table → cells of it handed to a function

    def tokens(self, text: str) -> list[tuple[str, str]]:
        out, pos = [], 0
        text = text.lstrip("=").strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            assert m and m.end() > pos, f"cannot read {text[pos:]!r}"
            kind = next(k for k in ("str", "num", "this", "at", "ref", "name", "op") if m.group(k) is not None)
            out.append(("this" if kind == "at" else kind, m.group(kind).strip()))
            pos = m.end()
        return out

    def _passed(self, table: str, n: int) -> None:
        self.cells_passed[table] = self.cells_passed.get(table, 0) + n

    def evaluate(self, formula: str, row: dict[str, Any] | None = None) -> Any:
        self.toks, self.row = self.tokens(formula), row or {}
        value = self.expr()
        assert not self.toks, f"unread: {self.toks}"
        return value

    def expr(self) -> Any:
        value = self.product()
        while self.toks and self.toks[0] == ("op", "&"):
            self.toks.pop(0)
            value = f"{value}{self.product()}"
        return value

    def product(self) -> Any:
        value = self.term()
        while self.toks and self.toks[0] == ("op", "*"):
            self.toks.pop(0)
            value = float(value) * float(self.term())
        return value

    def term(self) -> Any:
        kind, value = self.toks.pop(0)
        if kind == "str":
            return value[1:-1]
        if kind == "num":
            return float(value)
        if kind == "this":
            return self.row[value]
        if kind == "ref":
            table, col = re.fullmatch(r"(\w+)\[(.+)\]", value).groups()  # type: ignore[union-attr]
            rows = self.tables[table]
            span = re.fullmatch(r"\[#All\],\[(\w+)\]:\[(\w+)\]", col)
            if span:  # Clients[[#All],[Client]:[End]]
                lo, hi = rows[0].index(span.group(1)), rows[0].index(span.group(2))
                self._passed(table, len(rows) * (hi - lo + 1))
                return tuple(r[lo:hi + 1] for r in rows)
            if col == "#All":
                self._passed(table, len(rows) * len(rows[0]))
                return rows
            self._passed(table, len(rows) - 1)
            return [r[rows[0].index(col)] for r in rows[1:]]
        assert kind == "name", (kind, value)
        if self.toks and self.toks[0] == ("op", "("):
            self.toks.pop(0)
            args = []
            while self.toks[0] != ("op", ")"):
                args.append(self.expr())
                if self.toks[0] == ("op", ","):
                    self.toks.pop(0)
            self.toks.pop(0)
            return self.call(value.upper(), args)
        if value not in self.cache:
            saved = self.toks, self.row
            self.cache[value] = self.evaluate(self.names[value])
            self.toks, self.row = saved
        return self.cache[value]

    def call(self, name: str, args: list[Any]) -> Any:
        if name in udfs.SPECS:
            return excel(name, *args)
        if name == "INDEX":
            return args[0][int(args[1]) - 1]
        if name == "MATCH":
            return 1 + [str(v).lower() for v in args[1]].index(str(args[0]).lower())
        if name == "DATEVALUE":
            return serial(dt.date.fromisoformat(args[0]))
        if name == "EOMONTH" and args[1] == 0:
            d = EPOCH + dt.timedelta(days=int(args[0]))
            return serial(dt.date(d.year + d.month // 12, d.month % 12 + 1, 1) - dt.timedelta(days=1))
        if name == "COUNTIFS":
            return float(sum(1 for v in args[0] if str(v).lower() == str(args[1]).lower()))
        raise AssertionError(f"the template uses {name}(), which this test cannot evaluate")
