"""Editing tables inside a workbook package: only the edited parts change, and every reader agrees."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from lxml import etree

from perseat_addin.errors import PerseatError
from perseat_addin.workbook.package import Package
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


def rows_of(path: Path, table: str) -> list[list[object]]:
    raw = WorkbookFile(path).table(table)
    assert raw is not None
    return raw.rows


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.fixture(autouse=True, params=["spliced", "parsed"])
def sheet_editing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs twice: sheets edited by splicing their rows (as a large sheet is), and parsed whole."""
    from perseat_addin.workbook import package

    monkeypatch.setattr(package, "_SPLICE", 0 if request.param == "spliced" else 1 << 62)
    return str(request.param)


@pytest.fixture
def wb(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(TEMPLATE, tmp_path / "wb.xlsm"))


def test_appended_rows_read_back_exactly_and_nothing_else_changes(wb: Path) -> None:
    before = rows_of(wb, "Roster")
    new = [*before,
           ["Acme Dental Group", "new.hire@acme.example", "New Hire", "new.hire@acme.example", "Employee", "",
            dt.datetime(2026, 12, 1), None, "Active", "Microsoft 365", "  padded note  "],
           ["Acme Dental Group", "x@acme.example", "Tab\tand\x01control", "", "Contractor", "Premium",
            dt.date(2026, 12, 15), dt.date(2026, 12, 31), "Active", "", 42]]
    original = wb.read_bytes()
    pkg = Package(original, wb)
    pkg.write_rows("Roster", before, new)
    pkg.save()
    after = rows_of(wb, "Roster")
    assert after[: len(before)] == before
    assert after[-2][:9] == ["Acme Dental Group", "new.hire@acme.example", "New Hire", "new.hire@acme.example",
                             "Employee", "", dt.date(2026, 12, 1), "", "Active"]
    assert after[-2][10] == "  padded note  "
    assert after[-1][6:8] == [dt.date(2026, 12, 15), dt.date(2026, 12, 31)]
    assert after[-1][10] == 42
    old_parts, new_parts = parts(original), parts(wb.read_bytes())
    assert old_parts.keys() == new_parts.keys()
    changed = {n for n in old_parts if old_parts[n] != new_parts[n]}
    assert changed <= {"xl/workbook.xml", "xl/styles.xml", *(n for n in old_parts if n.startswith("xl/worksheets/")
                                                             and not n.endswith(".rels")),
                       *(n for n in old_parts if n.startswith("xl/tables/"))}
    assert len([n for n in changed if n.startswith("xl/worksheets/")]) == 1
    assert len([n for n in changed if n.startswith("xl/tables/")]) == 1
    for kept in ("xl/vbaProject.bin", "customUI/customUI.xml", "[Content_Types].xml", "xl/sharedStrings.xml"):
        assert old_parts[kept] == new_parts[kept]
    # openpyxl reads the same table, now two rows longer, with the dates as dates
    book = openpyxl.load_workbook(wb)
    ws = book["Roster"]
    ref = ws.tables["Roster"].ref
    assert ref == f"A1:K{len(new) + 1}"
    assert ws.tables["Roster"].autoFilter.ref == ref
    assert ws.cell(len(new) + 1, 7).value == dt.datetime(2026, 12, 15)
    assert ws.cell(len(new) + 1, 3).value == "Tab\tand_x0001_control"
    assert ws.cell(len(new), 7).number_format.lower() in ("yyyy-mm-dd", "yyyy\\-mm\\-dd")
    assert etree.fromstring(new_parts["xl/workbook.xml"]).find(
        "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}calcPr").get("fullCalcOnLoad") == "1"


def test_changed_cells_keep_their_style_and_unchanged_rows_are_untouched(wb: Path) -> None:
    before = rows_of(wb, "Roster")
    new = [list(r) for r in before]
    new[0][7] = dt.datetime(2026, 11, 30)  # End of the first user
    new[1][2] = "Jon Reyes"
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, new, changed=[0, 1])
    pkg.save()
    after = rows_of(wb, "Roster")
    assert after[0][7] == dt.date(2026, 11, 30)
    assert after[1][2] == "Jon Reyes"
    assert after[2:] == before[2:]
    ws = openpyxl.load_workbook(wb)["Roster"]
    assert ws["G2"].number_format == ws["H2"].number_format  # End got the Start column's date format


