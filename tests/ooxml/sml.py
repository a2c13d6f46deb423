"""SpreadsheetML rules Excel enforces (opening with a repair prompt or not at all) that no schema states."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from .package import Package
from .text import (
    MAX_COL,
    MAX_ROW,
    MAX_TEXT,
    col_letters,
    decode_text,
    overlaps,
    parse_cell,
    parse_range,
    range_text,
    suspicious_escapes,
    text_length,
)

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
M = f"{{{NS}}}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
OFFICE_DOCUMENT = RT + "officeDocument"
STRICT_OFFICE_DOCUMENT = "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"
VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
MACRO_MAINS = (MACRO_MAIN, "application/vnd.ms-excel.template.macroEnabled.main+xml",
               "application/vnd.ms-excel.addin.macroEnabled.main+xml")
PLAIN_MAINS = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml")
CALC_CHAIN_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"
SHEET_RELS = {RT + "worksheet", RT + "chartsheet", RT + "dialogsheet",
              "http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet",
              "http://schemas.microsoft.com/office/2006/relationships/xlIntlMacrosheet"}
ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA", "#SPILL!",
          "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!", "#PYTHON!"}
BAD_SHEET_CHARS = set("[]:*?/\\")
MAX_FORMULA = 8192
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NAME_START = re.compile(r"^[^\W\d]|^[_\\]", re.UNICODE)
_NAME_BODY = re.compile(r"^[\w.\\]+$", re.UNICODE)
_R1C1 = re.compile(r"^[Rr]\d*[Cc]\d*$")


@dataclass
class Cell:
    ref: str
    row: int
    col: int
    el: etree._Element
    t: str
    f: etree._Element | None
    v: str | None


@dataclass
class Sheet:
    name: str
    sheet_id: int
    part: str
    root: etree._Element
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)

    def where(self) -> str:
        return f"sheet {self.name!r} ({self.part})"


@dataclass
class Workbook:
    pkg: Package
    part: str
    root: etree._Element
    sheets: list[Sheet]
    strings: list[str] | None  # shared strings as stored (None: no sharedStrings part)
    xf_count: int | None
    dxf_count: int


def _text_of(item: etree._Element) -> str:
    """Stored text of an <si> or <is>: its <t>, or its runs' <t> (phonetic runs left out)."""
    t = item.find(f"{M}t")
    if t is not None:
        return t.text or ""
    return "".join(r.findtext(f"{M}t") or "" for r in item.findall(f"{M}r"))


def check(pkg: Package) -> None:
    wb = load_workbook(pkg)
    if wb is None:
        return
    _check_macro_type(pkg, wb)
    _check_sheet_names(wb)
    names = _check_defined_names(wb)
    for sheet in wb.sheets:
        read_cells(wb, sheet)
        _check_sheet(wb, sheet)
    _check_tables(wb, names)
    _check_calc_chain(wb)
    _check_styles(wb)


# -- workbook -----------------------------------------------------------------


