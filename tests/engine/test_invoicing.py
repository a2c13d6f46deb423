"""Invoices as a client and the billing staff see them: descriptions, numbers, dates, who is invoiced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import described, only, users

from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.errors import InputProblems
from perseat_addin.excel.template import SheetSpec, template_sheets, write_workbook
from perseat_addin.model import Period
from perseat_addin.workbook.load import load


def numbers(run: Run) -> list[tuple[str, str]]:
    return [(i.client.name, i.number) for i in run.invoices]


# --------------------------------------------------------------------------
# Descriptions a client understands


def test_seat_change_descriptions(bill) -> None:
    """10 users, 2 more from Nov 15, one leaves after Nov 20 (DayCount thirty)."""
    inv = only(bill(settings={"DayCount": "thirty"}, plans=[{"Plan": "Standard", "Rate": 95}],
                    roster=[*users(9), *users(2, "new", Start="2026-11-15"),
                            {"UserID": "left@x", "End": "2026-11-20"}]))
    (seats,) = described(inv, "seats")
    assert "10 users" in seats and "95.00" in seats and "Standard" in seats and "Nov 1–30" in seats
    joiners, leaver = described(inv, "seat-change")
    assert "+2 users from Nov 15 (new1@x, new2@x), 16/30 days" in joiners
    assert "−1 user from Nov 21 (left@x), 10/30 days" in leaver
    # a prorated change's quantity is its user-months: 2 × 16/30 ≈ 1.0666 × 95.00 = 101.33
    assert [(ln.quantity, ln.unit_price, ln.amount_cents) for ln in inv.lines] == [
        (10, 95, 95000), (Decimal("1.0666"), 95, 10133), (Decimal("-0.3334"), 95, -3167)]


def test_actual_day_count_shows_days_in_month(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-07"}, roster=[{"UserID": "new@x", "Start": "2026-07-10"}]))
    (change,) = described(inv, "seat-change")
    assert "+1 user from Jul 10 (new@x), 22/31 days" in change


def test_tier_descriptions(bill) -> None:
    tiers = [{"Plan": p, "UpTo": 5, "Rate": 7} for p in ("Vol", "Grad")]
    tiers += [{"Plan": p, "UpTo": 10, "Rate": 6.5} for p in ("Vol", "Grad")]
    tiers += [{"Plan": p, "Rate": 6} for p in ("Vol", "Grad")]
    run = bill(plans=[{"Plan": "Vol", "Rate": 7, "Tiering": "volume"},
                      {"Plan": "Grad", "Rate": 7, "Tiering": "graduated"}],
               tiers=tiers, clients=[{"Client": "V", "Plan": "Vol"}, {"Client": "G", "Plan": "Grad"}],
               roster=[*users(6, Client="V"), *users(6, Client="G")])
    v, g = run.invoices
    (vline,) = described(v, "seats")
    assert "6 users × 6.50 Vol" in vline and "volume tier 6–10" in vline
    # graduated: a line per tier reached, each multiplying out
    assert described(g, "seats") == ["Grad users 1–5: 5 × 7.00, Nov 1–30", "Grad users 6: 1 × 6.50, Nov 1–30"]
    assert [(ln.quantity, ln.unit_price, ln.amount_cents) for ln in g.lines] == [(5, 7, 3500), (1, Decimal("6.5"), 650)]


def test_padding_descriptions_say_why_more_seats_than_users(bill) -> None:
    run = bill(plans=[{"Plan": "Min5", "Rate": 10, "MinUsers": 5}, {"Plan": "Floor", "Rate": 10, "Basis": "greater"}],
               clients=[{"Client": "Small", "Plan": "Min5"}, {"Client": "Shop", "Plan": "Floor"}],
               roster=[*users(3, Client="Small"), *users(3, Client="Shop")],
               devices=[{"Client": "Shop", "DeviceID": f"K{i}"} for i in range(5)])
    small, shop = run.invoices
    assert "minimum 5; 3 users" in described(small, "seats")[0]
    assert "greater of 3 users and 5 shared devices" in described(shop, "seats")[0]


@pytest.mark.parametrize(("settings", "phrase"), [
    ({"ProrationMode": "snapshot", "SnapshotDay": 15}, "as of Nov 15"),
    ({"ProrationMode": "snapshot", "SnapshotDay": "last"}, "as of Nov 30"),
    ({"ProrationMode": "peak"}, "peak on Nov 20"),
    ({"ProrationMode": "full"}, "everyone active in Nov"),
])
def test_proration_mode_descriptions(bill, settings: dict[str, Any], phrase: str) -> None:
    inv = only(bill(settings=settings, roster=[*users(3), *users(2, "new", Start="2026-11-20")]))
    (line,) = described(inv, "seats")
    assert phrase in line


def test_device_descriptions(bill) -> None:
    inv = only(bill(plans=[{"Plan": "Std", "Rate": 10, "DeviceRate": 4}], roster=users(1),
                    devices=[{"DeviceID": "PC-1"}, {"DeviceID": "PC-2", "Start": "2026-11-16"}]))
    assert "1 shared device × 4.00" in described(inv, "devices")[0]
    assert "+1 shared device from Nov 16, 15/30 days" in described(inv, "device-change")[0]


def test_addon_descriptions(bill) -> None:
    inv = only(bill(roster=users(10), addons=[
        {"Description": "Email archiving", "UnitPrice": 4, "PerUser": "Yes"},
        {"Description": "POS terminal support", "Quantity": 2, "UnitPrice": 25, "Start": "2026-11-10"},
        {"Description": "Firewall management", "UnitPrice": 120},
    ]))
    per_user, pos, firewall = described(inv, "addon")
    assert per_user.startswith("Email archiving") and "10 users × 4.00" in per_user
    assert pos.startswith("POS terminal support") and "2 × 25.00" in pos
    assert "Nov 10–30" in pos and "prorated" in pos
    assert firewall.startswith("Firewall management") and "Nov 1–30" in firewall


def test_discount_tax_minimum_overage_descriptions(bill) -> None:
    inv = only(bill(clients=[{"Client": "Acme", "Plan": "Std", "DiscountPct": 0.1, "TaxRate": 0.08}],
                    plans=[{"Plan": "Std", "Rate": 10, "MinFee": 100, "IncludedHours": 2, "OverageRate": 50}],
                    roster=users(3), usage=[{"Date": "2026-11-05", "Hours": 12.5}]))
    assert described(inv, "minimum") == ["Minimum monthly fee adjustment"]
    (overage,) = described(inv, "overage")
    assert "12.50 h used" in overage and "6.00 h included" in overage
    (discount,) = described(inv, "discount")
    assert "Discount" in discount and "10%" in discount
    (tax,) = described(inv, "tax")
    assert "Tax" in tax and "8%" in tax


def test_overage_counts_only_time_billable_to_the_client(bill) -> None:
    """SPEC §8: No Charge / Do Not Bill time (Billable = No) is work done, never overage."""
    plans = [{"Plan": "Std", "Rate": 10, "IncludedHours": 2, "OverageRate": 50}]
    billable = [{"Date": "2026-11-05", "Hours": 8}, {"Date": "2026-11-06", "Hours": 2, "Billable": "Yes"}]
    free = [{"Date": "2026-11-07", "Hours": 30, "Billable": "No"}, {"Date": "2026-11-08", "Hours": 1, "Billable": "n"}]
    alone = only(bill(plans=plans, roster=users(3), usage=billable))
    both = only(bill(plans=plans, roster=users(3), usage=[*billable, *free]))
    assert both.lines == alone.lines
    (overage,) = described(both, "overage")
    assert "10.00 h used" in overage and "6.00 h included" in overage  # 4 h above plan × 50
    assert [ln.amount_cents for ln in both.lines if ln.kind == "overage"] == [20000]
    nothing = only(bill(plans=plans, roster=users(3), usage=free))
    assert described(nothing, "overage") == []


def test_a_usage_table_without_billable_bills_every_hour(tmp_path: Path) -> None:
    """A workbook made before the Billable column: every Usage row is billable, as before."""
    path = tmp_path / "old.xlsx"
    write_workbook(path, [
        SheetSpec("Settings", ("Setting", "Value"), [("BillingPeriod", "2026-11"), ("NextInvoiceNumber", 1)]),
        SheetSpec("Plans", ("Plan", "Rate", "IncludedHours", "OverageRate"), [("Std", 10, 1, 20)]),
        SheetSpec("Clients", ("Client", "Plan"), [("Acme", "Std")]),
        SheetSpec("Roster", ("Client", "UserID", "Type"), [("Acme", "a@x", "Employee")]),
        SheetSpec("Usage", ("Client", "Date", "Hours"), [("Acme", dt.date(2026, 11, 3), 3)]),
    ])
    book = load(path)
    assert book.usage["billable"].tolist() == [True]
    assert [ln.amount_cents for ln in only(invoice_run(book)).lines if ln.kind == "overage"] == [4000]


def test_advance_adjustment_is_labelled_with_the_previous_month(bill) -> None:
    inv = only(bill(settings={"BillingPeriod": "2026-12", "BillingTiming": "advance"},
                    roster=[*users(3), {"UserID": "nov@x", "Start": "2026-11-16"}]))
    assert "Dec 1–31" in described(inv, "seats")[0]
    (adj,) = described(inv, "adjustment")
    assert adj.startswith("Nov adjustment") and "+1 user from Nov 16 (nov@x), 15/30 days" in adj


def test_plan_override_lines_name_their_plan(bill) -> None:
    inv = only(bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Premium", "Rate": 25}],
                    roster=[*users(2), {"UserID": "boss@x", "Plan": "Premium", "Start": "2026-11-16"}]))
    changes = described(inv, "seat-change")
    assert any("Premium" in c and "+1 user from Nov 16" in c for c in changes)


# --------------------------------------------------------------------------
# Numbers, dates, who is invoiced

CLIENTS = [{"Client": "Alpha", "Plan": "Std"}, {"Client": "Beta", "Plan": "Std", "Status": "Inactive"},
           {"Client": "Gamma", "Plan": "Std"}, {"Client": "Delta", "Plan": "Std"}]
ROSTER = [{"Client": "Alpha", "UserID": "a@x"}, {"Client": "Beta", "UserID": "b@x"},
          {"Client": "Gamma", "UserID": "svc@x", "Type": "Service"}, {"Client": "Delta", "UserID": "d@x"}]


def test_numbering_starts_at_next_invoice_number_with_prefix(bill) -> None:
    run = bill(settings={"InvoicePrefix": "HV-", "NextInvoiceNumber": 1001}, clients=CLIENTS, roster=ROSTER)
    # skipped clients (inactive Beta, zero-charge Gamma) do not use up a number
    assert numbers(run) == [("Alpha", "HV-1001"), ("Delta", "HV-1002")]


def test_default_invoice_prefix(bill) -> None:
    run = bill(settings={"NextInvoiceNumber": 7}, clients=CLIENTS, roster=ROSTER)
    assert numbers(run) == [("Alpha", "INV-7"), ("Delta", "INV-8")]


@pytest.mark.parametrize(("settings", "period", "issue", "due"), [
    ({}, "2026-11", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),  # arrears, PaymentTermsDays 30
    ({"PaymentTermsDays": 14}, "2026-11", dt.date(2026, 12, 1), dt.date(2026, 12, 15)),
    ({"PaymentTermsDays": 0}, "2026-11", dt.date(2026, 12, 1), dt.date(2026, 12, 1)),
    ({"BillingPeriod": "2026-12"}, "2026-12", dt.date(2027, 1, 1), dt.date(2027, 1, 31)),
    ({"BillingTiming": "advance"}, "2026-11", dt.date(2026, 11, 1), dt.date(2026, 12, 1)),
])
def test_issue_and_due_dates(bill, settings: dict[str, Any], period: str, issue: dt.date, due: dt.date) -> None:
    inv = only(bill(settings=settings, roster=users(1)))
    assert str(inv.period) == period
    assert (inv.issue_date, inv.due_date) == (issue, due)


def test_inactive_clients_are_skipped(bill) -> None:
    run = bill(clients=CLIENTS, roster=ROSTER)
    assert "Beta" not in [c for c, _ in numbers(run)]
    assert ("Beta", "inactive") in run.skipped


@pytest.mark.parametrize("roster", [
    [{"Client": "Alpha", "UserID": "a@x"}, {"Client": "Zero", "UserID": "guest@x", "Type": "Guest"}],
    [{"Client": "Alpha", "UserID": "a@x"}, {"Client": "Zero", "UserID": "old@x", "End": "2026-10-31"}],
    [{"Client": "Alpha", "UserID": "a@x"}, {"Client": "Zero", "UserID": "off@x", "Status": "Disabled"}],
    [{"Client": "Alpha", "UserID": "a@x"}],  # no roster rows at all
])
def test_zero_charge_clients_are_skipped(bill, roster: list[dict[str, Any]]) -> None:
    run = bill(clients=[{"Client": "Alpha", "Plan": "Std"}, {"Client": "Zero", "Plan": "Std"}], roster=roster)
    assert numbers(run) == [("Alpha", "INV-1")]
    assert [c for c, _ in run.skipped] == ["Zero"]
    assert "no billable users" in run.skipped[0][1]


def test_client_with_no_users_still_pays_min_users_and_min_fee(bill) -> None:
    """A contract minimum is a charge: such a client is not 'zero-charge'."""
    run = bill(plans=[{"Plan": "Std", "Rate": 10}, {"Plan": "Min", "Rate": 10, "MinUsers": 2},
                      {"Plan": "Fee", "Rate": 10, "MinFee": 50}],
               clients=[{"Client": "Alpha", "Plan": "Std"}, {"Client": "M", "Plan": "Min"},
                        {"Client": "F", "Plan": "Fee"}],
               roster=[{"Client": "Alpha", "UserID": "a@x"}])
    assert [(i.client.name, i.total_cents) for i in run.invoices] == [("Alpha", 1000), ("M", 2000), ("F", 5000)]


def test_final_invoices_exclude_the_client_for_that_period(bill) -> None:
    run = bill(settings={"NextInvoiceNumber": 50}, clients=CLIENTS, roster=ROSTER, invoices=[
        {"InvoiceNo": "INV-40", "Client": "delta", "Period": "2026-11", "Status": "Final"},  # any case
        {"InvoiceNo": "INV-30", "Client": "Alpha", "Period": "2026-10", "Status": "Final"},  # other period
        {"InvoiceNo": "INV-41", "Client": "Alpha", "Period": "2026-11", "Status": "Draft"},  # drafts are replaced
    ])
    assert numbers(run) == [("Alpha", "INV-50")]
    assert ("Delta", "already final: INV-40") in run.skipped


def test_final_invoice_with_period_as_an_excel_date(bill) -> None:
    run = bill(clients=CLIENTS, roster=ROSTER, invoices=[
        {"InvoiceNo": "INV-40", "Client": "Delta", "Period": dt.date(2026, 11, 1), "Status": "Final"}])
    assert [c for c, _ in numbers(run)] == ["Alpha"]


def test_period_override(book) -> None:
    b = book(period="2026-10", roster=[{"UserID": "a@x"}, {"UserID": "nov@x", "Start": "2026-11-01"}])
    assert str(b.settings.period) == "2026-10"
    inv = only(invoice_run(b))
    assert str(inv.period) == "2026-10" and inv.total_cents == 1000
    inv = only(invoice_run(b, Period(2026, 11)))
    assert str(inv.period) == "2026-11" and inv.total_cents == 2000


def test_invoice_totals_add_up(bill) -> None:
    run = bill(settings={"DefaultTaxRate": 0.0725},
               clients=[{"Client": "Acme", "Plan": "Std", "DiscountPct": 0.125}],
               roster=[*users(7), {"UserID": "late@x", "Start": "2026-11-17"}],
               addons=[{"Description": "Backup", "UnitPrice": 3.33, "PerUser": "Yes", "Taxable": "No"}])
    inv = only(run)
    assert inv.subtotal_cents + inv.discount_cents + inv.tax_cents == inv.total_cents
    assert inv.total_cents == sum(ln.amount_cents for ln in inv.lines)
    assert run.total_cents == inv.total_cents


def test_every_roster_row_has_a_reason(bill) -> None:
    run = bill(roster=[{"UserID": "a@x"}, {"UserID": "svc@x", "Type": "Service"},
                       {"UserID": "off@x", "Status": "Disabled"}, {"UserID": "A@x"},
                       {"UserID": "old@x", "End": "2026-10-01"}, {"UserID": "late@x", "Start": "2026-11-15"}])
    why = list(run.user_reasons())
    assert len(why) == 6
    assert why[1].startswith("not billable") and "Service" in why[1]
    assert why[2] == "not billable: sign-in disabled"
    assert sum(w.startswith("billable") for w in why[:4:3]) == 1  # the duplicate pair: one billed ...
    assert sum("counted once" in w for w in why[:4:3]) == 1  # ... the other says why not
    assert "outside the period" in why[4]
    assert why[5].startswith("billable") and "Nov 15" in why[5]


def test_unknown_plan_is_an_input_problem(book) -> None:
    with pytest.raises(InputProblems) as exc:
        book(clients=[{"Client": "Acme", "Plan": "Gold"}], roster=users(1))
    assert any(p.sheet == "Clients" and "Gold" in p.message for p in exc.value.problems)


# --------------------------------------------------------------------------
# The sample workbook (template) end to end


def test_template_workbook_invoices(tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    write_workbook(path, template_sheets())
    run = invoice_run(load(path))
    got = {i.client.name: (i.number, i.total_cents) for i in run.invoices}
    assert got == {
        # 11 × 95 + 2 × 95 × 16/30 − 95 × 10/30 + device 35 + archiving 46.93 + overage 2.65 h × 90
        "Acme Dental Group": ("HV-1001", 143509),
        "Birch & Lowe LLP": ("HV-1002", 80275),  # 5 (MinUsers) × 145 + 120, −5 %
        "Cobalt Logistics": ("HV-1003", 144500),  # 26 × 50 (volume 26+) + Premium 145
        "Delta Pediatrics": ("HV-1004", 63150),  # 5 × 70 + 4 × 62.50 + 9 × 3.50
        "Elm Street Bakery": ("HV-1005", 40000),  # MinFee 250, and the one-time POS installation 150
        "Fjord Manufacturing": ("HV-1006", 33000),  # greater of 3 users / 4 minimum and 6 kiosks
        "Granite Accounting": ("HV-1007", 63142),  # 7 × 95 − 10 % + 5.5 % tax
    }
    assert run.skipped == [("Harbor Yacht Club", "inactive")]


# --------------------------------------------------------------------------
# Tables with a single data row; Excel row numbers in problems


def _one_row_workbook(path: Path, roster_row: tuple[Any, ...]) -> None:
    write_workbook(path, [
        SheetSpec("Settings", ("Setting", "Value"), [("BillingPeriod", "2026-11"), ("NextInvoiceNumber", 1)]),
        SheetSpec("Plans", ("Plan", "Rate"), [("Std", 10)]),
        SheetSpec("Clients", ("Client", "Plan"), [("Acme", "Std")]),
        SheetSpec("Roster", ("Client", "UserID", "Type", "Start"), [roster_row]),
    ])


def test_tables_with_one_data_row_are_read(tmp_path: Path) -> None:
    """Regression: calamine's table start is the first data row; a one-row table is not empty."""
    path = tmp_path / "one.xlsx"
    _one_row_workbook(path, ("Acme", "a@x", "Employee", None))
    inv = only(invoice_run(load(path)))
    assert inv.total_cents == 1000


