"""Schedule A of a contract (SPEC §11): who counts as a billable user and what they cost, in plain words, from
the same UserTypes, Plans, Tiers and Settings the invoices are priced with.

Every figure is the engine's own: plan charges by :func:`~perseat_addin.engine.pricing.seat_charge`, the
proration example by :func:`~perseat_addin.engine.pricing.prorate`, discount and tax by the invoice's rule. The
schedule is plain data (:class:`Schedule` of :class:`Section` values); ``outputs`` draws it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from perseat_addin.engine.invoicing import discount_and_tax
from perseat_addin.engine.pricing import one_seat_price, prorate, seat_charge
from perseat_addin.engine.quote import closest
from perseat_addin.errors import ArgumentError
from perseat_addin.model import (
    FOREVER,
    SINCE_EVER,
    AddOn,
    Basis,
    Billable,
    BillingTiming,
    Book,
    Client,
    DayCount,
    Period,
    Plan,
    ProrationMode,
    Settings,
    Tiering,
    UserType,
    from_day_number,
)
from perseat_addin.money import fmt_money, fmt_rate, micros_to_decimal, round_div

TITLE = "Schedule A — Billable users and prices"


@dataclass(frozen=True)
class Table:
    """A small table: headers, rows, and each column's kind (text, int, money, rate, pct)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    kinds: tuple[str, ...]
    caption: str = ""  # a line printed above the table


@dataclass(frozen=True)
class Section:
    """A numbered part of the schedule: its heading, paragraphs and tables (``key`` names it for readers)."""

    key: str
    heading: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class Example:
    """A worked example: the month's charge for ``users`` users and ``devices`` shared devices, all month."""

    plan: str
    users: int
    devices: int
    seats: int
    plan_cents: int  # seats, devices and the MinFee top-up: the invoice's subtotal without add-ons
    total_cents: int | None  # after the client's discount and tax (None without a client)


@dataclass(frozen=True)
class ProrationExample:
    """A joiner on ``day`` of a month of ``month_days`` days, with ``seats`` users already billed."""

    plan: str
    seats: int
    day: int
    month_days: int
    period: Period
    share: tuple[int, int]  # r, D
    cents: int


@dataclass(frozen=True)
class Schedule:
    """Schedule A: the header facts and the sections, with the figures tests compare against the engine."""

    title: str
    msp: str
    client: str  # "" for the price list as a whole
    effective: str
    currency: str
    sections: tuple[Section, ...]
    examples: tuple[Example, ...]
    proration: ProrationExample | None


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def user_type_sentence(t: UserType, device_rates: str) -> str:
    """One UserTypes row as a contract sentence."""
    name = t.name.strip()
    definition = f" {_sentence(t.definition)}" if t.definition.strip() else ""
    if t.billable is Billable.YES:
        days = max(t.min_active_days, 1)
        return (f"{_article(name)} {name} is a billable user when active at least {_days(days)} of the "
                f"month.{definition}")
    if t.billable is Billable.DEVICE:
        return (f"{_article(name)} {name} account is not billed as a user: it is billed as a shared device at the "
                f"plan's device rate{device_rates}.{definition}")
    return f"{_article(name)} {name} account is not billed.{definition}"


def _month_of_days(period: Period, days: int) -> Period:
    """The first month from ``period`` on with ``days`` days (a 30-day month for the proration example)."""
    p = period
    for _ in range(12):
        if p.days == days:
            return p
        p = p.next()
    return period


