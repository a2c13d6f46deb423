"""Who is billable, and how many seats each group has on each day of a period.

All of it is columnar: one pass of numpy over the roster, whatever its size.
The same UserID twice for one client counts once (its active days are united).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from perseat_addin.model import FOREVER, SINCE_EVER, Billable, UserType, from_day_number

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class DayCounts:
    """Per group: count on each day of the period, and count of anyone active on any day."""

    daily: IntArray  # (G, N)
    any_day: IntArray  # (G,)
    counted: BoolArray  # (rows,) the row contributes (after MinActiveDays and de-duplication)
    active_days: IntArray  # (rows,) days active in the period (united over duplicates)


def count_days(group: IntArray, key: IntArray, start: IntArray, end: IntArray,
               min_days: IntArray, first_day: int, days: int, n_groups: int) -> DayCounts:
    """Count rows active on each day; rows sharing ``key`` (≥ 0) are one person.

    ``start``/``end`` are inclusive day numbers; ``min_days`` is each row's
    MinActiveDays (a person counts only if active at least that many days of
    the period). A row with group < 0 is ignored. Columnar throughout: the rows
    active in the period are picked once, and people on several rows are
    resolved together (:func:`_united`).
    """
    n = len(group)
    last_day = first_day + days - 1
    counted = (group >= 0) & (start <= first_day) & (end >= last_day)  # most rows: active every day
    if days < int(min_days.max(initial=0)):
        counted &= min_days <= days
    rest = np.flatnonzero((group >= 0) & ~counted)
    s_r, e_r = start[rest], end[rest]
    # the few rows active only part of the period (or too few days), and below people on several rows
    rows = rest[(e_r >= first_day) & (s_r <= last_day) & (s_r <= e_r)]
    active = np.zeros(n, dtype=bool)
    active[rows] = True
    people = np.flatnonzero(key >= 0)  # rows of a UserID that occurs more than once
    people = people[counted[people] | active[people]]
    is_dup = np.zeros(n, dtype=bool)
    if len(people):
        _, inverse, counts = np.unique(key[people], return_inverse=True, return_counts=True)
        dup = people[counts[inverse.reshape(-1)] > 1]  # active rows of a person on several active rows
        is_dup[dup] = True
        rows = np.sort(np.concatenate([rows, dup[counted[dup]]]))
        counted[dup] = False
    whole = counted
    any_day = np.bincount(group[whole], minlength=n_groups).astype(np.int64)
    grp = group[rows]
    a = np.maximum(start[rows], first_day) - first_day  # day indexes inside the period
    b = np.minimum(end[rows], last_day) - first_day
    span = b - a + 1
    active_days = np.zeros(n, dtype=np.int64)
    active_days[whole] = days
    active_days[rows] = span
    dup_rows = is_dup[rows]
    part = ~dup_rows & (span >= min_days[rows])
    width = days + 1
    gs = grp[part] * width
    flat = np.bincount(gs + a[part], minlength=n_groups * width)
    flat -= np.bincount(gs + b[part] + 1, minlength=n_groups * width)
    daily = np.cumsum(flat.reshape(n_groups, width), axis=1)[:, :days] + any_day[:, None]
    any_day += np.bincount(grp[part], minlength=n_groups)
    counted[rows[part]] = True
    if dup_rows.any():
        d = np.flatnonzero(dup_rows)
        _united(rows[d], grp[d], key[rows[d]], start[rows[d]], a[d], b[d], min_days, days, daily, any_day,
                counted, active_days)
    return DayCounts(daily.astype(np.int64), any_day, counted, active_days)


def _united(rows: IntArray, grp: IntArray, key: IntArray, start: IntArray, a: IntArray, b: IntArray,
            min_days: IntArray, days: int, daily: IntArray, any_day: IntArray, counted: BoolArray,
            active_days: IntArray) -> None:
    """Add people on several rows (same ``key``) to ``daily``/``any_day``, in place.

    Each day of a person belongs to the latest-starting row active on it (ties: the later row); the
    person's days are the union of its rows', it counts once if that union reaches the MinActiveDays of
    its latest row, and then on each day in the group of the row owning it.
    """
    order = np.lexsort((rows, start, key))  # by person, then oldest first: a later row wins its days
    rows, grp, key, a, b = rows[order], grp[order], key[order], a[order], b[order]
    people, person = np.unique(key, return_inverse=True)
    person = person.reshape(-1)
    span = b - a + 1
    pos = np.arange(len(rows))
    cell_row = np.repeat(pos, span)  # one entry per (row, active day)
    cell_day = np.repeat(a, span) + (np.arange(len(cell_row)) - np.repeat(np.cumsum(span) - span, span))
    owner = np.full((len(people), days), -1, dtype=np.int64)
    np.maximum.at(owner, (person[cell_row], cell_day), cell_row)
    total = (owner >= 0).sum(axis=1)
    latest = np.full(len(people), -1, dtype=np.int64)
    np.maximum.at(latest, person, pos)
    active_days[rows] = total[person]
    ok = total >= min_days[rows[latest]]
    p_idx, day = np.nonzero((owner >= 0) & ok[:, None])
    r = owner[p_idx, day]
    np.add.at(daily, (grp[r], day), 1)
    counted[rows[np.unique(r)]] = True
    np.add.at(any_day, grp[latest[ok]], 1)


def _lookup(cats: pd.Series, table: Mapping[str, object], default: object) -> npt.NDArray[np.generic]:
    """Map a categorical through ``table`` by its categories (fast on a million rows)."""
    values = np.array([table.get(k, default) for k in cats.cat.categories.tolist()] + [default])
    return values[cats.cat.codes.to_numpy()]  # code -1 (blank) takes the default at the end


def classify(roster: pd.DataFrame, types: dict[str, UserType],
             client_ok: BoolArray) -> tuple[BoolArray, BoolArray, IntArray]:
    """Per roster row: (billable user candidate, device candidate, MinActiveDays)."""
    code = {Billable.YES.value: 1, Billable.DEVICE.value: 2}
    kinds = {k: code.get(str(t.billable), 0) for k, t in types.items()}
    kind = _lookup(roster["type_key"], kinds, 0)  # 1 billable user, 2 device, 0 neither
    min_days = _lookup(roster["type_key"], {k: t.min_active_days for k, t in types.items()}, 0)
    enabled = _lookup(roster["status"], {"disabled": False}, True).astype(bool)
    ok = client_ok & enabled
    return ok & (kind == 1), ok & (kind == 2), min_days.astype(np.int64)


_CLIENT, _UNKNOWN_TYPE, _DISABLED, _ENDED, _STARTS, _NOT_BILLABLE, _DEVICE, _BILLED, _BILLED_SPAN, _TOO_FEW, \
    _DUPLICATE = range(11)
"""Why a roster row is or is not billed, in the order the reasons are tested."""


def reasons(roster: pd.DataFrame, types: dict[str, UserType], counted: BoolArray,
            devices: BoolArray, active_days: IntArray, first_day: int, days: int,
            client_ok: BoolArray) -> pd.Series:
    """A reason in words for every roster row ("billable: Employee, active 30 days").

    Columnar: each row gets a case and the few numbers its sentence needs; each distinct (case, numbers) is
    put into words once (a large roster has a few hundred distinct reasons)."""
    last = first_day + days - 1
    tcode, tkeys = pd.factorize(roster["type_key"].astype("str"))  # -1: no type
    tlist = [types.get(k) for k in tkeys]
    known = np.array([t is not None for t in tlist] + [False])[tcode]
    no = np.array([t is not None and t.billable == Billable.NO for t in tlist] + [False])[tcode]
    needs = np.array([t.min_active_days if t is not None else 0 for t in tlist] + [0], dtype=np.int64)[tcode]
    disabled = np.asarray(roster["status"].astype("str") == "disabled", dtype=bool)
    s = roster["start"].to_numpy(dtype=np.int64)
    e = roster["end"].to_numpy(dtype=np.int64)
    ended, starts = e < first_day, s > last
    raw_code, raw_types = pd.factorize(roster["type"], use_na_sentinel=False)
    partial = (s > first_day) | (e < last)
    case = np.select(  # the first reason that holds, in the order they are tested
        [~client_ok, ~known, disabled, ended, starts, no, devices, counted & ~partial, counted & partial,
         active_days < needs],
        [_CLIENT, _UNKNOWN_TYPE, _DISABLED, _ENDED, _STARTS, _NOT_BILLABLE, _DEVICE, _BILLED, _BILLED_SPAN,
         _TOO_FEW], _DUPLICATE).astype(np.int64)
    a = np.select([case == _UNKNOWN_TYPE, case == _ENDED, case == _STARTS, case == _BILLED_SPAN, case == _TOO_FEW],
                  [raw_code, e, s, np.maximum(s, first_day), active_days], 0).astype(np.int64)
    b = np.where(case == _BILLED_SPAN, np.minimum(e, last), 0).astype(np.int64)
    word_type = np.where(np.isin(case, [_NOT_BILLABLE, _DEVICE, _BILLED, _BILLED_SPAN, _TOO_FEW]), tcode, -1)
    key = np.zeros(len(case), dtype=np.int64)
    for part in (case, word_type, a, b):  # one dense code per distinct (case, type, a, b), never overflowing
        codes, inverse = np.unique(part, return_inverse=True)
        _, key = np.unique(key * len(codes) + inverse.reshape(-1), return_inverse=True)
        key = key.reshape(-1)
    first = np.zeros(int(key.max()) + 1 if len(key) else 0, dtype=np.int64)
    first[key[::-1]] = np.arange(len(key) - 1, -1, -1)  # a row of each distinct reason
    texts = [_reason(int(case[i]), tlist[word_type[i]] if word_type[i] >= 0 else None,
                     raw_types[a[i]] if case[i] == _UNKNOWN_TYPE else None, int(a[i]), int(b[i])) for i in first]
    return pd.Series(np.array(texts, dtype=object)[key], dtype="str")


def _reason(case: int, t: UserType | None, raw_type: object, x: int, y: int) -> str:
    """The words of one reason (``x``, ``y``: the case's numbers; ``t`` the row's UserType)."""
    if case == _CLIENT:
        return "not billed: client is inactive or unknown"
    if case == _UNKNOWN_TYPE:
        return f"not billable: type {raw_type!r} is not in UserTypes"
    if case == _DISABLED:
        return "not billable: sign-in disabled"
    if case in (_ENDED, _STARTS):
        when = ("ended " if case == _ENDED else "starts ") + from_day_number(x).isoformat()
        return f"not billable: {when}, outside the period"
    if case == _DUPLICATE:
        return "counted once: same UserID as another row of this client"
    assert t is not None  # the remaining cases have a known type
    if case == _NOT_BILLABLE:
        return f"not billable: {t.name}" + (f" ({t.definition})" if t.definition else "")
    if case == _DEVICE:
        return f"billed as a shared device: {t.name}"
    if case == _BILLED:
        return f"billable: {t.name}"
    if case == _BILLED_SPAN:
        da, db = from_day_number(x), from_day_number(y)
        return f"billable: {t.name}, active {da:%b} {da.day}–{db:%b} {db.day}"  # not %-d: Windows lacks it
    return f"not billable: active {x} days, {t.name} needs {t.min_active_days}"


__all__ = ["FOREVER", "SINCE_EVER", "DayCounts", "classify", "count_days", "reasons"]
