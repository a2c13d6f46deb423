"""SPEC §4 pricing rules, each as a small roster scenario priced end to end (workbook → load → invoice).

Amounts are integer cents. The public worked examples of §4 come first and must
hold exactly.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from conftest import only, users
from hypothesis import given, settings
from hypothesis import strategies as st

from perseat_addin.engine.advice import recommend_price
from perseat_addin.engine.invoicing import Run
from perseat_addin.engine.measures import per_user
from perseat_addin.engine.pricing import PlanTable, day_weights, one_seat_price, price
from perseat_addin.model import DayCount, Invoice, Period, Plan, Tiering
from perseat_addin.money import MICRO


def invoice_of(run: Run, client: str) -> Invoice:
    (inv,) = [i for i in run.invoices if i.client.name == client]
    return inv


def cents(inv: Invoice, *kinds: str) -> int:
    """Sum of the invoice's lines of ``kinds``."""
    return sum(ln.amount_cents for ln in inv.lines if ln.kind in kinds)


def amounts(inv: Invoice, kind: str) -> list[int]:
    return [ln.amount_cents for ln in inv.lines if ln.kind == kind]


def kinds(inv: Invoice) -> list[str]:
    return [ln.kind for ln in inv.lines]


SEATS = ("seats", "seat-change")
TIERS = [{"Plan": "Tiered", "UpTo": 5, "Rate": 7}, {"Plan": "Tiered", "UpTo": 10, "Rate": 6.5},
         {"Plan": "Tiered", "Rate": 6}]
TIER_TABLE = ((5, 7 * MICRO), (10, 6_500_000), (None, 6 * MICRO))


# --------------------------------------------------------------------------
# SPEC §4 public worked examples


@pytest.mark.parametrize(("tiering", "seats", "expected"), [
    (Tiering.VOLUME, 6, 3900), (Tiering.VOLUME, 25, 15000),
    (Tiering.GRADUATED, 6, 4150), (Tiering.GRADUATED, 25, 15750),
])
def test_worked_example_tiers_price_function(tiering: Tiering, seats: int, expected: int) -> None:
    plan = Plan("Tiered", 7 * MICRO, tiering, tiers=TIER_TABLE)
    billed, charge, devices = price(plan, seats)
    assert (billed, charge, devices) == (seats, expected * 10_000, 0)


@pytest.mark.parametrize(("tiering", "seats", "expected"), [
    (Tiering.VOLUME, 6, 3900), (Tiering.VOLUME, 25, 15000),
    (Tiering.GRADUATED, 6, 4150), (Tiering.GRADUATED, 25, 15750),
])
def test_worked_example_tiers_on_invoice(bill, tiering: Tiering, seats: int, expected: int) -> None:
    run = bill(plans=[{"Plan": "Tiered", "Rate": 7, "Tiering": tiering.value}], tiers=TIERS, roster=users(seats))
    inv = only(run)
    assert set(kinds(inv)) == {"seats"}  # graduated: a line per tier reached
    assert inv.total_cents == expected
    assert all(ln.multiplies_out for ln in inv.lines)


@pytest.mark.parametrize(("seats", "volume", "graduated"), [
    (0, 0, 0), (1, 700, 700), (5, 3500, 3500), (10, 6500, 6750), (11, 6600, 7350),
])
def test_tier_boundaries_are_inclusive_upper_bounds(seats: int, volume: int, graduated: int) -> None:
    vol = Plan("V", 7 * MICRO, Tiering.VOLUME, tiers=TIER_TABLE)
    grad = Plan("G", 7 * MICRO, Tiering.GRADUATED, tiers=TIER_TABLE)
    assert price(vol, seats)[1] == volume * 10_000
    assert price(grad, seats)[1] == graduated * 10_000


FLAT_TIERS = [{"Plan": "Flat", "UpTo": 2, "Rate": 5, "FlatFee": 100}, {"Plan": "Flat", "Rate": 1, "FlatFee": 10}]


@pytest.mark.parametrize(("tiering", "seats", "expected"), [
    ("graduated", 12, 13000),  # SPEC §4: 100 + 10 + 2 × 5 + 10 × 1
    ("graduated", 2, 11000),  # only the first tier entered: 100 + 2 × 5
    ("volume", 12, 2200),  # the tier reached: 12 × 1 + 10
    ("volume", 2, 11000),  # 2 × 5 + 100
])
def test_tier_flat_fees_on_invoice(bill, tiering: str, seats: int, expected: int) -> None:
    run = bill(plans=[{"Plan": "Flat", "Rate": 5, "Tiering": tiering}], tiers=FLAT_TIERS, roster=users(seats))
    inv = only(run)
    assert inv.total_cents == expected
    fee = [ln for ln in inv.lines if "flat fee" in ln.description]  # a tier's flat fee: a line of its own
    assert len(fee) == (2 if (tiering, seats) == ("graduated", 12) else 1)
    assert all(ln.quantity == 1 and ln.multiplies_out for ln in fee)
    assert all(ln.multiplies_out for ln in inv.lines)


