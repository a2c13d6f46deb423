"""Usage and pricing report: every figure against a hand-computed case, the functions, the CLI, the ribbon."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin.engine.advice import recommend_price, robust_z, volume_cliffs
from perseat_addin.engine.measures import billable_users, usage_per_user
from perseat_addin.engine.report import build_report
from perseat_addin.model import Book, Period, day_number
from perseat_addin.outputs.report_sheet import report_dict
from perseat_addin.workbook.load import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
SOFFICE = shutil.which("soffice")

# Three clients, every user there since January; November usage only.
#   A on Basic (40/user, 2 h included): 4 users, 10 h, 4 tickets → 2.5 h/user, revenue 160, cost 10 × 50 = 500
#   B on Pro (60/user, unlimited):      2 users,  1 h, 1 ticket  → 0.5 h/user, revenue 120, cost 50
#   C on Vol (volume 50 up to 10, 40 beyond): 9 users, 4.5 h, 3 tickets → 0.5 h/user, revenue 450, cost 225
SCENARIO: dict[str, Any] = {
    "settings": {"LaborCostPerHour": 50, "TargetMargin": 0.5, "PriceStep": 5},
    "plans": [{"Plan": "Basic", "Rate": 40, "IncludedHours": 2}, {"Plan": "Pro", "Rate": 60},
              {"Plan": "Vol", "Rate": 50, "Tiering": "volume"}],
    "tiers": [{"Plan": "Vol", "UpTo": 10, "Rate": 50}, {"Plan": "Vol", "UpTo": None, "Rate": 40}],
    "clients": [{"Client": "A", "Plan": "Basic"}, {"Client": "B", "Plan": "Pro"}, {"Client": "C", "Plan": "Vol"}],
    "roster": [{"Client": c, "UserID": f"{c.lower()}{i}@x.example", "Type": "Employee", "Start": "2026-01-01"}
               for c, n in (("A", 4), ("B", 2), ("C", 9)) for i in range(n)],
    "usage": [{"Client": "A", "Date": "2026-11-03", "Tickets": 1, "Hours": 4},
              {"Client": "A", "Date": "2026-11-10", "Tickets": 3, "Hours": 6},
              {"Client": "B", "Date": "2026-11-12", "Tickets": 1, "Hours": 1},
              {"Client": "C", "Date": "2026-11-20", "Tickets": 3, "Hours": 4.5},
              {"Client": "C", "Date": "2026-12-01", "Tickets": 9, "Hours": 90}],  # after the period: not counted
}


@pytest.fixture
def rep(book: Callable[..., Book]) -> Any:
    return build_report(book(**SCENARIO))


def test_every_figure_matches_the_hand_computation(rep: Any) -> None:
    a, b, c = rep.clients
    assert [x.client for x in rep.clients] == ["A", "B", "C"]
    assert (a.period.users, a.period.tickets, a.period.hours) == (4, 4, 10)
    assert (a.period.hours_per_user, a.period.tickets_per_user, a.period.revenue_per_user) == (
        Fraction(5, 2), 1, 40)
    assert a.period.revenue_cents == 16000 and a.period.cost(Fraction(50)) == 500
    assert a.period.margin(Fraction(50)) == Fraction(160 - 500, 160)  # −212.5 %
    assert a.period.hourly_rate == 16
    assert (b.period.revenue_cents, b.period.margin(Fraction(50)), b.period.hourly_rate) == (
        12000, Fraction(70, 120), 120)
    assert (c.period.revenue_cents, c.period.margin(Fraction(50)), c.period.hourly_rate) == (
        45000, Fraction(1, 2), 100)
    # trailing three months: September and October had the same users and no usage
    assert (a.trailing.months, a.trailing.user_months, a.trailing.hours) == (3, 12, 10)
    assert a.trailing.hours_per_user == Fraction(10, 12) and a.trailing.revenue_cents == 3 * 16000


def test_medians_and_outliers(rep: Any) -> None:
    a, b, c = rep.clients
    assert rep.medians["hours_per_user"] == Decimal("0.50") and rep.medians["users"] == Decimal("4.00")
    assert rep.medians["revenue_per_user"] == Decimal("50.00") and rep.medians["hourly_rate"] == Decimal("100.00")
    assert a.outlier and not b.outlier and not c.outlier  # 2.5 h/user is 5× the median (MAD is 0: no z-score)
    [why] = [x.reason for x in a.advice if x.kind == "outlier"]
    assert why == "2.50 support hours per user this month: 5.0× the portfolio median of 0.50"


def test_robust_z_by_median_and_mad() -> None:
    med, z = robust_z([Fraction(1), Fraction(2), Fraction(3), Fraction(4), Fraction(100)])
    # median 3, absolute deviations 2 1 0 1 97 → MAD 1; z = 0.6745 × (x − 3) ÷ 1
    assert med == 3 and z == pytest.approx([-1.349, -0.6745, 0.0, 0.6745, 65.4265])


def test_one_recommendation_per_client_that_covers_its_cost(rep: Any) -> None:
    a, b, c = rep.clients
    # the price floors: 2.5 h × 50 ÷ (1 − 0.5) = 250 → 250.00; 0.5 × 50 ÷ 0.5 = 50
    assert (a.floor, b.floor, c.floor) == (Decimal("250"), Decimal("50"), Decimal("50"))
    # A: cost 500 needs 1,000.00; Basic earns 160, Pro 4 × 60 = 240, Vol 4 × 50 = 200: no plan covers it, and A
    # is small (4 users ≤ the median 4): a minimum monthly fee of 1,000.00
    assert [x.kind for x in a.advice] == ["minfee", "outlier"]
    assert (a.min_fee, a.price, a.plan_advice, a.needed, a.terms_revenue) == (
        Decimal("1000"), None, None, Decimal("1000.00"), Decimal("1000.00"))
    assert a.recommended.reason == (
        "a minimum monthly fee of 1,000.00 on Basic (today 160.00, 1,000.00 needed): 4 users × 40.00 + MinFee "
        "top-up 840.00 = 1,000.00; cost to serve 500.00 (10.00 h × 50.00/h) at 50% margin")
    # B earns 120 against 50 ÷ 0.5 = 100 needed; C 450 against 450: nothing to change, and B's and C's floors are
    # below what they pay per user (60, 50): a floor is an observation, never advice to cut the price
    assert [x.kind for x in b.advice] == ["none", "floor"] and [x.kind for x in c.advice] == ["none"]
    assert b.recommended.reason == ("this month's revenue 120.00 covers the 100.00 needed; cost to serve 50.00 "
                                    "(1.00 h × 50.00/h) at 50% margin")
    assert b.observations[0].label == "price floor 50.00 (pays 60.00)"
    assert (b.price, b.plan_advice, b.min_fee, b.terms_revenue) == (None, None, None, Decimal("120.00"))


def test_a_plan_from_the_price_list_before_a_custom_price(book: Callable[..., Book]) -> None:
    """A's 2 h cost 100 and need 200: Vol (4 × 50 = 200) covers it, more cheaply than Pro (240). D, with 12 users
    and 36 h (cost 1,800, 3,600 needed), is no small client: no plan reaches 3,600, so a per-user price of
    3,600 ÷ 12 = 300.00 on its plan."""
    usage = [{"Client": "A", "Date": "2026-11-03", "Tickets": 1, "Hours": 2},
             {"Client": "D", "Date": "2026-11-04", "Tickets": 1, "Hours": 36}]
    roster = [*SCENARIO["roster"], *({"Client": "D", "UserID": f"d{i}@x.example", "Type": "Employee",
                                      "Start": "2026-01-01"} for i in range(12))]
    rep = build_report(book(**{**SCENARIO, "usage": usage, "roster": roster,
                               "clients": [*SCENARIO["clients"], {"Client": "D", "Plan": "Basic"}]}))
    a, d = rep.clients[0], rep.clients[3]
    assert (a.recommended.kind, a.plan_advice, a.terms_revenue) == ("plan", "Vol", Decimal("200.00"))
    assert (d.recommended.kind, d.price, d.terms_revenue, d.needed) == (
        "price", Decimal("300"), Decimal("3600.00"), Decimal("3600.00"))
    assert d.recommended.label == "Price 300.00 / user"


def test_volume_cliffs(rep: Any, book: Callable[..., Book]) -> None:
    # Vol: 10 seats cost 500, 11 cost 440; from 9 seats (450 > 440) a client pays more than at 11
    [cliff] = rep.cliffs
    assert (cliff.plan, cliff.seats, cliff.charge, cliff.next_charge, cliff.from_seats, cliff.clients) == (
        "Vol", 10, Decimal("500.00"), Decimal("440.00"), 9, ("C",))
    plans = [p if p["Plan"] != "Vol" else {**p, "Tiering": "graduated"} for p in SCENARIO["plans"]]
    graduated = book(**{**SCENARIO, "plans": plans})
    assert volume_cliffs(graduated.plan("Vol")) == [] and build_report(graduated).cliffs == []


def test_revenue_comes_from_recorded_invoices_when_there_are_any(book: Callable[..., Book]) -> None:
    recorded = [{"InvoiceNo": "INV-9", "Client": "B", "Period": "2026-11", "Subtotal": 130, "Discount": -10,
                 "Tax": 12, "Total": 132, "Status": "Final"}]
    rep = build_report(book(**SCENARIO, invoices=recorded))
    b = rep.clients[1]
    assert b.period.revenue_cents == 12000 and b.period.recorded  # Total − Tax
    assert not rep.clients[0].period.recorded


def test_without_cost_settings_there_is_a_note_and_no_price(book: Callable[..., Book]) -> None:
    rep = build_report(book(**{**SCENARIO, "settings": {}}))
    assert rep.notes and all(c.price is None and c.min_fee is None and c.recommended is None for c in rep.clients)


def test_the_functions_agree_with_the_report_on_the_template() -> None:
    book = load(TEMPLATE)
    rep = build_report(book)
    st = book.settings
    labor, margin, step = (Decimal(st.labor_cost_per_hour_micros or 0) / 10**6,
                           Decimal(st.target_margin_ppm or 0) / 10**6, Decimal(st.price_step_micros or 0) / 10**6)
    for c in rep.clients:
        hours = usage_per_user(book, c.client, st.period)  # USAGEPERUSER
        assert float(hours) == pytest.approx(float(c.period.hours_per_user), abs=1e-12), c.client
        assert recommend_price(hours, labor, margin, Decimal(0), step) == c.floor  # RECOMMENDPRICE: the floor
        assert billable_users(book, c.client, st.period.last) == c.period.end_users  # the Clients column
    assert [c.client for c in rep.clients if c.outlier] == ["Delta Pediatrics"]


def test_the_templates_advice_adds_up() -> None:
    """The issue's cases: Acme gets one recommendation (no "raise to 165" beside "move to Volume Pro, 660.00")
    whose month covers its labour at 35 % margin; the law firm is never offered the kiosk plan; a client paying
    53.52 per user sees 25.00 as a floor, not as a price to charge."""
    rep = build_report(load(TEMPLATE))
    by = {c.client: c for c in rep.clients}
    acme = by["Acme Dental Group"]
    assert acme.period.cost(Fraction(55)) == Fraction(122375, 100)  # 22.25 h × 55.00
    assert len([a for a in acme.advice if not a.observation]) == 1
    assert acme.recommended.kind == "price" and acme.plan_advice is None
    assert acme.terms_revenue >= Decimal("1223.75") / (1 - Decimal("0.35"))
    law = by["Birch & Lowe LLP"]
    assert law.plan_advice != "Shop Floor" and "Shop Floor" not in str(report_dict(rep)["clients"][1])
    cobalt = by["Cobalt Logistics"]
    assert cobalt.price is None and cobalt.recommended.kind == "none"
    assert [a.label for a in cobalt.observations] == ["price floor 25.00 (pays 53.52)"]


def test_perseat_report_writes_report_xlsx_with_three_charts(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "report", str(TEMPLATE), "--out",
                           str(tmp_path), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == {**report_dict(build_report(load(TEMPLATE))), "file": str(tmp_path / "report.xlsx")}
    with zipfile.ZipFile(tmp_path / "report.xlsx") as z:
        charts = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        kinds = [next(k for k in ("barChart", "scatterChart", "lineChart") if k.encode() in z.read(n))
                 for n in charts]
    assert kinds == ["barChart", "scatterChart", "lineChart"]
    ws = load_workbook(tmp_path / "report.xlsx")["Report"]
    head = next(r for r in ws.iter_rows() if r[0].value == "Client")
    heads = [c.value for c in head]
    delta = next(r for r in ws.iter_rows(min_row=head[0].row + 1, values_only=True) if r[0] == "Delta Pediatrics")
    usage = dict(zip(heads[:11], delta[:11], strict=True))
    money = dict(zip(heads[11:], delta[11:], strict=True))
    assert usage["Observations"].startswith("outlier: 3.06 h/user") and money["Client"] == "Delta Pediatrics"
    assert money["Recommendation"].startswith("Plan Essentials: ") and money["Revenue at terms"] == 2342.5
    text = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "report", str(TEMPLATE), "--out",
                           str(tmp_path / "t")], capture_output=True, text=True, timeout=300).stdout
    assert "Delta Pediatrics" in text and "OUTLIER" in text and "cliff: Volume Pro: 25 seats" in text
    assert "Acme Dental Group" in text and "→ Price 140.00 / user" in text


@pytest.mark.skipif(SOFFICE is None or shutil.which("pdftotext") is None, reason="needs LibreOffice and poppler")
def test_the_printed_report_is_readable_with_headings_on_every_page(mem_book: Callable[..., Book],
                                                                     tmp_path: Path) -> None:
    """SPEC §9: landscape at ≥ 8 pt, never shrunk to fit; the client table split across pages, its heading row on
    each; the "Usage" and "Money & advice" columns each on pages of their own, each starting with the client."""
    from defusedxml import ElementTree

    from perseat_addin.model import Client, Plan, Settings
    from perseat_addin.money import MICRO
    from perseat_addin.outputs.pdf import convert_to_pdf
    from perseat_addin.outputs.report_sheet import write_report

    plans = [Plan("Standard", 95 * MICRO, included_hours_centi=150, overage_rate_micros=90 * MICRO),
             Plan("Premium", 145 * MICRO, min_users=5)]
    names = [f"Client {i}" for i in range(59)] + ["Harbor & Sons Commercial Property Management Group"]
    b = mem_book(settings=Settings(Period(2026, 11), 1, labor_cost_per_hour_micros=55 * MICRO,
                                   target_margin_ppm=350_000, price_step_micros=5 * MICRO),
                 plans=plans, clients=[Client(n, plans[i % 2].name, i + 2) for i, n in enumerate(names)],
                 roster=[{"client": n, "user": f"u{k}@x", "start": day_number(dt.date(2026, 1, 1))}
                         for i, n in enumerate(names) for k in range(2 + i % 9)],
                 usage=[{"client": n, "date": day_number(dt.date(2026, 11, 3)), "hours": (i * 7) % 30}
                        for i, n in enumerate(names)])
    xlsx = write_report(build_report(b), tmp_path / "report.xlsx", "Harborview IT")
    convert_to_pdf([xlsx], tmp_path)
    html = subprocess.run(["pdftotext", "-bbox-layout", str(tmp_path / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True, timeout=120).stdout
    ns = {"x": "http://www.w3.org/1999/xhtml"}
    pages = ElementTree.fromstring(html).findall(".//x:page", ns)
    assert all(float(p.get("width")) > float(p.get("height")) for p in pages)  # landscape
    words = [[(w.text or "", float(w.get("yMax")) - float(w.get("yMin"))) for w in p.iter(f"{{{ns['x']}}}word")]
             for p in pages]
    # poppler's word box is 1.3 × the font size (Carlito): 8 pt text is 10.4 high
    smallest = min(h for page in words for _, h in page)
    assert smallest >= 8 * 1.29, smallest
    texts = [" ".join(t for t, _ in page) for page in words]
    table = [t for t in texts if "Client 3" in t or "Harbor & Sons" in t]
    usage = [t for t in table if "Observations" in t]
    money = [t for t in table if "Recommendation" in t]
    assert len(usage) >= 2 and len(money) >= 2 and len(usage) + len(money) == len(table)  # a heading on each
    assert all("Revenue" not in t.split("Observations")[0] for t in usage)  # related columns together
    assert sum(t.count("Harbor & Sons") for t in table) == 2  # the client begins both pages of its row


def test_usage_report_button_draws_the_report_sheet(tmp_path: Path) -> None:
    import perseat_addin.macros as m
    from test_macros import ExcelStandIn, copy_of

    book = ExcelStandIn(copy_of(TEMPLATE, tmp_path))
    outcome = m.usage_report(book)
    assert outcome.ok, outcome.message
    assert "Delta Pediatrics (3.06)" in outcome.message and "1 volume-tier cliffs" in outcome.message
    assert "1 prices, 1 plans, 1 minimum fees, 4 unchanged" in outcome.message
    assert any(s and "measuring usage" in s for s in book.statuses)
    ws = book.wb["Report"]
    assert len(ws._charts) == 3
    head = next(r for r in ws.iter_rows() if r[0].value == "Client")
    acme = next(r for r in ws.iter_rows(min_row=head[0].row + 1) if r[0].value == "Acme Dental Group")
    assert acme[-1].value.startswith("Price 140.00 / user: 12 users × 140.00")  # the same advice as --json
    assert ws["A1"].value == "Usage & pricing report — November 2026"
    m.usage_report(book)  # refreshed, not duplicated
    assert [n for n in book.wb.sheetnames if n.startswith("Report")] == ["Report"]
    book.save()
    with zipfile.ZipFile(io.BytesIO(book.path.read_bytes())) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 3
    assert load(book.path).clients


def test_text_in_usage_hours_is_reported_with_sheet_row_and_column(book: Callable[..., Book]) -> None:
    from perseat_addin.errors import InputProblems

    usage = [*SCENARIO["usage"], {"Client": "B", "Date": "2026-11-13", "Tickets": 1, "Hours": "two"},
             {"Client": "B", "Date": "2026-11-14", "Tickets": -1, "Hours": 1}]
    with pytest.raises(InputProblems) as exc:
        book(**{**SCENARIO, "usage": usage})
    found = {(p.sheet, p.row, p.column): p for p in exc.value.problems}
    assert found[("Usage", 7, "Hours (E)")].message == "'two' is not a number"
    assert found[("Usage", 8, "Tickets (D)")].message == "-1 is negative"


# --------------------------------------------------------------------------
# Time not billable to the client (SPEC §8): work done, shown apart, never revenue


def test_time_not_billable_is_work_done_shown_apart_and_never_revenue(book: Callable[..., Book],
                                                                     tmp_path: Path) -> None:
    # A on Basic with overage: 4 users × 2 h included = 8 h; 10 billable hours → 2 h × 30 = 60 above the 160
    plans = [{**SCENARIO["plans"][0], "OverageRate": 30}, *SCENARIO["plans"][1:]]
    free = [{"Client": "A", "Date": "2026-11-20", "Tickets": 1, "Hours": 5, "Billable": "No"},
            {"Client": "A", "Date": "2026-10-20", "Tickets": 0, "Hours": 1.5, "Billable": "No"}]
    rep = build_report(book(**{**SCENARIO, "plans": plans, "usage": [*SCENARIO["usage"], *free]}))
    a = rep.clients[0]
    assert (a.period.hours, a.period.billable_hours, a.period.non_billable_hours) == (15, 10, 5)
    assert a.period.revenue_cents == 16000 + 6000  # the 5 h No Charge are not billed
    assert a.period.hours_per_user == Fraction(15, 4) and a.period.cost(Fraction(50)) == 750  # but cost to serve
    assert a.period.hourly_rate == Fraction(220, 15)
    assert (a.trailing.hours, a.trailing.non_billable_hours) == (Fraction(33, 2), Fraction(13, 2))
    assert rep.trend[-1].non_billable_centi == 500 and rep.trend[-2].non_billable_centi == 150
    doc = report_dict(rep)["clients"][0]["period"]
    assert (doc["hours"], doc["billable_hours"], doc["non_billable_hours"], doc["revenue"], doc["cost"]) == (
        "15.00", "10.00", "5.00", "220.00", "750.00")
    assert report_dict(rep)["trend"][-1]["non_billable_hours"] == "5.00"
    from perseat_addin.outputs.report_sheet import write_report

    ws = load_workbook(write_report(rep, tmp_path / "report.xlsx"))["Report"]
    head = next(r for r in ws.iter_rows() if r[0].value == "Client")
    row = dict(zip([c.value for c in head],
                   next(r for r in ws.iter_rows(min_row=head[0].row + 1, values_only=True) if r[0] == "A"),
                   strict=False))
    assert (row["Hours"], row["Non-billable hours"], row["Revenue"], row["Cost to serve"]) == (15, 5, 220, 750)
    trend_head = next(r for r in ws.iter_rows() if r[0].value == "Month" and r[4].value == "Non-billable hours")
    nov = ws.cell(trend_head[0].row + len(rep.trend), 5).value
    assert nov == 5


EVIL = ["+cmd|' /C calc'!A0", "=1+1", "@SUM(1)", "-2+3", "\tTabbed", "=HYPERLINK(\"http://evil.example\",\"x\")"]
_CELL_REF = re.compile(r"^('Report'|Report)!\$[A-Z]{1,3}\$\d+(:\$[A-Z]{1,3}\$\d+)?$")


@pytest.mark.parametrize("n_other", [0, 10], ids=["six clients", "sixteen clients"])
def test_client_names_stay_text_and_never_become_chart_formulas(mem_book: Callable[..., Book], tmp_path: Path,
                                                                 n_other: int) -> None:
    """SPEC §10: a client called =1+1 is a text cell in report.xlsx; charts take names from cells, and every
    series name is a fixed word ("+cmd|' /C calc'!A0" would otherwise be an XlsxWriter reference)."""
    from perseat_addin.model import Client, Plan, Settings
    from perseat_addin.money import MICRO
    from perseat_addin.outputs.report_sheet import write_report

    names = [*EVIL, *(f"Client {i}" for i in range(n_other))]
    plan = Plan("=Plan()", 40 * MICRO, included_hours_centi=100)
    b = mem_book(settings=Settings(Period(2026, 11), 1, labor_cost_per_hour_micros=50 * MICRO,
                                   target_margin_ppm=500_000, price_step_micros=5 * MICRO),
                 plans=[plan], clients=[Client(n, plan.name, 2) for n in names],
                 roster=[{"client": n, "user": f"u{i}@x", "start": day_number(dt.date(2026, 1, 1))}
                         for n in names for i in range(3)],
                 usage=[{"client": n, "date": day_number(dt.date(2026, 11, 3)), "hours": 2 + k}
                        for k, n in enumerate(names)])
    path = write_report(build_report(b), tmp_path / "report.xlsx", "=MSP")
    ws = load_workbook(path)["Report"]
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert not any(c.data_type == "f" for c in cells)
    texts = [c for c in cells if isinstance(c.value, str)]
    for name in [*EVIL, "=Plan()"]:
        found = [c for c in texts if c.value in (name, "'" + name)]  # as typed, or with OWASP's apostrophe
        assert found and all(c.data_type == "s" and c.number_format == "@" for c in found), name
    assert any(c.value.lstrip("'").startswith("=MSP · ") for c in texts)
    with zipfile.ZipFile(path) as z:
        charts = [z.read(n).decode() for n in sorted(z.namelist()) if n.startswith("xl/charts/chart")]
    assert len(charts) == 3
    formulas = [html.unescape(f) for xml in charts for f in re.findall(r"<c:f>(.*?)</c:f>", xml)]
    assert formulas and all(_CELL_REF.match(f) for f in formulas), formulas
    series_names = [html.unescape(n) for xml in charts
                    for n in re.findall(r"<c:ser>.*?<c:tx>.*?<c:v>(.*?)</c:v>", xml, re.S)]
    assert sorted(set(series_names)) == ["Clients", "Hours / user", "Portfolio median", "Revenue / user"]
    scatter = next(xml for xml in charts if "scatterChart" in xml)
    labels = re.findall(r"<c:dLbl>.*?<c:f>(.*?)</c:f>", scatter, re.S)
    assert len(labels) == len(names)  # each point labelled from its client's cell


def test_recommend_keeps_a_prorated_month_and_never_crosses_basis() -> None:
    """Straight from the rule: a month that was prorated is judged by a full month at today's terms; a kiosk
    client (Basis greater, 6 kiosks) is offered only another kiosk plan, a users client only users plans."""
    from perseat_addin.engine.advice import month_revenue, recommend
    from perseat_addin.model import Basis, Plan
    from perseat_addin.money import MICRO

    std = Plan("Standard", 95 * MICRO)
    big = Plan("Big", 300 * MICRO)
    kiosk = Plan("Shop Floor", 55 * MICRO, min_users=4, basis=Basis.GREATER)
    floor = Plan("Floor Plus", 90 * MICRO, basis=Basis.GREATER)
    listed = [std, big, kiosk, floor]
    args: dict[str, Any] = {"users": 3, "devices": 6, "billable_centi": 0, "discount_ppm": 0, "small": False,
                            "step_micros": None}
    # a full month on Standard: 3 × 95 = 285 ≥ 250 needed, though this month (joined late) earned 100
    keep = recommend(std, listed, needed_cents=25_000, today_cents=10_000, **args)
    assert (keep.kind, keep.terms) == ("none", None) and "full month on Standard earns 285.00" in keep.reason
    # 600 needed: Big (900) is the users plan that covers it; Shop Floor's 6 kiosks × 55 = 330 and Floor Plus
    # 540 would not be offered to a users client even if they did
    users_rec = recommend(std, listed, needed_cents=60_000, today_cents=28_500, **args)
    assert (users_rec.kind, users_rec.value, users_rec.revenue_cents) == ("plan", "Big", 90_000)
    kiosk_rec = recommend(kiosk, listed, needed_cents=50_000, today_cents=33_000, **args)
    assert (kiosk_rec.kind, kiosk_rec.value) == ("plan", "Floor Plus")
    assert month_revenue(floor, 3, 6, 0, 0) == 54_000  # 6 seats (the kiosks) × 90
    # nothing can cover a client whose discount is 100 %: said so, no terms
    free = recommend(std, listed, needed_cents=60_000, today_cents=0,
                     **{**args, "discount_ppm": 1_000_000})
    assert (free.kind, free.terms) == ("none", None) and "discount is 100%" in free.reason


def test_usage_outside_the_months_is_left_out_and_fractions_of_a_ticket_add_up(book: Callable[..., Book]) -> None:
    extra = [{"Client": "A", "Date": "2026-11-21", "Tickets": 0.5, "Hours": 0.25},
             {"Client": "A", "Date": "2026-11-22", "Tickets": 0.25, "Hours": 0.5, "Billable": "No"},
             {"Client": "A", "Date": "2019-01-05", "Tickets": 7, "Hours": 9},  # years before the trend's months
             {"Client": "B", "Date": "2027-06-01", "Tickets": 5, "Hours": 4}]  # after the period
    base = build_report(book(**SCENARIO))
    rep = build_report(book(**{**SCENARIO, "usage": [*SCENARIO["usage"], *extra]}))
    a0, a = base.clients[0], rep.clients[0]
    assert a.period.tickets == a0.period.tickets + Fraction(3, 4)
    assert (a.period.hours, a.period.non_billable_hours) == (a0.period.hours + Fraction(3, 4), Fraction(1, 2))
    assert [c.period for c in rep.clients[1:]] == [c.period for c in base.clients[1:]]
    assert [t.tickets for t in rep.trend[:-1]] == [t.tickets for t in base.trend[:-1]]
    assert rep.trend[-1].tickets == base.trend[-1].tickets + Fraction(3, 4)