def test_shrinking_a_table_clears_rows_and_keeps_one(wb: Path) -> None:
    before = rows_of(wb, "Devices")
    assert len(before) > 1
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Devices", before, [])
    pkg.save()
    ws = openpyxl.load_workbook(wb)["Devices"]
    assert ws.tables["Devices"].ref == "A1:F2"
    assert all(ws.cell(r, c).value is None for r in range(2, len(before) + 2) for c in range(1, 7))


def test_data_below_a_table_stops_it_growing_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "below.xlsx"
    book = xlsxwriter.Workbook(path)
    ws = book.add_worksheet("Roster")
    ws.add_table("A1:B2", {"name": "Roster", "columns": [{"header": "Client"}, {"header": "UserID"}],
                           "data": [["Acme", "a@x"]]})
    ws.write("A4", "a note the user typed")
    book.close()
    data = path.read_bytes()
    pkg = Package(data, path)
    with pytest.raises(PerseatError, match=r"A4.*below the Roster table"):
        pkg.write_rows("Roster", [["Acme", "a@x"]], [["Acme", "a@x"], ["Acme", "b@x"], ["Acme", "c@x"]])
    assert path.read_bytes() == data


def test_calculated_columns_get_their_formula_in_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "calc.xlsx"
    book = xlsxwriter.Workbook(path)
    ws = book.add_worksheet("Usage")
    ws.add_table("A1:C2", {"name": "Usage", "columns": [
        {"header": "Tickets"}, {"header": "Hours"}, {"header": "PerTicket", "formula": "[@Hours]/[@Tickets]"}],
        "data": [[2, 3]]})
    book.close()
    pkg = Package(path.read_bytes(), path)
    pkg.write_rows("Usage", [[2, 3, None]], [[2, 3, None], [4, Decimal("5.5"), None]])
    pkg.save()
    ws2 = openpyxl.load_workbook(path)["Usage"]
    assert ws2["A3"].value == 4 and ws2["B3"].value == 5.5
    assert str(ws2["C3"].value).startswith("=") and "Hours" in str(ws2["C3"].value)


def test_a_workbook_changed_on_disk_meanwhile_is_not_overwritten(wb: Path) -> None:
    before = rows_of(wb, "Roster")
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, [*before, ["Acme Dental Group", "late@acme.example"]])
    with open(wb, "ab") as f:
        f.write(b"\0")  # someone saved the workbook meanwhile
    changed = wb.read_bytes()
    with pytest.raises(PerseatError, match="changed while"):
        pkg.save()
    assert wb.read_bytes() == changed


def test_unknown_table_names_the_fix(wb: Path) -> None:
    with pytest.raises(PerseatError, match=r"no Budget table.*perseat template"):
        Package(wb.read_bytes(), wb).write_rows("Budget", [], [])


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_the_edited_workbook(wb: Path, tmp_path: Path) -> None:
    before = rows_of(wb, "Roster")
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, [*before, ["Birch & Lowe LLP", "ana@birch.example", "Ana <Ó'Neil> & co",
                                                "", "Employee", "", dt.datetime(2026, 12, 2), None, "Active"]])
    pkg.save()
    out = tmp_path / "lo"
    proc = subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/profile",
                           "--convert-to", "xlsx", "--outdir", str(out), str(wb)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ws = openpyxl.load_workbook(out / "wb.xlsx")["Roster"]
    last = len(before) + 2
    assert ws.cell(last, 3).value == "Ana <Ó'Neil> & co"
    assert ws.cell(last, 7).value == dt.datetime(2026, 12, 2)


