"""The one adapter to the live workbook: :class:`perseat_addin.tasks.livebook.LiveBook` over an xlwings Book.

Thin on purpose: every decision (what to read, which rows to write, the invoice
layout, the messages) is made in :mod:`perseat_addin.tasks`; this module only
translates the protocol's calls into xlwings (classic, BSD-licensed part:
``Book.caller``, ranges, ListObjects via ``sheet.tables``, ``to_pdf``,
``app.status_bar``, ``app.alert``). Windows-only refinements (page setup,
gridlines) go through ``.api`` and are skipped on macOS.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xlwings as xw

from perseat_addin.cells import col_letter, formula_safe
from perseat_addin.errors import PerseatError
from perseat_addin.outputs.layout import Chart
from perseat_addin.tasks.livebook import SheetLayout, Style, TableRef

WINDOWS = sys.platform.startswith("win")
_ALIGN = {"left": -4131, "center": -4108, "right": -4152}  # xlHAlign*
_VALIGN = {"top": -4160, "center": -4108, "bottom": -4107}  # xlVAlign*
_WEIGHT = {"thin": 2, "medium": -4138}  # xlBorderWeight
_EDGE = {"edge_top": 8, "edge_bottom": 9}  # xlBordersIndex


def caller() -> XlwingsBook:
    """The workbook whose button ran this macro (``RunPython``)."""
    return XlwingsBook(xw.Book.caller())


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _address(r0: int, c0: int, r1: int, c1: int) -> str:
    a, b = f"{col_letter(c0 - 1)}{r0}", f"{col_letter(c1 - 1)}{r1}"
    return a if a == b else f"{a}:{b}"


class XlwingsBook:
    """The LiveBook protocol over ``xw.Book`` (Excel on Windows or macOS)."""

    def __init__(self, book: Any):
        self.book = book
        self.app = book.app
        self._tables: dict[str, tuple[str, str]] | None = None
        self._state: tuple[Any, Any, str] | None = None

    # -- reading ------------------------------------------------------------
    @property
    def fullname(self) -> str:
        try:
            return str(self.book.fullname)
        except Exception:  # a OneDrive/SharePoint URL xlwings cannot map to a local folder
            return str(self.book.api.FullName) if WINDOWS else str(self.book.name)

    def _table(self, name: str) -> Any:
        key = name.lower()
        if self._tables is None or key not in self._tables:
            self._tables = {t.name.lower(): (s.name, t.name) for s in self.book.sheets for t in s.tables}
        found = self._tables.get(key)
        return None if found is None else self.book.sheets[found[0]].tables[found[1]]

    def table(self, name: str) -> TableRef | None:
        t = self._table(name)
        if t is None:
            return None
        if not t.show_headers:
            raise PerseatError(f"the {t.name} table's header row is hidden; turn it on (Table Design ▸ Header Row)")
        rng = t.range
        totals = bool(t.show_totals)
        n_rows = 0 if t.data_body_range is None else t.data_body_range.shape[0]
        return TableRef(t.name, t.parent.name, rng.row, rng.column, rng.shape[1], n_rows, totals)

    def used_range(self, sheet: str) -> tuple[str, int, int, list[list[Any]]] | None:
        for s in self.book.sheets:
            if s.name.lower() == sheet.lower():
                ur = s.used_range
                return s.name, ur.row, ur.column, [list(r) for r in ur.options(ndim=2, err_to_str=True).value]
        return None

    def read(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> list[list[Any]]:
        if n_rows <= 0 or n_cols <= 0:
            return []
        rng = self.book.sheets[sheet].range((row, col), (row + n_rows - 1, col + n_cols - 1))
        return [list(r) for r in rng.options(ndim=2, err_to_str=True).value]

    # -- writing ------------------------------------------------------------
    def write(self, sheet: str, row: int, col: int, values: Sequence[Sequence[Any]],
              number_formats: Sequence[str | None] | None = None) -> None:
        if not values or not values[0]:
            return
        ws = self.book.sheets[sheet]
        n, m = len(values), len(values[0])
        for j, fmt in enumerate(number_formats or ()):
            if fmt:  # before the values, so Excel reads them into the right format
                ws.range((row, col + j), (row + n - 1, col + j)).number_format = fmt
        ws.range((row, col), (row + n - 1, col + m - 1)).value = [list(r) for r in values]

    def resize_table(self, name: str, n_rows: int) -> None:
        t = self._table(name)
        rng = t.range
        ws = t.parent
        t.resize(ws.range((rng.row, rng.column), (rng.row + max(n_rows, 1), rng.column + rng.shape[1] - 1)))

    def add_table(self, name: str, headers: Sequence[str]) -> None:
        ws = self.book.sheets.add(name, after=self.book.sheets[-1])
        ws.range((1, 1)).value = [list(headers)]
        ws.tables.add(ws.range((1, 1), (2, len(headers))), name=name)  # Excel's ListObjects.Add
        self._tables = None  # the table list changed

    def add_columns(self, name: str, headers: Sequence[str]) -> None:
        t = self._table(name)
        for h in headers:
            t.api.ListColumns.Add().Name = h  # Excel's own: the header, the filter and the styles follow

    def delete_rows(self, sheet: str, row: int, col: int, n_rows: int, n_cols: int) -> None:
        self.book.sheets[sheet].range((row, col), (row + n_rows - 1, col + n_cols - 1)).delete(shift="up")

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def delete_sheet(self, name: str) -> None:
        self.book.sheets[name].delete()  # xlwings suppresses Excel's "delete this sheet?" prompt

    def put_sheet(self, layout: SheetLayout) -> None:
        for s in self.book.sheets:
            if s.name.lower() == layout.name.lower():
                s.delete()
                break
        ws = self.book.sheets.add(name=layout.name, after=self.book.sheets[-1])
        _render(ws, layout)

    def export_pdf(self, sheets: list[str], path: Path) -> None:
        if len(sheets) == 1:
            self.book.sheets[sheets[0]].to_pdf(str(path))  # Excel's own ExportAsFixedFormat
        else:
            self.book.to_pdf(str(path), include=list(sheets))  # the sheets, in order, in one PDF

    def save(self) -> None:
        self.book.save()

    # -- the application ----------------------------------------------------
    def status(self, text: str | None) -> None:
        self.app.status_bar = text if text else False  # False hands the status bar back to Excel

    def alert(self, message: str, title: str, error: bool = False) -> None:
        self.app.alert(message, title=title, mode="critical" if error else "info")

    def confirm(self, message: str, title: str) -> bool:
        return bool(self.app.alert(message, title=title, buttons="yes_no") == "yes")

    def ask(self, message: str, title: str, default: str = "") -> str | None:
        answer = self.app.api.InputBox(message, title, default, Type=2)  # Excel's own; False on Cancel
        return None if answer is False else str(answer)

    def selected_row(self) -> tuple[str, int] | None:
        sel = self.app.selection
        return None if sel is None else (str(sel.sheet.name), int(sel.row))

    def set_updating(self, on: bool) -> None:
        if not on and self._state is None:
            self._state = (self.app.screen_updating, self.app.calculation, self.book.sheets.active.name)
            self.app.screen_updating = False
            self.app.calculation = "manual"  # the Clients formula columns call Python: recalculate once, at the end
        elif on and self._state is not None:
            screen, calculation, active = self._state
            self._state = None
            if active in self.sheet_names():
                self.book.sheets[active].activate()
            self.app.calculation = calculation
            self.app.screen_updating = screen


# --------------------------------------------------------------------------
# Laying out a sheet


def _render(ws: Any, layout: SheetLayout) -> None:
    last_row = max(c.to[0] if c.to else c.row for c in layout.cells)
    last_col = max(c.to[1] if c.to else c.col for c in layout.cells)
    grid: list[list[Any]] = [[None] * last_col for _ in range(last_row)]
    for c in layout.cells:
        grid[c.row - 1][c.col - 1] = c.value
    ws.range((1, 1), (last_row, last_col)).value = grid  # one call for every value
    for col, width in layout.widths:
        ws.range((1, col)).column_width = width
    for row, height in layout.heights:
        ws.range((row, 1)).row_height = height
    areas: dict[Style, list[str]] = {}
    for c in layout.cells:
        r1, c1 = c.to or (c.row, c.col)
        areas.setdefault(c.style, []).append(_address(c.row, c.col, r1, c1))
        if c.to:
            ws.range((c.row, c.col), c.to).merge()
    for style, addresses in areas.items():
        if style == Style():
            continue
        if not WINDOWS:  # one range per area: multi-area addresses are a Windows (COM) feature
            for a in addresses:
                _style(ws.range(a), style)
            continue
        chunk: list[str] = []
        for a in [*addresses, ""]:  # a multi-area Range("A1,B2,…") takes at most 255 characters
            if chunk and (not a or len(",".join([*chunk, a])) > 250):
                _style(ws.range(",".join(chunk)), style)
                chunk = []
            if a:
                chunk.append(a)
    _page_setup(ws, layout)
    for chart in layout.charts:
        _chart(ws, chart)
    for pic in layout.pictures:  # the file LogoFile names, checked by the task before anything was drawn
        corner = ws.range((pic.row, pic.col))
        ws.pictures.add(pic.path, left=corner.left + pic.offset[0], top=corner.top + pic.offset[1],
                        width=pic.width, height=pic.height)


_CHART_TYPES = {"column": ("column_clustered", 51), "line": ("line_markers", 65), "scatter": ("xy_scatter", -4169)}


def _chart(ws: Any, spec: Chart) -> None:
    """A native chart: xlwings places it; on Windows each series is set through Excel's object model."""
    corner = ws.range(spec.anchor)
    chart = ws.charts.add(left=corner.left, top=corner.top, width=spec.size[0] * 0.75, height=spec.size[1] * 0.75)
    chart.chart_type = _CHART_TYPES[spec.kind][0]
    first = spec.series[0]
    chart.set_source_data(ws.range(first.values[:2], first.values[2:]))
    if not WINDOWS:
        return  # macOS: the first series only (AppleScript has no SeriesCollection.NewSeries)
    c = chart.api[1]
    while c.SeriesCollection().Count:
        c.SeriesCollection(1).Delete()
    for s in spec.series:
        ser = c.SeriesCollection().NewSeries()
        ser.Name = s.name
        ser.Values = ws.range(s.values[:2], s.values[2:]).api
        ser.XValues = ws.range(s.categories[:2], s.categories[2:]).api
        if s.kind and s.kind != spec.kind:
            ser.ChartType = _CHART_TYPES[s.kind][1]
        if s.secondary:
            ser.AxisGroup = 2
        if s.color:
            r, g, b = _rgb(s.color)
            fmt = ser.Format.Line if (s.kind or spec.kind) == "line" else ser.Format.Fill
            fmt.ForeColor.RGB = r + g * 256 + b * 65536
        if s.labels is not None:  # each point labelled by a link to its cell, never by the cell's text
            r0, c0, r1, _ = s.labels
            sheet = str(ws.name).replace("'", "''")
            ser.HasDataLabels = True
            for k, r in enumerate(range(r0, r1 + 1), start=1):
                ser.Points(k).DataLabel.Text = f"='{sheet}'!${col_letter(c0 - 1)}${r}"
    c.HasTitle = True
    c.ChartTitle.Text = formula_safe(spec.title)
    for axis, title in ((1, spec.x_title), (2, spec.y_title)):
        if title:
            c.Axes(axis).HasTitle = True
            c.Axes(axis).AxisTitle.Text = formula_safe(title)


