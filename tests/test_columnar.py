"""Large tables are read column by column (Arrow), small ones cell by cell: both ways give the same tables,
the same problems (sheet, row and column) and the same Excel error cells, on the template and on every
broken workbook of test_bad_input."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from test_bad_input import CASES, Case, put_error, sheet_xml

from perseat_addin.cells import ExcelError
from perseat_addin.errors import WorkbookError
from perseat_addin.excel.template import template_sheets, write_workbook
from perseat_addin.tables import ColumnRows
from perseat_addin.workbook import reader
from perseat_addin.workbook.load import read_table
from perseat_addin.workbook.reader import WorkbookFile
from perseat_addin.workbook.schema import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "workbook_template.xlsm"
CELL_BY_CELL = 10**9


BLOCK_MIN, BLOCK_BYTES, BLOCK_SHARED_RATIO = reader.BLOCK_MIN, reader.BLOCK_BYTES, reader.BLOCK_SHARED_RATIO


def outcome(path: Path, columnar_rows: int, monkeypatch: pytest.MonkeyPatch, ahead: bool = False,
            blocks: int | None = None) -> dict[str, Any]:
    """Every schema table of ``path`` as read (rows, errors, where) and converted (frame, problems); with
    ``ahead`` the large tables are read on another thread while the workbook opens (as the commands do); with
    ``blocks`` every sheet is read in blocks of about that many bytes of its XML."""
    monkeypatch.setattr(reader, "COLUMNAR_ROWS", columnar_rows)
    monkeypatch.setattr(reader, "BLOCK_MIN", BLOCK_MIN if blocks is None else 0)
    monkeypatch.setattr(reader, "BLOCK_BYTES", BLOCK_BYTES if blocks is None else blocks)
    monkeypatch.setattr(reader, "BLOCK_SHARED_RATIO", BLOCK_SHARED_RATIO if blocks is None else 0)
    try:
        wb = WorkbookFile(path, list(SCHEMA) if ahead else ())
    except WorkbookError as exc:
        return {"refused": str(exc)}
    out: dict[str, Any] = {}
    for name in SCHEMA:
        try:
            raw = wb.table(name)
            table, problems = read_table(wb, name)
        except WorkbookError as exc:
            out[name] = ("refused", str(exc))
            continue
        seen = None if raw is None else (raw.sheet, raw.headers, [list(r) for r in raw.rows], raw.errors,
                                         raw.first_row, raw.first_col, raw.is_table, type(raw.rows).__name__)
        out[name] = (seen, None if table is None else table.frame, problems)
    return out


def assert_same(cells: dict[str, Any], columns: dict[str, Any]) -> None:
    assert cells.keys() == columns.keys()
    for name, a in cells.items():
        b = columns[name]
        if name == "refused" or a[0] == "refused":
            assert a == b, name
            continue
        (raw_a, frame_a, problems_a), (raw_b, frame_b, problems_b) = a, b
        if raw_a is None:
            assert raw_b is None, name
        else:
            assert raw_a[:-1] == raw_b[:-1], name
        assert problems_a == problems_b, name
        assert (frame_a is None) == (frame_b is None), name
        if frame_a is not None:
            pd.testing.assert_frame_equal(frame_a, frame_b, obj=name)


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    cells = outcome(path, CELL_BY_CELL, monkeypatch)
    columns = outcome(path, 0, monkeypatch)
    assert_same(cells, columns)
    assert_same(cells, outcome(path, 0, monkeypatch, ahead=True))
    assert_same(cells, outcome(path, 0, monkeypatch, blocks=700))
    return columns


class BlockSpy:
    """Counts the tables read in blocks and the blocks read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.tables: list[str] = []
        self.blocks = 0
        in_blocks, open_blocks = WorkbookFile._in_blocks, WorkbookFile._open_blocks

        def tables(wb: WorkbookFile, info: Any) -> Any:
            batch = in_blocks(wb, info)
            if batch is not None:
                self.tables.append(info.name)
            return batch

        def blocks(wb: WorkbookFile, part: str, heading: int) -> Any:
            for got in open_blocks(wb, part, heading):
                self.blocks += got is not None
                yield got

        monkeypatch.setattr(WorkbookFile, "_in_blocks", tables)
        monkeypatch.setattr(WorkbookFile, "_open_blocks", blocks)


