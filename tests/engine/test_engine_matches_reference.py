"""The columnar engine bills exactly what the per-client reference engine bills (``reference_engine``).

Random books mix everything a line depends on: tiers and tier fees, MinUsers, MinFee, Basis=greater and
devices, every ProrationMode (per workbook and per client), both DayCounts, snapshot days, billing in
advance, rounding modes, contracts starting or ending mid-month, joiners and leavers, the same user on
several rows, MinActiveDays, disabled and unknown types, plan overrides, add-ons, overage, discounts, tax,
recorded invoices and late corrections. Every invoice, line (all fields), skipped client and users.csv
reason must be the same.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace as dc_replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import reference_engine as ref
from conftest import memory_book

from perseat_addin.engine import invoicing, seats
from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.engine.pricing import PlanTable
from perseat_addin.model import (
    DEFAULT_USER_TYPES,
    FOREVER,
    SINCE_EVER,
    AddOn,
    Basis,
    BillingTiming,
    Book,
    Client,
    DayCount,
    Line,
    LineKind,
    Period,
    Plan,
    ProrationMode,
    Settings,
    Tiering,
    UserType,
    day_number,
)
from perseat_addin.money import Cents, Rounding

USER_TYPES = (*DEFAULT_USER_TYPES, UserType("Kiosk", "Device", 0, "A kiosk login: billed as a shared device."))  # type: ignore[arg-type]


def _money(rng: random.Random) -> int:
    """A rate in micros: round cents, odd micros that make rounding matter, or next to nothing."""
    return rng.choice([rng.randint(1, 200) * 1_000_000, rng.randint(1, 20_000) * 10_000, rng.randint(1, 99_999_999),
                       rng.randint(0, 6_000)])


def _plan(rng: random.Random, name: str) -> Plan:
    tiering = rng.choice(list(Tiering))
    tiers: tuple[tuple[int | None, int], ...] = ()
    flat: tuple[int, ...] = ()
    if tiering is not Tiering.FLAT:
        bounds = sorted(rng.sample(range(1, 30), rng.randint(1, 3)))
        tiers = (*((b, _money(rng)) for b in bounds), (None, _money(rng)))
        if rng.random() < 0.4:
            flat = tuple(rng.choice([0, 0, _money(rng)]) for _ in tiers)
    hours = rng.random() < 0.4
    return Plan(
        name=name, rate_micros=_money(rng), tiering=tiering, min_users=rng.choice([0, 0, 1, 3, 5]),
        min_fee_micros=rng.choice([0, 0, _money(rng) * 3]), basis=rng.choice(list(Basis)),
        device_rate_micros=rng.choice([0, _money(rng)]),
        included_hours_centi=rng.choice([50, 150]) if hours else None,
        overage_rate_micros=_money(rng) if hours else 0, taxable=rng.random() < 0.8, tiers=tiers, tier_flat=flat,
    )


def _day(rng: random.Random, period: Period, blank: int) -> int:
    """A Start or End: blank, or a day around ``period`` (mostly inside it)."""
    if rng.random() < 0.6:
        return blank
    return day_number(period.first) + rng.randint(-40, period.days + 10)


def random_book(seed: int) -> tuple[Book, dict[str, list[Line]]]:
    """A varied book (seeds that are multiples of 10 are ten times larger) and late corrections."""
    rng = random.Random(seed)
    scale = 10 if seed % 10 == 0 else 1
    period = Period(2026, rng.choice([2, 4, 11, 12]))
    st = Settings(
        period=period, next_invoice_number=rng.randint(1, 999), default_tax_ppm=rng.choice([0, 0, 80_000, 125_000]),
        proration_mode=rng.choice(list(ProrationMode)), day_count=rng.choice(list(DayCount)),
        snapshot_day=rng.choice([None, 1, 15, 31]), billing_timing=rng.choice(list(BillingTiming)),
        rounding=rng.choice(list(Rounding)), payment_terms_days=rng.choice([0, 14, 30]),
    )
    plans = [_plan(rng, f"Plan {i}") for i in range(rng.randint(1, 5))]
    first = day_number(period.first)
    clients = []
    for i in range(rng.randint(1, 8) * scale):
        contract = rng.random() < 0.2
        clients.append(Client(
            name=f"Client {i}", plan=rng.choice(plans).name, row=i + 2, active=rng.random() < 0.9,
            discount_ppm=rng.choice([0, 0, 0, 50_000, 123_456]), tax_ppm=rng.choice([None, None, 0, 55_000]),
            proration_mode=rng.choice([None, None, None, *ProrationMode]),
            payment_terms_days=rng.choice([None, None, 7]),
            start=first + rng.randint(-5, 20) if contract and rng.random() < 0.7 else SINCE_EVER,
            end=first + rng.randint(0, 40) if contract and rng.random() < 0.7 else FOREVER,
        ))
    names = [c.name for c in clients]
    types = [t.name for t in USER_TYPES] + ["Robot"]
    roster: list[dict[str, Any]] = []
    for _ in range(rng.randint(0, 60) * scale):
        client = rng.choice([*names, "Nobody"]) if rng.random() < 0.05 else rng.choice(names)
        start, end = _day(rng, period, SINCE_EVER), _day(rng, period, FOREVER)
        roster.append({
            "client": rng.choice([client, client.upper() + " "]), "user": f"u{rng.randint(1, 40 * scale)}@x",
            "type": rng.choices(types, weights=[20, 3, 3, 2, 1, 1, 1, 1, 3, 1])[0],
            "plan": rng.choice(["", "", "", "", rng.choice(plans).name]),
            "start": start, "end": start - 1 if start != SINCE_EVER and rng.random() < 0.03 else end,
            "status": "disabled" if rng.random() < 0.05 else "active",
        })
    devices = [{"client": rng.choice(names), "device": f"d{rng.randint(1, 10)}", "start": _day(rng, period, SINCE_EVER),
                "end": _day(rng, period, FOREVER)} for _ in range(rng.randint(0, 6) * scale)]
    addons = [AddOn(client=rng.choice(names), description=f"Extra {k}",
                    quantity_micros=rng.choice([1_000_000, 2_500_000]),
                    unit_price_micros=rng.choice([-1, 1]) * _money(rng),
                    per_user=rng.random() < 0.5, start=_day(rng, period, SINCE_EVER), end=_day(rng, period, FOREVER),
                    taxable=rng.random() < 0.5, row=k + 2, once=rng.random() < 0.2)
              for k in range(rng.randint(0, 4) * scale)]
    usage = [{"client": rng.choice(names), "date": first + rng.randint(-20, period.days - 1),
              "hours": Decimal(rng.randint(1, 3000)) / 100, "billable": rng.random() < 0.8}
             for _ in range(rng.randint(0, 10) * scale)]
    book = memory_book(settings=st, plans=plans, clients=clients, roster=roster, devices=devices, addons=addons,
                       usage=usage, user_types=USER_TYPES)
    if rng.random() < 0.3:
        recorded = rng.sample(names, min(2, len(names)))
        book.invoices = pd.DataFrame({"Client": recorded, "Period": [str(period)] * len(recorded),
                                      "Status": [rng.choice(["Sent", "Draft", "Paid"]) for _ in recorded],
                                      "InvoiceNo": [f"INV-{k}" for k in range(len(recorded))]})
    corrections = {rng.choice(names).lower(): [Line(LineKind.CORRECTION, "Late change", Decimal(1), Decimal("-3.17"),
                                                    Cents(rng.choice([-317, 0, 250])))]
                   for _ in range(rng.randint(0, 2))}
    return book, corrections


def canonical(run: Run) -> tuple[Any, ...]:
    """Everything a run bills, as plain values: each invoice's header, total and lines (kind, amount, taxable,
    plan; a plan's seat lines as one, since the engine prints a graduated plan's tiers on lines of their own),
    the skipped clients and the users.csv reasons. Quantities and words are compared by ``same_words``."""
    invoices = [(i.number, i.client, i.period, i.issue_date, i.due_date, i.currency, i.status, i.seats, i.kind,
                 i.corrects, i.reason, i.total_cents, _billed(i.lines)) for i in run.invoices]
    return invoices, run.skipped, run.user_reasons().tolist()


def _billed(lines: tuple[Line, ...]) -> list[tuple[Any, ...]]:
    out: list[list[Any]] = []
    for ln in lines:
        if out and ln.kind == LineKind.SEATS and out[-1][0] == ln.kind and out[-1][3] == ln.plan:
            out[-1][1] += ln.amount_cents
            continue
        out.append([ln.kind, ln.amount_cents, ln.taxable, ln.plan])
    return [tuple(x) for x in out]


_NAMES = re.compile(r" \((?:[^()]|\([^()]*\))*\)(?=, \d+/\d+ days)")


def same_words(got: Run, want: Run) -> None:
    """Every line the engine prints multiplies out; a line the reference printed multiplying out already keeps
    its quantity and unit price; descriptions are the reference's, with the joiners and leavers named and a
    tier price change's monthly prices added."""
    for g, w in zip(got.invoices, want.invoices, strict=True):
        assert all(ln.multiplies_out for ln in g.lines), [ln for ln in g.lines if not ln.multiplies_out]
        if any(ln.kind == LineKind.SEATS for ln in g.lines) and len(g.lines) != len(w.lines):
            continue  # a graduated plan's tiers (their sums compared by ``canonical``)
        for a, b in zip(g.lines, w.lines, strict=True):
            if a.kind == LineKind.SEATS and b.description != a.description:
                continue  # a volume tier's flat fee or a tier line: words of their own
            if b.multiplies_out:
                assert (a.quantity, a.unit_price) == (b.quantity, b.unit_price), (a, b)
            if a.kind == LineKind.ADJUSTMENT:  # its seats in the words of the seat lines (a tier each)
                assert a.description.split(":")[0] == b.description.split(":")[0], (a, b)
                assert a.description.rsplit(", ", 1)[-1] == b.description.rsplit(", ", 1)[-1], (a, b)
                continue
            words = re.sub(r", monthly price .* → .*$", "", _NAMES.sub("", a.description))
            assert words == b.description, (a, b)


