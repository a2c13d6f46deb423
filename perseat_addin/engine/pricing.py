"""The price function of SPEC §4 and the proration weights, vectorised and exact.

Prices are integer micro-units. ``price_matrix`` prices any array of seat
counts for any plans at once; ``price`` is the same rule for one plan and one
count (used by the Excel functions), so there is a single implementation.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from perseat_addin.errors import ArgumentError
from perseat_addin.model import Basis, DayCount, Period, Plan, Tiering, day_number
from perseat_addin.money import MICROS_PER_CENT, Rounding, micros_to_decimal, round_div, to_micros

IntArray = npt.NDArray[np.int64]
_BIG = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class PlanTable:
    """Plans as padded tier arrays: row p is plan p, column t its t-th tier."""

    names: tuple[str, ...]
    upper: IntArray  # (P, T) inclusive upper seat bound of each tier (_BIG when unbounded)
    lower: IntArray  # (P, T) seats below the tier
    rate: IntArray  # (P, T) micros per seat in the tier
    before: IntArray  # (P, T) graduated charge of all seats below the tier
    flat: IntArray  # (P, T) FlatFee of the tier (volume: the tier reached)
    flat_upto: IntArray  # (P, T) FlatFees of every tier up to and including this one (graduated)
    volume: npt.NDArray[np.bool_]  # (P,) volume tiering
    min_users: IntArray
    min_fee: IntArray  # (P,) MinFee, micros
    device_rate: IntArray
    greater: npt.NDArray[np.bool_]

    @classmethod
    def build(cls, plans: Sequence[Plan]) -> PlanTable:
        """Pad every plan's tiers to the longest tier list."""
        t_max = max((len(p.tier_table()) for p in plans), default=1)
        n = len(plans)
        upper = np.full((n, t_max), _BIG, dtype=np.int64)
        rate = np.zeros((n, t_max), dtype=np.int64)
        flat = np.zeros((n, t_max), dtype=np.int64)
        for i, p in enumerate(plans):
            tiers = p.tier_table()
            for j, (up, r) in enumerate(tiers):
                upper[i, j] = _BIG if up is None else up
                rate[i, j] = r
            if tiers is p.tiers:
                flat[i, :len(p.tier_flat)] = p.tier_flat
            # padding tiers repeat the top tier and are never reached
            rate[i, len(tiers):] = tiers[-1][1]
        lower = np.zeros_like(upper)
        lower[:, 1:] = upper[:, :-1]
        lower = np.minimum(lower, _BIG)
        width = np.where(upper >= _BIG, 0, upper - lower)
        before = np.zeros_like(upper)
        before[:, 1:] = np.cumsum(width[:, :-1] * rate[:, :-1], axis=1)
        return cls(
            names=tuple(p.name for p in plans),
            upper=upper, lower=lower, rate=rate, before=before, flat=flat, flat_upto=np.cumsum(flat, axis=1),
            volume=np.array([p.tiering is Tiering.VOLUME for p in plans], dtype=bool),
            min_users=np.array([p.min_users for p in plans], dtype=np.int64),
            min_fee=np.array([p.min_fee_micros for p in plans], dtype=np.int64),
            device_rate=np.array([p.device_rate_micros for p in plans], dtype=np.int64),
            greater=np.array([p.basis is Basis.GREATER for p in plans], dtype=bool),
        )

    def tier_index(self, plan: IntArray, seats: IntArray) -> IntArray:
        """Index of the tier holding ``seats`` (tier 0 for zero seats)."""
        plan = np.asarray(plan, dtype=np.int64)
        seats = np.asarray(seats, dtype=np.int64)
        up = self.upper[plan]  # (..., T)
        if seats.ndim > plan.ndim:
            up = up.reshape(up.shape[:-1] + (1,) * (seats.ndim - plan.ndim) + up.shape[-1:])
        idx = (seats[..., None] > up).sum(axis=-1)
        return np.asarray(np.minimum(idx, self.upper.shape[1] - 1), dtype=np.int64)

    def seat_price(self, plan: IntArray, seats: IntArray) -> IntArray:
        """Tiered price of ``seats`` billed seats (after MinUsers and Basis), micros.

        ``plan`` has the shape of ``seats`` without its trailing axes, e.g. (G,)
        for a (G, days) seat matrix.
        """
        plan = np.asarray(plan, dtype=np.int64)
        seats = np.asarray(seats, dtype=np.int64)
        extra = seats.ndim - plan.ndim
        if seats.size > 4096:  # many counts (a month of days): price each plan's 0…max seats once, then look up
            top, n_plans = int(seats.max()), len(self.names)
            if n_plans and int(seats.min()) >= 0 and (top + 1) * n_plans <= seats.size:
                counts = np.broadcast_to(np.arange(top + 1, dtype=np.int64), (n_plans, top + 1))
                grid = self._price(np.arange(n_plans, dtype=np.int64), counts)
                return np.asarray(grid[plan.reshape(plan.shape + (1,) * extra), seats], dtype=np.int64)
        return self._price(plan, seats)

    def _price(self, plan: IntArray, seats: IntArray) -> IntArray:
        """:meth:`seat_price` computed for every count (no look-up table)."""
        t = self.tier_index(plan, seats)
        extra = seats.ndim - plan.ndim
        p = plan.reshape(plan.shape + (1,) * extra)
        p = np.broadcast_to(p, seats.shape)
        r = self.rate[p, t]
        vol = self.volume[p]
        graduated = self.before[p, t] + (seats - self.lower[p, t]) * r + self.flat_upto[p, t]
        charge = np.where(vol, seats * r + self.flat[p, t], graduated)
        return np.asarray(np.where(seats > 0, charge, 0), dtype=np.int64)  # no seats, no tier fee


