"""Usage and pricing report (SPEC §9): what each client uses, earns and should pay.

Per client, for the billing period and the trailing three months (the period and
the two before it): average billable users, tickets and hours (per user), revenue
(invoice subtotal after discount, before tax: the recorded invoice when the
Invoices table has one, else what the invoice run gives), cost to serve (hours ×
LaborCostPerHour), margin and effective hourly rate. Across the portfolio: medians
and outliers by a robust z-score (median and MAD). Recommendations, each with its
reason in words: the per-user price that earns TargetMargin (RECOMMENDPRICE over
USAGEPERUSER), the cheapest plan whose included hours cover the usage
(RECOMMENDPLAN), volume-tier cliffs where one more seat costs less, and small
clients whose revenue does not cover their support at the target margin (a MinFee).

Every figure is exact until shown: users are fractions, hours centi-hours, money cents.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .functions import ArgumentError, recommend_plan, recommend_price, seat_charge
from .invoicing import daily_users, invoice_run
from .model import Book, Period, Plan, Tiering, day_number
from .money import MICRO, to_decimal

LOOKBACK = 3
"""Months in the trailing window (the period and the two before it)."""

TREND_MONTHS = 12
OUTLIER_Z = 3.5
"""Robust z-score (0.6745 × (x − median) ÷ MAD) above which a client's hours per user is an outlier."""

OUTLIER_RATIO = 2
"""…or hours per user at least this many times the portfolio median (when MAD is 0 or few clients)."""


def _dec(x: Fraction | int, places: int = 2) -> Decimal:
    """A fraction shown to ``places`` decimals (half away from zero)."""
    q = Fraction(x) * 10**places
    n = math.floor(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
    return Decimal(n).scaleb(-places)


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

    @property
    def hours(self) -> Fraction:
        return Fraction(self.hours_centi, 100)

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
                     self.revenue_cents + other.revenue_cents, self.recorded and other.recorded, other.end_users)


@dataclass(frozen=True)
class Advice:
    """A recommendation and the reason for it, in words."""

    kind: str  # price | plan | minfee | outlier | cliff
    client: str
    value: str  # the recommended price, plan, fee; "" for a warning
    reason: str


@dataclass(frozen=True)
class ClientReport:
    client: str
    plan: str
    period: Usage
    trailing: Usage
    robust_z: float | None = None
    outlier: bool = False
    price: Decimal | None = None  # recommended per-user price
    plan_advice: str | None = None  # recommended plan
    min_fee: Decimal | None = None
    advice: tuple[Advice, ...] = ()


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


def _usage_by_client(book: Book, months: Sequence[Period]) -> dict[str, dict[str, tuple[int, Fraction]]]:
    """client (lower) → period key → (hours_centi, tickets) for consecutive ``months``."""
    u = book.usage
    if u.empty or not months:
        return {}
    bounds = np.array([day_number(p.first) for p in months] + [day_number(months[-1].next().first)])
    dates = u["date"].to_numpy(dtype=np.int64)
    idx = np.searchsorted(bounds, dates, side="right") - 1
    inside = (idx >= 0) & (idx < len(months))
    if not inside.any():
        return {}
    keys = np.array([str(p) for p in months])
    frame = pd.DataFrame({"client": u["client"].astype(str).str.strip().str.lower().to_numpy()[inside],
                          "month": keys[idx[inside]], "hours": u["hours_centi"].to_numpy()[inside],
                          "tickets": u["tickets"].to_numpy()[inside]})
    sums = frame.groupby(["client", "month"], sort=False).agg(hours=("hours", "sum"), tickets=("tickets", "sum"))
    out: dict[str, dict[str, tuple[int, Fraction]]] = {}
    for (client, month), h, t in zip(sums.index, sums["hours"], sums["tickets"], strict=True):
        out.setdefault(client, {})[month] = (int(h), Fraction(Decimal(repr(float(t)))))
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