@pytest.mark.parametrize("seed", range(120))
def test_engine_matches_reference(seed: int) -> None:
    book, corrections = random_book(seed)
    late = corrections if seed % 3 == 0 else None
    got_run, want_run = invoice_run(book, corrections=late), ref.invoice_run(book, corrections=late)
    got, want = canonical(got_run), canonical(want_run)
    assert got[1] == want[1]
    assert len(got[0]) == len(want[0])
    for g, w in zip(got[0], want[0], strict=True):
        assert g == w
    assert got[2] == want[2]
    same_words(got_run, want_run)


def test_engine_matches_reference_in_every_mode() -> None:
    """The same book priced in each ProrationMode, in arrears and in advance (a client of each mode too)."""
    book, _ = random_book(10)
    for timing in BillingTiming:
        for mode in ProrationMode:
            b = dc_replace(book, settings=dc_replace(book.settings, proration_mode=mode, billing_timing=timing))
            got, want = invoice_run(b), ref.invoice_run(b)
            assert canonical(got) == canonical(want), (mode, timing)
            same_words(got, want)


@pytest.mark.parametrize("seed", range(40))
def test_count_days_matches_reference(seed: int) -> None:
    """Day counts, counted rows and active days, with people on several rows and MinActiveDays."""
    rng = np.random.default_rng(seed)
    n, groups, first, days = int(rng.integers(0, 400)), int(rng.integers(1, 12)), 20_000, int(rng.choice([28, 30, 31]))
    group = rng.integers(-1, groups, n)
    key = np.where(rng.random(n) < 0.3, rng.integers(0, 25, n), -1)
    start = np.where(rng.random(n) < 0.4, SINCE_EVER, first + rng.integers(-30, days + 5, n))
    end = np.where(rng.random(n) < 0.4, FOREVER, first + rng.integers(-5, days + 30, n))
    min_days = rng.choice([0, 0, 5, days + 3], n)
    got = seats.count_days(group, key, start, end, min_days, first, days, groups)
    want = ref.count_days(group, key, start, end, min_days, first, days, groups)
    for field in ("daily", "any_day", "counted", "active_days"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field


def test_seat_price_table_matches_pricing_each_count() -> None:
    """Large seat matrices are priced through a per-plan table: the same prices as pricing each count."""
    rng = random.Random(3)
    plans = [_plan(rng, f"P{i}") for i in range(6)]
    table = PlanTable.build(plans)
    gen = np.random.default_rng(3)
    plan = gen.integers(0, 6, 400)
    count = gen.integers(0, 60, (400, 31))
    assert np.array_equal(table.seat_price(plan, count), ref._seat_prices(plans, plan, count))


def test_distinct_rows_without_overflow() -> None:
    """Distinct rows of columns too wide for one mixed-radix key are still found."""
    gen = np.random.default_rng(5)
    cols = [gen.integers(0, 3, 500) * 2**40, gen.integers(0, 3, 500) * 2**40, gen.integers(-2, 2, 500)]
    first, key = invoicing._distinct(*cols)
    rows = np.stack(cols, axis=1)
    assert len(first) == len(np.unique(rows, axis=0))
    assert np.array_equal(rows[first][key], rows)


def test_the_reference_books_cover_the_cases() -> None:
    """The random books bill seat changes, devices, add-ons, minimums, overage, discounts, tax and credits."""
    kinds: set[str] = set()
    for seed in range(120):
        book, corrections = random_book(seed)
        for inv in invoice_run(book, corrections=corrections).invoices:
            kinds |= {str(ln.kind) for ln in inv.lines}
    assert kinds >= {"seats", "seat-change", "devices", "device-change", "addon", "one-time", "overage", "minimum",
                     "adjustment", "discount", "tax", "correction"}, kinds
