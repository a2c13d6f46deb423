"""Every package the product writes opens in Excel without a repair prompt (SPEC §10), as far as the
OOXML validator in tests/ooxml can tell: the ISO/IEC 29500 schemas plus Excel's own rules, and
Microsoft's Open XML SDK validator (tests/ooxml/README.md; .ci/run installs it, and there it must run).

Each package is built fresh by the real CLI (``python -m perseat_addin.cli``): the committed template,
``perseat template`` (sample and blank), invoices.xlsx with and without --finalize (the draft with a
logo and user list pages), the workbook after --finalize, after ``perseat credit`` and after ``perseat
import … --apply``, and report.xlsx. Then the
template as Excel leaves it after a user's edit and save (shared strings, calcChain, shared formula
blocks, Excel 365 markup, calculated columns the user added to Invoices, InvoiceLines and Settings, and
InvoiceLines[Amount] made a calculated column) is finalized, and an Excel-saved Roster with a
calculated column takes an import: the packages must stay valid and the user's formulas must be on
every row, old and new. A name that looks like an escape (``Ann_x0041_Lee``) must read back as typed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ooxml import decode_text, schemas_available, validate
from ooxml.excel_save import CalculatedColumn, as_excel_saves
from ooxml.reading import StoredTable, part_names, read_tables, xml_part
from ooxml.sdk import need_sdk, sdk_required, sdk_unavailable, sdk_validate
from openpyxl import load_workbook
from openpyxl_book import set_settings

from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "workbook_template.xlsm"
GRANITE = "Granite Accounting"
M365_HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"
LITERAL = "Ann_x0041_Lee"  # a name that looks like Excel's escape for "A" but is meant literally
ANN = "ann.lee@graniteacct.example"
CALC_CHAIN = "xl/calcChain.xml"
CALC_CHAIN_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"
USER_COLUMNS = (CalculatedColumn("Invoices", "TotalTimesTwo", "Total"),
                CalculatedColumn("InvoiceLines", "AmountTimesTwo", "Amount"),
                # a column the product fills, made a calculated column by the user: new rows get the formula
                CalculatedColumn("InvoiceLines", "Amount", "", text="InvoiceLines[[#This Row],[Quantity]]"
                                                                    "*InvoiceLines[[#This Row],[UnitPrice]]"),
                # rows --finalize rewrites (BillingPeriod, NextInvoiceNumber) carry a user's formula too
                CalculatedColumn("Settings", "SettingLength", "Setting", text="LEN(Settings[[#This Row],[Setting]])"))
ROSTER_COLUMN = CalculatedColumn("Roster", "NameLength", "Name", text="LEN(Roster[[#This Row],[Name]])")


def perseat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, dest))


def assert_valid(path: Path) -> None:
    """No problem by the validator's own checks, nor by Microsoft's Open XML SDK where it can run (on CI it
    must: ``need_sdk`` fails there without it; elsewhere test_the_open_xml_sdk_is_on_this_machine skips)."""
    problems = validate(path)
    if sdk_unavailable() is None or sdk_required():
        need_sdk()
        problems += sdk_validate(path)
    assert problems == [], f"{path.name}: {len(problems)} problem(s)\n" + "\n".join(problems)


def first_final_invoice(workbook: Path) -> str:
    table = WorkbookFile(workbook).table("Invoices")
    assert table is not None
    rows = [dict(zip(table.headers, r, strict=True)) for r in table.rows]
    return next(str(r["InvoiceNo"]) for r in rows if r["Kind"] == "Invoice" and r["Status"] == "Final")


def m365_export(workbook: Path, path: Path, extra: list[tuple[str, str]], leaving: int = 0) -> Path:
    """A Microsoft 365 export of the current Granite Accounting users on ``workbook``'s Roster but the
    first ``leaving``, plus ``extra`` (display name, user principal name)."""
    table = WorkbookFile(workbook).table("Roster")
    assert table is not None
    users: dict[str, str] = {}
    for r in (dict(zip(table.headers, row, strict=True)) for row in table.rows):
        if r["Client"] == GRANITE and not r["End"]:
            users.setdefault(str(r["UserID"]), str(r["Name"]))
    users = dict(list(users.items())[leaving:])
    users.update({upn: name for name, upn in extra})
    lines = [M365_HEADER] + [f"False,{name},,,Microsoft 365 Business Standard,{upn},2025-01-06"
                             for upn, name in users.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


# --------------------------------------------------------------------------
# every package the product writes


@dataclass(frozen=True)
class Written:
    packages: dict[str, Path]
    credited: str


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    tmp = tmp_path_factory.mktemp("written")
    out: dict[str, Path] = {"template (committed)": TEMPLATE}
    perseat("template", "--out", tmp / "sample.xlsm")
    out["perseat template"] = tmp / "sample.xlsm"
    perseat("template", "--blank", "--out", tmp / "blank.xlsm")
    out["perseat template --blank"] = tmp / "blank.xlsm"

    book = copy(TEMPLATE, tmp / "draft" / "billing.xlsm")  # with a logo and user list pages: images, print titles
    copy(ROOT / "tests" / "fixtures" / "logo.png", tmp / "draft" / "logo.png")
    set_settings(book, {"LogoFile": "logo.png", "AttachUserList": "Yes"})
    perseat("invoice", book, "--out", tmp / "draft-out")
    out["invoices.xlsx"] = tmp / "draft-out" / "invoices.xlsx"

    final = copy(TEMPLATE, tmp / "final" / "billing.xlsm")
    perseat("invoice", final, "--finalize", "--out", tmp / "final-out")
    out["invoices.xlsx (--finalize)"] = tmp / "final-out" / "invoices.xlsx"
    out["workbook after --finalize"] = final

    credit = copy(final, tmp / "credit" / "billing.xlsm")
    number = first_final_invoice(credit)
    perseat("credit", credit, number, "--amount", "10", "--reason", "test", "--out", tmp / "credit-out")
    out["workbook after credit"] = credit
    out["invoices.xlsx (credit note)"] = tmp / "credit-out" / "invoices.xlsx"

    imported = copy(TEMPLATE, tmp / "import" / "billing.xlsm")
    export = m365_export(imported, tmp / "granite.csv", [("Nina Holt", "nina.holt@graniteacct.example")])
    perseat("import", "m365", export, "--workbook", imported, "--client", GRANITE, "--apply")
    out["workbook after import --apply"] = imported

    perseat("report", TEMPLATE, "--out", tmp / "report-out")
    out["report.xlsx"] = tmp / "report-out" / "report.xlsx"

    big = tmp / "big" / "billing.xlsm"  # more invoices than get printable sheets: Register and Lines only
    big.parent.mkdir()
    subprocess.run([sys.executable, "-m", "benchmarks.cli", "--generate", str(big), "--users", "1500", "--clients",
                    "300"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    done = perseat("invoice", big, "--out", tmp / "big-out")
    assert "without a printable sheet per invoice" in done.stdout, done.stdout[-2000:]
    out["invoices.xlsx (no printable sheets)"] = tmp / "big-out" / "invoices.xlsx"
    for name, path in out.items():
        assert path.is_file(), f"{name}: {path} was not written"
    return Written(out, number)


PACKAGES = ("template (committed)", "perseat template", "perseat template --blank", "invoices.xlsx",
            "invoices.xlsx (--finalize)", "workbook after --finalize", "workbook after credit",
            "invoices.xlsx (credit note)", "workbook after import --apply", "report.xlsx",
            "invoices.xlsx (no printable sheets)")


@pytest.mark.parametrize("name", PACKAGES)
def test_written_package_is_valid(written: Written, name: str) -> None:
    assert_valid(written.packages[name])


def test_every_written_package_is_checked(written: Written) -> None:
    assert set(written.packages) == set(PACKAGES)


def test_the_xsd_schemas_are_on_this_machine() -> None:
    if not schemas_available():
        pytest.skip("the ISO/IEC 29500 XSD files are not on this machine (tests/ooxml/README.md says where to "
                    "put them): packages were checked against Excel's rules only, not the schemas")


def test_the_open_xml_sdk_is_on_this_machine() -> None:
    need_sdk()


# --------------------------------------------------------------------------
# after Excel has saved the workbook (shared strings, calcChain, shared formulas, a user's columns)


@dataclass(frozen=True)
class ExcelSaved:
    before: Path  # the template as Excel saves it, with the user's calculated columns
    after: Path  # the same after ``perseat invoice --finalize``
    invoices: Path  # the invoices.xlsx of that run


@pytest.fixture(scope="module")
def excel_saved(tmp_path_factory: pytest.TempPathFactory) -> ExcelSaved:
    tmp = tmp_path_factory.mktemp("excel-saved")
    before = tmp / "saved-by-excel.xlsm"
    before.write_bytes(as_excel_saves(TEMPLATE.read_bytes(), USER_COLUMNS))
    after = copy(before, tmp / "book" / "billing.xlsm")
    perseat("invoice", after, "--finalize", "--out", tmp / "out")
    return ExcelSaved(before, after, tmp / "out" / "invoices.xlsx")


def _formula_rows(table: StoredTable, column: str) -> list[tuple[str, str | None]]:
    return [(cell.ref if cell else "?", cell.formula if cell else None) for cell in (r[column] for r in table.rows)]


class TestAfterExcelSave:
    """The product's edits to a workbook Excel has saved: what Excel added must survive or go cleanly."""

    def test_the_excel_saved_workbook_is_itself_valid(self, excel_saved: ExcelSaved) -> None:
        assert_valid(excel_saved.before)
        parts = part_names(excel_saved.before)
        assert CALC_CHAIN in parts
        tables = read_tables(excel_saved.before)
        for spec in USER_COLUMNS:
            assert tables[spec.table].calculated[spec.name] == spec.formula
        lines = _formula_rows(tables["InvoiceLines"], "AmountTimesTwo")
        assert len(lines) >= 3 and all(f == USER_COLUMNS[1].formula for _, f in lines)
        masters = [f for part in sorted(parts) if part.startswith("xl/worksheets/sheet")
                   for f in xml_part(excel_saved.before, part).iter("{*}f") if f.get("t") == "shared" and f.get("ref")]
        assert masters, "the user's column holds a shared formula block, as Excel writes it"

    def test_finalize_writes_valid_packages(self, excel_saved: ExcelSaved) -> None:
        assert_valid(excel_saved.after)
        assert_valid(excel_saved.invoices)

    def test_user_calculated_columns_keep_their_formula_on_every_row(self, excel_saved: ExcelSaved) -> None:
        before, after = read_tables(excel_saved.before), read_tables(excel_saved.after)
        assert len(after["Invoices"].rows) > len(before["Invoices"].rows), "finalize records new invoices"
        assert len(after["InvoiceLines"].rows) > len(before["InvoiceLines"].rows)
        for spec in USER_COLUMNS:
            table = after[spec.table]
            assert spec.name in table.columns, f"{spec.table} lost the user's column {spec.name}"
            assert table.calculated.get(spec.name) == spec.formula, f"{spec.table}[{spec.name}] is no longer calculated"
            wrong = [(ref, f) for ref, f in _formula_rows(table, spec.name) if f != spec.formula]
            assert not wrong, f"{spec.table}[{spec.name}] cells without the formula {spec.formula}: {wrong[:5]}"

    def test_calc_chain_is_gone_or_lists_only_formula_cells(self, excel_saved: ExcelSaved) -> None:
        parts = part_names(excel_saved.after)
        types = xml_part(excel_saved.after, "[Content_Types].xml")
        overrides = {o.get("PartName") for o in types.iter("{*}Override")}
        rels = xml_part(excel_saved.after, "xl/_rels/workbook.xml.rels")
        chain_rels = [r for r in rels.iter("{*}Relationship") if r.get("Type", "").endswith("/calcChain")]
        if CALC_CHAIN not in parts:
            assert "/" + CALC_CHAIN not in overrides, "calcChain was removed but its content type was left behind"
            assert not chain_rels, "calcChain was removed but its relationship was left behind"
        else:
            [override] = [o for o in types.iter("{*}Override") if o.get("PartName") == "/" + CALC_CHAIN]
            assert override.get("ContentType") == CALC_CHAIN_TYPE
            assert len(chain_rels) == 1
            assert not [p for p in validate(excel_saved.after) if "calcChain" in p]

    def test_import_keeps_a_calculated_column_on_every_roster_row(self, tmp_path: Path) -> None:
        book = tmp_path / "billing.xlsm"
        book.write_bytes(as_excel_saves(TEMPLATE.read_bytes(), (ROSTER_COLUMN,)))
        before = read_tables(book)["Roster"]
        export = m365_export(book, tmp_path / "granite.csv", [("Nina Holt", "nina.holt@graniteacct.example")],
                             leaving=1)
        perseat("import", "m365", export, "--workbook", book, "--client", GRANITE, "--apply")
        assert_valid(book)
        roster = read_tables(book)["Roster"]
        assert len(roster.rows) > len(before.rows), "the import adds a user"
        assert roster.calculated.get(ROSTER_COLUMN.name) == ROSTER_COLUMN.formula
        wrong = [(ref, f) for ref, f in _formula_rows(roster, ROSTER_COLUMN.name) if f != ROSTER_COLUMN.formula]
        assert not wrong, f"Roster[{ROSTER_COLUMN.name}] cells without the formula: {wrong[:5]}"

    def test_a_literal_escape_lookalike_survives_an_import(self, tmp_path: Path) -> None:
        book = copy(TEMPLATE, tmp_path / "billing.xlsm")
        export = m365_export(book, tmp_path / "granite.csv", [(LITERAL, ANN)])
        perseat("import", "m365", export, "--workbook", book, "--client", GRANITE, "--apply", "--json")
        assert_valid(book)
        roster = read_tables(book)["Roster"]
        [ann] = [r for r in roster.rows if (cell := r["UserID"]) is not None and cell.text == ANN]
        stored = ann["Name"]
        assert stored is not None and stored.text is not None
        assert decode_text(stored.text) == LITERAL, (f"stored as {stored.text!r}, which Excel shows as "
                                                     f"{decode_text(stored.text)!r}")
        wb = load_workbook(book, read_only=True)
        try:
            rows = list(wb["Roster"].iter_rows(values_only=True))
        finally:
            wb.close()
        header = list(rows[0])
        names = [str(r[header.index("Name")]) for r in rows[1:] if r[header.index("UserID")] == ANN]
        assert [decode_text(n) for n in names] == [LITERAL]  # openpyxl gives the stored text; Excel shows it decoded
        table = WorkbookFile(book).table("Roster")
        assert table is not None
        read_back = [dict(zip(table.headers, r, strict=True)) for r in table.rows]
        assert [r["Name"] for r in read_back if r["UserID"] == ANN] == [LITERAL]  # the product's own reader