def load_workbook(pkg: Package) -> Workbook | None:
    mains = [r for r in pkg.rels("") if r.type in (OFFICE_DOCUMENT, STRICT_OFFICE_DOCUMENT)]
    if not mains:
        pkg.problem("_rels/.rels", "no officeDocument relationship: the package has no workbook")
        return None
    if mains[0].type == STRICT_OFFICE_DOCUMENT:
        pkg.problem("_rels/.rels", "Strict OOXML: these checks know the transitional schemas only")
        return None
    part = pkg.find(mains[0].part or "")
    if part is None:
        return None  # reported with the relationships
    ct = pkg.content_type(part)
    if ct not in MACRO_MAINS + PLAIN_MAINS:
        pkg.problem(part, f"the workbook has content type {ct}, not a SpreadsheetML main type")
    root = pkg.processed(part)
    if root is None or root.tag != f"{M}workbook":
        return None
    sheets = []
    for el in root.iterfind(f"{M}sheets/{M}sheet"):
        name = el.get("name") or ""
        rel = pkg.rel(part, el.get(R_ID) or "")
        if rel is None:
            pkg.problem(part, f"sheet {name!r} names no relationship ({el.get(R_ID)!r})")
            continue
        if rel.type not in SHEET_RELS:
            pkg.problem(part, f"sheet {name!r} relates to {rel.target} as {rel.type}, not as a sheet")
            continue
        target = pkg.find(rel.part or "")
        sheet_root = pkg.processed(target) if target else None
        try:
            sheet_id = int(el.get("sheetId") or "")
        except ValueError:
            sheet_id = -1
        if target is not None and sheet_root is not None and sheet_root.tag == f"{M}worksheet":
            sheets.append(Sheet(name, sheet_id, target, sheet_root))
    strings = None
    for sst_part in pkg.targets(part, RT + "sharedStrings"):
        sst = pkg.processed(sst_part)
        if sst is not None:
            strings = [_text_of(si) for si in sst.iterfind(f"{M}si")]
            for i, s in enumerate(strings):
                _check_text(pkg, sst_part, f"shared string {i}", s)
    xf_count, dxf_count = None, 0
    for styles_part in pkg.targets(part, RT + "styles"):
        styles = pkg.processed(styles_part)
        if styles is not None:
            xf_count = len(styles.findall(f"{M}cellXfs/{M}xf"))
            dxf_count = len(styles.findall(f"{M}dxfs/{M}dxf"))
    return Workbook(pkg, part, root, sheets, strings, xf_count, dxf_count)


def _check_macro_type(pkg: Package, wb: Workbook) -> None:
    ct = pkg.content_type(wb.part)
    has_vba = any(r.type == VBA_REL for r in pkg.rels(wb.part)) or any(
        posixpath.basename(p).lower() == "vbaproject.bin" for p in pkg.parts)
    ext = posixpath.splitext(pkg.name.lower())[1]
    if (has_vba or ext in (".xlsm", ".xltm", ".xlam")) and ct not in MACRO_MAINS:
        why = "it holds a VBA project" if has_vba else f"it is an {ext} file"
        pkg.problem(wb.part, f"{why}, so the workbook's content type must be {MACRO_MAIN} (it is {ct})")
    if ext in (".xlsx", ".xltx") and ct in MACRO_MAINS:
        pkg.problem(wb.part, f"an {ext} file with the macro-enabled content type {ct}: Excel refuses to open it")


def _check_sheet_names(wb: Workbook) -> None:
    seen: dict[str, str] = {}
    ids: set[int] = set()
    all_sheets = wb.root.findall(f"{M}sheets/{M}sheet")
    if not all_sheets:
        wb.pkg.problem(wb.part, "the workbook has no sheets")
    for el in all_sheets:
        name = el.get("name") or ""
        sid = el.get("sheetId") or ""
        if not name:
            wb.pkg.problem(wb.part, "a sheet has an empty name")
        elif len(name) > 31:
            wb.pkg.problem(wb.part, f"sheet name {name!r} is longer than 31 characters")
        bad = sorted(set(name) & BAD_SHEET_CHARS)
        if bad:
            wb.pkg.problem(wb.part, f"sheet name {name!r} holds {' '.join(bad)} (not allowed: [ ] : * ? / \\)")
        if name.startswith("'") or name.endswith("'"):
            wb.pkg.problem(wb.part, f"sheet name {name!r} begins or ends with an apostrophe")
        if name.lower() in seen:
            wb.pkg.problem(wb.part, f"sheet name {name!r} is used twice (names ignore case: {seen[name.lower()]!r})")
        seen[name.lower()] = name
        if not sid.isdigit() or int(sid) in ids:
            wb.pkg.problem(wb.part, f"sheet {name!r} has sheetId {sid!r}, not a unique positive number")
        elif sid.isdigit():
            ids.add(int(sid))
    if all_sheets and all(el.get("state") in ("hidden", "veryHidden") for el in all_sheets):
        wb.pkg.problem(wb.part, "every sheet is hidden (Excel needs one visible sheet)")
    for view in wb.root.iterfind(f"{M}bookViews/{M}workbookView"):
        for attr in ("activeTab", "firstSheet"):
            value = int(view.get(attr) or 0)
            if all_sheets and value >= len(all_sheets):
                wb.pkg.problem(wb.part, f"workbookView {attr}={value} but the workbook has {len(all_sheets)} sheets")


