"""A workbook staff can type into: the template's drop-downs, Settings' About column, the Start here sheet.

The drop-downs are read back twice: from the file (openpyxl) and by LibreOffice,
which is also asked which typed values its validation refuses (Calc's Detective
"mark invalid data": the same check that refuses a typed value). Lists bound to
Plans, UserTypes and Clients must follow their table as it grows.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lo import open_in_libreoffice
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from perseat_addin.excel.template import (
    BOOK_CELL,
    LIST_NAMES,
    SHEET_PURPOSES,
    START_HERE,
    TABLE_LISTS,
    YES_NO,
    SheetSpec,
    build,
    excel_parts,
    ribbon_buttons,
    template_sheets,
    write_workbook,
)
from perseat_addin.model import BillingTiming, DayCount, ProrationMode
from perseat_addin.money import Rounding
from perseat_addin.tasks.push import PSAS
from perseat_addin.workbook.load import (
    CSV_DATE_FORMATS,
    SETTING_ABOUT,
    SETTING_CHOICES,
    load,
    load_settings,
    read_table,
)
from perseat_addin.workbook.package import Package
from perseat_addin.workbook.reader import WorkbookFile
from perseat_addin.workbook.schema import SCHEMA

XL_ROWS = 1_048_576

STATIC_LISTS = {
    ("Plans", "Tiering"): ("flat", "volume", "graduated"),
    ("Plans", "Basis"): ("users", "greater"),
    ("Plans", "Taxable"): YES_NO,
    ("UserTypes", "Billable"): ("Yes", "No", "Device"),
    ("Clients", "Status"): ("Active", "Inactive"),
    ("Clients", "ProrationMode"): ("daily", "snapshot", "peak", "full"),
    ("Roster", "Status"): ("Active", "Disabled"),
    ("AddOns", "PerUser"): YES_NO,
    ("AddOns", "Taxable"): YES_NO,
    ("AddOns", "Frequency"): ("monthly", "once"),
    ("Usage", "Billable"): YES_NO,
}
"""Every column the issue names, with the list staff see (the engine's words, checked against the loader)."""

BOUND_LISTS = {
    ("Tiers", "Plan"): "Plans[Plan]",
    ("Clients", "Plan"): "Plans[Plan]",
    ("Roster", "Plan"): "Plans[Plan]",
    ("Roster", "Type"): "UserTypes[Type]",
    ("Roster", "Client"): "Clients[Client]",
    ("Devices", "Client"): "Clients[Client]",
    ("AddOns", "Client"): "Clients[Client]",
    ("Usage", "Client"): "Clients[Client]",
}

SETTING_LISTS = {
    "ProrationMode": ("daily", "snapshot", "peak", "full"),
    "DayCount": ("actual", "thirty"),
    "BillingTiming": ("arrears", "advance"),
    "Rounding": ("half-up", "down"),
    "CsvDateFormat": CSV_DATE_FORMATS,
    "AttachUserList": ("Yes", "No"),
    "PSA": ("connectwise", "autotask", "halopsa"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tpl") / "workbook_template.xlsm")


def _headers(ws: Worksheet, table: str) -> list[str]:
    ref = ws.tables[table].ref
    return [str(c.value) for c in ws[ref][0]]


def _validations(ws: Worksheet) -> dict[str, Any]:
    """Column letter (or single cell) → its validation, for validations of one column or one cell."""
    out: dict[str, Any] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            if rng.min_col == rng.max_col:
                key = rng.coord if rng.min_row == rng.max_row else f"{rng.coord.split(':')[0].rstrip('0123456789')}"
                out[key] = (dv, rng)
    return out


def _letter(ws: Worksheet, table: str, header: str) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(_headers(ws, table).index(header) + 1)


def _listed(formula: str) -> tuple[str, ...]:
    assert formula.startswith('"') and formula.endswith('"'), formula
    return tuple(formula[1:-1].split(","))


# --------------------------------------------------------------------------
# the lists, read back from the file


def test_every_named_column_has_its_drop_down(template: Path) -> None:
    wb = load_workbook(template, keep_vba=True)
    try:
        for (table, header), values in STATIC_LISTS.items():
            ws = wb[table]
            dv, rng = _validations(ws)[_letter(ws, table, header)]
            assert dv.type == "list" and _listed(dv.formula1) == values, (table, header, dv.formula1)
            assert (rng.min_row, rng.max_row) == (2, XL_ROWS), (table, header, rng)  # rows added later too
            assert dv.errorStyle in (None, "stop") and dv.showErrorMessage, (table, header)
            for v in values:  # the loader reads every value the list offers
                col = next(c for c in SCHEMA[table] if c.name == header)
                assert v.lower() in (col.choices or ("yes", "no")), (table, header, v)
        for (table, header), source in BOUND_LISTS.items():
            ws = wb[table]
            dv, rng = _validations(ws)[_letter(ws, table, header)]
            name = dv.formula1
            assert wb.defined_names[name].attr_text == source, (table, header, name)
            assert (rng.min_row, rng.max_row) == (2, XL_ROWS)
            assert dv.allow_blank, (table, header)  # a blank Plan means the client's plan
            assert dv.showErrorMessage and source.split("[")[0] in dv.error, (table, header, dv.error)
    finally:
        wb.close()


def test_static_lists_are_the_engines_own_values() -> None:
    assert {"ProrationMode": tuple(m.value for m in ProrationMode),
                               "DayCount": tuple(m.value for m in DayCount),
                               "BillingTiming": tuple(m.value for m in BillingTiming),
                               "Rounding": tuple(m.value for m in Rounding),
                               "CsvDateFormat": CSV_DATE_FORMATS,
                               "AttachUserList": ("Yes", "No"),
                               "PSA": PSAS} == SETTING_CHOICES
    assert set(TABLE_LISTS.values()) == set(LIST_NAMES)


def test_settings_values_that_take_a_word_have_a_drop_down(template: Path) -> None:
    wb = load_workbook(template, keep_vba=True)
    try:
        ws = wb["Settings"]
        cells = _validations(ws)
        rows = {str(r[0].value): r[1].coordinate for r in ws.iter_rows(min_row=2) if r[0].value}
        for name, values in SETTING_LISTS.items():
            dv, _ = cells[rows[name]]
            assert _listed(dv.formula1) == values, (name, dv.formula1)
        assert not {k for k in cells if k not in {rows[n] for n in SETTING_LISTS}}, cells  # no other cell
    finally:
        wb.close()


# --------------------------------------------------------------------------
# Settings' About column


def test_every_setting_has_an_about_sentence_in_the_template(template: Path) -> None:
    wb = load_workbook(template, keep_vba=True)
    try:
        ws = wb["Settings"]
        assert _headers(ws, "Settings") == ["Setting", "Value", "About"]
        about = {str(r[0].value): r[2].value for r in ws.iter_rows(min_row=2, max_col=3) if r[0].value}
        assert about == SETTING_ABOUT
        assert ws.cell(1, 4).value is None  # a blank column between the table and the Book cells
        assert str(ws["E1"].value).startswith("Book") and str(ws["E2"].value).startswith("=PERSEATBOOK(")
    finally:
        wb.close()
    for name, sentence in SETTING_ABOUT.items():
        assert sentence.endswith(".") and len(sentence) > 30, name
    for name in ("ProrationMode", "DayCount", "BillingTiming", "Rounding", "AttachUserList"):
        for value in SETTING_CHOICES[name]:  # each word of the list is explained: "daily: ..."
            assert f"{value}: " in SETTING_ABOUT[name], (name, value)
    assert "actual: a month has its real number of days" in SETTING_ABOUT["DayCount"]
    assert "thirty: every month counts 30 days" in SETTING_ABOUT["DayCount"]


def test_the_about_column_is_never_read_as_a_setting(tmp_path: Path) -> None:
    """About text that looks like a setting, and an About cell on a row of its own, change nothing."""
    rows = [("BillingPeriod", "2026-11", "Rounding: down"), ("NextInvoiceNumber", 7, "ProrationMode peak"),
            ("Rounding", "half-up", "down: fractions of a cent are dropped"), (None, None, "DayCount thirty")]
    plain = [r[:2] for r in rows if r[0]]
    books = {}
    for name, spec in (("about", SheetSpec("Settings", ("Setting", "Value", "About"), rows)),
                       ("plain", SheetSpec("Settings", ("Setting", "Value"), plain))):
        path = tmp_path / f"{name}.xlsx"
        write_workbook(path, [spec])
        table, problems = read_table(WorkbookFile(path), "Settings")
        settings, more = load_settings(table)
        books[name] = (settings, [str(p) for p in problems + more])
    (about, about_problems), (bare, bare_problems) = books["about"], books["plain"]
    assert about is not None and about == bare, (about, bare)
    assert about.rounding is Rounding.HALF_UP and about.next_invoice_number == 7
    assert about.proration_mode is ProrationMode.DAILY and about.day_count is DayCount.ACTUAL
    assert about_problems == bare_problems == []


def test_the_template_loads_with_its_about_column(template: Path) -> None:
    book = load(template)
    assert book.settings.proration_mode is ProrationMode.DAILY and book.settings.day_count is DayCount.ACTUAL
    assert len(book.clients) == 8 and len(book.roster) > 50


# --------------------------------------------------------------------------
# the Start here sheet


def test_start_here_is_the_first_and_active_sheet(template: Path) -> None:
    wb = load_workbook(template, keep_vba=True)
    try:
        assert wb.sheetnames[0] == START_HERE and wb.active.title == START_HERE
        text = "\n".join(str(c.value) for row in wb[START_HERE].iter_rows() for c in row if c.value)
    finally:
        wb.close()
    parts = excel_parts()
    assert parts.custom_ui is not None
    for label, _ in ribbon_buttons(parts.custom_ui):  # every button, by its ribbon label
        assert label in text, label
    for step in ("1. Import roster", "2. Check workbook", "3. Generate invoices", "4. Finalize period"):
        assert step in text
    for spec in template_sheets():
        assert spec.name in SHEET_PURPOSES and SHEET_PURPOSES[spec.name] in text, spec.name
    assert BOOK_CELL in text
    assert "SEATCHARGE(users, plan, [plans], [tiers], [devices])" in text


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
                    reason="LibreOffice or pdftoppm is missing: cannot render the Start here sheet")
def test_start_here_renders_on_portrait_pages(template: Path, tmp_path: Path) -> None:
    """Rendered by LibreOffice: the first pages are portrait, one column of text, and the last words show."""
    pdf = tmp_path / "book.pdf"
    open_in_libreoffice(template, tmp_path, pdf)
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "1", str(pdf)], capture_output=True, text=True,
                          timeout=60).stdout
    size = next(ln for ln in info.splitlines() if ln.startswith("Page    1 size"))
    width, height = (float(x) for x in size.split(":")[1].split("pts")[0].split(" x "))
    assert height > width, size
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "4", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "Per-seat billing: start here" in text and "The monthly routine" in text
    assert "the README's" in text  # the sheet's last row is printed, not cut off
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
                   check=True, timeout=120)
    assert list(tmp_path.glob("p*.png"))


