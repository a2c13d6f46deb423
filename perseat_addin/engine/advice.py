"""Price and plan advice (SPEC §9): the price that earns the target margin, the cheapest plan that covers the
usage, robust outliers and volume-tier cliffs. Pure arithmetic on exact fractions."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

from perseat_addin.engine.pricing import seat_charge
from perseat_addin.errors import ArgumentError
from perseat_addin.model import Plan, Tiering


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
