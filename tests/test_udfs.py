"""The Excel functions (SPEC §5) called the way Excel calls them, compared with the engine.

How Excel reaches the functions, and the stand-in used here: see ``xlstandin``.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from xlstandin import (
    ERROR_CODES,
    MISSING,
    N_A,
    REF,
    VALUE,
    WINDOWS,
    Formulas,
    engine_installed,
    excel,
    rng,
    serial,
    xlfunc,
)
from xlwings import conversion

from perseat_addin import cli, udfs
from perseat_addin.cells import ExcelError
from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.excel import functions
from perseat_addin.model import RECURRING, Invoice
from perseat_addin.workbook.load import load

FUNCTIONS = udfs.FUNCTIONS
_excel = udfs._excel

@pytest.fixture(scope="module", autouse=True)
def excel_engine() -> Any:
    """The stand-in ``excel`` engine, registered for this module only."""
    yield from engine_installed()


@pytest.fixture(autouse=True)
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Programming errors raise in tests instead of hiding in a cell as ``#PERSEAT! internal error``."""
    monkeypatch.setattr(_excel, "STRICT", True)


# --------------------------------------------------------------------------
# The registry: SPEC §5 names and argument order, help for the Function Wizard

# SPEC's signatures; RECOMMENDPLAN's optional [tiers], [users], [current_plan] are this product's addition (after SPEC's
# arguments, so every SPEC call still works): the cheapest plan for that many users, not by Rate alone.
# The handle forms SPEC §5 names, USAGEPERUSER(Book, client, period_start, [measure]) and
# INVOICEPREVIEW(client, Book), leave out arguments the table forms need: Excel refuses a call that omits a
# required VBA argument, so those are optional to Excel and checked by the function. PERSEATUSAGE is this
# product's addition: a Usage handle for PERSEATBOOK, so a Roster edit does not pass Usage again.
SPEC_SIGNATURES = """
SEATCHARGE(users, plan, [plans], [tiers], [devices])
TIERPRICE(users, tiers, [mode])
TIERCHARGE(users, tiers, [mode])
BILLEDSEATS(users, plan, plans)
MINFEETOPUP(charge, plan, plans)
BILLABLEUSERS(roster, client, as_of, [usertypes])
PRORATE(amount, start, end, period_start, [day_count], [rounding])
USAGEPERUSER(usage, roster, [client], [period_start], [measure], [usertypes])
RECOMMENDPRICE(hours_per_user, cost_per_hour, target_margin, [other_cost_per_user], [step])
RECOMMENDPLAN(hours_per_user, plans, [tiers], [users], [current_plan])
INVOICEPREVIEW(client, settings, [plans], [tiers], [usertypes], [clients], [roster], [devices], [addons], [usage])
PERSEATUSAGE(usage)
PERSEATBOOK(settings, plans, tiers, usertypes, clients, roster, [devices], [addons], [usage])
CLIENTCHARGE(book, client)
"""


def spec_signatures() -> list[tuple[str, list[tuple[str, bool]]]]:
    out = []
    for line in SPEC_SIGNATURES.strip().splitlines():
        name, args = re.fullmatch(r"(\w+)\((.*)\)", line).groups()  # type: ignore[union-attr]
        out.append((name, [(a.strip("[] "), a.strip().startswith("[")) for a in args.split(",")]))
    return out


def test_registry_lists_every_spec_function_in_order_with_its_arguments() -> None:
    assert [(f.name, [(a.name, a.optional) for a in f.args]) for f in FUNCTIONS] == spec_signatures()
    assert udfs.FUNCTIONS is FUNCTIONS
    for f in FUNCTIONS:
        fn = getattr(udfs, f.name)
        params = inspect.signature(fn).parameters.values()
        assert [(p.name, p.default is None) for p in params] == [(a.name, a.optional) for a in f.args]
        assert all(p.default is inspect.Parameter.empty for p in params if p.default is not None)
        assert fn.__doc__ == f.description


def test_descriptions_and_help_fit_excel() -> None:
    for f in FUNCTIONS:
        assert f.category == "Per-Seat Billing"
        for t in (f.description, *(a.help for a in f.args)):
            assert 10 < len(t) <= 255 and "\n" not in t and t == t.strip() and t.endswith("."), t
        optional = [a.optional for a in f.args]
        assert optional == sorted(optional), f"{f.name}: optional arguments come last"
        assert len({a.name for a in f.args}) == len(f.args)


def test_xlwings_registers_each_function_from_the_registry() -> None:
    """What xlwings' own decorators record (the basis of its VBA wrapper and the MacroOptions help)."""
    for f in FUNCTIONS:
        info = xlfunc(f.name).__xlfunc__
        assert info["name"] == f.name and not info["sub"]
        assert info["category"] == f.category and info["volatile"] is f.volatile
        assert info["call_in_wizard"] is f.call_in_wizard
        assert info["ret"]["doc"] == f.description
        assert [a["name"] for a in info["args"]] == [a.name for a in f.args]
        for got, a in zip(info["args"], f.args, strict=True):
            assert got["doc"] == a.help
            assert ("optional" in got) is a.optional and got.get("optional") is None
            assert {k: got["options"][k] for k in a.convert} == dict(a.convert)
            assert got["options"]["convert"] == "raw"  # COM values as Excel passes them, read by _excel


def test_the_stand_in_mirrors_xlwings_windows_value_cleaning() -> None:
    assert ERROR_CODES["#N/A"] == N_A and ERROR_CODES["#VALUE!"] == VALUE and ERROR_CODES["#REF!"] == REF
    opts = {"err_to_str": True}
    when = dt.datetime(2026, 11, 15)
    assert conversion.read(None, rng(("a", 1, None, "", when, N_A)), opts) == ["a", 1.0, None, None, when, "#N/A"]
    assert conversion.read(None, N_A, {}) is None  # without err_to_str an error looks blank
    assert conversion.read(None, rng(("a", N_A)), {"convert": "raw"}) == (("a", N_A),)  # raw: untouched


def test_the_edge_reads_com_values_as_xlwings_cleans_them() -> None:
    """``_excel.com_cell`` gives every COM value the meaning xlwings' own Windows cleaning gives it."""
    utc = dt.timezone.utc
    samples = ["a", 1.5, 0.0, None, True, Decimal("12.50"), dt.datetime(2026, 11, 15, 9, 30),
               dt.datetime(2026, 11, 15, 9, 30, tzinfo=utc), *WINDOWS["cell_errors"]]
    for v in samples:
        want = conversion.read(None, ((v,),), {"err_to_str": True})
        got = _excel.com_cell(v)
        if isinstance(got, ExcelError):
            got = str(got)
        assert got == want and type(got) is type(want), (v, got, want)
    assert _excel.com_cell("") == "" and _excel.one("", "x") is None  # blank text reads as blank, as xlwings'


