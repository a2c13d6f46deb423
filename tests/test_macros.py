"""The ribbon macros (SPEC §6) end to end on the template, through a faithful stand-in for Excel.

``perseat_addin.macros.generate_invoices`` & co. run exactly as RunPython runs
them, except that ``book=`` is :class:`ExcelStandIn` instead of
``XlwingsBook(xw.Book.caller())``. Results are compared with the CLI on the same
workbook (``perseat invoice --json``, its CSV files) and with
``invoice_run(load(path))``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import perseat_addin.macros as m
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.table import Table, TableColumn
from openpyxl_book import open_workbook, save_workbook, set_settings

from perseat_addin.cells import EXCEL_ERRORS
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.errors import InputProblems, Problem
from perseat_addin.excel.template import SheetSpec, template_sheets, write_workbook
from perseat_addin.model import Period
from perseat_addin.outputs.layout import Chart
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.tasks.livebook import LiveBook, Outcome, SheetLayout, TableRef, problems_text
from perseat_addin.workbook.load import load
from perseat_addin.workbook.package import MACRO_MAIN

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not on PATH: the stand-in "
                                                           "cannot export real PDFs here")
CENT = Decimal("0.01")
LOGO = Path(__file__).resolve().parent / "fixtures" / "logo.png"
STUB_PDF = b"%PDF-1.4\n% ExcelStandIn: PDF export recorded, not rendered\n"


# --------------------------------------------------------------------------
# The stand-in


class ExcelStandIn:
    """A faithful stand-in for the workbook Excel has open, implementing ``LiveBook`` over openpyxl.

    It is ``macros.adapter.XlwingsBook``'s twin: the macros make the same protocol
    calls, and each call does here what Excel does there.

    Stands in for:

    - **the open workbook**: a copy of the file loaded with openpyxl (VBA project
      and ribbon kept); ``save()`` writes it back atomically like Excel's Save.
    - **ListObjects** (``sheet.tables``): located by name in any case, with their
      sheet, header row, first column, width, data rows and Total Row flag.
    - **Range.Value reads** as xlwings hands them over (``ndim=2, err_to_str``):
      numbers as float, dates as datetime, blanks as None, errors as '#N/A' text,
      a formula as the value last calculated (cached in the file).
    - **Range.Value writes as typed input**: text that looks like a number, an
      ISO or US date, TRUE/FALSE, an error or a formula becomes one, unless it
      starts with an apostrophe (then it is text and the apostrophe is dropped);
      a datetime in a General cell gets a date format; Decimals are refused.
    - **ListObject.Resize** (same header row and columns; may not overlap another
      table) and **Range.Delete(Shift:=xlUp)** on whole table rows (a partial
      table row raises like Excel; cells below shift up; a table keeps one row).
    - **Sheets.Add(After:=last) / Sheet.Delete**, with Excel's sheet-name rules.
    - **ExportAsFixedFormat** (``sheet.to_pdf``): the sheet, as it is in the
      workbook, printed to PDF by LibreOffice headless (``pdf="libreoffice"``),
      or a recorded stub file (``pdf="stub"``) to keep the suite fast.
    - **Application.StatusBar, MsgBox (app.alert), ScreenUpdating/Calculation**:
      recorded in :attr:`statuses`, :attr:`alerts`, :attr:`updating`.

    Only Excel can exercise: the COM/AppleScript calls themselves and their
    speed; recalculation (formula columns calling the Excel functions keep their
    cached values here); Excel's locale-dependent parsing of typed input beyond
    the cases above; ListObject auto-fill of calculated columns and table styles
    on new rows; Excel's own PDF rendering, printer-driver page setup and fonts;
    the modal message box; ``xw.Book.caller()`` and RunPython's Python process;
    workbooks opened from OneDrive/SharePoint URLs, protected sheets or
    workbooks, and the macOS sandbox.
    """

    def __init__(self, path: Path, pdf: str = "stub"):
        self.path = Path(path)
        self._bytes = self.path.read_bytes()
        self.wb = open_workbook(self._bytes, self.path)
        self._cached = load_workbook(io.BytesIO(self._bytes), data_only=True)
        self._moved: set[str] = set()  # sheets whose cells moved: cached formula values no longer line up
        self.pdf = pdf
        self.statuses: list[str | None] = []
        self.alerts: list[tuple[str, str, bool]] = []
        self.updating: list[bool] = []
        self.exports: list[tuple[str, Path]] = []
        self.pictures: list[tuple[str, str, int, int, float, float]] = []  # sheet, file, row, col, width, height
        self.saves = 0
        self.questions: list[tuple[str, str]] = []
        self.answer = True  # what the user clicks in a Yes/No box
        self.selection: tuple[str, int] | None = None  # the active cell's sheet and row
        self.typed: list[str | None] = []  # what the user types into each InputBox, in order (None: Cancel)

    # -- the protocol ---------------------------------------------------------
    @property
    def fullname(self) -> str:
        return str(self.path)

    def _tables(self) -> list[tuple[Any, Any]]:
        return [(ws, t) for ws in self.wb.worksheets for t in ws.tables.values()]

    def _find(self, name: str) -> tuple[Any, Any] | None:
        return next(((ws, t) for ws, t in self._tables() if t.name.lower() == name.lower()), None)

    def table(self, name: str) -> TableRef | None:
        found = self._find(name)
        if found is None:
            return None
        ws, t = found
        c0, r0, c1, r1 = range_boundaries(t.ref)
        totals = bool(t.totalsRowCount)
        return TableRef(t.name, ws.title, r0, c0, c1 - c0 + 1, r1 - r0 - int(totals), totals)

    def used_range(self, sheet: str) -> tuple[str, int, int, list[list[Any]]] | None:
        ws = self._sheet(sheet, missing_ok=True)
        if ws is None:
            return None
        return (ws.title, ws.min_row, ws.min_column,
                self.read(ws.title, ws.min_row, ws.min_column, ws.max_row - ws.min_row + 1,
                          ws.max_column - ws.min_column + 1))

    def read(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> list[list[Any]]:
        ws = self._sheet(sheet)
        return [[self._value(ws, r, c) for c in range(col, col + n_cols)] for r in range(row, row + n_rows)]

    def write(self, sheet: str, row: int, col: int, values: Sequence[Sequence[Any]],
              number_formats: Sequence[str | None] | None = None) -> None:
        ws = self._sheet(sheet)
        for i, r in enumerate(values):
            for j, v in enumerate(r):
                cell = ws.cell(row + i, col + j)
                fmt = number_formats[j] if number_formats and j < len(number_formats) else None
                if fmt:
                    cell.number_format = fmt
                _enter(cell, v)

    def resize_table(self, name: str, n_rows: int) -> None:
        found = self._find(name)
        assert found is not None, name
        ws, t = found
        c0, r0, c1, _ = range_boundaries(t.ref)
        ref = f"{get_column_letter(c0)}{r0}:{get_column_letter(c1)}{r0 + max(n_rows, 1)}"
        for other_ws, other in self._tables():
            if other is not t and other_ws is ws and _overlap(ref, other.ref):
                raise RuntimeError(f"Excel: a table cannot overlap another table ({other.name})")
        t.ref = ref
        if t.autoFilter is not None:
            t.autoFilter.ref = ref

    def add_table(self, name: str, headers: Sequence[str]) -> None:
        ws = self.wb.create_sheet(name)
        for j, h in enumerate(headers, start=1):
            ws.cell(1, j).value = h
        ids = [t.id for _, t in self._tables()]
        ws.add_table(Table(id=max(ids, default=0) + 1, displayName=name, name=name,
                           ref=f"A1:{get_column_letter(len(headers))}2"))

    def add_columns(self, name: str, headers: Sequence[str]) -> None:
        found = self._find(name)
        assert found is not None, name
        ws, t = found
        c0, r0, c1, r1 = range_boundaries(t.ref)
        for k, h in enumerate(headers, start=1):
            ws.cell(r0, c1 + k).value = h
            t.tableColumns.append(TableColumn(id=max(c.id for c in t.tableColumns) + 1, name=h))
        ref = f"{get_column_letter(c0)}{r0}:{get_column_letter(c1 + len(headers))}{r1}"
        t.ref = ref
        if t.autoFilter is not None:
            t.autoFilter.ref = ref

    def delete_rows(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> None:
        ws = self._sheet(sheet)
        hit = [t for t in ws.tables.values()
               if _overlap(f"{get_column_letter(col)}{row}:{get_column_letter(col + n_cols - 1)}{row + n_rows - 1}",
                           t.ref)]
        for t in hit:
            c0, r0, c1, r1 = range_boundaries(t.ref)
            if (c0, c1) != (col, col + n_cols - 1) or row <= r0 or row + n_rows - 1 > r1:
                raise RuntimeError("Excel: This operation is not allowed. The operation is attempting to shift "
                                   "cells in a table on your worksheet.")
        for r in range(row, row + n_rows):  # the deleted cells go; the cells below move up into their place
            for c in range(col, col + n_cols):
                ws._cells.pop((r, c), None)
        last = max(ws.max_row, row + n_rows)
        if last >= row + n_rows:
            ws.move_range(f"{get_column_letter(col)}{row + n_rows}:{get_column_letter(col + n_cols - 1)}{last}",
                          rows=-n_rows)
        for t in hit:
            c0, r0, c1, r1 = range_boundaries(t.ref)
            t.ref = f"{get_column_letter(c0)}{r0}:{get_column_letter(c1)}{max(r1 - n_rows, r0 + 1)}"
            if t.autoFilter is not None:
                t.autoFilter.ref = t.ref
        self._moved.add(ws.title)

    def sheet_names(self) -> list[str]:
        return list(self.wb.sheetnames)

    def put_sheet(self, layout: SheetLayout) -> None:
        name = layout.name
        if len(name) > 31 or re.search(r"[\[\]:*?/\\]", name) or not name.strip("'"):
            raise RuntimeError(f"Excel: {name!r} is not a valid sheet name")
        old = self._sheet(name, missing_ok=True)
        if old is not None:
            self.delete_sheet(old.title)
        _render(self.wb.create_sheet(name), layout)
        for pic in layout.pictures:  # Pictures.Add: recorded (openpyxl draws images only through Pillow)
            assert Path(pic.path).is_file(), f"Excel: cannot insert the picture {pic.path}"
            self.pictures.append((name, pic.path, pic.row, pic.col, pic.width, pic.height))

    def delete_sheet(self, name: str) -> None:
        ws = self._sheet(name)
        if len(self.wb.sheetnames) == 1:
            raise RuntimeError("Excel: a workbook must contain at least one visible worksheet")
        self.wb.remove(ws)

    def export_pdf(self, sheets: list[str], path: Path) -> None:
        titles = [self._sheet(sheet).title for sheet in sheets]
        self.exports.extend((title, Path(path)) for title in titles)
        if self.pdf != "libreoffice":
            Path(path).write_bytes(STUB_PDF)
            return
        assert SOFFICE is not None
        buf = io.BytesIO()
        self.wb.save(buf)
        copy = load_workbook(buf)
        for other in list(copy.sheetnames):
            if other not in titles:
                del copy[other]
        with tempfile.TemporaryDirectory(prefix="standin-pdf-") as tmp:
            src = Path(tmp) / "sheet.xlsx"
            copy.save(src)
            subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--norestore",
                            "--convert-to", "pdf", "--outdir", tmp, str(src)],
                           capture_output=True, timeout=180, check=True)
            shutil.move(Path(tmp) / "sheet.pdf", path)

    def status(self, text: str | None) -> None:
        self.statuses.append(text)

    def alert(self, message: str, title: str, error: bool = False) -> None:
        self.alerts.append((title, message, error))

    def confirm(self, message: str, title: str) -> bool:
        self.questions.append((title, message))
        return self.answer

    def selected_row(self) -> tuple[str, int] | None:
        return self.selection

    def ask(self, message: str, title: str, default: str = "") -> str | None:
        self.questions.append((title, message))
        return self.typed.pop(0) if self.typed else None

    def set_updating(self, on: bool) -> None:
        self.updating.append(on)

    def save(self) -> None:
        save_workbook(self.wb, self.path, self._bytes)
        self._bytes = self.path.read_bytes()
        self.saves += 1

    # -- helpers for tests ----------------------------------------------------
    def _sheet(self, name: str, missing_ok: bool = False) -> Any:
        for ws in self.wb.worksheets:
            if ws.title.lower() == name.lower():
                return ws
        if missing_ok:
            return None
        raise KeyError(f"Excel: no sheet {name!r}")

    def _value(self, ws: Any, r: int, c: int) -> Any:
        v = ws.cell(r, c).value
        if (isinstance(v, str) and v.startswith("=")) or not isinstance(v, (str, int, float, dt.date, type(None))):
            known = ws.title in self._cached.sheetnames and ws.title not in self._moved
            v = self._cached[ws.title].cell(r, c).value if known else None
        if isinstance(v, bool) or v is None or isinstance(v, dt.datetime):
            return v
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, dt.date):
            return dt.datetime(v.year, v.month, v.day)
        return None if v == "" else v

    def rows(self, table: str) -> list[dict[str, Any]]:
        """A table's non-blank data rows as dicts (what a user sees)."""
        ref = self.table(table)
        assert ref is not None, table
        values = self.read(ref.sheet, ref.header_row, ref.first_col, ref.n_rows + 1, ref.n_cols)
        heads = values[0]
        return [dict(zip(heads, r, strict=True)) for r in values[1:] if any(v is not None for v in r)]

    def setting(self, name: str) -> Any:
        return next(r["Value"] for r in self.rows("Settings") if r["Setting"] == name)

    def type_into(self, table: str, key: tuple[str, Any], column: str, value: Any) -> None:
        """A user editing one cell of a table row, found by a key column's value."""
        ref = self.table(table)
        assert ref is not None
        values = self.read(ref.sheet, ref.header_row, ref.first_col, ref.n_rows + 1, ref.n_cols)
        heads = values[0]
        i = next(i for i, r in enumerate(values[1:]) if r[heads.index(key[0])] == key[1])
        self.write(ref.sheet, ref.header_row + 1 + i, ref.first_col + heads.index(column), [[value]])

    def messages(self) -> list[str]:
        return [msg for _, msg, _ in self.alerts]


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _enter(cell: Any, v: Any) -> None:
    """Excel's typed input (en-US), for the cases the macros can produce."""
    if isinstance(v, Decimal) or not isinstance(v, (str, int, float, bool, dt.date, type(None))):
        raise TypeError(f"xlwings cannot write {type(v).__name__} values: {v!r}")
    if isinstance(v, str):
        s = v.strip()
        if v.startswith("'"):
            cell.value = v[1:]
            cell.quotePrefix = True
            return
        cell.quotePrefix = False
        if v.startswith("="):
            cell.value = v  # a formula
        elif s.upper() in ("TRUE", "FALSE"):
            cell.value = s.upper() == "TRUE"
        elif _NUMBER.fullmatch(s.replace(",", "")):
            cell.value = float(s.replace(",", ""))
        elif m_ := re.fullmatch(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?", s):
            cell.value = dt.datetime(int(m_[1]), int(m_[2]), int(m_[3] or 1))
            cell.number_format = "yyyy-mm-dd" if m_[3] else "mmm-yy"
        elif m_ := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", s):
            cell.value = dt.datetime(int(m_[3]), int(m_[1]), int(m_[2]))
            cell.number_format = "m/d/yyyy"
        elif s.upper() in EXCEL_ERRORS:
            cell.value = s.upper()
            cell.data_type = "e"
        else:
            cell.value = v
        return
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day)
    cell.value = v
    if isinstance(v, dt.datetime) and cell.number_format == "General":
        cell.number_format = "m/d/yyyy"


