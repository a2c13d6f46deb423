"""Control packages: workbooks made by XlsxWriter, whose comparison tests check its output part by part
against files Excel saved, so each stands for a file Excel itself writes. A validator must be silent on
them (after its documented filters); ``QUIRKS`` are the three that Microsoft's Open XML SDK reports on,
as it does on the Excel-made files they copy (README.md, "Open XML SDK").
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import xlsxwriter

SALES_TOTAL = "Sales[[#This Row],[Units]]*Sales[[#This Row],[Price]]"


def xlsxwriter_book(path: Path) -> bytes:
    """A workbook XlsxWriter writes the way Excel does (its comparison tests check its output part by part
    against files Excel saved): tables with a calculated column and a totals row, an array formula, a
    chart, shared strings with leading and trailing spaces, a rich string, an internal hyperlink."""
    wb = xlsxwriter.Workbook(str(path))
    data = wb.add_worksheet("Data")
    data.write_row("A1", ["Region", "Units", "Price", "Total"])
    for i, (region, units, price) in enumerate([(" North ", 3, 2.5), ("South", 4, 1.5), ("East", 5, 3)]):
        data.write_row(i + 1, 0, [region, units, price])
    data.add_table("A1:D5", {"name": "Sales", "total_row": True, "columns": [
        {"header": "Region", "total_string": "Total"}, {"header": "Units", "total_function": "sum"},
        {"header": "Price", "total_function": "average"}, {"header": "Total", "formula": SALES_TOTAL,
                                                           "total_function": "sum"}]})
    data.add_table("F1:G3", {"name": "Costs", "data": [["rent", 1], ["power", 2]],
                             "columns": [{"header": "Item"}, {"header": "Cost"}]})
    data.write_array_formula("I1:I3", "{=B2:B4*C2:C4}")
    wb.define_name("Rate", "=Data!$C$2")
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"values": "=Data!$B$2:$B$4", "categories": "=Data!$A$2:$A$4", "name": "Units"})
    line = wb.add_chart({"type": "line"})
    line.add_series({"values": "=Data!$C$2:$C$4"})
    chart.combine(line)
    data.insert_chart("K2", chart)
    notes = wb.add_worksheet("Notes")
    notes.add_table("A1:B2", {"name": "Memo", "data": [["a", "b"]], "columns": [{"header": "Key"}, {"header": "Text"}]})
    notes.write_url("D1", "internal:Data!A1", string="to the data")
    notes.write_rich_string("D2", "plain ", wb.add_format({"bold": True}), "bold", " tail ")
    notes.merge_range("D4:E5", "merged", None)
    wb.close()
    return path.read_bytes()


def _png() -> bytes:
    """A 4×4 red PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b""))


CHART_KINDS = (("column", ""), ("bar", "stacked"), ("line", ""), ("pie", ""), ("doughnut", ""),
               ("scatter", "straight_with_markers"), ("area", "stacked"), ("radar", ""), ("stock", ""))


