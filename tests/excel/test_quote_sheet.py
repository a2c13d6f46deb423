"""The template's Quote sheet: its SEATCHARGE formulas, evaluated cell by cell as Excel calls them, equal
``perseat quote --json`` for the same prospect, and the results saved in the file are those numbers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from xlstandin import Formulas, engine_installed, rng

from perseat_addin.excel.template import QUOTE_CHOSEN, QUOTE_FORMULAS, QUOTE_INPUTS

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "workbook_template.xlsm"


@pytest.fixture(scope="module", autouse=True)
def excel_engine() -> Any:
    yield from engine_installed()


def test_the_quote_sheet_equals_perseat_quote(tmp_path: Path) -> None:
    wb = load_workbook(TEMPLATE)
    saved = load_workbook(TEMPLATE, data_only=True)
    tables = {name: rng(*([c.value for c in row] for row in ws[ref]))
              for ws in saved.worksheets for name, ref in ws.tables.items()}
    ws, cached = wb["Quote"], saved["Quote"]
    names: dict[str, Any] = {}
    for n, d in wb.defined_names.items():
        cell = re.fullmatch(r"=?(\w+)!\$([A-Z]+)\$(\d+)", d.attr_text)
        names[n] = wb[cell.group(1)][f"{cell.group(2)}{cell.group(3)}"].value if cell else d.attr_text
    assert {n: names[n] for n in QUOTE_INPUTS} == {"QuoteProspect": "Casco Marine", "QuoteUsers": 12,
                                                    "QuoteDevices": 0, "QuotePlan": "Standard"}
    names = {**names, **{ref: ws[ref].value for ref in QUOTE_CHOSEN}}  # =H8*12 reads H8
    (table,) = ws.tables.values()
    head, *body = [[c.value for c in r] for r in ws[table.ref]]
    saved_rows = [[c.value for c in r] for r in cached[table.ref]][1:]
    assert all(r[head.index(h)] == QUOTE_FORMULAS[h] for r in body for h in QUOTE_FORMULAS)
    def as_formula(v: Any) -> str:  # a cell's value as the formula that gives it
        if isinstance(v, int | float):
            return str(v)
        return v if str(v).startswith("=") else f'"{v}"'

    ev = Formulas(tables, {k: as_formula(v) for k, v in names.items()})
    doc = json.loads(subprocess.run(
        [sys.executable, "-m", "perseat_addin.cli", "quote", str(TEMPLATE), "--users", "12", "--devices", "0",
         "--prospect", "Casco Marine", "--out", str(tmp_path), "--json"], capture_output=True, text=True,
        check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout)
    by_plan = {p["plan"]: p for p in doc["plans"]}
    assert [r[0] for r in body] == list(by_plan)  # every plan, in the Plans table's order
    for r, kept in zip(body, saved_rows, strict=True):
        row = {h: v for h, v in zip(head, r, strict=True)}
        for h in ("Monthly", "Annual"):
            row[h] = ev.evaluate(r[head.index(h)], row)
            assert row[h] == float(by_plan[row["Plan"]][h.lower()]), (row["Plan"], h)
            assert kept[head.index(h)] == row[h], (row["Plan"], h, "saved result")
    chosen = by_plan["Standard"]
    for ref, want in (("H8", chosen["monthly"]), ("H9", chosen["annual"]), ("H10", chosen["seats"])):
        got = ev.evaluate(ws[ref].value)
        assert got == float(want), ref
        assert cached[ref].value == got, (ref, "saved result")
    wb.close()
    saved.close()


def test_the_plan_cell_offers_the_plans_table() -> None:
    wb = load_workbook(TEMPLATE)
    ws = wb["Quote"]
    rules = [(str(dv.sqref), dv.formula1) for dv in ws.data_validations.dataValidation]
    assert ("H6", "PlanList") in rules
    wb.close()
