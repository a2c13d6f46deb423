"""Excel's ``_xHHHH_`` escapes in stored text, and cell and range references."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_NEEDS_ESCAPE = re.compile(r"[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]")
_LOOKS_ESCAPED = re.compile(r"_(?=x[0-9A-Fa-f]{4}(?:_|[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]))")
"""The underscore of text that would read as an escape once stored: ``_xHHHH`` followed by an underscore, or by
a character stored as ``_xHHHH_`` (whose underscore would close it)."""

MAX_ROW = 1_048_576
MAX_COL = 16_384
MAX_TEXT = 32_767
"""Excel's limits: rows, columns and characters (UTF-16 code units) in one cell."""

_CELL = re.compile(r"^\$?([A-Z]{1,3})\$?([1-9][0-9]{0,6})$")


def _is_plain(code: int) -> bool:
    """Whether a writer that escapes correctly would store this character as itself (not as ``_xHHHH_``)."""
    if code == 0x5F:  # "_": written as _x005F_ only to escape a literal "_xHHHH_"
        return False
    return not (code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))


def decode_text(s: str) -> str:
    """The text Excel shows for stored text ``s``: each ``_xHHHH_`` becomes the character U+HHHH.

    ``_x005F_`` is an underscore, so a literal ``_x0041_`` is stored as ``_x005F_x0041_``.
    Escaped UTF-16 surrogate pairs are joined into one character.
    """
    if "_x" not in s and "_X" not in s:
        return s
    out = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), s)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in out):
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return out


def encode_text(s: str) -> str:
    """``s`` as Excel stores it: a literal ``_xHHHH_`` escaped as ``_x005F_xHHHH_``, characters XML
    cannot carry (and CR, which XML parsers fold into LF) as ``_xHHHH_``. ``decode_text`` undoes it."""
    s = _LOOKS_ESCAPED.sub("_x005F_", s)
    return _NEEDS_ESCAPE.sub(lambda m: f"_x{ord(m.group()):04X}_", s)


def suspicious_escapes(s: str) -> list[str]:
    """The ``_xHHHH_`` sequences in stored text that stand for characters a correct writer stores as
    themselves: most likely literal text that was not escaped as ``_x005F_xHHHH_``."""
    out: list[str] = []
    for m in _ESCAPE.finditer(s):
        if _is_plain(int(m.group(1), 16)):
            out.append(m.group())
    return out


def text_length(s: str) -> int:
    """Length of Excel's (decoded) cell text in UTF-16 code units, the unit of the 32,767 limit."""
    return len(decode_text(s).encode("utf-16-le", "surrogatepass")) // 2


def col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def col_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def parse_cell(ref: str) -> tuple[int, int] | None:
    """(row, column) of an A1 reference inside Excel's grid, or None if it is not one."""
    m = _CELL.match(ref)
    if not m:
        return None
    col, row = col_number(m.group(1)), int(m.group(2))
    if col > MAX_COL or row > MAX_ROW:
        return None
    return row, col


def parse_range(ref: str) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of ``A1`` or ``A1:B2`` inside Excel's grid with top-left ≤ bottom-right."""
    a, sep, b = ref.partition(":")
    first = parse_cell(a)
    last = parse_cell(b) if sep else first
    if first is None or last is None:
        return None
    (r0, c0), (r1, c1) = first, last
    if r0 > r1 or c0 > c1:
        return None
    return r0, c0, r1, c1


def range_text(box: tuple[int, int, int, int]) -> str:
    r0, c0, r1, c1 = box
    return f"{col_letters(c0)}{r0}:{col_letters(c1)}{r1}"


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