def _overlap(a: str, b: str) -> bool:
    a0, a1, a2, a3 = range_boundaries(a)
    b0, b1, b2, b3 = range_boundaries(b)
    return not (a2 < b0 or b2 < a0 or a3 < b1 or b3 < a1)


def _render(ws: Any, layout: SheetLayout) -> None:
    """A SheetLayout laid out with openpyxl (what XlwingsBook._render does through COM)."""
    for c in layout.cells:
        _enter(ws.cell(c.row, c.col), c.value)
        r1, c1 = c.to or (c.row, c.col)
        s = c.style
        side = {k: Side(style=w, color=(s.border_color or "#000000").lstrip("#")) for k, w in
                (("top", s.top), ("bottom", s.bottom)) if w}
        for r in range(c.row, r1 + 1):
            for col in range(c.col, c1 + 1):
                cell = ws.cell(r, col)
                cell.font = Font(bold=s.bold, size=s.size, color=s.color.lstrip("#") if s.color else None)
                if s.fill:
                    cell.fill = PatternFill("solid", fgColor=s.fill.lstrip("#"))
                if s.number_format:
                    cell.number_format = s.number_format
                cell.alignment = Alignment(horizontal=s.align, vertical=s.valign, wrap_text=s.wrap or None)
                if side:
                    cell.border = Border(**side)
        if c.to:
            ws.merge_cells(start_row=c.row, start_column=c.col, end_row=r1, end_column=c1)
    for col, width in layout.widths:
        ws.column_dimensions[get_column_letter(col)].width = width
    for row, height in layout.heights:
        ws.row_dimensions[row].height = height
    r0, c0, r1, c1 = layout.print_area
    ws.print_area = f"{get_column_letter(c0)}{r0}:{get_column_letter(c1)}{r1}"
    if layout.repeat_rows:
        ws.print_title_rows = f"{layout.repeat_rows[0]}:{layout.repeat_rows[1]}"
    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_LETTER if layout.paper == "letter" else ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = layout.fit_width, 0
    left, right, top, bottom = layout.margins
    ws.page_margins = PageMargins(left=left, right=right, top=top, bottom=bottom)
    for part, text in ((ws.oddFooter.left, layout.footer_left), (ws.oddFooter.right, layout.footer_right)):
        part.text, part.size = text, layout.footer_size
    ws.sheet_view.showGridLines = layout.gridlines
    if layout.landscape:
        ws.page_setup.orientation = "landscape"
    for spec in layout.charts:
        _chart(ws, spec)


