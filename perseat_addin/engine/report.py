"""Usage and pricing report (SPEC §9): what each client uses, earns and should pay.

Per client, for the billing period and the trailing three months (the period and
the two before it): average billable users, tickets and hours (per user), of which
non-billable (time the PSA marks not billable to the client: work done, never
billed), revenue (invoice subtotal after discount, before tax: the recorded invoice
when the Invoices table has one, else what the invoice run gives), cost to serve
(all hours × LaborCostPerHour), margin and effective hourly rate. Across the portfolio: medians and outliers by
a robust z-score (median and MAD).

Advice adds up: each client gets one recommendation — a plan change, a per-user price, a minimum monthly fee, or
none — chosen by :func:`~.advice.recommend` so that a full month at the recommended terms, priced as the invoice
run prices it, earns at least the cost to serve ÷ (1 − TargetMargin); a plan is offered only among plans of the
client's Basis. Everything else is an observation: outliers, the per-user price floor (RECOMMENDPRICE: what the
hours alone need), small clients below a sensible minimum, and volume-tier cliffs.

Every figure is exact until shown: users are fractions, hours centi-hours, money cents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from perseat_addin.engine.advice import (
    Recommendation,
    median,
    recommend,
    recommend_price,
    robust_z,
    volume_cliffs,
)
from perseat_addin.engine.daily import Context, IntArray
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.pricing import seat_charge
from perseat_addin.model import BillingTiming, Book, Client, Period, Plan, day_number
from perseat_addin.money import MICRO, to_decimal

LOOKBACK = 3
"""Months in the trailing window (the period and the two before it)."""

TREND_MONTHS = 12
OUTLIER_Z = 3.5
"""Robust z-score (0.6745 × (x − median) ÷ MAD) above which a client's hours per user is an outlier."""

OUTLIER_RATIO = 2
"""…or hours per user at least this many times the portfolio median (when MAD is 0 or few clients)."""


def to_places(x: Fraction | int, places: int = 2) -> Decimal:
    """A fraction shown to ``places`` decimals (half away from zero)."""
    num, den = (x, 1) if isinstance(x, int) else (x.numerator, x.denominator)
    num *= 10**places
    n = (2 * abs(num) + den) // (2 * den)  # ⌊|x|·10^places + ½⌋ in integers (Fraction arithmetic is slow)
    return Decimal(n if num >= 0 else -n).scaleb(-places)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@dataclass(frozen=True)
class Usage:
    """One client's (or the portfolio's) figures over some months."""

    months: int
    user_months: Fraction  # sum over the months of the average daily billable users
    tickets: Fraction
    hours_centi: int
    revenue_cents: int
    recorded: bool = False  # revenue comes from recorded invoices (all months)
    end_users: int = 0  # billable users on the last day (of the last month)
    non_billable_centi: int = 0  # of hours_centi: time not billable to the client (never overage)
    end_devices: int = 0  # shared devices on the last day (of the last month)

    @property
    def hours(self) -> Fraction:
        """Every hour worked, billable to the client or not."""
        return Fraction(self.hours_centi, 100)

    @property
    def non_billable_hours(self) -> Fraction:
        return Fraction(self.non_billable_centi, 100)

    @property
    def billable_hours(self) -> Fraction:
        return Fraction(self.hours_centi - self.non_billable_centi, 100)

    @property
    def users(self) -> Fraction:
        """Average billable users per month."""
        return self.user_months / self.months if self.months else Fraction(0)

    def per_user(self, amount: Fraction) -> Fraction | None:
        return amount / self.user_months if self.user_months else None

    @property
    def hours_per_user(self) -> Fraction | None:
        return self.per_user(self.hours)

    @property
    def tickets_per_user(self) -> Fraction | None:
        return self.per_user(self.tickets)

    @property
    def revenue_per_user(self) -> Fraction | None:
        return self.per_user(Fraction(self.revenue_cents, 100))

    def cost(self, cost_per_hour: Fraction) -> Fraction:
        return self.hours * cost_per_hour

    def margin(self, cost_per_hour: Fraction) -> Fraction | None:
        rev = Fraction(self.revenue_cents, 100)
        return (rev - self.cost(cost_per_hour)) / rev if rev else None

    @property
    def hourly_rate(self) -> Fraction | None:
        return Fraction(self.revenue_cents, 100) / self.hours if self.hours_centi else None

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.months + other.months, self.user_months + other.user_months,
                     self.tickets + other.tickets, self.hours_centi + other.hours_centi,
                     self.revenue_cents + other.revenue_cents, self.recorded and other.recorded, other.end_users,
                     self.non_billable_centi + other.non_billable_centi, other.end_devices)


