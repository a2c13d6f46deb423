"""Edit Excel tables inside a workbook file without re-saving the workbook.

Only the XML of the edited sheets, their table parts and (when a date style is
needed) the style sheet change; every other part of the package — the VBA
project, the ribbon, charts, pivot caches, images, comments — is copied as it
was. That keeps whatever Excel put in the workbook and is fast: a sync that
adds a few hundred rows to a 50,000-row Roster touches only the Roster sheet.

Rows of a table that an edit leaves alone are not rewritten; cells keep their
styles; new rows take the style of the row above (or the column's style). New
text goes in as inline strings (Excel turns them into shared strings on its
next save). The workbook is marked for a full recalculation on open, so
formulas that read an edited table show current values.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
import itertools
import math
import os
import posixpath
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from perseat_addin.cells import EXCEL_EPOCH, col_letter, split_ref, xml_escape
from perseat_addin.errors import PerseatError

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_M = f"{{{MAIN}}}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_TABLE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/table"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_SHEET_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
_WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_TABLE_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"

_PARSERS = threading.local()  # an lxml parser serves one thread at a time: each thread makes its own
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
EXCEL_ROWS = 1_048_576
"""Excel's last row."""

EXCEL_CELL_CHARS = 32_767
"""The most characters an Excel cell holds."""

DATE_FORMAT = "yyyy-mm-dd"
"""Number format given to dates written into cells that have no date format."""

_BUILTIN_DATE_FORMATS = frozenset({14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47})