def _excel_saved(path: Path) -> None:
    """Make ``path`` look the way Excel saves a table with a calculated column: shared formulas for the column
    (first cell holds the text and the range) and a calculation chain listing those cells."""
    files = parts(path.read_bytes())
    sheet = files["xl/worksheets/sheet1.xml"].decode()
    calc = re.search(r'<c r="C2"[^>]*><f>([^<]+)</f>', sheet)
    assert calc is not None
    text = calc.group(1)
    sheet = sheet.replace(f"<f>{text}</f>", f'<f t="shared" ref="C2:C3" si="0">{text}</f>', 1)
    sheet = sheet.replace(f"<f>{text}</f>", '<f t="shared" si="0"/>')
    sheet = sheet.replace("<f>B2*2</f>", '<f t="shared" ref="D2:D3" si="1">B2*2</f>', 1)
    sheet = sheet.replace("<f>B3*2</f>", '<f t="shared" si="1"/>')
    files["xl/worksheets/sheet1.xml"] = sheet.encode()
    files["xl/calcChain.xml"] = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<calcChain xmlns="http://'
                                 b'schemas.openxmlformats.org/spreadsheetml/2006/main"><c r="C2" i="1"/><c r="C3"/>'
                                 b'<c r="D2"/><c r="D3"/></calcChain>')
    rels = files["xl/_rels/workbook.xml.rels"].decode()
    files["xl/_rels/workbook.xml.rels"] = rels.replace(
        "</Relationships>", '<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/calcChain" Target="calcChain.xml"/></Relationships>').encode()
    types = files["[Content_Types].xml"].decode()
    files["[Content_Types].xml"] = types.replace(
        "</Types>", '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.calcChain+xml"/></Types>').encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in files.items():
            z.writestr(n, b)


def test_an_excel_saved_sheet_keeps_its_formulas_and_loses_its_calc_chain(tmp_path: Path) -> None:
    path = tmp_path / "saved.xlsx"
    book = xlsxwriter.Workbook(path)
    ws = book.add_worksheet("Usage")
    ws.add_table("A1:D3", {"name": "Usage", "columns": [
        {"header": "Tickets"}, {"header": "Hours"}, {"header": "PerTicket", "formula": "[@Hours]/[@Tickets]"},
        {"header": "Double"}], "data": [[2, 3], [1, 4]]})
    ws.write_formula("D2", "=B2*2")
    ws.write_formula("D3", "=B3*2")
    book.close()
    _excel_saved(path)
    old = [[2, 3, None, None], [1, 4, None, None]]
    pkg = Package(path.read_bytes(), path)
    # the first row changes (its shared formula's first cell is rewritten), a row is added
    pkg.write_rows("Usage", old, [[5, 3, 1.5, 6], [1, 4, None, None], [4, 8, 99, None]])
    data = pkg.data()
    got = parts(data)
    assert "xl/calcChain.xml" not in got
    assert b"calcChain" not in got["xl/_rels/workbook.xml.rels"] and b"calcChain" not in got["[Content_Types].xml"]
    assert b't="shared"' not in got["xl/worksheets/sheet1.xml"]
    path.write_bytes(data)
    ws2 = openpyxl.load_workbook(path)["Usage"]
    # the calculated column holds its formula on every row, the new one too (never the value handed in)
    calc = [ws2[f"C{r}"].value for r in (2, 3, 4)]
    assert len(set(calc)) == 1 and "Hours" in str(calc[0]) and str(calc[0]).startswith("=")
    # a shared formula written out in full, translated to each cell; the changed value replaced only its cell
    assert ws2["D2"].value == 6 and ws2["D3"].value == "=B3*2"
    assert ws2["A2"].value == 5 and ws2["A4"].value == 4


def test_a_value_typed_over_a_calculated_column_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "calc.xlsx"
    book = xlsxwriter.Workbook(path)
    ws = book.add_worksheet("Usage")
    ws.add_table("A1:C3", {"name": "Usage", "columns": [
        {"header": "Tickets"}, {"header": "Hours"}, {"header": "PerTicket", "formula": "[@Hours]/[@Tickets]"}],
        "data": [[2, 3], [1, 4]]})
    ws.write_number("C3", 7)  # the user's exception, as Excel allows
    book.close()
    pkg = Package(path.read_bytes(), path)
    pkg.write_rows("Usage", [[2, 3, None], [1, 4, 7]], [[2, 3, None], [9, 4, 7]])
    path.write_bytes(pkg.data())
    ws2 = openpyxl.load_workbook(path)["Usage"]
    assert ws2["A3"].value == 9 and ws2["C3"].value == 7 and "Hours" in str(ws2["C2"].value)


