"""Properties of the pricing engine over random plans, rosters and periods (hypothesis).

Books are built in memory (``mem_book``, shaped like ``load``'s) so each example
costs milliseconds. A small independent reference model of SPEC §4 — seat counts
per day, the price function, daily proration rounded per line — is the oracle
for the engine's seat and device lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.engine.pricing import price
from perseat_addin.model import (
    DEFAULT_USER_TYPES,
    FOREVER,
    RECURRING,
    SINCE_EVER,
    AddOn,
    Basis,
    BillingTiming,
    Book,
    Client,
    DayCount,
    Invoice,
    Period,
    Plan,
    ProrationMode,
    Settings,
    Tiering,
    UserType,
    day_number,
)
from perseat_addin.money import MICRO, MICROS_PER_CENT, Rounding


def examples(n: int) -> Callable[..., Any]:
    """Hypothesis settings: ``n`` examples (× $PERSEAT_EXAMPLES_SCALE for a deep run), no deadline."""
    scale = int(os.environ.get("PERSEAT_EXAMPLES_SCALE", "1"))
    return settings(max_examples=n * scale, deadline=None, suppress_health_check=[HealthCheck.too_slow])


USER_TYPES = (*DEFAULT_USER_TYPES, UserType("Kiosk", "Device", 0, "A kiosk login: billed as a shared device."))
TYPES = {t.name.lower(): t for t in USER_TYPES}
PPM = 1_000_000
SEATS = ("seats", "seat-change")
DEVICES = ("devices", "device-change")


# --------------------------------------------------------------------------
# Reference model (SPEC §4), deliberately naive


def ref_price(plan: Plan, seats: int) -> int:
    """Tiered price of ``seats`` billed seats, micros."""
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        return seats * plan.rate_micros
    if plan.tiering is Tiering.VOLUME:
        for up, rate in plan.tiers:
            if up is None or seats <= up:
                return seats * rate
    total, below = 0, 0
    for up, rate in plan.tiers:
        top = seats if up is None else min(seats, up)
        total += max(top - below, 0) * rate
        if up is None or seats <= up:
            break
        below = up
    return total


def ref_round(x: Fraction, mode: Rounding) -> int:
    """Round to an integer: half-up (away from zero at .5) or down (toward −∞: a charge is never rounded up,
    a credit never rounded toward zero)."""
    if mode is Rounding.DOWN:
        return math.floor(x)
    sign = -1 if x < 0 else 1
    return sign * math.floor(abs(x) + Fraction(1, 2))


def _days_of(start: int | None, end: int | None, first: int, n: int) -> set[int]:
    s = max(SINCE_EVER if start is None else start, first)
    e = min(FOREVER if end is None else end, first + n - 1)
    return set(range(s - first, e - first + 1))


def ref_users(rows: Sequence[Mapping[str, Any]], client: str, period: Period) -> list[set[int]]:
    """Per billable person of ``client``: the period days (0-based) on which they count."""
    first, n = day_number(period.first), period.days
    people: dict[str, set[int]] = {}
    need: dict[str, int] = {}
    for r in rows:
        t = TYPES.get(r.get("type", "Employee").lower())
        if r["client"] != client or t is None or t.billable != "Yes" or r.get("status") == "disabled":
            continue
        key = r["user"].strip().lower()
        people.setdefault(key, set()).update(_days_of(r.get("start"), r.get("end"), first, n))
        need[key] = t.min_active_days
    return [days for key, days in people.items() if days and len(days) >= need[key]]


def ref_devices(devices: Sequence[Mapping[str, Any]], client: str, period: Period,
                rows: Sequence[Mapping[str, Any]] = ()) -> list[set[int]]:
    """Per shared device of ``client`` (Devices rows, and Roster users of a Device type): its active days."""
    first, n = day_number(period.first), period.days
    found: dict[tuple[str, str], set[int]] = {}
    for d in devices:
        if d["client"] == client:
            found.setdefault(("device", d["device"].strip().lower()), set()).update(
                _days_of(d.get("start"), d.get("end"), first, n))
    for r in rows:
        t = TYPES.get(r.get("type", "Employee").lower())
        if r["client"] == client and t is not None and t.billable == "Device" and r.get("status") != "disabled":
            found.setdefault(("user", r["user"].strip().lower()), set()).update(
                _days_of(r.get("start"), r.get("end"), first, n))
    return [days for days in found.values() if days]


def ref_charges(plan: Plan, st_: Settings, mode: ProrationMode, people: list[set[int]],
                devs: list[set[int]], period: Period) -> tuple[int, int]:
    """(seat cents, device cents) of one client on one plan for ``period``, arrears."""
    n = period.days
    users = [sum(d in p for p in people) for d in range(n)]
    devices = [sum(d in p for p in devs) for d in range(n)]
    greater = plan.basis is Basis.GREATER

    def seats_of(u: int, dv: int) -> int:
        s = max(u, plan.min_users)
        return max(s, dv) if greater else s

    billed_devices = [0 if greater else dv for dv in devices]
    seat_price = [ref_price(plan, seats_of(u, dv)) for u, dv in zip(users, devices, strict=True)]
    dev_price = [dv * plan.device_rate_micros for dv in billed_devices]
    rnd = st_.rounding
    if mode is ProrationMode.DAILY:
        denom = 30 if st_.day_count is DayCount.THIRTY else n
        rem = [min(n - d, denom) for d in range(n)]

        def prorate(series: list[int]) -> int:
            total = ref_round(Fraction(series[0], MICROS_PER_CENT), rnd)
            for d in range(1, n):
                if series[d] != series[d - 1]:
                    total += ref_round(Fraction((series[d] - series[d - 1]) * rem[d], denom * MICROS_PER_CENT), rnd)
            return total

        return prorate(seat_price), prorate(dev_price)
    if mode is ProrationMode.SNAPSHOT:
        day = n - 1 if st_.snapshot_day is None else min(st_.snapshot_day, n) - 1
        sp, dp = seat_price[day], dev_price[day]
    elif mode is ProrationMode.PEAK:
        seats = [seats_of(u, dv) for u, dv in zip(users, devices, strict=True)]
        sp = ref_price(plan, max(seats))
        dp = max(billed_devices) * plan.device_rate_micros
    else:
        any_users, any_devices = len(people), len(devs)
        sp = ref_price(plan, seats_of(any_users, any_devices))
        dp = (0 if greater else any_devices) * plan.device_rate_micros
    return ref_round(Fraction(sp, MICROS_PER_CENT), rnd), ref_round(Fraction(dp, MICROS_PER_CENT), rnd)


def _prorate_lines(series: list[int], st_: Settings, scale: int) -> int:
    """Daily proration of a daily price series, one rounding per line: price(day 1) + each change × rₖ/D."""
    n = len(series)
    denom = 30 if st_.day_count is DayCount.THIRTY else n
    total = ref_round(Fraction(series[0], scale), st_.rounding)
    for d in range(1, n):
        if series[d] != series[d - 1]:
            total += ref_round(Fraction((series[d] - series[d - 1]) * min(n - d, denom), denom * scale),
                               st_.rounding)
    return total


def _prorate_once(series: list[int], st_: Settings, scale: int) -> int:
    """The same proration rounded once (add-ons: one line each)."""
    n = len(series)
    denom = 30 if st_.day_count is DayCount.THIRTY else n
    num = series[0] * denom + sum((series[d] - series[d - 1]) * min(n - d, denom) for d in range(1, n))
    return ref_round(Fraction(num, denom * scale), st_.rounding)


def ref_invoice(t: Mapping[str, Any], client: Client) -> tuple[int, int, int]:
    """(subtotal, discount, tax) cents of ``client``'s arrears invoice, straight from SPEC §4.

    A person (one UserID) on several rows counts once a day; on a day covered by several rows the
    row that started last decides the plan (a plan change mid-month bills each plan its own days);
    ``full`` counts the person once, under the plan of their latest row.
    """
    st_: Settings = t["settings"]
    period = st_.period
    n, first = period.days, day_number(period.first)
    rnd = st_.rounding
    plans_by = {p.name.lower(): p for p in t["plans"]}
    own_key = client.plan.lower()
    own = plans_by[own_key]
    mode = client.proration_mode or st_.proration_mode
    snap = n - 1 if st_.snapshot_day is None else min(st_.snapshot_day, n) - 1

    editable: dict[str, list[tuple[int, int, set[int], str, int]]] = {}
    for i, r in enumerate(t["roster"]):
        ty = TYPES.get(r.get("type", "Employee").lower())
        if r["client"] != client.name or ty is None or ty.billable != "Yes" or r.get("status") == "disabled":
            continue
        days = _days_of(r.get("start"), r.get("end"), first, n)
        if days:
            start = SINCE_EVER if r.get("start") is None else r["start"]
            editable.setdefault(r["user"].strip().lower(), []).append(
                (start, i, days, (r.get("plan") or client.plan).lower(), ty.min_active_days))
    users: dict[str, list[int]] = {own_key: [0] * n}
    any_day: dict[str, int] = {own_key: 0}
    for person_rows in editable.values():
        person_rows.sort(key=lambda x: (x[0], x[1]))
        plan_on: dict[int, str] = {}
        for _, _, days, g, _ in person_rows:
            plan_on.update(dict.fromkeys(days, g))
        latest = person_rows[-1]
        if len(plan_on) < latest[4]:
            continue
        for d, g in plan_on.items():
            users.setdefault(g, [0] * n)[d] += 1
        any_day[latest[3]] = any_day.get(latest[3], 0) + 1
    groups = {g: any_day.get(g, 0) for g in users}
    client_users = [sum(u[d] for u in users.values()) for d in range(n)]
    client_any = sum(any_day.values())
    devs = ref_devices(t["devices"], client.name, period, t["roster"])
    dev_days = [sum(d in x for x in devs) for d in range(n)]

    lines: list[tuple[int, bool]] = []  # (cents, taxable)
    for g, g_any in groups.items():
        plan, is_own = plans_by[g], g == own_key
        greater = is_own and plan.basis is Basis.GREATER
        pad = [max(own.min_users - cu, 0) if is_own else 0 for cu in client_users]
        seats = [u + p for u, p in zip(users[g], pad, strict=True)]
        on_devices = dev_days if is_own else [0] * n
        if greater:
            seats = [max(x, dv) for x, dv in zip(seats, on_devices, strict=True)]
        billed_dev = [0] * n if greater else on_devices
        seat_price = [ref_price(plan, x) for x in seats]
        dev_price = [x * plan.device_rate_micros for x in billed_dev]
        if mode is ProrationMode.DAILY:
            cents = _prorate_lines(seat_price, st_, MICROS_PER_CENT) + _prorate_lines(dev_price, st_, MICROS_PER_CENT)
        else:
            if mode is ProrationMode.SNAPSHOT:
                sp, dp = seat_price[snap], dev_price[snap]
            elif mode is ProrationMode.PEAK:
                sp, dp = ref_price(plan, max(seats)), max(dev_price)
            else:
                full = g_any + (max(own.min_users - client_any, 0) if is_own else 0)
                full_dev = len(devs) if is_own else 0
                if greater:
                    full, full_dev = max(full, full_dev), 0
                sp, dp = ref_price(plan, full), full_dev * plan.device_rate_micros
            cents = ref_round(Fraction(sp, MICROS_PER_CENT), rnd) + ref_round(Fraction(dp, MICROS_PER_CENT), rnd)
        lines.append((cents, plan.taxable))
    scale = MICRO * MICRO // 100
    for a in t["addons"]:
        lo, hi = max(a.start, first) - first, min(a.end, first + n - 1) - first
        if a.client != client.name or hi < lo:
            continue
        unit = a.quantity_micros * a.unit_price_micros
        values = [unit * (client_users[d] if a.per_user else 1) if lo <= d <= hi else 0 for d in range(n)]
        if mode is ProrationMode.DAILY:
            cents = _prorate_once(values, st_, scale)
        else:
            v = {ProrationMode.SNAPSHOT: values[snap], ProrationMode.PEAK: max(values),
                 ProrationMode.FULL: unit * (client_any if a.per_user else 1)}[mode]
            cents = ref_round(Fraction(v, scale), rnd)
        lines.append((cents, a.taxable))
    recurring = sum(c for c, _ in lines)
    hours = sum(int(Fraction(str(u.get("hours", 0))) * 100) for u in t["usage"]
                if u["client"] == client.name and first <= u["date"] < first + n and u.get("billable", True))
    if own.included_hours_centi is not None and own.overage_rate_micros and hours:
        excess = hours * n - own.included_hours_centi * sum(client_users)
        if excess > 0:
            lines.append((ref_round(Fraction(excess * own.overage_rate_micros, n * 100 * MICROS_PER_CENT), rnd),
                          own.taxable))
    min_fee = own.min_fee_micros // MICROS_PER_CENT
    if recurring < min_fee:
        lines.append((min_fee - recurring, own.taxable))
    subtotal = sum(c for c, _ in lines)
    taxable = sum(c for c, tx in lines if tx)
    pct = client.discount_ppm
    discount = ref_round(Fraction(-pct * subtotal, PPM), rnd) if pct else 0  # a negative line, rounded as such
    rate = st_.default_tax_ppm if client.tax_ppm is None else client.tax_ppm
    tax = ref_round(Fraction(rate * taxable * (PPM - pct), PPM * PPM), rnd) if rate else 0
    return subtotal, discount, tax


# --------------------------------------------------------------------------
# Strategies


def money(lo_cents: int = 1, hi_cents: int = 50_000) -> st.SearchStrategy[int]:
    """A price in micros, whole cents."""
    return st.integers(lo_cents, hi_cents).map(lambda c: c * MICROS_PER_CENT)


@st.composite
def plans(draw: st.DrawFn, name: str = "P", tierings: Sequence[Tiering] = tuple(Tiering),
          min_rate_cents: int = 1, min_fee: bool = False) -> Plan:
    tiering = draw(st.sampled_from(tierings))
    tiers: tuple[tuple[int | None, int], ...] = ()
    if tiering is not Tiering.FLAT:
        uppers = sorted(draw(st.sets(st.integers(1, 20), max_size=3)))
        rates = draw(st.lists(money(min_rate_cents), min_size=len(uppers) + 1, max_size=len(uppers) + 1))
        tiers = tuple(zip([*uppers, None], rates, strict=True))
    return Plan(
        name, draw(money(min_rate_cents)), tiering,
        min_users=draw(st.integers(0, 6)),
        min_fee_micros=draw(money(0, 100_000)) if min_fee else 0,
        basis=draw(st.sampled_from(tuple(Basis))),
        device_rate_micros=draw(st.one_of(st.just(0), money(1, 5_000))),
        tiers=tiers,
    )


periods = st.builds(Period, st.integers(2024, 2027), st.integers(1, 12))
NAMES = ("ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal")


@st.composite
def roster(draw: st.DrawFn, period: Period, clients: Sequence[str] = ("A",), max_rows: int = 12,
           steady: bool = False, plan_choices: Sequence[str] = ("",),
           plan_per_person: bool = True) -> list[dict[str, Any]]:
    """Roster rows; the same (client, UserID) keeps one Type; dates around the period.

    ``steady``: everyone is active the whole period (or not at all), nobody changes.
    ``plan_choices``: values of the Roster Plan column ('' = the client's plan), kept per
    person unless ``plan_per_person`` is false.
    """
    first, n = day_number(period.first), period.days
    types: dict[tuple[str, str], str] = {}
    plan_of: dict[tuple[str, str], str] = {}
    rows = []
    for _ in range(draw(st.integers(0, max_rows))):
        client = draw(st.sampled_from(clients))
        name = draw(st.sampled_from(NAMES))
        uid = draw(st.sampled_from([name, name.upper(), f" {name} ", f"{name.title()}"]))
        typ = types.setdefault((client, name), draw(st.sampled_from(
            ["Employee", "Employee", "Contractor", "Intern", "Guest", "Service", "Kiosk"])))
        if steady:
            start = draw(st.one_of(st.none(), st.integers(-400, 0).map(lambda o: first + o)))
            end = draw(st.one_of(st.none(), st.integers(n - 1, n + 400).map(lambda o: first + o)))
            status = draw(st.sampled_from(["active", "", "disabled"]))
        else:
            start = draw(st.one_of(st.none(), st.integers(-40, n + 3).map(lambda o: first + o)))
            base = first - 5 if start is None else start
            end = draw(st.one_of(st.none(), st.integers(0, n + 10).map(lambda k, b=base: b + k)))
            status = draw(st.sampled_from(["active", "active", "active", "", "disabled"]))
        plan = draw(st.sampled_from(plan_choices))
        if plan_per_person:
            plan = plan_of.setdefault((client, name), plan)
        rows.append({"client": client, "user": uid, "type": typ, "start": start, "end": end, "status": status,
                     "plan": plan})
    return rows


@st.composite
def devices(draw: st.DrawFn, period: Period, clients: Sequence[str] = ("A",), steady: bool = False,
            max_rows: int = 5) -> list[dict[str, Any]]:
    first, n = day_number(period.first), period.days
    out = []
    for _ in range(draw(st.integers(0, max_rows))):
        if steady:
            start, end = None, None
        else:
            start = draw(st.one_of(st.none(), st.integers(-10, n).map(lambda o: first + o)))
            base = first - 5 if start is None else start
            end = draw(st.one_of(st.none(), st.integers(0, n + 5).map(lambda k, b=base: b + k)))
        out.append({"client": draw(st.sampled_from(clients)), "device": draw(st.sampled_from(["K1", "K2", "k3", "K4"])),
                    "start": start, "end": end})
    return out


def settings_for(period: Period, draw: st.DrawFn, **fixed: Any) -> Settings:
    values: dict[str, Any] = {
        "day_count": draw(st.sampled_from(tuple(DayCount))),
        "rounding": draw(st.sampled_from(tuple(Rounding))),
        "snapshot_day": draw(st.one_of(st.none(), st.integers(1, 31))),
    }
    values.update(fixed)
    return Settings(period=period, next_invoice_number=1, **values)


def seat_cents(run: Run, client: str, kinds: Sequence[str] = SEATS) -> int:
    """Sum of the client's lines of ``kinds`` (0 when the client got no invoice)."""
    return sum(ln.amount_cents for inv in run.invoices if inv.client.name == client
               for ln in inv.lines if ln.kind in kinds)


# --------------------------------------------------------------------------
# The in-memory builder matches the workbook path


def test_memory_book_prices_like_a_loaded_workbook(book, mem_book) -> None:
    nov = day_number(dt.date(2026, 11, 1))
    loaded = book(plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 2, "DeviceRate": 3}],
                  roster=[{"UserID": "a"}, {"UserID": "b", "Start": "2026-11-15"},
                          {"UserID": " A ", "End": "2026-11-03"},
                          {"UserID": "i", "Type": "Intern", "Start": "2026-11-20"}],
                  devices=[{"DeviceID": "K1", "Start": "2026-11-10"}])
    memory = mem_book(plans=[Plan("Std", 10 * MICRO, min_users=2, device_rate_micros=3 * MICRO)],
                      clients=[Client("Acme", "Std", 2)],
                      roster=[{"client": "Acme", "user": "a"}, {"client": "Acme", "user": "b", "start": nov + 14},
                              {"client": "Acme", "user": " A ", "end": nov + 2},
                              {"client": "Acme", "user": "i", "type": "Intern", "start": nov + 19}],
                      devices=[{"client": "Acme", "device": "K1", "start": nov + 9}])
    assert list(memory.roster.columns) == list(loaded.roster.columns)
    assert list(memory.devices.columns) == list(loaded.devices.columns)
    a, b = invoice_run(loaded).invoices, invoice_run(memory).invoices
    assert [ln.amount_cents for ln in a[0].lines] == [ln.amount_cents for ln in b[0].lines]
    assert [ln.description for ln in a[0].lines] == [ln.description for ln in b[0].lines]


