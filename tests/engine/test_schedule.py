"""Schedule A: every figure it prints is what the engine bills. The figures are read back from the .xlsx the
schedule is written to, then billed by ``invoice_run`` on a book with exactly that many users."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import memory_book
from openpyxl import load_workbook

from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.schedule import TITLE, build_schedule
from perseat_addin.errors import ArgumentError
from perseat_addin.model import Book, DayCount, LineKind, Period, Settings
from perseat_addin.outputs.documents import schedule_layout, write_sheet_xlsx
from perseat_addin.workbook.load import load

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_HEAD = ["Users", "Shared devices", "Seats charged"]


@pytest.fixture(scope="module")
def template() -> Book:
    return load(REPO / "workbook_template.xlsm")


def sheet_cells(book: Book, client: str | None, tmp: Path) -> list[list[Any]]:
    """The schedule's cells as written to its .xlsx."""
    path = tmp / "schedule.xlsx"
    write_sheet_xlsx(schedule_layout(build_schedule(book, client)), path, "t")
    wb = load_workbook(path)
    rows = [[c.value for c in r] for r in wb.active.iter_rows()]
    wb.close()
    return rows


def example_rows(cells: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """(plan heading, example row) for every row of every example table, with the plan of its section."""
    out, plan, in_table = [], "", False
    for r in cells:
        first = r[0]
        if isinstance(first, str) and " Plan: " in first:
            plan, in_table = first.split("Plan: ", 1)[1], False
        elif r[:3] == EXAMPLE_HEAD:
            in_table = True
        elif in_table and isinstance(first, int | float):
            out.append((plan, r))
        else:
            in_table = False
    return out


def billed(book: Book, client: str, plan: str, users: int, devices: int) -> Any:
    """The client's invoice for a month with exactly ``users`` users and ``devices`` shared devices, on ``plan``,
    no add-ons."""
    c = replace(next(x for x in book.clients if x.name == client), plan=plan, start=-10**7, end=10**7)
    mem = memory_book(settings=book.settings, plans=list(book.plans.values()), clients=[c],
                      roster=[{"client": client, "user": f"u{i}@x"} for i in range(users)],
                      devices=[{"client": client, "device": f"D{i}"} for i in range(devices)],
                      user_types=list(book.user_types.values()))
    (inv,) = invoice_run(mem).invoices
    return inv


@pytest.mark.parametrize("client", ["Acme Dental Group", "Cobalt Logistics", "Elm Street Bakery",
                                    "Fjord Manufacturing", "Granite Accounting", "Birch & Lowe LLP"])
def test_every_example_in_the_schedule_is_what_the_engine_bills(template: Book, client: str,
                                                                 tmp_path: Path) -> None:
    rows = example_rows(sheet_cells(template, client, tmp_path))
    assert len(rows) >= 3
    for plan, (users, devices, seats, monthly, per_user, with_tax) in rows:
        inv = billed(template, client, plan, int(users), int(devices))
        assert round(monthly * 100) == inv.subtotal_cents, (plan, users, devices)
        assert round(with_tax * 100) == inv.total_cents, (plan, users, devices)
        seat_lines = [ln for ln in inv.lines if ln.kind == LineKind.SEATS]
        assert int(seats) == sum(int(ln.quantity) for ln in seat_lines)
        assert Decimal(str(per_user)) == (Decimal(inv.subtotal_cents) / int(users) / 100).quantize(Decimal("0.01"))


def test_granite_discount_and_tax_are_in_the_schedule(template: Book, tmp_path: Path) -> None:
    """Granite: 10% discount and 5.5% tax — the example's last column is after both, as its invoice."""
    cells = sheet_cells(template, "Granite Accounting", tmp_path)
    text = "\n".join(str(v) for r in cells for v in r if isinstance(v, str))
    assert "Discount: 10% of each invoice's charges before tax." in text
    assert "Tax: 5.5% on taxable charges after discount." in text
    (_, row), *_ = example_rows(cells)
    assert row[5] < row[3]  # the discount outweighs the tax


def test_the_price_list_schedule_shows_every_plan_and_its_tiers(template: Book, tmp_path: Path) -> None:
    cells = sheet_cells(template, None, tmp_path)
    assert cells[0][0] == TITLE
    plans = [r[0].split("Plan: ", 1)[1] for r in cells if isinstance(r[0], str) and " Plan: " in r[0]]
    assert plans == [p.name for p in template.plans.values()]
    tiers: dict[str, list[tuple[Any, ...]]] = {}
    plan = ""
    for i, r in enumerate(cells):
        if isinstance(r[0], str) and " Plan: " in r[0]:
            plan = r[0].split("Plan: ", 1)[1]
        if r[:3] == ["From user", "Up to", "Rate per user"]:
            k = i + 1
            while isinstance(cells[k][0], int | float):
                tiers.setdefault(plan, []).append(tuple(cells[k][:3]))
                k += 1
    for name, rows in tiers.items():
        p = template.plan(name)
        assert [(None if up == "and up" else int(up), Decimal(str(rate)) * 1_000_000) for _, up, rate in rows] == \
            [(up, Decimal(r)) for up, r in p.tiers]
    assert set(tiers) == {"Volume Pro", "Growth"}
    text = " ".join(str(v) for r in cells for v in r if isinstance(v, str))
    assert "An Employee is a billable user when active at least 1 day of the month." in text
    assert "An Intern is a billable user when active at least 5 days of the month." in text
    assert "A Service account is not billed." in text
    assert "Price: USD 95.00 per billable user per month." in text
    assert "Minimum monthly fee: USD 250.00." in text
    assert "hours above that are charged at USD 90.00 per hour" in text


@pytest.mark.parametrize("day_count", [DayCount.ACTUAL, DayCount.THIRTY])
def test_the_proration_example_is_the_engines_seat_change(template: Book, day_count: DayCount) -> None:
    """One more user from the 15th of a 30-day month: the schedule's amount is the invoice's seat-change line."""
    book = replace(template, settings=replace(template.settings, day_count=day_count))
    for client in ("Acme Dental Group", "Cobalt Logistics"):
        s = build_schedule(book, client)
        ex = s.proration
        assert ex is not None and ex.day == 15 and ex.month_days == 30 and ex.share == (16, 30)
        words = next(x for x in s.sections if x.key == "proration").paragraphs
        assert any(f"= {Decimal(ex.cents) / 100:.2f}" in p for p in words)
        c = replace(next(x for x in book.clients if x.name == client), start=-10**7, end=10**7)
        st: Settings = replace(book.settings, period=ex.period)
        roster = [{"client": client, "user": f"u{i}@x"} for i in range(ex.seats)]
        roster.append({"client": client, "user": "new@x", "start": ex.period.first.replace(day=15)})
        mem = memory_book(settings=st, plans=[book.plan(ex.plan)], clients=[replace(c, plan=ex.plan)],
                          roster=roster, user_types=list(book.user_types.values()))
        (inv,) = invoice_run(mem).invoices
        (change,) = [ln for ln in inv.lines if ln.kind == LineKind.SEAT_CHANGE]
        assert change.amount_cents == ex.cents
        assert "16/30" in change.description


def test_proration_in_words_for_each_mode(template: Book) -> None:
    from perseat_addin.model import BillingTiming, ProrationMode

    def words(**settings: Any) -> str:
        b = replace(template, settings=replace(template.settings, **settings))
        return " ".join(next(x for x in build_schedule(b).sections if x.key == "proration").paragraphs)

    assert "16/30 of the monthly price; on the 15th of a 31-day month, 17/31" in words()
    assert "counting every month as 30 days" in words(day_count=DayCount.THIRTY)
    assert "on day 15 of the month" in words(proration_mode=ProrationMode.SNAPSHOT, snapshot_day=15)
    assert "on the last day of the month" in words(proration_mode=ProrationMode.SNAPSHOT, snapshot_day=None)
    assert "highest number of billable users" in words(proration_mode=ProrationMode.PEAK)
    assert "full monthly price" in words(proration_mode=ProrationMode.FULL)
    assert "at the start of each month" in words(billing_timing=BillingTiming.ADVANCE)
    assert "in arrears" in words()
    assert Period(2026, 11).days == 30


def test_an_unknown_client_names_the_closest(template: Book) -> None:
    with pytest.raises(ArgumentError, match='no client "Acme Dental" in the Clients table \\(did you mean '
                                            '"Acme Dental Group"\\?\\)'):
        build_schedule(template, "Acme Dental")