def _parser() -> etree.XMLParser:
    """This thread's parser: no entities, no network, no DTD (a package is prepared on another thread)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                                 remove_blank_text=False)
        _PARSERS.parser = parser
    return parser


def _parse(data: bytes, part: str) -> etree._Element:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise PerseatError(f"the workbook part {part} is damaged ({exc}); nothing was written") from None
    if root.getroottree().docinfo.doctype:
        raise PerseatError(f"the workbook part {part} declares a DOCTYPE; refusing to edit it")
    return root


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))


def _range(ref: str) -> tuple[int, int, int, int]:
    a, _, b = ref.partition(":")
    c0, r0 = split_ref(a)
    c1, r1 = split_ref(b or a)
    return c0, r0, c1, r1


def xml_text(s: str) -> str:
    """Text made safe for a cell, as Excel stores it: a literal ``_xHHHH_`` keeps its meaning by escaping its
    underscore (``_x005F_xHHHH_``), and characters XML cannot hold become ``_x0001_``-style escapes."""
    if "_x" in s:
        s = _LITERAL_ESCAPE.sub("_x005F_", s)
    return _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", s)


_LITERAL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}(?:_|[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]))")
"""The underscore of text that would read as an escape once written: ``_xHHHH`` followed by an underscore, or
by a character that is itself written as ``_xHHHH_`` (whose underscore would close it)."""
_A1_REF = re.compile(r"\$?[A-Za-z]{1,3}\$?[0-9]|[A-Za-z]{1,3}:\$?[A-Za-z]{1,3}\b")
"""Anything in a formula that may be a relative A1 reference (a shared formula then needs translating)."""
_CALC_CHAIN = "xl/calcChain.xml"
_CALC_CHAIN_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/calcChain"


@dataclass
class _Table:
    name: str
    sheet_part: str
    table_part: str
    root: etree._Element  # the table part's XML

    @property
    def ref(self) -> str:
        return str(self.root.get("ref"))


class Package:
    """An .xlsx/.xlsm package whose tables can be edited and then saved atomically."""

    def __init__(self, data: bytes, path: str | Path = "workbook"):
        self.path = Path(path)
        self.original = data
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise PerseatError(f"{self.path}: damaged workbook ({exc}); nothing was written") from None
        self._names = set(self._zip.namelist())
        self._edited: dict[str, etree._Element] = {}
        self._sheets: dict[str, _Sheet] = {}
        self._styles: _Styles | None = None
        self._ready: dict[str, _Sheet | etree._Element] = {}  # parsed ahead (prepare), not yet edited
        self._tables = self._find_tables()

    # -- reading the package ------------------------------------------------

    def _xml(self, part: str) -> etree._Element:
        if part not in self._edited:
            try:
                self._edited[part] = _parse(self._zip.read(part), part)
            except KeyError:
                raise PerseatError(f"{self.path}: the workbook has no part {part}") from None
        return self._edited[part]

    def _rels(self, part: str) -> dict[str, tuple[str, str]]:
        folder, name = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", name + ".rels")
        if rels not in self._names:
            return {}
        out = {}
        for r in _parse(self._zip.read(rels), rels).iter(_PKG_REL):
            target = r.get("Target", "")
            full = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            out[r.get("Id", "")] = (r.get("Type", ""), full)
        return out

    def _find_tables(self) -> dict[str, _Table]:
        wb_rels = self._rels("xl/workbook.xml")
        workbook = _parse(self._zip.read("xl/workbook.xml"), "xl/workbook.xml")
        out: dict[str, _Table] = {}
        for sh in workbook.iter(f"{_M}sheet"):
            _, sheet_part = wb_rels.get(sh.get(_R_ID, ""), ("", ""))
            if sheet_part not in self._names:
                continue
            for kind, target in self._rels(sheet_part).values():
                if kind == _TABLE_REL and target in self._names:
                    root = _parse(self._zip.read(target), target)
                    name = root.get("displayName") or root.get("name") or ""
                    if name.lower() in out:
                        first = out[name.lower()].sheet_part
                        raise PerseatError(f"{self.path}: two tables are named {name} (in {first} "
                                           f"and {sheet_part}); Excel would repair the file. Rename one in Excel "
                                           "(Table Design ▸ Table Name), then try again; nothing was written")
                    out[name.lower()] = _Table(name, sheet_part, target, root)
        return out

    def _table(self, name: str) -> _Table:
        t = self._tables.get(name.lower())
        if t is None:
            raise PerseatError(f"the workbook has no {name} table to write to; add the {name} sheet from the "
                               "template (perseat template) and try again")
        return t

    def _sheet(self, part: str) -> _Sheet:
        if part not in self._sheets:
            ready = self._ready.pop(part, None)
            if isinstance(ready, _Sheet):
                self._edited[part] = ready.root
                self._sheets[part] = ready
            elif part in self._edited:
                self._sheets[part] = self._make_sheet(part, self._edited[part])
            else:
                self._sheets[part] = self._make_sheet(part, self._part_bytes(part))
            self._edited[part] = self._sheets[part].root
        return self._sheets[part]

    def _part_bytes(self, part: str) -> bytes:
        try:
            return self._zip.read(part)
        except KeyError:
            raise PerseatError(f"{self.path}: the workbook has no part {part}") from None

    def _make_sheet(self, part: str, source: bytes | etree._Element) -> _Sheet:
        """The sheet of a part (its bytes: spliced when they allow it, else parsed whole)."""
        sheet: _Sheet | None = None
        if isinstance(source, bytes):
            sheet = _SplicedSheet.of(source, part) if len(source) >= _SPLICE else None
            if sheet is None:
                sheet = _Sheet(_parse(source, part), part)
        else:
            sheet = _Sheet(source, part)
        sheet.title = self._part_title(part)
        sheet.unshare()
        return sheet

    def prepare(self, tables: Iterable[str]) -> None:
        """Parse ahead the sheets of ``tables`` (those the package has) and the styles, so a later
        :meth:`write_rows` edits at once (lxml parses without the GIL: this runs on another thread while the
        command reads its input)."""
        for name in tables:
            t = self._tables.get(name.lower())
            if t is not None and t.sheet_part not in self._ready:
                self._ready[t.sheet_part] = self._make_sheet(t.sheet_part, self._part_bytes(t.sheet_part))
        if "xl/styles.xml" in self._names:
            self._ready["xl/styles.xml"] = _parse(self._zip.read("xl/styles.xml"), "xl/styles.xml")

    def styles(self) -> _Styles:
        if self._styles is None:
            ready = self._ready.pop("xl/styles.xml", None)
            if isinstance(ready, etree._Element) and "xl/styles.xml" not in self._edited:
                self._edited["xl/styles.xml"] = ready
            self._styles = _Styles(self._xml("xl/styles.xml"))
        return self._styles

    # -- editing ------------------------------------------------------------

    def write_rows(self, name: str, old: Sequence[Sequence[Any]], new: Sequence[Sequence[Any]],
                   changed: Iterable[int] | None = None) -> None:
        """Make table ``name``'s data rows ``new`` (they were ``old``): rows that differ are rewritten,
        rows past the end are added, and the table is resized (it keeps at least one data row).
        ``changed`` limits the comparison to those row positions (the others are known to be equal)."""
        t = self._table(name)
        c0, r0, c1, r1 = _range(t.ref)
        width = c1 - c0 + 1
        header_rows = int(t.root.get("headerRowCount", "1"))
        totals = int(t.root.get("totalsRowCount", "0") or 0)
        if totals:
            raise PerseatError(f"the {t.name} table has a totals row; turn it off (Table Design → Total Row) "
                               "so rows can be added, then try again")
        first = r0 + header_rows
        sheet = self._sheet(t.sheet_part)
        n_old = r1 - first + 1
        n_new = max(len(new), 1)
        last_new = first + n_new - 1
        if last_new > EXCEL_ROWS:
            raise PerseatError(f"the {t.name} table would need {n_new:,} rows, ending past Excel's last row "
                               f"{EXCEL_ROWS:,} on sheet {self._sheet_name(t)}; nothing was written. Move older rows "
                               "to another workbook (or import fewer), then try again")
        if last_new > r1:
            clash = sheet.occupied(c0, c1, r1 + 1, last_new)
            if clash:
                raise PerseatError(f"sheet {self._sheet_name(t)} has data in {clash}, below the {t.name} table; "
                                   "move it so the table can grow, then try again")
        formulas = self._calculated(t)
        styles = sheet.column_styles(c0, c1, first, r1)
        positions = range(n_new) if changed is None else \
            sorted({i for i in changed if i < n_new} | set(range(min(len(old), n_old), n_new)))
        sheet.hold(first + i for i in positions if i < n_old)
        kinds = [formulas.get(j) for j in range(width)]
        appended: list[tuple[int, list[Any]]] = []  # rows below every row of the sheet, made in one go
        for i in positions:
            row = tuple(new[i]) if i < len(new) else (None,) * width
            before = tuple(old[i]) if i < len(old) and i < n_old else None
            if before is not None and _same(before, row):
                continue
            r = first + i
            if before is None and (appended or r > sheet.last_row):
                appended.append((r, [None if j in formulas else row[j] if j < len(row) else None
                                     for j in range(width)]))
                continue
            for j in range(width):
                if j in formulas:  # a calculated column: every data cell holds its formula, never a value
                    sheet.keep_formula(c0 + j, r, formulas[j], styles[j], existing=before is not None)
                    continue
                v = row[j] if j < len(row) else None
                if before is not None and j < len(before) and _same_value(before[j], v):
                    continue
                sheet.set(c0 + j, r, v, styles[j], self.styles)
        sheet.append_rows(c0, kinds, appended, styles, self.styles)
        for r in range(last_new + 1, r1 + 1):
            for j in range(width):
                sheet.clear(c0 + j, r)
        new_ref = f"{col_letter(c0)}{r0}:{col_letter(c1)}{last_new}"
        t.root.set("ref", new_ref)
        af = t.root.find(f"{_M}autoFilter")
        if af is not None:
            af.set("ref", new_ref)
        sheet.extend_dimension(c1, last_new)
        self._edited[t.table_part] = t.root

    def add_columns(self, name: str, headers: Sequence[str]) -> None:
        """Widen table ``name`` by ``headers`` at its right end (a workbook made before those columns
        existed): header cells styled like the last header, new ``tableColumn`` entries, ref and filter
        range widened. Refuses if the cells to the right hold anything."""
        if not headers:
            return
        t = self._table(name)
        c0, r0, c1, r1 = _range(t.ref)
        sheet = self._sheet(t.sheet_part)
        k = len(headers)
        clash = sheet.occupied(c1 + 1, c1 + k, r0, r1)
        if clash:
            raise PerseatError(f"sheet {self._sheet_name(t)} has data in {clash}, right of the {t.name} table; move "
                               f"it so the table can gain column(s) {', '.join(headers)}, then try again")
        head = sheet.cell(c1, r0, create=False)
        style = int(head.get("s", "0")) if head is not None else 0
        cols = t.root.find(f"{_M}tableColumns")
        if cols is None:
            raise PerseatError(f"{self.path}: the {t.name} table's definition lists no columns; nothing was written")
        ids = [int(c.get("id", "0")) for c in cols.iter(f"{_M}tableColumn")]
        for i, h in enumerate(headers):
            sheet.set(c1 + 1 + i, r0, h, style)
            etree.SubElement(cols, f"{_M}tableColumn", id=str(max(ids, default=0) + 1 + i), name=h)
        cols.set("count", str(len(ids) + k))
        new_ref = f"{col_letter(c0)}{r0}:{col_letter(c1 + k)}{r1}"
        t.root.set("ref", new_ref)
        af = t.root.find(f"{_M}autoFilter")
        if af is not None:
            af.set("ref", new_ref)
        sheet.extend_dimension(c1 + k, r1)
        self._edited[t.table_part] = t.root

    def add_table(self, name: str, headers: Sequence[str]) -> None:
        """A new last sheet ``name`` holding an empty Excel table ``name`` with ``headers`` (a table the program
        writes, in a workbook made before it existed): worksheet and table parts, their relationships, the
        workbook's sheet list and the content types."""
        if name.lower() in self._tables:
            return
        n = 1
        while f"xl/worksheets/sheet{n}.xml" in self._names or f"xl/worksheets/sheet{n}.xml" in self._edited:
            n += 1
        k = 1
        while f"xl/tables/table{k}.xml" in self._names or f"xl/tables/table{k}.xml" in self._edited:
            k += 1
        sheet_part, table_part = f"xl/worksheets/sheet{n}.xml", f"xl/tables/table{k}.xml"
        last = col_letter(len(headers) - 1)
        ref = f"A1:{last}2"
        ws = etree.Element(f"{_M}worksheet", nsmap={None: MAIN, "r": _R_NS})
        etree.SubElement(ws, f"{_M}dimension", ref=ref)
        data = etree.SubElement(ws, f"{_M}sheetData")
        head = etree.SubElement(data, f"{_M}row", r="1")
        for j, h in enumerate(headers):
            cell = etree.SubElement(head, f"{_M}c", r=f"{col_letter(j)}1", t="inlineStr")
            etree.SubElement(etree.SubElement(cell, f"{_M}is"), f"{_M}t").text = h
        parts = etree.SubElement(ws, f"{_M}tableParts", count="1")
        etree.SubElement(parts, f"{_M}tablePart", {_R_ID: "rId1"})
        ids = [int(t.root.get("id", "0")) for t in self._tables.values()]
        table = etree.Element(f"{_M}table", nsmap={None: MAIN}, id=str(max(ids, default=0) + 1), name=name,
                              displayName=name, ref=ref, totalsRowShown="0")
        etree.SubElement(table, f"{_M}autoFilter", ref=ref)
        cols = etree.SubElement(table, f"{_M}tableColumns", count=str(len(headers)))
        for j, h in enumerate(headers, start=1):
            etree.SubElement(cols, f"{_M}tableColumn", id=str(j), name=h)
        etree.SubElement(table, f"{_M}tableStyleInfo", name="TableStyleMedium2", showFirstColumn="0",
                         showLastColumn="0", showRowStripes="1", showColumnStripes="0")
        rels = etree.Element(f"{{{_PKG_NS}}}Relationships", nsmap={None: _PKG_NS})
        etree.SubElement(rels, _PKG_REL, Id="rId1", Type=_TABLE_REL, Target=f"../tables/table{k}.xml")
        wb_rels_part = "xl/_rels/workbook.xml.rels"
        wb_rels = self._xml(wb_rels_part)
        used = {r.get("Id") for r in wb_rels.iter(_PKG_REL)}
        rid = next(f"rId{i}" for i in range(1, len(used) + 2) if f"rId{i}" not in used)
        etree.SubElement(wb_rels, _PKG_REL, Id=rid, Type=_SHEET_REL, Target=f"worksheets/sheet{n}.xml")
        workbook = self._xml("xl/workbook.xml")
        sheets = workbook.find(f"{_M}sheets")
        if sheets is None:
            raise PerseatError(f"{self.path}: the workbook lists no sheets; nothing was written")
        sheet_ids = [int(sh.get("sheetId", "0")) for sh in sheets]
        etree.SubElement(sheets, f"{_M}sheet", {"name": name, "sheetId": str(max(sheet_ids, default=0) + 1),
                                                 _R_ID: rid})
        types = self._xml("[Content_Types].xml")
        for part, kind in ((sheet_part, _WORKSHEET_TYPE), (table_part, _TABLE_TYPE)):
            etree.SubElement(types, f"{{{_CT_NS}}}Override", PartName=f"/{part}", ContentType=kind)
        self._edited[sheet_part] = ws
        self._edited[table_part] = table
        self._edited[f"xl/worksheets/_rels/sheet{n}.xml.rels"] = rels
        self._tables[name.lower()] = _Table(name, sheet_part, table_part, table)

    def _calculated(self, t: _Table) -> dict[int, str]:
        out = {}
        for j, col in enumerate(t.root.iter(f"{_M}tableColumn")):
            f = col.find(f"{_M}calculatedColumnFormula")
            if f is not None and f.text:
                out[j] = f.text
        return out

    def _sheet_name(self, t: _Table) -> str:
        return self._part_title(t.sheet_part)

    def _part_title(self, part: str) -> str:
        wb_rels = self._rels("xl/workbook.xml")
        for sh in self._xml("xl/workbook.xml").iter(f"{_M}sheet"):
            if wb_rels.get(sh.get(_R_ID, ""), ("", ""))[1] == part:
                return str(sh.get("name", part))
        return part

    # -- saving -------------------------------------------------------------

    def data(self) -> bytes:
        """The edited package: edited parts re-serialised, every other part as it was."""
        if self._sheets:
            calc = self._xml("xl/workbook.xml").find(f"{_M}calcPr")
            if calc is None:
                calc = etree.SubElement(self._xml("xl/workbook.xml"), f"{_M}calcPr")
                _move_calcpr(self._xml("xl/workbook.xml"), calc)
            calc.set("fullCalcOnLoad", "1")
        if self._sheets and _CALC_CHAIN in self._names:
            self._drop_calc_chain()
        kept = [i for i in self._zip.infolist() if not (i.filename == _CALC_CHAIN and self._sheets)]
        added = [zipfile.ZipInfo(part, date_time=(1980, 1, 1, 0, 0, 0))
                 for part in sorted(set(self._edited) - self._names)]  # parts this edit added (a new table)
        bodies = {part: self._body(part, root) for part, root in self._edited.items()}
        fast = _repack(self.original, kept, added, bodies)
        if fast is not None:
            return fast
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in kept:
                body = bodies[info.filename] if info.filename in bodies else self._zip.read(info)
                dst.writestr(info, body, compress_type=zipfile.ZIP_DEFLATED)
            for info in added:
                dst.writestr(info, bodies[info.filename], compress_type=zipfile.ZIP_DEFLATED)
        return out.getvalue()

    def _body(self, part: str, root: etree._Element) -> bytes:
        sheet = self._sheets.get(part)
        return sheet.serialize() if isinstance(sheet, _SplicedSheet) else _serialize(root)

    def close(self) -> None:
        """Let go of the parsed parts: the handles on rows and cells first, then the trees (a large tree goes
        several times faster when no handle into it is left)."""
        for sheet in self._sheets.values():
            sheet.forget()
        self._sheets.clear()
        self._ready.clear()
        self._styles = None
        self._edited.clear()

    def _drop_calc_chain(self) -> None:
        """Excel's calculation chain lists formula cells by position; after sheets change it may list cells
        that no longer hold formulas (a repair prompt), so it goes — part, relationship and content type —
        and Excel rebuilds it on the next calculation."""
        rels = self._xml("xl/_rels/workbook.xml.rels")
        for r in list(rels.iter(_PKG_REL)):
            if r.get("Type") == _CALC_CHAIN_REL:
                rels.remove(r)
        types = self._xml("[Content_Types].xml")
        for o in list(types.iter(f"{{{_CT_NS}}}Override")):
            if o.get("PartName", "").lstrip("/") == _CALC_CHAIN:
                types.remove(o)

    def save(self, path: str | Path | None = None) -> Path:
        """Replace the workbook file atomically (refusing if it changed on disk since it was read)."""
        target = Path(path) if path is not None else self.path
        if path is None and target.exists() and target.read_bytes() != self.original:
            raise PerseatError(f"{target} changed while the import ran (open in Excel and saved?); nothing was "
                               "written — run it again")
        atomic_write(target, self.data())
        return target


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one, never half (a
    symlink's target is written, the link stays; the bytes are on disk before the rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.perseat-tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# The order of a worksheet's children is fixed by the schema; calcPr sits in workbook.xml
_WB_AFTER_CALCPR = ("oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr", "smartTagTypes",
                    "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst")


def _move_calcpr(workbook: etree._Element, calc: etree._Element) -> None:
    for child in workbook:
        if etree.QName(child).localname in _WB_AFTER_CALCPR:
            child.addprevious(calc)
            return


def _same_value(a: Any, b: Any) -> bool:
    """Whether a cell holding ``a`` already shows ``b`` (blank, dates and numbers compared by value)."""
    if b is None or b == "":
        return a is None or a == ""
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        da = a if isinstance(a, dt.datetime) else dt.datetime.combine(a, dt.time())
        db = b if isinstance(b, dt.datetime) else dt.datetime.combine(b, dt.time())
        return da == db
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return type(a) is type(b) and bool(a == b)


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))