# --------------------------------------------------------------------------
# Price function


@examples(200)
@given(plan=plans(), users=st.integers(0, 40), devs=st.integers(0, 10))
def test_price_function_matches_reference(plan: Plan, users: int, devs: int) -> None:
    billed, charge, device_charge = price(plan, users, devs)
    s = max(users, plan.min_users)
    if plan.basis is Basis.GREATER:
        s = max(s, devs)
    assert billed == s
    assert charge == ref_price(plan, s)
    assert device_charge == (0 if plan.basis is Basis.GREATER else devs * plan.device_rate_micros)


@examples(200)
@given(plan=plans(tierings=(Tiering.FLAT, Tiering.GRADUATED)), users=st.integers(0, 40), devs=st.integers(0, 10))
def test_adding_a_user_never_lowers_the_price_function(plan: Plan, users: int, devs: int) -> None:
    assert price(plan, users + 1, devs)[1] >= price(plan, users, devs)[1]


# --------------------------------------------------------------------------
# Invoices


Tables = dict[str, Any]
"""Keyword arguments of ``mem_book`` (strategies cannot use fixtures; tests build the Book)."""


def tables(st_: Settings, plan_list: Sequence[Plan], rows: list[dict[str, Any]], devs: list[dict[str, Any]],
           clients: Sequence[Client] | None = None, addons: Sequence[AddOn] = (),
           usage: Sequence[Mapping[str, Any]] = ()) -> Tables:
    return {"settings": st_, "plans": list(plan_list), "clients": list(clients or [Client("A", plan_list[0].name, 2)]),
            "roster": rows, "devices": devs, "addons": list(addons), "usage": list(usage), "user_types": USER_TYPES}