RECOMMENDATIONS = ("price", "plan", "minfee", "none")
"""The kinds of a client's one recommendation; every other kind of :class:`Advice` is an observation."""


@dataclass(frozen=True)
class Advice:
    """A recommendation (price, plan, minfee, none) or an observation (outlier, floor, small), with its reason
    in words."""

    kind: str
    client: str
    value: str  # the recommended price, plan, fee, or the floor; "" when there is no figure
    reason: str
    label: str = ""  # the reason in a few words, for the printed table

    @property
    def observation(self) -> bool:
        return self.kind not in RECOMMENDATIONS


@dataclass(frozen=True)
class ClientReport:
    client: str
    plan: str
    period: Usage
    trailing: Usage
    robust_z: float | None = None
    outlier: bool = False
    price: Decimal | None = None  # recommended per-user price (when the recommendation is a price)
    plan_advice: str | None = None  # recommended plan (when the recommendation is a plan change)
    min_fee: Decimal | None = None  # recommended minimum monthly fee (when the recommendation is one)
    advice: tuple[Advice, ...] = ()  # the recommendation first, then the observations
    floor: Decimal | None = None  # the per-user price that covers the hours at TargetMargin (RECOMMENDPRICE)
    recommendation: Recommendation | None = None

    @property
    def recommended(self) -> Advice | None:
        """The one recommendation, as advice (None without LaborCostPerHour and TargetMargin)."""
        return next((a for a in self.advice if not a.observation), None)

    @property
    def observations(self) -> tuple[Advice, ...]:
        return tuple(a for a in self.advice if a.observation)

    @property
    def needed(self) -> Decimal | None:
        """Cost to serve ÷ (1 − TargetMargin): the revenue the month must reach."""
        r = self.recommendation
        return None if r is None else _money(r.needed_cents)

    @property
    def terms_revenue(self) -> Decimal | None:
        """A full month's revenue at the recommended terms; this month's revenue when nothing is recommended."""
        r = self.recommendation
        if r is None:
            return None
        return _money(r.revenue_cents if r.revenue_cents is not None else self.period.revenue_cents)

    def terms_margin(self, cost_per_hour: Fraction | None) -> Fraction | None:
        """The margin at the recommended terms (today's when nothing is recommended)."""
        rev = self.terms_revenue
        if rev is None or cost_per_hour is None or not rev:
            return None
        revenue = Fraction(rev)
        return (revenue - self.period.cost(cost_per_hour)) / revenue


@dataclass(frozen=True)
class Cliff:
    """Seats at which one more seat costs less (a volume tier's cliff)."""

    plan: str
    seats: int  # n: the last seat count of the cheaper-per-seat tier's predecessor
    charge: Decimal  # charge for n seats
    next_charge: Decimal  # charge for n + 1 seats
    from_seats: int  # from this many seats up to n, a client pays more than n + 1 would
    clients: tuple[str, ...] = ()  # clients whose seats sit in [from_seats, seats]

    @property
    def reason(self) -> str:
        who = f" ({', '.join(self.clients)} in that range)" if self.clients else ""
        return (f"{self.plan}: {self.seats} seats cost {self.charge:,.2f} but {self.seats + 1} cost "
                f"{self.next_charge:,.2f}; from {self.from_seats} to {self.seats} seats a client pays more than "
                f"for {self.seats + 1}{who}")


@dataclass(frozen=True)
class TrendMonth:
    period: Period
    users: Fraction
    tickets: Fraction
    hours_centi: int
    revenue_cents: int
    recorded: bool
    non_billable_centi: int = 0


@dataclass
class Report:
    period: Period
    currency: str
    cost_per_hour: Fraction | None
    target_margin: Fraction | None
    price_step: Fraction | None
    clients: list[ClientReport]
    medians: dict[str, Decimal | None]
    cliffs: list[Cliff]
    trend: list[TrendMonth]
    notes: list[str] = field(default_factory=list)

    @property
    def advice(self) -> list[Advice]:
        return [a for c in self.clients for a in c.advice]


