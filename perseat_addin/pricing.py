"""The price function of SPEC §4 and the proration weights, vectorised and exact.

Prices are integer micro-units. ``price_matrix`` prices any array of seat
counts for any plans at once; ``price`` is the same rule for one plan and one
count (used by the Excel functions), so there is a single implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .model import Basis, DayCount, Plan, Tiering

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
    volume: npt.NDArray[np.bool_]  # (P,) volume tiering
    min_users: IntArray
    device_rate: IntArray
    greater: npt.NDArray[np.bool_]

    @classmethod
    def build(cls, plans: Sequence[Plan]) -> PlanTable:
        """Pad every plan's tiers to the longest tier list."""
        t_max = max((len(p.tier_table()) for p in plans), default=1)
        n = len(plans)
        upper = np.full((n, t_max), _BIG, dtype=np.int64)
        rate = np.zeros((n, t_max), dtype=np.int64)
        for i, p in enumerate(plans):
            tiers = p.tier_table()
            for j, (up, r) in enumerate(tiers):
                upper[i, j] = _BIG if up is None else up
                rate[i, j] = r
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
            upper=upper, lower=lower, rate=rate, before=before,
            volume=np.array([p.tiering is Tiering.VOLUME for p in plans], dtype=bool),
            min_users=np.array([p.min_users for p in plans], dtype=np.int64),
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
        t = self.tier_index(plan, seats)
        extra = seats.ndim - plan.ndim
        p = plan.reshape(plan.shape + (1,) * extra)
        p = np.broadcast_to(p, seats.shape)
        r = self.rate[p, t]
        vol = self.volume[p]
        graduated = self.before[p, t] + (seats - self.lower[p, t]) * r
        return np.asarray(np.where(vol, seats * r, graduated), dtype=np.int64)


def billed_seats(users: IntArray, min_users: int | IntArray) -> IntArray:
    """Seats after MinUsers padding (step 1 of the price function)."""
    return np.maximum(np.asarray(users, dtype=np.int64), min_users)


def price(plan: Plan, users: int, devices: int = 0) -> tuple[int, int, int]:
    """Monthly price of one plan for ``users`` billable users and ``devices`` shared devices.

    Returns (billed seats, seat charge micros, device charge micros).
    """
    table = PlanTable.build([plan])
    seats = max(int(users), plan.min_users)
    device_charge = int(devices) * plan.device_rate_micros
    if plan.basis is Basis.GREATER:
        seats = max(seats, int(devices))
        device_charge = 0
    charge = int(table.seat_price(np.zeros(1, np.int64), np.array([seats]))[0])
    return seats, charge, device_charge


def day_weights(days: int, day_count: DayCount) -> tuple[IntArray, IntArray, int]:
    """Daily proration as integers: (remaining r_d per day, weight w_d per day, denominator D).

    A change taking effect on day d (1-based index d-1) is charged for r_d/D of
    the month; the charge of a daily price series X is ``Σ X_d·w_d / D``, which
    equals ``X_1 + Σ (X_d − X_{d−1})·r_d / D`` (SPEC §4).
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
    return remaining, c - c_next, denom