def _style(rng: Any, s: Style) -> None:
    if s.number_format:
        rng.number_format = s.number_format
    if s.bold:
        rng.font.bold = True
    if s.size:
        rng.font.size = s.size
    if s.color:
        rng.font.color = _rgb(s.color)
    if s.fill:
        rng.color = _rgb(s.fill)
    if s.wrap:
        rng.wrap_text = True
    if s.align:
        if hasattr(type(rng), "horizontal_alignment"):  # xlwings ≥ 0.37.3
            rng.horizontal_alignment = s.align
        elif WINDOWS:
            rng.api.HorizontalAlignment = _ALIGN[s.align]
    if s.valign:
        if hasattr(type(rng), "vertical_alignment"):
            rng.vertical_alignment = s.valign
        elif WINDOWS:
            rng.api.VerticalAlignment = _VALIGN[s.valign]
    for side, weight in (("edge_top", s.top), ("edge_bottom", s.bottom)):
        if not weight:
            continue
        if hasattr(type(rng), "borders"):  # xlwings ≥ 0.37.1
            border = rng.borders[side]
            border.line_style = "continuous"
            border.weight = weight
            if s.border_color:
                border.color = _rgb(s.border_color)
        elif WINDOWS:
            border = rng.api.Borders(_EDGE[side])
            border.LineStyle = 1
            border.Weight = _WEIGHT[weight]
            if s.border_color:
                r, g, b = _rgb(s.border_color)
                border.Color = r + g * 256 + b * 65536


