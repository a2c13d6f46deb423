"""The engine functions behind the Excel functions (``perseat_addin.functions``), in plain Python values.

Tables are written here as 2-D ranges (header row first), the way Excel hands
them over; each rule is checked against the invoice the engine produces for the
same scenario, so the functions cannot drift from the invoices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from perseat_addin.engine.advice import recommend_plan, recommend_price
from perseat_addin.engine.invoicing import Run
from perseat_addin.engine.measures import average_users, billable_users, usage_per_user
from perseat_addin.engine.pricing import SeatCharge, min_fee_topup, month_of, per_user_price, prorate, seat_charge
from perseat_addin.errors import ArgumentError, InputProblems
from perseat_addin.excel import functions as fx
from perseat_addin.model import DayCount, Period, Tiering
from perseat_addin.money import Rounding

D = dt.date
TIERS = [["UpTo", "Rate"], [5, 7], [10, 6.5], [None, 6]]
ROSTER_HEAD = ["Client", "UserID", "Type", "Start", "End", "Status"]


def problems(exc: pytest.ExceptionInfo[InputProblems]) -> list[str]:
    return [f"{p.location()}: {p.message}" for p in exc.value.problems]


# --------------------------------------------------------------------------
# Tables from ranges


def test_plans_are_validated_like_a_workbook() -> None:
    plans = fx.load_plans([["plan ", "RATE", "Min Users"], ["Standard", 95, 3], ["Lite", "40", None]])
    assert list(plans.plans) == ["standard", "lite"]
    assert plans.find(" STANDARD ").min_users == 3
    assert plans.find("lite").rate_micros == 40_000_000
    with pytest.raises(ArgumentError, match='plan "Gold" not in Plans'):
        plans.find("Gold")
    with pytest.raises(InputProblems) as exc:
        fx.load_plans([["Plan", "Rate"], ["Standard", "ninety"], ["Standard", 90]])
    assert problems(exc) == ["Plans, row 2, column Rate (B): 'ninety' is not a number",
                             "Plans, row 3, column Plan (A): plan 'Standard' is listed twice (first in row 2)"]


def test_a_plans_range_alone_is_checked_alone() -> None:
    """No stand-in tables: only the given ranges are read, and their problems keep their place."""
    with pytest.raises(InputProblems) as exc:
        fx.load_plans([["Plan", "Rate"], ["Std", "ten"]])
    assert problems(exc) == ["Plans, row 2, column Rate (B): 'ten' is not a number"]
    assert list(fx.load_plans([["Plan", "Rate"], ["Std", 10]]).plans) == ["std"]


def test_tiered_plans_without_tiers() -> None:
    plans = [["Plan", "Rate", "Tiering", "MinFee"], ["Flat", 10, None, None], ["Vol", 60, "volume", 500]]
    found = fx.load_plans(plans)
    assert found.find("Flat").rate_micros == 10_000_000
    assert found.find("Vol", priced=False).min_fee_micros == 500_000_000  # minimums need no tiers
    with pytest.raises(ArgumentError, match='plan "Vol" is volume: give the Tiers table too'):
        found.find("vol")
    tiers = [["Plan", "UpTo", "Rate"], ["Vol", 10, 60], ["Vol", None, 50]]
    assert fx.load_plans(plans, tiers).find("Vol").tiers == ((10, 60_000_000), (None, 50_000_000))


def test_loaded_tables_are_remembered_by_content(monkeypatch: pytest.MonkeyPatch) -> None:
    fx.clear_caches()
    loads = []
    real = fx.loader.load_plans
    monkeypatch.setattr(fx.loader, "load_plans", lambda *a, **k: loads.append(1) or real(*a, **k))
    rows = [["Plan", "Rate"], ["Std", 10.0]]
    assert fx.load_plans(rows) is fx.load_plans([list(r) for r in rows])
    assert fx.load_plans([["Plan", "Rate"], ["Std", 10]]).find("Std") == fx.load_plans(rows).find("Std")
    assert len(loads) == 2  # 10 and 10.0 are different cells: loaded once each
    bad = [["Plan", "Rate"], ["Std", "x"]]
    with pytest.raises(InputProblems) as first:
        fx.load_plans(bad)
    with pytest.raises(InputProblems) as again:
        fx.load_plans(bad)
    assert again.value.problems == first.value.problems and len(loads) == 3


@pytest.mark.parametrize(("rows", "message"), [
    ([["UpTo", "Rate"], [5, 7], [None, 6.5], [None, 6]],
     "Tiers, row 4, column UpTo: the tiers need exactly one last tier with a blank UpTo"),
    ([["UpTo", "Rate"], [0, 7], [None, 6]], "Tiers, row 2, column UpTo: the tiers repeat an UpTo or use one below 1"),
    ([["Up To", "Price"], [5, 7], [None, 6]], "Tiers, row 1, column Rate: required column Rate is missing"),
    ([["UpTo", "Rate"], [5, None], [None, 6]], "Tiers, row 2, column Rate (B): Rate is blank"),
])
def test_tier_problems(rows: list[list[Any]], message: str) -> None:
    with pytest.raises(InputProblems) as exc:
        fx.tier_plan(rows, Tiering.VOLUME)
    assert problems(exc)[0] == message


def test_tier_arguments() -> None:
    with pytest.raises(ArgumentError, match="no Plan column"):
        fx.tier_plan([["Plan", "UpTo", "Rate"], ["A", None, 5]], Tiering.VOLUME)
    with pytest.raises(ArgumentError, match="has no rows"):
        fx.tier_plan([["UpTo", "Rate"], [None, None]], Tiering.VOLUME)
    with pytest.raises(ArgumentError, match="graduated or volume"):
        fx.tier_plan(TIERS, Tiering.FLAT)


# --------------------------------------------------------------------------
# Prices


@pytest.mark.parametrize(("mode", "users", "cents", "unit"), [
    (Tiering.VOLUME, 6, 3900, "6.5"), (Tiering.VOLUME, 25, 15000, "6"), (Tiering.VOLUME, 1, 700, "7"),
    (Tiering.GRADUATED, 6, 4150, "6.92"), (Tiering.GRADUATED, 25, 15750, "6.30"), (Tiering.GRADUATED, 0, 0, None),
])
def test_worked_example_tiers(mode: Tiering, users: int, cents: int, unit: str | None) -> None:
    plan = fx.tier_plan(TIERS, mode)
    assert seat_charge(plan, users).total_cents == cents
    if unit is not None:
        assert per_user_price(plan, users) == Decimal(unit)


def test_worked_example_minimum_fee() -> None:
    plan = fx.load_plans([["Plan", "Rate", "MinFee"], ["Small", 10, 100]]).find("Small")
    base = 5000 + seat_charge(fx.flat_plan(Decimal(10)), 3).total_cents
    assert base == 8000
    assert min_fee_topup(plan, base) == 2000
    assert seat_charge(plan, 3) == SeatCharge(seats=3, seat_cents=3000, device_cents=0, minimum_cents=7000)
    assert min_fee_topup(plan, 10001) == 0


PLANS = [["Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate"],
         ["Premium", 145, None, 5, None, None, 35],
         ["Floor", 55, None, 4, None, "greater", 12],
         ["Steps", 70, "graduated", None, 400, None, 2.5],
         ["Tiny", 0.333, None, None, None, None, 0.125]]
PLAN_TIERS = [["Plan", "UpTo", "Rate"], ["Steps", 5, 70], ["Steps", 15, 62.5], ["Steps", None, 55]]


@pytest.mark.parametrize(("plan", "users", "devices"), [
    ("Premium", 4, 0), ("Premium", 9, 2), ("Floor", 3, 6), ("Floor", 2, 0), ("Floor", 7, 3), ("Steps", 3, 1),
    ("Steps", 17, 4), ("Tiny", 3, 3),
])
def test_seat_charge_equals_the_invoice_of_a_steady_client(bill: Callable[..., Run], plan: str, users: int,
                                                            devices: int) -> None:
    heads, *rows = PLANS
    run = bill(plans=[dict(zip(heads, r, strict=True)) for r in rows if r[0] == plan],
               tiers=[dict(zip(PLAN_TIERS[0], r, strict=True)) for r in PLAN_TIERS[1:] if r[0] == plan],
               roster=[{"UserID": f"u{i}"} for i in range(users)],
               devices=[{"DeviceID": f"d{i}"} for i in range(devices)])
    (inv,) = run.invoices
    got = seat_charge(fx.load_plans(PLANS, PLAN_TIERS).find(plan), users, devices)
    assert got.total_cents == sum(ln.amount_cents for ln in inv.lines if ln.kind in ("seats", "devices", "minimum"))
    assert got.seats == sum(int(ln.quantity) for ln in inv.lines if ln.kind == "seats")


def test_seat_charge_refuses_what_it_cannot_price() -> None:
    with pytest.raises(ArgumentError, match="cannot be negative"):
        seat_charge(fx.flat_plan(Decimal(10)), -1)
    with pytest.raises(ArgumentError, match="too many to price"):
        seat_charge(fx.flat_plan(Decimal(999_999_999)), 10**7)
    with pytest.raises(ArgumentError, match="negative"):
        fx.flat_plan(Decimal(-1))


# --------------------------------------------------------------------------
# Proration


@pytest.mark.parametrize(("start", "end", "within", "day_count", "rounding", "cents"), [
    (D(2026, 7, 10), None, D(2026, 7, 1), DayCount.THIRTY, Rounding.HALF_UP, 733),  # SPEC §4
    (D(2026, 7, 10), None, D(2026, 7, 1), DayCount.ACTUAL, Rounding.HALF_UP, 710),
    (D(2026, 11, 11), None, D(2026, 11, 30), DayCount.ACTUAL, Rounding.HALF_UP, 667),  # 20 of 30 days
    (D(2026, 11, 11), None, D(2026, 11, 30), DayCount.ACTUAL, Rounding.DOWN, 666),
    (None, None, D(2026, 2, 14), DayCount.THIRTY, Rounding.HALF_UP, 1000),
    (D(2020, 1, 1), D(2030, 1, 1), D(2026, 2, 14), DayCount.ACTUAL, Rounding.HALF_UP, 1000),
    (None, D(2026, 11, 20), D(2026, 11, 1), DayCount.ACTUAL, Rounding.HALF_UP, 667),  # through Nov 20
    (D(2026, 12, 1), None, D(2026, 11, 1), DayCount.ACTUAL, Rounding.HALF_UP, 0),
    (None, D(2026, 10, 31), D(2026, 11, 1), DayCount.ACTUAL, Rounding.HALF_UP, 0),
    (D(2026, 2, 15), None, D(2026, 2, 1), DayCount.THIRTY, Rounding.HALF_UP, 467),  # 14 days of 30
    (D(2026, 2, 1), D(2026, 2, 14), D(2026, 2, 1), DayCount.THIRTY, Rounding.HALF_UP, 533),  # the rest of 30
])
def test_prorate(start: D | None, end: D | None, within: D, day_count: DayCount, rounding: Rounding,
                 cents: int) -> None:
    assert prorate(Decimal(10), start, end, within, day_count, rounding) == cents


def test_prorate_credits_and_bad_spans() -> None:
    assert prorate(Decimal(-10), D(2026, 11, 11), None, D(2026, 11, 1)) == -667
    assert prorate(Decimal(-10), D(2026, 11, 11), None, D(2026, 11, 1), rounding=Rounding.DOWN) == -667
    with pytest.raises(ArgumentError, match="end is before start"):
        prorate(Decimal(10), D(2026, 11, 11), D(2026, 11, 10), D(2026, 11, 1))
    with pytest.raises(ArgumentError, match="outside the years"):
        prorate(Decimal(10), None, None, D(9999, 12, 1))


@pytest.mark.parametrize("day_count", ["actual", "thirty"])
def test_prorate_equals_the_invoice_line_of_a_joiner_and_a_leaver(bill: Callable[..., Run], day_count: str) -> None:
    days = (2, 10, 15, 28, 31)
    run = bill(settings={"BillingPeriod": "2026-07", "DayCount": day_count},
               plans=[{"Plan": "Std", "Rate": 95}],
               clients=[{"Client": f"Join {d}", "Plan": "Std"} for d in days]
               + [{"Client": f"Leave {d}", "Plan": "Std"} for d in days],
               roster=[{"Client": f"Join {d}", "UserID": "ann", "Type": "Employee", "Start": f"2026-07-{d:02d}"}
                       for d in days]
               + [{"Client": f"Leave {d}", "UserID": "bob", "Type": "Employee", "End": f"2026-07-{d:02d}"}
                  for d in days])
    billed = {i.client.name: i.total_cents for i in run.invoices}
    for d in days:
        assert prorate(Decimal(95), D(2026, 7, d), None, D(2026, 7, 1), DayCount(day_count)) == billed[f"Join {d}"]
        assert prorate(Decimal(95), None, D(2026, 7, d), D(2026, 7, 1), DayCount(day_count)) == \
            billed.get(f"Leave {d}", 0)


# --------------------------------------------------------------------------
# Seats and usage

ROSTER = [ROSTER_HEAD,
          ["Acme", "ann@acme", "Employee", None, None, None],
          ["Acme", "ANN@acme ", "Employee", D(2025, 1, 1), None, None],  # the same user twice
          ["Acme", "bob@acme", "Employee", D(2026, 11, 15), None, None],
          ["Acme", "cy@acme", "Employee", None, D(2026, 11, 20), None],
          ["Acme", "di@acme", "Intern", D(2026, 11, 27), None, None],  # 4 days < MinActiveDays 5
          ["Acme", "ed@acme", "Service", None, None, None],
          ["Acme", "fay@acme", "Employee", None, None, "Disabled"],
          ["Acme", "kiosk", "Kiosk", None, None, None],
          ["Beta", "gus@beta", "Contractor", None, None, None]]
TYPES = [["Type", "Billable", "MinActiveDays"], ["Employee", "Yes", 0], ["Intern", "Yes", 5], ["Contractor", "Yes", 0],
         ["Service", "No", 0], ["Kiosk", "Device", 0]]


@pytest.mark.parametrize(("client", "day", "users"), [
    ("Acme", D(2026, 11, 1), 2), ("Acme", D(2026, 11, 15), 3), ("acme ", D(2026, 11, 20), 3),
    ("Acme", D(2026, 11, 21), 2), ("Acme", D(2026, 11, 30), 2), ("Acme", D(2026, 12, 1), 3),  # intern in Dec
    ("Beta", D(2026, 11, 30), 1), ("Gamma", D(2026, 11, 30), 0),
])
def test_billable_users(client: str, day: D, users: int) -> None:
    assert billable_users(fx.roster_book(ROSTER, TYPES), client, day) == users


def test_billable_users_with_the_default_types() -> None:
    roster = [["Client", "UserID", "Type", "Plan"], ["Acme", "a", "Employee", "Gold"], ["Acme", "b", "Guest", None]]
    assert billable_users(fx.roster_book(roster), "Acme", D(2026, 11, 1)) == 1


def test_billable_users_counts_like_the_invoice(bill: Callable[..., Run]) -> None:
    heads, *rows = ROSTER
    run = bill(user_types=[dict(zip(TYPES[0], r, strict=True)) for r in TYPES[1:]],
               clients=[{"Client": "Acme", "Plan": "Std"}, {"Client": "Beta", "Plan": "Std"}],
               roster=[{k: v for k, v in zip(heads, r, strict=True) if v is not None} for r in rows])
    book = fx.roster_book(ROSTER, TYPES)
    for inv in run.invoices:
        users = [billable_users(book, inv.client.name, D(2026, 11, d)) for d in range(1, 31)]
        assert sum(int(ln.quantity) for ln in inv.lines if ln.kind in ("seats", "seat-change")) == users[-1]
        assert inv.seats == users[-1]


USAGE = [["Client", "UserID", "Date", "Tickets", "Hours"],
         ["Acme", "", D(2026, 11, 2), 2, 3.5], ["Acme", "", D(2026, 11, 30), 1, 1.25],
         ["Acme", "", D(2026, 12, 1), 5, 9], ["Beta", "", D(2026, 11, 3), 1, 0.5]]


def test_usage_per_user() -> None:
    book = fx.roster_book(ROSTER, TYPES, USAGE)
    nov = Period(2026, 11)
    average = Decimal(2 * 14 + 3 * 6 + 2 * 10) / 30  # Acme: 2 users, 3 from Nov 15, 2 from Nov 21
    assert average_users(book, "Acme", nov) == Decimal(66) / 30
    assert usage_per_user(book, "Acme", nov) == Decimal("4.75") / average
    assert usage_per_user(book, "ACME", nov, "tickets") == 3 / average
    assert usage_per_user(book, "Beta", nov) == Decimal("0.5")
    with pytest.raises(ArgumentError, match='"Gamma" has no billable users in November 2026'):
        usage_per_user(book, "Gamma", nov)
    with pytest.raises(ArgumentError, match="not hours or tickets"):
        usage_per_user(book, "Acme", nov, "minutes")


# --------------------------------------------------------------------------
# Pricing advice


def test_recommend_price() -> None:
    rp = recommend_price
    assert rp(Decimal("1.5"), Decimal(55), Decimal("0.35")) == Decimal("126.93")
    assert rp(Decimal("1.5"), Decimal(55), Decimal("0.35"), step=Decimal(5)) == 130
    assert rp(Decimal(2), Decimal(50), Decimal("0.5"), Decimal(10), Decimal(5)) == 220  # on a step: stays
    assert rp(Decimal(1), Decimal(30), Decimal(0), step=Decimal("0.25")) == 30
    assert rp(Decimal("0.1"), Decimal(3), Decimal(0)) == Decimal("0.30")  # floats: 0.30000000000000004 → up to 0.31
    for bad in (dict(margin=Decimal(1)), dict(margin=Decimal("-0.1")), dict(hours=Decimal(-1)),
                dict(step=Decimal(-5))):
        args = {"hours": Decimal(1), "cost_per_hour": Decimal(50), "margin": Decimal("0.3"), **bad}
        with pytest.raises(ArgumentError):
            rp(**args)


def test_recommend_plan() -> None:
    plans = fx.load_plans([["Plan", "Rate", "IncludedHours"], ["Basic", 50, 1], ["Pro", 80, 3],
                           ["Pro Plus", 80, 3], ["Max", 120, None]]).plans.values()
    assert [recommend_plan(plans, Decimal(h)).name for h in ("0", "1", "1.01", "3", "40")] == \
        ["Basic", "Basic", "Pro", "Pro", "Max"]
    with pytest.raises(ArgumentError, match=r"no plan includes 2\.5 hours per user"):
        recommend_plan([p for p in plans if p.name == "Basic"], Decimal("2.50"))


# --------------------------------------------------------------------------
# Invoices


def test_invoice_for(bill: Callable[..., Run]) -> None:
    tables: dict[str, Any] = {
        "Settings": [["Setting", "Value"], ["BillingPeriod", "2026-11"], ["NextInvoiceNumber", 7]],
        "Plans": [["Plan", "Rate"], ["Std", 10]],
        "Clients": [["Client", "Plan", "Status"], ["Acme", "Std", None], ["Beta", "Std", "Inactive"],
                    ["Gamma", "Std", None]],
        "Roster": [["Client", "UserID", "Type", "Start"], ["Acme", "a", "Employee", D(2026, 11, 16)],
                   ["Beta", "b", "Employee", None]],
    }
    book = fx.workbook_book(tables)
    assert fx.workbook_book({k: [list(r) for r in v] for k, v in tables.items()}) is book
    inv = fx.invoice_for(book, " acme")
    assert (inv.number, inv.total_cents) == ("INV-7", 500)
    assert fx.run_for(book) is fx.run_for(book)
    with pytest.raises(ArgumentError, match='no invoice for "Beta" in November 2026: inactive'):
        fx.invoice_for(book, "Beta")
    with pytest.raises(ArgumentError, match='no invoice for "Gamma" in November 2026: no billable users'):
        fx.invoice_for(book, "Gamma")
    with pytest.raises(ArgumentError, match='client "Zeta" not in Clients'):
        fx.invoice_for(book, "Zeta")


def test_month_of() -> None:
    assert month_of(D(2026, 11, 30)) == Period(2026, 11)
    for bad in (D(1899, 12, 31), D(9999, 1, 1)):
        with pytest.raises(ArgumentError):
            month_of(bad)
