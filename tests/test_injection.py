"""Chart names and titles are literals: no user text becomes a formula or a cell reference in a chart."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import xlsxwriter

from perseat_addin.outputs.layout import Cell, Chart, Series, SheetLayout
from perseat_addin.outputs.xlsx import chart_text, write_layout

EVIL = ("+cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\",\"y\")", "@SUM(1)", "Sheet1!$A$1", "-2+3")


def test_chart_names_and_titles_stay_literal(tmp_path: Path) -> None:
    path = tmp_path / "chart.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    cells = tuple(Cell(r, 1, v) for r, v in enumerate((*EVIL, "x"), start=1))
    series = tuple(Series(name, (1, 2, 5, 2), (1, 3, 5, 3)) for name in EVIL)
    write_layout(wb, SheetLayout("R", cells, charts=(Chart("column", EVIL[0], (8, 1), series,
                                                           x_title=EVIL[1], y_title=EVIL[3]),)), {})
    wb.close()
    with zipfile.ZipFile(path) as z:
        chart = z.read("xl/charts/chart1.xml").decode()
        sheet = z.read("xl/worksheets/sheet1.xml").decode() + z.read("xl/sharedStrings.xml").decode()
    refs = re.findall(r"<c:f>([^<]*)</c:f>", chart)
    assert refs and all(re.fullmatch(r"'R'!\$[A-Z]+\$\d+(:\$[A-Z]+\$\d+)?", f) for f in refs), refs
    for text in EVIL:
        assert f"<c:v>{text}</c:v>" not in chart and f"<a:t>{text}</a:t>" not in chart
        assert chart_text(text).startswith(("'", "Sheet1ǃ")), text
    assert "<t>'+cmd|' /C calc'!A0</t>" in sheet and "<t>'@SUM(1)</t>" in sheet  # cells neutralised too