def test_problems_name_the_real_excel_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    write_workbook(path, [
        SheetSpec("Settings", ("Setting", "Value"), [("BillingPeriod", "2026-11"), ("NextInvoiceNumber", 1)]),
        SheetSpec("Plans", ("Plan", "Rate"), [("Std", 10), ("Pro", 20)]),
        SheetSpec("Clients", ("Client", "Plan"), [("Acme", "Std"), ("Beta", "Pro")]),
        SheetSpec("Roster", ("Client", "UserID", "Type", "Start"),
                  [("Acme", "a@x", "Employee", "someday"), ("Beta", "b@x", "Employee", None)]),
    ])
    with pytest.raises(InputProblems) as exc:
        load(path)
    (problem,) = exc.value.problems
    assert (problem.sheet, problem.row) == ("Roster", 2)  # the first data row is Excel row 2


# --------------------------------------------------------------------------
# one-time charges, recurring credits, contract dates, payment terms (SPEC §4)


def test_a_one_time_fee_is_billed_in_full_once(book) -> None:
    addons = [{"Client": "Acme", "Description": "Onboarding", "UnitPrice": 500, "Frequency": "once",
               "Start": "2026-11-15"},
              {"Client": "Acme", "Description": "Laptop setup", "UnitPrice": 50, "PerUser": "Yes",
               "Frequency": "once", "Start": "2026-11-20"}]
    b = book(roster=users(3), addons=addons)
    nov = only(invoice_run(b, Period(2026, 11)))
    once = [(ln.kind, ln.description, ln.amount_cents) for ln in nov.lines if ln.kind == "one-time"]
    assert once == [("one-time", "Onboarding, one-time (Nov 15)", 50000),
                    ("one-time", "Laptop setup: 3 users on Nov 20 × 50.00, one-time (Nov 20)", 15000)]
    assert nov.total_cents == 3000 + 50000 + 15000
    dec = only(invoice_run(b, Period(2026, 12)))
    assert [ln.kind for ln in dec.lines] == ["seats"] and dec.total_cents == 3000  # never again


