"""Reading a vendor export file: size limit, bytes to text (encodings, delimiters), CSV and .xlsx records,
header matching, dates as exports write them (d/m vs m/d per file) and yes/no flags. Pure: reads, never writes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook

from perseat_addin.cells import cell_text, parse_date_text, serial_date
from perseat_addin.errors import InputProblems, Problem

MAX_BYTES = 200 * 1024**2
"""Refuse exports larger than this (200 MB)."""


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
        try:
            size = data.stat().st_size
        except OSError as exc:
            raise InputProblems([Problem(shown, None, None, f"cannot open the export: {exc.strerror or exc}",
                                         "check the file name and that the file exists")]) from None
        _check_size(size, shown)
        return data.read_bytes(), shown
    shown = name or "import"
    _check_size(len(data), shown)
    return data, shown


def _check_size(size: int, shown: str) -> None:
    if size > MAX_BYTES:
        raise InputProblems([Problem(
            shown, None, None, f"the export is {size / 1024**2:.0f} MB; the limit is {MAX_BYTES // 1024**2} MB",
            "export one client at a time, or only the columns needed")])


def _decode(raw: bytes, shown: str, problems: list[Problem]) -> str:
    """Bytes → text: BOMs first (UTF-8, UTF-16), then BOM-less UTF-16, UTF-8, Windows-1252."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    head = raw[:4096]
    if len(head) >= 4 and head.count(0) >= len(head) // 4:  # ASCII text stored as UTF-16 without BOM
        enc = "utf-16-le" if head[1] == 0 and head[0] != 0 else "utf-16-be"
        return raw.decode(enc, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(shown, None, None, "the file is not UTF-8; read it as Windows-1252",
                                "save the export as 'CSV UTF-8' if names look wrong", "warning"))
        return raw.decode("cp1252", errors="replace")


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


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each record; blank lines skipped; Excel's 'sep=' line honoured."""
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
    for rec in reader:
        line = prev + start_line
        prev = reader.line_num
        if not rec or all(not f.strip() for f in rec):
            continue
        yield line, rec


def _refuse_compound(raw: bytes, shown: str) -> None:
    """A compound file is no export we read: say whether it is password-protected or an old .xls."""
    if "EncryptedPackage".encode("utf-16-le") in raw:  # the stream an encrypted .xlsx keeps its package in
        raise InputProblems([Problem(shown, None, None, "the export is password-protected",
                                     "export it again without a password, or as CSV")])
    raise InputProblems([Problem(shown, None, None, "an old-format .xls file, which is not read",
                                 "save it as .xlsx or export it as CSV")])


def _xlsx_records(raw: bytes, shown: str) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of the first sheet of an .xlsx."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            total = sum(i.file_size for i in zf.infolist())
            bomb = any(i.compress_size and i.file_size / i.compress_size > 200 and i.file_size > 10 * 1024**2
                       for i in zf.infolist())
    except zipfile.BadZipFile:
        raise InputProblems([Problem(shown, None, None, "damaged .xlsx file", "export it again")]) from None
    if bomb or total > 2 * 1024**3:
        raise InputProblems([Problem(shown, None, None, "the workbook unpacks to too much data; refusing to read",
                                     "export it again as CSV")])
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(raw))
        rows = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except CalamineError as exc:
        raise InputProblems([Problem(shown, None, None, f"cannot read the workbook ({exc})",
                                     "export it again as CSV")]) from None
    for i, row in enumerate(rows, start=1):
        if any(cell_text(v) for v in row):
            yield i, list(row)


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

class Row:
    """Field access for one record by logical field name."""

    __slots__ = ("cells", "index")

    def __init__(self, index: dict[str, int], cells: Sequence[Any]):
        self.index = index
        self.cells = cells

    def raw(self, f: str) -> Any:
        i = self.index.get(f)
        if i is None or i >= len(self.cells):
            return None
        return self.cells[i]

    def get(self, f: str) -> str:
        v = self.raw(f)
        if v is None:
            return ""
        return v.strip() if isinstance(v, str) else cell_text(v)


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
    """(line or row number, cells) of every non-blank record of a CSV or the first sheet of an .xlsx."""
    if isinstance(content, bytes) and content.startswith(b"PK\x03\x04"):
        return _xlsx_records(content, shown)
    if isinstance(content, bytes) and content.startswith(OLE_MAGIC):
        _refuse_compound(content, shown)
    text = _decode(content, shown, problems) if isinstance(content, bytes) else content
    return iter(_csv_records(text.removeprefix("\ufeff")))


__all__ = ["MAX_BYTES", "Dates", "Row", "export_records", "is_active", "load_export", "match_headers", "norm", "yes_no"]
