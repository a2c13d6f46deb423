"""SPEC §3 table schemas and the column-wise conversion of raw cells into typed values.

Every conversion collects :class:`~.errors.Problem` values naming sheet, Excel
row and column instead of raising; a whole column is converted at once so a
100,000-row Roster costs milliseconds, not seconds.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perseat_addin.cells import ExcelError, cell_text, to_date
from perseat_addin.errors import Problem
from perseat_addin.model import EPOCH, FOREVER, SINCE_EVER
from perseat_addin.money import to_decimal
from perseat_addin.tables import ColumnRows, RawTable, cell_values, header_key


@dataclass(frozen=True)
class Col:
    """A column of a schema table."""

    name: str
    kind: str = "text"  # text | number | int | date | yesno | pct | choice
    required: bool = False
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


SCHEMA: dict[str, tuple[Col, ...]] = {
    "Settings": (Col("Setting", required=True), Col("Value", "any")),
    "Plans": (
        Col("Plan", required=True),
        Col("Rate", "number", required=True, aliases=("price", "rateperuser", "peruserrate")),
        Col("Tiering", "choice", choices=("flat", "volume", "graduated")),
        Col("MinUsers", "int"),
        Col("MinFee", "number"),
        Col("Basis", "choice", choices=("users", "greater")),
        Col("DeviceRate", "number"),
        Col("IncludedHours", "number"),
        Col("OverageRate", "number"),
        Col("Taxable", "yesno"),
        Col("Description"),
    ),
    "Tiers": (
        Col("Plan", required=True),
        Col("UpTo", "int", aliases=("upto", "maxusers", "to")),
        Col("Rate", "number", required=True),
        Col("FlatFee", "number", aliases=("flat", "flatamount", "fixedfee")),
    ),
    "UserTypes": (
        Col("Type", required=True),
        Col("Billable", "choice", required=True, choices=("yes", "no", "device")),
        Col("MinActiveDays", "int"),
        Col("Definition"),
    ),
    "Clients": (
        Col("Client", required=True, aliases=("clientname", "customer", "company")),
        Col("Plan", required=True),
        Col("Status", "choice", choices=("active", "inactive")),
        Col("BillingContact"),
        Col("BillingEmail"),
        Col("Address"),
        Col("PONumber", aliases=("po", "ponum", "purchaseorder")),
        Col("DiscountPct", "pct", aliases=("discount", "discount%")),
        Col("TaxRate", "pct", aliases=("tax", "tax%")),
        Col("ProrationMode", "choice", choices=("daily", "snapshot", "peak", "full")),
        Col("PaymentTermsDays", "int", aliases=("terms", "paymentterms")),
        Col("Start", "date", aliases=("contractstart", "startdate")),
        Col("End", "date", aliases=("contractend", "enddate")),
    ),
    "Roster": (
        Col("Client", required=True),
        Col("UserID", required=True, aliases=("user", "upn", "userprincipalname", "login")),
        Col("Name", aliases=("displayname",)),
        Col("Email"),
        Col("Type", required=True, aliases=("usertype",)),
        Col("Plan"),
        Col("Start", "date", aliases=("startdate", "from")),
        Col("End", "date", aliases=("enddate", "to", "until")),
        Col("Status", "choice", choices=("active", "disabled")),
        Col("Source"),
        Col("Notes"),
    ),
    "Devices": (
        Col("Client", required=True),
        Col("DeviceID", required=True, aliases=("device", "id")),
        Col("Name"),
        Col("Kind"),
        Col("Start", "date"),
        Col("End", "date"),
    ),
    "AddOns": (
        Col("Client", required=True),
        Col("Description", required=True),
        Col("Quantity", "number", aliases=("qty",)),
        Col("UnitPrice", "number", required=True, aliases=("price", "rate")),
        Col("PerUser", "yesno"),
        Col("Start", "date"),
        Col("End", "date"),
        Col("Taxable", "yesno"),
        Col("Frequency", "choice", choices=("monthly", "once")),
    ),
    "Usage": (
        Col("Client", required=True),
        Col("UserID"),
        Col("Date", "date", required=True),
        Col("Tickets", "quantity"),
        Col("Hours", "quantity"),
        Col("Billable", "yesno", aliases=("chargeable",)),
    ),
    "Invoices": (
        Col("InvoiceNo"),
        Col("Client"),
        Col("Period"),
        Col("IssueDate", "any"),
        Col("DueDate", "any"),
        Col("Subtotal", "any"),
        Col("Discount", "any"),
        Col("Tax", "any"),
        Col("Total", "any"),
        Col("Status"),
        Col("File"),
        Col("Kind"),
        Col("Corrects"),
    ),
}

LOOKALIKES: dict[str, dict[str, tuple[str, ...]]] = {
    "Roster": {
        "Start": ("start", "begin", "first day", "joined", "join date", "hired", "hire date", "onboard"),
        "End": ("end", "last day", "leave", "left", "leaver", "termination", "terminated", "exit", "offboard",
                "departure"),
        "Status": ("status", "state", "enabled", "disabled", "blocked", "active"),
        "Plan": ("plan", "package", "bundle", "tier", "sku"),
    },
    "AddOns": {
        "Start": ("start", "begin", "from", "first"),
        "End": ("end", "until", "last", "stop"),
        "Frequency": ("frequency", "recurrence", "recurring", "once", "one-time", "one time", "onetime", "interval",
                      "cycle", "billing"),
    },
    "Clients": {
        "TaxRate": ("tax", "vat", "gst", "hst"),
        "DiscountPct": ("discount", "disc", "rebate"),
    },
}
"""Optional columns that change money, and words a header meant for them tends to hold: a table lacking
the column but holding an unknown header with one of these words is a problem naming both."""

REQUIRED_TABLES = ("Settings", "Plans", "Clients", "Roster")


@dataclass
class Table:
    """A schema table converted to typed columns, with Excel row numbers in ``_row``."""

    name: str
    sheet: str
    frame: pd.DataFrame
    letters: dict[str, str]  # column name → Excel letter
    present: set[str]  # schema columns that exist in the sheet

    def where(self, row: int | None, col: str | None) -> tuple[str, int | None, str | None]:
        """(sheet, row, 'Start (E)') for messages."""
        if col is None:
            return self.sheet, row, None
        letter = self.letters.get(col)
        return self.sheet, row, f"{col} ({letter})" if letter else col


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _filled(values: Sequence[Any]) -> np.ndarray:
    """True where a cell holds something: not None and not blank text (one pass of C loops, no per-cell code)."""
    n = len(values)
    kinds = np.fromiter(map(type, values), dtype=object, count=n)
    none_t: Any = type(None)
    str_t: Any = str
    filled: np.ndarray = np.not_equal(kinds, none_t)  # element-wise over the cells' types
    texts = np.flatnonzero(np.equal(kinds, str_t))
    if len(texts):
        cells = values if len(texts) == n else [values[i] for i in texts.tolist()]
        filled[texts] = np.fromiter(map(bool, map(str.strip, cells)), dtype=bool, count=len(texts))
    return filled


def _lookalikes(raw: RawTable, table: str, index: dict[str, int], by_key: dict[str, int],
                problems: list[Problem]) -> None:
    """A missing optional money column beside an unknown header that resembles it ("Last Day" for End)."""
    known = {header_key(c.name) for c in SCHEMA[table]} | {a for c in SCHEMA[table] for a in c.aliases}
    unknown = [(i, h) for i, h in enumerate(raw.headers) if h and header_key(h) not in known
               and by_key.get(header_key(h)) == i]
    for col, words in LOOKALIKES.get(table, {}).items():
        if col in index:
            continue
        for i, h in unknown:
            text = " " + re.sub(r"[^a-z0-9]+", " ", h.lower()) + " "
            if any(f" {w} " in text for w in words) or \
                    difflib.SequenceMatcher(None, header_key(h), header_key(col)).ratio() >= 0.8:
                problems.append(Problem(
                    raw.sheet, raw.first_row - 1, f"{h} ({raw.column_letter(i)})",
                    f"the {table} table has no {col} column, but has '{h}'; without {col} "
                    f"{_WITHOUT[col]}",
                    f"if '{h}' is meant as {col}, rename that header to {col}; otherwise rename it to something "
                    f"unlike {col} (or add a {col} column)"))
                break


_WITHOUT = {
    "Start": "every row counts from before the period (joiners are billed for the whole month)",
    "End": "every user counts as still active (leavers are billed for the whole month)",
    "Status": "every user counts as Active (disabled users are billed)",
    "Plan": "every user is billed at the client's plan",
    "Frequency": "every add-on recurs monthly (a one-time fee would be billed every month)",
    "TaxRate": "every client is taxed at DefaultTaxRate",
    "DiscountPct": "no client gets a discount",
}


def convert(raw: RawTable, table: str, problems: list[Problem]) -> Table:
    """Match headers, drop empty rows, convert every column; append problems."""
    cols = SCHEMA[table]
    by_key: dict[str, int] = {}
    for i, h in enumerate(raw.headers):
        k = header_key(h)
        if k and k not in by_key:
            by_key[k] = i
    index: dict[str, int] = {}
    for c in cols:
        for k in (header_key(c.name), *c.aliases):
            if k in by_key:
                index[c.name] = by_key[k]
                break
    letters = {name: raw.column_letter(i) for name, i in index.items()}
    _lookalikes(raw, table, index, by_key, problems)
    for c in cols:
        if c.required and c.name not in index:
            problems.append(
                Problem(
                    raw.sheet,
                    raw.first_row - 1,
                    c.name,
                    f"required column {c.name} is missing",
                    f"add a column headed '{c.name}' to the {table} table",
                )
            )
    # keep rows with at least one non-blank cell in a SPEC column (Excel tables often carry blank rows, and a
    # calculated column of the user's own fills every row it has)
    own = sorted(set(index.values()))
    error_rows = {i for i, j in raw.errors if j in own}
    if isinstance(raw.rows, ColumnRows):
        return _convert_columns(raw, raw.rows.columns, index, own, error_rows,
                                Table(table, raw.sheet, pd.DataFrame(), letters, set(index)), problems)
    width = len(raw.headers)
    n_rows = len(raw.rows)
    columns: list[Sequence[Any]] | None = None
    if raw.columns is not None and len(raw.columns) == width:
        columns = list(raw.columns)
    elif all(len(r) == width for r in raw.rows):
        columns = list(zip(*raw.rows, strict=True)) if raw.rows else [() for _ in range(width)]
    first = own[0] if own else 0
    if columns is not None and first < width:
        filled = _filled(columns[first])
    else:
        filled = np.fromiter((len(r) > first and not _is_blank(r[first]) for r in raw.rows), bool, n_rows)
    for i in np.flatnonzero(~filled).tolist():  # rows blank in the first column: any other SPEC cell?
        r = raw.rows[i]
        if i in error_rows or any(not _is_blank(r[j]) for j in own if j < len(r)):
            filled[i] = True
    keep = np.flatnonzero(filled)
    all_rows = len(keep) == n_rows
    data: dict[str, Any] = {"_row": keep.astype(np.int64) + raw.first_row}
    t = Table(table, raw.sheet, pd.DataFrame(), letters, set(index))
    position = {int(i): n for n, i in enumerate(keep)} if raw.errors else {}
    kept = keep.tolist()
    for c in cols:
        if c.name not in index:
            continue
        j = index[c.name]
        if columns is not None:
            values = list(columns[j]) if all_rows else [columns[j][i] for i in kept]
        else:
            values = [raw.rows[i][j] if j < len(raw.rows[i]) else None for i in kept]
        errs = {position[i]: e for (i, jj), e in raw.errors.items() if jj == j and i in position}
        for n, err in errs.items():
            values[n] = err
        if c.required:
            _blank_problems(t, c, data["_row"], np.flatnonzero(~_filled(values)).tolist(), problems)
        data[c.name] = _convert_column(c, values, data["_row"], t, problems, has_errors=bool(errs))
    t.frame = pd.DataFrame(data)
    return t


def _blank_problems(t: Table, c: Col, rows: np.ndarray, blanks: Iterable[int], problems: list[Problem]) -> None:
    for n in blanks:
        problems.append(Problem(*t.where(int(rows[n]), c.name), f"{c.name} is blank", f"fill in {c.name}"))


_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
          "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
"""Every character ``str.isspace`` accepts (a test checks the list against Python's own; finding it at start-up
cost 0.9 s a run)."""
_SPACE_CLASS = "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in _SPACE) + "]"
"""The characters of :data:`_SPACE` as an RE2 character class."""
_ALL_SPACE = f"^{_SPACE_CLASS}*$"
"""Text that Python's ``str.strip`` empties (RE2): the same blanks as the cell-by-cell way."""
_EDGE_SPACE = f"^{_SPACE_CLASS}|{_SPACE_CLASS}$"
"""Text that ``str.strip`` (and pandas' ``str.strip``, the same characters) would change (RE2)."""