def _page_setup(ws: Any, layout: SheetLayout) -> None:
    r0, c0, r1, c1 = layout.print_area
    ws.page_setup.print_area = _address(r0, c0, r1, c1)
    if not WINDOWS:
        return  # macOS: Excel's default page setup with the print area above
    app = ws.book.app.api
    left, right, top, bottom = layout.margins
    try:
        app.PrintCommunication = False  # page setup is slow while Excel talks to the printer driver
        ps = ws.api.PageSetup
        ps.Orientation = 2 if layout.landscape else 1  # xlLandscape / xlPortrait
        if layout.fit_width:
            ps.Zoom = False
            ps.FitToPagesWide = layout.fit_width
            ps.FitToPagesTall = False
        else:
            ps.Zoom = 100  # printed at its size, split across pages rather than shrunk
        if layout.repeat_rows:
            ps.PrintTitleRows = f"${layout.repeat_rows[0]}:${layout.repeat_rows[1]}"
        for row in layout.row_breaks:
            ws.api.HPageBreaks.Add(Before=ws.range((row, 1)).api)
        for col in layout.column_breaks:
            ws.api.VPageBreaks.Add(Before=ws.range((1, col)).api)
        ps.LeftMargin, ps.RightMargin = app.InchesToPoints(left), app.InchesToPoints(right)
        ps.TopMargin, ps.BottomMargin = app.InchesToPoints(top), app.InchesToPoints(bottom)
        ps.LeftFooter = f"&{layout.footer_size}{layout.footer_left}" if layout.footer_left else ""
        ps.RightFooter = f"&{layout.footer_size}{layout.footer_right}" if layout.footer_right else ""
        ps.PrintGridlines = layout.gridlines
        with contextlib.suppress(Exception):  # some printer drivers reject a paper size: keep the printer's
            ps.PaperSize = 1 if layout.paper == "letter" else 9  # xlPaperLetter / xlPaperA4
    finally:
        app.PrintCommunication = True
    ws.activate()  # gridlines are a window setting; set_updating(True) reactivates the user's sheet
    app.ActiveWindow.DisplayGridlines = layout.gridlines