class _Styles:
    """The style sheet's cell formats, enough to give a date a date format."""

    def __init__(self, root: etree._Element):
        self.root = root
        self._date_xf: dict[int, int] = {}

    def _xfs(self) -> etree._Element:
        xfs = self.root.find(f"{_M}cellXfs")
        if xfs is None:
            raise PerseatError("the workbook's style sheet has no cell formats; nothing was written")
        return xfs

    def _date_numfmt(self) -> int:
        fmts = self.root.find(f"{_M}numFmts")
        if fmts is None:
            fmts = etree.Element(f"{_M}numFmts")
            self.root.insert(0, fmts)
        used = [int(f.get("numFmtId", "0")) for f in fmts]
        for f in fmts:
            if f.get("formatCode") == DATE_FORMAT:
                return int(f.get("numFmtId", "0"))
        new_id = max([163, *used]) + 1
        etree.SubElement(fmts, f"{_M}numFmt", numFmtId=str(new_id), formatCode=DATE_FORMAT)
        fmts.set("count", str(len(fmts)))
        return new_id

    def is_date(self, s: int) -> bool:
        xfs = list(self._xfs())
        if s >= len(xfs):
            return False
        fid = int(xfs[s].get("numFmtId", "0"))
        if fid in _BUILTIN_DATE_FORMATS:
            return True
        fmts = self.root.find(f"{_M}numFmts")
        for f in fmts if fmts is not None else ():
            if int(f.get("numFmtId", "-1")) == fid:
                code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", f.get("formatCode", "")).lower()
                return "y" in code or "d" in code
        return False

    def date_style(self, s: int) -> int:
        """``s`` if it formats dates, else a copy of it with a date format."""
        if self.is_date(s):
            return s
        if s not in self._date_xf:
            xfs = self._xfs()
            base = list(xfs)[s] if s < len(xfs) else etree.Element(f"{_M}xf")
            xf = etree.fromstring(etree.tostring(base))
            xf.set("numFmtId", str(self._date_numfmt()))
            xf.set("applyNumberFormat", "1")
            xfs.append(xf)
            xfs.set("count", str(len(xfs)))
            self._date_xf[s] = len(xfs) - 1
        return self._date_xf[s]