@st.composite
def steady_scenarios(draw: st.DrawFn) -> tuple[Tables, Plan, int, int]:
    period = draw(periods)
    plan = draw(plans())
    rows = draw(roster(period, steady=True))
    devs = draw(devices(period, steady=True))
    st_ = settings_for(period, draw)
    n_users = len(ref_users(rows, "A", period))
    n_devices = len(ref_devices(devs, "A", period, rows))
    return tables(st_, [plan], rows, devs), plan, n_users, n_devices


@examples(50)
@given(steady_scenarios())
def test_unchanged_roster_pays_exactly_the_price_function(mem_book: Callable[..., Book],
                                                          scenario: tuple[Tables, Plan, int, int]) -> None:
    """Daily proration, any day count, any plan: no change in the period → exactly price(s)."""
    t, plan, n_users, n_devices = scenario
    run = invoice_run(mem_book(**t))
    _, charge, device_charge = price(plan, n_users, n_devices)
    assert seat_cents(run, "A") * MICROS_PER_CENT == charge
    assert seat_cents(run, "A", DEVICES) * MICROS_PER_CENT == device_charge
    assert all(ln.kind != "seat-change" for inv in run.invoices for ln in inv.lines)


@st.composite
def arrears_scenarios(draw: st.DrawFn) -> tuple[Tables, Plan]:
    period = draw(periods)
    plan = draw(plans())
    rows = draw(roster(period))
    devs = draw(devices(period))
    mode = draw(st.sampled_from(tuple(ProrationMode)))
    st_ = settings_for(period, draw, proration_mode=mode)
    return tables(st_, [plan], rows, devs), plan