def feature_book(path: Path) -> bytes:
    """Most of what a workbook holds, as XlsxWriter writes it like Excel: a table with a calculated column,
    a totals row and a style; data validation of every kind (lists, numbers, dates, lengths, a formula, a
    defined name); defined names (global, sheet-local, an array constant, print area and titles);
    conditional formats (a cell rule, a formula, a colour scale, a data bar with its x14 extension); a
    sparkline; array and dynamic array formulas (metadata part); a comment; an image; charts of every
    kind, a combined chart with a secondary axis, a chartsheet; hyperlinks; a rich string; merged cells;
    header and footer; outline; a text box; a checkbox (feature property bag); a hidden sheet; sheet
    protection; custom document properties."""
    wb = xlsxwriter.Workbook(str(path))
    money = wb.add_format({"num_format": "#,##0.00", "bold": True})
    ws = wb.add_worksheet("Data")
    ws.write_row("A1", ["Region", "Units", "Price", "Total", "Taxable"])
    for i, (region, units, price) in enumerate([("North", 3, 2.5), ("South", 4, 1.5), ("East", 5, 3)]):
        ws.write_row(i + 1, 0, [region, units, price])
        ws.write(i + 1, 4, "Yes")
    ws.add_table("A1:E5", {"name": "Sales", "total_row": True, "style": "Table Style Medium 2", "columns": [
        {"header": "Region", "total_string": "Total"}, {"header": "Units", "total_function": "sum"},
        {"header": "Price", "total_function": "average", "format": money},
        {"header": "Total", "formula": "=[@Units]*[@Price]", "total_function": "sum"}, {"header": "Taxable"}]})
    ws.data_validation("E2:E4", {"validate": "list", "source": ["Yes", "No"], "input_title": "Taxable",
                                 "input_message": "Yes or No", "error_title": "Taxable",
                                 "error_message": "Choose Yes or No"})
    ws.data_validation("B2:B4", {"validate": "integer", "criteria": ">=", "value": 0})
    ws.data_validation("C2:C4", {"validate": "decimal", "criteria": "between", "minimum": 0, "maximum": 1e6})
    ws.data_validation("H2", {"validate": "date", "criteria": ">", "value": dt.date(2025, 1, 1)})
    ws.data_validation("H3", {"validate": "list", "source": "=Choices"})
    ws.data_validation("H4", {"validate": "length", "criteria": "<=", "value": 31})
    ws.data_validation("H5", {"validate": "custom", "value": "=ISNUMBER(H5)"})
    ws.conditional_format("B2:B4", {"type": "cell", "criteria": ">", "value": 3, "format": money})
    ws.conditional_format("A2:A4", {"type": "formula", "criteria": '=$E2="No"', "format": money})
    ws.conditional_format("D2:D4", {"type": "3_color_scale"})
    ws.conditional_format("C2:C4", {"type": "data_bar"})
    ws.add_sparkline("F2", {"range": "Data!B2:C2"})
    ws.freeze_panes(1, 0)
    ws.write_array_formula("J1:J3", "{=B2:B4*C2:C4}")
    ws.write_formula("K1", "=SUM(Sales[Total])")
    ws.write_dynamic_array_formula("L1:L3", "=SORT(B2:B4)")
    ws.write_comment("A1", "a note")
    ws.insert_image("N20", "dot.png", {"image_data": io.BytesIO(_png())})
    ws.write_row("P1", ["Key", "Value"])
    ws.write_row("P2", ["a", 1])
    ws.write_row("P3", ["b", 2])
    ws.autofilter("P1:Q3")
    ws.write_column("R1", ["Yes", "No"])
    ws.set_column("A:A", 20)
    ws.print_area("A1:E5")
    ws.repeat_rows(0)
    ws.protect()
    wb.define_name("Rate", "=Data!$C$2")
    wb.define_name("Choices", "=Data!$R$1:$R$2")
    wb.define_name("Data!LocalRate", "=Data!$C$3")
    wb.define_name("Flags", '={"Yes","No"}')
    for n, (kind, subtype) in enumerate(CHART_KINDS):
        chart = wb.add_chart({"type": kind, "subtype": subtype} if subtype else {"type": kind})
        for k in range(3 if kind == "stock" else 1):
            column = "BCD"[k]
            chart.add_series({"name": "=Data!$B$1", "categories": "=Data!$A$2:$A$4",
                              "values": f"=Data!${column}$2:${column}$4",
                              "data_labels": {"value": True} if kind == "column" else None,
                              "marker": {"type": "circle"} if kind == "line" else None,
                              "trendline": {"type": "linear"} if kind == "scatter" else None})
        chart.set_title({"name": f"{kind} chart"})
        if kind == "line":
            chart.set_x_axis({"date_axis": True})
            second = wb.add_chart({"type": "column"})
            second.add_series({"values": "=Data!$C$2:$C$4", "y2_axis": True})
            chart.combine(second)
        ws.insert_chart(f"T{2 + 16 * n}", chart)
    sheet_chart = wb.add_chart({"type": "column"})
    sheet_chart.add_series({"values": "=Data!$B$2:$B$4"})
    wb.add_chartsheet("Chart").set_chart(sheet_chart)
    notes = wb.add_worksheet("Notes")
    notes.write_url("D1", "internal:Data!A1", string="to the data")
    notes.write_url("D2", "https://example.com/a?b=c", string="out")
    notes.write_rich_string("D3", "plain ", wb.add_format({"bold": True}), "bold", " tail ")
    notes.merge_range("D4:E5", "merged", None)
    notes.write("D6", " spaced ")
    notes.write_boolean("D7", True)
    notes.write_formula("D8", "=1/0")
    notes.set_header("&LLeft&CCenter&RRight")
    notes.set_footer("&CPage &P of &N")
    notes.set_landscape()
    notes.fit_to_pages(1, 0)
    notes.set_row(9, 30, None, {"level": 1, "hidden": True})
    notes.insert_textbox("G2", "a text box")
    notes.insert_checkbox("A12", True)
    notes.ignore_errors({"number_stored_as_text": "A1:A3"})
    hidden = wb.add_worksheet("Hidden")
    hidden.write("A1", 1)
    hidden.hide()
    wb.set_properties({"title": "Control", "author": "tests", "company": "tests"})
    wb.set_custom_property("Checked", True)
    wb.close()
    return path.read_bytes()