def _month(book: Book, period: Period, usage: dict[str, dict[str, tuple[int, Fraction]]],
           recorded: dict[tuple[str, str], int]) -> dict[str, Usage]:
    """Every client's figures for one month."""
    users = daily_users(book, period)
    key = Period.key(str(period))
    need_run = any((c.name.lower(), key) not in recorded for c in book.clients if c.active)
    computed: dict[str, int] = {}
    if need_run:
        for inv in invoice_run(book, period).invoices:
            computed[inv.client.name.lower()] = inv.subtotal_cents + inv.discount_cents
    out: dict[str, Usage] = {}
    for c in book.clients:
        name = c.name.lower()
        days = users.get(name)
        user_months = Fraction(int(days.sum()), period.days) if days is not None else Fraction(0)
        hours, tickets = usage.get(name, {}).get(key, (0, Fraction(0)))
        rec = recorded.get((name, key))
        revenue = rec if rec is not None else computed.get(name, 0)
        end = int(days[-1]) if days is not None and len(days) else 0
        out[name] = Usage(1, user_months, tickets, hours, revenue, rec is not None, end)
    return out


# --------------------------------------------------------------------------
# Portfolio statistics


def robust_z(values: Sequence[Fraction]) -> tuple[Fraction | None, list[float | None]]:
    """The median and each value's robust z-score 0.6745 × (x − median) ÷ MAD (None when MAD is 0)."""
    if not values:
        return None, []
    med = Fraction(statistics.median(values))
    mad = Fraction(statistics.median([abs(v - med) for v in values]))
    if mad == 0:
        return med, [None for _ in values]
    return med, [float(Fraction(6745, 10000) * (v - med) / mad) for v in values]


def _median(values: Iterable[Fraction | None]) -> Decimal | None:
    got = [v for v in values if v is not None]
    return _dec(Fraction(statistics.median(got))) if got else None


# --------------------------------------------------------------------------
# Cliffs


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
    usage = _usage_by_client(book, months)
    recorded = _recorded_revenue(book)
    tick = progress or (lambda n: None)
    per_month: dict[str, dict[str, Usage]] = {}
    for p in months[-LOOKBACK:]:
        per_month[str(p)] = _month(book, p, usage, recorded)
        tick(1)
    trend = _trend(book, months, usage, recorded, per_month, tick)
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
    small = statistics.median([r.period.users for r in rows]) if rows else Fraction(0)
    plans = _CachedPlans(book)
    for r in rows:
        z = next(z_iter) if r.period.hours_per_user is not None else None
        out.append(_advise(plans, r, z, med, cph, margin, step, small))
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


def _trend(book: Book, months: list[Period], usage: dict[str, dict[str, tuple[int, Fraction]]],
           recorded: dict[tuple[str, str], int], known: dict[str, dict[str, Usage]],
           tick: Callable[[int], None]) -> list[TrendMonth]:
    """Portfolio figures per month (active clients): users, tickets, hours, revenue."""
    active = [c.name.lower() for c in book.clients if c.active]
    out = []
    for p in months:
        figures = known.get(str(p))
        if figures is None:
            figures = _month(book, p, usage, recorded)
            tick(1)
        total = Usage(1, Fraction(0), Fraction(0), 0, 0, True)
        for name in active:
            u = figures[name]
            total = Usage(1, total.user_months + u.user_months, total.tickets + u.tickets,
                          total.hours_centi + u.hours_centi, total.revenue_cents + u.revenue_cents,
                          total.recorded and u.recorded)
        out.append(TrendMonth(p, total.user_months, total.tickets, total.hours_centi, total.revenue_cents,
                              total.recorded))
    return out


class _CachedPlans:
    """The book's plans, with each (plan, seats) charge computed once across a thousand clients."""

    def __init__(self, book: Book):
        self.plans = book.plans
        self._charges: dict[tuple[str, int], int] = {}

    def charge(self, plan: Plan, users: int) -> int:
        key = (plan.name, users)
        if key not in self._charges:
            self._charges[key] = seat_charge(plan, users).total_cents
        return self._charges[key]

    def cheapest(self, hours: Decimal, users: int) -> Plan:
        """RECOMMENDPLAN's answer for that many users."""
        return recommend_plan(self.plans.values(), hours, users, charge=self.charge)


