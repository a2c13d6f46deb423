"""Usage imports with time not billable to the client (SPEC §8): the preview shows it apart, the rows carry
Billable = No, and a Usage table made before the Billable column gets it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import perseat_addin.macros as m
from test_macros import ExcelStandIn, copy_of

from perseat_addin.excel.template import template_sheets, write_workbook
from perseat_addin.workbook.load import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
CW_TIME = ("id,company/name,chargeToType,chargeToId,timeStart,actualHours,billableOption\n"
           "9201,Acme Dental Group,ServiceTicket,7101,2026-11-25T14:00:00Z,1.5,Billable\n"
           "9202,Acme Dental Group,ServiceTicket,7101,2026-11-26T09:00:00Z,2,NoCharge\n"
           "9203,Delta Pediatrics,ServiceTicket,7102,2026-11-26T10:00:00Z,0.25,DoNotBill\n"
           "9204,Delta Pediatrics,ServiceTicket,7103,2026-11-27T10:00:00Z,1,Billable\n")


def _export(tmp_path: Path) -> Path:
    path = tmp_path / "time.csv"
    path.write_text(CW_TIME, encoding="utf-8")
    return path


def _without_billable(path: Path) -> Path:
    """The template as a workbook made before the Usage table had its Billable column."""
    sheets = template_sheets()
    usage = next(s for s in sheets if s.name == "Usage")
    j = list(usage.headers).index("Billable")
    sheets[sheets.index(usage)] = replace(
        usage, headers=tuple(h for h in usage.headers if h != "Billable"),
        rows=[(*r[:j], *r[j + 1:]) for r in usage.rows if r[j] != "No"], choices={})
    write_workbook(path, sheets)
    return path


def _billable_by_ref(rows: list[dict]) -> dict[str, object]:
    return {r["Ref"]: r.get("Billable") for r in rows if r.get("Ref")}


def test_the_preview_shows_time_not_billable_apart(tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(TEMPLATE, tmp_path))
    outcome = m.import_roster(str(_export(tmp_path)), book)
    assert outcome.ok, outcome.message
    [(_, question)] = book.questions
    assert "Acme Dental Group: 2 rows, 1 tickets, 3.5 h, of which 2 h (1 rows) not billable to the client" in question
    assert "Delta Pediatrics: 2 rows, 2 tickets, 1.25 h, of which 0.25 h (1 rows) not billable" in question
    assert _billable_by_ref(book.rows("Usage")) == {"9201": "Yes", "9202": "No", "9203": "No", "9204": "Yes"}
    log = [r for r in book.rows("ChangeLog") if r["Action"] == "import usage"]
    assert any("(2 h not billable)" in str(r["New"]) for r in log)


def test_a_usage_table_without_billable_gets_the_column_when_such_time_arrives(tmp_path: Path) -> None:
    book = ExcelStandIn(_without_billable(tmp_path / "old.xlsm"))
    assert "Billable" not in book.rows("Usage")[0]
    outcome = m.import_roster(str(_export(tmp_path)), book)
    assert outcome.ok, outcome.message
    rows = book.rows("Usage")
    assert _billable_by_ref(rows) == {"9201": "Yes", "9202": "No", "9203": "No", "9204": "Yes"}
    assert all(r["Billable"] in (None, "") for r in rows if not r.get("Ref"))  # earlier rows: blank = Yes
    book.save()
    usage = load(book.path).usage
    assert int(usage.loc[~usage["billable"], "hours_centi"].sum()) == 225


def test_the_cli_adds_the_column_to_an_old_workbook_and_an_all_billable_import_leaves_it_alone(
        tmp_path: Path) -> None:
    old = _without_billable(tmp_path / "old.xlsm")
    billable_only = tmp_path / "billable.csv"
    billable_only.write_text("\n".join(ln for ln in CW_TIME.splitlines() if "Billable" in ln.split(",")[-1]
                                       or ln.startswith("id,")) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "perseat_addin.cli", "import", "connectwise-time"]
    proc = subprocess.run([*cmd, str(billable_only), "--workbook", str(old), "--apply", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_new"] == 2
    assert "Billable" not in ExcelStandIn(old).rows("Usage")[0]  # nothing to mark: the table is left as it was
    proc = subprocess.run([*cmd, str(_export(tmp_path)), "--workbook", str(old), "--apply", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_new"] == 2
    assert _billable_by_ref(ExcelStandIn(old).rows("Usage")) == {"9201": None, "9204": None, "9202": "No",
                                                                 "9203": "No"}
    usage = load(old).usage
    assert int(usage.loc[~usage["billable"], "hours_centi"].sum()) == 225