def _blank_mask(arr: pa.Array) -> np.ndarray:
    """True where an Arrow column's cell is blank (no value, or text of white space only)."""
    if pa.types.is_null(arr.type):
        return np.ones(len(arr), dtype=bool)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        blank = pc.match_substring_regex(arr, _ALL_SPACE).fill_null(True)
        return np.asarray(blank, dtype=bool)
    return np.asarray(arr.is_null(), dtype=bool)


def _convert_columns(raw: RawTable, arrays: list[pa.Array], index: dict[str, int], own: list[int],
                     error_rows: set[int], t: Table, problems: list[Problem]) -> Table:
    """:func:`convert` for a table read column by column: blanks, text, dates and quantities are converted
    whole columns at once; other columns (and any column holding an Excel error) cell by cell, from the
    same values the cell reader gives."""
    n_rows = len(raw.rows)
    blanks = {j: _blank_mask(arrays[j]) for j in own}
    keep_mask = np.zeros(n_rows, dtype=bool)
    for j in own:
        keep_mask |= ~blanks[j]
    if error_rows:
        keep_mask[sorted(error_rows)] = True
    keep = np.flatnonzero(keep_mask)
    every = len(keep) == n_rows
    take = None if every else pa.array(keep)
    rows = raw.first_row + keep.astype(np.int64)
    data: dict[str, Any] = {"_row": rows}
    for c in SCHEMA[t.name]:
        if c.name not in index:
            continue
        j = index[c.name]
        arr = arrays[j] if take is None else arrays[j].take(take)
        blank = blanks[j] if every else blanks[j][keep]
        errs = {int(np.searchsorted(keep, i)): e for (i, jj), e in raw.errors.items() if jj == j and keep_mask[i]}
        fast = None if errs else _whole_column(c, arr, blank, rows, t, problems)
        if fast is None:
            values = cell_values(arr)
            for n, err in errs.items():
                values[n] = err
            if c.required:
                _blank_problems(t, c, rows, [n for n, v in enumerate(values)
                                             if v is None or (v.__class__ is str and not v.strip())], problems)
            fast = _convert_column(c, values, rows, t, problems, has_errors=bool(errs))
        data[c.name] = fast
    t.frame = pd.DataFrame(data)
    return t


