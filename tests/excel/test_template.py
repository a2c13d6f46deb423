"""``perseat template``: a macro-enabled workbook with every SPEC §3 table, reproducible byte for byte,
committed at the repo root, and sample data that shows off what the product promises."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree
from openpyxl import load_workbook

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "workbook_template.xlsm"
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
TABLES = ("Settings", "Plans", "Tiers", "UserTypes", "Clients", "Roster", "Devices", "AddOns", "Usage",
          "Invoices", "InvoiceLines", "ChangeLog")
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


def perseat(*args: str | Path, timeout: float = 300, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two independent ``perseat template`` builds."""
    a = tmp_path_factory.mktemp("a") / "workbook_template.xlsm"
    b = tmp_path_factory.mktemp("b") / "other-name.xlsm"
    perseat("template", "--out", a)
    perseat("template", "--out", b)
    return a, b


@pytest.fixture(scope="module")
def tables(built: tuple[Path, Path]) -> dict[str, list[dict[str, Any]]]:
    """Every table of the template: name → rows as dicts (blank rows dropped)."""
    wb = load_workbook(built[0], keep_vba=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for ws in wb.worksheets:
        for name, ref in ws.tables.items():
            cells = ws[ref]
            heads = [c.value for c in cells[0]]
            rows = [dict(zip(heads, (c.value for c in r), strict=True)) for r in cells[1:]]
            out[name] = [r for r in rows if any(v not in (None, "") for v in r.values())]
    wb.close()
    return out


@pytest.fixture(scope="module")
def invoiced(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The template invoiced by the CLI: JSON summary and, when written, the per-user reasons."""
    tmp = tmp_path_factory.mktemp("inv")
    wb = Path(shutil.copyfile(built[0], tmp / "wb.xlsm"))
    doc = json.loads(perseat("invoice", wb, "--out", tmp / "out", "--json").stdout)
    users = tmp / "out" / "users.csv"
    reasons: dict[tuple[str, int], str] = {}
    if users.exists():
        with users.open(encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                reasons[(r["UserID"], int(r["RosterRow"]))] = r["Billing"]
    return {"json": doc, "by_client": {i["client"]: i for i in doc["invoices"]}, "reasons": reasons}


# --------------------------------------------------------------------------
# the package


def test_template_is_a_macro_enabled_workbook(built: tuple[Path, Path]) -> None:
    path = built[0]
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        types = ElementTree.fromstring(z.read("[Content_Types].xml"))
    overrides = {o.get("PartName"): o.get("ContentType") for o in types
                 if o.tag.endswith("Override")}
    assert overrides.get("/xl/workbook.xml") == MACRO_MAIN, overrides


def test_template_has_every_table_on_its_own_sheet(built: tuple[Path, Path]) -> None:
    wb = load_workbook(built[0], keep_vba=True)
    found = {name: ws.title for ws in wb.worksheets for name in ws.tables}
    wb.close()
    assert set(TABLES) <= set(found), sorted(set(TABLES) - set(found))
    for name in TABLES:
        assert found[name] == name, (name, found[name])


def test_two_builds_are_byte_identical(built: tuple[Path, Path]) -> None:
    a, b = built
    assert a.read_bytes() == b.read_bytes()


def test_committed_template_is_the_current_build(built: tuple[Path, Path]) -> None:
    """A change to the template builder must be committed together with a rebuilt workbook_template.xlsm
    (``perseat template --out workbook_template.xlsm``)."""
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; run 'perseat template' at the repo root"
    assert COMMITTED.read_bytes() == built[0].read_bytes(), (
        "workbook_template.xlsm is stale: rebuild it with 'perseat template --out workbook_template.xlsm'")


# --------------------------------------------------------------------------
# the sample data (what the product promises to demonstrate)


def test_about_eight_clients_on_every_tiering(tables: dict[str, list[dict[str, Any]]]) -> None:
    clients = tables["Clients"]
    assert 7 <= len(clients) <= 10
    plans = {p["Plan"]: p for p in tables["Plans"]}
    used = {plans[c["Plan"]]["Tiering"] for c in clients if c["Status"] == "Active"}
    assert {"flat", "volume", "graduated"} <= used
    tiered = {p for p, v in plans.items() if v["Tiering"] in ("volume", "graduated")}
    assert tiered <= {t["Plan"] for t in tables["Tiers"]}
    assert any(c["Status"] == "Inactive" for c in clients)


def test_a_client_under_min_fee(tables: dict[str, list[dict[str, Any]]], invoiced: dict[str, Any]) -> None:
    plans = {p["Plan"]: p for p in tables["Plans"]}
    candidates = [c["Client"] for c in tables["Clients"]
                  if c["Status"] == "Active" and (plans[c["Plan"]]["MinFee"] or 0) > 0]
    assert candidates
    topped = [name for name in candidates
              if any(ln["description"] == "Minimum monthly fee adjustment"
                     for ln in invoiced["by_client"][name]["lines"])]
    assert topped, candidates
    inv = invoiced["by_client"][topped[0]]
    fee = next(plans[c["Plan"]]["MinFee"] for c in tables["Clients"] if c["Client"] == topped[0])
    once = sum(float(ln["amount"]) for ln in inv["lines"] if ln["kind"] == "one-time")  # not toward MinFee
    assert float(inv["subtotal"]) - once == pytest.approx(fee)


def test_a_basis_greater_client_with_devices(tables: dict[str, list[dict[str, Any]]],
                                             invoiced: dict[str, Any]) -> None:
    plans = {p["Plan"]: p for p in tables["Plans"]}
    greater = [c["Client"] for c in tables["Clients"] if plans[c["Plan"]]["Basis"] == "greater"]
    assert greater
    devices = Counter(d["Client"] for d in tables["Devices"])
    users = Counter(r["Client"] for r in tables["Roster"] if r["Type"] == "Employee")
    showcase = [c for c in greater if devices[c] > users[c]]  # devices decide the seat count
    assert showcase, (greater, devices, users)
    assert invoiced["by_client"][showcase[0]]["seats"] >= devices[showcase[0]]


def test_a_mid_month_hire_and_a_departure(tables: dict[str, list[dict[str, Any]]],
                                          invoiced: dict[str, Any]) -> None:
    period = str(next(s["Value"] for s in tables["Settings"] if s["Setting"] == "BillingPeriod"))
    first = dt.datetime.strptime(period + "-01", "%Y-%m-%d")
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    hires = [r for r in tables["Roster"] if r["Start"] and first < r["Start"] <= last]
    leavers = [r for r in tables["Roster"] if r["End"] and first <= r["End"] < last]
    assert hires and leavers
    for who in (hires[0], leavers[0]):
        lines = invoiced["by_client"][who["Client"]]["lines"]
        prorated = [ln for ln in lines if ln["kind"] == "seat-change"]
        assert prorated, (who["Client"], lines)
    kinds = [(ln["kind"], ln["quantity"]) for ln in invoiced["by_client"][leavers[0]["Client"]]["lines"]]
    assert any(k == "seat-change" and q.startswith("-") for k, q in kinds), kinds


def _roster(tables: dict[str, list[dict[str, Any]]], typ: str) -> list[dict[str, Any]]:
    return [r for r in tables["Roster"] if r["Type"] == typ]


def _reason(invoiced: dict[str, Any], tables: dict[str, list[dict[str, Any]]], row: dict[str, Any]) -> str:
    if not invoiced["reasons"]:
        pytest.skip("this build writes no users.csv with per-user reasons")
    n = tables["Roster"].index(row) + 2
    return str(invoiced["reasons"][(row["UserID"], n)])


@pytest.mark.parametrize(("typ", "billed"), [("Contractor", True), ("Service", False), ("Guest", False)])
def test_user_types_in_the_sample(tables: dict[str, list[dict[str, Any]]], invoiced: dict[str, Any],
                                  typ: str, billed: bool) -> None:
    rows = _roster(tables, typ)
    assert rows, f"no {typ} in the sample roster"
    reason = _reason(invoiced, tables, rows[0])
    assert reason.startswith("billable") is billed, reason


def test_an_intern_under_min_active_days(tables: dict[str, list[dict[str, Any]]],
                                         invoiced: dict[str, Any]) -> None:
    min_days = {t["Type"]: t["MinActiveDays"] or 0 for t in tables["UserTypes"]}
    assert min_days["Intern"] > 0
    period = str(next(s["Value"] for s in tables["Settings"] if s["Setting"] == "BillingPeriod"))
    first = dt.datetime.strptime(period + "-01", "%Y-%m-%d")
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    short = [r for r in _roster(tables, "Intern")
             if r["Start"] and 0 < (last - r["Start"]).days + 1 < min_days["Intern"]]
    assert short, "no Intern active fewer than MinActiveDays in the billing period"
    reason = _reason(invoiced, tables, short[0])
    assert reason.startswith("not billable"), reason


def test_a_duplicate_userid(tables: dict[str, list[dict[str, Any]]], invoiced: dict[str, Any]) -> None:
    keys = Counter((r["Client"].lower(), r["UserID"].strip().lower()) for r in tables["Roster"])
    dups = [k for k, n in keys.items() if n > 1]
    assert dups
    assert any("UserID" in w["message"] or w["column"] == "UserID" or str(w["column"]).startswith("UserID")
               for w in invoiced["json"]["warnings"]), invoiced["json"]["warnings"]


def test_granite_counts_only_billable_people(invoiced: dict[str, Any]) -> None:
    """Granite Accounting: 6 employees (one listed twice) + a contractor; the intern under MinActiveDays,
    the service account, the guest and the disabled mailbox are not seats."""
    assert invoiced["by_client"]["Granite Accounting"]["seats"] == 7


# --------------------------------------------------------------------------
# LibreOffice


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not on PATH: cannot check that "
                                            "another spreadsheet application opens the template")
def test_libreoffice_converts_the_template(built: tuple[Path, Path], tmp_path: Path) -> None:
    assert SOFFICE is not None
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        proc = subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
                               "--convert-to", "pdf", "--outdir", str(tmp_path), str(built[0])],
                              capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    pdf = tmp_path / "workbook_template.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"


def test_template_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsm"
    path.write_bytes(b"someone's billing workbook")
    proc = perseat("template", "--out", path, code=1)
    assert "already exists; nothing was written. Add --force" in proc.stderr
    assert path.read_bytes() == b"someone's billing workbook"
    proc = perseat("template", "--out", path, "--force")
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes()[:2] == b"PK"


def test_blank_template_has_the_tables_without_the_sample_business(tmp_path: Path) -> None:
    path = tmp_path / "blank.xlsm"
    assert perseat("template", "--out", path, "--blank").returncode == 0
    wb = load_workbook(path, keep_vba=True)
    try:
        for name in ("Clients", "Roster", "Devices", "AddOns", "Usage"):
            ws = wb[name]
            rows = list(ws[ws.tables[name].ref])[1:]
            assert all(c.value in (None, "") or str(c.value).startswith("=") for r in rows for c in r), name
        plans = wb["Plans"]
        assert len(list(plans[plans.tables["Plans"].ref])) > 2  # plans, tiers, user types and settings stay
    finally:
        wb.close()
    check = perseat("check", path, code=1)
    assert "the Clients table has no rows — add your clients, one per row" in check.stdout + check.stderr
