"""Reading a vendor export file: size limit, bytes to text (encodings, delimiters), CSV and .xlsx records,
header matching, dates as exports write them (d/m vs m/d per file) and yes/no flags. Pure: reads, never writes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import operator
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from python_calamine import CalamineError, CalamineWorkbook

from perseat_addin.cells import cell_text, parse_date_text, serial_date
from perseat_addin.errors import InputProblems, Problem

MAX_BYTES = 200 * 1024**2
"""Refuse exports larger than this (200 MB)."""

MAX_CELL = 32_767
"""The most characters an Excel cell holds: a longer field cannot go into the workbook."""

_FIX_EXPORT = "export the file again (as CSV, UTF-8)"


# --------------------------------------------------------------------------- columns

_NOT_KEY = re.compile(r"[^0-9a-z#]")
_SERIAL = re.compile(r"\d{4,5}(\.\d+)?")


def norm(header: str) -> str:
    return _NOT_KEY.sub("", header.lower())


# --------------------------------------------------------------------------- decoding

_PATH_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")


def load_export(data: bytes | str | Path, name: str | None) -> tuple[bytes | str, str]:
    """The export's content (bytes or text) and its display name."""
    if isinstance(data, str) and "\n" not in data and data.strip().lower().endswith(_PATH_SUFFIXES):
        data = Path(data.strip())
    if isinstance(data, Path):
        shown = name or data.name
        return _read_export(data, shown), shown
    shown = name or "import"
    _check_size(len(data), shown)
    return data, shown


def _refuse(shown: str, line: int | None, column: str | None, what: str, fix: str) -> InputProblems:
    return InputProblems([Problem(shown, line, column, what, fix)])


def _read_export(path: Path, shown: str) -> bytes:
    """The file's bytes: a regular file of at most :data:`MAX_BYTES` (never a folder, a device or a pipe)."""
    fix = "give the path of the exported file (.csv or .xlsx)"
    if path.is_dir():
        raise _refuse(shown, None, None, f"{path} is a folder, not an export file", fix)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _refuse(shown, None, None, f"cannot open the export: {exc.strerror or exc}",
                      "check the file name and that the file exists") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _refuse(shown, None, None, f"{path} is a folder, not an export file", fix)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(shown, None, None, f"{path} is not a regular file (a device, a pipe or a socket)", fix)
        _check_size(st.st_size, shown)
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _refuse(shown, None, None, f"cannot read the export: {exc.strerror or exc}",
                      "check that the file can be read (not locked by another program)") from None
    finally:
        os.close(fd)
    _check_size(len(raw), shown)
    return raw


def _check_size(size: int, shown: str) -> None:
    if size > MAX_BYTES:
        raise InputProblems([Problem(
            shown, None, None, f"the export is {size / 1024**2:.0f} MB; the limit is {MAX_BYTES // 1024**2} MB",
            "export one client at a time, or only the columns needed")])


def _decode(raw: bytes, shown: str, problems: list[Problem]) -> str:
    """Bytes → text: BOMs first (UTF-8, UTF-16), then BOM-less UTF-16, then UTF-8 — a file that is UTF-8 except on
    some lines (a name typed in another program) has those lines read as Windows-1252, and says which; the other
    names stay as they are. Binary data is refused."""
    if raw.startswith(b"\xef\xbb\xbf"):
        text = _utf8_by_line(raw[3:], shown, problems)
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _strict(raw[2:], "utf-16-le" if raw[0] == 0xFF else "utf-16-be", shown)
    else:
        head = raw[:4096]
        if len(head) >= 4 and head.count(0) >= len(head) // 4 and _looks_utf16(head):
            text = _strict(raw, "utf-16-le" if head[1] == 0 and head[0] != 0 else "utf-16-be", shown)
        else:
            text = _utf8_by_line(raw, shown, problems)
    _refuse_binary(text, shown)
    return text