def test_template_reads_the_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    got = both_ways(TEMPLATE, monkeypatch)
    assert got["Roster"][0][-1] == ColumnRows.__name__  # the columnar way was taken
    assert got["Settings"][0][-1] == "list"  # Settings mixes text, numbers and dates: read cell by cell


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_broken_workbooks_read_the_same_both_ways(c: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both_ways(c.make(tmp_path), monkeypatch)


def roster_book(tmp_path: Path, rows: list[tuple[Any, ...]]) -> Path:
    sheets = template_sheets()
    roster = next(s for s in sheets if s.name == "Roster")
    roster.rows = rows
    path = tmp_path / "book.xlsm"
    write_workbook(path, sheets)
    return path


def user(i: int, **cells: Any) -> tuple[Any, ...]:
    row = {"Client": "Acme Dental Group", "UserID": f"u{i}@acme.example", "Name": f"User {i}", "Email": "",
           "Type": "Employee", "Plan": "", "Start": dt.date(2025, 1, 1), "End": None, "Status": "Active",
           "Source": "", "Notes": "", **cells}
    return tuple(row.values())


def test_error_cells_and_blanks_keep_their_rows_and_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [user(i) for i in range(40)]
    rows[3] = user(3, UserID="   ")  # Excel row 5: blank required cell
    rows[10] = user(10, Status="Sleeping")  # Excel row 12: not a status
    rows[20] = (None,) * 11  # a blank row in the middle is dropped, the rows after it keep their numbers
    path = roster_book(tmp_path, rows)
    put_error(path, "Roster", 9, "Type", "#N/A")
    put_error(path, "Roster", 30, "Client", "#REF!")
    got = both_ways(path, monkeypatch)
    raw, frame, problems = got["Roster"]
    assert raw[-1] == ColumnRows.__name__
    assert raw[3] == {(7, 4): ExcelError("#N/A"), (28, 0): ExcelError("#REF!")}
    where = {(p.sheet, p.row, p.column): p.message for p in problems}
    assert where[("Roster", 5, "UserID (B)")] == "UserID is blank"
    assert "'Sleeping' is not one of active, disabled" in where[("Roster", 12, "Status (I)")]
    assert where[("Roster", 9, "Type (E)")] == "cell holds the Excel error #N/A"
    assert where[("Roster", 30, "Client (A)")] == "cell holds the Excel error #REF!"
    assert 22 not in set(frame["_row"]) and 23 in set(frame["_row"])


def test_a_column_mixing_numbers_and_text_is_read_cell_by_cell(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [user(i) for i in range(30)]
    rows[7] = user(7, UserID=1234.0, Notes=5.0)  # an employee number where the others are addresses
    rows[9] = user(9, Start="2026-13-45")  # text in a date column
    got = both_ways(roster_book(tmp_path, rows), monkeypatch)
    raw, frame, problems = got["Roster"]
    assert raw[-1] == "list"
    assert frame.loc[frame["_row"] == 9, "UserID"].item() == "1234"
    assert [p.column for p in problems if p.row == 11] == ["Start (G)"]


def test_a_time_of_day_or_date_time_is_read_cell_by_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [user(i) for i in range(30)]
    rows[4] = user(4, Start=dt.datetime(2026, 11, 3, 9, 30))
    path = roster_book(tmp_path, rows)
    wb = load_workbook(path, keep_vba=True)
    wb["Roster"]["H10"].value = dt.time(17, 0)  # End: a time of day, which is no date
    wb.save(path)
    got = both_ways(path, monkeypatch)
    raw, _, problems = got["Roster"]
    assert raw[-1] == "list"
    assert raw[2][4][6] == dt.datetime(2026, 11, 3, 9, 30)
    assert any(p.row == 10 and p.column == "End (H)" for p in problems)


def test_usage_quantities_and_yes_no_convert_whole_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sheets = template_sheets()
    usage = next(s for s in sheets if s.name == "Usage")
    width = len(usage.headers)
    base = [("Acme Dental Group", "", dt.date(2026, 11, 1 + i % 28), 1, 0.25 * i, "Yes" if i % 2 else "No")
            for i in range(50)]
    base[6] = ("Acme Dental Group", "", dt.date(2026, 11, 2), 1, -2.0, "Yes")  # Excel row 8: negative hours
    base[9] = ("Acme Dental Group", "", dt.date(2026, 11, 2), 1, 1.0, "Maybe")  # Excel row 11: not Yes/No
    usage.rows = [(*r, *[None] * (width - len(r))) for r in base]
    path = tmp_path / "usage.xlsm"
    write_workbook(path, sheets)
    got = both_ways(path, monkeypatch)
    raw, frame, problems = got["Usage"]
    assert raw[-1] == ColumnRows.__name__
    where = {(p.row, p.column): p.message for p in problems}
    assert where[(8, "Hours (E)")] == "-2 is negative"
    assert "'maybe' is not Yes or No" in where[(11, "Billable (F)")]
    assert frame["Hours"].isna().sum() == 1 and frame["Billable"].sum() == 25


def test_the_white_space_list_is_pythons() -> None:
    """The blanks the whole-column conversion strips are exactly those ``str.strip`` strips."""
    from perseat_addin.workbook import schema
    assert "".join(chr(i) for i in range(0x110000) if chr(i).isspace()) == schema._SPACE


def test_large_tables_read_ahead_are_the_tables_read_in_turn(tmp_path: Path) -> None:
    """A table read ahead (on another thread, while calamine opens the workbook) is the one read in turn,
    error cells and row numbers included; ``release`` forgets both."""
    rows = [user(i) for i in range(reader.COLUMNAR_ROWS + 5)]
    path = roster_book(tmp_path, rows)
    put_error(path, "Roster", 40, "Plan", "#DIV/0!")
    ahead = WorkbookFile(path, ["Settings", "Roster"])
    assert ahead.is_large("Roster") and not ahead.is_large("Settings")
    plain = WorkbookFile(path)
    a, b = ahead.table("Roster"), plain.table("Roster")
    assert a is not None and b is not None and isinstance(a.rows, ColumnRows)
    assert [list(r) for r in a.rows] == [list(r) for r in b.rows]
    assert a.errors == b.errors == {(38, 5): ExcelError("#DIV/0!")}
    assert (a.first_row, a.first_col) == (b.first_row, b.first_col)
    ahead.release()
    again = ahead.table("Roster")
    assert again is not None and [list(r) for r in again.rows] == [list(r) for r in b.rows]


def test_a_large_sheet_read_in_blocks_keeps_rows_errors_and_blanks(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows give the very rows, Excel errors, problems and row numbers of the cell reader:
    blank rows inside a block, at a block's end and at the table's end included."""
    rows = [user(i, Notes=f"note {i % 3}" if i % 4 else "") for i in range(80)]
    rows[3] = user(3, UserID="   ")  # Excel row 5: blank required cell
    rows[20] = rows[21] = rows[22] = (None,) * 11  # blank rows the sheet does not write
    rows[50] = user(50, Status="Sleeping")
    rows[77] = rows[78] = rows[79] = (None,) * 11  # blank rows at the table's end
    path = roster_book(tmp_path, rows)
    put_error(path, "Roster", 9, "Type", "#N/A")
    put_error(path, "Roster", 61, "Client", "#REF!")
    spy = BlockSpy(monkeypatch)
    got = both_ways(path, monkeypatch)
    assert "Roster" in spy.tables and spy.blocks > 5
    raw, frame, problems = got["Roster"]
    assert raw[3] == {(7, 4): ExcelError("#N/A"), (59, 0): ExcelError("#REF!")}
    where = {(p.sheet, p.row, p.column): p.message for p in problems}
    assert where[("Roster", 5, "UserID (B)")] == "UserID is blank"
    assert where[("Roster", 61, "Client (A)")] == "cell holds the Excel error #REF!"
    assert "'Sleeping' is not one of active, disabled" in where[("Roster", 52, "Status (I)")]
    assert 23 not in set(frame["_row"]) and 25 in set(frame["_row"]) and len(frame) == 74


def test_blocks_give_the_whole_reads_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow columns read in blocks are those fastexcel reads from the whole sheet, text (shared strings)
    dates and blanks alike."""
    import fastexcel

    rows = [user(i, Start=dt.date(2025, 1, 1 + i % 28), Notes="" if i % 5 else f"n{i}") for i in range(60)]
    path = roster_book(tmp_path, rows)
    monkeypatch.setattr(reader, "BLOCK_MIN", 0)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 500)
    monkeypatch.setattr(reader, "BLOCK_SHARED_RATIO", 0)
    wb = WorkbookFile(path)
    info = wb._pkg.tables["roster"]
    blocks = wb._in_blocks(info)
    whole = WorkbookFile._as_sheet(fastexcel.read_excel(path.read_bytes()), info)
    assert blocks is not None and whole is not None
    assert blocks.num_rows == whole.num_rows == 60
    for a, b in zip(blocks.columns, whole.columns, strict=True):
        assert a.to_pylist() == b.to_pylist()


def test_blocks_read_at_once_stop_at_a_late_mixed_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are parsed two at a time: a column that changes kind in a late block still sends the table to
    a whole read, after blocks beyond it were started, and no block's thread is left behind."""
    import threading

    rows = [user(i) for i in range(120)]
    rows[101] = user(101, UserID=4321.0)  # a number where every block before held addresses
    path = roster_book(tmp_path, rows)
    monkeypatch.setattr(reader, "BLOCK_MIN", 0)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 400)
    monkeypatch.setattr(reader, "BLOCK_SHARED_RATIO", 0)
    spy = BlockSpy(monkeypatch)
    wb = WorkbookFile(path)
    assert wb._in_blocks(wb._pkg.tables["roster"]) is None
    assert spy.blocks > 20
    assert not [t for t in threading.enumerate() if t.name.startswith("perseat-block")]
    got = both_ways(path, monkeypatch)
    assert got["Roster"][1].loc[lambda f: f["_row"] == 103, "UserID"].item() == "4321"


def inline_text(path: Path, sheet: str, ref: str, text: str) -> None:
    """Write ``text`` into cell ``ref`` as an inline string (``t="inlineStr"``, as some exporters write text)."""
    part = f"xl/worksheets/sheet{[s.name for s in template_sheets()].index(sheet) + 1}.xml"
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename == part:
                cell = f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()
                data, n = re.subn(rb'<c r="%s"[^>]*?(?:/>|>.*?</c>)' % ref.encode(), cell, data, count=1)
                assert n == 1
            z.writestr(info, data)


@pytest.mark.parametrize("written", ["\ue0007", "&#xE000;7", "&#57344;7"])
def test_a_cell_holding_the_block_mark_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     written: str) -> None:
    """Text written in the sheet holding the private-use character that marks shared strings in a block is
    never taken for one: the sheet is read whole. A shared string holding it is read in blocks as it is."""
    rows = [user(i, Notes="x") for i in range(40)]
    rows[12] = user(12, Notes="\ue000 3")  # a shared string
    path = roster_book(tmp_path, rows)
    spy = BlockSpy(monkeypatch)
    got = both_ways(path, monkeypatch)
    assert "Roster" in spy.tables
    assert got["Roster"][1].loc[lambda f: f["_row"] == 14, "Notes"].item() == "\ue000 3"
    inline_text(path, "Roster", "K32", written)
    spy.tables.clear()
    got = both_ways(path, monkeypatch)
    assert "Roster" not in spy.tables
    frame = got["Roster"][1]
    assert frame.loc[frame["_row"] == 32, "Notes"].item() == "\ue0007"  # not shared string 7
    assert frame.loc[frame["_row"] == 14, "Notes"].item() == "\ue000 3"