def test_no_seats_no_tier_fee() -> None:
    plan = Plan("G", 5 * MICRO, Tiering.GRADUATED, tiers=((2, 5 * MICRO), (None, MICRO)),
                tier_flat=(100 * MICRO, 10 * MICRO))
    assert price(plan, 0)[1] == 0
    assert price(plan, 12)[1] == 130 * MICRO


@pytest.mark.parametrize(("day_count", "expected"), [("thirty", 733), ("actual", 710)])
def test_worked_example_user_added_july_10(bill, day_count: str, expected: int) -> None:
    run = bill(settings={"BillingPeriod": "2026-07", "DayCount": day_count},
               roster=[{"UserID": "new@x", "Start": "2026-07-10"}])
    inv = only(run)
    assert kinds(inv) == ["seat-change"]
    assert inv.total_cents == expected


@pytest.mark.parametrize(("rounding", "expected"), [("half-up", 667), ("down", 666)])
def test_worked_example_20_of_30_days_joiner(bill, rounding: str, expected: int) -> None:
    """Active Nov 11–30: 10.00 × 20/30 = 6.666…"""
    run = bill(settings={"Rounding": rounding}, roster=[{"UserID": "new@x", "Start": "2026-11-11"}])
    assert only(run).total_cents == expected


@pytest.mark.parametrize(("rounding", "expected"), [
    ("half-up", 667),
    ("down", 666),
])
def test_worked_example_20_of_30_days_leaver(bill, rounding: str, expected: int) -> None:
    """Active Nov 1–20 (End = Nov 20): the same 20 of 30 days as the joiner, the same price."""
    run = bill(settings={"Rounding": rounding}, roster=[{"UserID": "gone@x", "End": "2026-11-20"}])
    assert only(run).total_cents == expected


def test_worked_example_minimum_fee(bill) -> None:
    """Base 50 + 3 users × 10 = 80 with MinFee 100 → a 20.00 adjustment, total 100.00."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinFee": 100}], roster=users(3),
               addons=[{"Description": "Base", "UnitPrice": 50}])
    inv = only(run)
    assert cents(inv, *SEATS) == 3000
    assert amounts(inv, "addon") == [5000]
    (minimum,) = [ln for ln in inv.lines if ln.kind == "minimum"]
    assert minimum.description == "Minimum monthly fee adjustment"
    assert minimum.amount_cents == 2000
    assert inv.total_cents == 10000


# --------------------------------------------------------------------------
# Minimums


def test_minimum_fee_not_added_when_recurring_charges_reach_it(bill) -> None:
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinFee": 100}], roster=users(3),
               addons=[{"Description": "Base", "UnitPrice": 70}])
    inv = only(run)
    assert "minimum" not in kinds(inv)
    assert inv.total_cents == 10000


def test_minimum_fee_ignores_overage(bill) -> None:
    """MinFee compares recurring charges (seats, devices, add-ons); overage is on top."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinFee": 100, "IncludedHours": 1, "OverageRate": 50}],
               roster=users(3), usage=[{"Date": "2026-11-05", "Hours": 5}])
    inv = only(run)
    assert amounts(inv, "overage") == [10000]
    assert amounts(inv, "minimum") == [7000]
    assert inv.total_cents == 20000


def test_min_users_pads_seats(bill) -> None:
    """3 users on a MinUsers-5 plan pay 5 seats; a joiner inside the minimum changes nothing."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 5}],
               roster=[*users(3), {"UserID": "fourth@x", "Start": "2026-11-16"}])
    inv = only(run)
    assert [(ln.kind, ln.quantity, ln.amount_cents) for ln in inv.lines] == [("seats", 5, 5000)]


def test_min_users_only_the_seats_above_the_minimum_are_prorated(bill) -> None:
    """4 users, MinUsers 5; 3 more from Nov 21 → 7 seats: +2 seats × 10 × 10/30."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 5}],
               roster=users(4) + users(3, "late", Start="2026-11-21"))
    inv = only(run)
    assert amounts(inv, "seats") == [5000]
    assert amounts(inv, "seat-change") == [667]
    assert inv.total_cents == 5667


# --------------------------------------------------------------------------
# Devices and Basis