def _whole_column(c: Col, arr: pa.Array, blank: np.ndarray, rows: np.ndarray, t: Table,
                  problems: list[Problem]) -> Any:
    """A column converted at once when its Arrow type allows (text as text, dates as dates, numbers as
    quantities), else None (converted cell by cell). Blank required cells are reported first, as
    cell by cell."""
    typ = arr.type
    empty = pa.types.is_null(typ)
    text = None
    if c.kind == "yesno" and empty:  # no column of the user's (Billable): every cell blank
        if c.required:
            _blank_problems(t, c, rows, np.flatnonzero(blank), problems)
        return pd.Series(np.full(len(arr), np.nan))
    if c.kind in ("text", "choice", "yesno") and (empty or pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        cells = arr.cast(pa.string()).fill_null("")
        text = pd.Series(cells.to_pandas(), dtype="str")
        if pc.any(pc.match_substring_regex(cells, _EDGE_SPACE)).as_py():  # (else the text is its own, not a copy)
            text = text.str.strip()
    elif not ((c.kind == "date" and (empty or pa.types.is_timestamp(typ)))
              or (c.kind == "quantity" and (empty or pa.types.is_floating(typ)))):
        return None
    if c.required:
        _blank_problems(t, c, rows, np.flatnonzero(blank), problems)
    if c.kind == "date":
        blank_value = FOREVER if c.name == "End" else SINCE_EVER
        if empty:
            return np.full(len(arr), blank_value, dtype=np.int64)
        days = pc.divide(pc.cast(arr, pa.int64()), 86_400_000)  # whole days since 1970 (the reader checks)
        return np.asarray(days.fill_null(blank_value), dtype=np.int64)
    if c.kind == "quantity":
        floats = np.full(len(arr), np.nan) if empty else \
            arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False, writable=True)
        return _check_quantities(floats, rows, c, t, problems)
    return _convert_column(c, [], rows, t, problems, has_errors=False, text=text)


