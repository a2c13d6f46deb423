"""Cells as Excel holds them: error values, text of a cell, dates typed as text, column letters and references."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perseat_addin.errors import PerseatError


@dataclass(frozen=True)
class ExcelError:
    """An Excel error value found in a cell, such as ``#N/A``."""

    code: str

    def __str__(self) -> str:
        return self.code


EXCEL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA",
                          "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"})


def is_excel_error(value: Any) -> bool:
    """True for an Excel error value as xlwings hands it over (``err_to_str``), e.g. ``'#N/A'``."""
    if isinstance(value, ExcelError):
        return True
    return isinstance(value, str) and value[:1] == "#" and value.strip().upper() in EXCEL_ERRORS


def col_letter(index: int) -> str:
    """Zero-based column index → Excel letters (0 → A, 27 → AB)."""
    out = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


_REF = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)$")


def col_index(letters: str) -> int:
    """Excel column letters → zero-based index (A → 0, AB → 27)."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def split_ref(ref: str) -> tuple[int, int]:
    """``'C12'`` → (zero-based column, Excel row)."""
    m = _REF.match(ref.upper())
    if not m:
        raise PerseatError(f"unexpected cell reference {ref!r} in the workbook")
    return col_index(m.group(1)), int(m.group(2))


def cell_text(v: Any) -> str:
    """A cell as text: whole floats without '.0', dates as ISO, blanks as ''."""
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v).strip()


_TEXT_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y",
    "%b %d %Y", "%B %d %Y", "%d-%b-%Y", "%d-%b-%y", "%d-%B-%Y", "%a, %d %b %Y", "%d.%m.%Y",
)


_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})$")


def parse_date_text(text: str) -> dt.date:
    """Date typed as text: ISO, '15 Nov 2026', 'Nov 15, 2026', or an unambiguous d/m/y."""
    s = text.strip()
    iso = re.match(r"^(\d{4}-\d{2}-\d{2})[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$", s)
    if iso:
        s = iso.group(1)
    for f in _TEXT_FORMATS:
        try:
            return dt.datetime.strptime(s, f).date()
        except ValueError:
            continue
    m = _NUMERIC_DATE.match(s)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        y = y + 2000 if y < 100 else y
        try:
            if a > 12 >= b:
                return dt.date(y, b, a)
            if b > 12 >= a:
                return dt.date(y, a, b)
        except ValueError:
            raise ValueError(f"{text!r} is not a real date") from None
        try:
            if a == b:
                return dt.date(y, a, b)
        except ValueError:
            raise ValueError(f"{text!r} is not a real date") from None
        raise ValueError(f"{text!r} could be {y}-{b:02d}-{a:02d} or {y}-{a:02d}-{b:02d}")
    raise ValueError(f"{text!r} is not a date")


EXCEL_EPOCH = dt.date(1899, 12, 30)
"""Day 0 of Excel's 1900 date system: serial 1 is 1900-01-01 (serials from 61 on, every real date, match)."""

_SERIAL_END = 2958466
"""The first serial past 9999-12-31, the last date Excel holds."""


def serial_date(n: float) -> dt.date:
    """An Excel date serial as a date (a fraction, the time of day, is dropped)."""
    if not 1 <= n < _SERIAL_END:
        raise ValueError(f"{n!r} is not a date")
    return EXCEL_EPOCH + dt.timedelta(days=int(n))


def to_date(value: Any) -> dt.date | None:
    """The one cell-to-date rule: blank → None; a date or date-time; an Excel serial; text such as 2026-11-15.

    Raises ValueError with words a user can act on (Yes/No values, numbers outside Excel's dates, text that is
    not a date or could be two dates).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        return serial_date(value)
    return parse_date_text(str(value))


def plain_text(v: Any) -> str:
    """A value as stripped text; None as ''."""
    return "" if v is None else str(v).strip()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def formula_safe(text: Any) -> str:
    """Text that no spreadsheet reads as a formula (OWASP CSV injection rule): a value starting with
    ``= + - @``, a tab or a line break gets a leading apostrophe. For every CSV field and xlsx text cell that
    can carry user text or a setting."""
    s = "" if text is None else str(text)
    return "'" + s if s.startswith(_FORMULA_START) else s


_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_XML_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;", '"': "&quot;"})


def xml_escape(text: str, quote: bool = False) -> str:
    """Text as XML character data (``quote``: as an attribute value in double quotes); a carriage return is
    kept as one (a parser would read a bare one as a line feed)."""
    return text.translate(_XML_ATTR if quote else _XML_TEXT)


def date_reader() -> Callable[[Any], dt.date | None]:
    """:func:`to_date` converting each distinct value once (a roster repeats a few Start and End values many
    times)."""
    seen: dict[Any, dt.date | None] = {}

    def read(value: Any) -> dt.date | None:
        if value in seen:
            return seen[value]
        got = seen[value] = to_date(value)
        return got

    return read