def _number_text(v: int | float | Decimal) -> str:
    """A number as a cell's ``<v>`` holds it."""
    return format(v, "f") if isinstance(v, Decimal) else repr(int(v) if isinstance(v, int) else float(v))


def _date_text(v: dt.date) -> str:
    """A date (or date and time) as its Excel serial number."""
    stamp = v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
    serial = (stamp.replace(tzinfo=None) - dt.datetime.combine(EXCEL_EPOCH, dt.time())) / dt.timedelta(days=1)
    return repr(int(serial) if serial.is_integer() else serial)


def _checked_text(value: str, where: str) -> str:
    """Text for a cell (:func:`xml_text`), refused when longer than an Excel cell holds."""
    text = xml_text(value)
    if len(text) > EXCEL_CELL_CHARS:
        raise PerseatError(f"{where} would hold {len(text):,} characters; an Excel cell holds at most "
                           f"{EXCEL_CELL_CHARS:,}. Shorten the value ({text[:40]!r}…) where it comes from; nothing "
                           "was written")
    return text


class _Sheet:
    """A worksheet's cells, edited in place."""

    def __init__(self, root: etree._Element, part: str):
        self.root = root
        self.part = part
        data = root.find(f"{_M}sheetData")
        if data is None:
            raise PerseatError(f"the worksheet {part} has no cell data; nothing was written")
        self.data = data
        # row number → position among the sheet data's children; an element is taken (and held) only for the
        # rows an edit touches: a Python handle on each of a large sheet's rows costs more than the edit
        self._at: dict[int, int] = {}
        self._held: dict[int, etree._Element] = {}
        r = 0
        count = 0
        for count, row in enumerate(data, start=1):
            got = row.get("r")
            r = int(got or r + 1)
            if got != str(r):
                row.set("r", str(r))
            self._at[r] = count - 1
        self._children = count
        self._last = max(self._at, default=0)
        self._cell_maps: dict[int, dict[int, etree._Element]] = {}
        self._touched: set[int] = set()
        self._col_style: dict[int, int] | None = None
        self.title = part

    def _cells(self, r: int) -> dict[int, etree._Element]:
        """Column → cell element of row ``r`` (kept up to date as cells are added)."""
        cells = self._cell_maps.get(r)
        if cells is None:
            row = self._element(r)
            assert row is not None
            cells = {}
            c = -1
            for cell in row:
                ref = cell.get("r")
                c = split_ref(ref)[0] if ref else c + 1
                if not ref:
                    cell.set("r", f"{col_letter(c)}{r}")
                cells[c] = cell
            self._cell_maps[r] = cells
        return cells

    def forget(self) -> None:
        """Drop the handles taken on rows and cells (before the tree itself is let go)."""
        self._cell_maps.clear()
        self._held.clear()

    def _element(self, r: int) -> etree._Element | None:
        """Row ``r``'s element (None: the sheet has no such row)."""
        row = self._held.get(r)
        if row is None:
            i = self._at.get(r)
            if i is None:
                return None
            # lxml finds a child by walking from the nearer end
            row = self.data[i] if 2 * i < self._children else self.data[i - self._children]
            self._held[r] = row
        return row

    def hold(self, numbers: Iterable[int]) -> None:
        """Take the elements of rows ``numbers`` in one walk over the sheet (an edit of many rows), rather than
        one walk each."""
        wanted = {self._at[r]: r for r in numbers if r in self._at and r not in self._held}
        if len(wanted) < 16:
            return
        last = max(wanted)
        for i, row in enumerate(self.data):
            if i in wanted:
                self._held[wanted[i]] = row
            if i >= last:
                break

    def _row(self, r: int) -> etree._Element:
        row = self._element(r)
        if row is None:
            row = self._new_row(r)
        elif r not in self._touched:
            row.attrib.pop("spans", None)
            self._touched.add(r)
        return row

    def _new_row(self, r: int) -> etree._Element:
        """An empty row ``r`` put in its place among the sheet's rows."""
        row = etree.Element(f"{_M}row", r=str(r))
        if r > self._last:
            self.data.append(row)
            self._at[r] = self._children
            self._last = r
        else:
            following = min(k for k in self._at if k > r)
            after = self._element(following)
            assert after is not None
            place = self._at[following]
            after.addprevious(row)
            for k, i in self._at.items():
                if i >= place:
                    self._at[k] = i + 1
            self._at[r] = place
        self._children += 1
        self._held[r] = row
        self._cell_maps[r] = {}
        return row

    def cell(self, c: int, r: int, *, create: bool) -> etree._Element | None:
        if not create and r not in self._at:
            return None
        row = self._row(r) if create else self._element(r)
        assert row is not None
        cells = self._cells(r)
        if c in cells or not create:
            return cells.get(c)
        cell = etree.Element(f"{_M}c", r=f"{col_letter(c)}{r}")
        if cells and c < max(cells):
            cells[min(k for k in cells if k > c)].addprevious(cell)
        else:
            row.append(cell)
        cells[c] = cell
        return cell

    @property
    def last_row(self) -> int:
        return self._last

    def append_rows(self, c0: int, formulas: Sequence[str | None], rows: Sequence[tuple[int, Sequence[Any]]],
                    styles: Sequence[int], style_sheet: Any) -> None:
        """New rows (ascending row numbers) below every existing one: their XML is written as text and
        parsed once, cell for cell what :meth:`set` would make (a cell with no value, formula or style is
        left out)."""
        if not rows:
            return
        if rows[0][0] <= self._last:
            raise PerseatError(f"row {rows[0][0]} of {self.title} is not below the sheet's rows; nothing was written")
        letters = [col_letter(c0 + j) for j in range(len(formulas))]
        date_styles: dict[int, int] = {}
        parts: list[str] = []
        for r, values in rows:
            parts.append(f'<row r="{r}">')
            for j, f in enumerate(formulas):
                v = values[j]
                s = styles[j]
                if f is not None:
                    body, kind = f"<f>{xml_escape(f)}</f>", ""
                elif v is None or (isinstance(v, str) and v == ""):
                    if not s:
                        continue
                    body, kind = "", ""
                else:
                    body, kind = self._value_xml(v, f"{letters[j]}{r}")
                    if isinstance(v, dt.date):
                        if s not in date_styles:
                            date_styles[s] = style_sheet().date_style(s) if style_sheet is not None else s
                        s = date_styles[s]
                style = f' s="{s}"' if s else ""
                parts.append(f'<c r="{letters[j]}{r}"{kind}{style}>{body}</c>' if body else
                             f'<c r="{letters[j]}{r}"{kind}{style}/>')
            parts.append("</row>")
        self._add_rows([r for r, _ in rows], parts)
        self._last = rows[-1][0]

    def _add_rows(self, numbers: list[int], parts: list[str]) -> None:
        """Rows ``numbers``, written out as ``parts``, put below the sheet's rows."""
        made = _parse(f'<sheetData xmlns="{MAIN}">{"".join(parts)}</sheetData>'.encode(), self.part)
        for r, row in zip(numbers, list(made), strict=True):
            self.data.append(row)
            self._at[r] = self._children
            self._children += 1

    def _value_xml(self, v: Any, ref: str) -> tuple[str, str]:
        """The body and type attribute of a cell holding ``v`` (not blank, not a formula)."""
        if isinstance(v, bool):
            return f"<v>{int(v)}</v>", ' t="b"'
        if isinstance(v, int | float | Decimal):
            if not math.isfinite(v):
                raise PerseatError(f"cannot write {v} into {self.title}!{ref}; nothing was written")
            return f"<v>{_number_text(v)}</v>", ""
        if isinstance(v, dt.date):
            return f"<v>{_date_text(v)}</v>", ""
        text = _checked_text(str(v), f"{self.title}!{ref}")
        space = ' xml:space="preserve"' if text != text.strip() else ""
        return f"<is><t{space}>{xml_escape(text)}</t></is>", ' t="inlineStr"'

    def occupied(self, c0: int, c1: int, r0: int, r1: int) -> str | None:
        """The first cell holding a value or formula in the block, if any."""
        for r in sorted(k for k in self._at if r0 <= k <= r1):
            for c, cell in self._cells(r).items():
                if c0 <= c <= c1 and len(cell):
                    return f"{col_letter(c)}{r}"
        return None

    def column_styles(self, c0: int, c1: int, first: int, last: int) -> list[int]:
        """Style of each column's cells: the table's last data row, else the column's own style."""
        out = []
        cols = self._col_styles()
        for c in range(c0, c1 + 1):
            s = None
            for r in range(last, max(first, last - 3) - 1, -1):
                cell = self.cell(c, r, create=False)
                if cell is not None and cell.get("s") is not None:
                    s = int(cell.get("s", "0"))
                    break
            out.append(s if s is not None else cols.get(c, 0))
        return out

    def _col_styles(self) -> dict[int, int]:
        if self._col_style is None:
            self._col_style = {}
            cols = self.root.find(f"{_M}cols")
            for col in cols if cols is not None else ():
                if col.get("style") is not None:
                    for c in range(int(col.get("min", "1")) - 1, int(col.get("max", "1"))):
                        self._col_style[c] = int(col.get("style", "0"))
        return self._col_style

    def set(self, c: int, r: int, v: Any, style: int, styles: Any = None, *, formula: str | None = None) -> None:
        """Put value ``v`` (or a formula) in the cell, keeping its style (or giving it ``style``)."""
        cell = self.cell(c, r, create=True)
        assert cell is not None
        self._fill(cell, v, style, styles, formula)

    def _fill(self, cell: etree._Element, v: Any, style: int, styles: Any, formula: str | None) -> None:
        for child in list(cell):
            cell.remove(child)
        cell.attrib.pop("t", None)
        cell.attrib.pop("cm", None)
        cell.attrib.pop("vm", None)
        s = int(cell.get("s", style))
        if formula is not None:
            etree.SubElement(cell, f"{_M}f").text = formula
        elif v is None or (isinstance(v, str) and v == ""):
            pass
        elif isinstance(v, bool):
            cell.set("t", "b")
            etree.SubElement(cell, f"{_M}v").text = "1" if v else "0"
        elif isinstance(v, int | float | Decimal):
            if not math.isfinite(v):
                raise PerseatError(f"cannot write {v} into {self.title}!{cell.get('r')}; nothing was written")
            etree.SubElement(cell, f"{_M}v").text = _number_text(v)
        elif isinstance(v, dt.date):
            etree.SubElement(cell, f"{_M}v").text = _date_text(v)
            if styles is not None:
                s = styles().date_style(s)
        else:
            text = _checked_text(str(v), f"{self.title}!{cell.get('r')}")
            cell.set("t", "inlineStr")
            t = etree.SubElement(etree.SubElement(cell, f"{_M}is"), f"{_M}t")
            t.text = text
            if text != text.strip():
                t.set(_XML_SPACE, "preserve")
        if s:
            cell.set("s", str(s))

    def unshare(self) -> None:
        """Write every shared formula of the sheet out in full (each cell its own formula, translated from the
        group's first cell), so editing or clearing a cell can never orphan the rest of a group."""
        shared = [f for f in self.root.iter(f"{_M}f") if f.get("t") == "shared"]
        if not shared:
            return
        from openpyxl.formula.translate import Translator  # lazy: only sheets with shared formulas

        masters = {f.get("si"): (f.getparent().get("r"), f.text) for f in shared
                   if f.get("ref") is not None and f.text}
        for f in shared:
            origin, text = masters.get(f.get("si"), (None, None))
            here = f.getparent().get("r")
            if text is None:
                continue  # a group without its first cell: leave it as Excel wrote it
            if origin and here and here != origin and _A1_REF.search(text):
                text = Translator("=" + text, origin=origin).translate_formula(here)[1:]
            f.text = text
            for a in ("t", "ref", "si"):
                f.attrib.pop(a, None)

    def keep_formula(self, c: int, r: int, formula: str, style: int, *, existing: bool) -> None:
        """A calculated column's cell: keep the formula it holds (or, on a row that was there, the value a user
        typed over it — Excel keeps such exceptions), else give it the column's formula."""
        cell = self.cell(c, r, create=True)
        assert cell is not None
        if cell.find(f"{_M}f") is not None or (existing and len(cell)):
            return
        self._fill(cell, None, style, None, formula)

    def clear(self, c: int, r: int) -> None:
        """Empty a cell (its style stays)."""
        cell = self.cell(c, r, create=False)
        if cell is not None:
            for child in list(cell):
                cell.remove(child)
            cell.attrib.pop("t", None)

    def extend_dimension(self, c: int, r: int) -> None:
        dim = self.root.find(f"{_M}dimension")
        if dim is None:
            return
        c0, r0, c1, r1 = _range(str(dim.get("ref", "A1")))
        dim.set("ref", f"{col_letter(min(c0, c))}{min(r0, r)}:{col_letter(max(c1, c))}{max(r1, r)}")


