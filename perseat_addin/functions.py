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

import datetime as dt
import hashlib
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np

from .errors import InputProblems, PerseatError, Problem
from .invoicing import Invoice, Run, daily_users, invoice_run
from .load import load_source
from .model import Book, DayCount, Period, Plan, Tiering, day_number
from .money import MICROS_PER_CENT, Rounding, micros_to_decimal, round_div, to_micros
from .pricing import PlanTable, day_weights, price
from .reader import MemoryTables, RawTable, col_letter
from .schema import convert, header_key

Rows = Sequence[Sequence[Any]]
"""A range as Excel hands it over: a header row, then data rows."""

T = TypeVar("T")


class ArgumentError(PerseatError):
    """A function argument cannot be used; the message names it and says why."""


def _num(d: Decimal) -> str:
    """A number for a message, as typed: 1.0 → '1', 0.350 → '0.35'."""
    return f"{d.normalize():f}"


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
    probe = convert(RawTable(table, table, header, [], first_row=2, first_col=0), table, [])
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


@dataclass(frozen=True)
class SeatCharge:
    """A month's charge for seats of one plan: what the invoice's seat, device and minimum lines add up to."""

    seats: int  # billed seats after MinUsers (and Basis=greater)
    seat_cents: int
    device_cents: int
    minimum_cents: int  # MinFee top-up

    @property
    def total_cents(self) -> int:
        return self.seat_cents + self.device_cents + self.minimum_cents


def _check_size(plan: Plan, count: int) -> None:
    """Refuse counts whose price would overflow the engine's 64-bit micro-unit arrays."""
    top = max([rate for _, rate in plan.tier_table()] + [plan.device_rate_micros, 1])
    if max(count, plan.min_users) * top >= 2**62:
        raise ArgumentError(f"{max(count, plan.min_users):,} users at this rate are too many to price")


def to_cents(amount: Decimal, rounding: Rounding = Rounding.HALF_UP) -> int:
    """An amount in cents, rounded once."""
    return round_div(to_micros(amount), MICROS_PER_CENT, rounding)


def min_fee_topup(plan: Plan, charge_cents: int, rounding: Rounding = Rounding.HALF_UP) -> int:
    """What MinFee adds to a month's recurring charge (0 when the charge reaches it)."""
    return max(round_div(plan.min_fee_micros, MICROS_PER_CENT, rounding) - charge_cents, 0)


def seat_charge(plan: Plan, users: int, devices: int = 0, rounding: Rounding = Rounding.HALF_UP) -> SeatCharge:
    """Monthly charge of ``users`` billable users and ``devices`` shared devices on ``plan``, lines rounded."""
    if users < 0 or devices < 0:
        raise ArgumentError("users and devices cannot be negative")
    _check_size(plan, max(users, devices))
    seats, seat_micros, device_micros = price(plan, users, devices)
    seat_cents = round_div(seat_micros, MICROS_PER_CENT, rounding)
    device_cents = round_div(device_micros, MICROS_PER_CENT, rounding)
    return SeatCharge(seats, seat_cents, device_cents, min_fee_topup(plan, seat_cents + device_cents, rounding))


def tier_rate(plan: Plan, seats: int) -> Decimal:
    """The rate of the tier that holds seat number ``seats`` (the first tier for 0)."""
    table = PlanTable.build([plan])
    t = int(table.tier_index(np.zeros(1, np.int64), np.array([seats], np.int64))[0])
    return micros_to_decimal(int(table.rate[0, t]))


def per_user_price(plan: Plan, users: int, rounding: Rounding = Rounding.HALF_UP) -> Decimal:
    """Price per user at ``users`` seats: the reached tier's rate (volume), or the charge ÷ users in cents."""
    if users < 1:
        raise ArgumentError("users must be 1 or more for a price per user")
    if plan.tiering is Tiering.VOLUME:
        return tier_rate(plan, users)
    _check_size(plan, users)
    _, micros, _ = price(plan, users)
    return Decimal(round_div(micros, users * MICROS_PER_CENT, rounding)).scaleb(-2)


def month_of(day: dt.date) -> Period:
    """The calendar month holding ``day`` (up to 9998, so the month after it is a real date too)."""
    if not 1900 <= day.year <= 9998:
        raise ArgumentError(f"{day.isoformat()} is outside the years 1900–9998")
    return Period(day.year, day.month)


def prorate(amount: Decimal, start: dt.date | None, end: dt.date | None, within: dt.date,
            day_count: DayCount = DayCount.ACTUAL, rounding: Rounding = Rounding.HALF_UP) -> int:
    """Cents of ``amount`` for the days from ``start`` to ``end`` (inclusive) in the month of ``within``.

    The share is the invoice's daily proration (SPEC §4): a start on day d is
    charged for r_d/D of the month, an end for what remains before it; blank
    ``start``/``end`` = active since before / after the month. Rounded once.
    """
    if start is not None and end is not None and end < start:
        raise ArgumentError("end is before start (end is the last active day)")
    period = month_of(within)
    first, last = day_number(period.first), day_number(period.last)
    lo = first if start is None else max(day_number(start), first)
    hi = last if end is None else min(day_number(end), last)
    if hi < lo:
        return 0
    _, weights, denom = day_weights(period.days, day_count)
    share = int(weights[lo - first: hi - first + 1].sum())
    return round_div(to_micros(amount) * share, denom * MICROS_PER_CENT, rounding)