@pytest.mark.parametrize(("n_users", "expected"), [(3, 5000), (5, 5000), (6, 6000)])
def test_basis_greater_bills_the_greater_of_users_and_devices(bill, n_users: int, expected: int) -> None:
    run = bill(plans=[{"Plan": "Floor", "Rate": 10, "Basis": "greater", "DeviceRate": 4}],
               roster=users(n_users), devices=[{"DeviceID": f"KIOSK-{i}"} for i in range(5)])
    inv = only(run)
    assert kinds(inv) == ["seats"]  # devices are not billed separately under Basis=greater
    assert inv.total_cents == expected


def test_basis_greater_after_min_users(bill) -> None:
    """s = max(max(n, MinUsers), devices): MinUsers 4, 2 users, 3 devices → 4 seats."""
    run = bill(plans=[{"Plan": "Floor", "Rate": 10, "MinUsers": 4, "Basis": "greater"}],
               roster=users(2), devices=[{"DeviceID": f"K{i}"} for i in range(3)])
    assert only(run).total_cents == 4000


def test_device_rate_bills_devices_rows_and_device_type_users(bill) -> None:
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "DeviceRate": 4}],
               user_types=[{"Type": "Employee", "Billable": "Yes"}, {"Type": "Kiosk", "Billable": "Device"}],
               roster=[*users(3), {"UserID": "kiosk-login", "Type": "Kiosk"}],
               devices=[{"DeviceID": "PC-1"}, {"DeviceID": "PC-2", "Start": "2026-11-16"},
                        {"DeviceID": "PC-3", "End": "2026-10-31"}])
    inv = only(run)
    assert cents(inv, *SEATS) == 3000  # the Device-type user is not a seat
    assert amounts(inv, "devices") == [800]  # PC-1 and the kiosk login from day 1
    assert amounts(inv, "device-change") == [200]  # PC-2 from Nov 16: 4 × 15/30
    assert inv.total_cents == 4000


def test_shared_login_is_not_billed_as_a_user(bill) -> None:
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "DeviceRate": 4}],
               roster=[*users(2), {"UserID": "frontdesk@x", "Type": "Shared"}],
               devices=[{"DeviceID": "FD-PC"}])
    inv = only(run)
    assert cents(inv, *SEATS) == 2000
    assert amounts(inv, "devices") == [400]


# --------------------------------------------------------------------------
# Plan groups


def test_roster_plan_override_is_priced_under_its_own_plan(bill) -> None:
    run = bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Premium", "Rate": 25}],
               roster=[*users(2), {"UserID": "boss@x", "Plan": "Premium"}])
    inv = only(run)
    assert [(ln.quantity, ln.unit_price, ln.amount_cents) for ln in inv.lines] == [(2, 10, 2000), (1, 25, 2500)]
    assert "Premium" in inv.lines[1].description


def test_roster_plan_override_with_tiers_uses_that_plans_tiers(bill) -> None:
    """Seats of the override plan are tiered on their own count, not the client's."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Tiered", "Rate": 7, "Tiering": "graduated"}],
               tiers=TIERS, roster=users(4) + users(6, "t", Plan="Tiered"))
    inv = only(run)
    assert amounts(inv, "seats") == [4000, 3500, 650]  # Tiered: 5 × 7.00 + 1 × 6.50


def test_min_users_padding_goes_to_the_clients_own_plan(bill) -> None:
    """MinUsers 5 counts all the client's users; the 2 padding seats are Std seats."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 5}, {"Plan": "Premium", "Rate": 25}],
               roster=[*users(2), {"UserID": "boss@x", "Plan": "Premium"}])
    inv = only(run)
    assert [(ln.quantity, ln.amount_cents) for ln in inv.lines] == [(4, 4000), (1, 2500)]