def test_literal_escape_sequences_survive_a_round_trip(wb: Path, tmp_path: Path) -> None:
    before = rows_of(wb, "Roster")
    row = list(before[0])
    row[2] = "Ann_x0041_Lee _x005F_ and_x00e9_"
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, [*before, row])
    out = tmp_path / "out.xlsm"
    out.write_bytes(pkg.data())
    assert rows_of(out, "Roster")[-1][2] == "Ann_x0041_Lee _x005F_ and_x00e9_"
    assert any(b"Ann_x005F_x0041_Lee _x005F_x005F_ and_x005F_x00e9_" in body
               for name, body in parts(out.read_bytes()).items() if name.startswith("xl/worksheets/"))


@pytest.mark.parametrize("text", ["_x0041\x01", "_x0041_x0042_", "a_x00e9\x1fb_x0041_c", "__x0041_\x02_"])
def test_text_that_would_read_as_an_escape_once_written_survives(wb: Path, tmp_path: Path, text: str) -> None:
    # "_x0041" then a control character: the control character's own escape (_x0001_) would close it
    before = rows_of(wb, "Roster")
    row = list(before[0])
    row[2] = text
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, [*before, row])
    out = tmp_path / "out.xlsm"
    out.write_bytes(pkg.data())
    assert rows_of(out, "Roster")[-1][2] == text  # calamine decodes _xHHHH_ left to right, as Excel does


def test_two_tables_with_one_name_are_refused(wb: Path) -> None:
    files = parts(wb.read_bytes())
    roster = next(n for n, b in files.items() if n.startswith("xl/tables/") and b'displayName="Roster"' in b)
    log = next(n for n, b in files.items() if n.startswith("xl/tables/") and b'displayName="ChangeLog"' in b)
    files[roster] = files[roster].replace(b'name="Roster"', b'name="ChangeLog"').replace(
        b'displayName="Roster"', b'displayName="ChangeLog"')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(PerseatError, match=r"two tables are named ChangeLog"):
        Package(buf.getvalue(), wb)
    del log


def test_excel_limits_are_checked_before_anything_is_written(wb: Path) -> None:
    before = rows_of(wb, "Roster")
    long_row = list(before[0])
    long_row[2] = "x" * 32_768
    pkg = Package(wb.read_bytes(), wb)
    with pytest.raises(PerseatError, match=r"Roster!C\d+ would hold 32,768 characters; an Excel cell holds at most "
                                           r"32,767"):
        pkg.write_rows("Roster", before, [*before, long_row])
    pkg = Package(wb.read_bytes(), wb)
    too_many = [before[0]] * 1_048_576
    with pytest.raises(PerseatError, match=r"1,048,576 rows, ending past Excel's last row 1,048,576 on sheet Roster"):
        pkg.write_rows("Roster", before, too_many, changed=[])


def _rezipped(data: bytes, store: str, descriptor: bool) -> bytes:
    """``data`` written again: ``store`` kept uncompressed, and (``descriptor``) every size after its part, as
    a writer that streams does."""
    out = io.BytesIO()

    class Stream(io.RawIOBase):  # not seekable: zipfile then writes data descriptors
        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            return out.write(b)

    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(Stream() if descriptor else out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info),
                         compress_type=zipfile.ZIP_STORED if info.filename == store else zipfile.ZIP_DEFLATED)
    return out.getvalue()