# --------------------------------------------------------------------------
# Figures per month


MonthUsage = tuple[int, Fraction, int]
"""A client's month: (hours_centi, tickets, non-billable centi-hours)."""


def _usage_by_client(book: Book, months: Sequence[Period]) -> dict[str, dict[str, MonthUsage]]:
    """client (lower) → period key → (hours_centi, tickets, non-billable centi-hours) for consecutive
    ``months``."""
    u = book.usage
    if u.empty or not months:
        return {}
    bounds = np.array([day_number(p.first) for p in months] + [day_number(months[-1].next().first)])
    # (a million rows: each array is made once and let go of as soon as it has served)
    idx = np.searchsorted(bounds, u["date"].to_numpy(dtype=np.int64), side="right")
    idx -= 1
    inside = np.flatnonzero((idx >= 0) & (idx < len(months)))
    if not len(inside):
        return {}
    every = len(inside) == len(idx)
    if not every:
        idx = idx[inside]
    keys = [str(p) for p in months]
    # each distinct cell text trimmed and lower-cased once (a million rows hold a thousand names)
    codes, names = pd.factorize(u["client"], use_na_sentinel=False)
    low, client = np.unique(pd.Series(names, dtype="str").str.strip().str.lower().to_numpy(dtype=object),
                            return_inverse=True)
    row_client = client[codes if every else codes[inside]]
    del codes
    key = row_client * len(months)
    key += idx
    order = np.argsort(key, kind="stable")  # each group's rows in the table's order
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    group_keys = key[starts].tolist()
    del key

    def column(name: str, dtype: type) -> np.ndarray:
        """The rows inside the months, in group order."""
        values = u[name].to_numpy(dtype=dtype)
        return values[order] if every else values[inside][order]

    hours = column("hours_centi", np.int64)
    h_sum = np.add.reduceat(hours, starts)
    if "billable" in u:
        hours[column("billable", bool)] = 0
        a_sum = np.add.reduceat(hours, starts)
    else:
        a_sum = np.zeros(len(starts), np.int64)
    del hours
    t = column("tickets", np.float64)
    if (t == np.floor(t)).all() and np.abs(t).sum() < 2**52:
        t_sum = np.add.reduceat(t, starts)  # whole numbers: exact in any order
    else:  # fractions of a ticket: pandas' compensated sums, as they always were
        tickets = u["tickets"].to_numpy(dtype=np.float64)
        frame = pd.DataFrame({"client": row_client, "month": idx, "tickets": tickets if every else tickets[inside]})
        sums = frame.groupby(["client", "month"], sort=False).agg(tickets=("tickets", "sum"))
        by_key = {c * len(months) + m: v for (c, m), v in zip(sums.index, sums["tickets"], strict=True)}
        t_sum = np.array([by_key[k] for k in group_keys], dtype=np.float64)
    out: dict[str, dict[str, MonthUsage]] = {}
    for k, h, a, tk in zip(group_keys, h_sum.tolist(), a_sum.tolist(), t_sum.tolist(), strict=True):
        c, m = divmod(k, len(months))
        out.setdefault(str(low[c]), {})[keys[m]] = (int(h), Fraction(Decimal(repr(float(tk)))), int(a))
    return out


def _recorded_revenue(book: Book) -> dict[tuple[str, str], int]:
    """(client lower, period key) → cents of Total − Tax over the recorded invoices (Draft or Final)."""
    inv = book.invoices
    out: dict[tuple[str, str], int] = {}
    if inv.empty or not {"Client", "Period", "Total"} <= set(inv.columns):
        return out
    taxes = inv["Tax"] if "Tax" in inv else [None] * len(inv)
    for c, p, total, tax in zip(inv["Client"], inv["Period"], inv["Total"], taxes, strict=True):
        try:
            cents = int((to_decimal(total or 0) - to_decimal(tax or 0)) * 100)
        except ValueError:
            continue
        key = (str(c).strip().lower(), Period.key(p))
        out[key] = out.get(key, 0) + cents
    return out