def price(plan: Plan, users: int, devices: int = 0) -> tuple[int, int, int]:
    """Monthly price of one plan for ``users`` billable users and ``devices`` shared devices.

    Returns (billed seats, seat charge micros, device charge micros).
    """
    seats = max(int(users), plan.min_users)
    device_charge = int(devices) * plan.device_rate_micros
    if plan.basis is Basis.GREATER:
        seats = max(seats, int(devices))
        device_charge = 0
    return seats, one_seat_price(plan, seats), device_charge


def one_seat_price(plan: Plan, seats: int) -> int:
    """:meth:`PlanTable.seat_price` for one plan and one seat count, in plain integers (the Excel functions
    price one cell at a time; numpy's set-up would cost more than the sum)."""
    if seats <= 0:
        return 0
    tiers = plan.tier_table()
    flats = plan.tier_flat if tiers is plan.tiers else ()
    last = len(tiers) - 1
    t = min(sum(1 for up, _ in tiers if up is not None and seats > up), last)
    rate = tiers[t][1]
    flat = flats[t] if t < len(flats) else 0
    if plan.tiering is Tiering.VOLUME:
        return seats * rate + flat
    before, lower = 0, 0
    for up, r in tiers[:t]:
        if up is not None:
            before += (up - lower) * r
            lower = up
    return before + (seats - lower) * rate + sum(flats[: t + 1])


@functools.lru_cache(maxsize=64)
def day_weights(days: int, day_count: DayCount) -> tuple[IntArray, IntArray, int]:
    """Daily proration as integers: (remaining r_d per day, weight w_d per day, denominator D).

    A change taking effect on day d (1-based index d-1) is charged for r_d/D of
    the month; the charge of a daily price series X is ``Σ X_d·w_d / D``, which
    equals ``X_1 + Σ (X_d − X_{d−1})·r_d / D`` (SPEC §4). The arrays are read-only.
    """
    d = np.arange(1, days + 1, dtype=np.int64)
    remaining = days - d + 1
    if day_count is DayCount.THIRTY:
        denom = 30
        remaining = np.minimum(remaining, 30)
    else:
        denom = days
    c = remaining.copy()
    c[0] = denom  # the first day's price is charged for the whole month
    c_next = np.append(c[1:], 0)
    weights = c - c_next
    remaining.setflags(write=False)  # remembered for the next call: shared, so never written to
    weights.setflags(write=False)
    return remaining, weights, denom


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