# --------------------------------------------------------------------------
# LibreOffice: the lists read back, and values typed into them judged


def _grown(template: Path, out: Path) -> tuple[Path, dict[str, int]]:
    """The template with a plan added to Plans and a row added to Roster the way imports write (the table
    grows), plus the Excel row of the first blank Roster, Clients and Usage row."""
    pkg = Package(template.read_bytes(), template)
    wb = load_workbook(io.BytesIO(template.read_bytes()), keep_vba=True)
    rows = {}
    try:
        for name, extra in (("Plans", {"Plan": "Platinum", "Rate": 180}),
                            ("Roster", {"Client": "Acme Dental Group", "UserID": "new.hire@acmedental.example",
                                        "Type": "Employee", "Plan": "Titanium", "Start": dt.date(2026, 11, 16)})):
            ws = wb[name]
            cells = ws[ws.tables[name].ref]
            heads = [c.value for c in cells[0]]
            old = [[c.value for c in r] for r in cells[1:]]
            pkg.write_rows(name, old, [*old, [extra.get(h) for h in heads]])
        for name in ("Roster", "Clients", "Usage", "AddOns"):
            rows[name] = int(wb[name].tables[name].ref.split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) + 1
        rows["Roster"] += 1  # below the appended row
        rows["SettingsDayCount"] = next(r[0].row for r in wb["Settings"].iter_rows() if r[0].value == "DayCount")
    finally:
        wb.close()
    return pkg.save(out), rows


