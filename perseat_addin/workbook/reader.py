"""Read Excel tables (ListObjects) from an .xlsx/.xlsm safely and fast.

Cell values come from python-calamine, which reads tables by name. Calamine
shows Excel error cells (#N/A, #REF!, ...) as blanks, so sheets whose XML holds
error cells are scanned once more with openpyxl to put the errors back: a
billing run must never mistake ``#N/A`` for an empty cell.
"""

from __future__ import annotations

import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from defusedxml import ElementTree as SafeET
from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from perseat_addin.cells import ExcelError
from perseat_addin.errors import WorkbookError
from perseat_addin.tables import RawTable

MAX_UNCOMPRESSED = 2 * 1024**3
"""Refuse workbooks that unpack to more than this (zip bombs)."""

MAX_RATIO = 200
"""Refuse members compressed more than this (zip bombs)."""

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


_COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""How an OLE compound file starts: an encrypted (password-protected) workbook, or an old .xls."""


def _refuse_compound(path: Path) -> None:
    """A password-protected workbook (or an old .xls) is a compound file, not a zip: say which, and the fix."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return  # the checks that follow say what is wrong with the path
    if head != _COMPOUND_FILE:
        return
    try:
        CalamineWorkbook.from_path(str(path))
    except PasswordError:
        raise WorkbookError(f"{path}: the workbook is password-protected; open it in Excel, remove the password "
                            "(File ▸ Info ▸ Protect Workbook ▸ Encrypt with Password, clear it), save, and try "
                            "again") from None
    except CalamineError:
        pass
    raise WorkbookError(f"{path}: an old-format .xls workbook; open it in Excel and save it as "
                        "'Excel Macro-Enabled Workbook' (.xlsm)")