def test_plan_override_joiner_moves_padding(bill) -> None:
    """A Premium user from Nov 16 takes one Std padding seat away from that day on."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 5}, {"Plan": "Premium", "Rate": 25}],
               roster=[*users(2), {"UserID": "boss@x", "Plan": "Premium", "Start": "2026-11-16"}])
    inv = only(run)
    assert amounts(inv, "seats") == [5000]
    assert sorted(amounts(inv, "seat-change")) == [-500, 1250]
    assert inv.total_cents == 5750


@pytest.mark.parametrize(("old", "new"), [("", "Premium"), ("Premium", "")])
def test_plan_change_mid_month_is_prorated_between_the_plans(bill, old: str, new: str) -> None:
    """Same UserID on a new row with another Plan from Nov 15: each plan charges its own days.

    Expected as for two different people: the base user 10.00, plus Std for Nov 1–14 or 15–30 and
    Premium for the rest — 10.00 + 10.00 × 14/30 + 25.00 × 16/30 (upgrade) = 28.00.
    """
    run = bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Premium", "Rate": 25}],
               roster=[{"UserID": "base@x"}, {"UserID": "mover@x", "Plan": old, "End": "2026-11-14"},
                       {"UserID": "mover@x", "Plan": new, "Start": "2026-11-15"}])
    # 25 × 14/30 + 10 × 16/30 = 11.67 + 5.33 for the downgrade
    assert only(run).total_cents == (1000 + 467 + 1333 if new == "Premium" else 1000 + 1167 + 533)


# --------------------------------------------------------------------------
# Proration modes: 3 steady users, one leaves after Nov 10, two join Nov 20.
# Seats: Nov 1–10: 4, Nov 11–19: 3, Nov 20–30: 5; anyone active in Nov: 6.

MOVES = [*users(3), {"UserID": "leaver@x", "End": "2026-11-10"}, *users(2, "new", Start="2026-11-20")]


@pytest.mark.parametrize(("settings", "expected"), [
    ({"ProrationMode": "daily"}, 4000 - 667 + 733),
    ({"ProrationMode": "snapshot"}, 4000),  # SnapshotDay defaults to 1
    ({"ProrationMode": "snapshot", "SnapshotDay": 15}, 3000),
    ({"ProrationMode": "snapshot", "SnapshotDay": "last"}, 5000),
    ({"ProrationMode": "snapshot", "SnapshotDay": 31}, 5000),  # beyond Nov 30: the last day
    ({"ProrationMode": "peak"}, 5000),
    ({"ProrationMode": "full"}, 6000),
])
def test_proration_modes(bill, settings: dict[str, Any], expected: int) -> None:
    inv = only(bill(settings=settings, roster=MOVES))
    assert inv.total_cents == expected
    if settings["ProrationMode"] != "daily":
        assert kinds(inv) == ["seats"]


def test_daily_proration_lines(bill) -> None:
    inv = only(bill(roster=MOVES))
    assert [(ln.kind, ln.quantity, ln.amount_cents) for ln in inv.lines] == [
        ("seats", 4, 4000), ("seat-change", Decimal("-0.667"), -667), ("seat-change", Decimal("0.733"), 733)]


def test_snapshot_last_day_in_february(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-02", "ProrationMode": "snapshot", "SnapshotDay": "last"},
                    roster=[*users(2), {"UserID": "late@x", "Start": "2026-02-28"}]))
    assert inv.total_cents == 3000


def test_peak_with_tiers_prices_the_peak_count(bill) -> None:
    """Peak 6 seats on a volume plan → 6 × 6.50, even though most days had 5."""
    inv = only(bill(settings={"ProrationMode": "peak"},
                    plans=[{"Plan": "Tiered", "Rate": 7, "Tiering": "volume"}], tiers=TIERS,
                    roster=[*users(5), {"UserID": "temp@x", "Start": "2026-11-10", "End": "2026-11-12"}]))
    assert inv.total_cents == 3900


def test_client_proration_mode_overrides_settings(bill) -> None:
    roster = [{"Client": c, "UserID": "stays@x"} for c in ("Full", "Snap", "Default")]
    roster += [{"Client": c, "UserID": "left@x", "End": "2026-11-10"} for c in ("Full", "Snap", "Default")]
    roster += [{"Client": c, "UserID": "late@x", "Start": "2026-11-25"} for c in ("Full", "Snap", "Default")]
    run = bill(settings={"ProrationMode": "daily", "SnapshotDay": 15},
               clients=[{"Client": "Full", "Plan": "Std", "ProrationMode": "full"},
                        {"Client": "Snap", "Plan": "Std", "ProrationMode": "snapshot"},
                        {"Client": "Default", "Plan": "Std"}],
               roster=roster)
    assert invoice_of(run, "Full").total_cents == 3000
    assert invoice_of(run, "Snap").total_cents == 1000
    # daily: 2 seats, −1 from Nov 11 (20/30), +1 from Nov 25 (6/30)
    assert invoice_of(run, "Default").total_cents == 2000 - 667 + 200


def test_full_mode_with_min_users_and_duplicates(bill) -> None:
    """full counts distinct users active on any day, then pads to MinUsers."""
    inv = only(bill(settings={"ProrationMode": "full"}, plans=[{"Plan": "Std", "Rate": 10, "MinUsers": 3}],
                    roster=[{"UserID": "a@x", "End": "2026-11-05"}, {"UserID": "A@X", "Start": "2026-11-20"}]))
    assert inv.total_cents == 3000


# --------------------------------------------------------------------------
# BillingTiming advance

# 3 steady users; one joins Nov 16; one joins Dec 10 (not billed on the Dec invoice: day 1 only)
ADV = [*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}, {"UserID": "dec@x", "Start": "2026-12-10"}]


def test_advance_daily_charges_day_one_seats_plus_last_months_changes(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"}, roster=ADV))
    assert [(ln.kind, ln.amount_cents) for ln in inv.lines] == [("seats", 4000), ("adjustment", 500)]
    assert inv.lines[1].description.startswith("Nov adjustment")
    assert inv.issue_date == dt.date(2026, 12, 1)


@pytest.mark.parametrize(("mode", "adjustment"), [
    ("peak", 1000),  # Nov peak 4 seats vs 3 billed in advance
    ("full", 1000),  # Nov anyone-active 4 vs 3
    ("snapshot", 0),  # Nov 1 snapshot = what was billed in advance
])
def test_advance_other_modes_adjust_by_difference(bill, mode: str, adjustment: int) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance", "ProrationMode": mode},
                    roster=ADV))
    assert amounts(inv, "seats") == [4000]
    assert cents(inv, "adjustment") == adjustment
    assert inv.total_cents == 4000 + adjustment


def test_advance_leaver_last_month_is_credited(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"},
                    roster=[*users(3), {"UserID": "gone@x", "End": "2026-11-20"}]))
    assert amounts(inv, "seats") == [3000]
    assert amounts(inv, "adjustment") == [-333]  # −1 from Nov 21, 10/30


def test_advance_addon_starting_last_month_is_adjusted(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"}, roster=users(1),
                    addons=[{"Description": "Firewall", "UnitPrice": 30, "Start": "2026-11-11"}]))
    assert amounts(inv, "addon") == [3000]  # December in advance
    assert cents(inv, "adjustment") == 2000  # Nov 11–30 = 20/30 of 30.00, not billed in advance
    assert inv.total_cents == 1000 + 3000 + 2000


@pytest.mark.parametrize(("mode", "november"), [("daily", 3500), ("peak", 4000)])
def test_advance_and_arrears_agree_over_two_months(bill, mode: str, november: int) -> None:
    """No changes in October or December: Nov + Dec billed in advance = Nov + Dec billed in arrears."""
    roster = [*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}]
    totals = {}
    for timing in ("arrears", "advance"):
        totals[timing] = sum(
            only(bill(settings={"BillingPeriod": p, "BillingTiming": timing, "ProrationMode": mode},
                      roster=roster)).total_cents
            for p in ("2026-11", "2026-12"))
    assert totals["arrears"] == totals["advance"] == november + 4000


@pytest.mark.parametrize("mode", ["daily", "peak"])
def test_advance_minimum_fee_is_not_exceeded_by_last_months_adjustment(bill, mode: str) -> None:
    """Nov: 3 users, a 4th from Nov 16 (peak 4). Dec: 4 users all month. MinFee 100.

    In arrears both months cost exactly MinFee (100 + 100). Billed in advance the client must not pay
    more: Nov's invoice already charged MinFee, so Dec's invoice is 100.00 as well.
    """
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance", "ProrationMode": mode},
                    plans=[{"Plan": "Std", "Rate": 10, "MinFee": 100}],
                    roster=[*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}]))
    assert inv.total_cents == 10000


# --------------------------------------------------------------------------
# Overage

OVERAGE_PLAN = [{"Plan": "Std", "Rate": 10, "IncludedHours": 2, "OverageRate": 50}]
USAGE = [{"Date": "2026-11-03", "Hours": 8}, {"Date": "2026-11-20", "Hours": 4.5},
         {"Date": "2026-10-31", "Hours": 99}, {"Date": "2026-12-03", "Hours": 40}]


def test_overage_is_hours_above_included_times_average_users(bill) -> None:
    """12.5 h used; 3 users + 1 from Nov 16 → 3.5 average users × 2 h = 7 h included; 5.5 h × 50."""
    inv = only(bill(plans=OVERAGE_PLAN, roster=[*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}],
                    usage=USAGE))
    (ov,) = [ln for ln in inv.lines if ln.kind == "overage"]
    assert ov.amount_cents == 27500
    assert ov.quantity == pytest.approx(5.5)
    assert inv.total_cents == 3000 + 500 + 27500


def test_no_overage_within_included_hours(bill) -> None:
    inv = only(bill(plans=OVERAGE_PLAN, roster=users(7), usage=USAGE))
    assert "overage" not in kinds(inv)


def test_no_overage_when_included_hours_blank(bill) -> None:
    inv = only(bill(plans=[{"Plan": "Std", "Rate": 10, "OverageRate": 50}], roster=users(1), usage=USAGE))
    assert "overage" not in kinds(inv)


def test_advance_overage_uses_previous_months_usage(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"}, plans=OVERAGE_PLAN,
                    roster=[*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}], usage=USAGE))
    assert amounts(inv, "overage") == [27500]  # November's 12.5 h, not December's 40 h


# --------------------------------------------------------------------------
# Discount and tax


def test_discount_and_tax(bill) -> None:
    """5 × 10 + a non-taxable 20 add-on = 70; −10 % = −7.00; tax 8 % of (50 − 10 %) = 3.60."""
    run = bill(clients=[{"Client": "Acme", "Plan": "Std", "DiscountPct": 0.1, "TaxRate": 0.08}],
               roster=users(5), addons=[{"Description": "Licences", "UnitPrice": 20, "Taxable": "No"}])
    inv = only(run)
    assert [(ln.kind, ln.amount_cents, ln.taxable) for ln in inv.lines] == [
        ("seats", 5000, True), ("addon", 2000, False), ("discount", -700, False), ("tax", 360, False)]
    assert (inv.subtotal_cents, inv.discount_cents, inv.tax_cents, inv.total_cents) == (7000, -700, 360, 6660)


def test_default_tax_rate_and_client_tax_rate(bill) -> None:
    run = bill(settings={"DefaultTaxRate": 0.05},
               clients=[{"Client": "Default", "Plan": "Std"},
                        {"Client": "Own", "Plan": "Std", "TaxRate": 0.1},
                        {"Client": "Exempt", "Plan": "Std", "TaxRate": 0}],
               roster=[{"Client": c, "UserID": f"u{i}@x"} for c in ("Default", "Own", "Exempt") for i in range(2)])
    assert amounts(invoice_of(run, "Default"), "tax") == [100]
    assert amounts(invoice_of(run, "Own"), "tax") == [200]
    assert amounts(invoice_of(run, "Exempt"), "tax") == []  # an explicit 0 beats DefaultTaxRate
    assert invoice_of(run, "Exempt").total_cents == 2000


def test_non_taxable_plan(bill) -> None:
    inv = only(bill(settings={"DefaultTaxRate": 0.1}, plans=[{"Plan": "Std", "Rate": 10, "Taxable": "No"}],
                    roster=users(2), addons=[{"Description": "Backup", "UnitPrice": 5}]))
    assert amounts(inv, "tax") == [50]  # only the taxable add-on


@pytest.mark.parametrize(("rounding", "discount"), [
    ("half-up", -333),
    ("down", -334),
])
def test_discount_line_is_rounded_like_any_credit(bill, rounding: str, discount: int) -> None:
    inv = only(bill(settings={"Rounding": rounding}, plans=[{"Plan": "Std", "Rate": 33.33}],
                    clients=[{"Client": "Acme", "Plan": "Std", "DiscountPct": 0.1}], roster=users(1)))
    assert inv.discount_cents == discount
    assert inv.total_cents == 3333 + discount


def test_tax_is_rounded_once_per_invoice(bill) -> None:
    """Three taxable lines of 0.33 at 10 %: tax of 0.99 is 0.10 (0.099), not 3 × 0.03."""
    inv = only(bill(settings={"DefaultTaxRate": 0.1}, plans=[{"Plan": "Std", "Rate": 0.33}], roster=users(1),
                    addons=[{"Description": "A", "UnitPrice": 0.33}, {"Description": "B", "UnitPrice": 0.33}]))
    assert amounts(inv, "tax") == [10]


# --------------------------------------------------------------------------
# Day counts


@pytest.mark.parametrize(("period", "row", "thirty", "actual"), [
    # February (28 days): D = 30 with `thirty`, 28 with `actual`
    ("2026-02", {"Start": "2026-02-15"}, 467, 500),  # 14/30 vs 14/28
    ("2026-02", {"End": "2026-02-14"}, -467, -500),  # leaves: −1 from Feb 15
    ("2024-02", {"Start": "2024-02-15"}, 500, 517),  # leap year: 15/30 vs 15/29 = 5.172…
    # January (31 days): rₖ capped at 30 with `thirty`
    ("2026-01", {"Start": "2026-01-02"}, 1000, 968),  # 30/30 vs 30/31
    ("2026-01", {"Start": "2026-01-17"}, 500, 484),  # 15/30 vs 15/31
    ("2026-01", {"Start": "2026-01-31"}, 33, 32),  # 1/30 vs 1/31
    ("2026-01", {"End": "2026-01-30"}, -33, -32),
])
def test_day_counts(bill, period: str, row: dict[str, Any], thirty: int, actual: int) -> None:
    for day_count, expected in (("thirty", thirty), ("actual", actual)):
        inv = only(bill(settings={"BillingPeriod": period, "DayCount": day_count},
                        roster=[{"UserID": "steady@x"}, {"UserID": "mover@x", **row}]))
        assert amounts(inv, "seat-change") == [expected], day_count


@pytest.mark.parametrize(("days", "day_count"), [(28, DayCount.THIRTY), (28, DayCount.ACTUAL), (29, DayCount.THIRTY),
                                                 (30, DayCount.ACTUAL), (31, DayCount.THIRTY),
                                                 (31, DayCount.ACTUAL)])
def test_day_weights_sum_to_the_denominator(days: int, day_count: DayCount) -> None:
    remaining, weights, denom = day_weights(days, day_count)
    assert denom == (30 if day_count is DayCount.THIRTY else days)
    assert int(weights.sum()) == denom
    assert (weights >= 0).all()
    assert int(remaining[0]) == min(days, denom)
    assert int(remaining[-1]) == 1


# --------------------------------------------------------------------------
# Who is billable


def test_min_active_days(bill) -> None:
    """Interns need 5 active days: Nov 27–30 (4 days) is not billed, Nov 26–30 (5 days) is."""
    run = bill(roster=[*users(2),
                       {"UserID": "intern4@x", "Type": "Intern", "Start": "2026-11-27"},
                       {"UserID": "intern5@x", "Type": "Intern", "Start": "2026-11-26"}])
    inv = only(run)
    assert [(ln.kind, ln.quantity, ln.amount_cents) for ln in inv.lines] == [
        ("seats", 2, 2000), ("seat-change", Decimal("0.167"), 167)]  # user-months × 10.00
    why = list(run.user_reasons())
    assert "not billable" in why[2] and "4 days" in why[2]
    assert why[3].startswith("billable")


def test_disabled_guest_service_room_shared_are_not_billable(bill) -> None:
    run = bill(roster=[
        *users(2),
        {"UserID": "blocked@x", "Status": "Disabled"},
        {"UserID": "guest@x", "Type": "Guest"},
        {"UserID": "backup@x", "Type": "Service"},
        {"UserID": "boardroom@x", "Type": "Room"},
        {"UserID": "frontdesk@x", "Type": "Shared"},
    ])
    inv = only(run)
    assert [(ln.quantity, ln.amount_cents) for ln in inv.lines] == [(2, 2000)]
    why = list(run.user_reasons())
    assert all(w.startswith("not billable") for w in why[2:]), why
    assert "disabled" in why[2]
    assert "Service" in why[4]


def test_duplicate_userid_counted_once(bill) -> None:
    """Same UserID (case-insensitive, trimmed) twice for one client is one user."""
    run = bill(roster=[*users(2), {"UserID": " USER1@X "}, {"UserID": "User2@x", "Start": "2025-01-01"}])
    inv = only(run)
    assert inv.total_cents == 2000


def test_same_userid_at_two_clients_is_two_users(bill) -> None:
    run = bill(clients=[{"Client": "A", "Plan": "Std"}, {"Client": "B", "Plan": "Std"}],
               roster=[{"Client": "A", "UserID": "shared@x"}, {"Client": "B", "UserID": "shared@x"}])
    assert [i.total_cents for i in run.invoices] == [1000, 1000]


def test_client_and_plan_names_match_in_any_case(bill) -> None:
    run = bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Premium", "Rate": 25}],
               clients=[{"Client": "Acme Dental", "Plan": "Std"}],
               roster=[{"Client": "acme dental", "UserID": "a@x"},
                       {"Client": "ACME DENTAL", "UserID": "b@x", "Plan": "premium"}])
    assert amounts(only(run), "seats") == [1000, 2500]


def test_end_date_is_the_last_active_day(bill) -> None:
    """End = Nov 14 counts through Nov 14: the seat drops from Nov 15 (16/30 of the month)."""
    inv = only(bill(roster=[{"UserID": "stays@x"}, {"UserID": "gone@x", "End": "2026-11-14"}]))
    (change,) = [ln for ln in inv.lines if ln.kind == "seat-change"]
    assert "Nov 15" in change.description
    assert change.amount_cents == -533
    assert inv.total_cents == 2000 - 533  # 10.00 + 14/30 of 10.00


def test_departure_then_return(bill) -> None:
    """Gone after Nov 14, back (a new row, same UserID) from Nov 21: billed 24 of 30 days, once."""
    inv = only(bill(roster=[{"UserID": "steady@x"},
                            {"UserID": "traveller@x", "End": "2026-11-14"},
                            {"UserID": "Traveller@x", "Start": "2026-11-21"}]))
    assert [(ln.kind, ln.quantity, ln.amount_cents) for ln in inv.lines] == [
        ("seats", 2, 2000), ("seat-change", Decimal("-0.533"), -533), ("seat-change", Decimal("0.333"), 333)]
    assert inv.total_cents == 1000 + 800


def test_overlapping_duplicate_rows_are_not_double_billed(bill) -> None:
    inv = only(bill(roster=[{"UserID": "a@x", "End": "2026-11-20"}, {"UserID": "a@x", "Start": "2026-11-10"}]))
    assert inv.total_cents == 1000


def test_users_outside_the_period_are_not_billed(bill) -> None:
    inv = only(bill(roster=[*users(1),
                            {"UserID": "old@x", "End": "2026-10-31"},
                            {"UserID": "future@x", "Start": "2026-12-01"},
                            {"UserID": "exact@x", "Start": "2026-11-01", "End": "2026-11-30"}]))
    assert [(ln.kind, ln.quantity, ln.amount_cents) for ln in inv.lines] == [("seats", 2, 2000)]


# --------------------------------------------------------------------------
# Add-ons


def test_per_user_addon_follows_the_seat_count_daily(bill) -> None:
    """4.00 per user: 10 users all month, +2 from Nov 15 (16/30), −1 from Nov 21 (10/30)."""
    inv = only(bill(plans=[{"Plan": "Std", "Rate": 95}],
                    roster=users(9) + users(2, "new", Start="2026-11-15")
                    + [{"UserID": "left@x", "End": "2026-11-20"}],
                    addons=[{"Description": "Email archiving", "UnitPrice": 4, "PerUser": "Yes"}]))
    # 40.00 + 8.00 × 16/30 − 4.00 × 10/30 = 42.9333…
    assert amounts(inv, "addon") == [4293]


def test_addon_prorated_inside_the_period(bill) -> None:
    inv = only(bill(roster=users(1), addons=[
        {"Description": "POS support", "Quantity": 2, "UnitPrice": 25, "Start": "2026-11-10"},
        {"Description": "Project", "UnitPrice": 30, "Start": "2026-11-01", "End": "2026-11-15"},
        {"Description": "Expired", "UnitPrice": 99, "End": "2026-10-31"},
    ]))
    assert amounts(inv, "addon") == [3500, 1500]  # 50 × 21/30; 30 × 15/30; the expired one is absent


def test_seat_and_addon_amounts_use_micro_precision(bill) -> None:
    """Rates beyond cents: 3 × 9.995 = 29.985 → 29.99 (half-up), once, not 3 × 10.00."""
    inv = only(bill(plans=[{"Plan": "Std", "Rate": 9.995}], roster=users(3)))
    assert inv.total_cents == 2999


@st.composite
def tiered_plans(draw: Any) -> Plan:
    """Any volume or graduated plan: ascending UpTo bounds, the last blank or not, FlatFees or none."""
    n = draw(st.integers(1, 5))
    bounds = sorted(draw(st.sets(st.integers(1, 500), min_size=n, max_size=n)))
    ups: list[int | None] = list(bounds)
    if draw(st.booleans()):
        ups[-1] = None
    rates = draw(st.lists(st.integers(0, 200_000_000), min_size=n, max_size=n))
    flats = tuple(draw(st.lists(st.integers(0, 50_000_000), min_size=n, max_size=n))) if draw(st.booleans()) else ()
    mode = draw(st.sampled_from([Tiering.VOLUME, Tiering.GRADUATED]))
    return Plan("P", rates[0], mode, tiers=tuple(zip(ups, rates, strict=True)), tier_flat=flats)


@settings(max_examples=300, deadline=None)
@given(tiered_plans(), st.integers(0, 2_000))
def test_one_seat_price_is_the_invoice_engines_price(plan: Plan, seats: int) -> None:
    """The Excel functions' plain-integer price of one seat count equals the engine's array pricing."""
    table = PlanTable.build([plan])
    want = int(table.seat_price(np.zeros(1, np.int64), np.array([seats]))[0])
    assert one_seat_price(plan, seats) == want


_amounts = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(_amounts, _amounts, st.decimals(min_value=0, max_value="0.99", places=3), _amounts,
       st.sampled_from([None, Decimal("0.01"), Decimal("1"), Decimal("5"), Decimal("0.25")]))
def test_recommended_price_is_the_exact_fraction_rounded_up(hours: Decimal, cost: Decimal, margin: Decimal,
                                                             other: Decimal, step: Decimal | None) -> None:
    value = (Fraction(hours) * Fraction(cost) + Fraction(other)) / (1 - Fraction(margin))
    unit = step or Decimal("0.01")
    assert recommend_price(hours, cost, margin, other, step) == math.ceil(value / Fraction(unit)) * unit


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.integers(1, 1000), st.lists(st.integers(0, 5000), min_size=28, max_size=31))
def test_usage_per_user_is_the_exact_quotient(centi: int, scale: int, daily: list[int]) -> None:
    """Hours ÷ average daily users, one correctly rounded division, as the fraction gives it."""
    period = Period(2026, 2) if len(daily) == 28 else Period(2026, {29: 2, 30: 11, 31: 12}.get(len(daily), 12))
    if period.days != len(daily):
        return
    total = Fraction(centi, 100 * scale)
    users = np.array(daily, dtype=np.int64)
    if users.sum() == 0:
        return
    ratio = total / Fraction(int(users.sum()), period.days)
    assert per_user(total, users, period, "Acme") == Decimal(ratio.numerator) / Decimal(ratio.denominator)