def test_libreoffice_reads_the_drop_downs_and_refuses_what_is_not_listed(template: Path, tmp_path: Path) -> None:
    book, row = _grown(template, tmp_path / "grown.xlsm")
    r, c, u = row["Roster"], row["Clients"], row["Usage"]
    wb = load_workbook(book, keep_vba=True)
    letter = {(t, h): _letter(wb[t], t, h) for t, h in [*STATIC_LISTS, *BOUND_LISTS]}
    wb.close()
    read = [(t, f"{letter[(t, h)]}2") for t, h in [*STATIC_LISTS, *BOUND_LISTS]]
    read.append(("Settings", f"B{row['SettingsDayCount']}"))
    typed = [
        ("Roster", f"{letter[('Roster', 'Plan')]}{r}", "Platinum"),  # the plan just added to Plans
        ("Roster", f"{letter[('Roster', 'Plan')]}{r + 1}", "Gold"),  # a plan Plans does not have
        ("Roster", f"{letter[('Roster', 'Type')]}{r}", "Employee"),
        ("Roster", f"{letter[('Roster', 'Type')]}{r + 1}", "Robot"),
        ("Roster", f"{letter[('Roster', 'Client')]}{r}", "Cobalt Logistics"),
        ("Roster", f"{letter[('Roster', 'Client')]}{r + 1}", "Nobody Inc"),
        ("Roster", f"{letter[('Roster', 'Status')]}{r}", "Disabled"),
        ("Roster", f"{letter[('Roster', 'Status')]}{r + 1}", "Gone"),
        ("Clients", f"{letter[('Clients', 'Plan')]}{c}", "Platinum"),
        ("Clients", f"{letter[('Clients', 'ProrationMode')]}{c}", "weekly"),
        ("Usage", f"{letter[('Usage', 'Billable')]}{u}", "Maybe"),
        ("Settings", f"B{row['SettingsDayCount']}", "thirty"),
    ]
    probe = open_in_libreoffice(book, tmp_path, probe={"read": read, "type": typed,
                                                       "check": ["Roster", "Clients", "Usage", "Settings"]})["probe"]
    for (t, h), values in STATIC_LISTS.items():
        v = probe["validations"][f"{t}!{letter[(t, h)]}2"]
        assert v["type"] == "LIST" and v["alert"] == "STOP" and v["show_error"], (t, h, v)
        assert tuple(x.strip('"') for x in v["formula1"].split(";")) == values, (t, h, v["formula1"])
    for (t, h), source in BOUND_LISTS.items():
        v = probe["validations"][f"{t}!{letter[(t, h)]}2"]
        assert v["type"] == "LIST" and v["alert"] == "STOP", (t, h, v)
        assert probe["names"][v["formula1"]] == source, (t, h, v["formula1"], probe["names"])
    assert probe["validations"][f"Settings!B{row['SettingsDayCount']}"]["formula1"] == '"actual";"thirty"'
    # Calc refuses exactly what is not listed: the sample data and the valid typed values pass
    assert probe["invalid"] == {
        "Roster": sorted([f"{letter[('Roster', 'Plan')]}{r - 1}",  # the imported row with plan Titanium
                          *(f"{letter[('Roster', h)]}{r + 1}" for h in ("Plan", "Type", "Client", "Status"))]),
        "Clients": [f"{letter[('Clients', 'ProrationMode')]}{c}"],
        "Usage": [f"{letter[('Usage', 'Billable')]}{u}"],
        "Settings": [],
    }, probe["invalid"]