# --------------------------------------------------------------------------
# SPEC §4 worked examples through the functions

TIERS = rng(("UpTo", "Rate"), (5, 7), (10, 6.5), (None, 6))


@pytest.mark.parametrize(("mode", "users", "charge"), [
    ("volume", 6, 39.00), ("volume", 25, 150.00), ("graduated", 6, 41.50), ("graduated", 25, 157.50),
    (MISSING, 6, 41.50), (None, 25, 157.50), ("VOLUME", 6, 39.00),
])
def test_worked_example_tiers(mode: Any, users: int, charge: float) -> None:
    assert excel("TIERCHARGE", float(users), TIERS, mode) == charge


def test_tier_price_per_user() -> None:
    assert excel("TIERPRICE", 6.0, TIERS, "volume") == 6.50
    assert excel("TIERPRICE", 25.0, TIERS, "volume") == 6.00
    assert excel("TIERPRICE", 6.0, TIERS) == 6.92  # 41.50 / 6, to the cent
    assert excel("TIERPRICE", 25.0, TIERS, "graduated") == 6.30  # 157.50 / 25
    assert excel("TIERPRICE", 5.0, TIERS, "volume") == 7.00  # UpTo is inclusive
    # headers matched like the workbook's: any case, spaces ignored, any column order
    assert excel("TIERCHARGE", 25.0, rng(("rate", "Up To"), (7, 5), (6.5, 10), (6, None))) == 157.50


@pytest.mark.parametrize(("start", "period_start", "day_count", "rounding", "amount"), [
    (dt.datetime(2026, 7, 10), dt.date(2026, 7, 1), "thirty", MISSING, 7.33),
    (dt.datetime(2026, 7, 10), dt.date(2026, 7, 1), "actual", MISSING, 7.10),
    (dt.datetime(2026, 7, 10), dt.date(2026, 7, 31), MISSING, MISSING, 7.10),
    (dt.datetime(2026, 11, 11), dt.date(2026, 11, 1), MISSING, "half-up", 6.67),  # 20 of 30 days
    (dt.datetime(2026, 11, 11), dt.date(2026, 11, 1), "actual", "down", 6.66),
])
def test_worked_example_proration(start: Any, period_start: dt.date, day_count: Any, rounding: Any,
                                  amount: float) -> None:
    # period_start as a DATE() formula passes it: a serial number; end is a blank cell
    assert excel("PRORATE", 10.0, start, None, serial(period_start), day_count, rounding) == amount


def test_worked_example_minimum_fee() -> None:
    plans = rng(("Plan", "Rate", "MinFee"), ("Small office", 10, 100))
    charge = 50 + excel("SEATCHARGE", 3.0, 10.0)  # base 50 + 3 users × 10 (plan given as a flat rate)
    assert charge == 80.00
    assert excel("MINFEETOPUP", charge, "Small office", plans) == 20.00
    assert charge + excel("MINFEETOPUP", charge, "Small office", plans) == 100.00
    assert excel("SEATCHARGE", 3.0, "Small office", plans) == 100.00  # the minimum applies to the seats alone
    assert excel("MINFEETOPUP", 120.0, "Small office", plans) == 0


def test_seat_charge_applies_every_plan_rule() -> None:
    plans = rng(("Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate"),
                ("Premium", 145, "flat", 5, None, None, 35),
                ("Shop Floor", 55, None, 4, None, "greater", None),
                ("Volume Pro", 60, "volume", None, None, None, None))
    tiers = rng(("Plan", "UpTo", "Rate"), ("Volume Pro", 10, 60), ("Volume Pro", 25, 55), ("Volume Pro", None, 50))
    assert excel("SEATCHARGE", 4.0, "Premium", plans) == 725.00  # MinUsers 5
    assert excel("BILLEDSEATS", 4.0, "premium", plans) == 5
    assert excel("SEATCHARGE", 7.0, "Premium", plans, MISSING, 2.0) == 7 * 145 + 2 * 35
    assert excel("SEATCHARGE", 3.0, "Shop Floor", plans, MISSING, 6.0) == 330.00  # greater of users and devices
    assert excel("BILLEDSEATS", 3.0, "Shop Floor", plans) == 4
    assert excel("SEATCHARGE", 26.0, "Volume Pro", plans, tiers) == 1300.00
    assert excel("SEATCHARGE", 26.0, "Volume Pro", plans, tiers, None) == 1300.00  # blank devices = 0
    assert excel("SEATCHARGE", 26.0, "Volume Pro", plans) == \
        '#PERSEAT! plan "Volume Pro" is volume: give the Tiers table too, e.g. Tiers[#All]'
    assert excel("SEATCHARGE", 3.0, Decimal("12.50")) == 37.50  # a Currency-formatted cell arrives as Decimal


# --------------------------------------------------------------------------
# The template workbook: the functions agree with the invoices the CLI produces


def com_value(cell: Any) -> Any:
    """A cell as COM's ``Range.Value`` hands it over."""
    if cell.data_type == "e":
        return ERROR_CODES[str(cell.value)]
    v = cell.value
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    return v


class Template:
    """``perseat template`` built fresh: its tables as Excel passes them, and the CLI's invoice run."""

    def __init__(self, path: Path):
        self.path = path
        wb = load_workbook(path, data_only=True)
        self.tables: dict[str, tuple[tuple[Any, ...], ...]] = {}
        for ws in wb.worksheets:
            for name, ref in ws.tables.items():
                self.tables[name] = tuple(tuple(com_value(c) for c in row) for row in ws[ref])
        wb.close()
        self.book = load(path)
        self.run: Run = invoice_run(self.book)
        self.period = self.book.settings.period
        self.period_start = serial(self.period.first)  # the template's PeriodStart name: a serial number
        self.period_end = serial(self.period.last)

    def __getitem__(self, name: str) -> tuple[tuple[Any, ...], ...]:
        return self.tables[name]

    def handle(self) -> str:
        """A PERSEATBOOK handle to the template's tables (Clients' own columns, Usage through PERSEATUSAGE),
        as its Book cell holds one."""
        t = self.tables
        clients = tuple(r[: t["Clients"][0].index("End") + 1] for r in t["Clients"])
        usage = excel("PERSEATUSAGE", t["Usage"])
        book = excel("PERSEATBOOK", t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"], clients, t["Roster"],
                     t["Devices"], t["AddOns"], usage)
        assert isinstance(book, str) and book.startswith("perseat · "), book
        return book

    def invoice(self, client: str) -> Invoice:
        (inv,) = [i for i in self.run.invoices if i.client.name == client]
        return inv

    def rows(self, table: str) -> list[dict[str, Any]]:
        head, *body = self.tables[table]
        return [dict(zip(head, r, strict=True)) for r in body if any(v is not None for v in r)]