def test_a_negative_add_on_is_a_recurring_credit(bill) -> None:
    inv = only(bill(roster=users(3), addons=[{"Client": "Acme", "Description": "Loyalty credit",
                                              "UnitPrice": -5}]))
    assert [(ln.kind, ln.amount_cents) for ln in inv.lines] == [("seats", 3000), ("addon", -500)]
    assert inv.total_cents == 2500


def test_contract_dates_bill_only_the_days_inside_and_prorate_min_fee(book) -> None:
    b = book(plans=[{"Plan": "Std", "Rate": 10, "MinFee": 200}],
             clients=[{"Client": "Acme", "Plan": "Std", "Start": "2026-11-16"},
                      {"Client": "Gone", "Plan": "Std", "End": "2026-10-31"}],
             roster=[*users(10, Client="Acme"), *users(2, prefix="g", Client="Gone")])
    run = invoice_run(b, Period(2026, 11))
    inv = only(run)
    # 10 users × 10.00 for Nov 16–30 (15/30 days) = 50.00; MinFee 200.00 × 15/30 = 100.00 → top-up 50.00
    assert [(ln.kind, ln.amount_cents) for ln in inv.lines] == [("seat-change", 5000), ("minimum", 5000)]
    assert inv.lines[0].description == "Std +10 users from Nov 16, 15/30 days"
    assert inv.total_cents == 10000
    assert "(15/30 days of contract)" in inv.lines[-1].description
    assert ("Gone", "outside its contract (until 2026-10-31)") in run.skipped


def test_client_payment_terms_override_the_setting(bill) -> None:
    run = bill(settings={"PaymentTermsDays": 30},
               clients=[{"Client": "Acme", "Plan": "Std", "PaymentTermsDays": 15}, {"Client": "Birch", "Plan": "Std"}],
               roster=[*users(1, Client="Acme"), *users(1, prefix="b", Client="Birch")])
    assert [(i.client.name, (i.due_date - i.issue_date).days) for i in run.invoices] == [("Acme", 15), ("Birch", 30)]