def _chart(ws: Any, spec: Chart) -> None:
    """A native chart with openpyxl (what XlwingsBook draws through Excel's object model)."""
    from openpyxl.chart import BarChart, LineChart, Reference, ScatterChart
    from openpyxl.chart import Series as XlSeries
    from openpyxl.chart.series import SeriesLabel

    def ref(block: tuple[int, int, int, int]) -> Reference:
        r0, c0, r1, c1 = block
        return Reference(ws, min_col=c0, min_row=r0, max_col=c1, max_row=r1)

    make = {"column": BarChart, "line": LineChart, "scatter": ScatterChart}
    main = make[spec.kind]()
    extra: dict[str, Any] = {}
    for s in spec.series:
        kind = s.kind or spec.kind
        if kind == spec.kind and not s.secondary:
            chart = main
        else:
            chart = extra.setdefault(f"{kind}{s.secondary}", make[kind]())
            if s.secondary:
                chart.y_axis.axId = 200
                chart.y_axis.crosses = "max"
        if spec.kind == "scatter":
            chart.series.append(XlSeries(ref(s.values), ref(s.categories), title=s.name))
        else:
            chart.add_data(ref(s.values), titles_from_data=False)
            chart.set_categories(ref(s.categories))
            chart.series[-1].tx = SeriesLabel(v=s.name)
    for other in extra.values():
        main += other
    main.title = spec.title
    main.x_axis.title = spec.x_title or None
    main.y_axis.title = spec.y_title or None
    main.width, main.height = spec.size[0] / 37.8, spec.size[1] / 37.8  # cm
    ws.add_chart(main, f"{get_column_letter(spec.anchor[1])}{spec.anchor[0]}")


# --------------------------------------------------------------------------
# helpers


def perseat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def money(v: Any) -> Decimal:
    return Decimal(str(v)).quantize(CENT, ROUND_HALF_UP)