def prefix_sheet(path: Path, sheet: str) -> None:
    """Write ``sheet``'s XML with a namespace prefix on every element (``<x:row>``), as some exporters do."""
    part = f"xl/worksheets/sheet{[s.name for s in template_sheets()].index(sheet) + 1}.xml"
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename == part:
                data = re.sub(rb"<(/?)([A-Za-z]\w*)([\s/>])", rb"<\1x:\2\3", data)
                data = data.replace(b'xmlns="', b'xmlns:x="', 1)
            z.writestr(info, data)


def test_a_sheet_written_with_prefixes_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet whose rows are <x:row> has no <row> to cut at: it is read whole, never as blank rows."""
    path = roster_book(tmp_path, [user(i) for i in range(40)])
    prefix_sheet(path, "Roster")
    assert "<x:row " in sheet_xml(path, "Roster")
    spy = BlockSpy(monkeypatch)
    got = both_ways(path, monkeypatch)
    assert "Roster" not in spy.tables
    assert len(got["Roster"][1]) == 40 and got["Roster"][1]["UserID"].iloc[39] == "u39@acme.example"


def test_pandas_strips_the_white_space_python_strips() -> None:
    """Text read column by column is stripped by pandas only when a cell starts or ends with one of
    ``_SPACE``: that is right only if pandas strips exactly those characters."""
    from perseat_addin.workbook import schema
    chars = [chr(i) for i in range(0x110000) if not 0xD800 <= i <= 0xDFFF]
    stripped = pd.Series([f"a{c}" for c in chars], dtype="str").str.strip()
    assert "".join(c for c, s in zip(chars, stripped, strict=True) if s == "a") == schema._SPACE


def test_text_read_column_by_column_is_stripped_as_cell_by_cell(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [user(i) for i in range(30)]
    rows[4] = user(4, Name="\u3000Ann\t", Notes=" x ")
    rows[5] = user(5, Name="\xa0Bob")
    got = both_ways(roster_book(tmp_path, rows), monkeypatch)
    frame = got["Roster"][1]
    assert frame.loc[frame["_row"] == 6, "Name"].item() == "Ann"
    assert frame.loc[frame["_row"] == 6, "Notes"].item() == "x"
    assert frame.loc[frame["_row"] == 7, "Name"].item() == "Bob"
    assert frame.loc[frame["_row"] == 8, "Name"].item() == "User 6"


def test_a_sheet_with_many_shared_strings_of_its_own_is_read_whole(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks read every shared string once: a sheet whose XML is not many times the shared strings' is
    read whole (a Roster at the row limit holds a million names of its own)."""
    path = roster_book(tmp_path, [user(i) for i in range(60)])
    monkeypatch.setattr(reader, "COLUMNAR_ROWS", 0)
    monkeypatch.setattr(reader, "BLOCK_MIN", 0)
    spy = BlockSpy(monkeypatch)
    WorkbookFile(path).table("Roster")
    assert spy.tables == []
    monkeypatch.setattr(reader, "BLOCK_SHARED_RATIO", 0)
    WorkbookFile(path).table("Roster")
    assert spy.tables == ["Roster"]