def _looks_utf16(head: bytes) -> bool:
    """ASCII text stored as UTF-16 without a BOM: NUL bytes in every other place, one side only."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return (even == 0) != (odd == 0) and max(even, odd) >= len(head) // 4


def _strict(raw: bytes, encoding: str, shown: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count("\n".encode(encoding)) + 1
        raise _refuse(shown, line, None, f"the file is not valid {encoding.upper()} text from this line on",
                      _FIX_EXPORT) from None


def _utf8_by_line(raw: bytes, shown: str, problems: list[Problem]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    out: list[str] = []
    other: list[int] = []
    utf8 = 0
    for i, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
            utf8 += not line.isascii()
        except UnicodeDecodeError:
            text = line.decode("cp1252", errors="replace")
            other.append(i)
        out.append(text)
    if utf8:  # a UTF-8 file with a few lines from somewhere else
        where = ", ".join(map(str, other[:10])) + (" ..." if len(other) > 10 else "")
        what = (f"lines {where} are" if len(other) > 1 else "this line is")
        problems.append(Problem(shown, other[0], None,
                                f"{what} not UTF-8 like the rest of the file; read as Windows-1252 (the other lines "
                                "as UTF-8)", "check the names there, or save the export as 'CSV UTF-8'", "warning"))
    else:
        problems.append(Problem(shown, None, None, "the file is not UTF-8; read it as Windows-1252",
                                "save the export as 'CSV UTF-8' if names look wrong", "warning"))
    return "\n".join(out)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refuse_binary(text: str, shown: str) -> None:
    """NUL characters, or a sample full of control characters: not a text export."""
    nul = text.find("\x00")
    if nul >= 0:
        raise _refuse(shown, text.count("\n", 0, nul) + 1, None,
                      "the line holds a NUL character: this is not a text (CSV) export", _FIX_EXPORT)
    sample = text[:65536]
    if len(_CONTROL.findall(sample)) > max(8, len(sample) // 100):
        raise _refuse(shown, None, None, "the file holds binary data, not the text of a CSV export", _FIX_EXPORT)


def _delimiter(text: str) -> str:
    """Sniff , ; or tab from the start of the file, checked against the header line."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    header = sample.split("\n", 1)[0]
    counts = {d: header.count(d) for d in ",;\t"}
    best = max(counts, key=lambda d: counts[d])
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return best
    # the Sniffer is fooled by delimiters inside data (licences "A; B"); trust the header when it disagrees
    return sniffed if counts.get(sniffed, 0) >= counts[best] else best


def _csv_records(text: str, shown: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each record; blank lines skipped; Excel's 'sep=' line honoured. A field
    that runs on for more than :data:`MAX_CELL` characters, or across lines that look like records of their own
    (a quote opened and never closed), is refused with its line."""
    start_line = 1
    first, _, rest = text.partition("\n")
    m = re.fullmatch(r'"?sep=(.)"?\r?', first)
    if m:
        text, delim, start_line = rest, m.group(1), 2
    else:
        delim = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar='"', doublequote=True,
                        skipinitialspace=False, strict=False)
    prev = 0
    header: list[str] = []
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise _refuse(shown, prev + start_line, None,
                          "a field starts on this line and runs on for more than 131,072 characters — a quote (\") "
                          "opened and never closed, or not a CSV export", _FIX_EXPORT) from None
        line = prev + start_line
        spans = reader.line_num - prev
        prev = reader.line_num
        if not rec or all(not f.strip() for f in rec):
            continue
        header = header or rec
        if spans > 3:
            for j, f in enumerate(rec):
                if _swallowed(f, delim, len(header)):
                    raise _refuse(shown, line, _column(header, j), f"a quoted field starts here and runs over "
                                  f"{spans - 1} more lines that look like records of their own — a quote (\") opened "
                                  "and never closed", _FIX_EXPORT)
        yield line, _Record(rec, line, shown, header)


def _column(header: Sequence[Any], j: int) -> str:
    """The column's heading as written (or 'field N' when it has none)."""
    h = cell_text(header[j]).strip()[:60] if j < len(header) else ""
    return h or f"field {j + 1}"

def _swallowed(field: str, delim: str, width: int) -> bool:
    """A multi-line field whose lines look like whole records (as many separators as the header has)."""
    if field.count("\n") < 3 or width < 3:
        return False
    return sum(1 for ln in field.split("\n") if ln.count(delim) >= width - 1) >= 2


def _refuse_compound(raw: bytes, shown: str) -> None:
    """A compound file is no export we read: say whether it is password-protected or an old .xls."""
    if "EncryptedPackage".encode("utf-16-le") in raw:  # the stream an encrypted .xlsx keeps its package in
        raise InputProblems([Problem(shown, None, None, "the export is password-protected",
                                     "export it again without a password, or as CSV")])
    raise InputProblems([Problem(shown, None, None, "an old-format .xls file, which is not read",
                                 "save it as .xlsx or export it as CSV")])


_BIG_POS = (r"\sr=\"(?:[A-Za-z]{3}|[C-Zc-z][A-Za-z]|[Bb][M-Zm-z]|[A-Za-z]{0,3}(?:[0-9]{7}|[6-9][0-9]{5}|"
            r"5[3-9][0-9]{4}|52[5-9][0-9]{3}|524[3-9][0-9]{2}|5242[9][0-9]|52428[9]))")
"""A cell beyond column BL or row 524,288: with both, more than 2^25 cells (the cell reader allocates them all)."""
_NO_POS = r"<(?:[\w.-]+:)?(?:c|row)(?:\s+(?:[^r\s=/>][^\s=/>]*|r[^\s=/>]+)\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*>"
_ODD_POS = r"\sr(?:\s*=\s*'|\s+=|=\s|=\"\s)"
_ODD_SHEET = "|".join((_BIG_POS, _NO_POS, _ODD_POS))
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)")