def _check_defined_names(wb: Workbook) -> set[str]:
    """Names (lower case) of the workbook's defined names, checked for duplicates in a scope."""
    scopes: set[tuple[str, str]] = set()
    names: set[str] = set()
    n_sheets = len(wb.root.findall(f"{M}sheets/{M}sheet"))
    for el in wb.root.iterfind(f"{M}definedNames/{M}definedName"):
        name = el.get("name") or ""
        scope = el.get("localSheetId") or ""
        if scope and (not scope.isdigit() or int(scope) >= n_sheets):
            wb.pkg.problem(wb.part, f"defined name {name!r} has localSheetId {scope}, but there are {n_sheets} sheets")
        if (name.lower(), scope) in scopes:
            wb.pkg.problem(wb.part, f"defined name {name!r} is defined twice in the same scope")
        scopes.add((name.lower(), scope))
        if not name.lower().startswith("_xlnm."):
            names.add(name.lower())
    return names


# -- cells --------------------------------------------------------------------


def _check_text(pkg: Package, part: str, what: str, stored: str) -> None:
    if text_length(stored) > MAX_TEXT:
        pkg.problem(part, f"{what} holds {text_length(stored):,} characters (Excel's limit is {MAX_TEXT:,})")
    for esc in suspicious_escapes(stored):
        pkg.problem(part, f"warning: {what} stores {esc}, which Excel reads as {decode_text(esc)!r}; literal text "
                          f"{esc!r} is stored as _x005F_{esc[1:]} ({_excerpt(stored)!r})")


def _excerpt(s: str, width: int = 60) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def read_cells(wb: Workbook, sheet: Sheet) -> None:
    """Cells of the sheet by position; rows and cells in order, references well-formed."""
    pkg, where = wb.pkg, sheet.where()
    last_row = 0
    for row in sheet.root.iterfind(f"{M}sheetData/{M}row"):
        r_attr = row.get("r")
        r = int(r_attr) if r_attr and r_attr.isdigit() else (last_row + 1 if r_attr is None else -1)
        if not 1 <= r <= MAX_ROW:
            pkg.problem(sheet.part, f"{where}: row r={r_attr!r} is not a row number 1–{MAX_ROW:,}")
            continue
        if r <= last_row:
            pkg.problem(sheet.part, f"{where}: row {r} comes after row {last_row} (rows must increase)")
        last_row = max(last_row, r)
        last_col = 0
        for c in row.iterfind(f"{M}c"):
            ref = c.get("r")
            if ref is None:
                pos: tuple[int, int] | None = (r, last_col + 1)
            else:
                pos = parse_cell(ref)
            if pos is None or "$" in (ref or ""):
                pkg.problem(sheet.part, f"{where}: cell r={ref!r} in row {r} is not a cell reference")
                continue
            if pos[0] != r:
                pkg.problem(sheet.part, f"{where}: cell {ref} sits in row {r}")
                continue
            if pos[1] <= last_col:
                pkg.problem(sheet.part, f"{where}: cell {ref} comes after column {col_letters(last_col)} "
                                        f"of row {r} (cells must go left to right)")
            last_col = max(last_col, pos[1])
            cell = Cell(ref or f"{col_letters(pos[1])}{r}", pos[0], pos[1], c, c.get("t") or "n",
                        c.find(f"{M}f"), c.findtext(f"{M}v"))
            sheet.cells.setdefault(pos, cell)
            _check_cell(wb, sheet, cell)