_SHEET_DATA = re.compile(rb"<sheetData\b[^>]*>")
_ROW_START = re.compile(rb"<row\b")
_ROW_NUMBER = re.compile(rb'<row\b[^>]*?\sr="([0-9]+)"')
_ROOT_TAG = re.compile(rb"<worksheet\b[^>]*>")
_UNUSUAL = (b"<!", b"<?", b't="shared"', b":row")
"""Among a sheet's rows: comments, CDATA, declarations, processing instructions, shared formulas, prefixed rows."""


class _SplicedSheet(_Sheet):
    """A large worksheet edited without parsing all of it: the rows are cut from the part's bytes, only the
    rows an edit touches are parsed, and saving writes every other row back byte for byte. Used when the part
    is plain UTF-8 with one unprefixed ``<sheetData>`` of ascending, numbered ``<row>`` elements and nothing
    unusual (comments, CDATA, processing instructions, shared formulas, prefixed rows); else the whole part
    is parsed (:class:`_Sheet`)."""

    @classmethod
    def of(cls, data: bytes, part: str) -> _SplicedSheet | None:
        """The sheet of part bytes ``data``, or None when they are not plain enough to splice."""
        declared = data[:200].lower().split(b"?>")[0] if data[:5].lower() == b"<?xml" else b""
        if data[:3] == b"\xef\xbb\xbf" or (b"encoding" in declared and b"utf-8" not in declared):
            return None
        root_tag = _ROOT_TAG.search(data)
        found = _SHEET_DATA.search(data)
        if root_tag is None or found is None or found.group().endswith(b"/>") or \
                f'xmlns="{MAIN}"'.encode() not in root_tag.group():
            return None
        begin = found.end()
        end = data.find(b"</sheetData>", begin)
        if end < 0 or _SHEET_DATA.search(data, end) is not None or any(data.find(u, begin, end) >= 0
                                                                         for u in _UNUSUAL):
            return None
        found_rows = [(m.start(), m.group(1)) for m in _ROW_NUMBER.finditer(data, begin, end)]
        if not found_rows or data.count(b"<row", begin, end) != len(found_rows) or \
                data[begin:found_rows[0][0]].strip():
            return None  # (a row without its number)
        starts = [at for at, _ in found_rows]
        numbers = [int(n) for _, n in found_rows]
        if any(b <= a for a, b in itertools.pairwise(numbers)) or numbers[0] < 1:
            return None
        skeleton = _parse(data[:begin] + data[end:], part)
        return cls(skeleton, part, data, root_tag.group(), numbers, [*starts, end])

    def __init__(self, root: etree._Element, part: str, data: bytes, root_tag: bytes, numbers: list[int],
                 bounds: list[int]):
        super().__init__(root, part)
        self._bytes = data
        self._root_tag = root_tag
        self._span = {r: (bounds[i], bounds[i + 1]) for i, r in enumerate(numbers)}  # row → its bytes
        self._order = numbers  # the rows in the order they are written back
        self._at = dict.fromkeys(numbers, 0)
        self._added: dict[int, bytes] = {}  # rows added as text, written back as they are
        self._last = numbers[-1]

    def _element(self, r: int) -> etree._Element | None:
        row = self._held.get(r)
        if row is None and (r in self._span or r in self._added):
            self.hold([r], at_least=1)
            row = self._held.get(r)
        return row

    def _text(self, r: int) -> bytes:
        """Row ``r`` as written: cut from the part, or added as text."""
        if r in self._added:
            return self._added.pop(r)
        a, b = self._span[r]
        return self._bytes[a:b]

    def hold(self, numbers: Iterable[int], at_least: int = 16) -> None:
        """Parse rows ``numbers`` (their bytes, in one document) and keep them for editing."""
        wanted = [r for r in numbers if (r in self._span or r in self._added) and r not in self._held]
        if len(wanted) < at_least:
            return
        body = b"".join(self._text(r) for r in wanted)
        made = _parse(self._root_tag + b"<sheetData>" + body + b"</sheetData></worksheet>", self.part)[0]
        rows = list(made)
        if [int(x.get("r", "0")) for x in rows] != wanted:
            raise PerseatError(f"the worksheet {self.part} holds rows perseat cannot read apart; nothing was written")
        for r, row in zip(wanted, rows, strict=True):
            self.data.append(row)  # into the sheet's own tree; saving puts it back in its place
            self._held[r] = row

    def _new_row(self, r: int) -> etree._Element:
        row = etree.SubElement(self.data, f"{_M}row", r=str(r))
        bisect.insort(self._order, r)
        self._at[r] = 0
        self._last = max(self._last, r)
        self._held[r] = row
        self._cell_maps[r] = {}
        return row

    def _add_rows(self, numbers: list[int], parts: list[str]) -> None:
        text = "".join(parts).encode()
        cuts = [m.start() for m in _ROW_START.finditer(text)] + [len(text)]
        for i, r in enumerate(numbers):
            self._added[r] = text[cuts[i]:cuts[i + 1]]
            self._order.append(r)
            self._at[r] = 0

    def serialize(self) -> bytes:
        """The part: the sheet's tree around its rows, each row as it was unless an edit touched it."""
        out = _serialize(self.root)
        found = _SHEET_DATA.search(out)
        assert found is not None
        if found.group().endswith(b"/>"):
            begin = end = found.end()
            before, after = out[:found.start()] + found.group()[:-2] + b">", b"</sheetData>" + out[found.end():]
        else:
            begin, end = found.end(), out.index(b"</sheetData>", found.end())
            before, after = out[:begin], out[end:]
        edited = {int(m.group(1)): m.start() for m in _ROW_NUMBER.finditer(out, begin, end)}
        starts = sorted(edited.values())
        ends = [*starts[1:], end] if starts else []
        mine = dict(zip(sorted(edited, key=edited.__getitem__), ends, strict=True))
        pieces = [before]
        for r in self._order:
            if r in edited:
                pieces.append(out[edited[r]:mine[r]])
            elif r in self._added:
                pieces.append(self._added[r])
            else:
                a, b = self._span[r]
                pieces.append(self._bytes[a:b])
        pieces.append(after)
        return b"".join(pieces)