def _check_xlsx(raw: bytes, shown: str) -> None:
    """An .xlsx export is untrusted: members inflated with a cap (a member bigger than the zip says fails its
    checksum), no DTD in any XML part, no sheet whose cells would make the cell reader allocate a huge grid."""
    bad = "export it again as CSV"
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > 2 * 1024**3:
                raise _refuse(shown, None, None, "the workbook unpacks to too much data; refusing to read", bad)
            total = 0
            for info in infos:
                is_xml = info.filename.endswith((".xml", ".rels"))
                is_sheet = is_xml and info.filename.startswith("xl/worksheets/")
                size = 0
                tail = b""
                with zf.open(info) as f:
                    while chunk := f.read(1 << 22):
                        size += len(chunk)
                        total += len(chunk)
                        if total > 2 * 1024**3 or (size > 10 * 1024**2 and size > 200 * max(info.compress_size, 1)):
                            raise _refuse(shown, None, None, "the workbook unpacks to too much data (a zip bomb?); "
                                          "refusing to read", bad)
                        if is_xml and _DTD.search(tail + chunk):
                            raise _refuse(shown, None, None, f"the part {info.filename} declares a DTD, which no "
                                          "Excel file holds (a hostile or damaged file); refusing to read", bad)
                        if is_sheet and _count(_ODD_SHEET, tail + chunk):
                            raise _refuse(shown, None, None, "the sheet has cells far out (beyond column BL or row "
                                          "524,288) or written without their positions; refusing to read", bad)
                        tail = chunk[-4096:]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, ValueError,
            zlib.error, OSError):
        raise _refuse(shown, None, None, "damaged .xlsx file", "export it again") from None


def _count(pattern: str, data: bytes) -> int:
    return int(pc.count_substring_regex(pa.array([data], pa.large_binary()), pattern)[0].as_py())


