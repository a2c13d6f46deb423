"""A prospect's quote (SPEC §11): the monthly and annual cost of N users and D shared devices on one plan or on
every plan side by side, priced by the same rule as SEATCHARGE, with the cheapest plan that fits marked."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from perseat_addin.engine.pricing import SeatCharge, seat_charge
from perseat_addin.errors import ArgumentError
from perseat_addin.model import Basis, Plan, Tiering
from perseat_addin.money import PPM, ZERO_PPM, Ppm, Rounding, fmt_money, fmt_rate, round_div


@dataclass(frozen=True)
class QuoteRow:
    """One plan's price for the prospect; money in cents."""

    plan: Plan
    charge: SeatCharge  # seats, seat, device and MinFee top-up cents: exactly SEATCHARGE's parts
    tax_cents: int
    fits: bool
    note: str  # why this plan is (or is not) the one marked

    @property
    def monthly_cents(self) -> int:
        """The monthly charge before tax (SEATCHARGE)."""
        return self.charge.total_cents

    @property
    def monthly_with_tax_cents(self) -> int:
        return self.monthly_cents + self.tax_cents

    @property
    def annual_cents(self) -> int:
        """Twelve months before tax."""
        return 12 * self.monthly_cents

    @property
    def annual_with_tax_cents(self) -> int:
        return 12 * self.monthly_with_tax_cents


@dataclass(frozen=True)
class Quote:
    """The quote: what was asked, every plan's row in the Plans table's order, and the one marked."""

    prospect: str
    users: int
    devices: int
    tax_ppm: Ppm
    currency: str
    rows: tuple[QuoteRow, ...]
    cheapest: str | None  # plan name of the cheapest row that fits (None when none fits)

    def per_user_cents(self, row: QuoteRow) -> int | None:
        """The effective monthly price per user before tax (None for 0 users)."""
        return None if self.users <= 0 else round_div(row.monthly_cents, self.users, Rounding.HALF_UP)


def closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean "X"?)`` for the nearest of ``choices`` to ``name``, or "" when none is near."""
    names = list(choices)
    lower = {c.lower(): c for c in names}
    key = name.strip().lower()
    near = difflib.get_close_matches(key, list(lower), n=1, cutoff=0.5)
    if not near and key:
        near = [c for c in lower if c.startswith(key) or key in c][:1]  # "Acme" for "Acme Dental Group"
    return f' (did you mean "{lower[near[0]]}"?)' if near else ""


def find_plan(plans: Sequence[Plan], name: str) -> Plan:
    """The plan called ``name`` (any case), or a message naming the nearest and listing the plans."""
    for p in plans:
        if p.name.strip().lower() == name.strip().lower():
            return p
    listed = ", ".join(p.name for p in plans)
    raise ArgumentError(f'there is no plan "{name}" in the Plans table{closest(name, (p.name for p in plans))}; '
                        f"the plans are: {listed}")


def fits(plan: Plan, devices: int) -> tuple[bool, str]:
    """Whether ``plan`` suits a prospect with ``devices`` shared devices, and why not when it does not.

    A ``users`` plan fits anyone (devices, if any, at its DeviceRate); a ``greater`` plan (users or shared
    devices, whichever is more) is made for sites where shared devices matter, so it fits only when there are
    some."""
    if plan.basis is Basis.GREATER and devices <= 0:
        return False, ("billed on the greater of users and shared devices, for sites with shared devices; "
                       "this quote has none")
    return True, ""


def quote(plans: Sequence[Plan], users: int, devices: int = 0, *, tax_ppm: Ppm = ZERO_PPM, currency: str = "USD",
          prospect: str = "", rounding: Rounding = Rounding.HALF_UP) -> Quote:
    """Price ``users`` users and ``devices`` shared devices on each of ``plans`` (the Plans table's order)."""
    if users < 0 or devices < 0:
        raise ArgumentError("users and devices cannot be negative")
    if not plans:
        raise ArgumentError("there are no plans to quote: add a row to the Plans table")
    priced = []
    for p in plans:
        charge = seat_charge(p, users, devices, rounding)
        tax = round_div(tax_ppm * charge.total_cents, PPM, rounding) if p.taxable else 0
        ok, why = fits(p, devices)
        priced.append((p, charge, tax, ok, why))
    fitting = [x for x in priced if x[3]] or (priced if len(priced) == 1 else [])  # --plan: quoted as asked
    best = min(fitting, key=lambda x: x[1].total_cents + x[2], default=None)
    rows = []
    for p, charge, tax, ok, why in priced:
        if best is not None and p is best[0]:
            note = "cheapest plan that fits" if len(priced) > 1 else "the plan quoted"
        elif not ok:
            note = f"not marked: {why}"
        else:
            assert best is not None
            more = charge.total_cents + tax - best[1].total_cents - best[2]
            note = (f"not marked: {fmt_money(more)} a month more than {best[0].name}" if more
                    else f"not marked: costs the same as {best[0].name}, listed first")
        rows.append(QuoteRow(p, charge, tax, ok, note))
    return Quote(prospect, users, devices, tax_ppm, currency, tuple(rows), None if best is None else best[0].name)


def plan_terms(plan: Plan, currency: str = "") -> str:
    """The plan's price in a few words: "95.00 per user", "volume tiers", with its minimums."""
    cur = f"{currency} " if currency else ""
    if plan.tiering is Tiering.FLAT or not plan.tiers:
        text = f"{cur}{fmt_rate(plan.rate_micros)} per user"
    else:
        parts, lower = [], 0
        for up, rate in plan.tiers:
            span = f"{lower + 1}+" if up is None else f"{lower + 1}–{up}"
            parts.append(f"{span} @ {fmt_rate(rate)}")
            lower = up if up is not None else lower
        text = f"{plan.tiering.value} tiers {', '.join(parts)}"
    extras = []
    if plan.min_users:
        extras.append(f"minimum {plan.min_users} users")
    if plan.min_fee_micros:
        extras.append(f"minimum fee {cur}{fmt_rate(plan.min_fee_micros)}")
    if plan.basis is Basis.GREATER:
        extras.append("greater of users and shared devices")
    elif plan.device_rate_micros:
        extras.append(f"devices {cur}{fmt_rate(plan.device_rate_micros)}")
    return text + (f"; {', '.join(extras)}" if extras else "")


__all__ = ["Quote", "QuoteRow", "closest", "find_plan", "fits", "plan_terms", "quote"]
