"""Excel recalculation benchmark: the template's Clients formulas at MSP scale, evaluated as Excel calls them.

Every formula cell of the template's Clients table (and the UsageBook and Book cells they depend on, first)
is evaluated one call per cell through xlwings' own argument and result conversion, with each range handed
over as COM hands it: a tuple of row tuples, numbers as floats, dates as COM times (timezone-aware
datetimes, as pywin32 returns them), blanks as None. That is everything Python does in a recalculation;
what Excel itself spends moving the cells across COM is not measured here (it is the same for any add-in
and proportional to ``roster_cells_passed``).

Prints JSON: ``python_seconds`` (a full recalculation in a fresh session: every handle parsed; and its CPU
seconds, which on a busy machine stay close to a quiet one's wall clock), the seconds
after editing one Roster cell, a repeat full recalculation (nothing changed), ``roster_cells_passed`` per
full recalculation, the floor (merely visiting every cell handed over once), peak RSS, and the scalar
functions' time per call.

Run (from the project folder): python -m benchmarks.excel_recalc [--users N] [--clients C] [--usage-rows U]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the xlwings stand-in and formula evaluator the tests use

import xlstandin  # noqa: E402

from benchmarks.report import usage_rows  # noqa: E402
from benchmarks.synth import workbook_sheets  # noqa: E402
from perseat_addin import udfs  # noqa: E402
from perseat_addin.excel import functions  # noqa: E402
from perseat_addin.excel.template import CLIENT_FORMULAS, HANDLE_CELLS, SETTING_NAMES  # noqa: E402

UTC = dt.timezone.utc


class ComTime(dt.datetime):
    """A date as pywin32 hands it over (``pywintypes.TimeType``): a datetime subclass, timezone-aware."""


def com(v: Any) -> Any:
    """A cell value as COM's ``Range.Value`` holds it."""
    if v is None or isinstance(v, bool | str):
        return None if v == "" else v
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, dt.date):
        return ComTime(v.year, v.month, v.day, tzinfo=UTC)
    return v


def com_tables(users: int, clients: int, usage: int) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """The generated workbook's tables as COM ranges (header row first)."""
    sheets = workbook_sheets(users, clients)
    next(s for s in sheets if s.name == "Usage").rows = usage_rows(usage, clients, users)
    out = {}
    for s in sheets:
        width = len(s.headers)
        rows = [tuple(s.headers), *(tuple(com(v) for v in (*r, *[None] * (width - len(r)))[:width])
                                    for r in s.rows)]
        out[s.name] = tuple(rows)
    return out


def cells(rows: Sequence[Sequence[Any]]) -> int:
    return len(rows) * len(rows[0])