def stock_chart_book(path: Path) -> bytes:
    """A stock chart of three series, one on a secondary axis: two stock charts of 2 and 1 series, as
    Excel saves it (XlsxWriter's test chart_stock02 against the Excel-made chart_stock02.xlsx)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    day = wb.add_format({"num_format": 14})
    for r, (date, high, low, close) in enumerate([(45658, 27.2, 23.49, 25.45), (45659, 25.03, 19.55, 23.05),
                                                  (45660, 19.05, 15.12, 17.32)]):
        ws.write(r, 0, date, day)
        ws.write_row(r, 1, [high, low, close])
    chart = wb.add_chart({"type": "stock"})
    for column in "BC":
        chart.add_series({"categories": "=Sheet1!$A$1:$A$3", "values": f"=Sheet1!${column}$1:${column}$3"})
    chart.add_series({"categories": "=Sheet1!$A$1:$A$3", "values": "=Sheet1!$D$1:$D$3", "y2_axis": True})
    ws.insert_chart("F2", chart)
    wb.close()
    return path.read_bytes()


def page_breaks_book(path: Path) -> bytes:
    """The most manual row breaks Excel saves, 1,023 (XlsxWriter's test page_breaks03 against the
    Excel-made page_breaks03.xlsx; XlsxWriter keeps the first 1,023 of those asked for)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.set_h_pagebreaks(list(range(1, 1100)))
    ws.write("A1", "Foo")
    wb.close()
    return path.read_bytes()


def na_as_empty_book(path: Path) -> bytes:
    """A line chart that shows #N/A as an empty cell (Excel 2016's c16r3 chart extension; XlsxWriter's
    test chart_blank07 against the Excel-made chart_blank07.xlsx)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_column("A1", [1, 2, 3, 4, 5])
    chart = wb.add_chart({"type": "line"})
    chart.add_series({"values": "=Sheet1!$A$1:$A$5"})
    chart.show_na_as_empty_cell()
    ws.insert_chart("E9", chart)
    wb.close()
    return path.read_bytes()


QUIRKS: dict[str, Callable[[Path], bytes]] = {
    "stock chart of fewer than 3 series": stock_chart_book,
    "1,023 row breaks": page_breaks_book,
    "#N/A shown as an empty cell": na_as_empty_book,
}