def _advise(book: _CachedPlans, r: ClientReport, z: float | None, med: Fraction | None, cph: Fraction | None,
            margin: Fraction | None, step: Fraction | None, small: Fraction) -> ClientReport:
    advice: list[Advice] = []
    u = r.period
    hpu = u.hours_per_user
    outlier = False
    if hpu is not None and med is not None and hpu > 0:
        ratio = hpu / med if med else None
        if (z is not None and z > OUTLIER_Z) or (ratio is not None and ratio >= OUTLIER_RATIO):
            outlier = True
            times = f"{_dec(ratio, 1)}× the portfolio median of {_dec(med)}" if ratio is not None else \
                "above a portfolio median of 0"
            zs = f", robust z {z:.1f}" if z is not None else ""
            advice.append(Advice("outlier", r.client, "", f"{_dec(hpu)} support hours per user this month: "
                                 f"{times}{zs}"))
    price = None
    if hpu is not None and cph is not None and margin is not None:
        price = recommend_price(_exact(hpu), _exact(cph), _exact(margin), Decimal(0),
                                None if step is None else _exact(step))
        now = u.revenue_per_user
        if now is not None:
            verb = "raise to" if price > _dec(now) else "could lower to" if price < _dec(now) else "keep at"
            advice.append(Advice("price", r.client, f"{price:,.2f}", (
                f"{_dec(hpu)} h/user × {_dec(cph)}/h ÷ (1 − {_dec(margin * 100, 0)}%) = "
                f"{_dec(hpu * cph / (1 - margin))}, rounded up to {_dec(step or Fraction(1, 100))}: {verb} "
                f"{price:,.2f} per user (now {_dec(now):,.2f})")))
    plan_name = None
    if hpu is not None:
        try:
            best = book.cheapest(_exact(hpu), u.end_users)
        except ArgumentError as exc:
            advice.append(Advice("plan", r.client, "", f"no plan fits: {exc}"))
        else:
            plan_name = best.name
            inc = best.included_hours_centi
            covers = "unlimited hours" if inc is None else f"{_dec(Fraction(inc, 100))} h/user included"
            cost = f"{_money(book.charge(best, u.end_users)):,.2f} for {u.end_users} users"
            if best.name.lower() == r.plan.lower():
                advice.append(Advice("plan", r.client, best.name, f"{best.name} is already the cheapest plan that "
                                     f"covers {_dec(hpu)} h/user ({covers}; {cost})"))
            else:
                current = book.plans.get(r.plan.lower())
                was = f", {_money(book.charge(current, u.end_users)):,.2f} on {r.plan}" \
                    if current is not None else f"; now on {r.plan}"
                advice.append(Advice("plan", r.client, best.name, f"{best.name} ({covers}) is the cheapest plan "
                                     f"that covers {_dec(hpu)} h/user: {cost}{was}"))
    min_fee = None
    t = r.trailing
    if cph is not None and margin is not None and t.months and u.users <= small:
        need = t.cost(cph) / t.months / (1 - margin)  # a month's support at the target margin
        revenue = Fraction(u.revenue_cents, 100)
        if need > 0 and revenue < need:
            s = step or Fraction(1, 100)
            min_fee = Decimal(math.ceil(need / s)) * (Decimal(s.numerator) / Decimal(s.denominator))
            plan = book.plans.get(r.plan.lower())
            has = (f"; its plan's MinFee is {Decimal(plan.min_fee_micros).scaleb(-6):,.2f}"
                   if plan and plan.min_fee_micros else "")
            advice.append(Advice("minfee", r.client, f"{min_fee:,.2f}", (
                f"small client earning {_dec(revenue):,.2f} this month while its support averages "
                f"{_dec(t.hours / t.months)} h × {_dec(cph)}/h = {_dec(t.cost(cph) / t.months):,.2f} a month; "
                f"a minimum fee of {min_fee:,.2f} covers it at {_dec(margin * 100, 0)}% margin{has}")))
    return ClientReport(r.client, r.plan, r.period, r.trailing, z, outlier, price, plan_name, min_fee,
                        tuple(advice))


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


# --------------------------------------------------------------------------
# Plain data (JSON)


def _s(x: Fraction | Decimal | None, places: int = 2) -> str | None:
    if x is None:
        return None
    return str(_dec(x, places)) if isinstance(x, Fraction) else str(x)