@pytest.mark.parametrize("descriptor", [False, True])
def test_unchanged_parts_are_copied_as_they_are_compressed(wb: Path, descriptor: bool) -> None:
    original = _rezipped(wb.read_bytes(), "xl/vbaProject.bin", descriptor)
    pkg = Package(original, wb)
    before = rows_of(wb, "Roster")
    pkg.write_rows("Roster", before, [*before, [*before[0][:1], "copy@acme.example", *before[0][2:]]])
    pkg.add_table("Billed", ("Client", "Invoice"))
    fast = pkg.data()
    with zipfile.ZipFile(io.BytesIO(fast)) as z:
        assert z.testzip() is None
        assert z.getinfo("xl/vbaProject.bin").compress_type == zipfile.ZIP_STORED
        for info in z.infolist():
            assert info.flag_bits & 0x8 == 0
    kept = [name for name in parts(original) if name not in pkg._edited]
    assert "xl/vbaProject.bin" in kept and "xl/sharedStrings.xml" in kept
    for name in kept:
        assert _compressed(fast, name) == _compressed(original, name)  # copied as it was compressed
    slow = package_by_zipfile(pkg)
    assert parts(fast) == parts(slow)
    assert list(parts(fast)) == list(parts(slow))


def _compressed(data: bytes, name: str) -> bytes:
    """A part's bytes as stored in the zip."""
    import struct

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(name)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    return data[start:start + info.compress_size]


def package_by_zipfile(pkg: Package) -> bytes:
    """What ``Package.data`` wrote before: every part inflated and deflated again by zipfile."""
    from perseat_addin.workbook import package as module

    keep = module._repack
    module._repack = lambda *args: None  # type: ignore[assignment]
    try:
        return pkg.data()
    finally:
        module._repack = keep


def test_rows_appended_in_one_go_are_the_cells_set_one_by_one(wb: Path) -> None:
    """Appended rows are written as text and parsed once; every kind of value comes out exactly as setting
    its cell would make it (escapes, a kept carriage return, spaces, dates given a date style)."""
    before = rows_of(wb, "Roster")
    odd = ["A & B <c>", "line\r\nbreak", "  spaced ", "_x0041_ literal", "tab\there\x02", True, Decimal("12.50"),
           2.5, dt.date(2026, 12, 15), dt.datetime(2026, 12, 1, 9, 30)]
    extra = [[v, f"{i}@acme.example", *odd[i:], *odd[:i]][:11] for i, v in enumerate(["Acme Dental Group"] * 10)]
    batch = Package(wb.read_bytes(), wb)
    batch.write_rows("Roster", before, [*before, *extra])
    one_by_one = Package(wb.read_bytes(), wb)
    table = one_by_one._table("Roster")
    sheet = one_by_one._sheet(table.sheet_part)
    first = sheet.last_row + 1
    styles = sheet.column_styles(0, 10, 2, sheet.last_row)
    for k, row in enumerate(extra):
        for j, v in enumerate(row):
            if (v is not None and v != "") or styles[j]:
                sheet.set(j, first + k, v, styles[j], one_by_one.styles)
    sheet.extend_dimension(10, first + len(extra) - 1)
    got, want = (parts(p.data()) for p in (batch, one_by_one))
    assert got[table.sheet_part] == want[table.sheet_part]
    assert got["xl/styles.xml"] == want["xl/styles.xml"]
    wb.write_bytes(batch.data())
    back = rows_of(wb, "Roster")[len(before):]
    assert back[1][1:6] == ["1@acme.example", "line\r\nbreak", "  spaced ", "_x0041_ literal", "tab\there\x02"]
    assert back[0][1] == "0@acme.example" and back[0][2] == "A & B <c>"


def test_a_book_holding_the_lock_writes_from_the_sheets_it_parsed_ahead(wb: Path, tmp_path: Path) -> None:
    """``FileBook.prepare`` parses on another thread what the write then edits: the same bytes as without it."""
    from perseat_addin.tables import TableEdit
    from perseat_addin.tasks.filebook import FileBook

    other = Path(shutil.copyfile(wb, tmp_path / "other.xlsm"))
    late = ("Acme Dental Group", "late@acme.example", "Late Joiner", "late@acme.example", "Employee", "",
            dt.date(2026, 12, 2), None, "Active", "", "")
    edit = TableEdit("Roster", ((0, 2, "Renamed"),), (), (late,))
    results = []
    for path, ahead in ((wb, True), (other, False)):
        with FileBook(path, "test") as book:
            if ahead:
                book.prepare(["Roster", "ChangeLog", "NoSuchTable"])
                assert book._prepared is not None
            book.write([edit])
            assert book._prepared is None
        results.append(parts(path.read_bytes()))
    assert results[0] == results[1]
    assert rows_of(wb, "Roster")[0][2] == "Renamed"
    assert rows_of(wb, "Roster")[-1][1] == "late@acme.example"


