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

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd

from perseat_addin.engine.advice import _num
from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.errors import ArgumentError, InputProblems, Problem
from perseat_addin.model import Book, Client, Invoice, Period, Plan, Settings, Tiering
from perseat_addin.money import ZERO_MICROS, to_micros
from perseat_addin.tables import MemoryTables, RawTable, header_key
from perseat_addin.workbook import load as loader
from perseat_addin.workbook.load import load_source

Rows = Sequence[Sequence[Any]]
"""A range as Excel hands it over: a header row, then data rows."""

T = TypeVar("T")


# --------------------------------------------------------------------------
# Tables from ranges


class RangeSource:
    """SPEC §3 tables given as 2-D ranges (name → rows), each read once however often it is asked for."""

    def __init__(self, tables: Mapping[str, Rows | None]):
        given = {name: rows for name, rows in tables.items() if rows is not None}
        memory = MemoryTables(given)
        self._raw: dict[str, RawTable] = {}
        for name in given:
            raw = memory.table(name)
            if raw is not None:
                self._raw[name.lower()] = raw

    def table(self, name: str) -> RawTable | None:
        return self._raw.get(name.lower())


def load_ranges(tables: Mapping[str, Rows | None]) -> Book:
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


def _key(*tables: Rows | None) -> tuple[Any, ...]:
    """A digest of the tables' exact cells (type included): small to keep, safe to compare."""
    try:
        data = pickle.dumps([None if t is None else [list(r) for r in t] for t in tables], protocol=5)
    except Exception:  # a cell pickle cannot take: such tables are simply not remembered
        return (object(),)
    return (hashlib.blake2b(data, digest_size=32).digest(),)


def clear_caches() -> None:
    """Forget every loaded table (tests; memory)."""
    _plans_cache.clear()
    _book_cache.clear()


@dataclass(frozen=True)
class PlanList:
    """A validated Plans table: lower-case name → Plan in table order, and the tiered plans given no tiers."""

    plans: Mapping[str, Plan]
    without_tiers: frozenset[str] = frozenset()

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


def load_plans(plans: Rows, tiers: Rows | None = None) -> PlanList:
    """Plans (and Tiers) validated as in a workbook.

    Without ``tiers`` the flat plans still answer; a volume or graduated plan
    is then in ``without_tiers`` (asking for it says the Tiers table is needed).
    """

    def make() -> PlanList:
        found: list[Problem] = []
        keep = _checked(found)
        source = RangeSource({"Plans": plans, "Tiers": tiers})
        plans_t = keep(loader.read_table(source, "Plans"))
        tiers_t = keep(loader.read_table(source, "Tiers"))
        listed = keep(loader.load_plans(plans_t, tiers_t, need_tiers=tiers is not None))
        _raise_errors(found)
        without = frozenset(k for k, p in listed.items() if p.tiering is not Tiering.FLAT) if tiers is None \
            else frozenset()
        return PlanList(listed, without)

    return _plans_cache.get(("plans", *_key(plans, tiers)), make)


def flat_plan(rate: Decimal) -> Plan:
    """A plan that is just a rate per user (no minimums, no devices)."""
    if rate < 0:
        raise ArgumentError(f"a rate of {_num(rate)} per user is negative")
    return Plan(name=f"{_num(rate)} per user", rate_micros=to_micros(rate))


_TIERS_PLAN = "Tiers"


def tier_plan(tiers: Rows, mode: Tiering) -> Plan:
    """A plan made of one list of tiers (UpTo, Rate) priced ``mode`` (volume or graduated)."""
    if mode is Tiering.FLAT:
        raise ArgumentError("mode must be graduated or volume")
    rows = [list(r) for r in tiers]
    if not rows:
        raise ArgumentError("tiers is empty: give the UpTo and Rate columns with their header row")
    if any(header_key(h) == "plan" for h in rows[0] if h is not None):
        raise ArgumentError("tiers: give only the UpTo and Rate columns of one plan (no Plan column)")
    if not any(any(v not in (None, "") for v in r) for r in rows[1:]):
        raise ArgumentError("tiers has no rows: one tier per row, UpTo blank on the last")
    width = len(rows[0])
    table = [[*r[:width], *[None] * (width - len(r)), "Plan" if i == 0 else _TIERS_PLAN]
             for i, r in enumerate(rows)]

    def make() -> Plan:
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

    return _plans_cache.get(("tiers", mode, *_key(table)), make)


def roster_book(roster: Rows, usertypes: Rows | None = None, usage: Rows | None = None) -> Book:
    """Roster (with UserTypes and Usage) validated as in a workbook: every client and plan it names is in
    scope, unpriced (the measures count users and hours, not money)."""

    def make() -> Book:
        found: list[Problem] = []
        keep = _checked(found)
        source = RangeSource({"Roster": roster, "UserTypes": usertypes, "Usage": usage})
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

    return _book_cache.get(("roster", *_key(roster, usertypes, usage)), make)


def workbook_book(tables: Mapping[str, Rows | None]) -> Book:
    """Every table of a workbook, given as ranges, validated by the workbook loader."""
    names = sorted(tables)
    return _book_cache.get(("book", tuple(names), *_key(*(tables[n] for n in names))),
                           lambda: load_ranges(tables))


# --------------------------------------------------------------------------
# Prices


# --------------------------------------------------------------------------
# Seats and usage


# --------------------------------------------------------------------------
# Pricing advice


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
    reason = next((r for c, r in run.skipped if c.lower() == key), "nothing to bill")
    raise ArgumentError(f'no invoice for "{client.strip()}" in {run.period.label()}: {reason}')


__all__ = ["PlanList", "RangeSource", "Rows", "clear_caches", "flat_plan", "invoice_for", "load_plans", "load_ranges",
           "roster_book",
           "run_for", "tier_plan", "workbook_book"]
