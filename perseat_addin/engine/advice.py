"""Price and plan advice (SPEC §9): the price floor that earns the target margin (RECOMMENDPRICE), the cheapest
plan that covers the usage (RECOMMENDPLAN), robust outliers, volume-tier cliffs, and each client's one
recommendation (:func:`recommend`), priced the way the invoice run prices. Pure arithmetic on exact numbers."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

from perseat_addin.engine.pricing import seat_charge
from perseat_addin.errors import ArgumentError
from perseat_addin.model import Plan, Tiering
from perseat_addin.money import MICROS_PER_CENT, PPM, Micros, Rounding, round_div


def _num(d: Decimal) -> str:
    """A number for a message, as typed: 1.0 → '1', 0.350 → '0.35'."""
    return f"{d.normalize():f}"


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
    # exact in integers: each amount as numerator/denominator (what Fraction does, without its cost per call)
    hn, hd = hours.as_integer_ratio()
    cn, cd = cost_per_hour.as_integer_ratio()
    on, od = other.as_integer_ratio()
    mn, md = margin.as_integer_ratio()
    sn, sd = step.as_integer_ratio()
    num = (hn * cn * od + on * hd * cd) * md * sd
    den = hd * cd * od * (md - mn) * sn
    return -(-num // den) * step


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


def median(values: Sequence[Fraction]) -> Fraction:
    """``statistics.median`` of exact numbers, sorted by their floats first (a thousand fractions sort ten
    times faster that way) and the order then checked exactly (sorted exactly when it is not right)."""
    try:
        data = sorted(values, key=float)
    except OverflowError:
        data = sorted(values)
    if any(b < a for a, b in pairwise(data)):
        data = sorted(values)
    n = len(data)
    if not n:
        raise statistics.StatisticsError("no median for empty data")
    i = n // 2
    return data[i] if n % 2 else (data[i - 1] + data[i]) / 2


def robust_z(values: Sequence[Fraction]) -> tuple[Fraction | None, list[float | None]]:
    """The median and each value's robust z-score 0.6745 × (x − median) ÷ MAD (None when MAD is 0)."""
    if not values:
        return None, []
    med = Fraction(median(values))
    mad = Fraction(median([abs(v - med) for v in values]))
    if mad == 0:
        return med, [None for _ in values]
    return med, [float(Fraction(6745, 10000) * (v - med) / mad) for v in values]


def volume_cliffs(plan: Plan, limit: int = 100_000) -> list[tuple[int, int, int, int]]:
    """(n, charge(n) cents, charge(n+1) cents, first seat count from which a client pays more than n + 1)
    at each tier boundary of ``plan`` where n + 1 seats cost less than n."""
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        return []
    out = []
    for upto, _ in plan.tiers:
        if upto is None or upto <= 0 or upto >= limit:
            continue
        n = int(upto)
        here, nxt = seat_charge(plan, n).total_cents, seat_charge(plan, n + 1).total_cents
        if nxt < here:
            lo = n
            while lo > 1 and seat_charge(plan, lo - 1).total_cents > nxt:
                lo -= 1
            out.append((n, here, nxt, lo))
    return out


# --------------------------------------------------------------------------
# One recommendation per client (SPEC §9)

PRICE = "price"
PLAN = "plan"
MINFEE = "minfee"
NONE = "none"


@dataclass(frozen=True)
class Recommendation:
    """A client's one recommendation: new terms (a plan as the engine prices it) or none, with its reason.

    ``revenue_cents`` is a full month at ``terms`` for ``users`` billable users, ``devices`` shared devices and
    ``billable_centi`` billable support hours (:func:`month_revenue`); None when nothing is recommended."""

    kind: str  # price | plan | minfee | none
    value: str  # "155.00" (per user), "Premium", "1,900.00" (a month); "" for none
    reason: str
    needed_cents: int  # cost to serve ÷ (1 − TargetMargin), rounded up to the cent
    terms: Plan | None = None
    revenue_cents: int | None = None
    users: int = 0
    devices: int = 0
    billable_centi: int = 0
    working: str = ""  # how the month at ``terms`` adds up, or why nothing is recommended

    @property
    def label(self) -> str:
        """The recommendation in a few words: "Price 140.00 / user", "Plan Premium", "Minimum fee 340.00"."""
        return {PRICE: f"Price {self.value} / user", PLAN: f"Plan {self.value}",
                MINFEE: f"Minimum fee {self.value}"}.get(self.kind, "None (keep)")


def overage_cents(plan: Plan, billable_centi: int, users: int, rounding: Rounding = Rounding.HALF_UP) -> int:
    """A month's overage: billable hours above IncludedHours × users, at OverageRate (as the invoice bills it
    for a month of constant users)."""
    if plan.included_hours_centi is None or not plan.overage_rate_micros:
        return 0
    excess = billable_centi - plan.included_hours_centi * users
    return round_div(excess * plan.overage_rate_micros, 100 * MICROS_PER_CENT, rounding) if excess > 0 else 0


def month_revenue(plan: Plan, users: int, devices: int, billable_centi: int, discount_ppm: int,
                  rounding: Rounding = Rounding.HALF_UP, charge: Callable[[Plan, int, int], int] | None = None) -> int:
    """A full month's revenue in cents at ``plan``: :func:`seat_charge` (MinUsers, Basis, tiers, DeviceRate,
    MinFee) plus overage, less the client's discount — what the invoice run bills for a month of constant
    users. Add-ons are left out: they are the same under any terms."""
    base = charge(plan, users, devices) if charge else seat_charge(plan, users, devices, rounding).total_cents
    sub = base + overage_cents(plan, billable_centi, users, rounding)
    return sub + round_div(-discount_ppm * sub, PPM, rounding) if discount_ppm and sub else sub