def _problem_for(t: Table, rows: np.ndarray, col: str, values: Iterable[Any], msg: str, fix: str,
                 out: list[Problem]) -> None:
    for row, v in zip(rows, values, strict=False):
        shown = str(v) if isinstance(v, ExcelError) else repr(v)
        out.append(Problem(*t.where(int(row), col), msg.format(v=shown), fix))


def _errors_mask(values: list[Any]) -> np.ndarray:
    return np.fromiter((isinstance(v, ExcelError) for v in values), dtype=bool, count=len(values))


def _convert_column(c: Col, values: list[Any], rows: np.ndarray, t: Table,
                    problems: list[Problem], has_errors: bool = True, text: pd.Series | None = None) -> Any:
    """One column's typed values (``text``: the column already as stripped text, for the text kinds)."""
    err = _errors_mask(values) if has_errors else None
    if err is not None and err.any():
        err_idx = np.flatnonzero(err)
        _problem_for(t, rows[err_idx], c.name, [values[i] for i in err_idx],
                     "cell holds the Excel error {v}",
                     "fix the formula or type the value", problems)
        values = [None if e else v for v, e in zip(values, err, strict=True)]
    if c.kind == "any":
        return pd.Series(values, dtype=object)
    if c.kind in ("choice", "yesno") and text is None and len(values) <= _FEW:
        words = _texts(values)
        if all(map(str.isascii, words)):  # (Python's lower case is then pandas' own)
            return _few_choices(c, words, rows, t, problems)
    if c.kind in ("text", "choice"):
        out = _to_text(values) if text is None else text
        if c.kind == "choice":
            low = out.str.lower()
            bad = (out != "") & ~low.isin(c.choices)
            if bad.any():
                bad_idx = np.flatnonzero(bad.to_numpy())
                _problem_for(t, rows[bad_idx], c.name, out.iloc[bad_idx],
                             "{v} is not one of " + ", ".join(c.choices),
                             f"type one of: {', '.join(c.choices)}", problems)
            out = low.where(~bad, "")
        return out
    if c.kind == "yesno":
        txt = (_to_text(values) if text is None else text).str.lower()
        yes = txt.isin(_YES)
        no = txt.isin(_NO)
        wrong = ~(yes | no)
        if wrong.any():
            bad_idx = np.flatnonzero(wrong.to_numpy())
            _problem_for(t, rows[bad_idx], c.name, txt.iloc[bad_idx], "{v} is not Yes or No",
                         "type Yes or No", problems)
        res = pd.Series(np.where(yes, 1.0, np.where(txt == "", np.nan, 0.0)))
        return res
    if c.kind == "date":
        return _to_days(values, rows, c, t, problems)
    if c.kind == "quantity":
        return _to_quantities(values, rows, c, t, problems)
    return _to_numbers(values, rows, c, t, problems)