@pytest.fixture(scope="module")
def tpl(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("template") / "workbook_template.xlsm"
    assert cli.main(["template", "--out", str(path)]) == 0
    return Template(path)


def preview(tpl: Template, client: str) -> Any:
    t = tpl
    return excel("INVOICEPREVIEW", client, t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"], t["Clients"],
                 t["Roster"], t["Devices"], t["AddOns"], t["Usage"])


def test_invoice_preview_equals_the_cli_invoice_for_every_client(tpl: Template) -> None:
    assert len(tpl.run.invoices) >= 7
    for inv in tpl.run.invoices:
        got = preview(tpl, inv.client.name)
        assert got[0] == ["Line", "Kind", "Description", "Quantity", "UnitPrice", "Amount"]
        lines = got[1:-1]
        assert lines == [[k, ln.kind, ln.description, float(ln.quantity), float(ln.unit_price),
                          ln.amount_cents / 100] for k, ln in enumerate(inv.lines, start=1)]
        assert got[-1] == ["", "total", f"Total {inv.currency}", "", "", inv.total_cents / 100]
        assert round(sum(r[5] for r in lines), 2) == got[-1][5]


def test_invoice_preview_of_clients_without_an_invoice(tpl: Template) -> None:
    assert preview(tpl, "Harbor Yacht Club") == \
        '#PERSEAT! no invoice for "Harbor Yacht Club" in November 2026: inactive'
    assert preview(tpl, "Zenith Corp") == '#PERSEAT! client "Zenith Corp" not in Clients'
    assert preview(tpl, " acme dental group ")[1][2] == tpl.invoice("Acme Dental Group").lines[0].description


def test_invoice_preview_without_optional_tables(tpl: Template) -> None:
    """Devices, AddOns and Usage omitted: the invoice of a workbook without them."""
    t = tpl
    got = excel("INVOICEPREVIEW", "Granite Accounting", t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"],
                t["Clients"], t["Roster"])
    inv = tpl.invoice("Granite Accounting")
    assert [r[1] for r in got[1:-1]] == [ln.kind for ln in inv.lines if ln.kind != "overage"]


BILLABLE_ON = {  # the template's roster, counted by hand (SPEC §3 rules)
    "Acme Dental Group": {1: 11, 14: 11, 15: 13, 20: 13, 21: 12, 30: 12},  # hires Nov 15, leaver last day Nov 20
    "Birch & Lowe LLP": {1: 4, 30: 4},  # the scan account is a Service type
    "Cobalt Logistics": {1: 27, 30: 27},  # 24 drivers, 2 staff, 1 on its own Premium plan
    "Delta Pediatrics": {1: 9, 30: 9},
    "Elm Street Bakery": {1: 2, 30: 2},
    "Fjord Manufacturing": {1: 3, 30: 3},  # the kiosk login is Shared
    "Granite Accounting": {1: 7, 27: 7, 30: 7},  # intern from Nov 27 < 5 days; duplicate UserID once
    "Harbor Yacht Club": {1: 2},  # an inactive client still has billable users
    "Nobody Inc": {1: 0},
}


def test_billable_users(tpl: Template) -> None:
    for client, days in BILLABLE_ON.items():
        for day, n in days.items():
            as_of = dt.datetime(2026, 11, day)
            assert excel("BILLABLEUSERS", tpl["Roster"], client, as_of, tpl["UserTypes"]) == n, (client, day)
    # PeriodEnd is a serial number; omitted user types = the template's defaults (the same as its table)
    assert excel("BILLABLEUSERS", tpl["Roster"], "Acme Dental Group", tpl.period_end) == 12
    # MinActiveDays counts within the month of as_of: the intern is billable in December
    assert excel("BILLABLEUSERS", tpl["Roster"], "Granite Accounting", dt.datetime(2026, 12, 1)) == 8


def _devices(tpl: Template, client: str) -> int:
    return sum(1 for r in tpl.rows("Devices") if r["Client"] == client)


def test_seat_charge_equals_the_invoice_seats_for_steady_clients(tpl: Template) -> None:
    """A client whose seats never change pays exactly price(s): SEATCHARGE of its BillableUsers and devices."""
    plans = {r["Client"]: r["Plan"] for r in tpl.rows("Clients")}
    mins = {r["Plan"]: r["MinFee"] or 0 for r in tpl.rows("Plans")}
    checked = []
    for inv in tpl.run.invoices:
        kinds = [ln.kind for ln in inv.lines]
        groups = {ln.plan for ln in inv.lines if ln.kind == "seats"}  # a graduated plan: a seats line per tier
        steady = "seat-change" not in kinds and "device-change" not in kinds and len(groups) == 1
        if not steady or (mins[plans[inv.client.name]] and "addon" in kinds):
            continue
        users = excel("BILLABLEUSERS", tpl["Roster"], inv.client.name, tpl.period_end, tpl["UserTypes"])
        got = excel("SEATCHARGE", users, plans[inv.client.name], tpl["Plans"], tpl["Tiers"],
                    float(_devices(tpl, inv.client.name)))
        want = sum(ln.amount_cents for ln in inv.lines if ln.kind in ("seats", "devices", "minimum"))
        assert got == want / 100, inv.client.name
        checked.append(inv.client.name)
    assert len(checked) >= 4, checked


def test_min_fee_top_up_equals_the_invoice_minimum_line(tpl: Template) -> None:
    plans = {r["Client"]: r["Plan"] for r in tpl.rows("Clients")}
    topped = 0
    for inv in tpl.run.invoices:
        recurring = sum(ln.amount_cents for ln in inv.lines if ln.kind in RECURRING) / 100
        minimum = sum(ln.amount_cents for ln in inv.lines if ln.kind == "minimum") / 100
        assert excel("MINFEETOPUP", recurring, plans[inv.client.name], tpl["Plans"]) == minimum
        topped += minimum > 0
    assert topped  # the template shows a client topped up to its MinFee


def test_usage_per_user_matches_the_overage_line(tpl: Template) -> None:
    """Hours above IncludedHours × average users (the invoice's overage) = (billable hours per user − included) ×
    average; USAGEPERUSER counts every hour, the time not billable to the client (Billable No) too."""
    plans = {r["Client"]: r["Plan"] for r in tpl.rows("Clients")}
    included = {r["Plan"]: r["IncludedHours"] for r in tpl.rows("Plans")}
    usage = tpl["Usage"]
    billable = [usage[0], *(r for r in usage[1:] if r[list(usage[0]).index("Billable")] != "No")]
    assert len(billable) < len(usage)  # the template has time not billable to the client
    checked = 0
    for inv in tpl.run.invoices:
        (over,) = [ln for ln in inv.lines if ln.kind == "overage"] or [None]
        if over is None:
            continue
        client = inv.client.name
        per_user = excel("USAGEPERUSER", billable, tpl["Roster"], client, tpl.period_start, MISSING,
                         tpl["UserTypes"])
        days = [excel("BILLABLEUSERS", tpl["Roster"], client, dt.datetime(2026, 11, d), tpl["UserTypes"])
                for d in range(1, tpl.period.days + 1)]
        average = sum(days) / len(days)
        assert round((per_user - included[plans[client]]) * average, 2) == float(over.quantity), client
        checked += 1
    assert checked >= 1
    november = [r for r in tpl.rows("Usage") if r["Client"] == "Acme Dental Group" and r["Date"].month == 11]
    acme_hours = sum(r["Hours"] for r in november)
    acme_tickets = sum(r["Tickets"] for r in november)
    average = (11 * 14 + 13 * 6 + 12 * 10) / 30
    assert excel("USAGEPERUSER", tpl["Usage"], tpl["Roster"], "Acme Dental Group", tpl.period_start) == \
        pytest.approx(acme_hours / average, rel=1e-12)
    assert excel("USAGEPERUSER", tpl["Usage"], tpl["Roster"], "Acme Dental Group", tpl.period_start, "Tickets") == \
        pytest.approx(acme_tickets / average, rel=1e-12)


def test_recommended_price_and_plan_from_the_template(tpl: Template) -> None:
    settings = {r["Setting"]: r["Value"] for r in tpl.rows("Settings")}
    hours = excel("USAGEPERUSER", tpl["Usage"], tpl["Roster"], "Acme Dental Group", tpl.period_start)
    price = excel("RECOMMENDPRICE", hours, settings["LaborCostPerHour"], settings["TargetMargin"], 0.0,
                  settings["PriceStep"])
    cost = hours * settings["LaborCostPerHour"] / (1 - settings["TargetMargin"])
    assert price % settings["PriceStep"] == 0 and cost <= price < cost + settings["PriceStep"]
    unlimited = [r for r in tpl.rows("Plans") if r["IncludedHours"] is None]
    assert excel("RECOMMENDPLAN", hours, tpl["Plans"]) == min(unlimited, key=lambda r: r["Rate"])["Plan"]


def test_recommend_price_is_exact() -> None:
    assert excel("RECOMMENDPRICE", 1.5, 55.0, 0.35) == 126.93  # 82.50 / 0.65 = 126.923… up to the cent
    assert excel("RECOMMENDPRICE", 1.5, 55.0, "35%", 0.0, 5.0) == 130.0
    assert excel("RECOMMENDPRICE", 2.0, 50.0, 0.5, 10.0, 5.0) == 220.0  # exactly on a step stays there
    assert excel("RECOMMENDPRICE", 0.1, 0.3, 0.0) == 0.03  # 0.1 × 0.3 is 0.03 exactly, not 0.030000000000000002


def test_recommend_plan() -> None:
    plans = rng(("Plan", "Rate", "IncludedHours"), ("Basic", 50, 1), ("Pro", 80, 3), ("Max", 120, None),
                ("Pro Plus", 80, 3))
    assert [excel("RECOMMENDPLAN", h, plans) for h in (0.0, 1.0, 1.01, 3.0, 12.0)] == \
        ["Basic", "Basic", "Pro", "Pro", "Max"]
    capped = rng(("Plan", "Rate", "IncludedHours"), ("Basic", 50, 1))
    assert excel("RECOMMENDPLAN", 2.5, capped) == "#PERSEAT! no plan includes 2.5 hours per user"


def test_recommend_plan_for_a_number_of_users() -> None:
    """By Rate, Lite (40) wins; for 3 users its MinUsers 10 makes it 400.00, more than Team (3 × 45 = 135.00);
    at 30 users the volume plan's 25+ tier (30 × 35 = 1,050.00) beats Lite's 1,200.00 and Team's 1,350.00."""
    plans = rng(("Plan", "Rate", "Tiering", "MinUsers", "IncludedHours"), ("Lite", 40, "flat", 10, None),
                ("Team", 45, "flat", 0, None), ("Bulk", 50, "volume", 0, None), ("Capped", 10, "flat", 0, 0.5))
    tiers = rng(("Plan", "UpTo", "Rate"), ("Bulk", 25, 50), ("Bulk", None, 35))
    assert excel("RECOMMENDPLAN", 2.0, plans, tiers) == "Lite"
    assert excel("RECOMMENDPLAN", 2.0, plans, tiers, 3) == "Team"
    assert excel("RECOMMENDPLAN", 2.0, plans, tiers, 30) == "Bulk"
    assert excel("RECOMMENDPLAN", 0.5, plans, tiers, 3) == "Capped"  # 30.00 and its hours cover 0.5
    assert excel("RECOMMENDPLAN", 2.0, plans, None, 30) == "Lite"  # without Tiers the volume plan cannot be priced
    assert excel("RECOMMENDPLAN", 2.0, plans, tiers, 2.5) == "#PERSEAT! users: 2.5 is not a whole number"


def test_the_templates_client_formulas_agree_with_its_invoices(tpl: Template) -> None:
    """Every formula column of the template's Clients table, evaluated row by row through the functions (the
    Book and UsageBook cells first, as Excel orders them), equals the invoice run, the table forms of the same
    functions and the results saved in the file."""
    wb = load_workbook(tpl.path)
    names = {}
    for n, d in wb.defined_names.items():
        cell = re.fullmatch(r"=?(\w+)!\$([A-Z]+)\$(\d+)", d.attr_text)
        names[n] = wb[cell.group(1)][f"{cell.group(2)}{cell.group(3)}"].value if cell else d.attr_text
    assert names["Book"].startswith("=PERSEATBOOK(") and "UsageBook" in names["Book"]
    assert "Clients[[#All],[Client]:[End]]" in names["Book"]  # the Clients columns that do not use Book
    ws = wb["Clients"]
    (table,) = ws.tables.values()
    head, *body = [[c.value for c in r] for r in ws[table.ref]]
    wb.close()
    saved = load_workbook(tpl.path, data_only=True)
    cached = [[c.value for c in r] for r in saved["Clients"][table.ref]][1:]
    saved.close()
    formula_cols = [h for h, v in zip(head, body[0], strict=True) if isinstance(v, str) and v.startswith("=")]
    assert {"BillableUsers", "MonthlyCharge", "HoursPerUser"} <= set(formula_cols)
    assert all("Roster[" not in body[0][head.index(h)] and "Usage[" not in body[0][head.index(h)]
               for h in formula_cols)  # no row passes the big tables: they cross once, into Book
    ev = Formulas(tpl.tables, names)
    results = {}
    for r, saved_row in zip(body, cached, strict=True):
        row = {h: com_value_of(v) for h, v in zip(head, r, strict=True)}
        for h in formula_cols:
            row[h] = ev.evaluate(r[head.index(h)], row)
            assert not (isinstance(row[h], str) and row[h].startswith("#PERSEAT!")), (row["Client"], h, row[h])
            assert row[h] == saved_row[head.index(h)], (row["Client"], h)
        results[row["Client"]] = row
    for client, days in BILLABLE_ON.items():
        if client in results:
            assert results[client]["BillableUsers"] == days[max(days)]
    invoices = {inv.client.name: inv for inv in tpl.run.invoices}
    for client, row in results.items():
        inv = invoices.get(client)
        assert row["MonthlyCharge"] == (inv.total_cents / 100 if inv else 0), client
        assert row["BillableUsers"] == excel("BILLABLEUSERS", tpl["Roster"], client, tpl.period_end,
                                             tpl["UserTypes"])
        assert row["HoursPerUser"] == excel("USAGEPERUSER", tpl["Usage"], tpl["Roster"], client, tpl.period_start,
                                            "hours", tpl["UserTypes"])
    assert results["Acme Dental Group"]["MonthlyCharge"] == invoices["Acme Dental Group"].total_cents / 100


def com_value_of(v: Any) -> Any:
    """A cell value (openpyxl) as COM hands it over; formula text stays (evaluated by the test)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    return float(v) if isinstance(v, int | float) else v


# --------------------------------------------------------------------------
# Bad input: a short #PERSEAT! message in the cell, never a traceback

PLANS = rng(("Plan", "Rate", "MinFee"), ("Standard", 95, None))


@pytest.mark.parametrize(("name", "args", "answer"), [
    # text in a number
    ("SEATCHARGE", ("ten", "Standard", PLANS), '#PERSEAT! users: "ten" is not a number'),
    ("PRORATE", ("lots", None, None, 46327.0), '#PERSEAT! amount: "lots" is not a number'),
    ("RECOMMENDPRICE", (1.0, "cheap", 0.3), '#PERSEAT! cost_per_hour: "cheap" is not a number'),
    ("SEATCHARGE", (2.5, "Standard", PLANS), "#PERSEAT! users: 2.5 is not a whole number"),
    ("SEATCHARGE", (-1.0, "Standard", PLANS), "#PERSEAT! users cannot be negative (-1)"),
    ("SEATCHARGE", (dt.datetime(2026, 1, 1), "Standard", PLANS), "#PERSEAT! users is a date, not a number"),
    ("SEATCHARGE", (True, "Standard", PLANS), "#PERSEAT! users is TRUE, not a number"),
    # blank required argument
    ("SEATCHARGE", (None, "Standard", PLANS), "#PERSEAT! users is blank"),
    ("SEATCHARGE", (3.0, None, PLANS), "#PERSEAT! plan is blank"),
    ("PRORATE", (10.0, None, None, None), "#PERSEAT! period_start is blank"),
    ("BILLEDSEATS", (3.0, "Standard", None), "#PERSEAT! plans is blank: give the Plans table with its header row, "
                                             "e.g. Plans[#All]"),
    ("SEATCHARGE", (3.0, "Standard"), '#PERSEAT! plans is blank: needed to look up plan "Standard" '
                                      "(e.g. Plans[#All])"),
    # unknown plan
    ("SEATCHARGE", (3.0, "Gold", PLANS), '#PERSEAT! plan "Gold" not in Plans'),
    ("MINFEETOPUP", (80.0, "Gold", PLANS), '#PERSEAT! plan "Gold" not in Plans'),
    # error values, in a cell and in a range
    ("SEATCHARGE", (N_A, "Standard", PLANS), "#PERSEAT! users is the Excel error #N/A"),
    ("SEATCHARGE", (3.0, "Standard", rng(("Plan", "Rate"), ("Standard", VALUE))),
     "#PERSEAT! Plans row 2, Rate: cell holds the Excel error #VALUE!"),
    ("BILLABLEUSERS", (rng(("Client", "UserID", "Type", "Start"), ("Acme", "ann", "Employee", None),
                           ("Acme", "bob", "Employee", N_A)), "Acme", 46327.0),
     "#PERSEAT! Roster row 3, Start: cell holds the Excel error #N/A"),
    # malformed tiers
    ("TIERCHARGE", (6.0, rng(("UpTo", "Price"), (5, 7), (None, 6))),
     "#PERSEAT! Tiers row 1, Rate: required column Rate is missing"),
    ("TIERCHARGE", (6.0, rng(("UpTo", "Rate"), (5, 7), (None, 6.5), (None, 6))),
     "#PERSEAT! Tiers row 4, UpTo: the tiers need exactly one last tier with a blank UpTo"),
    ("TIERCHARGE", (6.0, rng(("UpTo", "Rate"), (5, 7), (10, 6))),
     "#PERSEAT! Tiers row 3, UpTo: the tiers need exactly one last tier with a blank UpTo"),
    ("TIERCHARGE", (6.0, rng(("UpTo", "Rate"), (5, "seven"), (None, 6))),
     "#PERSEAT! Tiers row 2, Rate: 'seven' is not a number"),
    ("TIERCHARGE", (6.0, rng(("UpTo", "Rate"), (5, 7), (5, 6.5), (None, 6))),
     "#PERSEAT! Tiers row 2, UpTo: the tiers repeat an UpTo or use one below 1"),
    ("TIERCHARGE", (6.0, rng(("UpTo", "Rate"))), "#PERSEAT! tiers has no rows: one tier per row, UpTo blank on "
                                                  "the last"),
    ("TIERCHARGE", (6.0, 7.0), "#PERSEAT! tiers must be a table with its header row, e.g. Tiers[#All]"),
    ("TIERCHARGE", (6.0, TIERS, "tiered"), '#PERSEAT! mode "tiered" is not one of: graduated, volume'),
    ("TIERPRICE", (0.0, TIERS), "#PERSEAT! users must be 1 or more for a price per user"),
    # dates
    ("PRORATE", (10.0, dt.datetime(2026, 7, 10), dt.datetime(2026, 7, 9), 46204.0),
     "#PERSEAT! end is before start (end is the last active day)"),
    ("PRORATE", (10.0, "soon", None, 46204.0), "#PERSEAT! start: 'soon' is not a date"),
    ("PRORATE", (10.0, "03/04/2026", None, 46204.0), "#PERSEAT! start: '03/04/2026' could be 2026-04-03 or "
                                                      "2026-03-04"),
    ("PRORATE", (10.0, None, None, 46204.0, "daily"), '#PERSEAT! day_count "daily" is not one of: actual, thirty'),
    ("PRORATE", (10.0, None, None, 46204.0, None, "up"), '#PERSEAT! rounding "up" is not one of: half-up, down'),
    # other arguments
    ("SEATCHARGE", (rng((1, 2, 3)), "Standard", PLANS), "#PERSEAT! users must be one cell, not a range of 3 cells"),
    ("RECOMMENDPRICE", (1.0, 50.0, 1.0), "#PERSEAT! target margin 1 must be from 0 up to (not including) 1, "
                                         "e.g. 0.35 for 35%"),
    ("USAGEPERUSER", (rng(("Client", "Date", "Hours"), ("Acme", 46330.0, 2)),
                      rng(("Client", "UserID", "Type"), ("Acme", "ann", "Employee")), "Acme", 46327.0, "minutes"),
     '#PERSEAT! measure "minutes" is not one of: hours, tickets'),
    ("USAGEPERUSER", (rng(("Client", "Date", "Hours"), ("Acme", 46330.0, 2)),
                      rng(("Client", "UserID", "Type"), ("Acme", "ann", "Guest")), "Acme", 46327.0),
     '#PERSEAT! client "Acme" has no billable users in November 2026'),
    ("BILLABLEUSERS", (rng(("Client", "UserID", "Type"), ("Acme", "ann", "Wizard")), "Acme", 46327.0),
     '#PERSEAT! Roster row 2, Type: user type "Wizard" not in UserTypes'),
])
def test_bad_input_answers_a_readable_message(name: str, args: tuple[Any, ...], answer: str) -> None:
    assert excel(name, *args) == answer


def test_a_message_from_another_cell_passes_through() -> None:
    upstream = excel("USAGEPERUSER", rng(("Client", "Date", "Hours"), ("Acme", 46330.0, 2)),
                     rng(("Client", "UserID", "Type"), ("Acme", "ann", "Guest")), "Acme", 46327.0)
    assert upstream.startswith("#PERSEAT!")
    assert excel("RECOMMENDPRICE", upstream, 55.0, 0.35) == upstream


def test_workbook_problems_in_a_preview_name_sheet_row_and_column(tpl: Template) -> None:
    t = tpl
    settings = tuple(r if r[0] != "BillingPeriod" else ("BillingPeriod", "Nov") for r in t["Settings"])
    got = excel("INVOICEPREVIEW", "Acme Dental Group", settings, t["Plans"], t["Tiers"], t["UserTypes"],
                t["Clients"], t["Roster"])
    row = [r[0] for r in t["Settings"]].index("BillingPeriod") + 1
    assert got == f"#PERSEAT! Settings row {row}, Value: BillingPeriod: billing period 'Nov' is not YYYY-MM " \
                  "(e.g. 2026-11)"
    got = excel("INVOICEPREVIEW", "Acme Dental Group", t["Settings"], t["Plans"], None, t["UserTypes"],
                t["Clients"], t["Roster"])
    assert got == "#PERSEAT! Plans row 5, Tiering: plan 'Volume Pro' is volume but has no rows in Tiers (+1 more)"


def test_an_unexpected_failure_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_excel, "STRICT", False)

    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(udfs, "seat_charge", broken)
    assert excel("SEATCHARGE", 3.0, 10.0) == "#PERSEAT! internal error: ZeroDivisionError: boom"


JUNK = [None, "", "abc", "#PERSEAT! upstream", N_A, REF, -1.0, 0.0, 0.5, 1e300, -1e300, float("nan"), True,
        dt.datetime(9999, 12, 31), dt.datetime(1900, 1, 1), 2958465.0, Decimal("1E+30"),
        rng((1, 2), (3, 4)), rng(("Plan", "Rate")), rng((None, None)), rng(("x",), (N_A,))]


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.name)
def test_no_argument_value_raises(spec: Any, tpl: Template) -> None:
    """Every argument of every function, one at a time, replaced by junk: an answer, never an exception."""
    good = {
        "users": 3.0, "plan": "Standard", "plans": tpl["Plans"], "tiers": tpl["Tiers"], "devices": 1.0,
        "mode": "volume", "charge": 80.0, "roster": tpl["Roster"], "client": "Acme Dental Group",
        "as_of": tpl.period_end, "usertypes": tpl["UserTypes"], "amount": 10.0, "start": tpl.period_start,
        "end": None, "period_start": tpl.period_start, "day_count": "thirty", "rounding": "down",
        "usage": tpl["Usage"], "measure": "tickets", "hours_per_user": 1.5, "cost_per_hour": 55.0,
        "target_margin": 0.35, "other_cost_per_user": 2.0, "step": 5.0, "settings": tpl["Settings"],
        "clients": tpl["Clients"], "addons": tpl["AddOns"], "current_plan": "Standard",
    }
    if spec.name in ("TIERPRICE", "TIERCHARGE"):
        good["tiers"] = TIERS
    if spec.name in ("INVOICEPREVIEW", "PERSEATBOOK"):
        good["devices"] = tpl["Devices"]
    if spec.name == "CLIENTCHARGE":
        good["book"] = tpl.handle()
    args = [good[a.name] for a in spec.args]
    ok = excel(spec.name, *args)
    assert not (isinstance(ok, str) and ok.startswith("#PERSEAT!")), ok
    for i in range(len(args)):
        for junk in JUNK:
            got = excel(spec.name, *args[:i], junk, *args[i + 1:])
            assert isinstance(got, int | float | list) or (isinstance(got, str) and (
                got.startswith("#PERSEAT! ") or spec.name == "RECOMMENDPLAN"
                or (spec.name.startswith("PERSEAT") and got.startswith("perseat")))), (spec.args[i].name, junk, got)
            if isinstance(got, str):
                assert len(got) <= 255 and "Traceback" not in got


# --------------------------------------------------------------------------
# The engine never imports xlwings


def test_the_engine_never_imports_xlwings() -> None:
    package = Path(functions.__file__).parents[1]  # perseat_addin/, every sub-package
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "xlwings"]
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "__import__", "import_module") and any(
                    isinstance(a, ast.Constant) and str(a.value).startswith("xlwings") for a in node.args):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert len(list(package.rglob("*.py"))) > 10


# --------------------------------------------------------------------------
# The workbook handle: Book (PERSEATBOOK) and UsageBook (PERSEATUSAGE)


def test_book_answers_each_client_as_the_invoice_run_does(tpl: Template) -> None:
    book = tpl.handle()
    for c in tpl.book.clients:
        inv = next((i for i in tpl.run.invoices if i.client.name == c.name), None)
        assert excel("CLIENTCHARGE", book, c.name) == (inv.total_cents / 100 if inv else 0.0)
        if inv is not None:
            assert excel("INVOICEPREVIEW", c.name, book) == preview(tpl, c.name)
        assert excel("BILLABLEUSERS", book, c.name, tpl.period_end) == excel(
            "BILLABLEUSERS", tpl["Roster"], c.name, tpl.period_end, tpl["UserTypes"])
    assert excel("CLIENTCHARGE", book, "acme dental group ") == excel("CLIENTCHARGE", book, "Acme Dental Group")
    assert excel("CLIENTCHARGE", book, "Nobody Inc") == '#PERSEAT! client "Nobody Inc" not in Clients'
    assert excel("USAGEPERUSER", book, "Acme Dental Group", tpl.period_start, "tickets") == excel(
        "USAGEPERUSER", tpl["Usage"], tpl["Roster"], "Acme Dental Group", tpl.period_start, "tickets",
        tpl["UserTypes"])


def test_the_same_tables_give_the_same_handle_and_an_edit_a_new_one(tpl: Template) -> None:
    book = tpl.handle()
    assert tpl.handle() == book
    roster = list(tpl["Roster"])
    head = roster[0]
    acme = next(i for i, r in enumerate(roster) if r[head.index("Client")] == "Acme Dental Group")
    gone = list(roster[acme])
    gone[head.index("Status")] = "Disabled"
    roster[acme] = tuple(gone)
    t = tpl.tables
    clients = tuple(r[: t["Clients"][0].index("End") + 1] for r in t["Clients"])
    edited = excel("PERSEATBOOK", t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"], clients, tuple(roster),
                   t["Devices"], t["AddOns"], excel("PERSEATUSAGE", t["Usage"]))
    assert edited != book
    before = excel("BILLABLEUSERS", book, "Acme Dental Group", tpl.period_end)
    assert excel("BILLABLEUSERS", edited, "Acme Dental Group", tpl.period_end) == before - 1
    # one seat fewer, and fewer included support hours: the invoice changes, whatever way
    assert excel("CLIENTCHARGE", edited, "Acme Dental Group") != excel("CLIENTCHARGE", book, "Acme Dental Group")


def test_a_roster_edit_does_not_read_usage_again(tpl: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    """Book takes UsageBook, so only the Roster crosses again when a Roster cell changes."""
    t = tpl.tables
    usage = excel("PERSEATUSAGE", t["Usage"])
    clients = tuple(r[: t["Clients"][0].index("End") + 1] for r in t["Clients"])
    reads: list[str] = []
    real = functions.loader.read_table
    monkeypatch.setattr(functions.loader, "read_table",
                        lambda source, name: (reads.append(name), real(source, name))[1])
    roster = (*t["Roster"], ("Acme Dental Group", "new.hire@acmedental.example", "New Hire", None, "Employee", None,
                             None, None, "Active", None, None))
    book = excel("PERSEATBOOK", t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"], clients, roster,
                 t["Devices"], t["AddOns"], usage)
    assert book.startswith("perseat · ")
    assert "Roster" in reads and "Usage" not in reads


def test_an_old_handle_asks_for_a_recalculation_never_answers(tpl: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    book = tpl.handle()
    # Python restarted: a new process holds nothing and has another nonce
    monkeypatch.setattr(functions, "HANDLES", functions.Handles())
    for got in (excel("CLIENTCHARGE", book, "Acme Dental Group"),
                excel("BILLABLEUSERS", book, "Acme Dental Group", tpl.period_end),
                excel("USAGEPERUSER", book, "Acme Dental Group", tpl.period_start),
                excel("INVOICEPREVIEW", "Acme Dental Group", book)):
        assert isinstance(got, str) and got.startswith("#PERSEAT! ") and "recalculate" in got, got
    # the handle the template saves names an id no process issues
    saved = load_workbook(tpl.path, data_only=True)["Settings"]["E2"].value
    assert saved.startswith("perseat · 8 clients")
    assert "recalculate" in excel("CLIENTCHARGE", saved, "Acme Dental Group")


def test_held_books_are_bounded(tpl: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    handles = functions.Handles(size=2)
    monkeypatch.setattr(functions, "HANDLES", handles)
    t = tpl.tables
    clients = tuple(r[: t["Clients"][0].index("End") + 1] for r in t["Clients"])
    books = []
    for k in range(3):
        settings = (*t["Settings"], ("MSPPhone", f"555-010{k}"))
        books.append(excel("PERSEATBOOK", settings, t["Plans"], t["Tiers"], t["UserTypes"], clients, t["Roster"]))
    assert len({b for b in books}) == 3
    assert "recalculate" in excel("CLIENTCHARGE", books[0], "Acme Dental Group")  # the oldest was let go
    assert isinstance(excel("CLIENTCHARGE", books[2], "Acme Dental Group"), float)
    assert sum(isinstance(v, functions.Priced) for v in handles._items.values()) == 2


def test_handles_of_the_wrong_kind_and_problems_upstream(tpl: Template) -> None:
    t = tpl.tables
    usage = excel("PERSEATUSAGE", t["Usage"])
    assert excel("CLIENTCHARGE", usage, "Acme Dental Group").startswith("#PERSEAT! book: this is a PERSEATUSAGE")
    assert excel("CLIENTCHARGE", "Acme Dental Group", "x") == "#PERSEAT! book: give the PERSEATBOOK cell, e.g. Book"
    bad = list(t["Usage"])
    row = list(bad[3])
    row[bad[0].index("Date")] = N_A
    bad[3] = tuple(row)
    broken = excel("PERSEATUSAGE", tuple(bad))
    assert broken == "#PERSEAT! Usage row 4, Date: cell holds the Excel error #N/A"
    clients = tuple(r[: t["Clients"][0].index("End") + 1] for r in t["Clients"])
    book = excel("PERSEATBOOK", t["Settings"], t["Plans"], t["Tiers"], t["UserTypes"], clients, t["Roster"],
                 t["Devices"], t["AddOns"], broken)
    assert book == broken  # the Usage cell's message, passed on as Excel passes #N/A on
    assert excel("CLIENTCHARGE", book, "Acme Dental Group") == broken
    assert excel("BILLABLEUSERS", tpl.handle(), "Acme Dental Group", tpl.period_end, t["UserTypes"]).startswith(
        "#PERSEAT! usertypes: leave it out with Book")


class _ComTime(dt.datetime):
    """A date as pywin32 hands it over: a datetime subclass, timezone-aware, its fields the cell's."""


def _large_range(n: int) -> list[tuple[Any, ...]]:
    head = ("Client", "UserID", "Date", "Hours", "Billable", "Notes")
    rows = [(f"Client {i % 7}", f"user{i}@x.example", _ComTime(2026, 3, 1 + i % 28, 23, 30, tzinfo=dt.timezone.utc)
             if i % 5 else None, float(i % 9) / 4, (True, False, None)[i % 3], None) for i in range(n)]
    return [head, *rows]


def test_a_large_range_reads_by_columns_as_its_cells_do() -> None:
    """A range of COLUMNAR_ROWS rows or more becomes Arrow columns; they read as the same values as the row
    path (dates by their fields), and its key follows exactly what the loader reads."""
    n = functions.COLUMNAR_ROWS + 5
    cells = _large_range(n)
    grid = functions.Grid.of(cells)
    assert grid.arrays is not None
    raw = grid.raw("Usage")
    expected = [[c if not isinstance(c, dt.date) else dt.date(c.year, c.month, c.day) for c in
                 ("" if v is None else v for v in r)] for r in cells[1:]]
    assert raw.rows.as_lists() == expected  # type: ignore[attr-defined]
    key = grid.key
    assert functions.Grid.of([tuple(r) for r in cells]).key == key
    same_day = list(cells)
    same_day[9] = (*cells[9][:2], cells[9][2].replace(hour=1), *cells[9][3:])
    assert functions.Grid.of(same_day).key == key  # read by its day: the same table
    for j, value in ((2, _ComTime(2026, 3, 2, tzinfo=dt.timezone.utc)), (3, 99.0), (4, None), (0, "Client 9")):
        edited = list(cells)
        edited[10] = (*cells[10][:j], value, *cells[10][j + 1:])
        assert functions.Grid.of(edited).key != key, j
    # a column left out is never read and is no part of the key
    skipped = functions.Grid.of(cells, skip=("userid",))
    assert skipped.headers == ("Client", "Date", "Hours", "Billable", "Notes")
    assert list(skipped.rows[9]) == [cells[10][0], *cells[10][2:]]
    other_ids = [cells[0], *((r[0], "someone@else.example", *r[2:]) for r in cells[1:])]
    assert functions.Grid.of(other_ids, skip=("UserID",)).key == skipped.key
    # a date before March 1900, or a column mixing kinds: read cell by cell, as from a file
    early = list(cells)
    early[4] = (*cells[4][:2], _ComTime(1899, 12, 31, tzinfo=dt.timezone.utc), *cells[4][3:])
    assert functions.Grid.of(early).raw("Usage").rows.__class__.__name__ != "ColumnRows"
    mixed = list(cells)
    mixed[4] = (*cells[4][:3], "three", *cells[4][4:])
    assert functions.Grid.of(mixed).raw("Usage").rows.__class__.__name__ != "ColumnRows"
    # an Excel error in a text column: noted where it is, the cell read as blank
    from udfs._excel import com_cell
    wrong = list(cells)
    wrong[6] = (ERROR_CODES["#N/A"], *cells[6][1:])
    g = functions.Grid.of(wrong, com_cell)
    assert {k: str(e) for k, e in g.errors.items()} == {(5, 0): "#N/A"}
    assert g.columns[0][5] is None and g.columns[0][6] == cells[7][0]


def test_a_usage_id_edit_keeps_the_usage_handle(tpl: Template) -> None:
    """UserID, Ticket, Source and Ref are never read for a handle: editing them does not recompute Book."""
    usage = list(tpl["Usage"])
    handle = excel("PERSEATUSAGE", tuple(usage))
    head = usage[0]
    row = list(usage[2])
    row[head.index("UserID")] = "someone.else@acmedental.example"
    usage[2] = tuple(row)
    assert excel("PERSEATUSAGE", tuple(usage)) == handle
    row[head.index("Hours")] = 7.5
    usage[2] = tuple(row)
    assert excel("PERSEATUSAGE", tuple(usage)) != handle


def test_recommendplan_with_the_clients_plan_keeps_to_its_basis() -> None:
    """A users client is never offered a plan billed on the greater of users and devices (a kiosk plan)."""
    plans = [["Plan", "Rate", "Basis", "IncludedHours"], ["Office", 90, "users", None],
             ["Kiosk", 40, "greater", None], ["Lite", 60, "users", None]]
    assert excel("RECOMMENDPLAN", 1.0, plans) == "Kiosk"  # by Rate alone, across Bases
    assert excel("RECOMMENDPLAN", 1.0, plans, None, None, "Office") == "Lite"
    assert excel("RECOMMENDPLAN", 1.0, plans, None, 12, "office") == "Lite"
    assert excel("RECOMMENDPLAN", 1.0, plans, None, None, "Kiosk") == "Kiosk"
    assert excel("RECOMMENDPLAN", 1.0, plans, None, None, "Nope") == '#PERSEAT! plan "Nope" not in Plans'
