"""SPEC §11: every printed line's Quantity × UnitPrice gives its Amount, and joiners and leavers are named.

The template's invoices, and random books (``random_book`` of the oracle test) in every ProrationMode, DayCount,
Rounding and BillingTiming, with late corrections and credit notes: every line multiplies out (within half a
cent, so any reader's rounding gives the amount) and each total is the sum of its lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_matches_reference import random_book

from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.ledger import credit_note
from perseat_addin.model import BillingTiming, DayCount, DocKind, Invoice, Line, LineKind, ProrationMode, fitted
from perseat_addin.money import Cents, Rounding, factor_for, factor_for_micros, micros_to_decimal
from perseat_addin.outputs.accounting import quickbooks_csv, xero_csv
from perseat_addin.workbook.load import load

TEMPLATE = Path(__file__).resolve().parents[2] / "workbook_template.xlsm"


def _check(inv: Invoice) -> None:
    bad = [ln for ln in inv.lines if not ln.multiplies_out]
    assert not bad, (inv.number, bad)
    assert inv.total_cents == sum(ln.amount_cents for ln in inv.lines)


def test_the_template_invoices_multiply_out_and_name_who_changed() -> None:
    run = invoice_run(load(TEMPLATE))
    for inv in run.invoices:
        _check(inv)
    acme = next(i for i in run.invoices if i.client.name == "Acme Dental Group")
    changes = [(ln.description, ln.quantity, ln.unit_price, ln.amount) for ln in acme.lines
               if ln.kind == LineKind.SEAT_CHANGE]
    assert changes == [
        ("Standard +2 users from Nov 15 (Ava Martin, Noah Bell), 16/30 days", Decimal("1.0666"), 95,
         Decimal("101.33")),
        ("Standard −1 user from Nov 21 (Peter Lang), 10/30 days", Decimal("-0.3334"), 95, Decimal("-31.67"))]
    addon = next(ln for ln in acme.lines if ln.kind == LineKind.ADDON)
    assert (addon.quantity, addon.unit_price, addon.amount) == (Decimal("11.7325"), 4, Decimal("46.93"))
    moved = {(c.name, c.plan, c.day, c.joined) for c in run.user_changes(acme)}
    assert moved == {("Ava Martin", "Standard", dt.date(2026, 11, 15), True),
                     ("Noah Bell", "Standard", dt.date(2026, 11, 15), True),
                     ("Peter Lang", "Standard", dt.date(2026, 11, 20), False)}
    delta = next(i for i in run.invoices if i.client.name == "Delta Pediatrics")  # graduated: a line per tier
    assert [(ln.quantity, ln.unit_price, ln.amount_cents) for ln in delta.lines if ln.kind == LineKind.SEATS] == [
        (5, 70, 35000), (4, Decimal("62.5"), 25000)]


def test_the_accounting_files_carry_quantities_that_give_the_amount() -> None:
    """QuickBooks and Xero recompute amount = quantity × unit price: the files carry values that give it back."""
    run = invoice_run(load(TEMPLATE))
    for text, qty, unit, amount in ((quickbooks_csv(run), "ItemQuantity", "ItemRate", "ItemAmount"),
                                    (xero_csv(run), "*Quantity", "*UnitAmount", None)):
        import csv
        import io
        rows = list(csv.DictReader(io.StringIO(text)))
        assert any(r[qty] == "1.0666" for r in rows)
        for r in rows:
            q, u = Decimal(r[qty]), Decimal(r[unit])
            assert max(-q.as_tuple().exponent, -u.as_tuple().exponent) <= 4  # type: ignore[operator]
            if amount:
                assert abs(q * u - Decimal(r[amount])) < Decimal("0.005"), r


def test_many_changes_on_a_line_point_to_the_user_list(bill) -> None:
    roster = [{"UserID": f"u{k}@x"} for k in range(3)]
    roster += [{"UserID": f"n{k}@x", "Name": f"New {k}", "Start": "2026-11-10"} for k in range(12)]
    run = bill(roster=roster)
    (inv,) = run.invoices
    (change,) = [ln for ln in inv.lines if ln.kind == LineKind.SEAT_CHANGE]
    assert "+12 users from Nov 10 (12 users, listed on the attached user list), 21/30 days" in change.description
    assert sorted(c.name for c in run.user_changes(inv)) == sorted(f"New {k}" for k in range(12))


def test_a_join_and_a_leave_the_same_day_name_both(bill) -> None:
    roster = [{"UserID": "a@x"}, {"UserID": "b@x", "Start": "2026-11-10"}, {"UserID": "c@x", "Start": "2026-11-10"},
              {"UserID": "d@x", "End": "2026-11-09"}]
    (inv,) = bill(roster=roster).invoices
    (change,) = [ln for ln in inv.lines if ln.kind == LineKind.SEAT_CHANGE]
    assert "+1 user from Nov 10 (joined: b@x, c@x; left: d@x), 21/30 days" in change.description


@given(st.integers(-10**12, 10**12) | st.integers(-200, 200), st.integers(-10**12, 10**12) | st.integers(-10**6, 10**6))
@settings(max_examples=500, deadline=None)
def test_factor_for_micros_is_factor_for_in_integers(cents: int, micros: int) -> None:
    """The integer path the engine takes for seat changes gives the very number (and its printed form)."""
    want = factor_for(cents, micros_to_decimal(micros)) if micros else None
    got = factor_for_micros(cents, micros)
    assert str(got) == str(want)


def test_factor_for_large_prices_adds_decimals() -> None:
    """round(A/P, 4) can miss for a large unit price: a decimal more is taken."""
    q = factor_for(12345, Decimal("987654.321"))
    assert q is not None and abs(q * Decimal("987654.321") - Decimal("123.45")) < Decimal("0.005")
    assert factor_for(10133, Decimal(95)) == Decimal("1.0666")
    assert factor_for(4693, Decimal(4)) == Decimal("11.7325")  # exact in 4 decimals: itself
    tie = fitted(Line(LineKind.SEATS, "1 user × 0.005", Decimal(1), Decimal("0.005"), Cents(1)))
    assert tie.quantity == 1 and tie.multiplies_out  # a count keeps its quantity; the unit price gives way


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(1, 10_000), mode=st.sampled_from(list(ProrationMode)), days=st.sampled_from(list(DayCount)),
       rounding=st.sampled_from(list(Rounding)), timing=st.sampled_from(list(BillingTiming)),
       late=st.booleans(), credit=st.sampled_from(["all", "line", "amount"]))
def test_random_books_multiply_out(seed: int, mode: ProrationMode, days: DayCount, rounding: Rounding,
                                   timing: BillingTiming, late: bool, credit: str) -> None:
    book, corrections = random_book(seed * 10 + 1)  # never the ten-times-larger books: keeps examples quick
    book = dataclasses.replace(book, settings=dataclasses.replace(
        book.settings, proration_mode=mode, day_count=days, rounding=rounding, billing_timing=timing))
    run = invoice_run(book, corrections=corrections if late else None)
    for inv in run.invoices:
        _check(inv)
        if inv.kind is not DocKind.INVOICE or inv.total_cents <= 0:
            continue
        charges = [k for k, ln in enumerate(inv.lines, 1) if ln.kind not in (LineKind.DISCOUNT, LineKind.TAX)
                   and ln.amount_cents > 0]
        try:
            note = credit_note(inv, "CN-1", inv.issue_date, "test", rounding=rounding,
                               lines=charges[:1] if credit == "line" else (),
                               amount_cents=min(inv.total_cents, 1234) if credit == "amount" else None)
        except Exception:
            continue
        _check(note)