class _Months:
    """What every month of the report needs, prepared once: the billable-user counter (one
    :class:`~.daily.Context` for every client) and the usage rows by month, so each month's invoice run
    sums only its own rows instead of all of them."""

    def __init__(self, book: Book, months: Sequence[Period], usage: dict[str, dict[str, MonthUsage]],
                 recorded: dict[tuple[str, str], int]):
        self.book = book
        self.usage = usage
        self.recorded = recorded
        self.ctx = Context(book, months[-1], book.clients)
        u = book.usage
        self._dates = u["date"].to_numpy(dtype=np.int64) if not u.empty else np.array([], np.int64)
        # client names as categories: the invoice run lower-cases and looks up each distinct name once
        self._usage = u if u.empty else u.assign(client=u["client"].astype("category"))

    def users(self, period: Period) -> tuple[dict[str, IntArray], dict[str, int]]:
        """Billable users of every client (lower-case name) on each day of ``period``, as invoices count them
        (what :func:`~.daily.daily_users` gives), and its shared devices on the last day."""
        series = self.ctx.series(period)
        users = series.client_users
        own = self.ctx.groups.own
        shared = series.shared_devices
        last = shared[:, -1] if shared is not None and shared.size else np.zeros(len(own), np.int64)
        return ({name: users[ci] for name, ci in self.ctx.client_idx.items()},
                {name: int(last[own[ci]]) for name, ci in self.ctx.client_idx.items()})

    def run_book(self, period: Period) -> Book:
        """The book with only the usage rows the invoice run of ``period`` reads (its usage month)."""
        u = self._usage
        if u.empty:
            return self.book
        month = period.prev() if self.book.settings.billing_timing is BillingTiming.ADVANCE else period
        first = day_number(month.first)
        rows = np.flatnonzero((self._dates >= first) & (self._dates < first + month.days))
        return replace(self.book, usage=u.iloc[rows])

    def month(self, period: Period) -> dict[str, Usage]:
        """Every client's figures for one month."""
        book, recorded = self.book, self.recorded
        users, devices = self.users(period)
        key = Period.key(str(period))
        need_run = any((c.name.lower(), key) not in recorded for c in book.clients if c.active)
        computed: dict[str, int] = {}
        if need_run:
            for inv in invoice_run(self.run_book(period), period).invoices:
                computed[inv.client.name.lower()] = inv.subtotal_cents + inv.discount_cents
        out: dict[str, Usage] = {}
        for c in book.clients:
            name = c.name.lower()
            days = users.get(name)
            user_months = Fraction(int(days.sum()), period.days) if days is not None else Fraction(0)
            hours, tickets, apart = self.usage.get(name, {}).get(key, (0, Fraction(0), 0))
            rec = recorded.get((name, key))
            revenue = rec if rec is not None else computed.get(name, 0)
            end = int(days[-1]) if days is not None and len(days) else 0
            out[name] = Usage(1, user_months, tickets, hours, revenue, rec is not None, end, apart,
                              devices.get(name, 0))
        return out


# --------------------------------------------------------------------------
# Portfolio statistics


def _median(values: Iterable[Fraction | None]) -> Decimal | None:
    got = [v for v in values if v is not None]
    return to_places(Fraction(median(got))) if got else None


# --------------------------------------------------------------------------
# Cliffs


# --------------------------------------------------------------------------
# The report