def proration_words(st: Settings, mode: ProrationMode, plan: Plan | None,
                    seats: int) -> tuple[list[str], ProrationExample | None]:
    """How joiners and leavers are charged under ``mode`` and the workbook's DayCount and BillingTiming, with a
    worked example on ``plan`` (the engine's seat-change amount for one more user) when daily."""
    out: list[str] = []
    example = None
    if mode is ProrationMode.DAILY:
        month = _month_of_days(st.period, 30)
        day = 15
        r = month.days - day + 1
        if st.day_count is DayCount.THIRTY:
            out.append("Users who join or leave during a month are charged by the day, counting every month as "
                       "30 days: a user who joins is charged for the days from their first day to the end of the "
                       f"month (at most 30) out of 30. A user who joins on the 15th of a 30-day month is charged "
                       f"{r}/30 of the monthly price; on the 15th of a 31-day month, 17/30.")
        else:
            out.append("Users who join or leave during a month are charged by the day, out of the days in that "
                       f"month: a user who joins on the 15th of a 30-day month is charged {r}/30 of the monthly "
                       "price; on the 15th of a 31-day month, 17/31.")
        out.append("A user who leaves is charged through their last day: a last day on the 20th of a 30-day month "
                   "is credited 10/30 of the monthly price. A client whose users do not change pays exactly the "
                   "monthly price.")
        if plan is not None:
            from_micros = plan_price_micros(plan, seats + 1) - plan_price_micros(plan, seats)
            amount = micros_to_decimal(from_micros)
            cents = prorate(amount, month.first.replace(day=day), None, month.first, st.day_count, st.rounding)
            denom = 30 if st.day_count is DayCount.THIRTY else month.days
            share = (min(r, 30) if st.day_count is DayCount.THIRTY else r, denom)
            example = ProrationExample(plan.name, seats, day, month.days, month, share, cents)
            out.append(f"For example, on the {plan.name} plan with {seats} users, one more user who joins on "
                       f"{month.first.replace(day=day):%B} {day}, {month.year} adds {fmt_rate(from_micros)} a month "
                       f"× {share[0]}/{share[1]} = {fmt_money(cents)} to that month's invoice.")
    elif mode is ProrationMode.SNAPSHOT:
        snap = "the last day" if st.snapshot_day is None else f"day {st.snapshot_day}"
        out.append(f"Each month is charged for the billable users on {snap} of the month, for the whole month; "
                   "users who join or leave on other days do not change that month's charge.")
    elif mode is ProrationMode.PEAK:
        out.append("Each month is charged for the highest number of billable users on any day of the month, for "
                   "the whole month.")
    else:
        out.append("Every billable user active on any day of the month is charged the full monthly price for "
                   "that month, whatever day they join or leave.")
    if st.billing_timing is BillingTiming.ADVANCE:
        out.append("Invoices are issued at the start of each month for that month, charging the users on its "
                   "first day; changes during the month are settled on the next invoice as an adjustment.")
    else:
        out.append("Invoices are issued after each month, for the month just ended (in arrears).")
    return out, example


def plan_price_micros(plan: Plan, seats: int) -> int:
    """The plan's seat price for ``seats`` users (after MinUsers), unrounded (micros)."""
    return one_seat_price(plan, max(seats, plan.min_users))


def tier_table(plan: Plan) -> Table | None:
    """The plan's tiers as a table: From, Up to, Rate, Flat fee (None for a flat plan)."""
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        return None
    rows = []
    lower = 0
    flats = plan.tier_flat or (0,) * len(plan.tiers)
    for (up, rate), flat in zip(plan.tiers, flats, strict=False):
        rows.append((lower + 1, "and up" if up is None else up, micros_to_decimal(rate), micros_to_decimal(flat)))
        lower = up if up is not None else lower
    if not any(plan.tier_flat):
        return Table(("From user", "Up to", "Rate per user"), tuple(r[:3] for r in rows), ("int", "int", "rate"),
                     "The tiers:")
    return Table(("From user", "Up to", "Rate per user", "Flat fee"), tuple(rows), ("int", "int", "rate", "money"),
                 "The tiers:")


def plan_sentences(plan: Plan, currency: str) -> list[str]:
    """The plan's price rules in words."""
    cur = f"{currency} "
    out = []
    if plan.description.strip():
        out.append(_sentence(plan.description))
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        out.append(f"Price: {cur}{fmt_rate(plan.rate_micros)} per billable user per month.")
    elif plan.tiering is Tiering.VOLUME:
        out.append("Price: volume tiers — every user is charged the rate of the tier that the number of users "
                   "reaches (see the table), plus that tier's flat fee.")
    else:
        out.append("Price: graduated tiers — each user is charged the rate of their own tier (the first users at "
                   "the first tier's rate, the next at the second's, and so on), plus the flat fee of every tier "
                   "reached.")
    if plan.min_users:
        out.append(f"Minimum users: at least {plan.min_users} users are charged each month, even when fewer are "
                   "billable.")
    if plan.basis is Basis.GREATER:
        out.append("Basis: the charge counts users or shared devices, whichever is greater; shared devices are not "
                   "charged separately.")
    elif plan.device_rate_micros:
        out.append(f"Shared devices: {cur}{fmt_rate(plan.device_rate_micros)} per device per month.")
    if plan.min_fee_micros:
        out.append(f"Minimum monthly fee: {cur}{fmt_rate(plan.min_fee_micros)}. When the month's recurring charges "
                   "(users, devices and monthly add-ons) come to less, the difference is added as a minimum fee "
                   "adjustment.")
    if plan.included_hours_centi is None:
        out.append("Support hours: unlimited, included in the price.")
    else:
        hours = Decimal(plan.included_hours_centi).scaleb(-2).normalize()
        rate = f"{cur}{fmt_rate(plan.overage_rate_micros)}"
        unit = "hour" if hours == 1 else "hours"
        out.append(f"Support hours: {hours:f} {unit} per billable user per month are included; hours above that "
                   f"are charged at {rate} per hour.")
    out.append("Taxable." if plan.taxable else "Not taxed.")
    return out


