"""Per-client measures of a loaded workbook: billable users on a day, average users over a month, usage per user."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from perseat_addin.engine.daily import daily_users
from perseat_addin.engine.pricing import month_of
from perseat_addin.errors import ArgumentError
from perseat_addin.model import Book, Period, day_number


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


def usage_totals(book: Book, period: Period, measure: str = "hours") -> dict[str, Fraction]:
    """Hours or tickets logged in ``period`` per client (lower-case, trimmed name), every row counted."""
    if measure not in ("hours", "tickets"):
        raise ArgumentError(f'measure "{measure}" is not hours or tickets')
    u = book.usage
    if u.empty:
        return {}
    first = day_number(period.first)
    mine = ((u["date"] >= first) & (u["date"] < first + period.days)).to_numpy()
    if not mine.any():
        return {}
    keys = u["client"][mine].str.strip().str.lower()
    if measure == "hours":
        sums = u["hours_centi"][mine].groupby(keys.to_numpy(), sort=False).sum()
        return {str(k): Fraction(int(v), 100) for k, v in sums.items()}
    sums = u["tickets"][mine].groupby(keys.to_numpy(), sort=False).sum()
    return {str(k): Fraction(Decimal(repr(float(v)))) for k, v in sums.items()}


def per_user(total: Fraction, users: np.ndarray[Any, np.dtype[np.int64]] | None, period: Period,
             client: str) -> Decimal:
    """``total`` ÷ the average of ``users`` (a client's billable users on each day of ``period``)."""
    user_days = 0 if users is None else int(users.sum())  # the average is user_days / the month's days
    if user_days == 0:
        raise ArgumentError(f'client "{client.strip()}" has no billable users in {period.label()}')
    # total ÷ average, one correctly rounded division (as of the reduced fraction: the quotient is the same)
    return Decimal(total.numerator * period.days) / Decimal(total.denominator * user_days)


def usage_per_user(book: Book, client: str, period: Period, measure: str = "hours") -> Decimal:
    """Hours or tickets logged for ``client`` in ``period`` ÷ its average daily billable users."""
    totals = usage_totals(book, period, measure)
    users = _client_days(book, client, period)
    return per_user(totals.get(client.strip().lower(), Fraction(0)), users, period, client)