def build_report(book: Book, period: Period | None = None,
                 progress: Callable[[int], None] | None = None) -> Report:
    """The usage and pricing report for ``period`` (default: BillingPeriod); ``progress(1)`` per month."""
    st = book.settings
    period = period or st.period
    cph = Fraction(st.labor_cost_per_hour_micros, MICRO) if st.labor_cost_per_hour_micros is not None else None
    margin = Fraction(st.target_margin_ppm, 1_000_000) if st.target_margin_ppm is not None else None
    step = Fraction(st.price_step_micros, MICRO) if st.price_step_micros is not None else None
    months = [period]
    for _ in range(TREND_MONTHS - 1):
        months.insert(0, months[0].prev())
    each = _Months(book, months, _usage_by_client(book, months), _recorded_revenue(book))
    tick = progress or (lambda n: None)
    per_month: dict[str, dict[str, Usage]] = {}
    for p in months[-LOOKBACK:]:
        per_month[str(p)] = each.month(p)
        tick(1)
    trend = _trend(book, months, each, per_month, tick)
    active = [c for c in book.clients if c.active]
    rows: list[ClientReport] = []
    for c in active:
        name = c.name.lower()
        cur = per_month[str(period)][name]
        trailing = cur
        for p in months[-LOOKBACK:-1]:
            trailing = per_month[str(p)][name] + trailing
        rows.append(ClientReport(c.name, c.plan, cur, trailing))
    hpu = [r.period.hours_per_user for r in rows]
    med, zs = robust_z([h for h in hpu if h is not None])
    z_iter = iter(zs)
    notes: list[str] = []
    if cph is None or margin is None:
        notes.append("Set LaborCostPerHour and TargetMargin in Settings for cost, margin and price advice.")
    out: list[ClientReport] = []
    small = median([r.period.users for r in rows]) if rows else Fraction(0)
    plans = _CachedPlans(book)
    for c, r in zip(active, rows, strict=True):
        z = next(z_iter) if r.period.hours_per_user is not None else None
        out.append(_advise(plans, c, r, z, med, cph, margin, step, small))
    cliffs = _cliffs(book, out)
    medians = {
        "users": _median(r.period.users for r in out),
        "hours_per_user": _median(r.period.hours_per_user for r in out),
        "tickets_per_user": _median(r.period.tickets_per_user for r in out),
        "revenue_per_user": _median(r.period.revenue_per_user for r in out),
        "hourly_rate": _median(r.period.hourly_rate for r in out),
        "margin": _median(r.period.margin(cph) for r in out) if cph is not None else None,
    }
    return Report(period, st.currency, cph, margin, step, out, medians, cliffs, trend, notes)


def _trend(book: Book, months: list[Period], each: _Months, known: dict[str, dict[str, Usage]],
           tick: Callable[[int], None]) -> list[TrendMonth]:
    """Portfolio figures per month (active clients): users, tickets, hours, revenue."""
    active = [c.name.lower() for c in book.clients if c.active]
    out = []
    for p in months:
        figures = known.get(str(p))
        if figures is None:
            figures = each.month(p)
            tick(1)
        total = Usage(1, Fraction(0), Fraction(0), 0, 0, True)
        for name in active:
            u = figures[name]
            total = Usage(1, total.user_months + u.user_months, total.tickets + u.tickets,
                          total.hours_centi + u.hours_centi, total.revenue_cents + u.revenue_cents,
                          total.recorded and u.recorded, 0, total.non_billable_centi + u.non_billable_centi)
        out.append(TrendMonth(p, total.user_months, total.tickets, total.hours_centi, total.revenue_cents,
                              total.recorded, total.non_billable_centi))
    return out


class _CachedPlans:
    """The book's plans, with each (plan, users, devices) charge computed once across a thousand clients."""

    def __init__(self, book: Book):
        self.plans = book.plans
        self.listed = list(book.plans.values())
        self.rounding = book.settings.rounding
        self._charges: dict[tuple[str, int, int], int] = {}

    def charge(self, plan: Plan, users: int, devices: int = 0) -> int:
        key = (plan.name, users, devices)
        found = self._charges.get(key)
        if found is None:
            found = self._charges[key] = seat_charge(plan, users, devices, self.rounding).total_cents
        return found