def example_counts(plan: Plan) -> list[int]:
    """A few telling user counts: 1, the minimum, each tier's edge and the next user, and 10 and 25."""
    counts = {1, 10, 25}
    if plan.min_users:
        counts.add(plan.min_users)
    if plan.tiering is not Tiering.FLAT:
        for up, _ in plan.tiers:
            if up is not None:
                counts.update({up, up + 1})
    return sorted(c for c in counts if c <= 500)[:8]


def worked_examples(plan: Plan, st: Settings, client: Client | None,
                    extra: Sequence[tuple[int, int]] = ()) -> list[Example]:
    """The plan's monthly charge for a few user counts (and shared devices), by the engine's pricing; with a
    client, also the total after its discount and tax, as its invoice computes them."""
    pairs = [(n, 0) for n in example_counts(plan)] + list(extra)
    out = []
    for users, devices in pairs:
        c = seat_charge(plan, users, devices, st.rounding)
        total = None
        if client is not None:
            subtotal = c.total_cents
            lines = discount_and_tax(subtotal, subtotal if plan.taxable else 0, client, st.default_tax_ppm,
                                      st.rounding)
            total = subtotal + sum(ln.amount_cents for ln in lines)
        out.append(Example(plan.name, users, devices, c.seats, c.total_cents, total))
    return out


def _date(day: int) -> str:
    d = from_day_number(day)
    return f"{d:%B} {d.day}, {d.year}"


def _addon_rows(addons: Sequence[AddOn]) -> Table:
    rows = []
    for a in addons:
        when = ("once, on the invoice of the month it starts" if a.once else "monthly")
        if a.start != SINCE_EVER:
            when += f", from {_date(a.start)}"
        if a.end != FOREVER:
            when += f", through {_date(a.end)}"
        qty = micros_to_decimal(a.quantity_micros)
        rows.append((a.description, when, "Yes" if a.per_user else "No", "Yes" if a.taxable else "No", qty,
                     micros_to_decimal(a.unit_price_micros)))
    return Table(("Add-on", "Billed", "Per user", "Taxable", "Quantity", "Unit price"), tuple(rows),
                 ("text", "text", "text", "text", "num", "rate"))


def find_client(book: Book, name: str) -> Client:
    """The client called ``name`` (any case), or a message naming the nearest."""
    for c in book.clients:
        if c.name.strip().lower() == name.strip().lower():
            return c
    raise ArgumentError(f'there is no client "{name}" in the Clients table'
                        f"{closest(name, (c.name for c in book.clients))}; check the Client column")