@examples(80)
@given(arrears_scenarios())
def test_seat_and_device_lines_match_the_reference_model(mem_book: Callable[..., Book],
                                                         scenario: tuple[Tables, Plan]) -> None:
    """Every proration mode, day count and rounding: the engine's seat and device cents equal SPEC §4's."""
    t, plan = scenario
    st_, rows, devs = t["settings"], t["roster"], t["devices"]
    run = invoice_run(mem_book(**t))
    people = ref_users(rows, "A", st_.period)
    dev_days = ref_devices(devs, "A", st_.period, rows)
    want_seats, want_devices = ref_charges(plan, st_, st_.proration_mode, people, dev_days, st_.period)
    assert (seat_cents(run, "A"), seat_cents(run, "A", DEVICES)) == (want_seats, want_devices)


@examples(40)
@given(data=st.data(), plan=plans(tierings=(Tiering.FLAT, Tiering.GRADUATED), min_rate_cents=100),
       period=periods, mode=st.sampled_from(tuple(ProrationMode)))
def test_adding_a_user_never_lowers_the_monthly_charge(mem_book: Callable[..., Book], data: st.DataObject,
                                                       plan: Plan, period: Period, mode: ProrationMode) -> None:
    """Flat and graduated plans (rates ≥ 1.00, so per-line rounding cannot reverse a change)."""
    rows = data.draw(roster(period))
    devs = data.draw(devices(period))
    st_ = settings_for(period, data.draw, proration_mode=mode)
    first, n = day_number(period.first), period.days
    start = data.draw(st.one_of(st.none(), st.integers(-5, n - 1).map(lambda o: first + o)))
    end = data.draw(st.one_of(st.none(), st.integers(max(start or first, first), first + n + 5)))
    newcomer = {"client": "A", "user": "newcomer", "type": "Employee", "start": start, "end": end}
    before = invoice_run(mem_book(**tables(st_, [plan], rows, devs)))
    after = invoice_run(mem_book(**tables(st_, [plan], [*rows, newcomer], devs)))
    assert seat_cents(after, "A") >= seat_cents(before, "A")


