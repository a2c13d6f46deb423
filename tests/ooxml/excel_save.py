"""A workbook transformed the way Excel leaves it after a user edits and saves it.

Excel's save turns inline strings into shared strings, writes ``xl/calcChain.xml`` (listing every formula
cell, with its relationship and content type), writes runs of equal formulas as shared formulas, and
marks its extension attributes (x14ac, xr, xr2, xr3) ignorable. ``as_excel_saves`` does the same to a
package written by the product, and can add a calculated column to a table first, as a user would
(type ``=[@Total]*2`` in the first empty column beside the table; Excel stores
``Table[[#This Row],[Total]]*2`` in the table part and in every data cell).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from .package import CT_NS, PR_NS, rels_part
from .text import col_letters, parse_cell, parse_range

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
M = f"{{{NS}}}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
X14AC = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"
XR = "http://schemas.microsoft.com/office/spreadsheetml/2014/revision"
XR2 = "http://schemas.microsoft.com/office/spreadsheetml/2015/revision2"
XR3 = "http://schemas.microsoft.com/office/spreadsheetml/2016/revision3"
XR6 = "http://schemas.microsoft.com/office/spreadsheetml/2016/revision6"
X15 = "http://schemas.microsoft.com/office/spreadsheetml/2010/11/main"
X15AC = "http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac"
RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
CALC_CHAIN_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True)
class CalculatedColumn:
    """A column a user adds to the right of table ``table``: header ``name``, formula ``formula`` (as
    stored: ``Invoices[[#This Row],[Total]]*2``), ``source`` column × ``factor`` unless ``text`` says
    otherwise (its cached value is then 0: the product marks the workbook for recalculation anyway)."""

    table: str
    name: str
    source: str
    factor: float = 2.0
    text: str = ""  # the formula as stored, when it is not ``source`` × ``factor``

    @property
    def formula(self) -> str:
        return self.text or f"{self.table}[[#This Row],[{self.source}]]*{self.factor:g}"


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, _PARSER)


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))


def _with_namespaces(root: etree._Element, extra: Mapping[str, str]) -> etree._Element:
    """``root`` re-made with more namespace declarations (lxml cannot add them to an element in place)."""
    nsmap = dict(root.nsmap)
    nsmap.update({k: v for k, v in extra.items() if k not in nsmap})
    new = etree.Element(root.tag, nsmap=nsmap)
    for k, v in root.attrib.items():
        new.set(k, v)
    new.text = root.text
    for child in list(root):
        new.append(child)
    return new


class _Book:
    def __init__(self, data: bytes):
        zin = zipfile.ZipFile(io.BytesIO(data))
        self.order = zin.namelist()
        self.parts = {n: zin.read(n) for n in self.order}
        self.trees: dict[str, etree._Element] = {}
        rels = self.tree("_rels/.rels")
        main = next(r for r in rels if r.get("Type", "").endswith("/officeDocument"))
        self.workbook = main.get("Target", "").lstrip("/")
        self.sheets: list[tuple[str, int, str]] = []  # name, sheetId, part
        wb_rels = {r.get("Id"): r for r in self.tree(rels_part(self.workbook))}
        folder = posixpath.dirname(self.workbook)
        for s in self.tree(self.workbook).iterfind(f"{M}sheets/{M}sheet"):
            rel = wb_rels[s.get(R_ID)]
            if rel.get("Type") == RT + "worksheet":
                part = posixpath.normpath(posixpath.join(folder, rel.get("Target", "")))
                self.sheets.append((s.get("name", ""), int(s.get("sheetId", "0")), part))

    def tree(self, part: str) -> etree._Element:
        if part not in self.trees:
            self.trees[part] = _xml(self.parts[part])
        return self.trees[part]

    def put(self, part: str, root: etree._Element) -> None:
        self.trees[part] = root
        if part not in self.parts:
            self.order.append(part)
            self.parts[part] = b""

    def rels(self, part: str) -> list[tuple[str, str, str]]:
        name = rels_part(part)
        if name not in self.parts:
            return []
        folder = posixpath.dirname(part)
        return [(r.get("Id", ""), r.get("Type", ""), posixpath.normpath(posixpath.join(folder, r.get("Target", ""))))
                for r in self.tree(name)]

    def table(self, name: str) -> tuple[str, str]:
        """(sheet part, table part) of the table called ``name``."""
        for _, _, sheet in self.sheets:
            for _, rtype, target in self.rels(sheet):
                if rtype == RT + "table" and self.tree(target).get("displayName", "").lower() == name.lower():
                    return sheet, target
        raise KeyError(name)

    def save(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name in self.order:
                z.writestr(name, _bytes(self.trees[name]) if name in self.trees else self.parts[name])
        return out.getvalue()


def _rows(sheet: etree._Element) -> dict[int, etree._Element]:
    return {int(r.get("r", "0")): r for r in sheet.iterfind(f"{M}sheetData/{M}row")}


def _cell(row: etree._Element, ref: str) -> etree._Element:
    """The cell ``ref`` of ``row``, made (in column order) if the row has none."""
    _, col = parse_cell(ref) or (0, 0)
    for c in row.iterfind(f"{M}c"):
        pos = parse_cell(c.get("r", ""))
        if pos and pos[1] == col:
            return c
        if pos and pos[1] > col:
            new = etree.Element(f"{M}c", r=ref)
            c.addprevious(new)
            return new
    return etree.SubElement(row, f"{M}c", r=ref)


def _number(book: _Book, sheet: etree._Element, ref: str) -> float:
    pos = parse_cell(ref)
    row = _rows(sheet).get(pos[0]) if pos else None
    if row is None:
        return 0.0
    for c in row.iterfind(f"{M}c"):
        if c.get("r") == ref and c.get("t") in (None, "n"):
            try:
                return float(c.findtext(f"{M}v") or 0)
            except ValueError:
                return 0.0
    return 0.0


def _add_calculated_column(book: _Book, spec: CalculatedColumn, shared_from: int) -> None:
    """Add ``spec`` as a new last column of its table, or, if the table has a column of that name, turn
    that column into a calculated one (its cells keep their values as the formula's cached results)."""
    sheet_part, table_part = book.table(spec.table)
    table, sheet = book.tree(table_part), book.tree(sheet_part)
    box = parse_range(table.get("ref", ""))
    assert box is not None
    r0, c0, r1, c1 = box
    header = int(table.get("headerRowCount", "1"))
    totals = int(table.get("totalsRowCount", "0"))
    columns = table.find(f"{M}tableColumns")
    assert columns is not None
    names = [tc.get("name") for tc in columns]
    rows = _rows(sheet)
    if spec.name in names:
        col = c0 + names.index(spec.name)
        tc = columns[names.index(spec.name)]
        for old in tc.findall(f"{M}calculatedColumnFormula"):
            tc.remove(old)
        tc.insert(0, etree.Element(f"{M}calculatedColumnFormula"))
        tc[0].text = spec.formula
    else:
        col = c1 + 1
        table.set("ref", f"{col_letters(c0)}{r0}:{col_letters(col)}{r1}")
        af = table.find(f"{M}autoFilter")
        if af is not None:
            af.set("ref", f"{col_letters(c0)}{r0}:{col_letters(col)}{r1 - totals}")
        tc = etree.SubElement(columns, f"{M}tableColumn", id=str(max(int(t.get("id", "0")) for t in columns) + 1),
                              name=spec.name)
        etree.SubElement(tc, f"{M}calculatedColumnFormula").text = spec.formula
        columns.set("count", str(len(columns)))
        if header:
            c = _cell(rows[r0], f"{col_letters(col)}{r0}")
            c.set("t", "inlineStr")
            etree.SubElement(etree.SubElement(c, f"{M}is"), f"{M}t").text = spec.name
    letter = col_letters(col)
    data = range(r0 + header, r1 - totals + 1)
    shared = [r for r in data if r >= shared_from]
    si = str(_next_si(sheet))
    for r in data:
        row = rows.get(r)
        if row is None:
            row = etree.SubElement(sheet.find(f"{M}sheetData"), f"{M}row", r=str(r))  # rows are in order here
            rows[r] = row
        cell = _cell(row, f"{letter}{r}")
        if spec.name in names:
            value = _number(book, sheet, f"{letter}{r}")
        elif spec.text:
            value = 0.0
        else:
            value = _number(book, sheet, f"{col_letters(c0 + names.index(spec.source))}{r}") * spec.factor
        for child in list(cell):
            cell.remove(child)
        cell.attrib.pop("t", None)
        f = etree.SubElement(cell, f"{M}f")
        if len(shared) > 1 and r in shared:
            f.set("t", "shared")
            if r == shared[0]:
                f.set("ref", f"{letter}{shared[0]}:{letter}{shared[-1]}")
                f.text = spec.formula
            f.set("si", si)
        else:
            f.text = spec.formula
        etree.SubElement(cell, f"{M}v").text = repr(value)
    dim = sheet.find(f"{M}dimension")
    if dim is not None:
        dbox = parse_range(dim.get("ref", "A1"))
        if dbox:
            dim.set("ref", f"{col_letters(dbox[1])}{dbox[0]}:{col_letters(max(dbox[3], col))}{max(dbox[2], r1)}")


def _next_si(sheet: etree._Element) -> int:
    used = [int(f.get("si", "-1")) for f in sheet.iter(f"{M}f") if f.get("t") == "shared" and f.get("si")]
    return max(used, default=-1) + 1


def _shared_strings(book: _Book) -> None:
    """Every inline string becomes a shared string (added to the workbook's sst, made if missing)."""
    wb_rels = book.rels(book.workbook)
    sst_part = next((t for _, rtype, t in wb_rels if rtype == RT + "sharedStrings"), None)
    if sst_part is None:
        sst_part = posixpath.join(posixpath.dirname(book.workbook), "sharedStrings.xml")
        book.put(sst_part, etree.Element(f"{M}sst", nsmap={None: NS}))
        _add_rel(book, book.workbook, RT + "sharedStrings", "sharedStrings.xml")
        _add_override(book, sst_part, "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml")
    sst = book.tree(sst_part)
    index: dict[bytes, int] = {}
    for i, si in enumerate(sst.iterfind(f"{M}si")):
        index.setdefault(etree.tostring(si), i)
    total = 0
    for _, _, part in book.sheets:
        for c in book.tree(part).iter(f"{M}c"):
            if c.get("t") == "s":
                total += 1
            if c.get("t") != "inlineStr":
                continue
            item = c.find(f"{M}is")
            si = etree.Element(f"{M}si")
            for child in [] if item is None else list(item):
                si.append(child)
            for t in si.iter(f"{M}t"):
                text = t.text or ""
                if text != text.strip():
                    t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            key = etree.tostring(si)
            if key not in index:
                index[key] = len(sst)
                sst.append(si)
            for child in list(c):
                c.remove(child)
            c.set("t", "s")
            etree.SubElement(c, f"{M}v").text = str(index[key])
            total += 1
    sst.set("count", str(total))
    sst.set("uniqueCount", str(len(sst)))


def _add_rel(book: _Book, source: str, rtype: str, target: str) -> str:
    name = rels_part(source)
    root = book.tree(name)
    ids = {r.get("Id") for r in root}
    n = len(ids) + 1
    while f"rId{n}" in ids:
        n += 1
    etree.SubElement(root, f"{{{PR_NS}}}Relationship", Id=f"rId{n}", Type=rtype, Target=target)
    return f"rId{n}"


def _add_override(book: _Book, part: str, content_type: str) -> None:
    etree.SubElement(book.tree("[Content_Types].xml"), f"{{{CT_NS}}}Override", PartName="/" + part,
                     ContentType=content_type)


def _calc_chain(book: _Book) -> None:
    chain = etree.Element(f"{M}calcChain", nsmap={None: NS})
    for _, sheet_id, part in book.sheets:
        first = True
        for c in book.tree(part).iter(f"{M}c"):
            f = c.find(f"{M}f")
            if f is None:
                continue
            refs = [c.get("r", "")]
            box = parse_range(f.get("ref", "")) if f.get("t") == "array" else None
            if box is not None:  # Excel lists an array formula once (a="1"), then every cell it spans
                refs += [f"{col_letters(col)}{row}" for row in range(box[0], box[2] + 1)
                         for col in range(box[1], box[3] + 1)]
            for n, ref in enumerate(refs):
                entry = etree.SubElement(chain, f"{M}c", r=ref)
                if first:
                    entry.set("i", str(sheet_id))
                    first = False
                if box is not None and n == 0:
                    entry.set("a", "1")
    if len(chain):
        part = posixpath.join(posixpath.dirname(book.workbook), "calcChain.xml")
        book.put(part, chain)
        _add_rel(book, book.workbook, RT + "calcChain", "calcChain.xml")
        _add_override(book, part, CALC_CHAIN_TYPE)


def _excel_365_markup(book: _Book) -> None:
    """The ignorable revision and layout attributes Excel 365 writes on sheets, rows and tables."""
    for n, (_, _, part) in enumerate(book.sheets):
        root = _with_namespaces(book.tree(part), {"mc": MC, "x14ac": X14AC, "xr": XR, "xr2": XR2, "xr3": XR3})
        root.set(f"{{{MC}}}Ignorable", "x14ac xr xr2 xr3")
        root.set(f"{{{XR}}}uid", f"{{00000000-0001-0000-{n:04X}-000000000000}}")
        for row in root.iterfind(f"{M}sheetData/{M}row"):
            row.set(f"{{{X14AC}}}dyDescent", "0.25")
            cols = [p[1] for c in row.iterfind(f"{M}c") if (p := parse_cell(c.get("r", "")))]
            if row.get("spans") is not None and cols:
                row.set("spans", f"{min(cols)}:{max(cols)}")
        book.put(part, root)
        for _, rtype, target in book.rels(part):
            if rtype != RT + "table":
                continue
            table = _with_namespaces(book.tree(target), {"mc": MC, "xr": XR, "xr3": XR3})
            table.set(f"{{{MC}}}Ignorable", "xr xr3")
            table.set(f"{{{XR}}}uid", f"{{00000000-000C-0000-FFFF-{int(table.get('id', '0')):012X}}}")
            for i, tc in enumerate(table.iter(f"{M}tableColumn")):
                tc.set(f"{{{XR3}}}uid", f"{{00000000-0010-0000-{int(table.get('id', '0')):04X}-{i:012X}}}")
            book.put(target, table)
    wb = _with_namespaces(book.tree(book.workbook), {"mc": MC, "x15": X15, "xr": XR, "xr6": XR6})
    wb.set(f"{{{MC}}}Ignorable", "x15 xr xr6")
    alt = etree.Element(f"{{{MC}}}AlternateContent", nsmap={"mc": MC})
    choice = etree.SubElement(alt, f"{{{MC}}}Choice", Requires="x15")
    etree.SubElement(choice, f"{{{X15AC}}}absPath", nsmap={"x15ac": X15AC}, url="C:\\Users\\billing\\Documents\\")
    pr = wb.find(f"{M}workbookPr")
    (pr if pr is not None else wb[0]).addnext(alt)
    book.put(book.workbook, wb)


def as_excel_saves(data: bytes, columns: tuple[CalculatedColumn, ...] = (), shared_from: int = 3) -> bytes:
    """``data`` (an .xlsx/.xlsm package) as Excel would save it after a user added ``columns``.

    In each added column, data rows from ``shared_from`` on are written as one shared formula (Excel
    writes the first cells of a calculated column in full and then a shared block).
    """
    book = _Book(data)
    for spec in columns:
        _add_calculated_column(book, spec, shared_from)
    _shared_strings(book)
    _calc_chain(book)
    _excel_365_markup(book)
    return book.save()
