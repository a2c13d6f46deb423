"""``perseat quote``: every plan's total equals SEATCHARGE (the Excel function, called as Excel calls it) on the
template's plans and on random plans and tiers; the cheapest plan that fits is marked and the others say why;
bad input is one clear message and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from xlstandin import engine_installed, excel, rng

from perseat_addin.engine.quote import quote
from perseat_addin.model import Basis, Plan, Tiering

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "workbook_template.xlsm"


@pytest.fixture(scope="module", autouse=True)
def excel_engine() -> Any:
    yield from engine_installed()


def tables(path: Path) -> dict[str, Any]:
    wb = load_workbook(path, data_only=True)
    out = {}
    for ws in wb.worksheets:
        for name, ref in ws.tables.items():
            out[name] = rng(*([c.value for c in row] for row in ws[ref]))
    wb.close()
    return out


def perseat(*args: Any, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


@pytest.mark.parametrize(("users", "devices"), [(0, 0), (1, 0), (3, 6), (7, 6), (12, 0), (26, 2), (140, 0)])
def test_quote_json_equals_seatcharge_for_every_template_plan(users: int, devices: int, tmp_path: Path) -> None:
    doc = json.loads(perseat("quote", TEMPLATE, "--users", users, "--devices", devices, "--out", tmp_path,
                             "--json").stdout)
    t = tables(TEMPLATE)
    assert [p["plan"] for p in doc["plans"]] == [r[0] for r in t["Plans"][1:]]
    for p in doc["plans"]:
        want = excel("SEATCHARGE", float(users), p["plan"], t["Plans"], t["Tiers"], float(devices))
        assert Decimal(p["monthly"]) == Decimal(str(want)), p["plan"]
        assert Decimal(p["annual"]) == 12 * Decimal(p["monthly"])
    marked = [p for p in doc["plans"] if p["cheapest"]]
    assert len(marked) == 1 and doc["cheapest"] == marked[0]["plan"]
    fitting = [p for p in doc["plans"] if p["fits"]]
    assert Decimal(marked[0]["monthly_with_tax"]) == min(Decimal(p["monthly_with_tax"]) for p in fitting)
    assert all(p["note"].startswith("not marked: ") for p in doc["plans"] if not p["cheapest"])
    assert {Path(f).suffix for f in doc["files"]} == {".pdf", ".xlsx"}


def test_a_greater_plan_is_marked_only_where_devices_matter(tmp_path: Path) -> None:
    """Shop Floor (users or kiosks, whichever is greater) is cheapest for 7 users and 6 kiosks; with no kiosks it
    is not a fit, and says so."""
    with_devices = json.loads(perseat("quote", TEMPLATE, "--users", 7, "--devices", 6, "--out", tmp_path,
                                      "--json").stdout)
    assert with_devices["cheapest"] == "Shop Floor"
    without = json.loads(perseat("quote", TEMPLATE, "--users", 12, "--out", tmp_path, "--json").stdout)
    shop = next(p for p in without["plans"] if p["plan"] == "Shop Floor")
    assert not shop["fits"] and "shared devices; this quote has none" in shop["note"]
    assert without["cheapest"] == "Volume Pro"


def test_one_plan_and_the_prospect_on_the_pdf(tmp_path: Path) -> None:
    doc = json.loads(perseat("quote", TEMPLATE, "--users", 8, "--plan", "growth", "--prospect", "Casco Marine",
                             "--out", tmp_path, "--json").stdout)
    assert [p["plan"] for p in doc["plans"]] == ["Growth"] and doc["cheapest"] == "Growth"
    assert doc["plans"][0]["monthly"] == "537.50"  # 5 × 70 + 3 × 62.50 (graduated)
    pdf = next(Path(f) for f in doc["files"] if f.endswith(".pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Prepared for: Casco Marine" in text and "537.50" in text and "6,450.00" in text


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--users", "-3"], 2, "-3 is negative"),
    (["--users", "ten"], 2, "'ten' is not a whole number"),
    (["--users", "5", "--devices", "x"], 2, "'x' is not a whole number"),
    (["--users", "5", "--plan", "Premum"], 1, 'no plan "Premum" in the Plans table (did you mean "Premium"?)'),
])
def test_bad_input_is_one_message_and_nothing_written(args: list[str], code: int, message: str,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = perseat("quote", TEMPLATE, *args, "--out", out, code=code)
    assert message in proc.stderr
    assert not out.exists()


def test_a_workbook_with_problems_writes_nothing(tmp_path: Path) -> None:
    from conftest import workbook_sheets

    from perseat_addin.excel.template import write_workbook

    bad = tmp_path / "bad.xlsx"
    write_workbook(bad, workbook_sheets(plans=[{"Plan": "Std", "Rate": "cheap"}]))
    out = tmp_path / "out"
    for cmd in (["quote", bad, "--users", "3"], ["schedule", bad]):
        proc = perseat(*cmd, "--out", out, code=1)
        assert "Plans" in proc.stderr and "Rate" in proc.stderr
        assert not out.exists()
    proc = perseat("schedule", TEMPLATE, "--client", "Acme", "--out", out, code=1)
    assert 'did you mean "Acme Dental Group"' in proc.stderr and not out.exists()


tier_rows = st.lists(st.tuples(st.integers(1, 6), st.integers(100, 9_000), st.integers(0, 3)), min_size=1,
                     max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.integers(0, 20_000), tiering=st.sampled_from(list(Tiering)), min_users=st.integers(0, 12),
       min_fee=st.integers(0, 90_000), greater=st.booleans(), device_rate=st.integers(0, 5_000), tiers=tier_rows,
       users=st.integers(0, 60), devices=st.integers(0, 20), tax=st.integers(0, 150_000))
def test_random_plans_and_tiers_quote_what_seatcharge_charges(rate: int, tiering: Tiering, min_users: int,
                                                              min_fee: int, greater: bool, device_rate: int,
                                                              tiers: list[tuple[int, int, int]], users: int,
                                                              devices: int, tax: int) -> None:
    """Amounts in cents; tier widths 1–6 users, the last tier open; flat fees on some tiers."""
    upto, bounds = 0, []
    for width, _, _ in tiers:
        upto += width
        bounds.append(upto)
    tier_table = [("Plan", "UpTo", "Rate", "FlatFee")]
    for k, ((_, r, f), up) in enumerate(zip(tiers, bounds, strict=True)):
        tier_table.append(("P", None if k == len(tiers) - 1 else up, r / 100, f * 25 if f else None))
    plans_table = [("Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate"),
                   ("P", rate / 100, tiering.value, min_users, min_fee / 100, "greater" if greater else "users",
                    device_rate / 100)]
    plan = Plan("P", rate * 10_000, tiering, min_users, min_fee * 10_000, Basis.GREATER if greater else Basis.USERS,
                device_rate * 10_000,
                tiers=tuple((None if k == len(tiers) - 1 else up, r * 10_000)
                            for k, ((_, r, _), up) in enumerate(zip(tiers, bounds, strict=True))),
                tier_flat=tuple(f * 25 * 1_000_000 for _, _, f in tiers))
    q = quote([plan], users, devices, tax_ppm=tax)
    want = excel("SEATCHARGE", float(users), "P", rng(*plans_table), rng(*tier_table), float(devices))
    (row,) = q.rows
    assert row.monthly_cents == round(Decimal(str(want)) * 100)
    assert row.annual_cents == 12 * row.monthly_cents
    assert row.tax_cents == (tax * row.monthly_cents + 500_000) // 1_000_000