@examples(30)
@given(data=st.data(), plan=plans(tierings=(Tiering.FLAT, Tiering.GRADUATED)), period=periods)
def test_snapshot_le_peak_le_full(mem_book: Callable[..., Book], data: st.DataObject, plan: Plan,
                                  period: Period) -> None:
    """For monotone plans: any single day ≤ the peak day ≤ everyone active in the month."""
    rows = data.draw(roster(period))
    devs = data.draw(devices(period))
    base = settings_for(period, data.draw)
    charge = {}
    for mode in (ProrationMode.SNAPSHOT, ProrationMode.PEAK, ProrationMode.FULL):
        s = dataclasses.replace(base, proration_mode=mode)
        charge[mode] = seat_cents(invoice_run(mem_book(**tables(s, [plan], rows, devs))), "A")
    assert charge[ProrationMode.SNAPSHOT] <= charge[ProrationMode.PEAK] <= charge[ProrationMode.FULL]


@st.composite
def full_scenarios(draw: st.DrawFn, timing: BillingTiming | None = None, plan_per_person: bool = False) -> Tables:
    """Two clients on random plans (A's users may be on B's plan), add-ons, usage, discount, tax."""
    period = draw(periods)
    p1 = draw(plans("P1", min_fee=True))
    p2 = draw(plans("P2", min_fee=True))
    p1 = dataclasses.replace(p1, included_hours_centi=draw(st.one_of(st.none(), st.integers(0, 1000))),
                             overage_rate_micros=draw(money(0, 20_000)), taxable=draw(st.booleans()))
    rows = draw(roster(period, clients=("A", "B"), plan_choices=("", "", "", "p2"), plan_per_person=plan_per_person))
    devs = draw(devices(period, clients=("A", "B")))
    first, n = day_number(period.first), period.days
    addons = [AddOn(draw(st.sampled_from(["A", "B"])), f"Extra {i}", draw(st.integers(1, 3)) * MICRO,
                    draw(money(1, 20_000)), draw(st.booleans()),
                    draw(st.one_of(st.just(SINCE_EVER), st.integers(first - 40, first + n))),
                    draw(st.one_of(st.just(FOREVER), st.integers(first, first + 60))), draw(st.booleans()), i + 2)
              for i in range(draw(st.integers(0, 3)))]
    addons = [a for a in addons if a.end >= a.start]
    usage = [{"client": draw(st.sampled_from(["A", "B"])), "date": first + draw(st.integers(-40, n - 1)),
              "hours": draw(st.integers(0, 4000)) / 100, "billable": draw(st.sampled_from([True, True, False]))}
             for _ in range(draw(st.integers(0, 6)))]
    clients = [
        Client("A", "P1", 2, discount_ppm=draw(st.sampled_from([0, 50_000, 125_000, 333_333])),
               tax_ppm=draw(st.one_of(st.none(), st.sampled_from([0, 72_500, 200_000]))),
               proration_mode=draw(st.one_of(st.none(), st.sampled_from(tuple(ProrationMode))))),
        Client("B", "P2", 3, discount_ppm=draw(st.sampled_from([0, 100_000]))),
    ]
    st_ = settings_for(period, draw, proration_mode=draw(st.sampled_from(tuple(ProrationMode))),
                       billing_timing=timing or draw(st.sampled_from(tuple(BillingTiming))),
                       default_tax_ppm=draw(st.sampled_from([0, 55_000])))
    return tables(st_, [p1, p2], rows, devs, clients, addons, usage)