def test_a_book_without_the_lock_prepares_nothing(wb: Path) -> None:
    from perseat_addin.tasks.filebook import FileBook

    book = FileBook(wb)
    book.prepare(["Roster"])
    assert book._prepared is None


def test_a_large_part_deflated_in_two_halves_is_one_valid_stream(wb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts past the split size are deflated in two halves side by side; zip readers see one whole part."""
    from perseat_addin.workbook import package

    monkeypatch.setattr(package, "_SPLIT", 2_000)
    before = rows_of(wb, "Roster")
    pkg = Package(wb.read_bytes(), wb)
    pkg.write_rows("Roster", before, [*before, ["Acme Dental Group", "half@acme.example", "Half Way", "", "Employee",
                                                "", dt.date(2026, 12, 1), None, "Active", "", ""]])
    data = pkg.data()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        sheet = next(n for n, b in ((n, z.read(n)) for n in z.namelist()) if b"half@acme.example" in b)
        assert z.getinfo(sheet).file_size > 2 * package._SPLIT
    wb.write_bytes(data)
    assert rows_of(wb, "Roster")[-1][1] == "half@acme.example"
    assert openpyxl.load_workbook(wb)["Roster"].max_row == len(before) + 2


def test_a_spliced_sheet_writes_back_the_rows_no_edit_touched_byte_for_byte(wb: Path, sheet_editing: str) -> None:
    from perseat_addin.workbook import package

    before = rows_of(wb, "Roster")
    pkg = Package(wb.read_bytes(), wb)
    part = pkg._table("Roster").sheet_part
    original = parts(wb.read_bytes())[part]
    changed = [list(r) for r in before]
    changed[3][2] = "Renamed & <Co>"
    pkg.write_rows("Roster", before, [*changed, ["Acme Dental Group", "z@acme.example", "Zed", "", "Employee", "",
                                                 dt.date(2026, 12, 1), None, "Active", "", ""]], [3])
    assert isinstance(pkg._sheet(part), package._SplicedSheet) == (sheet_editing == "spliced")
    written = parts(pkg.data())[part]
    rows = re.compile(rb"<row\b.*?</row>", re.S)
    kept = [r for r in rows.findall(original) if b' r="5"' not in r and b' r="2"' not in r]
    if sheet_editing == "spliced":
        assert all(r in written for r in kept[1:-4])  # every row but the edited one and the styled last ones
    wb.write_bytes(pkg.data())
    after = rows_of(wb, "Roster")
    assert after[3][2] == "Renamed & <Co>" and after[-1][1] == "z@acme.example"
    assert [r for i, r in enumerate(after[:-1]) if i != 3] == [r for i, r in enumerate(before) if i != 3]


@pytest.mark.parametrize("unusual", [b"<!-- a note -->", b"<?pi here?>", b'<c r="Z1"><f t="shared" si="0"/></c>'])
def test_a_sheet_with_anything_unusual_among_its_rows_is_parsed_whole(unusual: bytes) -> None:
    from perseat_addin.workbook.package import MAIN, _SplicedSheet

    plain = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><sheetData>'
             '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><v>2</v></c></row>'
             "</sheetData></worksheet>").encode()
    assert _SplicedSheet.of(plain, "sheet.xml") is not None
    odd = plain.replace(b'<row r="2">', b'<row r="2">' + unusual)
    assert _SplicedSheet.of(odd, "sheet.xml") is None
    assert _SplicedSheet.of(plain.replace(b'r="2"', b'r="1"', 1).replace(b'r="1"', b'r="2"', 1), "s") is None
    assert _SplicedSheet.of(plain.replace(b'<row r="2">', b"<row>"), "sheet.xml") is None  # a row without its number
    prefixed = plain.replace(b"<row", b"<x:row").replace(b"</row", b"</x:row").replace(
        b"<worksheet ", f'<worksheet xmlns:x="{MAIN}" '.encode())
    assert _SplicedSheet.of(prefixed, "sheet.xml") is None