def cell_text(wb: Workbook, cell: Cell) -> str | None:
    """The cell's stored text (shared, inline or a formula's string result), or None for a non-text cell."""
    if cell.t == "s":
        if wb.strings is None or cell.v is None or not cell.v.strip().isdigit():
            return None
        i = int(cell.v)
        return wb.strings[i] if i < len(wb.strings) else None
    if cell.t == "inlineStr":
        item = cell.el.find(f"{M}is")
        return "" if item is None else _text_of(item)
    if cell.t == "str":
        return cell.v or ""
    return None


def _check_cell(wb: Workbook, sheet: Sheet, cell: Cell) -> None:
    pkg, where = wb.pkg, f"{sheet.where()}: cell {cell.ref}"
    v = cell.v
    if cell.t == "n" and v is not None and not (_NUMBER.match(v.strip()) and math.isfinite(float(v))):
        pkg.problem(sheet.part, f"{where} is a number cell holding {_excerpt(v)!r}")
    elif cell.t == "b" and v is not None and v.strip() not in ("0", "1"):
        pkg.problem(sheet.part, f"{where} is a boolean cell holding {_excerpt(v)!r}")
    elif cell.t == "e" and v is not None and v not in ERRORS:
        pkg.problem(sheet.part, f"{where} is an error cell holding {_excerpt(v)!r}")
    elif cell.t == "s":
        if wb.strings is None:
            pkg.problem(sheet.part, f"{where} uses a shared string but the workbook has no sharedStrings part")
        elif v is None or not v.strip().isdigit() or int(v) >= len(wb.strings):
            pkg.problem(sheet.part, f"{where} names shared string {v!r}; there are {len(wb.strings)}")
    elif cell.t == "inlineStr" and cell.el.find(f"{M}is") is None:
        pkg.problem(sheet.part, f"{where} is an inline-string cell without <is>")
    if cell.t in ("inlineStr", "str"):
        _check_text(pkg, sheet.part, where, cell_text(wb, cell) or "")
    s = cell.el.get("s")
    if s is not None and wb.xf_count is not None and (not s.isdigit() or int(s) >= max(wb.xf_count, 1)):
        pkg.problem(sheet.part, f"{where} has style s={s}, but styles.xml has {wb.xf_count} cellXfs")
    if cell.f is not None and cell.f.text and len(cell.f.text) > MAX_FORMULA:
        pkg.problem(sheet.part, f"{where} has a formula of {len(cell.f.text):,} characters (limit {MAX_FORMULA:,})")


def _sqref(value: str) -> Iterator[tuple[str, tuple[int, int, int, int] | None]]:
    for ref in value.split():
        yield ref, parse_range(ref.replace("$", ""))