class Recalc:
    """The Clients formula columns over ``tables``, evaluated like Excel: handle cells first, then row by row."""

    def __init__(self, tables: dict[str, tuple[tuple[Any, ...], ...]]):
        self.tables = tables
        self.names: dict[str, str] = dict(SETTING_NAMES)
        self.names.update({name: formula for name, (_, formula) in HANDLE_CELLS.items()})
        head = tables["Clients"][0]
        self.head = list(head) + [h for h in CLIENT_FORMULAS if h not in head]
        self.inside = 0.0  # seconds spent in the functions (conversion included)
        self.cpu = 0.0  # the same in CPU seconds (close to a quiet machine's wall clock on a busy one)
        self.calls = 0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(name: str, *args: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(name, *args)
            finally:
                self.inside += time.perf_counter() - t0
                self.cpu += time.process_time() - c0
                self.calls += 1
        return call

    def run(self, ev: xlstandin.Formulas) -> dict[str, dict[str, Any]]:
        """Every Clients formula cell; returns client → column → value."""
        for name in HANDLE_CELLS:  # Excel computes the precedents first: UsageBook, then Book
            ev.evaluate(name)
        out: dict[str, dict[str, Any]] = {}
        for r in self.tables["Clients"][1:]:
            row = dict(zip(self.head, r, strict=False))
            for h, formula in CLIENT_FORMULAS.items():
                row[h] = ev.evaluate(formula, row)
            out[str(row["Client"])] = row
        return out

    def evaluator(self, keep: Mapping[str, Any] | None = None) -> xlstandin.Formulas:
        ev = xlstandin.Formulas(self.tables, self.names)
        ev.cache.update(keep or {})
        return ev


def scalar_us(excel: Callable[..., Any]) -> dict[str, dict[str, float]]:
    """Microseconds per call of the scalar functions in a sheet's typical use: the function itself (COM values
    in, the answer out) and the whole call through xlwings' argument and result conversion."""
    header = ("Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate", "IncludedHours",
              "OverageRate", "Taxable", "Description")
    plans = (header, *((f"Plan {k}", 60.0 + k, "flat", 0.0, 0.0, "users", 0.0, None, 0.0, "Yes", "")
                       for k in range(6)))
    tiers = (("UpTo", "Rate"), (10.0, 60.0), (25.0, 55.0), (None, 50.0))
    start, period = ComTime(2026, 11, 15, tzinfo=UTC), 46327.0
    calls = {
        "SEATCHARGE": (12.0, "Plan 3", plans, None, 2.0),
        "TIERPRICE": (30.0, tiers, "graduated"),
        "PRORATE": (95.0, start, None, period),
        "TIERCHARGE": (30.0, tiers, "volume"),
        "RECOMMENDPRICE": (1.25, 55.0, 0.35, 0.0, 5.0),
    }
    out = {}
    n = 3000
    for name, args in calls.items():
        fn = getattr(udfs, name)
        excel(name, *args)  # tables parsed once, as in a sheet where every row passes the same Plans
        direct = min(timeit.repeat(lambda f=fn, a=args: f(*a), number=n, repeat=5)) / n  # type: ignore[misc]
        full = min(timeit.repeat(lambda a=args, k=name: excel(k, *a), number=n, repeat=5)) / n  # type: ignore[misc]
        out[name] = {"function_us": round(direct * 1e6, 1), "with_xlwings_us": round(full * 1e6, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--usage-rows", type=int, default=None, help="default: 10 per user")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    usage = args.usage_rows if args.usage_rows is not None else 10 * args.users
    remove = xlstandin.install()
    tables = com_tables(args.users, args.clients, usage)
    floors = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for name in ("Roster", "Usage"):
            for _cell in chain.from_iterable(tables[name]):
                pass
        floors.append(time.perf_counter() - t0)
    floor = min(floors)

    rc = Recalc(tables)
    plain = xlstandin.excel
    xlstandin.excel = rc.timed(plain)  # type: ignore[method-assign]
    full, edit, warm, passed, results = [], [], [], {}, {}
    full_cpu, edit_cpu = [], []
    roster_head = tables["Roster"][0]
    status = roster_head.index("Status")
    for k in range(args.repeat):
        functions.clear_caches()  # a fresh session: nothing parsed yet
        rc.inside, rc.cpu, rc.calls = 0.0, 0.0, 0
        ev = rc.evaluator()
        results = rc.run(ev)
        full.append(rc.inside)
        full_cpu.append(rc.cpu)
        calls = rc.calls
        passed = dict(ev.cells_passed)
        rc.inside = 0.0
        results_warm = rc.run(rc.evaluator())  # recalculate all again, nothing changed
        warm.append(rc.inside)
        assert results_warm == results
        # one Roster cell edited: Book and every cell that uses it recompute; UsageBook keeps its value
        rows = list(tables["Roster"])
        i = 1 + (k * 7919) % (len(rows) - 1)
        row = list(rows[i])
        row[status] = "Disabled" if row[status] != "Disabled" else "Active"
        rows[i] = tuple(row)
        tables["Roster"] = tuple(rows)
        rc.inside, rc.cpu = 0.0, 0.0
        ev = rc.evaluator({"UsageBook": ev.cache["UsageBook"]} | {n: ev.cache[n] for n in SETTING_NAMES
                                                                    if n in ev.cache})
        rc.run(ev)
        edit.append(rc.inside)
        edit_cpu.append(rc.cpu)
        edit_passed = dict(ev.cells_passed)
    xlstandin.excel = plain  # type: ignore[method-assign]
    errors = sorted({f"{c}: {h}: {v}" for c, row in results.items() for h, v in row.items()
                     if isinstance(v, str) and v.startswith("#PERSEAT!")})
    best = min(full)
    result = {
        "benchmark": "excel_recalc", "users": args.users, "clients": args.clients, "usage_rows": usage,
        "formula_cells": args.clients * len(CLIENT_FORMULAS) + len(HANDLE_CELLS), "calls_per_recalc": calls,
        "python_seconds": round(best, 3), "python_seconds_all": [round(t, 3) for t in full],
        "roster_edit_seconds": round(min(edit), 3), "roster_edit_seconds_all": [round(t, 3) for t in edit],
        "repeat_recalc_seconds": round(min(warm), 3),
        "python_cpu_seconds": round(min(full_cpu), 3), "roster_edit_cpu_seconds": round(min(edit_cpu), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "roster_cells_passed": passed.get("Roster", 0), "usage_cells_passed": passed.get("Usage", 0),
        "roster_cells": cells(tables["Roster"]), "usage_cells": cells(tables["Usage"]),
        "roster_edit_cells_passed": sum(edit_passed.get(n, 0) for n in ("Roster", "Usage")),
        "floor_seconds": round(floor, 3), "floor": "visiting every Roster and Usage cell handed over once",
        "ratio_to_floor": round(best / floor, 1) if floor else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "scalar_us_per_call": scalar_us(plain),
        "target_seconds": 2.0 if args.users > 5_000 else 0.2,
        "cells_with_messages": errors[:5],
    }
    result["meets_target"] = (best <= result["target_seconds"] and min(edit) <= result["target_seconds"]
                              and passed.get("Roster", 0) <= cells(tables["Roster"])
                              and passed.get("Usage", 0) <= cells(tables["Usage"])
                              and all(v["function_us"] <= 50 for v in result["scalar_us_per_call"].values()))
    remove()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