def _xlsx_records(raw: bytes, shown: str) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of the first sheet of an .xlsx."""
    _check_xlsx(raw, shown)
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(raw))
        rows = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except CalamineError as exc:
        raise InputProblems([Problem(shown, None, None, f"cannot read the workbook ({exc})",
                                     "export it again as CSV")]) from None
    except BaseException as exc:  # a panic inside the cell reader (pyo3's PanicException is a BaseException)
        if type(exc).__name__ != "PanicException":
            raise
        raise InputProblems([Problem(shown, None, None, "cannot read the workbook (it is damaged)",
                                     "export it again as CSV")]) from None
    header: list[Any] = []
    for i, row in enumerate(rows, start=1):
        if any(cell_text(v) for v in row):
            header = header or list(row)
            yield i, _Record(row, i, shown, header)


# --------------------------------------------------------------------------- values

_TRUE = {"true", "yes", "y", "1", "x", "blocked", "-1", "wahr", "ja", "vrai", "oui"}
_FALSE = {"false", "no", "n", "0", "", "allowed", "falsch", "nein", "faux", "non"}
_ACTIVE_WORDS = {"active", "enabled"}
_INACTIVE_WORDS = {"inactive", "disabled", "archived", "former"}


def is_active(value: str, column_means_inactive: bool) -> bool | None:
    """An Active/Inactive column's value as 'is active'; words like Active/Disabled win over the column's sense."""
    v = value.strip().lower()
    if v in _ACTIVE_WORDS:
        return True
    if v in _INACTIVE_WORDS:
        return False
    f = yes_no(v)
    if f is None:
        return None
    return not f if column_means_inactive else f


def yes_no(value: str) -> bool | None:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


_TIME_TAIL = re.compile(r"[ T]+\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp]\.?[Mm]\.?)?\s*(Z|[+-]\d{2}:?\d{2}|UTC|GMT)?$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_NUMERIC = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})$")


class Dates:
    """Dates as exports write them, cached; d/m vs m/d decided per file from the unambiguous ones."""

    def __init__(self) -> None:
        self.cache: dict[str, dt.date | None] = {}
        self.ambiguous: list[tuple[int, str, str]] = []  # (line, column, text)
        self.day_first = 0
        self.month_first = 0

    def parse(self, v: Any) -> dt.date | str | None:
        """A date, None for blank, 'ambiguous' or an error message."""
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return self._serial(float(v))
        s = str(v).strip()
        if not s:
            return None
        if s in self.cache:
            got = self.cache[s]
            return got if got is not None else "ambiguous"
        m = _ISO.match(s)
        if m:
            try:
                d: dt.date | None = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return f"{s!r} is not a real date"
            self.cache[s] = d
            return d
        if _SERIAL.fullmatch(s):
            return self._serial(float(s))
        part = _TIME_TAIL.sub("", s)
        n = _NUMERIC.match(part)
        if n:
            a, b, y = int(n.group(1)), int(n.group(2)), int(n.group(3))
            y = y + 2000 if y < 100 else y
            if "." in part and a <= 12 and b <= 12:  # 01.02.2024 is day-first wherever dots are used
                return self._make(s, y, b, a)
            if a > 12 >= b:
                self.day_first += 1
                return self._make(s, y, b, a)
            if b > 12 >= a:
                self.month_first += 1
                return self._make(s, y, a, b)
            if a == b:
                return self._make(s, y, a, b)
            self.cache[s] = None
            return "ambiguous"
        try:
            d = parse_date_text(part)
        except ValueError as exc:
            return str(exc)
        self.cache[s] = d
        return d

    def _make(self, s: str, y: int, mo: int, day: int) -> dt.date | str:
        try:
            d = dt.date(y, mo, day)
        except ValueError:
            return f"{s!r} is not a real date"
        self.cache[s] = d
        return d

    @staticmethod
    def _serial(n: float) -> dt.date | str:
        try:
            return serial_date(n)
        except ValueError:
            return f"{n:g} is not a date"

    def resolve(self, text: str) -> dt.date | None:
        """An ambiguous numeric date, read the way the rest of the file reads dates (None if no hint)."""
        if self.day_first == self.month_first:
            return None
        part = _TIME_TAIL.sub("", text.strip())
        n = _NUMERIC.match(part)
        if not n:
            return None
        a, b, y = int(n.group(1)), int(n.group(2)), int(n.group(3))
        y = y + 2000 if y < 100 else y
        try:
            return dt.date(y, b, a) if self.day_first > self.month_first else dt.date(y, a, b)
        except ValueError:
            return None


# --------------------------------------------------------------------------- reading

class _Record(list[Any]):
    """A record's cells, knowing where they come from (the file, the line, the header row)."""

    def __init__(self, cells: Sequence[Any], line: int, shown: str, header: Sequence[Any]):
        super().__init__(cells)
        self.line = line
        self.shown = shown
        self.header = header

    def too_long(self, i: int, v: str) -> InputProblems:
        return _refuse(self.shown, self.line, _column(self.header, i), f"a field of {len(v):,} characters; an "
                       f"Excel cell holds at most {MAX_CELL:,}", "shorten it, or export without that column")


class Row:
    """Field access for one record by logical field name. A field the import uses that no Excel cell could hold
    (more than :data:`MAX_CELL` characters) is refused with its line and column."""

    __slots__ = ("cells", "index")

    def __init__(self, index: dict[str, int], cells: Sequence[Any]):
        self.index = index
        self.cells = cells

    def raw(self, f: str) -> Any:
        i = self.index.get(f)
        if i is None or i >= len(self.cells):
            return None
        v = self.cells[i]
        if isinstance(v, str) and len(v) > MAX_CELL:
            if isinstance(self.cells, _Record):
                raise self.cells.too_long(i, v)
            raise InputProblems([Problem("import", None, None, f"a field of {len(v):,} characters; an Excel cell "
                                         f"holds at most {MAX_CELL:,}", "shorten it")])
        return v

    def get(self, f: str, default: str = "") -> str:
        """Field ``f`` as stripped text ('' when blank or absent; ``default`` only for the same signature as
        :meth:`fields`' ``get``)."""
        v = self.raw(f)
        if v is None:
            return ""
        return v.strip() if isinstance(v, str) else cell_text(v)

    def fields(self) -> Callable[[str, str], str]:
        """A ``get(field, "")`` for this row (a text row answers from its dictionary, without a call of ours)."""
        return self.get


