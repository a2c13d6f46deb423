"""invoices.xlsx: the Register and Lines of every invoice, and a printable sheet per invoice for runs of up
to :data:`PRINTABLE_SHEETS` invoices.

Files are written into a temporary folder beside the destination and moved
into place only when all of them are complete.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perseat_addin.cells import col_letter, formula_safe
from perseat_addin.engine.invoicing import Run
from perseat_addin.model import Invoice
from perseat_addin.outputs.layout import Chart, InvoiceDocuments, SheetLayout, Style, user_list_name
from perseat_addin.outputs.logo import Logo
from perseat_addin.outputs.tablebook import DATE, MONEY, Column, Table, write_tables

if TYPE_CHECKING:
    import xlsxwriter  # imported where a sheet is drawn: a large run never needs it (start-up time)

# ---------------------------------------------------------------------------
# invoices.xlsx

PRINTABLE_SHEETS = 250
"""The most invoices whose printable sheets invoices.xlsx carries. A tab per invoice helps the billing staff of
an MSP with tens or a few hundred clients (each invoice a click from its Register row); past that, a workbook
of a thousand tabs is slow to write, slow to open and cannot be navigated, and the per-invoice documents are
the PDFs (``--pdf``, or Excel's own on the ribbon). The Register and Lines sheets always hold every invoice."""


def has_printable_sheets(run: Run) -> bool:
    """Whether :func:`invoices_xlsx` draws a printable sheet per invoice for ``run`` (≤ :data:`PRINTABLE_SHEETS`)."""
    return len(run.invoices) <= PRINTABLE_SHEETS


def _sheet_name(number: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", number)[:31] or "Invoice"
    name, k = base, 2
    while name.lower() in used:
        name = f"{base[:27]}~{k}"
        k += 1
    used.add(name.lower())
    return name


def write_layout(wb: xlsxwriter.Workbook, layout: SheetLayout, formats: dict[Style, Any]) -> None:
    """Draw a :class:`~.layout.SheetLayout` with XlsxWriter (the ribbon draws the same layout in Excel)."""
    ws = wb.add_worksheet(layout.name)
    if not layout.gridlines:
        ws.hide_gridlines(2)
    for col, width in layout.widths:
        ws.set_column(col - 1, col - 1, width)
    for row, height in layout.heights:
        ws.set_row(row - 1, height)
    ws.set_paper(9 if layout.paper == "a4" else 1)
    if layout.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    if layout.freeze:
        ws.freeze_panes(*layout.freeze)
    left, right, top, bottom = layout.margins
    ws.set_margins(left=left, right=right, top=top, bottom=bottom)
    if layout.fit_width:
        ws.fit_to_pages(layout.fit_width, 0)
    if layout.repeat_rows:
        ws.repeat_rows(layout.repeat_rows[0] - 1, layout.repeat_rows[1] - 1)
    if layout.row_breaks:
        ws.set_h_pagebreaks([r - 1 for r in layout.row_breaks])
    if layout.column_breaks:
        ws.set_v_pagebreaks([c - 1 for c in layout.column_breaks])
    size = f"&{layout.footer_size}"
    if layout.footer_left or layout.footer_right:
        ws.set_footer(f"&L{size}{layout.footer_left}&R{size}{layout.footer_right}")
    r0, c0, r1, c1 = layout.print_area
    ws.print_area(r0 - 1, c0 - 1, r1 - 1, c1 - 1)
    for cell in layout.cells:
        fmt = formats.get(cell.style)
        if fmt is None:
            fmt = formats[cell.style] = wb.add_format(_format_props(cell.style))
        value = cell.value
        if isinstance(value, str):
            if value.startswith("'"):
                value = value[1:]  # the apostrophe that tells Excel "this is text"; XlsxWriter writes text as text
            value = formula_safe(value)
        r, c = cell.row - 1, cell.col - 1
        if cell.to is not None:
            ws.merge_range(r, c, cell.to[0] - 1, cell.to[1] - 1, "", fmt)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            ws.write_datetime(r, c, value, fmt)
        elif isinstance(value, str):
            ws.write_string(r, c, value, fmt)
        else:
            ws.write(r, c, value, fmt)
    for chart in layout.charts:
        _draw_chart(wb, ws, layout.name, chart)
    for pic in layout.pictures:
        ws.insert_image(pic.row - 1, pic.col - 1, Path(pic.path).name, {
            "image_data": io.BytesIO(pic.data), "x_scale": pic.scale, "y_scale": pic.scale,
            "x_offset": round(pic.offset[0] * 4 / 3), "y_offset": round(pic.offset[1] * 4 / 3),
            "object_position": 3, "description": "Logo"})  # 3: stays its size when columns or rows change


def _ref(sheet: str, block: tuple[int, int, int, int]) -> list[Any]:
    r0, c0, r1, c1 = block
    return [sheet, r0 - 1, c0 - 1, r1 - 1, c1 - 1]


def _draw_chart(wb: xlsxwriter.Workbook, ws: Any, sheet: str, spec: Chart) -> None:
    """A native chart with XlsxWriter (the ribbon draws the same chart in Excel)."""
    sub = {"column": {"type": "column"}, "line": {"type": "line"},
           "scatter": {"type": "scatter"}}[spec.kind]
    chart = wb.add_chart(sub)
    extra: dict[str, Any] = {}
    for s in spec.series:
        name = chart_text(s.name) if isinstance(s.name, str) else s.name
        props: dict[str, Any] = {"name": name, "categories": _ref(sheet, s.categories),
                                 "values": _ref(sheet, s.values)}
        if s.color:
            key = "marker" if spec.kind == "scatter" else "line" if (s.kind or spec.kind) == "line" else "fill"
            props[key] = ({"type": "circle", "size": 7, "fill": {"color": s.color}, "border": {"color": s.color}}
                          if key == "marker" else {"color": s.color, "width": 2.25} if key == "line"
                          else {"color": s.color})
        if s.secondary:
            props["y2_axis"] = True
        if s.labels is not None:
            r0, c0, r1, _ = s.labels
            props["data_labels"] = {"custom": [{"value": f"='{sheet}'!${_col(c0)}${r}"} for r in range(r0, r1 + 1)],
                                    "position": "right", "font": {"size": 8}}
        if s.kind and s.kind != spec.kind:
            other = extra.get(s.kind)
            if other is None:
                other = extra[s.kind] = wb.add_chart({"type": s.kind})
            other.add_series(props)
        else:
            chart.add_series(props)
    for other in extra.values():
        chart.combine(other)
    chart.set_title({"name": chart_text(spec.title), "name_font": {"size": 12}})
    chart.set_x_axis({"name": chart_text(spec.x_title), "num_font": {"size": 8}})
    chart.set_y_axis({"name": chart_text(spec.y_title), "num_format": spec.y_format,
                      "major_gridlines": {"visible": True}})
    if spec.y2_title:
        chart.set_y2_axis({"name": chart_text(spec.y2_title)})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": spec.size[0], "height": spec.size[1]})
    ws.insert_chart(spec.anchor[0] - 1, spec.anchor[1] - 1, chart)


_LOOKS_LIKE_REF = re.compile(r"^=?[^!]+!\$?[A-Z]+\$?\d+")
"""What XlsxWriter takes for a cell reference in a chart name (with or without a leading =)."""


def chart_text(text: str) -> str:
    """A chart name or title as a literal, never a formula or a reference: neutralised like a cell, and a '!'
    that would make it read as Sheet!A1 replaced by its look-alike 'ǃ'."""
    text = formula_safe(text)
    return text.replace("!", "\u01c3") if _LOOKS_LIKE_REF.match(text) else text


def _col(c: int) -> str:
    return col_letter(c - 1)


def _format_props(style: Style) -> dict[str, Any]:
    props: dict[str, Any] = {"font_name": "Calibri"}
    if style.bold:
        props["bold"] = True
    if style.size:
        props["font_size"] = style.size
    if style.color:
        props["font_color"] = style.color
    if style.fill:
        props["bg_color"] = style.fill
        props["pattern"] = 1
    if style.number_format:
        props["num_format"] = style.number_format
    if style.align:
        props["align"] = style.align
    if style.valign:
        props["valign"] = "vcenter" if style.valign == "center" else style.valign
    if style.wrap:
        props["text_wrap"] = True
    weights = {"thin": 1, "medium": 2}
    if style.top:
        props["top"] = weights.get(style.top, 1)
    if style.bottom:
        props["bottom"] = weights.get(style.bottom, 1)
    if style.border_color and (style.top or style.bottom):
        props["top_color" if style.top else "bottom_color"] = style.border_color
        if style.top and style.bottom:
            props["bottom_color"] = style.border_color
    return props


REGISTER = Table("Register", (
    Column("InvoiceNo", 12, total="Total"), Column("Client", 28), Column("Period", 11),
    Column("IssueDate", 11, cells="date"), Column("DueDate", 11, cells="date"), Column("Seats", 11),
    *(Column(h, 13, style="money", cells="money", total="sum") for h in ("Subtotal", "Discount", "Tax", "Total")),
    Column("Status", 9), Column("Currency", 9), Column("BillingEmail", 30), Column("Sheet")),
    "TableStyleMedium2", totals=True)
"""The Register sheet: one row per invoice (Sheet links to its printable sheet, when there is one)."""

LINES = Table("Lines", (
    Column("InvoiceNo", 12), Column("Client", 26), Column("Line"), Column("Kind"), Column("Description", 70),
    Column("Quantity"), Column("UnitPrice", 12, style="money", cells="money"),
    Column("Amount", 12, style="money", cells="money"),
    Column("Taxable")),
    "TableStyleLight9")
"""The Lines sheet: every line of every invoice."""


def _register_rows(run: Run) -> Iterator[list[Any]]:
    """The Register's cells of each invoice, but its Sheet."""
    for inv in run.invoices:
        yield [formula_safe(inv.number), formula_safe(inv.client.name), str(inv.period), inv.issue_date,
               inv.due_date, inv.seats, *(c / 100 for c in (  # the double nearest the amount, as Decimal gives
                   inv.subtotal_cents, inv.discount_cents, inv.tax_cents, inv.total_cents)),
               formula_safe(inv.status), inv.currency, formula_safe(inv.client.billing_email)]


def _lines_rows(run: Run) -> Iterator[list[Any]]:
    """The Lines' cells of each line of each invoice."""
    for inv in run.invoices:
        number, client = formula_safe(inv.number), formula_safe(inv.client.name)
        for k, ln in enumerate(inv.lines, start=1):
            yield [number, client, k, str(ln.kind), formula_safe(ln.description), float(ln.quantity),
                   float(ln.unit_price), float(ln.amount), "Yes" if ln.taxable else "No"]


def invoices_xlsx(run: Run, path: Path, progress: Callable[[int], None] | None = None,
                  logo: Logo | None = None) -> None:
    """Register and Lines of every invoice, and one printable sheet per invoice when the run has at most
    :data:`PRINTABLE_SHEETS` (the Register's Sheet column links each to its sheet).

    Without printable sheets the two tables are written straight as SpreadsheetML
    (:mod:`~perseat_addin.outputs.tablebook`, a fraction of XlsxWriter's cost per cell); with them the
    package is assembled by XlsxWriter in memory and written to ``path`` in one go."""
    title = f"Invoices {run.period}"
    if not has_printable_sheets(run):
        write_tables(path, [(REGISTER, _register_rows(run)), (LINES, _lines_rows(run))], title, "perseat-addin")
        return
    import xlsxwriter

    package = io.BytesIO()
    wb = xlsxwriter.Workbook(package, {"strings_to_formulas": False, "strings_to_urls": False,
                                       "strings_to_numbers": False, "in_memory": True})
    wb.set_properties({"title": title, "author": "perseat-addin"})
    formats = {"": None, "money": wb.add_format({"num_format": MONEY}), "date": wb.add_format({"num_format": DATE})}
    used: set[str] = {"register", "lines"}
    sheet_names = [_sheet_name(i.number, used) for i in run.invoices]
    docs = InvoiceDocuments(run, logo)
    list_names = [_sheet_name(user_list_name(i.number), used) if docs.user_list(i) else "" for i in run.invoices]
    for table, rows in ((REGISTER, _register_rows(run)), (LINES, _lines_rows(run))):
        ws = wb.add_worksheet(table.name)
        cols = table.columns
        cell_formats = [formats[c.cells] for c in cols]
        text, number, date = ws.write_string, ws.write_number, ws.write_datetime  # typed: no guessing per cell
        n = 0
        for n, row in enumerate(rows, start=1):
            for k, value in enumerate(row):
                write = text if isinstance(value, str) else date if isinstance(value, dt.date) else number
                write(n, k, value, cell_formats[k])
            if table is REGISTER:
                name = sheet_names[n - 1]
                ws.write_url(n, len(row), f"internal:'{name}'!A1", string=name)
        spec: list[dict[str, Any]] = []
        for c in cols:
            col: dict[str, Any] = {"header": c.header}
            if c.total == "sum":
                col |= {"total_function": "sum", "format": formats[c.cells]}
            elif c.total:
                col["total_string"] = c.total
            spec.append(col)
        ws.add_table(0, 0, max(n, 1) + (1 if table.totals else 0), len(cols) - 1,
                     {"name": table.name, "columns": spec, "total_row": table.totals, "style": table.style})
        for k, c in enumerate(cols):
            if c.width is not None or c.style:
                ws.set_column(k, k, c.width, formats[c.style])
        ws.freeze_panes(1, 0)
    styles: dict[Style, Any] = {}
    for name, list_name, inv in zip(sheet_names, list_names, run.invoices, strict=True):
        for layout in docs.sheets(inv, name, list_name):
            write_layout(wb, layout, styles)
        if progress:
            progress(1)
    wb.close()
    path.write_bytes(package.getbuffer())


def single_invoice_xlsx(docs: InvoiceDocuments, inv: Invoice, path: Path) -> None:
    """A workbook holding only one invoice's sheets: the invoice and its user list page (the source of its PDF)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    used: set[str] = set()
    name = _sheet_name(inv.number, used)
    styles: dict[Style, Any] = {}
    for layout in docs.sheets(inv, name, _sheet_name(user_list_name(inv.number), used)):
        write_layout(wb, layout, styles)
    wb.close()


# ---------------------------------------------------------------------------
# Writing a run's files atomically


