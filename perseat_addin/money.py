"""The one door for money: exact amounts, cents and rounding.

Rates and prices are held as integer micro-units (1e-6 of the currency unit),
so tiers and proration stay exact; an amount is rounded to integer cents once,
here, with the workbook's Rounding mode. Decimals appear only at the edges.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache
from typing import Any, NewType

import numpy as np
import numpy.typing as npt

MICRO = 1_000_000
"""Micro-units per currency unit: the precision of rates and prices."""

MICROS_PER_CENT = MICRO // 100

PPM = 1_000_000
"""Parts per million: the unit of a percentage (DiscountPct, TaxRate) held as an integer."""

Cents = NewType("Cents", int)
"""An amount in integer cents: what a line, a total and a ledger row carry."""

Micros = NewType("Micros", int)
"""A rate or price in integer micro-units (1e-6 of the currency unit)."""

Ppm = NewType("Ppm", int)
"""A percentage in parts per million (12.5 % is 125,000)."""

ZERO_MICROS = Micros(0)
ZERO_PPM = Ppm(0)

IntArray = npt.NDArray[np.int64]


class Rounding(str, Enum):
    """How an amount becomes cents: half-up (away from zero at .5) or down (toward −∞, never overcharging)."""

    HALF_UP = "half-up"
    DOWN = "down"


def to_decimal(value: Any) -> Decimal:
    """Exact decimal of a number as typed (floats through their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("a Yes/No value is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return Decimal(repr(value))
    text = str(value).strip().replace(",", "").replace("$", "").replace("€", "").replace("£", "")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return d


def to_micros(value: Any) -> Micros:
    """A rate or price in integer micro-units (half-up beyond 6 decimals)."""
    d = to_decimal(value) * MICRO
    return Micros(int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def round_div(num: int, den: int, mode: Rounding) -> int:
    """``num / den`` rounded to an integer with ``mode`` (exact, any size)."""
    if den <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if num < 0 else 1
    a = abs(num)
    if mode is Rounding.DOWN:
        return num // den  # floor: a credit line is never smaller than exact, a charge never larger
    return sign * ((2 * a + den) // (2 * den))


def round_div_array(num: IntArray, den: IntArray | int, mode: Rounding) -> IntArray:
    """Vectorised :func:`round_div` for int64 arrays (no overflow below 4.6e18)."""
    num = np.asarray(num, dtype=np.int64)
    den_arr = np.asarray(den, dtype=np.int64)
    sign = np.where(num < 0, -1, 1).astype(np.int64)
    a = np.abs(num)
    if mode is Rounding.DOWN:
        return np.asarray(num // den_arr, dtype=np.int64)
    q, r = np.divmod(a, den_arr)
    return np.asarray(sign * (q + (2 * r >= den_arr).astype(np.int64)), dtype=np.int64)


def cents_to_decimal(cents: int) -> Decimal:
    """Integer cents as a two-place Decimal."""
    return Decimal(int(cents)).scaleb(-2)


@lru_cache(maxsize=4096)
def micros_to_decimal(micros: int) -> Decimal:
    """Micro-units as a Decimal without trailing zeros beyond two places."""
    d = Decimal(int(micros)).scaleb(-6)
    q = d.quantize(Decimal("0.01"))
    return q if q == d else d.normalize()


def fmt_money(cents: int) -> str:
    """``1234567`` cents → ``'12,345.67'``."""
    return f"{cents_to_decimal(cents):,.2f}"


@lru_cache(maxsize=4096)
def fmt_rate(micros: int) -> str:
    """A rate for descriptions: two places unless more are needed."""
    d = micros_to_decimal(micros)
    exp = d.as_tuple().exponent
    places = max(2, -exp) if isinstance(exp, int) else 2
    return f"{d:,.{places}f}"


HALF_CENT = Decimal("0.005")


def multiplies_out(quantity: Decimal, unit_price: Decimal, amount_cents: int) -> bool:
    """Whether ``quantity × unit_price`` is within half a cent of the amount (strictly), so it rounds to the
    amount whatever the rounding rule of the reader (a client, QuickBooks, Xero)."""
    return abs(quantity * unit_price - cents_to_decimal(amount_cents)) < HALF_CENT


def factor_for(amount_cents: int, other: Decimal, places: int = 4) -> Decimal | None:
    """The number ``x`` with the fewest decimals (``places`` at least, more only when ``other`` is large) such
    that ``x × other`` multiplies out to the amount (:func:`multiplies_out`); None when ``other`` is 0.

    ``amount / other`` itself when it has no more than ``places`` decimals; otherwise it rounded to ``places``
    decimals or a neighbour of that, adding a decimal while none is close enough."""
    if not other:
        return None
    exact = cents_to_decimal(amount_cents) / other
    for k in range(places, 40):
        step = Decimal(1).scaleb(-k)
        x = exact.quantize(step, ROUND_HALF_UP)
        if x == exact:
            return plain(x)
        for cand in (x, x - step, x + step):
            if multiplies_out(cand, other, amount_cents):
                return plain(cand)
    return None  # pragma: no cover - 40 places always reach half a cent


def factor_for_micros(amount_cents: int, unit_micros: int, places: int = 4) -> Decimal | None:
    """:func:`factor_for` of a unit price in micro-units, worked in integers (the same number, found without
    Decimal division: a large book has thousands of prorated lines to solve)."""
    if not unit_micros:
        return None
    if not amount_cents:
        return factor_for(amount_cents, micros_to_decimal(unit_micros), places)  # keeps the sign of zero
    den, sign = abs(unit_micros), -1 if (amount_cents < 0) != (unit_micros < 0) else 1
    for k in range(places, 40):
        num = abs(amount_cents) * 10 ** (k + 4)  # the quantity × 10^k is num / den (cents → micros: × 10^4)
        q, r = divmod(num, den)
        if not r:
            return plain(Decimal(sign * q).scaleb(-k))
        q += 2 * r >= den  # half up (away from zero)
        for x in (q, q - 1, q + 1):  # x × unit within half a cent of the amount: |x·den − num| < 5·10^(k+3)
            if 2 * abs(x * den - num) < 10 ** (k + 4):
                return plain(Decimal(sign * x).scaleb(-k))
    return None  # pragma: no cover - 40 places always reach half a cent


def plain(d: Decimal) -> Decimal:
    """``d`` without trailing zeros, never in exponent form (``100``, not ``1E+2``)."""
    n = d.normalize()
    exp = n.as_tuple().exponent
    return n.quantize(Decimal(1)) if isinstance(exp, int) and exp > 0 else n