def usage_dict(u: Usage, cph: Fraction | None) -> dict[str, Any]:
    return {"months": u.months, "users": _s(u.users), "tickets": _s(u.tickets), "hours": _s(u.hours),
            "tickets_per_user": _s(u.tickets_per_user), "hours_per_user": _s(u.hours_per_user),
            "revenue": _s(Fraction(u.revenue_cents, 100)), "revenue_recorded": u.recorded,
            "revenue_per_user": _s(u.revenue_per_user),
            "cost": _s(u.cost(cph)) if cph is not None else None,
            "margin": _s(u.margin(cph), 4) if cph is not None else None, "hourly_rate": _s(u.hourly_rate)}


def report_dict(rep: Report) -> dict[str, Any]:
    """The report as JSON-ready data: decimals as strings."""
    return {
        "period": str(rep.period), "currency": rep.currency,
        "settings": {"labor_cost_per_hour": _s(rep.cost_per_hour), "target_margin": _s(rep.target_margin, 4),
                     "price_step": _s(rep.price_step)},
        "medians": {k: None if v is None else str(v) for k, v in rep.medians.items()},
        "clients": [{"client": c.client, "plan": c.plan, "period": usage_dict(c.period, rep.cost_per_hour),
                     "trailing_3_months": usage_dict(c.trailing, rep.cost_per_hour),
                     "robust_z": None if c.robust_z is None else round(c.robust_z, 2), "outlier": c.outlier,
                     "recommended_price": _s(c.price), "recommended_plan": c.plan_advice,
                     "recommended_min_fee": _s(c.min_fee),
                     "advice": [{"kind": a.kind, "value": a.value, "reason": a.reason} for a in c.advice]}
                    for c in rep.clients],
        "cliffs": [{"plan": c.plan, "seats": c.seats, "charge": str(c.charge), "next_charge": str(c.next_charge),
                    "from_seats": c.from_seats, "clients": list(c.clients), "reason": c.reason}
                   for c in rep.cliffs],
        "trend": [{"period": str(t.period), "users": _s(t.users), "tickets": _s(t.tickets),
                   "hours": _s(Fraction(t.hours_centi, 100)), "revenue": _s(Fraction(t.revenue_cents, 100)),
                   "revenue_recorded": t.recorded} for t in rep.trend],
        "notes": rep.notes,
    }





# --------------------------------------------------------------------------
# The Report sheet: one layout for report.xlsx (CLI) and the workbook's Report sheet (ribbon)

REPORT_COLUMNS: tuple[tuple[str, float, str | None], ...] = (
    ("Client", 24, None), ("Plan", 12, None), ("Users", 8, "0.00"), ("Tickets", 8, "0"),
    ("Hours", 8, "0.00"), ("Tickets / user", 9, "0.00"), ("Hours / user", 9, "0.00"),
    ("Revenue", 11, "#,##0.00"), ("Revenue / user", 10, "#,##0.00"), ("Cost to serve", 11, "#,##0.00"),
    ("Margin", 8, "0%"), ("Revenue / hour", 10, "#,##0.00"), ("Hours / user (3 mo)", 10, "0.00"),
    ("Margin (3 mo)", 9, "0%"), ("Median hours / user", 10, "0.00"), ("Outlier", 8, None),
    ("Recommended price / user", 13, "#,##0.00"), ("Recommended plan", 14, None),
    ("Suggested MinFee", 11, "#,##0.00"),
)

REPORT_SHEET = "Report"


def _f(x: Fraction | Decimal | None, places: int = 2) -> float | None:
    if x is None:
        return None
    return float(_dec(x, places)) if isinstance(x, Fraction) else float(x)