class _TextRow(Row):
    """A :class:`Row` for a text record (CSV) that holds every field the import uses, none too long for a cell:
    the fields are picked and stripped once, and read exactly as :class:`Row` reads them."""

    __slots__ = ("values",)

    def __init__(self, index: dict[str, int], cells: Sequence[Any], values: dict[str, str]):
        super().__init__(index, cells)
        self.values = values

    def get(self, f: str, default: str = "") -> str:
        return self.values.get(f, "")

    def fields(self) -> Callable[[str, str], str]:
        return self.values.get


def row_reader(index: dict[str, int]) -> Callable[[Sequence[Any]], Row]:
    """A function making the :class:`Row` of each record for ``index``: the cheaper :class:`_TextRow` when it
    reads the same, else a plain Row (which refuses a field too long for a cell as it is read)."""
    fields = list(index)
    at = [index[f] for f in fields]
    need = max(at, default=-1) + 1
    if not at:
        return lambda cells: Row(index, cells)
    pick = operator.itemgetter(*at)

    def make(cells: Sequence[Any]) -> Row:
        if len(cells) < need:
            return Row(index, cells)
        got = pick(cells)
        if len(at) == 1:
            got = (got,)
        try:
            if max(map(len, got)) > MAX_CELL:
                return Row(index, cells)
            values = dict(zip(fields, map(str.strip, got), strict=True))
        except TypeError:  # not all text (an .xlsx record)
            return Row(index, cells)
        return _TextRow(index, cells, values)

    return make


def match_headers(headers: Sequence[str], wanted: dict[str, tuple[str, ...]]) -> tuple[dict[str, int], dict[str, str]]:
    """Field → column index and field → header as written, each field taking its first alias present."""
    by_norm: dict[str, int] = {}
    for i, h in enumerate(headers):
        by_norm.setdefault(norm(h), i)
    index: dict[str, int] = {}
    names: dict[str, str] = {}
    for f, aliases in wanted.items():
        for a in aliases:
            at = by_norm.get(norm(a))
            if at is not None and at not in index.values():
                index[f], names[f] = at, headers[at].strip()
                break
    return index, names


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""The start of a compound file: a password-protected .xlsx, or an old .xls."""


def export_records(content: bytes | str, shown: str, problems: list[Problem]) -> Iterator[tuple[int, list[Any]]]:
    """(line or row number, cells) of every non-blank record of a CSV or the first sheet of an .xlsx. The first
    record is the header row: two columns of the same name (ignoring case, spaces and punctuation) are refused."""
    if isinstance(content, bytes) and content.startswith(b"PK\x03\x04"):
        records = _xlsx_records(content, shown)
    else:
        if isinstance(content, bytes) and content.startswith(OLE_MAGIC):
            _refuse_compound(content, shown)
        text = _decode(content, shown, problems) if isinstance(content, bytes) else content
        if not isinstance(content, bytes):
            _refuse_binary(text, shown)
        records = iter(_csv_records(text.removeprefix("\ufeff"), shown))
    return _headed(records, shown)


def _headed(records: Iterator[tuple[int, list[Any]]], shown: str) -> Iterator[tuple[int, list[Any]]]:
    first = next(records, None)
    if first is None:
        return
    line, header = first
    seen: dict[str, int] = {}
    for j, h in enumerate(header):
        key = norm(cell_text(h))
        if not key:
            continue
        if key in seen:
            a, b = seen[key], j
            raise _refuse(shown, line, cell_text(h).strip(),
                          f"two columns are headed {cell_text(h).strip()!r} (fields {a + 1} and {b + 1}); which one "
                          "holds the data cannot be told", "delete or rename one of them, then import again")
        seen[key] = j
    yield first
    yield from records


__all__ = ["MAX_BYTES", "Dates", "Row", "export_records", "is_active", "load_export", "match_headers", "norm",
           "row_reader", "yes_no"]