def _check_sheet(wb: Workbook, sheet: Sheet) -> None:
    pkg, root, where = wb.pkg, sheet.root, sheet.where()
    dim = root.find(f"{M}dimension")
    if dim is not None and parse_range(dim.get("ref") or "") is None:
        pkg.problem(sheet.part, f"{where}: <dimension ref={dim.get('ref')!r}> is not a range inside the grid")
    last = 0
    for col in root.iterfind(f"{M}cols/{M}col"):
        lo, hi = int(col.get("min") or 0), int(col.get("max") or 0)
        if not 1 <= lo <= hi <= MAX_COL:
            pkg.problem(sheet.part, f"{where}: <col min={lo} max={hi}> is not a column span 1–{MAX_COL}")
        elif lo <= last:
            pkg.problem(sheet.part, f"{where}: <col min={lo} max={hi}> overlaps or precedes the column before it")
        last = max(last, hi)
    for row in root.iterfind(f"{M}sheetData/{M}row"):
        s = row.get("s")
        if s is not None and wb.xf_count is not None and (not s.isdigit() or int(s) >= max(wb.xf_count, 1)):
            pkg.problem(sheet.part, f"{where}: row {row.get('r')} has style s={s}, but there are {wb.xf_count} "
                                    "cellXfs")
    merged: list[tuple[str, tuple[int, int, int, int]]] = []
    for mc in root.iterfind(f"{M}mergeCells/{M}mergeCell"):
        ref = mc.get("ref") or ""
        box = parse_range(ref)
        if box is None:
            pkg.problem(sheet.part, f"{where}: merged range {ref!r} is not a range inside the grid")
            continue
        for other, obox in merged:
            if overlaps(box, obox):
                pkg.problem(sheet.part, f"{where}: merged ranges {other} and {ref} overlap")
        merged.append((ref, box))
    for tag in ("conditionalFormatting", "dataValidation", "selection"):
        for el in root.iter(f"{M}{tag}"):
            for ref, box in _sqref(el.get("sqref") or ""):
                if box is None:
                    pkg.problem(sheet.part, f"{where}: <{etree.QName(el).localname} sqref> holds {ref!r}, "
                                            "not a range inside the grid")
    for link in root.iterfind(f"{M}hyperlinks/{M}hyperlink"):
        if parse_range(link.get("ref") or "") is None:
            pkg.problem(sheet.part, f"{where}: hyperlink ref {link.get('ref')!r} is not a range inside the grid")
    _check_formulas(wb, sheet)


def _check_formulas(wb: Workbook, sheet: Sheet) -> None:
    """Shared formulas: one master (with ref and text) per si, before and around its cells; arrays have refs."""
    pkg, where = wb.pkg, sheet.where()
    masters: dict[str, tuple[Cell, tuple[int, int, int, int] | None]] = {}
    children: list[tuple[str, Cell]] = []
    for cell in sheet.cells.values():
        f = cell.f
        if f is None:
            continue
        kind = f.get("t") or "normal"
        if kind == "shared":
            si = f.get("si")
            if si is None:
                pkg.problem(sheet.part, f"{where}: cell {cell.ref} has a shared formula without si")
                continue
            if f.get("ref") is not None:
                box = parse_range(f.get("ref") or "")
                if box is None:
                    pkg.problem(sheet.part, f"{where}: shared formula {si} at {cell.ref} has ref {f.get('ref')!r}, "
                                            "not a range")
                elif not box[0] <= cell.row <= box[2] or not box[1] <= cell.col <= box[3]:
                    pkg.problem(sheet.part, f"{where}: shared formula {si} at {cell.ref} lies outside its ref "
                                            f"{f.get('ref')}")
                if not (f.text or "").strip():
                    pkg.problem(sheet.part, f"{where}: shared formula {si}'s master {cell.ref} has no formula text")
                if si in masters:
                    pkg.problem(sheet.part, f"{where}: shared formula {si} has two masters "
                                            f"({masters[si][0].ref} and {cell.ref})")
                masters[si] = (cell, box)
            else:
                children.append((si, cell))
        elif kind == "array":
            box = parse_range(f.get("ref") or "")
            if box is None:
                pkg.problem(sheet.part, f"{where}: array formula at {cell.ref} has ref {f.get('ref')!r}, not a range")
    order = {id(c.el): i for i, c in enumerate(sheet.cells.values())}
    for si, cell in children:
        if si not in masters:
            pkg.problem(sheet.part, f"{where}: cell {cell.ref} uses shared formula {si}, which has no master "
                                    "(an <f t=\"shared\" si=… ref=…> with the formula)")
            continue
        master, box = masters[si]
        if order[id(cell.el)] < order[id(master.el)]:
            pkg.problem(sheet.part, f"{where}: cell {cell.ref} uses shared formula {si} before its master "
                                    f"{master.ref}")
        if box is not None and not (box[0] <= cell.row <= box[2] and box[1] <= cell.col <= box[3]):
            pkg.problem(sheet.part, f"{where}: cell {cell.ref} uses shared formula {si} but lies outside its ref "
                                    f"{range_text(box)}")