@examples(80)
@given(full_scenarios(timing=BillingTiming.ARREARS))
def test_arrears_invoices_match_the_reference_model(mem_book: Callable[..., Book], t: Tables) -> None:
    """Two clients, plan groups, MinUsers, Basis, devices, add-ons, overage, MinFee, discount, tax."""
    run = invoice_run(mem_book(**t))
    invoiced = {inv.client.name: inv for inv in run.invoices}
    for client in t["clients"]:
        want = ref_invoice(t, client)
        inv = invoiced.get(client.name)
        if inv is None:
            assert want == (0, 0, 0), (client.name, run.skipped)
        else:
            lines = [(ln.kind, ln.description, ln.amount_cents) for ln in inv.lines]
            assert (inv.subtotal_cents, inv.discount_cents, inv.tax_cents) == want, lines


@st.composite
def two_month_scenarios(draw: st.DrawFn) -> tuple[Tables, Period]:
    """Changes only inside month P−1 (nothing changes inside P−2 or P); no usage, discount or tax."""
    p = draw(periods)
    p1, p2 = p.prev(), p.prev().prev()
    f2, f1, l1 = day_number(p2.first), day_number(p1.first), day_number(p1.last)
    fp, lp = day_number(p.first), day_number(p.last)

    def span() -> tuple[int | None, int | None]:
        start = draw(st.one_of(st.none(), st.integers(f2 - 30, f2), st.integers(f1, l1), st.just(fp)))
        end = draw(st.one_of(st.none(), st.integers(lp, lp + 30), st.integers(f1, l1), st.just(f1 - 1)))
        return (start, None) if start is not None and end is not None and end < start else (start, end)

    plan1 = draw(plans("P1", min_fee=True))
    plan2 = draw(plans("P2", min_fee=True))
    rows = []
    for r in draw(roster(p1, clients=("A", "B"), plan_choices=("", "", "p2"), plan_per_person=False)):
        start, end = span()
        rows.append({**r, "start": start, "end": end})
    devs = [{**d, "start": s_, "end": e_} for d in draw(devices(p1, clients=("A", "B"))) for s_, e_ in [span()]]
    addons = []
    for i in range(draw(st.integers(0, 3))):
        start, end = span()
        addons.append(AddOn(draw(st.sampled_from(["A", "B"])), f"Extra {i}", draw(st.integers(1, 3)) * MICRO,
                            draw(money(1, 20_000)), draw(st.booleans()), SINCE_EVER if start is None else start,
                            FOREVER if end is None else end, True, i + 2))
    clients = [Client("A", "P1", 2, proration_mode=draw(st.one_of(st.none(), st.sampled_from(tuple(ProrationMode))))),
               Client("B", "P2", 3)]
    st_ = settings_for(p, draw, proration_mode=draw(st.sampled_from(tuple(ProrationMode))))
    return tables(st_, [plan1, plan2], rows, devs, clients, addons), p


