"""Late roster changes to recorded periods, written as ledgers of a small MSP: November is recorded, then the
roster changes, and December's invoice carries the hand-computed correction (SPEC §4)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perseat_addin.engine.corrections import Billed, billed_by, days_of, pending, runs
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.model import Book, Period
from perseat_addin.money import Micros

NOV, DEC, JAN = Period(2026, 11), Period(2026, 12), Period(2027, 1)
TEAM = [{"Client": "Acme", "UserID": f"u{k}@x", "Start": "2025-01-01"} for k in range(1, 4)]


def ledger(book: Callable[..., Book], roster: list[dict[str, Any]], later: list[dict[str, Any]], *,
           plans: list[dict[str, Any]] | None = None, later_plans: list[dict[str, Any]] | None = None,
           timing: str = "arrears") -> tuple[list[Billed], Book]:
    """November recorded with ``roster``; December's workbook with ``later`` (and ``later_plans``)."""
    plans = plans or [{"Plan": "Std", "Rate": 10}]
    nov = book(roster=roster, plans=plans, settings={"BillingTiming": timing})
    billed = billed_by(invoice_run(nov, NOV))
    dec = book(roster=later, plans=later_plans or plans,
               settings={"BillingPeriod": "2026-12", "BillingTiming": timing})
    return billed, dec


def amounts(book: Book, billed: list[Billed], period: Period = DEC) -> list[tuple[str, int]]:
    return [(c.line.description, c.line.amount_cents) for c in pending(book, billed, period)]


def test_runs_round_trip() -> None:
    days = (12,) * 9 + (11,) * 21
    assert runs(days) == "1-9:12;10-30:11"
    assert days_of("1-9:12;10-30:11", 30) == days
    assert runs((0, 0, 3)) == "3:3" and days_of("", 3) == (0, 0, 0)


def test_a_late_leaver_is_credited_on_the_next_invoice(book) -> None:
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]  # last day Nov 9, reported in December
    billed, dec = ledger(book, TEAM, left)
    # 10.00 × 21/30 days = 7.00 given back
    assert amounts(dec, billed) == [("Correction for November 2026: Std −1 user Nov 10–30 (21/30 days)", -700)]
    run = invoice_run(dec, DEC, corrections={"acme": [c.line for c in pending(dec, billed, DEC)]})
    [inv] = run.invoices
    assert inv.total_cents == 2000 - 700  # December's two users, and November's correction


def test_a_late_joiner_is_charged_on_the_next_invoice(book) -> None:
    joined = [*TEAM, {"Client": "Acme", "UserID": "new@x", "Start": "2026-11-21"}]
    billed, dec = ledger(book, TEAM, joined)
    # 10.00 × 10/30 = 3.33
    assert amounts(dec, billed) == [("Correction for November 2026: Std +1 user Nov 21–30 (10/30 days)", 333)]


def test_a_later_rate_change_never_reprices_the_past(book) -> None:
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]
    billed, dec = ledger(book, TEAM, left, later_plans=[{"Plan": "Std", "Rate": 25}])
    assert [a for _, a in amounts(dec, billed)] == [-700]  # at November's 10.00, not December's 25.00


def test_the_past_minimum_fee_still_holds(book) -> None:
    plans = [{"Plan": "Std", "Rate": 10, "MinFee": 50}]  # 3 × 10 = 30 → topped up to 50
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]
    billed, dec = ledger(book, TEAM, left, plans=plans)
    assert amounts(dec, billed) == [
        ("Correction for November 2026: Std −1 user Nov 10–30 (21/30 days)", -700),
        ("Correction for November 2026: minimum monthly fee adjustment", 700)]  # still 50.00 in all


def test_per_user_add_ons_follow_the_late_leaver(book) -> None:
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]
    addons = [{"Client": "Acme", "Description": "Backup", "UnitPrice": 4, "PerUser": "Yes"}]
    nov = book(roster=TEAM, addons=addons)
    billed = billed_by(invoice_run(nov, NOV))
    dec = book(roster=left, addons=addons, settings={"BillingPeriod": "2026-12"})
    assert amounts(dec, billed) == [
        ("Correction for November 2026: Std −1 user Nov 10–30 (21/30 days)", -700),
        ("Correction for November 2026: add-ons for the users as they now stand", -280)]  # 4.00 × 21/30


def test_no_change_no_correction(book) -> None:
    billed, dec = ledger(book, TEAM, TEAM)
    assert amounts(dec, billed) == []


def test_a_correction_once_recorded_is_not_billed_again(book) -> None:
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]
    billed, dec = ledger(book, TEAM, left)
    found = pending(dec, billed, DEC)
    after = [*billed, *(c.billed for c in found)]
    assert amounts(dec, after, JAN) == []
    # a second change to November is measured against what November has now been billed
    back = [*TEAM[:2], {**TEAM[2], "End": "2026-11-19"}]
    jan = book(roster=back, settings={"BillingPeriod": "2027-01"})
    assert amounts(jan, after, JAN) == [("Correction for November 2026: Std +1 user Nov 10–19 (10/30 days)", 333)]


