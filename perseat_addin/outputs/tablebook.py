"""A workbook of plain Excel tables written straight as SpreadsheetML: invoices.xlsx for a run too large for
printable sheets (its Register and Lines only), at a small part of a general writer's cost per cell.

The package holds what Excel itself needs and no more: workbook, one worksheet and one table part per
table, styles (General, money and date cells), shared strings and the document properties. Text is
stored as Excel stores it (control characters and literal ``_xHHHH_`` escaped, at most 32,767 characters);
each table's totals row carries SUBTOTAL formulas that Excel computes on opening.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perseat_addin.cells import col_letter, xml_escape

MONEY = "#,##0.00;[Red]-#,##0.00"
DATE = "yyyy-mm-dd"
_STYLE = {"": 0, "money": 1, "date": 2}
"""Cell style index of each kind of cell (the order of ``cellXfs`` in styles.xml)."""


@dataclass(frozen=True)
class Column:
    """A table column: its header, width in characters (None: Excel's default), the style of the whole column
    (``""``, ``"money"`` or ``"date"``; its header cell takes it too), the style of its data cells, and on
    the totals row a ``"sum"`` or a label."""

    header: str
    width: float | None = None
    style: str = ""
    cells: str = ""
    total: str | None = None


@dataclass(frozen=True)
class Table:
    """A sheet holding one Excel table, named like the sheet, frozen below its header row."""

    name: str
    columns: tuple[Column, ...]
    style: str  # a built-in table style, e.g. "TableStyleMedium2"
    totals: bool = False


_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument."
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_EPOCH = dt.date(1899, 12, 30)
_ESCAPED = re.compile(r"_(?=x[0-9a-fA-F]{4}[\x00-\x08\x0b-\x1f_])")
"""The underscore of text that would read as an escape once written: ``_xHHHH`` followed by an underscore, or
by a control character (written as ``_xHHHH_``, whose underscore would close it)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f&<>]|_x[0-9a-fA-F]{4}[\x00-\x08\x0b-\x1f_]")
_EDGE_SPACE = re.compile(r"^\s|\s$")
_MAX_TEXT = 32767


