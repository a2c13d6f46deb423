"""Report advice that adds up (SPEC §9), over random plans, clients and usage (hypothesis).

Every recommendation is re-priced here by the invoice run itself: a book holding only that client, on the
recommended terms, with the same users, devices and hours all month. Its invoice (before tax) must reach the
client's cost to serve ÷ (1 − TargetMargin), computed here from the usage rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.report import ClientReport, build_report, to_places
from perseat_addin.model import Basis, Book, Client, Period, Plan, Settings, Tiering, day_number
from perseat_addin.money import MICRO

PERIOD = Period(2026, 11)
SINCE = day_number(dt.date(2026, 1, 1))
MARGINS = (0, 200_000, 350_000, 500_000, 600_000)
STEPS = (None, MICRO // 100, MICRO, 5 * MICRO)


def examples(n: int) -> Any:
    scale = int(os.environ.get("PERSEAT_EXAMPLES_SCALE", "1"))
    return settings(max_examples=n * scale, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def plans(draw: st.DrawFn) -> list[Plan]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        tiering = draw(st.sampled_from(list(Tiering)))
        tiers: tuple[tuple[int | None, int], ...] = ()
        if tiering is not Tiering.FLAT:
            bounds = sorted(draw(st.sets(st.integers(1, 20), min_size=1, max_size=3)))
            rates = draw(st.lists(st.integers(5, 150), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
            tiers = tuple(zip([*bounds, None], [r * MICRO for r in rates], strict=True))
        included = draw(st.sampled_from([None, 50, 100, 200, 300]))
        out.append(Plan(
            f"P{i}", draw(st.integers(1, 200)) * MICRO, tiering, draw(st.integers(0, 5)),
            draw(st.sampled_from([0, 50, 250, 600])) * MICRO, draw(st.sampled_from(list(Basis))),
            draw(st.sampled_from([0, 10, 35])) * MICRO, included,
            draw(st.sampled_from([0, 45, 95])) * MICRO if included is not None else 0, tiers=tiers))
    return out


@st.composite
def books(draw: st.DrawFn, mem_book: Callable[..., Book]) -> Book:
    listed = draw(plans())
    st_ = Settings(PERIOD, 1, labor_cost_per_hour_micros=draw(st.integers(20, 120)) * MICRO,
                   target_margin_ppm=draw(st.sampled_from(MARGINS)), price_step_micros=draw(st.sampled_from(STEPS)))
    clients, roster, devices, usage = [], [], [], []
    for i in range(draw(st.integers(1, 7))):
        name = f"C{i}"
        clients.append(Client(name, draw(st.sampled_from(listed)).name, i + 2,
                              discount_ppm=draw(st.sampled_from([0, 0, 50_000, 250_000]))))
        roster += [{"client": name, "user": f"u{k}@c{i}", "start": SINCE} for k in range(draw(st.integers(0, 14)))]
        devices += [{"client": name, "device": f"d{k}", "start": SINCE} for k in range(draw(st.integers(0, 6)))]
        for day in draw(st.lists(st.integers(1, 30), max_size=3)):
            usage.append({"client": name, "date": dt.date(2026, 11, day), "hours": draw(st.integers(0, 3000)) / 100,
                          "billable": draw(st.booleans())})
        usage.append({"client": name, "date": dt.date(2026, 10, 5), "hours": draw(st.integers(0, 2000)) / 100})
    return mem_book(settings=st_, plans=listed, clients=clients, roster=roster, devices=devices, usage=usage)


def _hours(book: Book, client: str) -> tuple[Fraction, Fraction]:
    """All and billable hours of ``client`` in the period, from the usage rows."""
    u = book.usage
    first = day_number(PERIOD.first)
    rows = u[(u["client"] == client) & (u["date"] >= first) & (u["date"] < first + PERIOD.days)]
    every = Fraction(int(rows["hours_centi"].sum()), 100)
    billable = Fraction(int(rows.loc[rows["billable"], "hours_centi"].sum()), 100)
    return every, billable


def _invoiced(book: Book, c: ClientReport, mem_book: Callable[..., Book]) -> int:
    """Cents before tax that the invoice run bills ``c`` for a month on its recommended terms."""
    rec = c.recommendation
    assert rec is not None and rec.terms is not None
    client = next(x for x in book.clients if x.name == c.client)
    others = [p for p in book.plans.values() if p.name.lower() != rec.terms.name.lower()]
    u = book.usage
    rows = u[u["client"] == c.client]
    alone = mem_book(
        settings=book.settings, plans=[*others, rec.terms],
        clients=[dataclasses.replace(client, plan=rec.terms.name)],
        roster=[{"client": c.client, "user": f"u{k}", "start": SINCE} for k in range(rec.users)],
        devices=[{"client": c.client, "device": f"d{k}", "start": SINCE} for k in range(rec.devices)],
        usage=[{"client": c.client, "date": int(d), "hours": h / 100, "billable": bool(b)}
               for d, h, b in zip(rows["date"], rows["hours_centi"], rows["billable"], strict=True)])
    [inv] = invoice_run(alone, PERIOD).invoices
    return inv.subtotal_cents + inv.discount_cents


@given(data=st.data())
@examples(40)
def test_every_recommendation_covers_the_cost_at_the_target_margin(mem_book: Callable[..., Book],
                                                                  data: st.DataObject) -> None:
    book = data.draw(books(mem_book))
    rep = build_report(book)
    s = book.settings
    cph = Fraction(s.labor_cost_per_hour_micros or 0, MICRO)
    margin = Fraction(s.target_margin_ppm or 0, 1_000_000)
    for c in rep.clients:
        recommendations = [a for a in c.advice if not a.observation]
        assert len(recommendations) == 1, c.advice  # one recommendation per client, never two
        rec = c.recommendation
        assert rec is not None and rec.kind == recommendations[0].kind
        every, billable = _hours(book, c.client)
        needed = every * cph / (1 - margin)
        assert rec.needed_cents == math.ceil(needed * 100) and rec.billable_centi == billable * 100
        current = book.plan(c.plan)
        if rec.kind == "none":
            # users, devices and hours are the same all month here: nothing to do means today's revenue covers it
            assert c.period.revenue_cents >= rec.needed_cents and rec.terms is None
            continue
        assert rec.terms is not None
        assert rec.terms.basis is current.basis  # never a plan of another Basis
        if rec.kind == "plan":
            assert c.plan_advice == rec.terms.name != current.name and book.plan(rec.terms.name) == rec.terms
        got = _invoiced(book, c, mem_book)
        assert got == rec.revenue_cents and Fraction(got, 100) >= needed, (c.client, rec.reason)
        assert c.period.revenue_cents < rec.needed_cents  # advice only where today's revenue falls short
    for c in rep.clients:
        for a in c.observations:
            if a.kind == "floor":  # a floor is labelled as one, and only shown below what the client pays
                assert a.label.startswith(f"price floor {a.value} (pays ")
                assert c.floor is not None and c.period.revenue_per_user is not None
                assert c.floor < c.period.revenue_per_user
        if c.floor is not None and c.period.revenue_per_user is not None and \
                c.floor < to_places(c.period.revenue_per_user):
            assert any(a.kind == "floor" for a in c.observations)
