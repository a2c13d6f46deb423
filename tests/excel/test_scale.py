"""The template's Clients formulas on a generated workbook, evaluated as Excel evaluates them (the benchmark's
stand-in), against what `perseat invoice` writes for the same workbook: every client's MonthlyCharge is its
invoice total and its BillableUsers the users.csv count of users billable on the period's last day."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import xlstandin

from benchmarks.excel_recalc import Recalc, com_tables
from benchmarks.report import usage_rows
from benchmarks.synth import workbook_sheets
from perseat_addin import cli
from perseat_addin.excel import functions
from perseat_addin.excel.template import write_workbook
from perseat_addin.workbook.load import load

USERS, CLIENTS, USAGE = 3_000, 60, 30_000


@pytest.fixture(scope="module")
def engine() -> Any:
    yield from xlstandin.engine_installed()


def test_client_columns_equal_the_cli_for_every_client(tmp_path: Path, engine: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    functions.clear_caches()
    tables = com_tables(USERS, CLIENTS, USAGE)
    rc = Recalc(tables)
    ev = rc.evaluator()
    results = rc.run(ev)
    # the big tables crossed once each: Roster whole, Usage's Client to Billable
    assert ev.cells_passed["Roster"] == len(tables["Roster"]) * len(tables["Roster"][0])
    assert ev.cells_passed["Usage"] == len(tables["Usage"]) * 6

    sheets = workbook_sheets(USERS, CLIENTS)
    next(s for s in sheets if s.name == "Usage").rows = usage_rows(USAGE, CLIENTS, USERS)
    book_path = tmp_path / "book.xlsm"
    write_workbook(book_path, sheets)
    assert cli.main(["invoice", str(book_path), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    totals = {inv["client"]: Decimal(inv["total"]) for inv in summary["invoices"]}
    assert len(totals) > CLIENTS // 2
    book = load(book_path)
    last = book.settings.period.last
    with (tmp_path / "out" / "users.csv").open(encoding="utf-8-sig") as f:
        billable: dict[str, set[str]] = {}
        for row in csv.DictReader(f):
            if row["Billing"].startswith("billable"):
                billable.setdefault(row["Client"], set()).add(row["UserID"].strip().lower())
    roster = book.roster
    on_last = roster[(roster["end"] >= _day(last))]
    for client, row in results.items():
        assert Decimal(str(row["MonthlyCharge"])) == totals.get(client, Decimal(0)), client
        still = set(on_last.loc[on_last["client"] == client, "user"].str.strip().str.lower())
        assert row["BillableUsers"] == len(billable.get(client, set()) & still), client
        assert not (isinstance(row["HoursPerUser"], str) and row["HoursPerUser"].startswith("#PERSEAT!")
                    and "no billable users" not in row["HoursPerUser"]), (client, row["HoursPerUser"])


def _day(d: dt.date) -> int:
    from perseat_addin.model import day_number
    return day_number(d)