@examples(40)
@given(two_month_scenarios())
def test_advance_and_arrears_bill_the_same_over_time(mem_book: Callable[..., Book],
                                                     scenario: tuple[Tables, Period]) -> None:
    """Nothing changes inside P−2 and P: invoices for P−1 and P total the same in advance and in arrears.

    Advance charges P−1's day 1 up front and settles P−1 (ProrationMode, MinFee) on P's invoice;
    over the two months every cent must agree, in every mode, day count and rounding.
    """
    t, p = scenario
    totals: dict[BillingTiming, dict[str, int]] = {}
    for timing in BillingTiming:
        b = mem_book(**{**t, "settings": dataclasses.replace(t["settings"], billing_timing=timing)})
        per_client: dict[str, int] = {}
        for period in (p.prev(), p):
            for inv in invoice_run(b, period).invoices:
                per_client[inv.client.name] = per_client.get(inv.client.name, 0) + inv.total_cents
        totals[timing] = per_client
    arrears, advance = totals[BillingTiming.ARREARS], totals[BillingTiming.ADVANCE]
    for client in ("A", "B"):
        assert advance.get(client, 0) == arrears.get(client, 0), client


def _check_money(inv: Invoice) -> None:
    for ln in inv.lines:
        assert type(ln.amount_cents) is int, (ln, type(ln.amount_cents))
    assert inv.total_cents == sum(ln.amount_cents for ln in inv.lines)
    assert inv.subtotal_cents + inv.discount_cents + inv.tax_cents == inv.total_cents