_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_SMALL = 0xFFFF_FFFF


_SPLICE = 1 << 20
"""A worksheet part at least this large is edited by splicing its rows (:class:`_SplicedSheet`)."""

_SPLIT = 4 << 20
"""A part at least this large is deflated in two halves side by side."""


def _deflate(body: bytes) -> bytes:
    """``body`` as a raw deflate stream. A large part is deflated in two halves at once (zlib works without the
    GIL): the first half ends on a sync flush (a byte-aligned, non-final block), so the two streams joined are
    one valid stream; the second half only loses back-references into the first."""
    if len(body) < _SPLIT:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        return packer.compress(body) + packer.flush()
    view = memoryview(body)
    half = len(body) // 2

    def head() -> bytes:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        return packer.compress(view[:half]) + packer.flush(zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(1, thread_name_prefix="perseat-deflate") as pool:
        first = pool.submit(head)
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        rest = packer.compress(view[half:]) + packer.flush()
        return first.result() + rest


def _repack(original: bytes, kept: Sequence[zipfile.ZipInfo], added: Sequence[zipfile.ZipInfo],
            bodies: Mapping[str, bytes]) -> bytes | None:
    """The package with ``bodies`` (edited and ``added`` parts) deflated and every other kept part copied as
    its compressed bytes (no inflating and deflating again: most of a large workbook is its unchanged
    Roster); None when a part does not fit a plain (not ZIP64) zip, or is not where its header says."""
    out = io.BytesIO()
    central: list[bytes] = []
    for info in [*kept, *added]:
        name = info.filename.encode("utf-8")
        flags = (info.flag_bits & 0x0800) | (0x0800 if not name.isascii() else 0)
        if info.filename in bodies:
            body = bodies[info.filename]
            raw = _deflate(body)
            method, crc, size = zipfile.ZIP_DEFLATED, zlib.crc32(body), len(body)
        else:
            start = info.header_offset
            head = original[start:start + _LOCAL.size]
            if len(head) < _LOCAL.size or head[:4] != b"PK\x03\x04" or info.flag_bits & 0x1:
                return None
            name_len, extra_len = struct.unpack_from("<HH", head, 26)
            begin = start + _LOCAL.size + name_len + extra_len
            raw = original[begin:begin + info.compress_size]
            if len(raw) != info.compress_size:
                return None
            method, crc, size = info.compress_type, info.CRC, info.file_size
        offset = out.tell()
        if max(offset, len(raw), size) >= _SMALL or len(central) >= 0xFFFF:
            return None
        dos_date = (info.date_time[0] - 1980) << 9 | info.date_time[1] << 5 | info.date_time[2]
        dos_time = info.date_time[3] << 11 | info.date_time[4] << 5 | info.date_time[5] // 2
        version = max(20, info.extract_version)
        out.write(_LOCAL.pack(b"PK\x03\x04", version, flags, method, dos_time, dos_date, crc, len(raw), size,
                              len(name), 0))
        out.write(name)
        out.write(raw)
        made_by = max(20, info.create_version) | info.create_system << 8
        central.append(_CENTRAL.pack(b"PK\x01\x02", made_by, version, flags, method, dos_time, dos_date, crc,
                                     len(raw), size, len(name), 0, 0, 0, info.internal_attr,
                                     info.external_attr or 0o600 << 16, offset) + name)
    start = out.tell()
    out.write(b"".join(central))
    size = out.tell() - start
    if start >= _SMALL:
        return None
    out.write(_END.pack(b"PK\x05\x06", 0, 0, len(central), len(central), size, start, 0))
    return out.getvalue()


MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"


PLAIN_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def macro_enable(data: bytes) -> bytes:
    """Give a package the macro-enabled workbook content type (required for .xlsm)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "[Content_Types].xml":
                body = body.replace(PLAIN_MAIN.encode(), MACRO_MAIN.encode())
            dst.writestr(info, body)
    return out.getvalue()