def fits(plan: Plan, current: Plan) -> bool:
    """Whether ``plan`` may be offered to a client on ``current``: the same Basis. A users client is never
    offered a users-or-kiosks (greater) plan, nor a kiosk client a users plan: each prices what the other
    leaves out (shared devices count as seats under greater, and are billed at DeviceRate under users)."""
    return plan.basis is current.basis


def _up(amount_micros: int, step_micros: int) -> Micros:
    """``amount`` rounded up to a multiple of ``step`` (micros)."""
    return Micros(-(-max(amount_micros, 0) // step_micros) * step_micros)


def _money(cents: int) -> str:
    return f"{Decimal(cents).scaleb(-2):,.2f}"


def _sum(plan: Plan, users: int, devices: int, billable_centi: int, discount_ppm: int, rounding: Rounding,
         charge: int) -> str:
    """How a month at ``plan`` adds up, in words: "12 users × 140.00 + devices 35.00 + overage 202.50"."""
    got = seat_charge(plan, users, devices, rounding)
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        parts = [f"{got.seats} {'seats' if got.seats != users else 'users'} × "
                 f"{Decimal(plan.rate_micros).scaleb(-6):,.2f}"]
    else:
        parts = [f"{got.seats} seats {_money(got.seat_cents)} ({plan.tiering.value} tiers)"]
    if got.device_cents:
        parts.append(f"devices {_money(got.device_cents)}")
    if got.minimum_cents:
        parts.append(f"MinFee top-up {_money(got.minimum_cents)}")
    over = overage_cents(plan, billable_centi, users, rounding)
    if over:
        parts.append(f"overage {_money(over)}")
    text = " + ".join(parts)
    if discount_ppm:
        text += f" less {Decimal(discount_ppm) / 10000:.4g}% discount"
    return f"{text} = {_money(charge)}"


def recommend(current: Plan, plans: Iterable[Plan], *, users: int, devices: int, billable_centi: int,
              discount_ppm: int, needed_cents: int, today_cents: int, small: bool, step_micros: int | None,
              rounding: Rounding = Rounding.HALF_UP,
              charge: Callable[[Plan, int, int], int] | None = None) -> Recommendation:
    """The one recommendation for a client on ``current`` whose month must earn ``needed_cents``.

    The rule: none when today's revenue (or a full month at today's terms) covers the need; else the cheapest
    plan of the same Basis whose month covers it (a plan from the price list before a custom price); else, for
    a small client, a minimum monthly fee on its plan; else a per-user rate on its plan. Prices and fees are
    rounded up to ``step_micros`` and checked with :func:`month_revenue`, so the month at the recommended
    terms covers the need.
    """
    step = step_micros or MICROS_PER_CENT

    def revenue(plan: Plan, cached: bool = False) -> int:
        return month_revenue(plan, users, devices, billable_centi, discount_ppm, rounding,
                             charge if cached else None)

    def made(kind: str, value: str, why: str, terms: Plan | None = None, got: int | None = None) -> Recommendation:
        working = "" if kind == NONE and today_cents >= needed_cents else why
        if terms is not None and got is not None:
            working = _sum(terms, users, devices, billable_centi, discount_ppm, rounding, got)
            why += f": {working}"
        return Recommendation(kind, value, why, needed_cents, terms, got, users, devices, billable_centi, working)

    need = _money(needed_cents)
    now = revenue(current, True)
    if today_cents >= needed_cents:
        return made(NONE, "", f"this month's revenue {_money(today_cents)} covers the {need} needed")
    if now >= needed_cents:
        return made(NONE, "", f"a full month on {current.name} earns {_money(now)}, covering the {need} needed "
                    "(this month was prorated)")
    if discount_ppm >= PPM:
        return made(NONE, "", f"no terms cover the {need} needed: the client's discount is 100%")
    options = [(revenue(p, True), i, p) for i, p in enumerate(plans)
               if fits(p, current) and p.name.lower() != current.name.lower()]
    covering = [o for o in options if o[0] >= needed_cents]
    if covering:
        got, _, best = min(covering)
        return made(PLAN, best.name, f"move from {current.name} to {best.name} (today {_money(today_cents)}, "
                    f"{need} needed)", best, got)
    # the subtotal before discount that covers the need; then the smallest step that reaches it
    sub = -(-needed_cents * PPM // (PPM - discount_ppm))
    over = overage_cents(current, billable_centi, users, rounding)
    flat = replace(current, tiering=Tiering.FLAT, tiers=(), tier_flat=(), rate_micros=Micros(0))
    base = seat_charge(flat, users, devices, rounding)
    if small or not base.seats:
        terms = replace(current, min_fee_micros=_up((sub - over) * MICROS_PER_CENT, step))
        while (got := revenue(terms)) < needed_cents:
            terms = replace(terms, min_fee_micros=Micros(terms.min_fee_micros + step))
        value = _money(terms.min_fee_micros // MICROS_PER_CENT)
        return made(MINFEE, value, f"a minimum monthly fee of {value} on {current.name} (today "
                    f"{_money(today_cents)}, {need} needed)", terms, got)
    terms = replace(flat, rate_micros=_up((sub - over - base.device_cents) * MICROS_PER_CENT // base.seats, step))
    while (got := revenue(terms)) < needed_cents:
        terms = replace(terms, rate_micros=Micros(terms.rate_micros + step))
    value = f"{Decimal(terms.rate_micros).scaleb(-6):,.2f}"
    return made(PRICE, value, f"charge {value} per user on {current.name} (today {_money(today_cents)}, "
                f"{need} needed)", terms, got)