# --------------------------------------------------------------------------
# Outlook (Windows): Send invoices leaves one draft per invoice in Outlook's Drafts folder

OL_MAIL_ITEM = 0  # OlItemType.olMailItem


class OutlookDrafts:
    """:class:`perseat_addin.tasks.send.Outlook` over ``Outlook.Application`` (COM): each draft is a new
    MailItem with To, Subject, Body and the PDF attached, saved (``MailItem.Save``: it goes to Drafts) and
    never sent — the user reviews and sends it in Outlook."""

    def __init__(self, app: Any):
        self.app = app

    def draft(self, to: str, subject: str, body: str, attachment: Path) -> None:
        item = self.app.CreateItem(OL_MAIL_ITEM)
        item.To = to
        item.Subject = subject
        item.Body = body
        item.Attachments.Add(str(attachment))  # Outlook copies the file into the item now
        item.Save()


def outlook() -> OutlookDrafts | None:
    """Outlook on this computer (Windows, with Outlook installed); None elsewhere (then .eml files are written)."""
    if not WINDOWS:
        return None
    try:
        import win32com.client  # pywin32: installed with xlwings on Windows

        return OutlookDrafts(win32com.client.Dispatch("Outlook.Application"))
    except Exception:  # no Outlook (or a COM error starting it): fall back to .eml drafts
        return None