def test_billing_in_advance_corrects_months_the_adjustment_already_settled(book) -> None:
    # advance: November's invoice billed Nov at day-1 seats and settled October; December's settles November
    nov = book(roster=TEAM, settings={"BillingTiming": "advance"})
    billed = billed_by(invoice_run(nov, NOV))
    dec = book(roster=TEAM, settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"})
    assert amounts(dec, billed) == []  # November is December's own adjustment, not a correction
    billed += billed_by(invoice_run(dec, DEC))
    left = [*TEAM[:2], {**TEAM[2], "End": "2026-11-09"}]
    jan = book(roster=left, settings={"BillingPeriod": "2027-01", "BillingTiming": "advance"})
    assert amounts(jan, billed, JAN) == [("Correction for November 2026: Std −1 user Nov 10–30 (21/30 days)",
                                          -700)]


@pytest.mark.parametrize("end", ["2026-11-09", "2026-11-29"])
def test_a_corrected_month_totals_the_final_roster_priced_at_its_rates(book, end: str) -> None:
    left = [*TEAM[:2], {**TEAM[2], "End": end}]
    billed, dec = ledger(book, TEAM, left)
    corrected = sum(c.line.amount_cents for c in pending(dec, billed, DEC))
    first = sum(b.amount_cents for b in billed if b.plan)
    final = book(roster=left)  # November priced from the start with the final roster
    [inv] = invoice_run(final, NOV).invoices
    assert first + corrected == inv.total_cents


# --------------------------------------------------------------------------
# The ledger property: whatever order late changes arrive in, a client is billed in total what the final
# roster costs, period by period, at each period's recorded rates (within a cent per correction line).

MONTHS = (Period(2026, 10), Period(2026, 11), Period(2026, 12))
CHANGE = st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(1, 28), st.booleans(), st.integers(0, 3))
"""(user, month of the change, its day, a leaver (else a joiner), the month after which it is reported)."""


@given(users=st.integers(1, 5), changes=st.lists(CHANGE, max_size=5),
       rates=st.tuples(*[st.integers(5, 40)] * 3), min_fee=st.sampled_from([0, 0, 60]),
       mode=st.sampled_from(["daily", "daily", "snapshot", "full"]), per_user_addon=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(users=1, changes=[(0, 0, 1, False, 0), (0, 0, 25, True, 1), (1, 0, 26, False, 1)], rates=(5, 5, 5),
         min_fee=0, mode="full", per_user_addon=False)  # a late leaver replaced next day: same daily counts
def test_total_billed_equals_the_final_roster_at_recorded_rates(mem_book, users: int, changes: list[Any],
                                                                rates: tuple[int, ...], min_fee: int,
                                                                mode: str, per_user_addon: bool) -> None:
    from perseat_addin.model import FOREVER, SINCE_EVER, AddOn, Client, Plan, ProrationMode, Settings
    from perseat_addin.money import MICRO

    def roster(known: int) -> list[dict[str, Any]]:
        """The roster once the first ``known`` changes (in arrival order) are typed in."""
        rows = {f"u{k}@x": {"client": "Acme", "user": f"u{k}@x", "start": dt.date(2025, 1, 1)} for k in range(users)}
        for who, month, day, leaver, _ in order[:known]:
            when = dt.date(MONTHS[month].year, MONTHS[month].month, day)
            if leaver and f"u{who}@x" in rows:
                rows[f"u{who}@x"]["end"] = when
            elif not leaver:
                rows[f"j{who}@x"] = {"client": "Acme", "user": f"j{who}@x", "start": when}
        return list(rows.values())

    def book_for(period: Period, known: int, rate: int) -> Book:
        plan = Plan("Std", Micros(rate * MICRO), min_fee_micros=Micros(min_fee * MICRO))
        backup = AddOn("Acme", "Backup", Micros(MICRO), Micros(3 * MICRO), True, SINCE_EVER, FOREVER, True, 2)
        return mem_book(settings=Settings(period=period, next_invoice_number=1), plans=[plan],
                        clients=[Client("Acme", "Std", 2, proration_mode=ProrationMode(mode))],
                        roster=roster(known), addons=[backup] if per_user_addon else [])

    order = sorted(changes, key=lambda c: c[4])
    billed: list[Billed] = []
    total = lines = 0
    for m, period in enumerate([*MONTHS, Period(2027, 1)]):
        known = sum(1 for c in order if c[4] <= m)
        b = book_for(period, known, rates[min(m, 2)])
        found = pending(b, billed, period)
        lines += len(found)
        if m == len(MONTHS):  # January: only what is owed to the recorded months
            total += sum(c.line.amount_cents for c in found)
            break
        run = invoice_run(b, period, corrections={"acme": [c.line for c in found]})
        total += sum(i.total_cents for i in run.invoices)
        numbers = {i.client.name.lower(): i.number for i in run.invoices}
        billed += billed_by(run) + [dataclasses.replace(c.billed, invoice=numbers.get("acme", "")) for c in found
                                    if "acme" in numbers]
        if "acme" not in numbers:  # nothing billed this month: its corrections wait for the next invoice
            lines -= len(found)
    final = 0
    for m, period in enumerate(MONTHS):
        final += sum(i.total_cents for i in invoice_run(book_for(period, len(order), rates[m]), period).invoices)
    assert abs(total - final) <= max(lines, 0) + 0, (total, final, lines)


def test_a_damaged_billed_row_stops_rather_than_bills_a_wrong_correction() -> None:
    from perseat_addin.engine.corrections import read_billed
    from perseat_addin.errors import PerseatError
    from perseat_addin.tables import RawTable

    t = RawTable.of("Billed", [["InvoiceNo", "Client", "Period", "Plan", "Users", "Devices", "Amount", "Rules"],
                               ["HV-1", "Acme", "2026-11", "Std", "1-30:2", "", "ten", "{}"]])
    with pytest.raises(PerseatError, match="Billed row 2: the program's record of what was billed is damaged"):
        read_billed(t)
