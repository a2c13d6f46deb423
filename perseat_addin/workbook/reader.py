"""Read Excel tables (ListObjects) from an .xlsx/.xlsm safely and fast.

A workbook is an untrusted file. Before a cell is read, :func:`check_package` reads the package once
(the file's bytes, read once, are all that is used afterwards):

- every zip member is inflated from its raw bytes with a cap, so a member's real size counts, not
  what the zip directory says (zip bombs, members that lie about their size);
- no XML part may declare a DTD (``<!DOCTYPE``/``<!ENTITY``: billion laughs, external entities);
- sheet names and table names are unique, table ranges are real ranges inside Excel's grid, tables'
  header cells match their column names;
- no sheet may make the reader allocate an absurd grid: a sheet's declared ``<dimension>`` and the
  positions its cells take are bounded (:data:`MAX_CELLS`). Sheets written the way Excel writes
  them (every row and cell with an ``r="…"`` position) are checked by one regular-expression pass
  (RE2, through pyarrow, which pandas loads anyway); any other sheet, or one that holds error cells,
  is walked element by element (expat), the way the cell reader will place its cells.

Cell values then come from python-calamine, which reads tables by name. A large table (at least
:data:`COLUMNAR_ROWS` rows) is read column by column into Arrow arrays by fastexcel (calamine too, without
a Python object per cell); on a large sheet, a block of rows at a time (:data:`BLOCK_BYTES` of its XML), so
the grid of a million rows' cells is never held at once. When a column mixes kinds of values (numbers and
text, say), holds times of day or dates before March 1900, or fastexcel fails, that table is read by
python-calamine instead, so both ways give the same values. Calamine shows Excel error cells (#N/A, #REF!,
...) as blanks; the walk above puts the errors back: a billing run must never mistake ``#N/A`` for an empty
cell. Whatever still goes wrong inside calamine ends as one message naming the file, the sheet and (when it
can be found) the row and column, never a traceback.
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import html
import io
import itertools
import logging
import os
import queue
import re
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from xml.parsers import expat

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from python_calamine import CalamineError, CalamineWorkbook

from perseat_addin.cells import ExcelError, col_index, col_letter
from perseat_addin.errors import WorkbookError
from perseat_addin.tables import ColumnRows, RawTable

COLUMNAR_ROWS = 2_000
"""Tables with at least this many data rows are read column by column (Arrow); smaller ones cell by cell."""

_DAY_MS = 86_400_000
_FIRST_DATE_MS = -25_509 * _DAY_MS
"""1900-03-01 in milliseconds since 1970: earlier serials are times of day or Excel's 1900 leap-year day,
which the two readers show differently."""

_COLUMN_TYPES = ("null", "string", "large_string", "double", "bool")

logging.getLogger("fastexcel").setLevel(logging.ERROR)  # its notes about blank columns are not the user's

MAX_FILE = 1024**3
"""Refuse workbook files larger than this (1 GiB): a workbook at Excel's row limit is far smaller."""

MAX_UNCOMPRESSED = 2 * 1024**3
"""Refuse workbooks that unpack to more than this (zip bombs)."""

MAX_RATIO = 200
"""Refuse members that inflate more than this many times over (zip bombs) once past :data:`BOMB_FLOOR`."""

BOMB_FLOOR = 10 * 1024**2

EXCEL_ROWS = 1_048_576
EXCEL_COLS = 16_384

MAX_CELLS = 1 << 25
"""The largest grid of cells a sheet may span (33,554,432: Excel's 1,048,576 rows × 32 columns, about 1 GB
in the cell reader). One stray value at XFD1048576 would otherwise make it allocate hundreds of GiB."""

_CHUNK = 1 << 22

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_TABLE_REL = "/table"

_COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""How an OLE compound file starts: an encrypted (password-protected) workbook, or an old .xls."""

_READABLE_ERRORS = frozenset({"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"})
"""The error values the cell reader understands; a sheet holding any other cannot be read."""

_EXCEL_ERRORS = _READABLE_ERRORS | {"#GETTING_DATA", "#SPILL!", "#CALC!", "#BUSY!", "#FIELD!", "#BLOCKED!",
                                    "#CONNECT!", "#UNKNOWN!", "#PYTHON!", "#EXTERNAL!"}

_FIX_DAMAGED = "open it in Excel (let Excel repair it if it offers to), save it, and try again"

T = TypeVar("T")


# --------------------------------------------------------------------------- small helpers


def _is_panic(exc: BaseException) -> bool:
    """A Rust panic inside python-calamine (pyo3's PanicException derives from BaseException)."""
    return type(exc).__name__ == "PanicException"


def _calamine(call: Callable[[], T]) -> T:
    """``call()``, with a Rust panic turned into a CalamineError."""
    try:
        return call()
    except CalamineError:
        raise
    except BaseException as exc:
        if _is_panic(exc):
            raise CalamineError(str(exc) or "the cell reader failed") from None
        raise


_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


def _cell_ref(ref: str) -> tuple[int, int] | None:
    """'C12' → (row 11, column 2), zero-based; None if it is not a cell inside Excel's grid."""
    m = _REF.match(ref.strip())
    if not m:
        return None
    col, row = col_index(m.group(1).upper()), int(m.group(2)) - 1
    if not (0 <= row < EXCEL_ROWS and 0 <= col < EXCEL_COLS):
        return None
    return row, col


def _area(ref: str) -> tuple[int, int, int, int] | None:
    """'A1:K76' → (r0, c0, r1, c1) zero-based; None if a corner is not a cell of the grid."""
    a, _, b = ref.partition(":")
    first, last = _cell_ref(a), _cell_ref(b or a)
    if first is None or last is None:
        return None
    return first[0], first[1], last[0], last[1]


def _a1(row: int, col: int) -> str:
    return f"{col_letter(col)}{row + 1}"


_XESC = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    """Text as Excel shows it: ``_xHHHH_`` escapes decoded."""
    return _XESC.sub(lambda m: chr(int(m.group(1), 16)), text)


def _same_name(a: str, b: str) -> bool:
    return " ".join(_unescape(a).split()).casefold() == " ".join(_unescape(b).split()).casefold()


# --------------------------------------------------------------------------- the file


def _read_file(path: Path) -> bytes:
    """The workbook's bytes, read once; a clear message when the path is no regular file."""
    if path.is_dir():
        raise WorkbookError(f"{path}: a folder, not a workbook; give the path of the workbook file (.xlsx or .xlsm) "
                            "itself")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise WorkbookError(f"{path}: a shortcut (symbolic link) to a file that does not exist; point it at "
                                "the workbook, or give the workbook's own path") from None
        raise WorkbookError(f"{path}: no such file; check the name and the folder") from None
    except OSError as exc:
        raise WorkbookError(f"{path}: {_open_error(exc)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise WorkbookError(f"{path}: a folder, not a workbook; give the path of the workbook file "
                                "(.xlsx or .xlsm) itself")
        if not stat.S_ISREG(st.st_mode):
            raise WorkbookError(f"{path}: not a regular file (a device, a pipe or a socket); give the path of the "
                                "workbook file (.xlsx or .xlsm)")
        if st.st_size > MAX_FILE:
            raise WorkbookError(f"{path}: the file is {st.st_size / 1024**3:.1f} GiB; perseat reads workbooks up to "
                                f"{MAX_FILE // 1024**3} GiB — is this really the billing workbook?")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise WorkbookError(f"{path}: {_open_error(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE:
        raise WorkbookError(f"{path}: the file is larger than {MAX_FILE // 1024**3} GiB; refusing to read it")
    if not data:
        raise WorkbookError(f"{path}: the file is empty (0 bytes), not a workbook — an interrupted copy or "
                            "download? Use a good copy of the workbook")
    return data


def _open_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a shortcut (symbolic link) that points back to itself; point it at the workbook file"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied); ask for read access or copy the workbook somewhere you can read it"
    if exc.errno == errno.ENOTDIR:
        return "part of the path is a file, not a folder; check the path"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long; move the workbook to a shorter path"
    return f"cannot be read ({exc.strerror or exc}); check the path"


def _refuse_compound(path: Path, data: bytes) -> None:
    """A password-protected workbook (or an old .xls) is a compound file, not a zip: say which, and the fix."""
    if not data.startswith(_COMPOUND_FILE):
        return
    if "EncryptedPackage".encode("utf-16-le") in data or "EncryptionInfo".encode("utf-16-le") in data:
        raise WorkbookError(f"{path}: the workbook is password-protected; open it in Excel, remove the password "
                            "(File ▸ Info ▸ Protect Workbook ▸ Encrypt with Password, clear it), save, and try "
                            "again")
    raise WorkbookError(f"{path}: an old-format .xls workbook; open it in Excel and save it as "
                        "'Excel Macro-Enabled Workbook' (.xlsm)")


# --------------------------------------------------------------------------- zip members


@dataclass
class _Member:
    name: str
    offset: int  # of the local header
    method: int
    flags: int
    compressed: int
    size: int  # as the central directory says


def _members(path: Path, data: bytes) -> list[_Member]:
    """The zip's members from its central directory (sizes as declared; they are checked when inflated)."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if eocd < 0 or len(data) < eocd + 22:
        if data.startswith(b"PK\x03\x04"):
            raise WorkbookError(f"{path}: the workbook is damaged: the zip is cut short (an interrupted copy or "
                                f"download?); use a good copy, or {_FIX_DAMAGED}")
        raise WorkbookError(f"{path}: not an .xlsx/.xlsm workbook (save it from Excel as "
                            "'Excel Macro-Enabled Workbook' or 'Excel Workbook')")
    try:  # the standard library reads the directory (ZIP64 included); members are inflated by _inflate
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError, OSError) as exc:
        raise WorkbookError(f"{path}: the workbook is damaged ({exc}); {_FIX_DAMAGED}") from None
    out: list[_Member] = []
    seen: set[str] = set()
    for i in infos:
        key = i.filename.replace("\\", "/").lstrip("/").lower()
        if key in seen:
            raise WorkbookError(f"{path}: the workbook holds the part {i.filename} twice, which Excel never "
                                f"writes (a damaged or tampered file); {_FIX_DAMAGED}")
        seen.add(key)
        out.append(_Member(i.filename, i.header_offset, i.compress_type, i.flag_bits, i.compress_size, i.file_size))
    return out


class _Budget:
    """What the whole package has inflated to so far."""

    def __init__(self) -> None:
        self.total = 0


def _inflate(path: Path, data: bytes, m: _Member, budget: _Budget | None) -> Iterator[bytes]:
    """The member's bytes in chunks, inflated from its raw data with caps; the directory's sizes are not trusted."""
    def damaged(why: str) -> WorkbookError:
        return WorkbookError(f"{path}: the workbook is damaged: the part {m.name} {why}; {_FIX_DAMAGED}")

    if m.flags & 0x1:
        raise WorkbookError(f"{path}: the part {m.name} is encrypted inside the zip, which Excel never does; "
                            "use a copy of the workbook saved by Excel")
    if m.method not in (0, 8):
        raise damaged(f"is compressed with method {m.method}, which Excel does not use")
    head = data[m.offset:m.offset + 30]
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise damaged("cannot be found where the zip directory says")
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    start = m.offset + 30 + name_len + extra_len
    raw = memoryview(data)[start:start + m.compressed]
    if len(raw) < m.compressed:
        raise damaged("is cut short")
    size = 0
    if m.method == 0:
        pieces: Iterator[bytes] = (bytes(raw[i:i + _CHUNK]) for i in range(0, len(raw), _CHUNK))
    else:
        pieces = _deflate_pieces(raw, damaged)
    for piece in pieces:
        size += len(piece)
        if budget is not None:
            budget.total += len(piece)
        if budget is not None and budget.total > MAX_UNCOMPRESSED:
            raise WorkbookError(f"{path}: the workbook unpacks to more than {MAX_UNCOMPRESSED // 1024**3} GiB "
                                "(a zip bomb?); refusing to read it")
        if size > BOMB_FLOOR and size > MAX_RATIO * max(m.compressed, 1):
            raise WorkbookError(f"{path}: the part {m.name} inflates more than {MAX_RATIO} times over (a zip "
                                "bomb?); refusing to read it — use a copy of the workbook saved by Excel")
        yield piece
    if size != m.size:  # (checksums are the cell reader's to check, on the parts it reads)
        raise damaged(f"holds {size:,} bytes but the zip directory says {m.size:,}")


_AHEAD = 1 << 20
"""Members larger than this (compressed) are inflated on a second thread while the first scans what is ready
(zlib and RE2 both run without the GIL)."""


def _ahead(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``pieces``, produced one step ahead on another thread; its errors are raised here, in order."""
    ready: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def pump() -> None:
        try:
            for piece in pieces:
                while not stop.is_set():
                    try:
                        ready.put((piece, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((None, None))
        except BaseException as exc:  # handed to the reader, which raises it
            ready.put((None, exc))

    threading.Thread(target=pump, name="perseat-inflate", daemon=True).start()
    try:
        while True:
            piece, exc = ready.get()
            if exc is not None:
                raise exc
            if piece is None:
                return
            yield piece
    finally:
        stop.set()


def _deflate_pieces(raw: memoryview, damaged: Callable[[str], WorkbookError]) -> Iterator[bytes]:
    d = zlib.decompressobj(-15)
    pos = 0
    try:
        while pos < len(raw) or d.unconsumed_tail:
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, _CHUNK)
            else:
                out = d.decompress(raw[pos:pos + _CHUNK], _CHUNK)
                pos += _CHUNK
            if out:
                yield out
            if d.eof:
                break
        tail = d.flush()
    except zlib.error as exc:
        raise damaged(f"cannot be inflated ({exc})") from None
    if tail:
        yield tail
    if not d.eof:
        raise damaged("is cut short")


# --------------------------------------------------------------------------- what the package holds


_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)")
_DTD16 = [re.compile(re.escape(f"<!{w}".encode(enc))) for w in ("DOCTYPE", "ENTITY") for enc in ("utf-16-le",
                                                                                                 "utf-16-be")]

_CELL_POS = (r"\sr=\"(?:[A-Za-z]{3}|[B-Zb-z][A-Za-z]|[Aa][G-Zg-z]|[A-Za-z]{0,3}(?:[0-9]{8}|[2-9][0-9]{6}|"
             r"1[1-9][0-9]{5}|10[5-9][0-9]{4}|1049[0-9]{3}|1048[6-9][0-9]{2}|10485[89][0-9]|104857[7-9]))")
"""A position beyond 32 columns or beyond Excel's last row."""
_NO_POS = (r"<(?:[\w.-]+:)?(?:c|row)(?:\s+(?:[^r\s=/>][^\s=/>]*|r[^\s=/>]+)\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*>")
"""A cell or row start tag without an ``r`` attribute (its position follows the one before)."""
_ODD_POS = r"\sr(?:\s*=\s*'|\s+=|=\s|=\"\s)"
"""An ``r`` attribute not written as ``r="…"``."""
_UNUSUAL = "|".join((r"<!", r"\st\s*=\s*'e'", r"\st\s+=|\st=\s", _CELL_POS, _NO_POS, _ODD_POS))
"""What sends a sheet to the element-by-element walk."""
_ERROR = r"\st=\"e\""
_MARKS = r"\xee\x80\x80|&#(?:[xX]0*[eE]000|0*57344);"
"""U+E000 (raw, or as a character reference): what marks shared strings when a sheet is read in blocks."""
_SUSPECT = f"{_UNUSUAL}|{_ERROR}|{_MARKS}"
"""What one RE2 pass over a sheet's XML looks for: anything unusual, an error cell, or the block mark."""
_ERROR_CELL = re.compile(rb"<(?:[\w.-]+:)?c\s([^>]*)>(.*?)</(?:[\w.-]+:)?c\s*>", re.S)
_R_ATTR = re.compile(rb"\sr=\"([A-Za-z]{1,3}[0-9]{1,7})\"")

_DIMENSION = re.compile(rb"<(?:[\w.-]+:)?dimension\s[^>]*?\bref\s*=\s*[\"']([^\"']*)[\"']")
_ROOT_UTF16 = (b"\xff\xfe", b"\xfe\xff")


@dataclass
class _TableInfo:
    name: str
    display: str
    part: str
    sheet: str
    ref: str
    area: tuple[int, int, int, int]  # r0, c0, r1, c1 zero-based, header row included
    header_rows: int
    totals_rows: int
    columns: list[str]

    @property
    def data_rows(self) -> int:
        return self.area[2] - self.area[0] + 1 - self.header_rows - self.totals_rows


@dataclass
class _SheetInfo:
    name: str
    part: str
    tables: list[_TableInfo] = field(default_factory=list)
    walk: bool = False  # needs the element-by-element walk
    walked: bool = False
    marked: bool = False  # holds U+E000 (then never read in blocks)
    errors: dict[tuple[int, int], ExcelError] = field(default_factory=dict)  # zero-based sheet positions
    problem: str | None = None  # why this sheet cannot be read (found by the walk)
    headers: dict[int, dict[int, tuple[str, str]]] = field(default_factory=dict)  # row → col → (type, raw)


class _Package:
    """The checks on a workbook package before any cell is read."""

    def __init__(self, path: Path, data: bytes):
        self.path = path
        self.data = data
        self.members = {m.name: m for m in _members(path, data)}
        self.budget = _Budget()
        self.sheets: list[_SheetInfo] = []
        self.tables: dict[str, _TableInfo] = {}  # lower-case name → table
        self.shared_count: int | None = None
        self.shared_texts: dict[int, str] = {}
        self.shared_part = "xl/sharedStrings.xml"
        self.split_tags: set[str] = set()  # parts with a tag longer than a chunk (cut inside it)
        self.inflated: set[str] = set()
        self.styles_part: str | None = None
        self.date1904 = False

    # -- reading parts

    def chunks(self, name: str) -> Iterator[bytes]:
        """A part's bytes in chunks, each ending at a '<' boundary where it can (tags stay whole)."""
        m = self.members[name]
        carry = b""
        is_xml = name.endswith((".xml", ".rels", ".vml"))
        first = name not in self.inflated  # each part counts once towards the package's size
        self.inflated.add(name)
        pieces = _inflate(self.path, self.data, m, self.budget if first else None)
        if m.compressed > _AHEAD:
            pieces = _ahead(pieces)
        for piece in pieces:
            buf = carry + piece
            cut = buf.rfind(b"<") if is_xml else len(buf)
            if cut <= 0 or len(buf) - cut > _CHUNK:
                if is_xml and buf.rfind(b">") < buf.rfind(b"<"):
                    self.split_tags.add(name)
                cut = len(buf)
            carry = buf[cut:]
            if cut:
                yield buf[:cut]
        if carry:
            yield carry

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def xml(self, name: str, what: str) -> Any:
        """A small part parsed (DTDs are refused before this)."""
        raw = self.read(name)
        self.refuse_dtd(name, raw, wide=True)
        try:
            return SafeET.fromstring(raw)
        except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
            raise WorkbookError(f"{self.path}: the workbook is damaged: {what} ({name}) is not readable XML "
                                f"({exc}); {_FIX_DAMAGED}") from None

    def refuse_dtd(self, name: str, raw: bytes, wide: bool = False) -> None:
        """Refuse a part that declares a DTD (``wide``: also look for one written in UTF-16)."""
        if _DTD.search(raw) or (wide and any(p.search(raw) for p in _DTD16)):
            raise WorkbookError(f"{self.path}: the part {name} declares a DTD (<!DOCTYPE …> or <!ENTITY …>), which "
                                "no Excel workbook holds (a hostile or damaged file); refusing to read it — use a "
                                "copy of the workbook saved by Excel")

    # -- the checks

    def inspect(self) -> None:
        if "xl/workbook.xml" not in self.members:
            raise WorkbookError(f"{self.path}: no xl/workbook.xml inside: not an Excel workbook, or a damaged one; "
                                f"{_FIX_DAMAGED}")
        if "xl/_rels/workbook.xml.rels" not in self.members:
            raise WorkbookError(f"{self.path}: the workbook is damaged: its list of parts "
                                f"(xl/_rels/workbook.xml.rels) is missing; {_FIX_DAMAGED}")
        wb = self.xml("xl/workbook.xml", "the list of sheets")
        rels = self.xml("xl/_rels/workbook.xml.rels", "the list of parts")
        targets: dict[str, tuple[str, str]] = {}
        for r in rels.iter(f"{_NS_PKG_REL}Relationship"):
            targets[r.get("Id", "")] = (r.get("Type", ""), _resolve("xl/workbook.xml", r.get("Target", "")))
        for kind, part in targets.values():
            if kind.endswith("/sharedStrings"):
                self.shared_part = part
            elif kind.endswith("/styles"):
                self.styles_part = part
        pr = wb.find(f"{_NS_MAIN}workbookPr")
        self.date1904 = pr is not None and pr.get("date1904", "").strip().lower() in ("1", "true")
        seen: dict[str, str] = {}
        for sh in wb.iter(f"{_NS_MAIN}sheet"):
            name = sh.get("name", "")
            key = name.casefold()
            if key in seen:
                raise WorkbookError(f"{self.path}: two sheets are named {name!r}; Excel allows one sheet of a name — "
                                    f"{_FIX_DAMAGED}")
            seen[key] = name
            kind, part = targets.get(sh.get(f"{_NS_REL}id", ""), ("", ""))
            if kind.endswith("/chartsheet"):
                continue  # a chart: no cells to read
            if part not in self.members:
                raise WorkbookError(f"{self.path}: the workbook is damaged: the sheet {name!r} has no contents "
                                    f"({part or 'no part'} is missing); {_FIX_DAMAGED}")
            self.sheets.append(_SheetInfo(name, part))
        for sheet in self.sheets:
            self._find_tables(sheet)
        for sheet in self.sheets:
            self._scan_sheet(sheet)
        done = {s.part for s in self.sheets}
        shared = self.shared_part if self.shared_part in self.members else None
        for name in self.members:
            if name in done or name == shared:
                continue
            self._scan_part(name)
        if shared is not None:
            self._scan_shared(shared)
        self._check_headers()

    def _find_tables(self, sheet: _SheetInfo) -> None:
        folder, _, file = sheet.part.rpartition("/")
        rels_part = f"{folder}/_rels/{file}.rels"
        if rels_part not in self.members:
            return
        rels = self.xml(rels_part, f"the list of parts of sheet {sheet.name!r}")
        for r in rels.iter(f"{_NS_PKG_REL}Relationship"):
            if not r.get("Type", "").endswith(_TABLE_REL) or r.get("TargetMode") == "External":
                continue
            part = _resolve(sheet.part, r.get("Target", ""))
            if part not in self.members:
                raise WorkbookError(f"{self.path}: the workbook is damaged: a table on sheet {sheet.name!r} has no "
                                    f"contents ({part} is missing); {_FIX_DAMAGED}")
            self._table(sheet, part)

    def _table(self, sheet: _SheetInfo, part: str) -> None:
        t = self.xml(part, f"a table on sheet {sheet.name!r}")
        name = t.get("name") or t.get("displayName") or ""
        display = t.get("displayName") or name
        ref = t.get("ref") or ""
        where = f"{self.path}: sheet {sheet.name}, table {display}"
        area = _area(ref)
        if area is None:
            raise WorkbookError(f"{where}: its range {ref!r} is not a range of cells inside Excel's grid (A1 to "
                                f"XFD1048576); {_FIX_DAMAGED}, or re-create the table")
        r0, c0, r1, c1 = area
        if r1 < r0 or c1 < c0:
            raise WorkbookError(f"{where}: its range {ref!r} runs backwards (its last cell comes before its "
                                f"first); {_FIX_DAMAGED}, or re-create the table")
        try:
            header_rows = int(t.get("headerRowCount", "1"))
            totals_rows = int(t.get("totalsRowCount", "0"))
        except ValueError:
            raise WorkbookError(f"{where}: its header or totals row count is not a number; {_FIX_DAMAGED}") from None
        columns = [c.get("name", "") for c in t.iter(f"{_NS_MAIN}tableColumn")]
        info = _TableInfo(name, display, part, sheet.name, ref, area, header_rows, totals_rows, columns)
        if header_rows not in (0, 1) or totals_rows not in (0, 1) or info.data_rows < 0:
            raise WorkbookError(f"{where}: its range {ref!r} cannot hold its header and totals rows; "
                                f"{_FIX_DAMAGED}, or re-create the table")
        if len(columns) != c1 - c0 + 1:
            raise WorkbookError(f"{where}: it names {len(columns)} columns but its range {ref!r} is {c1 - c0 + 1} "
                                f"columns wide; {_FIX_DAMAGED}")
        for key in {name.casefold(), display.casefold()}:
            other = self.tables.get(key)
            if other is not None:
                raise WorkbookError(f"{self.path}: two tables are named {display!r} (on sheets {other.sheet} and "
                                    f"{sheet.name}); every table needs a name of its own — rename one in Excel "
                                    "(Table Design ▸ Table Name), save, and try again")
            self.tables[key] = info
        sheet.tables.append(info)
        if header_rows:
            sheet.headers.setdefault(r0, {})

    def _scan_part(self, name: str) -> None:
        """Any part other than a sheet or the shared strings: its size, and no DTD in XML."""
        is_xml = name.endswith((".xml", ".rels", ".vml"))
        tail = b""
        wide: bool | None = None
        for chunk in self.chunks(name):
            if is_xml:
                wide = _is_wide(chunk) if wide is None else wide
                self.refuse_dtd(name, tail + chunk, wide)
                tail = chunk[-32:]

    def _scan_sheet(self, sheet: _SheetInfo) -> None:
        first = True
        for chunk in self.chunks(sheet.part):
            if first:
                first = False
                if _is_wide(chunk):
                    self.refuse_dtd(sheet.part, chunk, wide=True)
                    sheet.walk = True  # not UTF-8: the walk reads it properly
                self._dimension(sheet, chunk)
            if not sheet.walk and _suspect(chunk):
                if _DTD.search(chunk):
                    self.refuse_dtd(sheet.part, chunk)
                if not sheet.marked and _count(_MARKS, chunk):
                    sheet.marked = True
                if _count(_UNUSUAL, chunk) or not self._error_cells(sheet, chunk):
                    sheet.walk = True
            self._capture_headers(sheet, chunk)
        if sheet.walk or sheet.part in self.split_tags:
            self.walk(sheet)

    def _error_cells(self, sheet: _SheetInfo, chunk: bytes) -> bool:
        """The error cells of a chunk written the way Excel writes them (``<c r="B3" t="e"><v>#N/A</v></c>``);
        False when one is written otherwise (the walk finds it)."""
        if chunk.count(b' t="e"') != _count(_ERROR, chunk):
            return False
        at = chunk.find(b' t="e"')
        while at >= 0:
            m = _ERROR_CELL.match(chunk, max(chunk.rfind(b"<", 0, at), 0))
            r = _R_ATTR.search(b" " + m.group(1)) if m else None
            pos = _cell_ref(r.group(1).decode("ascii")) if r else None
            if m is None or pos is None:
                return False
            v = _V.search(m.group(2))
            value = html.unescape(v.group(1).decode("utf-8", "replace")).strip() if v else ""
            if value:
                what = _error_problem(value)
                if what is None:
                    sheet.errors[pos] = ExcelError(value)
                elif sheet.problem is None:
                    row, col = pos
                    sheet.problem = (f"{self.path}: sheet {sheet.name}, row {row + 1}, column "
                                     f"{_column_label(sheet, row, col)} (cell {_a1(row, col)}): {what}")
            at = chunk.find(b' t="e"', m.end())
        return True

    def _dimension(self, sheet: _SheetInfo, chunk: bytes) -> None:
        m = _DIMENSION.search(chunk, 0, 1 << 16)
        if not m:
            return
        ref = m.group(1).decode("ascii", "replace")
        area = _area(ref)
        if area is None:
            raise WorkbookError(f"{self.path}: sheet {sheet.name}: it says its cells span {ref!r}, which is not a "
                                f"range inside Excel's grid; {_FIX_DAMAGED}")
        r0, c0, r1, c1 = area
        cells = (abs(r1 - r0) + 1) * (abs(c1 - c0) + 1)
        if cells > MAX_CELLS:
            raise WorkbookError(_too_big(self.path, sheet.name, f"says its cells span {ref}", cells,
                                         _a1(max(r0, r1), max(c0, c1))))

    def _capture_headers(self, sheet: _SheetInfo, chunk: bytes) -> None:
        for row, cells in sheet.headers.items():
            if cells:
                continue
            at = chunk.find(b'<row r="%d"' % (row + 1))
            if at < 0:
                continue
            end = chunk.find(b"</row>", at)
            if end < 0:
                continue
            for m in _HEADER_CELL.finditer(chunk, at, end):
                pos = _cell_ref(m.group(1).decode("ascii", "replace"))
                if pos is None or pos[0] != row:
                    continue
                kind = m.group(2).decode("ascii", "replace") if m.group(2) else "n"
                body = m.group(3) or b""
                if kind == "s":
                    v = _V.search(body)
                    body = v.group(1).strip() if v else b""
                cells[pos[1]] = (kind, body.decode("utf-8", "replace"))

    def _scan_shared(self, name: str) -> None:
        """The shared strings: size, no DTD, and the texts of the table headings (when written the way Excel
        writes them: ``<si>`` items without a namespace prefix)."""
        wanted: dict[int, str | None] = {}
        for sheet in self.sheets:
            for cells in sheet.headers.values():
                for kind, raw in cells.values():
                    if kind == "s" and raw.strip().isdigit():
                        wanted[int(raw)] = None
        count = 0
        carry = b""
        tail = b""
        wide: bool | None = None
        for chunk in self.chunks(name):
            if wide is None:
                wide = _is_wide(chunk)
                if b"<sst" not in chunk[:4096]:
                    wanted.clear()  # not written as Excel writes it: the headings are not compared
            self.refuse_dtd(name, tail + chunk, wide)
            tail = chunk[-32:]
            if not any(t is None for t in wanted.values()):
                continue  # every heading found: the rest is only checked
            buf = carry + chunk
            ends = [at + 5 for at in (buf.rfind(b"</si>"), buf.rfind(b"<si/>")) if at >= 0]
            cut = max(ends, default=0)
            part, carry = buf[:cut], buf[cut:]
            if len(carry) > 64 * 1024**2:  # one enormous string: stop looking for the headings
                wanted.clear()
                continue
            n = part.count(b"<si")
            here = [i for i in wanted if count <= i < count + n]
            if here:
                items = part.split(b"<si")
                for i in here:
                    item = items[1 + i - count]
                    wanted[i] = _si_text(item[: item.find(b"</si>")]) if item[:2] != b"/>" else ""
            count += n
        self.shared_texts = {i: t for i, t in wanted.items() if t is not None}

    def shared_total(self) -> int:
        """How many shared strings the workbook has (0 when it has no shared strings part)."""
        if self.shared_count is None:
            part = self.shared_part
            self.shared_count = sum(_count(_SI_COUNT, c) for c in self.chunks(part)) if part in self.members else 0
        return self.shared_count

    def _check_headers(self) -> None:
        texts = self.shared_texts
        for sheet in self.sheets:
            for t in sheet.tables:
                if not t.header_rows:
                    continue
                r0, c0, _, _ = t.area
                cells = sheet.headers.get(r0) or {}
                if not cells:
                    continue  # the heading row was not found in the sheet's first part: not checked
                for j, column in enumerate(t.columns):
                    if c0 + j not in cells:
                        continue  # not written the way Excel writes it: not compared
                    kind, raw = cells[c0 + j]
                    if kind == "s":
                        if not raw.strip().isdigit() or int(raw) not in texts:
                            continue  # a shared string that is not there: the walk says so when it is read
                        text = texts[int(raw)]
                    else:
                        text = _si_text(raw.encode("utf-8"))
                    if not _same_name(text, column):
                        shown = f"reads {text!r}" if text.strip() else "is empty"
                        raise WorkbookError(
                            f"{self.path}: sheet {sheet.name}, row {r0 + 1}, column {col_letter(c0 + j)}: the "
                            f"heading cell {shown} but the table {t.display} names this column {column!r}; retype "
                            "the heading in Excel (the table takes the cell's name), save, and try again")

    # -- the walk

    def walk(self, sheet: _SheetInfo) -> None:
        """Place every cell the way the cell reader will: bound the grid, find error cells and what cannot be
        read (a position that is not a cell, a shared string that does not exist, an unknown error value)."""
        if sheet.walked:
            return
        sheet.walked = True
        w = _Walk(sheet, self.shared_total(), self.shared_part in self.members)
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = w.start
        parser.EndElementHandler = w.end
        parser.CharacterDataHandler = w.text
        parser.StartDoctypeDeclHandler = w.doctype
        parser.EntityDeclHandler = w.entity
        try:
            for chunk in self.chunks(sheet.part):
                parser.Parse(chunk, False)
                if w.problem:
                    break
            else:
                parser.Parse(b"", True)
        except expat.ExpatError as exc:
            if not w.problem:
                near = f", near row {w.row + 1}" if w.row >= 0 else ""
                w.problem = (f"its XML is damaged ({expat.ErrorString(exc.code)}, line {exc.lineno} of "
                             f"{sheet.part}); {_FIX_DAMAGED}", near)
        except _Stop:
            pass
        if w.doctyped:
            raise WorkbookError(f"{self.path}: the part {sheet.part} declares a DTD (<!DOCTYPE …> or <!ENTITY …>), "
                                "which no Excel workbook holds (a hostile or damaged file); refusing to read it — "
                                "use a copy of the workbook saved by Excel")
        if w.too_big:
            cells, corner = w.too_big
            raise WorkbookError(_too_big(self.path, sheet.name, f"has a value at {corner}", cells, corner))
        sheet.errors = w.errors
        if w.problem:
            what, where = w.problem
            sheet.problem = f"{self.path}: sheet {sheet.name}{where or ''}: {what}"


class _Stop(Exception):
    """The walk has seen enough."""


class _Walk:
    """Expat handlers that place cells as the cell reader does (a missing ``r`` follows the one before)."""

    def __init__(self, sheet: _SheetInfo, shared: int, has_shared: bool):
        self.sheet = sheet
        self.has_shared = has_shared
        self.shared = shared
        self.row = -1
        self.col = -1
        self.cell: tuple[int, int] | None = None
        self.kind = "n"
        self.valued = False
        self.in_v = False
        self.v: list[str] = []
        self.bounds: list[int] | None = None  # r0, c0, r1, c1 of the cells holding values
        self.errors: dict[tuple[int, int], ExcelError] = {}
        self.problem: tuple[str, str | None] | None = None
        self.too_big: tuple[int, str] | None = None
        self.doctyped = False

    def doctype(self, *args: Any) -> None:
        self.doctyped = True
        raise _Stop

    def entity(self, *args: Any) -> None:
        self.doctyped = True
        raise _Stop

    def _fail(self, what: str, where: str | None) -> None:
        if self.problem is None:
            self.problem = (what, where)
        raise _Stop

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        local = tag.rpartition(":")[2]
        if local == "row":
            r = attrs.get("r")
            if r is None:
                self.row += 1
            elif r.strip().isdigit() and 1 <= int(r) <= EXCEL_ROWS:
                self.row = int(r) - 1
            else:
                self._fail(f"a row is numbered {r!r}, which is not a row number (1 to {EXCEL_ROWS:,}); the "
                           f"file is damaged — {_FIX_DAMAGED}", f", after row {self.row + 1}")
            self.col = -1
        elif local == "c":
            ref = attrs.get("r")
            if ref is None:
                pos: tuple[int, int] | None = (max(self.row, 0), self.col + 1)
            else:
                pos = _cell_ref(ref)
                if pos is None:
                    self._fail(f"a cell is at {ref!r}, which is not a cell of Excel's grid (A1 to XFD1048576); "
                               f"the file is damaged — {_FIX_DAMAGED}", f", row {self.row + 1}")
            assert pos is not None
            if pos[1] >= EXCEL_COLS:
                self._fail(f"row {pos[0] + 1} holds more than {EXCEL_COLS:,} cells; the file is damaged — "
                           f"{_FIX_DAMAGED}", f", row {pos[0] + 1}")
            self.cell = pos
            self.col = pos[1]
            self.kind = attrs.get("t", "n")
            self.valued = False
            self.v = []
        elif local in ("v", "is") and self.cell is not None:
            self.valued = True
            self.in_v = local == "v"

    def text(self, data: str) -> None:
        if self.in_v:
            self.v.append(data)

    def end(self, tag: str) -> None:
        local = tag.rpartition(":")[2]
        if local == "v":
            self.in_v = False
        elif local == "c" and self.cell is not None:
            if self.valued:
                self._place(self.cell, "".join(self.v).strip())
            self.cell = None

    def _place(self, pos: tuple[int, int], value: str) -> None:
        r, c = pos
        b = self.bounds
        if b is None:
            self.bounds = b = [r, c, r, c]
        else:
            b[0], b[1], b[2], b[3] = min(b[0], r), min(b[1], c), max(b[2], r), max(b[3], c)
        cells = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        if cells > MAX_CELLS:
            self.too_big = (cells, _a1(r, c))
            raise _Stop
        where = f", row {r + 1}, column {_column_label(self.sheet, r, c)} (cell {_a1(r, c)})"
        if self.kind == "e":
            what = _error_problem(value)
            if what is None:
                self.errors[(r, c)] = ExcelError(value)
            else:
                self._fail(what, where)
        elif self.kind == "s" and (not value.isdigit() or int(value) >= self.shared):
            what = ("which the workbook does not have" if self.has_shared else
                    "but the workbook's shared strings (xl/sharedStrings.xml) are missing")
            self._fail(f"the cell refers to shared string {value[:20]!r}, {what}: a damaged file; {_FIX_DAMAGED}",
                       where)


_HEADER_CELL = re.compile(rb'<(?:[\w.-]+:)?c\s+r="([A-Za-z]{1,3}[0-9]{1,7})"(?:[^>]*?\st="(\w+)")?[^>]*?'
                          rb"(?:/>|>(.*?)</(?:[\w.-]+:)?c>)", re.S)
_SI_COUNT = r"<(?:[\w.-]+:)?si[\s/>]"
_T = re.compile(rb"<(?:[\w.-]+:)?t(?:\s[^>]*)?>(.*?)</(?:[\w.-]+:)?t\s*>", re.S)
_PHONETIC = re.compile(rb"<(?:[\w.-]+:)?rPh\b.*?</(?:[\w.-]+:)?rPh\s*>", re.S)


def _error_problem(value: str) -> str | None:
    """Why an error cell holding ``value`` cannot be read (None: it can)."""
    if value in _READABLE_ERRORS:
        return None
    if value in _EXCEL_ERRORS:
        return (f"the cell shows the error {value}, which perseat cannot read; fix the formula so the cell shows a "
                "value (or clear the cell), save, and try again")
    return (f"the cell holds {value[:40]!r} as an error value, which Excel never writes (a damaged file); retype the "
            "cell in Excel, save, and try again")


def _column_label(sheet: _SheetInfo, row: int, col: int) -> str:
    """'Rate' for a cell in a table's Rate column, else the column's letters."""
    for t in sheet.tables:
        r0, c0, r1, c1 = t.area
        if r0 <= row <= r1 and c0 <= col <= c1:
            return f"{t.columns[col - c0].strip() or col_letter(col)}"
    return col_letter(col)


_V = re.compile(rb"<(?:[\w.-]+:)?v(?:\s[^>]*)?>(.*?)</", re.S)


def _is_wide(first: bytes) -> bool:
    """True when a part's first bytes say UTF-16 (or another encoding with NUL bytes), not UTF-8."""
    return first[:2] in _ROOT_UTF16 or b"\x00" in first[:4]


def _si_text(xml: bytes) -> str:
    """The text of a shared string (or an inline string): its <t> runs, phonetic hints left out."""
    body = _PHONETIC.sub(b"", xml)
    runs = _T.findall(body)
    if not runs:
        v = _V.search(body)
        runs = [v.group(1)] if v else []
    return html.unescape(b"".join(runs).decode("utf-8", "replace"))


def _count(pattern: str, data: bytes) -> int:
    if not data:
        return 0
    return int(pc.count_substring_regex(pa.array([data], pa.large_binary()), pattern)[0].as_py())


def _suspect(chunk: bytes) -> bool:
    """True when one RE2 pass finds anything that calls for the element-by-element walk."""
    return _count(_SUSPECT, chunk) > 0


def _resolve(base: str, target: str) -> str:
    """A relationship's target as a part name (relative to the part that names it, or absolute)."""
    if target.startswith("/"):
        return target.lstrip("/")
    folder = base.rpartition("/")[0]
    parts = [p for p in folder.split("/") if p]
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


BLOCK_BYTES = 8 << 20
"""A large table's sheet is read by fastexcel this much of its XML (whole rows) at a time: the cell grid of a
million-row sheet would take half a gigabyte at once."""

BLOCK_WORKERS = 2
"""Blocks parsed at once (fastexcel lets go of the GIL while it parses; the cores of a billing PC)."""

BLOCK_SHARED_RATIO = 8
"""A sheet is read in blocks only when its XML is at least this many times the shared strings' (a Usage
sheet's names repeat; a Roster at Excel's row limit holds millions of its own, and is quicker read whole)."""

BLOCK_MIN = 64 << 20
"""Sheets with less XML than this (a Roster of 200,000 users) are read whole: their grid is small enough, and
the whole read is quicker."""

_BLOCK_MARK = "perseat-block"
_MARK = "\ue000".encode()
"""What a shared-string cell's number starts with in a block (a private-use character no block holds)."""
def _trim() -> None:
    """Give the memory a block's cells took back to the system (glibc keeps it otherwise)."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim(0)
        except (OSError, AttributeError):
            _LIBC = False
            return
    elif _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


def _with_texts(column: pa.Array, texts: pa.Array) -> pa.Array | None:
    """A text column read in blocks with each marked shared-string number replaced by its text; None when a
    number is not one of the shared strings."""
    marked = pc.starts_with(column, _MARK.decode()).fill_null(False)
    count = pc.sum(marked).as_py() or 0
    if not count:
        return column
    every = count == len(column)
    try:
        numbers = pc.cast(pc.utf8_slice_codeunits(column if every else column.filter(marked), 1), pa.int64())
        found = texts.take(numbers).cast(column.type)
    except (pa.ArrowInvalid, IndexError, ValueError):
        return None
    return found if every else pc.replace_with_mask(column, marked, found)
_ROW_START = re.compile(rb'\s*<row r="([0-9]{1,7})"')
_ROW_LAST = re.compile(rb'<row r="([0-9]{1,7})"')


_Span = tuple[bytes, int, int]
"""Part of a buffer: the buffer, where the part starts and where it ends."""

_MARKED_CELL = b' t="str"><v>' + _MARK


def _row_blocks(pieces: Iterable[bytes], size: int) -> Iterator[list[_Span] | None]:
    """A sheet's ``<sheetData>`` as blocks of about ``size`` bytes, each a list of spans that together hold
    whole ``<row>`` elements (XML text never holds a bare ``<``, so ``<row `` starts a row), every shared-string
    cell written as Excel writes it read as its marked number (``t="str"``); None (and no more) when the sheet
    has no plain ``<sheetData>``."""
    block: list[_Span] = []
    held = 0
    carry = b""
    started = False
    for piece in itertools.chain(pieces, (None,)):
        buf = carry if piece is None else carry + piece
        if not started:
            at = buf.find(b"<sheetData>")
            if at < 0:
                if piece is None or b"sheetData" in buf or len(buf) > 1 << 26:
                    yield None  # <x:sheetData>, <sheetData/>, or none at all
                    return
                carry = buf
                continue
            buf = buf[at + len(b"<sheetData>"):]
            started = True
        buf = buf.replace(b' t="s"><v>', _MARKED_CELL)  # (the carry holds none: done already)
        if piece is None:
            cut = buf.find(b"</sheetData>")
            if cut < 0:
                yield None
                return
        else:
            cut = buf.rfind(b"<row ")  # the last row may go on in the next piece
            if cut <= 0:
                carry = buf
                continue
        carry = buf[cut:]
        pos = 0
        while True:
            need = size - held
            at = buf.find(b"<row ", pos + need, cut) if need > 0 else pos
            if at < 0:
                break
            if at > pos:
                block.append((buf, pos, at))
            yield block
            block, held, pos = [], 0, at
        if cut > pos:
            block.append((buf, pos, cut))
            held += cut - pos
    if block:
        yield block


_BLOCK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
        '</Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        '<Relationship Id="rId2" Target="sharedStrings.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
        '<Relationship Id="rId3" Target="styles.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"/></Relationships>'),
}


def _block_book(rows: list[_Span], start: int, shared: bytes | None, styles: bytes | None, date1904: bool) -> bytes:
    """A workbook of one sheet: a heading cell (A, row ``start`` - 1, so the grid starts there) and ``rows``,
    with the workbook's shared strings, styles (which number formats are dates) and date system."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, text in _BLOCK_PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            + ('<workbookPr date1904="1"/>' if date1904 else "")
            + '<sheets><sheet name="Block" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        z.writestr("xl/sharedStrings.xml", shared if shared is not None else (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"/>'))
        z.writestr("xl/styles.xml", styles if styles is not None else (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'))
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            f.write(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c></row>'
                    % (start - 1, start - 1, _BLOCK_MARK.encode()))
            for buf, at, end in rows:
                f.write(memoryview(buf)[at:end])
            f.write(b"</sheetData></worksheet>")
    return out.getvalue()


def _too_big(path: Path, sheet: str, what: str, cells: int, corner: str) -> str:
    return (f"{path}: sheet {sheet} {what}: a grid of {cells:,} cells, more than the {MAX_CELLS:,} perseat reads "
            f"(Excel's {EXCEL_ROWS:,} rows × 32 columns); delete what is at {corner} and the empty rows and columns "
            "around it (Ctrl+End in Excel goes there), save, and try again")


def check_package(path: str | Path, data: bytes | None = None) -> _Package:
    """Check a workbook package as an untrusted file (see the module's docstring); WorkbookError if it is
    not one perseat may read."""
    p = Path(path)
    raw = _read_file(p) if data is None else data
    _refuse_compound(p, raw)
    pkg = _Package(p, raw)
    pkg.inspect()
    return pkg


# --------------------------------------------------------------------------- the tables


class WorkbookFile:
    """Read-only view of a workbook's tables, by name."""

    def __init__(self, path: str | Path, ahead: Iterable[str] = ()):
        """``ahead``: names of tables about to be read; the large ones among them are read by fastexcel on
        another thread (without the GIL) while calamine opens the workbook here."""
        self.path = Path(path)
        self._pkg = check_package(self.path)
        self._fast_reader: Any = False  # not opened yet
        self._texts: pa.Array | bool | None = False  # the shared strings for block reads (False: not read yet)
        self._batches: dict[str, Any] = {}  # large tables read ahead (None: read them cell by cell)
        self._ahead: threading.Thread | None = None
        self._ahead_failed: list[BaseException] = []
        self._read_ahead([n for n in ahead if self.is_large(n)])
        try:
            self._wb = _calamine(lambda: CalamineWorkbook.from_filelike(io.BytesIO(self._pkg.data),
                                                                         load_tables=True))
        except CalamineError as exc:  # damaged XML or zip inside the package
            raise WorkbookError(f"{self.path}: cannot read the workbook ({exc}); {_FIX_DAMAGED}") from None
        try:
            names = _calamine(lambda: list(self._wb.table_names or []))
        except CalamineError:  # table parts that cannot be read: read the sheets instead
            names = []
        self._tables = {t.lower(): t for t in names}
        self.sheet_names: list[str] = list(self._wb.sheet_names)
        self._sheets = {s.name: s for s in self._pkg.sheets}
        self._read: dict[str, RawTable | None] = {}

    def is_large(self, name: str) -> bool:
        """Whether table ``name`` is read column by column (see :data:`COLUMNAR_ROWS`)."""
        info = self._pkg.tables.get(name.lower())
        return info is not None and info.data_rows >= COLUMNAR_ROWS and info.header_rows == 1

    def _read_ahead(self, names: list[str]) -> None:
        """Start reading the large tables ``names`` into Arrow batches on another thread."""
        infos = [self._pkg.tables[n.lower()] for n in names]
        infos = [i for i in infos if not self._sheets_problem(i.sheet)]
        if not infos:
            return

        def work() -> None:
            try:
                for info in infos:
                    self._batches[info.name.lower()] = self._batch(info.name, info)
            except BaseException as exc:  # KeyboardInterrupt, MemoryError: raised where the table is read
                self._ahead_failed.append(exc)

        self._ahead = threading.Thread(target=work, name="perseat-read-ahead", daemon=True)
        self._ahead.start()

    def _sheets_problem(self, sheet: str) -> bool:
        info = next((s for s in self._pkg.sheets if s.name == sheet), None)
        return info is None or bool(info.problem)

    def _join_ahead(self) -> None:
        """Wait for the tables read ahead (fastexcel's reader is used by one thread at a time)."""
        if self._ahead is not None:
            self._ahead.join()
            self._ahead = None
            if self._ahead_failed:
                raise self._ahead_failed[0]

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
        """Forget the tables read so far (each is read again on demand), and hand the memory they took back."""
        self._join_ahead()
        self._batches.clear()
        self._read.clear()
        _trim()

    def _sheet(self, sheet: str) -> _SheetInfo:
        """What the checks found about a sheet; a sheet that cannot be read says why."""
        info = self._sheets.get(sheet)
        if info is None:
            info = self._sheets[sheet] = _SheetInfo(sheet, "")
        if info.problem:
            raise WorkbookError(info.problem)
        return info

    def _failed(self, sheet: str, exc: BaseException) -> WorkbookError:
        """The message for a sheet the cell reader could not read: where, if the walk finds it."""
        info = self._sheets.get(sheet)
        if info is not None and info.part:
            info.walked = False
            self._pkg.walk(info)
            if info.problem:
                return WorkbookError(info.problem)
        return WorkbookError(f"{self.path}: sheet {sheet} cannot be read ({exc}); {_FIX_DAMAGED}")

    def _table(self, name: str) -> RawTable | None:
        info_t = self._pkg.tables.get(name.lower())
        real = self._tables.get(name.lower())
        if real is None and info_t is not None:
            real = self._tables.get(info_t.name.lower()) or self._tables.get(info_t.display.lower())
        if real is not None:
            t_info = info_t or self._pkg.tables.get(real.lower())
            sheet = t_info.sheet if t_info is not None else None
            if t_info is not None and t_info.data_rows == 0:  # a heading (and totals) row only
                return RawTable(real, t_info.sheet, tuple(c.strip() for c in t_info.columns), [],
                                first_row=t_info.area[0] + t_info.header_rows + 1, first_col=t_info.area[1])
            if sheet is not None:
                self._sheet(sheet)
            if t_info is not None and t_info.data_rows >= COLUMNAR_ROWS:
                columnar = self._columnar(real, t_info)
                if columnar is not None:
                    return columnar
            try:
                t = _calamine(lambda: self._wb.get_table_by_name(real))
                (r0, c0), (r1, c1) = t.start or (0, 0), t.end or (0, 0)
                headers = tuple(str(h).strip() for h in (t.columns or []))
                # calamine's table start is the first data row (zero-based), below the header
                rows = _calamine(t.to_python) if r1 >= r0 else []  # a fresh list of row lists
                sheet = str(t.sheet)
            except CalamineError as exc:
                raise self._failed(sheet or real, exc) from None
            raw = RawTable(real, sheet, headers, rows, first_row=r0 + 1, first_col=c0)
            for (er, ec), val in self._sheet(sheet).errors.items():
                if r0 <= er <= r1 and c0 <= ec <= c1:
                    raw.errors[(er - r0, ec - c0)] = val
            return raw
        sheet_name = self.has_sheet(name)
        if sheet_name is None:
            return None
        return self._sheet_as_table(sheet_name)

    def _columnar(self, real: str, info: _TableInfo) -> RawTable | None:
        """The table read column by column (Arrow), or None when it must be read cell by cell: a column mixes
        kinds of values, holds a time of day or a date before March 1900, or fastexcel cannot read it."""
        if info.header_rows != 1:
            return None
        self._join_ahead()
        key = info.name.lower()
        batch = self._batches.pop(key) if key in self._batches else self._batch(real, info)
        if batch is None:
            return None
        r0, c0 = info.area[0] + 1, info.area[1]
        if batch.num_rows != info.data_rows or batch.num_columns != len(info.columns):
            return None
        columns = []
        for arr in batch.columns:
            kind = str(arr.type)
            if kind == "timestamp[ms]":
                ms = np.asarray(pc.cast(arr, pa.int64()).drop_null())
                if len(ms) and (ms.min() < _FIRST_DATE_MS or (ms % _DAY_MS).any()):
                    return None  # a time of day, a date-time or a date before March 1900: read cell by cell
            elif kind not in _COLUMN_TYPES:
                return None
            columns.append(arr)
        raw = RawTable(real, info.sheet, tuple(c.strip() for c in info.columns), ColumnRows(columns, batch.num_rows),
                       first_row=r0 + 1, first_col=c0)
        r1, c1 = r0 + info.data_rows - 1, c0 + len(info.columns) - 1
        for (er, ec), val in self._sheet(info.sheet).errors.items():
            if r0 <= er <= r1 and c0 <= ec <= c1:
                raw.errors[(er - r0, ec - c0)] = val
        return raw

    def _batch(self, real: str, info: _TableInfo) -> Any:
        """Table ``real`` as fastexcel's Arrow batch, or None when fastexcel cannot read it so."""
        batch = self._in_blocks(info) if info.area[:2] == (0, 0) else None
        if batch is not None:
            return batch
        reader = self._fast()
        if reader is None:
            return None
        batch = self._as_sheet(reader, info) if info.area[:2] == (0, 0) else None
        try:
            if batch is None:
                batch = reader.load_table(real, schema_sample_rows=None, dtype_coercion="strict", eager=True)
        except BaseException as exc:  # a mixed column, or anything fastexcel (or a panic in it) refuses
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            return None
        return batch

    def _in_blocks(self, info: _TableInfo) -> Any:
        """A table at A1 on a large sheet written the way Excel writes it, read by fastexcel a block of rows
        at a time (:data:`BLOCK_BYTES` of the sheet's XML, each as a workbook of its own): fastexcel builds
        the grid of one block's cells, not of the whole sheet's. A shared-string cell is read as its number
        (marked), then given its text from the workbook's shared strings, read once. One Arrow batch of the
        table's rows (blank rows as nulls, as the whole read gives them); None when it cannot be read so
        (then it is read whole)."""
        sheet = next((s for s in self._pkg.sheets if s.name == info.sheet), None)  # (read ahead: before _sheets)
        member = self._pkg.members.get(sheet.part) if sheet is not None else None
        if sheet is None or member is None or sheet.walk or sheet.marked or sheet.part in self._pkg.split_tags \
                or member.size < BLOCK_MIN or info.header_rows != 1:
            return None
        shared = self._pkg.members.get(self._pkg.shared_part)
        if shared is not None and shared.size * BLOCK_SHARED_RATIO > member.size:
            return None  # every shared string is read once for the blocks: worth it only when they are few
        self._fast_reader = False  # its copy of the workbook goes while the blocks are read (opened again if need be)
        width = len(info.columns)
        parts: list[list[pa.Array]] = [[] for _ in range(width)]
        kinds: list[pa.DataType | None] = [None] * width
        start, last = info.area[0] + 2, info.area[2] + 1  # the next data row, the last one (1-based)

        def load(reader: Any) -> Any:
            try:
                return reader.load_sheet(0, header_row=0, use_columns=lambda c: c.index < width,
                                         schema_sample_rows=None, dtype_coercion="strict", eager=True)
            except BaseException as exc:  # a mixed column, or anything fastexcel (or a panic in it) refuses
                if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                    raise
                return None

        def take(batch: Any, begin: int, end: int) -> bool:
            """Add a block's rows to the columns; False when they cannot be read so."""
            nonlocal start
            # the grid starts at the block's heading and ends at its last row: a row out of order is not there
            if batch is None or begin != start or not batch.num_columns or batch.schema.names[0] != _BLOCK_MARK \
                    or batch.num_rows > end - begin:
                return False
            stop = min(end, last + 1)
            rows = min(batch.num_rows, stop - start)
            gap = stop - start - rows  # blank rows at the block's end are not among its cells
            for j in range(width):
                arr = batch.column(j).slice(0, rows) if j < batch.num_columns else pa.nulls(rows)
                if not pa.types.is_null(arr.type):
                    if kinds[j] is None:
                        kinds[j] = arr.type
                    elif kinds[j] != arr.type:
                        return False  # a column mixing kinds of values: read cell by cell
                parts[j].append(arr)
                if gap:
                    parts[j].append(pa.nulls(gap))
            start = stop
            return True

        # fastexcel parses without the GIL: two blocks are parsed at once while the next is cut here
        with concurrent.futures.ThreadPoolExecutor(BLOCK_WORKERS, thread_name_prefix="perseat-block") as pool:
            shared_texts = pool.submit(self._shared_texts)  # read once, beside the first blocks
            pending: collections.deque[tuple[concurrent.futures.Future[Any], int, int]] = collections.deque()
            try:
                for got in self._open_blocks(sheet.part, info.area[0] + 1):
                    if got is None:
                        return None
                    reader, begin, end = got
                    pending.append((pool.submit(load, reader), begin, end))
                    del reader
                    if len(pending) >= BLOCK_WORKERS:
                        future, begin, end = pending.popleft()
                        if not take(future.result(), begin, end):
                            return None
                        if start > last:
                            break
                while pending and start <= last:
                    future, begin, end = pending.popleft()
                    if not take(future.result(), begin, end):
                        return None
            finally:
                for future, _, _ in pending:
                    future.cancel()
            texts = shared_texts.result()
        if texts is None:
            return None
        if start <= last:  # blank rows at the table's end
            for j in range(width):
                parts[j].append(pa.nulls(last + 1 - start))
        columns = []
        for j in range(width):
            typ = kinds[j]
            pieces = [a if typ is None or not pa.types.is_null(a.type) else pa.nulls(len(a), typ) for a in parts[j]]
            parts[j] = []
            column = pa.concat_arrays(pieces) if pieces else pa.nulls(0)
            del pieces
            if typ is not None and pa.types.is_string(typ):
                column = _with_texts(column, texts)
                if column is None:
                    return None
            columns.append(column)
        _trim()
        return pa.RecordBatch.from_arrays(columns, names=[f"c{j}" for j in range(width)])

    def _open_blocks(self, part: str, heading: int) -> Iterator[tuple[Any, int, int] | None]:
        """fastexcel readers of the blocks of a sheet's rows below row ``heading`` (1-based), each with the
        first row it reads and the row after its last; None (and no more) when a block cannot be read so."""
        import fastexcel

        pkg = self._pkg
        styles = pkg.read(pkg.styles_part) if pkg.styles_part in pkg.members else None
        start = heading + 1
        pieces = _ahead(_inflate(pkg.path, pkg.data, pkg.members[part], None))
        for n, spans in enumerate(_row_blocks(pieces, BLOCK_BYTES)):
            if spans is None:
                yield None
                return
            if n == 0:  # the heading row comes first: the block's own heading stands for it
                buf, at, end = spans[0]
                m = _ROW_START.match(buf, at, end)
                if m is None or int(m.group(1)) != heading:
                    yield None
                    return
                at = buf.find(b"<row ", m.end(), end)
                spans = spans[1:] if at < 0 else [(buf, at, end), *spans[1:]]
                if not spans:
                    continue
            first = _ROW_START.match(*spans[0])
            final = None
            for buf, at, end in reversed(spans):
                at = buf.rfind(b"<row ", at, end)
                if at >= 0:
                    final = _ROW_LAST.match(buf, at, end)
                    break
            if first is None or final is None or int(first.group(1)) < start \
                    or int(final.group(1)) < int(first.group(1)):
                yield None
                return
            book = _block_book(spans, start, None, styles, pkg.date1904)
            del spans
            try:
                reader = fastexcel.read_excel(book)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                    raise
                yield None
                return
            del book
            yield reader, start, int(final.group(1)) + 1
            start = int(final.group(1)) + 1

    def _shared_texts(self) -> pa.Array | None:
        """The workbook's shared strings, in order, as fastexcel reads them in cells (read once); None when
        they cannot be read so."""
        if self._texts is False:
            self._texts = None
            pkg = self._pkg
            try:
                import fastexcel

                count = pkg.shared_total() if pkg.shared_part in pkg.members else 0
                rows = b"".join(b'<row r="%d"><c r="A%d" t="s"><v>%d</v></c></row>' % (i + 2, i + 2, i)
                                for i in range(count))
                shared = pkg.read(pkg.shared_part) if count else None
                book = _block_book([(rows, 0, len(rows))], 2, shared, None, False)
                del rows, shared
                batch = fastexcel.read_excel(book).load_sheet(0, header_row=0, schema_sample_rows=None,
                                                              dtype_coercion="strict", eager=True)
                col = batch.column(0) if batch.num_columns and batch.num_rows <= count else None
                if col is not None and (pa.types.is_string(col.type) or pa.types.is_null(col.type)):
                    col = col.cast(pa.string())
                    self._texts = pa.concat_arrays([col, pa.nulls(count - len(col), pa.string())])
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                    raise
                self._texts = None
        return self._texts

    @staticmethod
    def _as_sheet(reader: Any, info: _TableInfo) -> Any:
        """A table at A1 (its header cells checked, so the sheet's cells start with it) read as its sheet's
        first rows and columns, without the copy of the table's cells ``load_table`` makes (a quarter of the
        time); None when that does not give every row of the table (blank rows at its end are not among the
        sheet's cells) or fails: then it is read as a table."""
        try:
            batch = reader.load_sheet(info.sheet, header_row=0, n_rows=info.data_rows,
                                      use_columns=list(range(len(info.columns))), schema_sample_rows=None,
                                      dtype_coercion="strict", eager=True)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            return None
        return batch if batch.num_rows == info.data_rows else None

    def _fast(self) -> Any:
        """fastexcel's reader of this workbook (opened once), or None when it cannot open it."""
        if self._fast_reader is False:
            try:
                import fastexcel

                self._fast_reader = fastexcel.read_excel(self._pkg.data)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                    raise
                self._fast_reader = None
        return self._fast_reader

    def _sheet_as_table(self, sheet: str) -> RawTable:
        info = self._sheet(sheet)
        try:
            ws = _calamine(lambda: self._wb.get_sheet_by_name(sheet))
            data = _calamine(lambda: ws.to_python(skip_empty_area=False))
        except CalamineError as exc:
            raise self._failed(sheet, exc) from None
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
        for (er, ec), val in info.errors.items():
            if er > start and ec < width:
                raw.errors[(er - start - 1, ec)] = val
        return raw


__all__ = ["MAX_CELLS", "MAX_UNCOMPRESSED", "WorkbookFile", "check_package"]