def excel_width(chars: float) -> float:
    """A column width as Excel stores it for ``chars`` characters of Calibri 11 (digit 7 px, padding 5 px)."""
    pixels = int(chars * 7 + 0.5) + 5 if chars >= 1 else int(chars * 12 + 0.5)
    return (pixels * 256 // 7) / 256.0


def serial(day: dt.date) -> int:
    """A date as an Excel serial number (1900 date system; a datetime's time of day is not kept)."""
    if isinstance(day, dt.datetime):
        day = day.date()
    n = (day - _EPOCH).days
    return n - 1 if day < dt.date(1900, 3, 1) else n  # Excel's day 60 is a 29 February 1900 that never was


def _text(value: str) -> str:
    """Text as Excel stores it in a shared string: at most 32,767 UTF-16 units, a literal ``_xHHHH_`` and
    control characters escaped, XML special characters escaped."""
    if len(value) > _MAX_TEXT // 2 and len(value.encode("utf-16-le")) > 2 * _MAX_TEXT:
        value = value.encode("utf-16-le")[:2 * _MAX_TEXT].decode("utf-16-le", errors="ignore")
    if not _NEEDS_WORK.search(value):
        return value
    value = _ESCAPED.sub("_x005F_", value)
    value = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", value)
    return xml_escape(value)


class _Strings:
    """The shared string table."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.count = 0

    def __call__(self, value: str) -> int:
        self.count += 1
        i = self.index.get(value)
        if i is None:
            i = self.index[value] = len(self.index)
        return i

    def xml(self) -> str:
        items = []
        for value in self.index:
            space = ' xml:space="preserve"' if _EDGE_SPACE.search(value) else ""
            items.append(f"<si><t{space}>{_text(value)}</t></si>")
        return (f'{_HEAD}<sst xmlns="{_NS}" count="{self.count}" uniqueCount="{len(self.index)}">'
                + "".join(items) + "</sst>")


def _sheet(table: Table, rows: Iterable[Sequence[Any]], strings: _Strings, first: bool) -> tuple[str, int]:
    """The worksheet XML of ``table`` and its number of data rows."""
    cols = table.columns
    letters = [col_letter(k) for k in range(len(cols))]
    kinds = [f' s="{_STYLE[c.cells]}"' if c.cells else "" for c in cols]
    parts = ["<row r=\"1\">"]
    for k, c in enumerate(cols):
        style = f' s="{_STYLE[c.style]}"' if c.style else ""
        parts.append(f'<c r="{letters[k]}1"{style} t="s"><v>{strings(c.header)}</v></c>')
    parts.append("</row>")
    opens = [f'<c r="{letter}' for letter in letters]
    texts = [f'"{kind} t="s"><v>' for kind in kinds]
    numbers = [f'"{kind}><v>' for kind in kinds]
    index = strings.index
    n = count = 0
    for n, row in enumerate(rows, start=1):  # the cost of a large run: kept to plain string building
        r = str(n + 1)
        parts.append(f'<row r="{r}">')
        for k, value in enumerate(row):
            kind = type(value)
            if kind is str:
                if value:
                    i = index.get(value)
                    if i is None:
                        i = index[value] = len(index)
                    count += 1
                    parts.append(f"{opens[k]}{r}{texts[k]}{i}</v></c>")
            elif kind is float or kind is int:
                parts.append(f"{opens[k]}{r}{numbers[k]}{value:.16G}</v></c>")
            elif isinstance(value, dt.date):
                parts.append(f"{opens[k]}{r}{numbers[k]}{serial(value)}</v></c>")
            elif value is not None:
                parts.append(f"{opens[k]}{r}{numbers[k]}{value:.16G}</v></c>")
        parts.append("</row>")
    strings.count += count
    last = max(n, 1) + 1  # an empty table keeps one blank data row
    if table.totals:
        t = str(last + 1)
        parts.append(f'<row r="{t}">')
        for k, c in enumerate(cols):
            style = f' s="{_STYLE[c.cells]}"' if c.cells else ""
            if c.total == "sum":
                parts.append(f'<c r="{letters[k]}{t}"{style}><f>SUBTOTAL(109,[{_text(c.header)}])</f><v>0</v></c>')
            elif c.total:
                parts.append(f'<c r="{letters[k]}{t}" t="s"><v>{strings(c.total)}</v></c>')
        parts.append("</row>")
        last += 1
    widths = []
    for k, c in enumerate(cols):
        if c.width is not None or c.style:
            width = excel_width(c.width if c.width is not None else 8.43)
            style = f' style="{_STYLE[c.style]}"' if c.style else ""
            custom = ' customWidth="1"' if c.width is not None else ""
            widths.append(f'<col min="{k + 1}" max="{k + 1}" width="{width:.16g}"{style}{custom}/>')
    selected = ' tabSelected="1"' if first else ""
    xml = (f'{_HEAD}<worksheet xmlns="{_NS}" xmlns:r="{_R}"><dimension ref="A1:{letters[-1]}{last}"/>'
           f'<sheetViews><sheetView{selected} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
           'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>'
           '<sheetFormatPr defaultRowHeight="15"/>' + (f"<cols>{''.join(widths)}</cols>" if widths else "")
           + f"<sheetData>{''.join(parts)}</sheetData>"
           '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
           '<tableParts count="1"><tablePart r:id="rId1"/></tableParts></worksheet>')
    return xml, n


def _table(table: Table, index: int, rows: int) -> str:
    cols = table.columns
    last = max(rows, 1) + 1
    end = col_letter(len(cols) - 1)
    ref = f"A1:{end}{last + 1 if table.totals else last}"
    items = []
    for k, c in enumerate(cols, start=1):
        extra = ""
        if c.total == "sum":
            extra = ' totalsRowFunction="sum"'
        elif c.total:
            extra = f' totalsRowLabel="{xml_escape(c.total, quote=True)}"'
        if c.total == "sum" and c.cells == "money":  # a summed money column: the table's own money format
            extra += ' dataDxfId="0"'
        items.append(f'<tableColumn id="{k}" name="{xml_escape(c.header, quote=True)}"{extra}/>')
    totals = ' totalsRowCount="1"' if table.totals else ""
    return (f'{_HEAD}<table xmlns="{_NS}" id="{index}" name="{table.name}" displayName="{table.name}" ref="{ref}"'
            f'{totals}><autoFilter ref="A1:{end}{last}"/><tableColumns count="{len(cols)}">{"".join(items)}'
            f'</tableColumns><tableStyleInfo name="{table.style}" showFirstColumn="0" showLastColumn="0" '
            'showRowStripes="1" showColumnStripes="0"/></table>')


_STYLES = (
    f'{_HEAD}<styleSheet xmlns="{_NS}"><numFmts count="2"><numFmt numFmtId="164" formatCode="{MONEY}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATE}"/></numFmts><fonts count="1"><font><sz val="11"/>'
    '<name val="Calibri"/><family val="2"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/>'
    '</fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/>'
    '<top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" '
    'fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" '
    'borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" '
    'applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" '
    'applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    f'</cellStyles><dxfs count="1"><dxf><numFmt numFmtId="164" formatCode="{MONEY}"/></dxf></dxfs>'
    '<tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
    '</styleSheet>')


def write_tables(path: Path, tables: Sequence[tuple[Table, Iterable[Sequence[Any]]]], title: str,
                 author: str) -> None:
    """Write ``tables`` (each with its data rows: text, numbers, dates or None) as the sheets of a workbook."""
    strings = _Strings()
    sheets = []
    for i, (table, rows) in enumerate(tables, start=1):
        xml, n = _sheet(table, rows, strings, first=i == 1)
        sheets.append((table, xml, _table(table, i, n)))
    k = len(sheets)
    ws = f"{_CT}spreadsheetml.worksheet+xml"
    types = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ws}"/>'
                    f'<Override PartName="/xl/tables/table{i}.xml" ContentType="{_CT}spreadsheetml.table+xml"/>'
                    for i in range(1, k + 1))
    content_types = (
        f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{_CT}extended-properties+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}spreadsheetml.styles+xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}spreadsheetml.sheet.main+xml"/>{types}'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}spreadsheetml.sharedStrings+xml"/></Types>')
    package_rels = (
        f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
        'core-properties" Target="docProps/core.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/></Relationships>')
    names = "".join(f'<sheet name="{xml_escape(t.name)}" sheetId="{i}" r:id="rId{i}"/>'
                    for i, (t, _, _) in enumerate(sheets, start=1))
    workbook = (f'{_HEAD}<workbook xmlns="{_NS}" xmlns:r="{_R}"><bookViews><workbookView/></bookViews>'
                f'<sheets>{names}</sheets><calcPr calcId="191029" fullCalcOnLoad="1"/></workbook>')
    workbook_rels = (
        f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                  for i in range(1, k + 1))
        + f'<Relationship Id="rId{k + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId{k + 2}" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    core = (f'{_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
            'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{_text(title)}</dc:title><dc:creator>{_text(author)}</dc:creator>"
            f"<cp:lastModifiedBy>{_text(author)}</cp:lastModifiedBy>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified></cp:coreProperties>')
    app = ('<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
           'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
           "<Application>Microsoft Excel</Application></Properties>")
    parts = [("[Content_Types].xml", content_types), ("_rels/.rels", package_rels),
             ("docProps/app.xml", _HEAD + app), ("docProps/core.xml", core), ("xl/workbook.xml", workbook),
             ("xl/_rels/workbook.xml.rels", workbook_rels), ("xl/styles.xml", _STYLES)]
    rel_table = (f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 f'<Relationship Id="rId1" Type="{_REL}/table" Target="../tables/table{{}}.xml"/></Relationships>')
    for i, (_, sheet_xml, table_xml) in enumerate(sheets, start=1):
        parts += [(f"xl/worksheets/sheet{i}.xml", sheet_xml),
                  (f"xl/worksheets/_rels/sheet{i}.xml.rels", rel_table.format(i)),
                  (f"xl/tables/table{i}.xml", table_xml)]
    parts.append(("xl/sharedStrings.xml", strings.xml()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:  # fast; ~25% larger than 6
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))