# --------------------------------------------------------------------------
# Seats and usage


def _client_days(book: Book, client: str, period: Period) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """Billable users of ``client`` on each day of ``period``, counted as the invoice run counts them."""
    return daily_users(book, period).get(client.strip().lower())


def billable_users(book: Book, client: str, day: dt.date) -> int:
    """Billable users of ``client`` on ``day`` (MinActiveDays counted within that month; 0 for an unknown client)."""
    users = _client_days(book, client, month_of(day))
    return 0 if users is None else int(users[day.day - 1])


def average_users(book: Book, client: str, period: Period) -> Fraction:
    """Billable users of ``client`` averaged over the days of ``period``."""
    users = _client_days(book, client, period)
    return Fraction(0) if users is None else Fraction(int(users.sum()), period.days)


def usage_per_user(book: Book, client: str, period: Period, measure: str = "hours") -> Decimal:
    """Hours or tickets logged for ``client`` in ``period`` ÷ its average daily billable users."""
    if measure not in ("hours", "tickets"):
        raise ArgumentError(f'measure "{measure}" is not hours or tickets')
    avg = average_users(book, client, period)
    if avg == 0:
        raise ArgumentError(f'client "{client.strip()}" has no billable users in {period.label()}')
    u = book.usage
    first = day_number(period.first)
    mine = (u["client"].str.strip().str.lower() == client.strip().lower()) \
        & (u["date"] >= first) & (u["date"] < first + period.days)
    if measure == "hours":
        total = Fraction(int(u.loc[mine, "hours_centi"].sum()), 100)
    else:
        total = Fraction(Decimal(repr(float(u.loc[mine, "tickets"].sum()))))
    ratio = total / avg
    return Decimal(ratio.numerator) / Decimal(ratio.denominator)


# --------------------------------------------------------------------------
# Pricing advice


def recommend_price(hours: Decimal, cost_per_hour: Decimal, margin: Decimal, other: Decimal = Decimal(0),
                    step: Decimal | None = None) -> Decimal:
    """Per-user price earning ``margin``: ``(hours × cost + other) ÷ (1 − margin)`` rounded up to ``step``.

    Exact: the quotient is a fraction and only the final step is rounded (up);
    a blank ``step`` rounds up to the cent.
    """
    for name, v in (("hours", hours), ("cost per hour", cost_per_hour), ("other cost", other)):
        if v < 0:
            raise ArgumentError(f"{name} cannot be negative ({_num(v)})")
    if not 0 <= margin < 1:
        raise ArgumentError(f"target margin {_num(margin)} must be from 0 up to (not including) 1, e.g. 0.35 for 35%")
    step = Decimal("0.01") if step is None or step == 0 else step
    if step < 0:
        raise ArgumentError(f"step {_num(step)} cannot be negative")
    value = (Fraction(hours) * Fraction(cost_per_hour) + Fraction(other)) / (1 - Fraction(margin))
    return math.ceil(value / Fraction(step)) * step


def recommend_plan(plans: Iterable[Plan], hours: Decimal, users: int | None = None,
                   charge: Callable[[Plan, int], int] | None = None) -> Plan:
    """The cheapest plan whose IncludedHours per user covers ``hours`` (blank = unlimited); first on ties.

    Cheapest by Rate, or, given ``users``, by the monthly charge for that many users
    (MinUsers, tiers and MinFee applied, as :func:`seat_charge` prices them).
    """
    if hours < 0:
        raise ArgumentError(f"hours per user cannot be negative ({_num(hours)})")
    if users is not None and users < 0:
        raise ArgumentError(f"users cannot be negative ({users})")
    fits = [p for p in plans if p.included_hours_centi is None or hours * 100 <= p.included_hours_centi]
    if not fits:
        raise ArgumentError(f"no plan includes {_num(hours)} hours per user")
    if users is None:
        return min(fits, key=lambda p: p.rate_micros)
    price = charge or (lambda p, n: seat_charge(p, n).total_cents)  # ``charge``: the same, remembered
    return min(fits, key=lambda p: price(p, users))


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


__all__ = ["ArgumentError", "PlanList", "RangeSource", "Rows", "SeatCharge", "average_users", "billable_users",
           "clear_caches", "flat_plan", "invoice_for", "load_plans", "load_ranges",
           "min_fee_topup", "month_of", "per_user_price", "prorate", "recommend_plan", "recommend_price", "roster_book",
           "run_for", "seat_charge", "tier_plan", "tier_rate", "to_cents", "usage_per_user", "workbook_book"]