# -- tables -------------------------------------------------------------------


@dataclass
class _Table:
    sheet: Sheet
    part: str
    root: etree._Element
    box: tuple[int, int, int, int] | None


def _check_tables(wb: Workbook, defined: set[str]) -> None:
    pkg = wb.pkg
    tables: list[_Table] = []
    used_by: dict[str, str] = {}
    for sheet in wb.sheets:
        parts = sheet.root.find(f"{M}tableParts")
        if parts is None:
            continue
        listed = parts.findall(f"{M}tablePart")
        count = parts.get("count")
        if count is not None and count != str(len(listed)):
            pkg.problem(sheet.part, f"{sheet.where()}: <tableParts count={count}> but {len(listed)} tablePart")
        for tp in listed:
            rel = pkg.rel(sheet.part, tp.get(R_ID) or "")
            if rel is None or rel.part is None:
                continue  # reported with the relationship ids
            if rel.type != RT + "table":
                pkg.problem(sheet.part, f"{sheet.where()}: tablePart {rel.id} relates as {rel.type}, not table")
                continue
            part = pkg.find(rel.part)
            root = pkg.processed(part) if part else None
            if part is None or root is None or root.tag != f"{M}table":
                continue
            if part in used_by:
                pkg.problem(part, f"the table is used by two sheets ({used_by[part]} and {sheet.name!r})")
            used_by[part] = sheet.name
            tables.append(_Table(sheet, part, root, parse_range(root.get("ref") or "")))
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for t in tables:
        display, name, tid = t.root.get("displayName") or "", t.root.get("name") or "", t.root.get("id") or ""
        for attr, value in (("displayName", display), ("name", name)):
            if not _valid_name(value):
                pkg.problem(t.part, f"table {attr} {value!r} is not a valid Excel name (a letter, _ or \\ first, "
                                    "then letters, digits, _ . \\; not a cell reference)")
            if value.lower() in defined:
                pkg.problem(t.part, f"table {attr} {value!r} is also a defined name of the workbook")
        for value in {display.lower(), name.lower()}:
            if value in names:
                pkg.problem(t.part, f"table name {value!r} is also the name of the table in {names[value]}")
            names[value] = t.part
        if not tid.isdigit() or int(tid) == 0:
            pkg.problem(t.part, f"table id {tid!r} is not a positive number")
        elif tid in ids:
            pkg.problem(t.part, f"table id {tid} is also the id of the table in {ids[tid]}")
        ids[tid] = t.part
        _check_table(wb, t)
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            if a.sheet is b.sheet and a.box and b.box and overlaps(a.box, b.box):
                pkg.problem(b.part, f"{a.sheet.where()}: tables {a.root.get('displayName')} ({a.root.get('ref')}) "
                                    f"and {b.root.get('displayName')} ({b.root.get('ref')}) overlap")
    for sheet in wb.sheets:
        af = sheet.root.find(f"{M}autoFilter")
        ref = af.get("ref") or "" if af is not None else ""
        box = parse_range(ref)
        for t in tables:
            if box and t.sheet is sheet and t.box and overlaps(box, t.box):
                pkg.problem(sheet.part, f"{sheet.where()}: the sheet's autoFilter {ref} overlaps table "
                                        f"{t.root.get('displayName')}")


def _valid_name(name: str) -> bool:
    if not name or len(name) > 255 or not _NAME_START.match(name) or not _NAME_BODY.match(name):
        return False
    return parse_cell(name.upper()) is None and not _R1C1.match(name) and name.lower() not in ("r", "c")


def _int(el: etree._Element, attr: str, default: int) -> int:
    value = el.get(attr)
    return int(value) if value is not None and value.isdigit() else default