def report_layout(rep: Report, msp: str = "", name: str = REPORT_SHEET) -> Any:
    """The report as a :class:`~.layout.SheetLayout` with three native charts."""
    from .layout import NAVY, Cell, Chart, Series, SheetLayout, Style, typed

    cells: list[Cell] = []
    head = Style(bold=True, color="#FFFFFF", fill=NAVY, wrap=True, valign="top")
    bold = Style(bold=True)
    small = Style(size=9, color="#555555")
    wrap = Style(wrap=True, valign="top", size=9)
    formats = {col: Style(number_format=fmt) if fmt else Style() for col, _, fmt in REPORT_COLUMNS}

    heights: list[tuple[int, float]] = [(5, 45)]

    def put(row: int, col: int, value: Any, style: Style | None = None, to: tuple[int, int] | None = None) -> None:
        if value is not None:
            cells.append(Cell(row, col, typed(value), style or Style(), to))

    cph = rep.cost_per_hour
    put(1, 1, f"Usage & pricing report — {rep.period.label()}", Style(bold=True, size=16, color=NAVY))
    facts = [msp] if msp else []
    if cph is not None:
        facts.append(f"labour {_dec(cph):,.2f}/h")
    if rep.target_margin is not None:
        facts.append(f"target margin {_dec(rep.target_margin * 100, 0)}%")
    if rep.price_step is not None:
        facts.append(f"price step {_dec(rep.price_step):,.2f}")
    facts.append(f"currency {rep.currency}; 3 mo = {rep.period.prev().prev().label()} to {rep.period.label()}")
    put(2, 1, " · ".join(facts), small)
    for note in rep.notes:
        put(3, 1, note, Style(color="#C00000"))
    top = 5
    for j, (title, _, _) in enumerate(REPORT_COLUMNS, start=1):
        put(top, j, title, head)
    med_hpu = rep.medians.get("hours_per_user")
    first = top + 1
    for i, c in enumerate(rep.clients):
        r = first + i
        u, t = c.period, c.trailing
        values: list[Any] = [
            c.client, c.plan, _f(u.users), _f(u.tickets), _f(u.hours), _f(u.tickets_per_user),
            _f(u.hours_per_user), _f(Fraction(u.revenue_cents, 100)), _f(u.revenue_per_user),
            _f(u.cost(cph)) if cph is not None else None,
            _f(u.margin(cph), 4) if cph is not None else None, _f(u.hourly_rate), _f(t.hours_per_user),
            _f(t.margin(cph), 4) if cph is not None else None, _f(med_hpu), "yes" if c.outlier else "",
            _f(c.price), c.plan_advice, _f(c.min_fee)]
        for j, ((title, _, _), v) in enumerate(zip(REPORT_COLUMNS, values, strict=True), start=1):
            style = formats[title]
            if title == "Outlier" and v:
                style = Style(bold=True, color="#C00000")
            put(r, j, v, style)
    last = first + len(rep.clients) - 1
    mrow = last + 1
    put(mrow, 1, "Portfolio median", bold)
    for key, title in (("users", "Users"), ("tickets_per_user", "Tickets / user"),
                       ("hours_per_user", "Hours / user"), ("revenue_per_user", "Revenue / user"),
                       ("margin", "Margin"), ("hourly_rate", "Revenue / hour")):
        j = [c[0] for c in REPORT_COLUMNS].index(title) + 1
        put(mrow, j, _f(rep.medians.get(key), 4), Style(bold=True, number_format=REPORT_COLUMNS[j - 1][2]))
    chart_top = mrow + 2
    row = chart_top + 22 if rep.clients else mrow + 2
    put(row, 1, "Portfolio trend", Style(bold=True, size=12, color=NAVY))
    row += 1
    trend_head = row
    for j, title in enumerate(("Month", "Users", "Tickets", "Hours", "Hours / user", "Revenue", "Revenue / user",
                               "Revenue source"), start=1):
        put(row, j, title, head)
    for k, m in enumerate(rep.trend):
        r = trend_head + 1 + k
        users = m.users
        put(r, 1, f"{m.period.first:%b %Y}")
        put(r, 2, _f(users), Style(number_format="0.00"))
        put(r, 3, _f(m.tickets), Style(number_format="0"))
        put(r, 4, _f(Fraction(m.hours_centi, 100)), Style(number_format="0.00"))
        put(r, 5, _f(Fraction(m.hours_centi, 100) / users) if users else None, Style(number_format="0.00"))
        put(r, 6, _f(Fraction(m.revenue_cents, 100)), Style(number_format="#,##0.00"))
        put(r, 7, _f(Fraction(m.revenue_cents, 100) / users) if users else None, Style(number_format="#,##0.00"))
        put(r, 8, "recorded invoices" if m.recorded else "priced from the roster", small)
    trend_last = trend_head + len(rep.trend)
    row = max(trend_last, trend_head + 21) + 2
    put(row, 1, "Recommendations", Style(bold=True, size=12, color=NAVY))
    row += 1
    n_cols = len(REPORT_COLUMNS)
    for j, title in enumerate(("Client", "Kind", "Recommendation"), start=1):
        put(row, j, title, head)
    put(row, 4, "Why", head, to=(row, n_cols))
    row += 1
    kinds = {"outlier": "Outlier", "price": "Price", "plan": "Plan", "minfee": "Minimum fee"}
    rows = [(a.client, kinds.get(a.kind, a.kind), a.value, a.reason) for a in rep.advice]
    rows += [(cl.plan, "Volume cliff", f"{cl.seats} → {cl.seats + 1} seats", cl.reason) for cl in rep.cliffs]
    for who, kind, value, reason in rows:
        put(row, 1, who, wrap)
        put(row, 2, kind, wrap)
        put(row, 3, value, wrap)
        put(row, 4, reason, wrap, to=(row, n_cols))
        if len(reason) > 170:
            heights.append((row, 24))
        row += 1
    end_row = row
    col = {title: j for j, (title, _, _) in enumerate(REPORT_COLUMNS, start=1)}
    charts: list[Chart] = []
    if rep.clients:
        names = (first, 1, last, 1)
        charts.append(Chart(
            "column", "Support hours per user by client", (chart_top, 1),
            (Series("Hours / user", names, (first, col["Hours / user"], last, col["Hours / user"]), color="#2E75B6"),
             Series("Portfolio median", names, (first, col["Median hours / user"], last, col["Median hours / user"]),
                    kind="line", color="#C00000")),
            y_title="hours per user", size=(620, 320), y_format="0.0"))
        charts.append(Chart(
            "scatter", "Revenue per user against hours per user", (chart_top, 9),
            _scatter_series(first, last, col["Hours / user"], col["Revenue / user"], rep.clients),
            x_title="support hours per user", y_title=f"revenue per user ({rep.currency})", size=(620, 320),
            y_format="#,##0"))
    if rep.trend:
        months = (trend_head + 1, 1, trend_last, 1)
        charts.append(Chart(
            "line", "12-month trend: hours and revenue per user", (trend_head - 1, 10),
            (Series("Hours / user", months, (trend_head + 1, 5, trend_last, 5), color="#2E75B6"),
             Series("Revenue / user", months, (trend_head + 1, 7, trend_last, 7), secondary=True, color="#70AD47")),
            y_title="hours per user", y2_title=f"revenue per user ({rep.currency})", size=(620, 300),
            y_format="0.0"))
    last_row = end_row
    widths = tuple((j, w) for j, (_, w, _) in enumerate(REPORT_COLUMNS, start=1))
    return SheetLayout(name=name, cells=tuple(cells), widths=widths, heights=tuple(heights),
                       print_area=(1, 1, last_row, len(REPORT_COLUMNS)), landscape=True, fit_width=1,
                       gridlines=False, charts=tuple(charts), freeze=(top, 1),
                       footer_left=msp.replace("&", "&&"), footer_right="page &P of &N")