def build_schedule(book: Book, client: str | None = None) -> Schedule:
    """Schedule A for ``client`` (its plan, proration, add-ons, discount and tax) or, without one, for the whole
    price list."""
    st = book.settings
    cur = st.currency
    who = find_client(book, client) if client else None
    plans = list(book.plans.values())
    if who is not None:
        own = book.plan(who.plan)
        others = set()
        if "plan" in book.roster and "client" in book.roster:
            mask = book.roster["client"].astype("str").str.strip().str.lower() == who.name.lower()
            others = {str(p).strip().lower() for p in book.roster.loc[mask, "plan"].dropna() if str(p).strip()}
        plans = [own] + [p for p in plans if p.name.lower() in others and p is not own]
    sections: list[Section] = []
    rates = sorted({p.device_rate_micros for p in plans if p.device_rate_micros})
    device_rates = "" if not rates else " (" + ", ".join(f"{cur} {fmt_rate(r)}" for r in rates) + " a month)"
    types = [user_type_sentence(t, device_rates) for t in book.user_types.values()]
    types.append("Only accounts whose Status is Active count; a disabled account is not billed. The same user id "
                 "listed twice for a client is one user.")
    sections.append(Section("users", "Who counts as a billable user", tuple(types)))
    mode = (who.proration_mode if who and who.proration_mode else st.proration_mode)
    first_plan = plans[0] if plans else None
    seats = max(10, first_plan.min_users if first_plan else 0)
    words, pro = proration_words(st, mode, first_plan, seats)
    sections.append(Section("proration", "Joiners and leavers", tuple(words)))
    examples: list[Example] = []
    for plan in plans:
        tables = []
        tiers = tier_table(plan)
        if tiers is not None:
            tables.append(tiers)
        extra = [(3, 6)] if plan.basis is Basis.GREATER or plan.device_rate_micros else []
        ex = worked_examples(plan, st, who, extra)
        examples += ex
        headers = ["Users", "Shared devices", "Seats charged", f"Monthly ({cur})", "Per user"]
        kinds = ["int", "int", "int", "money", "money"]
        if who is not None:
            headers.append("With discount and tax")
            kinds.append("money")
        rows = []
        for e in ex:
            row: list[object] = [e.users, e.devices, e.seats, Decimal(e.plan_cents).scaleb(-2),
                                 Decimal(round_div(e.plan_cents, max(e.users, 1), st.rounding)).scaleb(-2)]
            if who is not None:
                row.append(Decimal(e.total_cents or 0).scaleb(-2))
            rows.append(tuple(row))
        caption = ("Examples, for users (and devices) active all month, before add-ons"
                   + (", then with this client's discount and tax:" if who is not None else ", discount and tax:"))
        tables.append(Table(tuple(headers), tuple(rows), tuple(kinds), caption))
        paragraphs = plan_sentences(plan, cur)
        sections.append(Section(f"plan:{plan.name}", f"Plan: {plan.name}", tuple(paragraphs), tuple(tables)))
    if who is not None:
        addons = [a for a in book.addons if a.client.strip().lower() == who.name.lower()]
        if addons:
            sections.append(Section("addons", "Add-ons", ("Charged in addition to the plan; monthly add-ons "
                                                              "are prorated like users when they start or end "
                                                              "during a month.",), (_addon_rows(addons),)))
        terms = st.payment_terms_days if who.payment_terms_days is None else who.payment_terms_days
        tax = st.default_tax_ppm if who.tax_ppm is None else who.tax_ppm
        money = [f"Discount: {Decimal(who.discount_ppm) / 10000:.4g}% of each invoice's charges before tax."
                 if who.discount_ppm else "Discount: none."]
        money.append(f"Tax: {Decimal(tax) / 10000:.4g}% on taxable charges after discount." if tax
                     else "Tax: none is added.")
        money.append(f"Payment terms: {terms} days from the invoice date. Amounts are in {cur}; each invoice line "
                     "is rounded to the cent once.")
        sections.append(Section("terms", "Discount, tax and payment", tuple(money)))
    else:
        tax = st.default_tax_ppm
        sections.append(Section("terms", "Tax and payment", (
            f"Tax: {Decimal(tax) / 10000:.4g}% on taxable charges after any discount." if tax else
            "Tax: none is added unless the contract says otherwise.",
            f"Payment terms: {st.payment_terms_days} days from the invoice date. Amounts are in {cur}; each "
            "invoice line is rounded to the cent once.")))
    if who is not None and (who.start != SINCE_EVER or who.end != FOREVER):
        since = _date(who.start) if who.start != SINCE_EVER else ""
        until = _date(who.end) if who.end != FOREVER else ""
        effective = (f"Contract from {since}" if since else "Contract") + (f" through {until}" if until else "")
    else:
        effective = f"Effective {_long(st.period.first)}"
    return Schedule(TITLE, st.msp_name, who.name if who else "", effective, cur, numbered(sections),
                    tuple(examples), pro)


def numbered(sections: Sequence[Section]) -> tuple[Section, ...]:
    """Headings numbered in order: 1, 2, then 3.1, 3.2 for the plans, then 4…"""
    out, top, sub = [], 0, 0
    for s in sections:
        plan = s.key.startswith("plan:")
        if not plan or sub == 0:
            top += 1
        sub = sub + 1 if plan else 0
        many = plan and sum(1 for x in sections if x.key.startswith("plan:")) > 1
        out.append(replace(s, heading=f"{top}.{sub} {s.heading}" if many else f"{top}. {s.heading}"))
    return tuple(out)


def _long(d: dt.date) -> str:
    return f"{d:%B} {d.day}, {d.year}"


__all__ = ["TITLE", "Example", "ProrationExample", "Schedule", "Section", "Table",
           "build_schedule", "find_client", "plan_sentences", "proration_words", "tier_table",
           "user_type_sentence", "worked_examples"]