def _to_quantities(values: list[Any], rows: np.ndarray, c: Col, t: Table, problems: list[Problem]) -> pd.Series:
    """Amounts ≥ 0 as floats, NaN when blank (usage hours and tickets: a million rows read at once)."""
    try:
        arr = np.array(values, dtype=np.float64)  # numbers and blanks (None → NaN); dates refuse
        blank = np.flatnonzero(np.isnan(arr))
        if any(values[i] is not None for i in blank):  # text such as "nan" is not a blank
            raise ValueError
    except (TypeError, ValueError):
        arr = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            if _is_blank(v):
                continue
            try:
                if isinstance(v, dt.date):
                    raise ValueError("a date")
                arr[i] = float(to_decimal(v))
            except ValueError:
                what = "a date" if isinstance(v, dt.date) else repr(v)
                problems.append(Problem(*t.where(int(rows[i]), c.name), f"{what} is not a number",
                                        f"type a number in {c.name}"))
    return _check_quantities(arr, rows, c, t, problems)


def _check_quantities(arr: np.ndarray, rows: np.ndarray, c: Col, t: Table, problems: list[Problem]) -> pd.Series:
    """Negative, too large or infinite amounts reported and blanked."""
    bad = np.flatnonzero(~np.isnan(arr) & ((arr < 0) | (arr >= 10**9) | ~np.isfinite(arr)))
    for k in bad:
        v = float(arr[k])
        i = int(k)
        msg = f"{v:g} is negative" if v < 0 else f"{v:g} is too large"
        problems.append(Problem(*t.where(int(rows[i]), c.name), msg, f"type a number ≥ 0 in {c.name}"))
        arr[i] = np.nan
    return pd.Series(arr, dtype=np.float64)