PALETTE = ("#2E75B6", "#C55A11", "#70AD47", "#7030A0", "#FFC000", "#5B9BD5", "#A5A5A5", "#264478", "#9E480E",
           "#43682B", "#BF9000", "#C00000")


def _scatter_series(first: int, last: int, x_col: int, y_col: int, clients: Sequence[ClientReport]) -> tuple[Any, ...]:
    """One series per client while the legend can name them (up to 12), else one series labelled by name."""
    from .layout import Series

    if len(clients) <= len(PALETTE):
        return tuple(Series(c.client, (first + i, x_col, first + i, x_col), (first + i, y_col, first + i, y_col),
                            color=PALETTE[i]) for i, c in enumerate(clients))
    return (Series("Clients", (first, x_col, last, x_col), (first, y_col, last, y_col), labels=(first, 1, last, 1),
                   color=PALETTE[0]),)


def write_report(rep: Report, path: str | Path, msp: str = "") -> Path:
    """``report.xlsx``: the Report sheet with its charts, written atomically."""
    import os

    import xlsxwriter

    from .outputs import write_layout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_numbers": False, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    try:
        write_layout(wb, report_layout(rep, msp), {})
        wb.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


__all__ = ["REPORT_SHEET", "Advice", "ClientReport", "Cliff", "Report", "TrendMonth", "Usage", "build_report",
           "report_dict", "report_layout", "robust_z", "volume_cliffs", "write_report"]