def _advise(plans: _CachedPlans, client: Client, r: ClientReport, z: float | None, med: Fraction | None,
            cph: Fraction | None, margin: Fraction | None, step: Fraction | None, small: Fraction) -> ClientReport:
    """The client's one recommendation (:func:`~.advice.recommend`) and its observations: outlier, price floor,
    small client below a sensible minimum."""
    notes: list[Advice] = []
    u = r.period
    hpu = u.hours_per_user
    outlier = False
    if hpu is not None and med is not None and hpu > 0:
        ratio = hpu / med if med else None
        if (z is not None and z > OUTLIER_Z) or (ratio is not None and ratio >= OUTLIER_RATIO):
            outlier = True
            times = f"{to_places(ratio, 1)}× the portfolio median of {to_places(med)}" if ratio is not None else \
                "above a portfolio median of 0"
            zs = f", robust z {z:.1f}" if z is not None else ""
            notes.append(Advice("outlier", r.client, "", f"{to_places(hpu)} support hours per user this month: "
                                f"{times}{zs}", f"outlier: {to_places(hpu)} h/user"
                                + (f", {to_places(ratio, 1)}× median" if ratio is not None else "")))
    if cph is None or margin is None:
        return replace(r, robust_z=z, outlier=outlier, advice=tuple(notes))
    floor = None
    if hpu is not None:
        floor = recommend_price(_exact(hpu), _exact(cph), _exact(margin), Decimal(0),
                                None if step is None else _exact(step))
        now = u.revenue_per_user
        if now is not None and floor < to_places(now):  # a floor, never a recommendation to cut the price
            notes.append(Advice("floor", r.client, f"{floor:,.2f}", (
                f"price floor {floor:,.2f} (pays {to_places(now):,.2f}): {to_places(hpu)} h/user × "
                f"{to_places(cph)}/h ÷ (1 − {to_places(margin * 100, 0)}%) = {to_places(hpu * cph / (1 - margin))}, "
                f"rounded up to {to_places(step or Fraction(1, 100))}; the hours alone need no more per user"),
                f"price floor {floor:,.2f} (pays {to_places(now):,.2f})"))
    needed = u.cost(cph) / (1 - margin)
    needed_cents = math.ceil(needed * 100)
    current = plans.plans.get(r.plan.strip().lower())
    is_small = u.users <= small
    rec: Recommendation | None = None
    if current is not None:
        rec = recommend(current, plans.listed, users=u.end_users, devices=u.end_devices,
                        billable_centi=u.hours_centi - u.non_billable_centi, discount_ppm=client.discount_ppm,
                        needed_cents=needed_cents, today_cents=u.revenue_cents, small=bool(is_small),
                        step_micros=None if step is None else math.ceil(step * MICRO), rounding=plans.rounding,
                        charge=plans.charge)
    first: list[Advice] = []
    price = plan_name = min_fee = None
    if rec is not None:
        cost = f"cost to serve {to_places(u.cost(cph)):,.2f} ({to_places(u.hours)} h × {to_places(cph)}/h)"
        first.append(Advice(rec.kind, r.client, rec.value, f"{rec.reason}; {cost} at {to_places(margin * 100, 0)}% "
                            "margin", rec.label))
        if rec.kind == "price" and rec.terms is not None:
            price = Decimal(rec.terms.rate_micros).scaleb(-6)
        elif rec.kind == "plan":
            plan_name = rec.value
        elif rec.kind == "minfee" and rec.terms is not None:
            min_fee = Decimal(rec.terms.min_fee_micros).scaleb(-6)
    t = r.trailing
    if t.months and is_small and (rec is None or rec.kind != "minfee"):
        need = t.cost(cph) / t.months / (1 - margin)  # a month's support at the target margin, over 3 months
        earned = Fraction(t.revenue_cents, 100) / t.months
        if need > 0 and earned < need:
            notes.append(Advice("small", r.client, "", (
                f"below a sensible minimum: a small client earning {to_places(earned):,.2f} a month over "
                f"{t.months} months while its support at {to_places(margin * 100, 0)}% margin needs "
                f"{to_places(need):,.2f}"),
                f"below a sensible minimum: earns {to_places(earned):,.2f} a month, needs {to_places(need):,.2f}"))
    return ClientReport(r.client, r.plan, r.period, r.trailing, z, outlier, price, plan_name, min_fee,
                        tuple(first + notes), floor, rec)


def _exact(x: Fraction) -> Decimal:
    """A fraction as a Decimal the way USAGEPERUSER returns it (exact when it terminates)."""
    return Decimal(x.numerator) / Decimal(x.denominator)


def _cliffs(book: Book, clients: Sequence[ClientReport]) -> list[Cliff]:
    seats: dict[str, list[tuple[str, int]]] = {}
    for r in clients:
        seats.setdefault(r.plan.lower(), []).append((r.client, math.ceil(r.period.users)))
    out = []
    for plan in book.plans.values():
        for n, here, nxt, lo in volume_cliffs(plan):
            who = tuple(c for c, s in seats.get(plan.name.lower(), []) if lo <= s <= n)
            out.append(Cliff(plan.name, n, _money(here), _money(nxt), lo, who))
    return out


__all__ = ["Advice", "ClientReport", "Cliff", "Report", "TrendMonth", "Usage", "build_report"]