def _to_text(values: list[Any]) -> pd.Series:
    return pd.Series(_texts(values), dtype="str")


def _texts(values: list[Any]) -> list[str]:
    """Each cell as stripped text (pandas' own stripping is the same)."""
    if set(map(type, values)) <= _TEXT_OR_BLANK:
        return ["" if v is None else v.strip() for v in values]
    return [cell_text(v) for v in values]


_FEW = 2_000
"""Up to this many cells, a choice or Yes/No column is checked in plain Python: pandas' per-call cost is
larger than the work."""

_YES = ("yes", "y", "true", "1", "x")
_NO = ("no", "n", "false", "0", "")


def _few_choices(c: Col, words: list[str], rows: np.ndarray, t: Table, problems: list[Problem]) -> pd.Series:
    """A short choice or Yes/No column (ASCII text) converted as the whole-column way does."""
    low = [w.lower() for w in words]
    if c.kind == "yesno":
        wrong = [i for i, w in enumerate(low) if w not in _YES and w not in _NO]
        if wrong:
            _problem_for(t, rows[wrong], c.name, [low[i] for i in wrong], "{v} is not Yes or No",
                         "type Yes or No", problems)
        return pd.Series([1.0 if w in _YES else np.nan if w == "" else 0.0 for w in low], dtype=np.float64)
    bad = [i for i, (w, lw) in enumerate(zip(words, low, strict=True)) if w != "" and lw not in c.choices]
    if bad:
        _problem_for(t, rows[bad], c.name, [words[i] for i in bad], "{v} is not one of " + ", ".join(c.choices),
                     f"type one of: {', '.join(c.choices)}", problems)
        for i in bad:
            low[i] = ""
    return pd.Series(low, dtype="str")


_TEXT_OR_BLANK = {str, type(None)}