def test_appended_rows_keep_formats_and_drop_downs(template: Path, tmp_path: Path) -> None:
    """Rows added by imports and finalize (Package.write_rows) take the column's number format and fall under
    its drop-down."""
    pkg = Package(template.read_bytes(), template)
    wb = load_workbook(io.BytesIO(template.read_bytes()), keep_vba=True)
    added = {
        "Roster": {"Client": "Acme Dental Group", "UserID": "x@acmedental.example", "Type": "Employee",
                   "Start": dt.date(2026, 11, 3), "End": dt.date(2026, 11, 30)},
        "Usage": {"Client": "Acme Dental Group", "Date": dt.date(2026, 11, 3), "Hours": 1.5},
        "Invoices": {"InvoiceNo": "HV-1001", "Client": "Acme Dental Group", "IssueDate": dt.date(2026, 12, 1),
                     "DueDate": dt.date(2026, 12, 31), "Subtotal": 1234.5, "Total": 1234.5, "Status": "Draft"},
        "ChangeLog": {"Timestamp": dt.datetime(2026, 11, 3, 9, 30), "Action": "add", "Client": "Acme Dental Group"},
        "Clients": {"Client": "New Co", "Plan": "Standard", "DiscountPct": 0.1, "Start": dt.date(2026, 11, 1)},
    }
    try:
        for name, extra in added.items():
            ws = wb[name]
            cells = ws[ws.tables[name].ref]
            heads = [c.value for c in cells[0]]
            old = [[c.value for c in r] for r in cells[1:] if any(c.value is not None for c in r)]
            pkg.write_rows(name, old, [*old, [extra.get(h) for h in heads]])
    finally:
        wb.close()
    out = pkg.save(tmp_path / "added.xlsm")
    wb = load_workbook(out, keep_vba=True)
    expected = {("Roster", "Start"): "yyyy-mm-dd", ("Roster", "End"): "yyyy-mm-dd", ("Usage", "Date"): "yyyy-mm-dd",
                ("Invoices", "IssueDate"): "yyyy-mm-dd", ("Invoices", "Subtotal"): "#,##0.00",
                ("Invoices", "Total"): "#,##0.00", ("ChangeLog", "Timestamp"): "yyyy-mm-dd hh:mm",
                ("Clients", "DiscountPct"): "0%", ("Clients", "Start"): "yyyy-mm-dd"}
    try:
        for (name, header), fmt in expected.items():
            ws = wb[name]
            last = ws[ws.tables[name].ref][-1]
            cell = last[_headers(ws, name).index(header)]
            assert cell.value is not None and cell.number_format == fmt, (name, header, cell.number_format)
        for (name, header) in [*STATIC_LISTS, *BOUND_LISTS]:
            if name not in added:
                continue
            ws = wb[name]
            last_row = ws[ws.tables[name].ref][-1][0].row
            _, rng = _validations(ws)[_letter(ws, name, header)]
            assert rng.min_row <= last_row <= rng.max_row, (name, header)
    finally:
        wb.close()


def test_a_list_whose_table_is_absent_is_left_out(tmp_path: Path) -> None:
    """A workbook without a Clients table gets no ClientList and no Client drop-down pointing at nothing."""
    path = tmp_path / "no-clients.xlsx"
    write_workbook(path, [s for s in template_sheets() if s.name != "Clients"])
    wb = load_workbook(path)
    try:
        assert set(wb.defined_names) == {"PlanList", "TypeList"}
        sources = {dv.formula1 for name in ("Roster", "Devices", "AddOns", "Usage")
                   for dv in wb[name].data_validations.dataValidation}
        assert "ClientList" not in sources and {"PlanList", "TypeList"} <= sources
    finally:
        wb.close()