def _check_table(wb: Workbook, t: _Table) -> None:
    pkg, root, where = wb.pkg, t.root, f"table {t.root.get('displayName')!r} ({t.part})"
    ref = root.get("ref") or ""
    if t.box is None:
        pkg.problem(t.part, f"{where}: ref {ref!r} is not a range inside the grid with top-left before bottom-right")
        return
    r0, c0, r1, c1 = t.box
    header = _int(root, "headerRowCount", 1)
    totals = _int(root, "totalsRowCount", 0)
    if r1 - r0 + 1 < header + totals + 1:
        pkg.problem(t.part, f"{where}: ref {ref} leaves no data row")
    columns = root.findall(f"{M}tableColumns/{M}tableColumn")
    count = root.find(f"{M}tableColumns")
    if count is not None and count.get("count") is not None and count.get("count") != str(len(columns)):
        pkg.problem(t.part, f"{where}: <tableColumns count={count.get('count')}> but {len(columns)} tableColumn")
    if len(columns) != c1 - c0 + 1:
        pkg.problem(t.part, f"{where}: {len(columns)} tableColumn for the {c1 - c0 + 1} columns of {ref}")
    seen_names: set[str] = set()
    seen_ids: set[str] = set()
    for i, col in enumerate(columns):
        name = decode_text(col.get("name") or "")
        cid = col.get("id") or ""
        if not name:
            pkg.problem(t.part, f"{where}: tableColumn {i + 1} has no name")
        elif name.lower() in seen_names:
            pkg.problem(t.part, f"{where}: column name {name!r} is used twice (names ignore case)")
        seen_names.add(name.lower())
        if cid in seen_ids or not cid.isdigit():
            pkg.problem(t.part, f"{where}: tableColumn {name!r} has id {cid!r}, not a unique number")
        seen_ids.add(cid)
        for attr in ("dataDxfId", "headerRowDxfId", "totalsRowDxfId"):
            dxf = col.get(attr)
            if dxf is not None and (not dxf.isdigit() or int(dxf) >= wb.dxf_count):
                pkg.problem(t.part, f"{where}: column {name!r} {attr}={dxf}, but styles.xml has {wb.dxf_count} dxfs")
        col_no = c0 + i
        if col_no > c1:
            continue
        if header:
            cell = t.sheet.cells.get((r0, col_no))
            text = cell_text(wb, cell) if cell is not None else None
            at = f"{col_letters(col_no)}{r0}"
            if text is None:
                got = "is empty" if cell is None else f"is not a text cell ({cell.t})"
                pkg.problem(t.part, f"{where}: header cell {at} {got}; its tableColumn is {name!r}")
            elif decode_text(text) != name:
                pkg.problem(t.part, f"{where}: header cell {at} holds {decode_text(text)!r} but the tableColumn "
                                    f"is named {name!r}")
        if col.find(f"{M}calculatedColumnFormula") is not None:
            missing = [f"{col_letters(col_no)}{r}" for r in range(r0 + header, r1 - totals + 1)
                       if (c := t.sheet.cells.get((r, col_no))) is None or c.f is None]
            if missing:
                pkg.problem(t.part, f"{where}: calculated column {name!r} has no formula in {len(missing)} data "
                                    f"cell(s): {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    af = root.find(f"{M}autoFilter")
    if af is not None:
        expected = range_text((r0, c0, r1 - totals, c1))
        if not header:
            pkg.problem(t.part, f"{where}: has an autoFilter but no header row")
        elif parse_range(af.get("ref") or "") != (r0, c0, r1 - totals, c1):
            pkg.problem(t.part, f"{where}: autoFilter ref {af.get('ref')!r} is not the table's ref less its totals "
                                f"row ({expected})")


# -- calcChain, styles ----------------------------------------------------------


def _check_calc_chain(wb: Workbook) -> None:
    pkg = wb.pkg
    chains = [p for p in pkg.parts if posixpath.basename(p).lower() == "calcchain.xml"]
    related = pkg.targets(wb.part, RT + "calcChain")
    for part in chains:
        if part not in related:
            pkg.problem(part, "calcChain part without a relationship from the workbook")
        if pkg.content_type(part) != CALC_CHAIN_TYPE:
            pkg.problem(part, f"calcChain part has content type {pkg.content_type(part)}, not {CALC_CHAIN_TYPE}")
    by_id = {s.sheet_id: s for s in wb.sheets}
    arrays = {s.sheet_id: [box for c in s.cells.values() if c.f is not None and c.f.get("t") == "array"
                           and (box := parse_range(c.f.get("ref") or "")) is not None] for s in wb.sheets}
    for part in related:
        root = pkg.processed(part)
        if root is None:
            continue
        sheet_id: int | None = None
        bad: list[str] = []
        for c in root.iterfind(f"{M}c"):
            i = c.get("i")
            if i is not None:
                sheet_id = int(i) if i.lstrip("-").isdigit() else -1
            ref = c.get("r") or ""
            if sheet_id is None:
                pkg.problem(part, f"calcChain entry {ref} has no sheet id (i) and none before it")
                continue
            sheet = by_id.get(sheet_id)
            pos = parse_cell(ref)
            if sheet is None:
                pkg.problem(part, f"calcChain entry {ref} names sheetId {sheet_id}, which no worksheet has")
                continue
            cell = sheet.cells.get(pos) if pos else None
            in_array = pos is not None and any(b[0] <= pos[0] <= b[2] and b[1] <= pos[1] <= b[3]
                                               for b in arrays[sheet.sheet_id])
            if (cell is None or cell.f is None) and not in_array:
                bad.append(f"{sheet.name}!{ref}")
        if bad:
            pkg.problem(part, f"calcChain lists {len(bad)} cell(s) without a formula: {', '.join(bad[:5])}"
                              f"{' …' if len(bad) > 5 else ''}")


def _check_styles(wb: Workbook) -> None:
    pkg = wb.pkg
    for part in pkg.targets(wb.part, RT + "styles"):
        root = pkg.processed(part)
        if root is None:
            continue
        formats = {nf.get("numFmtId") for nf in root.iterfind(f"{M}numFmts/{M}numFmt")}
        counts = {name: len(root.findall(f"{M}{name}s/{M}{name}")) for name in ("font", "fill", "border")}
        style_xfs = len(root.findall(f"{M}cellStyleXfs/{M}xf"))
        for group in ("cellXfs", "cellStyleXfs"):
            for i, xf in enumerate(root.iterfind(f"{M}{group}/{M}xf")):
                num = xf.get("numFmtId") or "0"
                if num.isdigit() and int(num) >= 164 and num not in formats:
                    pkg.problem(part, f"{group} xf {i} uses numFmtId {num}, which numFmts does not define")
                for name, n in counts.items():
                    value = xf.get(f"{name}Id")
                    if value is not None and (not value.isdigit() or int(value) >= n):
                        pkg.problem(part, f"{group} xf {i} uses {name}Id {value}, but there are {n} {name}s")
                xf_id = xf.get("xfId")
                if group == "cellXfs" and xf_id is not None and (not xf_id.isdigit() or int(xf_id) >= style_xfs):
                    pkg.problem(part, f"cellXfs xf {i} uses xfId {xf_id}, but there are {style_xfs} cellStyleXfs")
        for sheet in wb.sheets:
            for el in sheet.root.iter(f"{M}cfRule"):
                dxf = el.get("dxfId")
                if dxf is not None and (not dxf.isdigit() or int(dxf) >= wb.dxf_count):
                    pkg.problem(sheet.part, f"{sheet.where()}: a conditional format uses dxfId {dxf}, but there are "
                                            f"{wb.dxf_count} dxfs")