def _check_zip(path: Path) -> dict[str, str]:
    """Open the package safely; return sheet name → sheet XML part name."""
    if not path.exists():
        raise WorkbookError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise WorkbookError(
            f"{path}: not an .xlsx/.xlsm workbook (save it from Excel as "
            "'Excel Macro-Enabled Workbook' or 'Excel Workbook')"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                total += info.file_size
                ratio = info.file_size / info.compress_size if info.compress_size else 0
                if ratio > MAX_RATIO and info.file_size > 10 * 1024**2:
                    raise WorkbookError(f"{path}: part {info.filename} is suspiciously compressed")
            if total > MAX_UNCOMPRESSED:
                raise WorkbookError(f"{path}: workbook unpacks to more than 2 GiB; refusing to read")
            names = set(zf.namelist())
            if "xl/workbook.xml" not in names:
                raise WorkbookError(f"{path}: no xl/workbook.xml; not an Excel workbook")
            wb = SafeET.fromstring(zf.read("xl/workbook.xml"))
            rels_xml = SafeET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (zipfile.BadZipFile, KeyError, SafeET.ParseError) as exc:
        raise WorkbookError(f"{path}: damaged workbook ({exc})") from None
    targets = {r.get("Id"): r.get("Target", "") for r in rels_xml.iter(f"{_NS_PKG_REL}Relationship")}
    sheets: dict[str, str] = {}
    for sh in wb.iter(f"{_NS_MAIN}sheet"):
        target = targets.get(sh.get(f"{_NS_REL}id"), "")
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        sheets[sh.get("name", "")] = part
    return sheets


_ERR_CELL = re.compile(rb't="e"')
_SCANNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perseat-scan")


def _sheets_with_errors(path: Path, parts: dict[str, str]) -> set[str]:
    """Names of the sheets whose XML holds an error cell (t="e")."""
    out = set()
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for sheet, part in parts.items():
            if part not in names:
                continue
            tail = b""
            with zf.open(part) as f:
                while chunk := f.read(1 << 22):
                    if _ERR_CELL.search(tail + chunk):
                        out.add(sheet)
                        break
                    tail = chunk[-8:]
    return out


def _error_cells(path: Path, sheet: str, part: str) -> dict[tuple[int, int], ExcelError]:
    """(row, col) zero-based → error value, for a sheet known to hold error cells."""
    import openpyxl  # lazy (start-up time): only for the rare sheets that hold error values

    out: dict[tuple[int, int], ExcelError] = {}
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        ws = wb[sheet]
        for r, row in enumerate(ws.iter_rows()):
            for cell in row:
                if getattr(cell, "data_type", None) == "e" and cell.value is not None:
                    out[(r, cell.column - 1)] = ExcelError(str(cell.value))
    finally:
        wb.close()
    return out


class WorkbookFile:
    """Read-only view of a workbook's tables, by name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _refuse_compound(self.path)
        self._parts = _check_zip(self.path)
        try:
            self._wb = CalamineWorkbook.from_path(str(self.path), load_tables=True)
        except CalamineError as exc:  # damaged XML or zip inside the package
            raise WorkbookError(f"{self.path}: cannot read workbook ({exc})") from None
        try:
            self._tables = {t.lower(): t for t in (self._wb.table_names or [])}
        except CalamineError:  # table parts that cannot be read: read the sheets instead
            self._tables = {}
        self.sheet_names: list[str] = list(self._wb.sheet_names)
        self._errors: dict[str, dict[tuple[int, int], ExcelError]] = {}
        # Which sheets hold error cells: their XML is inflated and searched on a second thread
        # (zlib works without the GIL) while calamine reads the values here.
        self._scan = _SCANNER.submit(_sheets_with_errors, self.path, dict(self._parts))
        self._read: dict[str, RawTable | None] = {}

    def _sheet_errors(self, sheet: str) -> dict[tuple[int, int], ExcelError]:
        if sheet not in self._errors:
            part = self._parts.get(sheet)
            found: dict[tuple[int, int], ExcelError] = {}
            if part and sheet in self._scan.result():
                found = _error_cells(self.path, sheet, part)
            self._errors[sheet] = found
        return self._errors[sheet]

    def has_sheet(self, name: str) -> str | None:
        """The sheet's real name if a sheet of that name (any case) exists."""
        for s in self.sheet_names:
            if s.lower() == name.lower():
                return s
        return None

    def table(self, name: str) -> RawTable | None:
        """The Excel table ``name`` (any case), else the sheet of that name read from A1 (read once)."""
        key = name.lower()
        if key not in self._read:
            self._read[key] = self._table(name)
        return self._read[key]

    def release(self) -> None:
        """Forget the tables read so far (each is read again on demand)."""
        self._read.clear()

    def _table(self, name: str) -> RawTable | None:
        real = self._tables.get(name.lower())
        if real is not None:
            t = self._wb.get_table_by_name(real)
            (r0, c0), (r1, c1) = t.start or (0, 0), t.end or (0, 0)
            headers = tuple(str(h).strip() for h in (t.columns or []))
            # calamine's table start is the first data row (zero-based), below the header
            rows = t.to_python() if r1 >= r0 else []  # a fresh list of row lists
            sheet = str(t.sheet)
            raw = RawTable(real, sheet, headers, rows, first_row=r0 + 1, first_col=c0)
            errs = self._sheet_errors(sheet)
            for (er, ec), val in errs.items():
                if r0 <= er <= r1 and c0 <= ec <= c1:
                    raw.errors[(er - r0, ec - c0)] = val
            return raw
        sheet_name = self.has_sheet(name)
        if sheet_name is None:
            return None
        return self._sheet_as_table(sheet_name)

    def _sheet_as_table(self, sheet: str) -> RawTable:
        ws = self._wb.get_sheet_by_name(sheet)
        data = ws.to_python(skip_empty_area=False)
        start = 0
        while start < len(data) and all(v in ("", None) for v in data[start]):
            start += 1
        if start >= len(data):
            return RawTable(sheet, sheet, (), [], first_row=start + 2, first_col=0, is_table=False)
        header = data[start]
        width = len(header)
        while width and header[width - 1] in ("", None):
            width -= 1
        rows = [list(r[:width]) for r in data[start + 1 :]]
        while rows and all(v in ("", None) for v in rows[-1]):
            rows.pop()
        raw = RawTable(
            sheet,
            sheet,
            tuple(str(h).strip() for h in header[:width]),
            rows,
            first_row=start + 2,
            first_col=0,
            is_table=False,
        )
        for (er, ec), val in self._sheet_errors(sheet).items():
            if er > start and ec < width:
                raw.errors[(er - start - 1, ec)] = val
        return raw