def _to_numbers(values: list[Any], rows: np.ndarray, c: Col, t: Table,
                problems: list[Problem]) -> pd.Series:
    """Numbers as Decimal objects (exact); blanks as None."""
    out: list[Decimal | None] = []
    for v, row in zip(values, rows, strict=True):
        if _is_blank(v):
            out.append(None)
            continue
        percent = c.kind == "pct" and isinstance(v, str) and v.strip().endswith("%")
        try:
            if isinstance(v, dt.date):
                raise ValueError("a date")
            d = to_decimal(v.strip()[:-1]) / 100 if percent else to_decimal(v)
        except ValueError:
            what = "a date" if isinstance(v, dt.date) else repr(v)
            problems.append(Problem(*t.where(int(row), c.name), f"{what} is not a number",
                                    f"type a number in {c.name}"))
            out.append(None)
            continue
        if abs(d) >= 10**9:  # beyond any price or count; larger values overflow exact micro-unit arithmetic
            problems.append(Problem(*t.where(int(row), c.name), f"{d} is too large", f"check {c.name}"))
            out.append(None)
            continue
        if c.kind == "int" and d != d.to_integral_value():
            problems.append(Problem(*t.where(int(row), c.name), f"{d} is not a whole number",
                                    f"type a whole number in {c.name}"))
            out.append(None)
            continue
        if d < 0 and not (c.name == "UnitPrice" and t.name == "AddOns"):  # a negative add-on: a recurring credit
            problems.append(Problem(*t.where(int(row), c.name), f"{d} is negative",
                                    f"{c.name} cannot be negative; use a credit add-on instead"
                                    if c.name == "UnitPrice" else f"type a number ≥ 0 in {c.name}"))
            out.append(None)
            continue
        if c.kind == "pct" and (d > 1 or (d == 1 and not percent)):
            shown = f"{d.normalize():f}"
            fix = (f"type {shown}% for {shown} percent (or {(d / 100).normalize():f}); 100% if the whole amount "
                   "is meant" if d <= 100 else "type a fraction between 0 and 1, or a percent such as 8.25%")
            problems.append(Problem(*t.where(int(row), c.name),
                                    f"{shown} would mean {d * 100:.0f}%" + (", more than 100%" if d > 1 else ""),
                                    fix))
            out.append(None)
            continue
        out.append(d)
    return pd.Series(out, dtype=object)


_EPOCH_ORDINAL = EPOCH.toordinal()


def _to_days(values: list[Any], rows: np.ndarray, c: Col, t: Table,
             problems: list[Problem]) -> np.ndarray:
    """Dates as day numbers; blank Start/Date → SINCE_EVER, blank End → FOREVER."""
    blank_value = FOREVER if c.name == "End" else SINCE_EVER
    n = len(values)
    out = np.full(n, blank_value, dtype=np.int64)
    kinds = np.fromiter(map(type, values), dtype=object, count=n)
    done = np.zeros(n, dtype=bool)
    for kind in set(kinds.tolist()):
        if kind is type(None):
            done |= kinds == kind
        elif issubclass(kind, dt.date):  # date and date-time cells (any subclass: COM times too), by their fields
            idx = np.flatnonzero(kinds == kind)
            cells = values if len(idx) == n else [values[i] for i in idx]
            out[idx] = np.fromiter(map(dt.date.toordinal, cells), np.int64, len(idx)) - _EPOCH_ORDINAL
            done[idx] = True
    for i in np.flatnonzero(~done):
        v = values[i]
        if _is_blank(v):
            continue
        try:
            d = to_date(v)
            if d is None:
                continue
            day = (d - EPOCH).days
        except ValueError as exc:
            msg = str(exc)
            fix = ("type the date as YYYY-MM-DD (e.g. 2026-11-15) or as an Excel date"
                   if "could be" in msg or "not a date" in msg else "type a real date")
            problems.append(Problem(*t.where(int(rows[i]), c.name), msg, fix))
            continue
        out[i] = day
    return out