def copy_of(src: Path, folder: Path, name: str = "billing.xlsm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, folder / name))


def spec(sheets: list[SheetSpec], name: str) -> SheetSpec:
    return next(s for s in sheets if s.name == name)


def as_json_invoices(book: ExcelStandIn) -> list[dict[str, Any]]:
    """The Invoices/InvoiceLines tables in the shape of ``perseat invoice --json``."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for r in book.rows("InvoiceLines"):
        lines.setdefault(r["InvoiceNo"], []).append(r)
    return [{"number": r["InvoiceNo"], "client": r["Client"], "total": money(r["Total"]),
             "subtotal": money(r["Subtotal"]), "discount": money(r["Discount"]), "tax": money(r["Tax"]),
             "lines": [(ln["Kind"], ln["Description"], money(ln["Amount"])) for ln in lines[r["InvoiceNo"]]]}
            for r in book.rows("Invoices") if r["Status"] == "Draft"]


def cli_invoices(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"number": i["number"], "client": i["client"], "total": money(i["total"]),
             "subtotal": money(i["subtotal"]), "discount": money(i["discount"]), "tax": money(i["tax"]),
             "lines": [(ln["kind"], ln["description"], money(ln["amount"])) for ln in i["lines"]]}
            for i in doc["invoices"]]


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with an empty ledger (its sample October invoice and credit note taken out), so the
    ribbon's rows can be read from the top."""
    path = tmp_path_factory.mktemp("tpl") / "template.xlsm"
    proc = perseat("template", "--out", path)
    assert proc.returncode == 0, proc.stderr
    fb = FileBook(path)
    edits = []
    for name in ("Invoices", "InvoiceLines"):
        t = fb.rows(name)
        assert t is not None
        edits.append(TableEdit(t.name, delete=tuple(range(len(t.rows)))))
    fb.write(edits)
    return path


@pytest.fixture(scope="module")
def generated(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generate invoices once on a copy of the template (real PDFs when LibreOffice is here); the CLI on another."""
    tmp = tmp_path_factory.mktemp("gen")
    wb = copy_of(template, tmp / "excel")
    book = ExcelStandIn(wb, pdf="libreoffice" if SOFFICE else "stub")
    outcome = m.generate_invoices(book)
    cli_wb = copy_of(template, tmp / "cli")
    proc = perseat("invoice", cli_wb, "--out", tmp / "cli" / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    return {"wb": wb, "book": book, "outcome": outcome, "cli": json.loads(proc.stdout),
            "cli_out": tmp / "cli" / "out", "expected": invoice_run(load(template)),
            "out": tmp / "excel" / "invoices" / "2026-11"}


# --------------------------------------------------------------------------
# Generate invoices


def test_generate_gives_the_cli_invoices(generated: dict[str, Any]) -> None:
    book: ExcelStandIn = generated["book"]
    assert generated["outcome"].ok, generated["outcome"].message
    assert as_json_invoices(book) == cli_invoices(generated["cli"])
    expected = generated["expected"]
    assert [r["InvoiceNo"] for r in book.rows("Invoices")] == [i.number for i in expected.invoices]
    assert [f"HV-{n}" for n in range(1001, 1008)] == [i.number for i in expected.invoices]
    for inv, row in zip(expected.invoices, book.rows("Invoices"), strict=True):
        assert (row["Client"], money(row["Total"])) == (inv.client.name, money(inv.total_cents / 100))


def test_generate_writes_drafts(generated: dict[str, Any]) -> None:
    book: ExcelStandIn = generated["book"]
    rows = book.rows("Invoices")
    assert {r["Status"] for r in rows} == {"Draft"}
    assert {r["Period"] for r in rows} == {"2026-11"}  # entered as text: Excel would have made it a date
    assert all(isinstance(r["IssueDate"], dt.datetime) and isinstance(r["DueDate"], dt.datetime) for r in rows)
    for r in rows:
        assert r["File"].endswith(".pdf") and (generated["wb"].parent / r["File"]).is_file(), r["File"]
    lines = book.rows("InvoiceLines")
    for r in rows:
        amounts = [money(ln["Amount"]) for ln in lines if ln["InvoiceNo"] == r["InvoiceNo"]]
        assert sum(amounts) == money(r["Total"])


def test_generate_shows_progress_and_one_message(generated: dict[str, Any]) -> None:
    book: ExcelStandIn = generated["book"]
    shown = [s for s in book.statuses if s]
    assert "Per-Seat Billing: pricing 1/7 clients…" in shown
    assert "Per-Seat Billing: pricing 7/7 clients…" in shown
    assert "Per-Seat Billing: exporting PDFs 7/7…" in shown
    assert all(s.startswith("Per-Seat Billing: ") for s in shown)
    assert book.statuses[-1] is None  # cleared: Excel has its status bar back
    assert book.updating == [False, True]
    assert len(book.alerts) == 1
    title, message, error = book.alerts[0]
    assert (title, error) == ("Per-Seat Billing: Generate invoices", False)
    assert "7 draft invoices for November 2026" in message and str(generated["out"]) in message


def test_generate_writes_invoice_sheets(generated: dict[str, Any]) -> None:
    book: ExcelStandIn = generated["book"]
    numbers = [i.number for i in generated["expected"].invoices]
    assert book.wb.sheetnames[-7:] == numbers
    for inv in generated["expected"].invoices:
        ws = book.wb[inv.number]
        cells = {ws.cell(r, c).value: (r, c) for r in range(1, ws.max_row + 1) for c in range(1, 5)}
        r, _ = cells["Total due"]
        assert money(ws.cell(r, 4).value) == money(inv.total_cents / 100)
        assert inv.client.name in cells and inv.number in cells
        assert ws.print_area and ws.page_setup.fitToWidth == 1


def test_generate_draws_the_logo_the_headings_and_the_user_list(template: Path, tmp_path: Path) -> None:
    wb = copy_of(template, tmp_path)
    shutil.copyfile(LOGO, tmp_path / "logo.png")
    set_settings(wb, {"LogoFile": "logo.png", "AttachUserList": "Yes"})
    book = ExcelStandIn(wb)
    outcome = m.generate_invoices(book)
    assert outcome.ok, outcome.message
    numbers = [r["InvoiceNo"] for r in book.rows("Invoices")]
    assert [(sheet, Path(f).name, at) for sheet, f, *at, _, _ in book.pictures] == [
        (n, "logo.png", [1, 1]) for n in numbers]  # Pictures.Add at A1 of every invoice sheet
    for n in numbers:
        ws = book.wb[n]
        first = int(str(ws.print_title_rows).split(":")[0].strip("$"))
        assert ws.cell(first, 1).value == "Description"  # the headings print at the top of every page
        assert [t for t, p in book.exports if p.stem.startswith(n + " ")] == [n, f"{n} users"]  # one PDF
        users = book.wb[f"{n} users"]
        assert users.cell(1, 1).value.startswith("User list")


def test_generate_with_a_bad_logo_writes_nothing(template: Path, tmp_path: Path) -> None:
    wb = copy_of(template, tmp_path)
    (tmp_path / "logo.png").write_text("not a picture " * 10)
    set_settings(wb, {"LogoFile": "logo.png"})
    book = ExcelStandIn(wb)
    sheets = list(book.wb.sheetnames)
    outcome = m.generate_invoices(book)
    assert not outcome.ok and "LogoFile" in outcome.message and "not a PNG or JPEG" in outcome.message
    assert book.wb.sheetnames == sheets and not book.rows("Invoices") and not book.pictures
    assert not (tmp_path / "invoices").exists()


def test_generate_writes_the_accounting_files(generated: dict[str, Any]) -> None:
    out, cli_out = generated["out"], generated["cli_out"]
    for name in ("quickbooks.csv", "xero.csv", "users.csv"):
        assert (out / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_generate_exports_one_pdf_per_invoice(generated: dict[str, Any]) -> None:
    book: ExcelStandIn = generated["book"]
    expected = generated["expected"]
    pdfs = sorted(p.name for p in generated["out"].glob("*.pdf"))
    assert pdfs == sorted(f"{i.file_stem}.pdf" for i in expected.invoices)
    assert [s for s, _ in book.exports] == [i.number for i in expected.invoices]  # each sheet, Excel's export
    if book.pdf != "libreoffice":
        pytest.skip("LibreOffice (soffice) is not on PATH: PDFs were recorded, not rendered")
    for p in generated["out"].glob("*.pdf"):
        assert p.read_bytes()[:5] == b"%PDF-" and p.stat().st_size > 2000, p


def test_saved_workbook_stays_macro_enabled_and_valid(generated: dict[str, Any], tmp_path: Path) -> None:
    book: ExcelStandIn = generated["book"]
    before = set(zipfile.ZipFile(generated["wb"]).namelist())
    book.save()
    with zipfile.ZipFile(generated["wb"]) as z:
        assert MACRO_MAIN in z.read("[Content_Types].xml").decode()
        assert {p for p in before if "vba" in p.lower() or "customui" in p.lower()} <= set(z.namelist())
    run = invoice_run(load(generated["wb"]))  # drafts do not change the month's invoices
    assert [(i.number, i.total_cents) for i in run.invoices] == \
        [(i.number, i.total_cents) for i in generated["expected"].invoices]


def test_regenerate_replaces_the_drafts(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    m.generate_invoices(book)
    first = book.rows("Invoices"), book.rows("InvoiceLines"), list(book.wb.sheetnames)
    m.generate_invoices(book)
    assert (book.rows("Invoices"), book.rows("InvoiceLines"), list(book.wb.sheetnames)) == first
    assert len(book.alerts) == 2 and not any(error for _, _, error in book.alerts)

    book.type_into("Clients", ("Client", "Delta Pediatrics"), "Status", "Inactive")
    m.generate_invoices(book)
    rows = book.rows("Invoices")
    assert [r["InvoiceNo"] for r in rows] == [f"HV-{n}" for n in range(1001, 1007)]
    assert "Delta Pediatrics" not in {r["Client"] for r in rows}
    assert {ln["InvoiceNo"] for ln in book.rows("InvoiceLines")} == {r["InvoiceNo"] for r in rows}
    assert "HV-1007" not in book.wb.sheetnames
    out = tmp_path / "invoices" / "2026-11"
    assert sorted(p.name for p in out.glob("*.pdf")) == sorted(Path(r["File"]).name for r in rows)


def test_regenerate_with_nothing_to_invoice_removes_the_drafts(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    m.generate_invoices(book)
    for client in {r["Client"] for r in book.rows("Invoices")}:
        book.type_into("Clients", ("Client", client), "Status", "Inactive")
    outcome = m.generate_invoices(book)
    assert outcome.ok and outcome.message.startswith("No invoices for November 2026:")
    assert "Removed 7 earlier draft(s)" in outcome.message
    assert book.rows("Invoices") == [] and book.rows("InvoiceLines") == []
    ref = book.table("Invoices")
    assert ref is not None and ref.n_rows == 1  # an Excel table keeps one (blank) row
    ws = book.wb[ref.sheet]
    assert all(c.value is None for row in ws.iter_rows(min_row=2) for c in row)  # nothing left below
    assert not any(s.startswith("HV-") for s in book.wb.sheetnames)


def test_generate_refuses_before_writing_when_a_table_cannot_grow(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    ref = book.table("Invoices")
    assert ref is not None
    book.write(ref.sheet, ref.last_row + 4, 2, [["a note someone left below the table"]])
    sheets = list(book.wb.sheetnames)
    outcome = m.generate_invoices(book)
    assert not outcome.ok and len(book.alerts) == 1
    assert outcome.message.startswith("The Invoices table must grow by 6 rows into Invoices!A3:O8, but those cells "
                                      "are not empty")
    assert book.wb.sheetnames == sheets and book.rows("Invoices") == []
    assert not (tmp_path / "invoices").exists()


def test_generate_on_a_bad_workbook_writes_nothing(bad_workbook: Path) -> None:
    before = bad_workbook.read_bytes()
    book = ExcelStandIn(bad_workbook)
    sheets = list(book.wb.sheetnames)
    outcome = m.generate_invoices(book)
    assert not outcome.ok and len(book.alerts) == 1
    assert "nothing was written" in outcome.message
    assert book.wb.sheetnames == sheets and [r["InvoiceNo"] for r in book.rows("Invoices")] == ["HV-0990", "CN-0991"]
    assert not (bad_workbook.parent / "invoices").exists()
    assert bad_workbook.read_bytes() == before and book.saves == 0
    assert book.statuses[-1] is None and book.updating == [False, True]


# --------------------------------------------------------------------------
# Finalize period


def test_finalize_marks_final_and_advances(template: Path, tmp_path: Path) -> None:
    wb = copy_of(template, tmp_path)
    book = ExcelStandIn(wb)
    m.generate_invoices(book)
    drafts, draft_lines = book.rows("Invoices"), book.rows("InvoiceLines")
    outcome = m.finalize_period(book)
    assert outcome.ok, outcome.message
    finals = book.rows("Invoices")
    assert finals == [{**r, "Status": "Final"} for r in drafts]
    assert book.rows("InvoiceLines") == draft_lines
    assert book.setting("NextInvoiceNumber") == 1008
    assert book.setting("BillingPeriod") == "2026-12"  # text, as the template has it
    assert book.saves == 1
    saved = load(wb)  # Finalize saves the workbook
    assert (str(saved.settings.period), saved.settings.next_invoice_number) == ("2026-12", 1008)
    assert "Finalized 7 invoices for November 2026: HV-1001 … HV-1007." in outcome.message

    m.generate_invoices(book)  # December: November's Final rows are never touched
    rows = book.rows("Invoices")
    assert rows[:7] == finals
    assert book.rows("InvoiceLines")[:len(draft_lines)] == draft_lines
    december = rows[7:]
    assert december and {r["Period"] for r in december} == {"2026-12"} and {r["Status"] for r in december} == {"Draft"}
    assert [r["InvoiceNo"] for r in december] == [f"HV-{1008 + k}" for k in range(len(december))]
    assert set(r["InvoiceNo"] for r in finals) <= set(book.wb.sheetnames)


def test_generate_on_a_finalized_period_redraws_the_recorded_documents(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    m.generate_invoices(book)
    assert m.finalize_period(book).ok
    finals, lines = book.rows("Invoices"), book.rows("InvoiceLines")
    book.type_into("Settings", ("Setting", "BillingPeriod"), "Value", "2026-11")  # staff put it back a month
    outcome = m.generate_invoices(book)
    assert outcome.ok, outcome.message
    assert "November 2026 is already finalized: its 7 recorded documents were drawn again exactly as recorded" \
        in outcome.message
    assert book.rows("Invoices") == finals and book.rows("InvoiceLines") == lines  # the ledger untouched
    assert {f"HV-{n}" for n in range(1001, 1008)} <= set(book.wb.sheetnames)


def test_finalize_before_the_period_ends_asks_first(template: Path, tmp_path: Path) -> None:
    today = dt.date.today()
    month, following = f"{today:%Y-%m}", str(Period(today.year, today.month).next())
    wb = copy_of(template, tmp_path)
    book = ExcelStandIn(wb)
    book.type_into("Settings", ("Setting", "BillingPeriod"), "Value", month)  # the month we are in
    m.generate_invoices(book)
    drafts = book.rows("Invoices")
    book.answer = False
    outcome = m.finalize_period(book)
    assert not outcome.ok and outcome.message.startswith("Nothing was finalized.")
    last = Period(today.year, today.month).last
    assert f"runs until {last:%b} {last.day}, {last.year}" in book.questions[-1][1]
    assert book.rows("Invoices") == drafts and Period.key(book.setting("BillingPeriod")) == month
    book.answer = True
    assert m.finalize_period(book).ok
    assert Period.key(book.setting("BillingPeriod")) == following


def test_credit_note_button_credits_the_selected_invoice(template: Path, tmp_path: Path) -> None:
    wb = copy_of(template, tmp_path)
    book = ExcelStandIn(wb)
    m.generate_invoices(book)
    assert m.finalize_period(book).ok
    book = ExcelStandIn(wb)
    ref = book.table("Invoices")
    assert ref is not None
    book.selection = (ref.sheet, ref.header_row + 3)  # HV-1003, Cobalt Logistics
    book.typed = ["line 2", "Ops manager left in October"]
    outcome = m.credit_note(book)
    assert outcome.ok, outcome.message
    assert "Record credit note CN-1008 for Cobalt Logistics on HV-1003: USD 145.00?" in book.questions[-1][1]
    rows = book.rows("Invoices")
    note = next(r for r in rows if r["InvoiceNo"] == "CN-1008")
    assert (note["Kind"], note["Corrects"], note["Status"], note["Total"]) == ("Credit", "HV-1003", "Final", -145)
    assert "CN-1008" in book.wb.sheetnames and book.saves == 1
    out = tmp_path / "invoices" / "2026-11" / "CN-1008 Cobalt Logistics"
    assert {p.name for p in out.iterdir()} >= {"quickbooks_credit_memos.csv", "xero_credit_notes.csv",
                                               "invoices.xlsx"}


def test_price_sheet_button_writes_schedule_a_for_the_selected_client(template: Path, tmp_path: Path) -> None:
    """Price sheet & contract schedule: the selected Clients row's Schedule A on its sheet, exported to
    OutputFolder/contracts (by LibreOffice here, as Excel's ExportAsFixedFormat would)."""
    book = ExcelStandIn(copy_of(template, tmp_path), pdf="libreoffice")
    ref = book.table("Clients")
    assert ref is not None
    book.selection = (ref.sheet, ref.header_row + 7)  # Granite Accounting
    outcome = m.price_sheet(book)
    assert outcome.ok, outcome.message
    pdf = tmp_path / "invoices" / "contracts" / "Schedule A - Granite Accounting.pdf"
    assert pdf.is_file() and book.exports == [("Schedule A", pdf)]
    ws = book.wb["Schedule A"]
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert texts[0] == "Schedule A — Billable users and prices" and "Client: Granite Accounting" in texts
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Discount: 10%" in text and "Tax: 5.5%" in text


def test_price_sheet_button_without_a_selection_asks_then_writes_them_all(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    book.answer = False
    outcome = m.price_sheet(book)
    assert not outcome.ok and "Select a client's row" in outcome.message and not book.exports
    book.answer = True
    outcome = m.price_sheet(book)
    assert outcome.ok, outcome.message
    names = [p.name for _, p in book.exports]
    assert names[0] == "Schedule A - Price list.pdf" and len(names) == 1 + 7  # and each active client
    assert "Schedule A - Birch _ Lowe LLP.pdf" in names  # file names keep letters, digits and " -_.()"


def test_credit_note_button_needs_a_selected_invoice_and_a_reason(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    outcome = m.credit_note(book)
    assert not outcome.ok and outcome.message.startswith("Select the row of the invoice to credit")


# --------------------------------------------------------------------------
# Send invoices


def _finalized(template: Path, tmp_path: Path) -> Path:
    """A copy of the template with November generated and finalized on the ribbon."""
    wb = copy_of(template, tmp_path)
    book = ExcelStandIn(wb)
    m.generate_invoices(book)
    assert m.finalize_period(book).ok
    return wb


NOVEMBER = [f"HV-{n}" for n in range(1001, 1008)]


def test_send_invoices_leaves_one_outlook_draft_per_invoice(template: Path, tmp_path: Path) -> None:
    from outlookstandin import OutlookStandIn
    from perseat_addin.macros.adapter import OutlookDrafts

    book = ExcelStandIn(_finalized(template, tmp_path))
    invoices = {r["InvoiceNo"]: r for r in book.rows("Invoices")}
    emails = {r["Client"]: r["BillingEmail"] for r in book.rows("Clients")}
    outlook = OutlookStandIn()
    outcome = m.send_invoices(book, outlook=OutlookDrafts(outlook))
    assert outcome.ok, outcome.message
    assert "7 e-mails for November 2026, each with its PDF, in Outlook's Drafts folder" in outcome.message
    assert outlook.calls[:6] == ["CreateItem(0)", "MailItem.To", "MailItem.Subject", "MailItem.Body",
                                 "Attachments.Add(HV-1001 Acme Dental Group.pdf)", "MailItem.Save()"]
    assert [d.subject.split()[1] for d in outlook.drafts] == NOVEMBER
    for d, number in zip(outlook.drafts, NOVEMBER, strict=True):
        client = invoices[number]["Client"]
        assert d.to == emails[client] and f"Dear {client}," in d.body and "November 2026" in d.subject
        [(name, data)] = d.attachments
        assert name.startswith(f"{number} ") and name.endswith(".pdf") and data.startswith(b"%PDF")
    assert any(s and "exporting PDFs" in s for s in book.statuses)
    assert {r["InvoiceNo"]: r for r in book.rows("Invoices")} == invoices  # never rewritten
    log = [r for r in book.rows("ChangeLog") if r["Field"] == "InvoiceNo"]
    assert [(r["Action"], r["Source"], r["New"].split()[0]) for r in log] == \
        [("Invoice e-mail drafted in Outlook", "outlook", n) for n in NOVEMBER]

    book.answer = False  # pressed again: asks first; No drafts only the others (none)
    again = m.send_invoices(book, outlook=OutlookDrafts(outlook))
    assert not again.ok and len(outlook.drafts) == len(NOVEMBER)
    assert "HV-1001 was drafted in Outlook on" in book.questions[-1][1]
    book.answer = True
    assert m.send_invoices(book, outlook=OutlookDrafts(outlook)).ok
    assert len(outlook.drafts) == 2 * len(NOVEMBER)


def test_send_invoices_logs_the_drafts_made_before_outlook_failed(template: Path, tmp_path: Path) -> None:
    from outlookstandin import OutlookStandIn
    from perseat_addin.macros.adapter import OutlookDrafts

    book = ExcelStandIn(_finalized(template, tmp_path))
    outlook = OutlookStandIn(fail_after=3)
    outcome = m.send_invoices(book, outlook=OutlookDrafts(outlook))
    assert not outcome.ok and len(outlook.drafts) == 3
    assert outcome.message.startswith("Outlook could not save the e-mail for HV-1004")
    assert "the 3 drafts made before it are in Outlook's Drafts folder and logged in ChangeLog" in outcome.message
    log = [r["New"].split()[0] for r in book.rows("ChangeLog") if r["Field"] == "InvoiceNo"]
    assert log == NOVEMBER[:3]


def test_send_invoices_writes_eml_files_without_outlook(template: Path, tmp_path: Path) -> None:
    import email
    from email import policy

    from perseat_addin.macros.adapter import outlook

    assert outlook() is None  # not Windows: no Outlook to drive
    book = ExcelStandIn(_finalized(template, tmp_path))
    outcome = m.send_invoices(book)
    assert outcome.ok, outcome.message
    folder = tmp_path / "invoices" / "2026-11" / "mail"
    assert str(folder) in outcome.message
    files = sorted(folder.glob("*.eml"))
    assert [f.name.split()[0] for f in files] == NOVEMBER
    with files[0].open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=policy.default)
    assert msg["X-Unsent"] == "1" and [p.get_content_type() for p in msg.iter_attachments()] == ["application/pdf"]
    log = [(r["Action"], r["Source"]) for r in book.rows("ChangeLog") if r["Field"] == "InvoiceNo"]
    assert log == [("Invoice e-mail drafted", "eml")] * len(NOVEMBER)


def test_send_invoices_before_anything_is_finalized_says_so(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    outcome = m.send_invoices(book)
    assert not outcome.ok and "no period is recorded yet" in outcome.message.lower()


def test_finalize_adds_the_billed_table_to_a_workbook_made_before_it(tmp_path: Path) -> None:
    wb = tmp_path / "old.xlsm"
    write_workbook(wb, [s for s in template_sheets() if s.name != "Billed"])
    book = ExcelStandIn(wb)
    assert book.table("Billed") is None
    m.generate_invoices(book)
    assert m.finalize_period(book).ok
    billed = book.rows("Billed")
    assert "Billed" in book.wb.sheetnames and {r["InvoiceNo"] for r in billed} == {f"HV-{n}" for n in range(1001, 1008)}
    assert load(wb).settings.next_invoice_number == 1008  # saved, the new sheet with it


def test_finalize_without_drafts_refuses(template: Path, tmp_path: Path) -> None:
    wb = copy_of(template, tmp_path)
    before = wb.read_bytes()
    book = ExcelStandIn(wb)
    outcome = m.finalize_period(book)
    assert not outcome.ok and len(book.alerts) == 1 and book.alerts[0][2]
    assert "no draft invoices for November 2026" in outcome.message
    assert book.setting("BillingPeriod") == "2026-11" and book.setting("NextInvoiceNumber") == 1001
    assert book.saves == 0 and wb.read_bytes() == before


def test_finalize_refuses_drafts_the_workbook_no_longer_gives(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    m.generate_invoices(book)
    book.type_into("Clients", ("Client", "Granite Accounting"), "DiscountPct", 0.2)
    outcome = m.finalize_period(book)
    assert not outcome.ok and "HV-1007 (Granite Accounting): draft total" in outcome.message
    assert {r["Status"] for r in book.rows("Invoices")} == {"Draft"} and book.saves == 0


# --------------------------------------------------------------------------
# Check workbook, Help


@pytest.fixture
def bad_workbook(tmp_path: Path) -> Path:
    sheets = template_sheets()
    plans = spec(sheets, "Plans")
    plans.rows = [tuple("ninety" if (i, j) == (1, 1) else v for j, v in enumerate(r)) for i, r in enumerate(plans.rows)]
    roster = spec(sheets, "Roster")
    j_end, j_start = list(roster.headers).index("End"), list(roster.headers).index("Start")
    roster.rows = [tuple(dt.date(2020, 1, 1) if (k == 3 and j == j_end) else v for j, v in enumerate(r))
                   for k, r in enumerate(roster.rows)]
    assert roster.rows[3][j_start] > dt.date(2020, 1, 1)
    clients = spec(sheets, "Clients")
    clients.rows = [*clients.rows, ("Zed Corp", "Platinum", "Active", *[None] * (len(clients.headers) - 3))]
    path = tmp_path / "bad" / "bad.xlsm"
    path.parent.mkdir()
    write_workbook(path, sheets)
    return path


def test_check_workbook_lists_every_problem_in_one_box(bad_workbook: Path) -> None:
    with pytest.raises(InputProblems) as info:
        load(bad_workbook)
    book = ExcelStandIn(bad_workbook)
    outcome = m.check_workbook(book)
    assert not outcome.ok and len(book.alerts) == 1
    title, message, error = book.alerts[0]
    assert title == "Per-Seat Billing: Check workbook" and error
    for p in info.value.problems:  # the same problems perseat check reports: sheet, row, column and fix
        assert f"• {p}" in message
    assert [p.location() for p in info.value.problems] == [
        "Clients, row 10, column Plan (B)", "Plans, row 3, column Rate (B)", "Roster, row 5, column End (H)"]
    assert message.startswith("3 problems in the workbook:")


def test_check_workbook_reports_a_missing_invoice_lines_table(tmp_path: Path) -> None:
    path = tmp_path / "no-lines.xlsm"
    write_workbook(path, [s for s in template_sheets() if s.name != "InvoiceLines"])
    book = ExcelStandIn(path)
    outcome = m.check_workbook(book)
    assert not outcome.ok
    assert "InvoiceLines: the workbook has no InvoiceLines table to write to" in outcome.message


def test_check_workbook_on_the_template(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    outcome = m.check_workbook(book)
    info = json.loads(perseat("check", template, "--json").stdout)
    assert outcome.ok and book.alerts == [("Per-Seat Billing: Check workbook", outcome.message, False)]
    assert outcome.message.startswith(
        f"No problems found: {info['clients']} clients ({info['active_clients']} active), "
        f"{info['billable_users']} billable users ({info['roster_rows']} roster rows)")
    assert book.statuses[-1] is None


def test_show_help(template: Path, tmp_path: Path) -> None:
    book = ExcelStandIn(copy_of(template, tmp_path))
    outcome = m.show_help(book)
    assert outcome.ok and len(book.alerts) == 1
    for action in m.ACTIONS:
        assert f"• {action.label}: {action.supertip}" in outcome.message
    assert "README" in outcome.message and "perseat --help" in outcome.message


def test_problem_box_is_capped() -> None:
    problems = [Problem("Roster", 2 + k, "Start (G)", f"bad date {k}", "type a date") for k in range(40)]
    text = problems_text(problems)
    bullets = [ln for ln in text.splitlines() if ln.startswith("• ")]
    assert len(bullets) == 25 and bullets[0] == "• Roster, row 2, column Start (G): bad date 0 — type a date"
    assert "…and 15 more." in text and text.startswith("40 problems in the workbook; nothing was written.")


class _Broken(ExcelStandIn):
    def read(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> list[list[Any]]:
        raise RuntimeError("COM: the RPC server is unavailable")


def test_an_unexpected_error_is_one_box_not_a_traceback(template: Path, tmp_path: Path) -> None:
    book = _Broken(copy_of(template, tmp_path))
    outcome = m.generate_invoices(book)
    assert not outcome.ok and len(book.alerts) == 1
    assert "RuntimeError: COM: the RPC server is unavailable" in outcome.message
    assert book.statuses[-1] is None and book.updating == [False, True]


# --------------------------------------------------------------------------
# The registry and the package's shape


def test_registry_lists_exactly_the_actions() -> None:
    assert [a.macro for a in m.ACTIONS] == ["generate_invoices", "finalize_period", "credit_note", "send_invoices",
                                            "check_workbook", "import_roster", "sync_sources", "usage_report",
                                            "price_sheet",
                                            "show_help"]
    assert len({a.id for a in m.ACTIONS}) == len({a.vba_sub for a in m.ACTIONS}) == 10
    for a in m.ACTIONS:
        fn = getattr(m, a.macro)
        assert callable(fn) and all(p.default is not inspect.Parameter.empty
                                    for p in inspect.signature(fn).parameters.values())
        arg = "PATH" if a.file_prompt else ""
        assert a.run_python == f"import perseat_addin.macros as m; m.{a.macro}({arg})"
        assert re.fullmatch(r"Perseat[A-Za-z]+", a.vba_sub) and re.fullmatch(r"[A-Za-z]+", a.image_mso)
        assert a.label and a.screentip and a.supertip


def test_the_stand_in_implements_the_protocol(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    Workbook().save(path)
    assert isinstance(ExcelStandIn(path), LiveBook)
    from perseat_addin.macros.adapter import XlwingsBook

    assert {n for n in dir(LiveBook) if not n.startswith("_")} <= set(dir(XlwingsBook))


def test_imports_go_one_way() -> None:
    code = ("import sys, perseat_addin, perseat_addin.tasks.livebook, perseat_addin.engine.ledger, "
            "perseat_addin.macros; "
            "print('xlwings' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr
    for path in Path(__file__).parents[1].joinpath("perseat_addin").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+xlwings", path.read_text(), re.M), path


def test_outcome_is_returned_to_python_callers(template: Path, tmp_path: Path) -> None:
    outcome = m.check_workbook(ExcelStandIn(copy_of(template, tmp_path)))
    assert isinstance(outcome, Outcome)


# --------------------------------------------------------------------------
# XlwingsBook: the protocol's calls become the right xlwings calls (a recording fake of xlwings' objects;
# Excel itself is the stand-in's job above)


class _Rec:
    """Records attribute writes and calls on an xlwings-like object."""

    def __init__(self, log: list[str], label: str, /, **attrs: Any):
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_name", label)
        for k, v in attrs.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, key: str, value: Any) -> None:
        self._log.append(f"{self._name}.{key} = {value!r}")
        object.__setattr__(self, key, value)


class _Range(_Rec):
    def __init__(self, log: list[str], a: Any, b: Any = None):
        super().__init__(log, f"range{a}" + (f":{b}" if b else ""))
        r0, c0 = a if isinstance(a, tuple) else (1, 1)
        r1, c1 = b or (r0, c0)
        object.__setattr__(self, "row", r0)
        object.__setattr__(self, "column", c0)
        object.__setattr__(self, "shape", (r1 - r0 + 1, c1 - c0 + 1))
        object.__setattr__(self, "font", _Rec(log, f"{self._name}.font"))
        object.__setattr__(self, "_borders", {"edge_top": _Rec(log, "top"), "edge_bottom": _Rec(log, "bottom")})

    horizontal_alignment = vertical_alignment = None  # xlwings ≥ 0.37.3 has them on Range

    @property
    def borders(self) -> dict[str, _Rec]:
        return self._borders  # type: ignore[no-any-return]

    def options(self, **kw: Any) -> _Range:
        self._log.append(f"{self._name}.options({sorted(kw.items())})")
        return self

    @property
    def value(self) -> list[list[Any]]:
        return [[None] * self.shape[1] for _ in range(self.shape[0])]

    @value.setter
    def value(self, v: Any) -> None:  # _Rec.__setattr__ logs it
        pass

    def delete(self, shift: str | None = None) -> None:
        self._log.append(f"{self._name}.delete({shift!r})")

    def merge(self) -> None:
        self._log.append(f"{self._name}.merge()")


class _Table(_Rec):
    def resize(self, rng: _Range) -> None:
        self._log.append(f"table.resize({rng._name})")


def _fake_book(log: list[str]) -> Any:
    table = _Table(log, "table", name="Invoices", show_headers=True, show_totals=False,
                   range=_Range(log, (1, 1), (3, 11)), data_body_range=_Range(log, (2, 1), (3, 11)))
    sheet = _Rec(log, "sheet", name="Invoices", page_setup=_Rec(log, "page_setup"))
    object.__setattr__(table, "parent", sheet)
    object.__setattr__(sheet, "range", lambda a, b=None: _Range(log, a, b))
    object.__setattr__(sheet, "delete", lambda: log.append("sheet.delete()"))
    object.__setattr__(sheet, "to_pdf", lambda path: log.append(f"sheet.to_pdf({path})"))

    class Sheets(list):  # type: ignore[type-arg]
        def __getitem__(self, key: Any) -> Any:
            return sheet if isinstance(key, str) else list.__getitem__(self, key)

        def add(self, name: str, after: Any) -> Any:
            log.append(f"sheets.add({name!r})")
            return sheet

    object.__setattr__(sheet, "tables", _TablesOf([table]))
    app = _Rec(log, "app", screen_updating=True, calculation="automatic")
    object.__setattr__(app, "alert", lambda msg, title, mode: log.append(f"alert({title!r}, {mode!r})"))
    return _Rec(log, "book", app=app, sheets=Sheets([sheet]), fullname="C:/b/billing.xlsm")


class _TablesOf(list):  # type: ignore[type-arg]
    def __getitem__(self, key: Any) -> Any:
        return next(t for t in self if t.name == key) if isinstance(key, str) else list.__getitem__(self, key)


def test_xlwings_book_translates_the_protocol() -> None:
    from perseat_addin.macros.adapter import XlwingsBook

    log: list[str] = []
    live = XlwingsBook(_fake_book(log))
    assert live.table("invoices") == TableRef("Invoices", "Invoices", 1, 1, 11, 2)
    assert live.table("Nope") is None
    log.clear()
    live.resize_table("Invoices", 5)
    live.delete_rows("Invoices", 3, 1, 2, 11)
    live.write("Invoices", 4, 2, [["a", 1.0], ["b", 2.0]], [None, "#,##0.00"])
    live.status("x")
    live.status(None)
    live.alert("hello", "Title", error=True)
    assert log == [
        "table.resize(range(1, 1):(6, 11))",
        "range(3, 1):(4, 11).delete('up')",
        "range(4, 3):(5, 3).number_format = '#,##0.00'",
        "range(4, 2):(5, 3).value = [['a', 1.0], ['b', 2.0]]",
        "app.status_bar = 'x'",
        "app.status_bar = False",
        "alert('Title', 'critical')",
    ]
    log.clear()
    from perseat_addin.tasks.livebook import Cell, Style

    layout = SheetLayout("HV-1", (Cell(1, 1, "Total due", Style(bold=True, top="medium"), to=(1, 3)),
                                  Cell(1, 4, 12.5, Style(number_format="#,##0.00"))), widths=((1, 58.0),),
                         print_area=(1, 1, 4, 4))
    live.put_sheet(layout)
    assert "sheets.add('HV-1')" in log
    assert "range(1, 1):(1, 4).value = [['Total due', None, None, 12.5]]" in log
    assert "range(1, 1):(1, 3).merge()" in log
    assert "rangeA1:C1.font.bold = True" in log and "top.weight = 'medium'" in log
    assert "page_setup.print_area = 'A1:D4'" in log


def test_excel_prints_the_report_as_laid_out_landscape_unshrunk_with_titles_and_breaks(
        monkeypatch: pytest.MonkeyPatch, template: Path) -> None:
    """The ribbon's Report sheet gets the page setup report.xlsx has (Excel's PageSetup, driven through COM on
    Windows): landscape, 100 % rather than fitted to one page wide, the heading row repeated, the page breaks."""
    from types import SimpleNamespace

    import macros.adapter as adapter
    from perseat_addin.engine.report import build_report
    from perseat_addin.outputs.report_sheet import report_layout
    from perseat_addin.workbook.load import load

    breaks: list[tuple[str, Any]] = []
    setup = SimpleNamespace()
    app = SimpleNamespace(PrintCommunication=True, InchesToPoints=lambda x: x * 72,
                          ActiveWindow=SimpleNamespace(DisplayGridlines=True))
    ws = SimpleNamespace(
        page_setup=SimpleNamespace(), book=SimpleNamespace(app=SimpleNamespace(api=app)), activate=lambda: None,
        range=lambda cell: SimpleNamespace(api=cell),
        api=SimpleNamespace(PageSetup=setup,
                            HPageBreaks=SimpleNamespace(Add=lambda Before: breaks.append(("row", Before))),
                            VPageBreaks=SimpleNamespace(Add=lambda Before: breaks.append(("col", Before)))))
    monkeypatch.setattr(adapter, "WINDOWS", True)
    layout = report_layout(build_report(load(template)), "Harborview IT")
    adapter._page_setup(ws, layout)
    top = layout.repeat_rows[0]
    assert (setup.Orientation, setup.Zoom, setup.PrintTitleRows) == (2, 100, f"${top}:${top}")
    assert not hasattr(setup, "FitToPagesWide")  # never shrunk to fit
    assert breaks == [*(("row", (r, 1)) for r in layout.row_breaks), ("col", (1, 12))]
    assert layout.value(top, 1) == layout.value(top, 12) == "Client"  # each printed group starts with the client