@examples(50)
@given(full_scenarios())
def test_invoice_total_is_the_exact_sum_of_integer_cent_lines(mem_book: Callable[..., Book], t: Tables) -> None:
    run = invoice_run(mem_book(**t))
    for inv in run.invoices:
        _check_money(inv)
    assert run.total_cents == sum(inv.total_cents for inv in run.invoices)
    assert {c for c, _ in run.skipped}.isdisjoint(inv.client.name for inv in run.invoices)


@examples(50)
@given(full_scenarios())
def test_min_fee_always_holds(mem_book: Callable[..., Book], t: Tables) -> None:
    """Recurring lines (seats, devices, add-ons) + the minimum adjustment ≥ MinFee, for every client."""
    b = mem_book(**t)
    run = invoice_run(b)
    invoiced = {inv.client.name: inv for inv in run.invoices}
    for client in b.clients:
        plan = b.plan(client.plan)
        min_fee = plan.min_fee_micros // MICROS_PER_CENT
        inv = invoiced.get(client.name)
        if inv is None:
            assert min_fee == 0, run.skipped
            continue
        recurring = sum(ln.amount_cents for ln in inv.lines if ln.kind in RECURRING)
        minimum = [ln.amount_cents for ln in inv.lines if ln.kind == "minimum"]
        assert recurring + sum(minimum) >= min_fee
        assert (minimum != []) == (recurring < min_fee)
        assert all(m > 0 for m in minimum)


@examples(50)
@given(t=full_scenarios(), data=st.data())
def test_time_not_billable_to_the_client_never_changes_an_invoice(mem_book: Callable[..., Book], t: Tables,
                                                                   data: st.DataObject) -> None:
    """SPEC §8: a Usage row with Billable = No (any client, day, hours) leaves every invoice line as it was."""
    period = t["settings"].period
    first = day_number(period.first)
    extra = [{"client": data.draw(st.sampled_from(["A", "B", "a "])),
              "date": first + data.draw(st.integers(-40, period.days + 5)),
              "hours": data.draw(st.integers(0, 100_000)) / 100, "tickets": data.draw(st.integers(0, 3)),
              "billable": False} for _ in range(data.draw(st.integers(1, 4)))]
    before = invoice_run(mem_book(**t))
    after = invoice_run(mem_book(**{**t, "usage": [*t["usage"], *extra]}))
    assert [(i.client.name, i.lines) for i in after.invoices] == [(i.client.name, i.lines) for i in before.invoices]
    assert after.skipped == before.skipped


@pytest.mark.parametrize("timing", list(BillingTiming))
def test_properties_helpers_cover_both_timings(timing: BillingTiming, mem_book: Callable[..., Book]) -> None:
    """Smoke test of the in-memory path with advance billing (adjustment lines) and arrears."""
    nov = day_number(dt.date(2026, 11, 1))
    b = mem_book(settings=Settings(Period(2026, 12), 1, billing_timing=timing),
                 plans=[Plan("Std", 10 * MICRO)], clients=[Client("A", "Std", 2)],
                 roster=[{"client": "A", "user": "a"}, {"client": "A", "user": "b", "start": nov + 15}])
    (inv,) = invoice_run(b).invoices
    _check_money(inv)
    assert inv.total_cents == (2000 + 500 if timing is BillingTiming.ADVANCE else 2000)
