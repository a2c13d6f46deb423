"""The engine behind the Excel functions (SPEC §5): plain values in, plain values out.

Tables arrive as 2-D ranges with their header row and go through the same
loader as a workbook file (:func:`~.load.load_source` over
:class:`~.reader.MemoryTables`), so header matching and validation exist once.
Prices come from :func:`~.pricing.price`, proration weights from
:func:`~.pricing.day_weights`, seat counts from the invoice run's own daily
series, money from :mod:`~.money`. Nothing here knows about Excel or xlwings.

A function that needs fewer tables than a workbook has (SEATCHARGE has only
Plans) gets the missing required tables filled in with a minimal stand-in
("scaffold"); problems found in a scaffold table carry no sheet location.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from perseat_addin.cells import col_letter
from perseat_addin.engine.advice import _num
from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.errors import ArgumentError, InputProblems, Problem
from perseat_addin.model import Book, Invoice, Period, Plan, Tiering
from perseat_addin.money import to_micros
from perseat_addin.tables import MemoryTables, RawTable, header_key
from perseat_addin.workbook.load import load_source
from perseat_addin.workbook.schema import convert

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


def load_ranges(tables: Mapping[str, Rows | None], scaffold: Collection[str] = ()) -> Book:
    """Validate ranges into a Book like a workbook file; raises :class:`InputProblems`.

    ``scaffold`` names tables the caller made up to satisfy the loader: their
    problems are shown without a location, and only when nothing else is wrong.
    """
    try:
        return load_source(RangeSource(tables), name="<ranges>")
    except InputProblems as exc:
        own = [p for p in exc.problems if p.sheet not in scaffold]
        if own:
            raise InputProblems(own) from None
        raise InputProblems(Problem("", None, None, p.message, p.fix, p.severity)
                            for p in exc.problems) from None


def _columns(rows: Rows | None, table: str, *columns: str) -> dict[str, list[str]]:
    """Some columns' cells as the loader reads them, as trimmed text (a column that is absent: []).

    Only those columns are converted (found by the loader's own header
    matching), so a look at a 100,000-row Roster stays cheap.
    """
    out: dict[str, list[str]] = {c: [] for c in columns}
    if not rows:
        return out
    header = ["" if h is None else str(h).strip() for h in rows[0]]
    probe = convert(RawTable(table, table, tuple(header), [], first_row=2, first_col=0), table, [])
    index = {col_letter(i): i for i in range(len(header))}
    wanted = [index[probe.letters[c]] for c in columns if c in probe.letters]
    if not wanted:
        return out
    width = max(wanted) + 1
    slim = [[header[j] for j in wanted],
            *([r[j] for j in wanted] if len(r) >= width else [r[j] if j < len(r) else None for j in wanted]
              for r in rows[1:])]
    raw = MemoryTables({table: slim}).table(table)
    if raw is not None:
        t = convert(raw, table, [])
        for c in columns:
            if c in t.frame:
                out[c] = [str(v).strip() for v in t.frame[c]]
    return out


def _distinct(values: Iterable[str]) -> list[str]:
    """Non-blank texts once each (any case), first spelling kept."""
    seen: dict[str, str] = {}
    for text in values:
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())


_SCAFFOLD_CLIENT = "Scaffold client"


def _scaffold(period: Period, plan: str, clients: Iterable[str] = (),
              plans: Iterable[str] = ()) -> dict[str, Rows]:
    """Minimal Settings, Plans, Clients and Roster tables for the loader."""
    names = list(clients) or [_SCAFFOLD_CLIENT]
    return {
        "Settings": [["Setting", "Value"], ["BillingPeriod", str(period)], ["NextInvoiceNumber", 1]],
        "Plans": [["Plan", "Rate"], *([p, 0] for p in plans)],
        "Clients": [["Client", "Plan"], *([c, plan] for c in names)],
        "Roster": [["Client", "UserID", "Type"], [names[0], "scaffold", "Employee"]],
    }


_SCAFFOLD_PERIOD = Period(2000, 1)


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
        cols = _columns(plans, "Plans", "Plan", "Tiering")
        names = _distinct(cols["Plan"])
        tables: dict[str, Rows | None] = {**_scaffold(_SCAFFOLD_PERIOD, names[0] if names else "?"),
                                          "Plans": plans, "Tiers": tiers}
        scaffold = ["Settings", "Clients", "Roster"]
        tiered: list[str] = []
        if tiers is None and cols["Tiering"]:
            tiered = _distinct(n for n, k in zip(cols["Plan"], cols["Tiering"], strict=True)
                               if k.lower() in ("volume", "graduated"))
            if tiered:
                tables["Tiers"] = [["Plan", "UpTo", "Rate"], *([n, None, 0] for n in tiered)]
                scaffold.append("Tiers")
        book = load_ranges(tables, scaffold=scaffold)
        return PlanList(book.plans, frozenset(n.lower() for n in tiered))

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
        tables: dict[str, Rows | None] = {
            **_scaffold(_SCAFFOLD_PERIOD, _TIERS_PLAN),
            "Plans": [["Plan", "Rate", "Tiering"], [_TIERS_PLAN, 0, mode.value]],
            "Tiers": table,
        }
        try:
            book = load_ranges(tables, scaffold=("Settings", "Plans", "Clients", "Roster"))
        except InputProblems as exc:
            tidy = (Problem(p.sheet, p.row, p.column, p.message.replace(f" of plan {_TIERS_PLAN!r}", ""),
                            p.fix, p.severity) for p in exc.problems)
            raise InputProblems(tidy) from None
        return book.plan(_TIERS_PLAN)

    return _plans_cache.get(("tiers", mode, *_key(table)), make)


def roster_book(roster: Rows, usertypes: Rows | None = None, usage: Rows | None = None) -> Book:
    """Roster (with UserTypes and Usage) validated as in a workbook, every client and plan it names in scope."""

    def make() -> Book:
        cols = _columns(roster, "Roster", "Client", "Plan")
        clients = _distinct([*cols["Client"], *_columns(usage, "Usage", "Client")["Client"]])
        plans = _distinct(cols["Plan"]) or ["Scaffold plan"]
        tables: dict[str, Rows | None] = {**_scaffold(_SCAFFOLD_PERIOD, plans[0], clients, plans),
                                          "Roster": roster, "UserTypes": usertypes, "Usage": usage}
        return load_ranges(tables, scaffold=("Settings", "Plans", "Clients"))

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
