"""Who is billable, and how many seats each group has on each day of a period.

All of it is columnar: one pass of numpy over the roster, whatever its size.
The same UserID twice for one client counts once (its active days are united).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from .model import FOREVER, SINCE_EVER, UserType, from_day_number

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
    the period). A row with group < 0 is ignored.
    """
    n = len(group)
    last_day = first_day + days - 1
    a = np.maximum(start, first_day)
    b = np.minimum(end, last_day)
    active = (b >= a) & (group >= 0)
    span = np.where(active, b - a + 1, 0)
    dup = np.zeros(n, dtype=bool)
    if n:
        k = np.where(active & (key >= 0), key, -1 - np.arange(n))
        order = np.argsort(k, kind="stable")
        ks = k[order]
        same = np.zeros(n, dtype=bool)
        same[1:] = ks[1:] == ks[:-1]
        first_of_run = np.zeros(n, dtype=bool)
        first_of_run[:-1] = same[1:]
        dup[order] = (same | first_of_run) & (ks >= 0)
    simple = active & ~dup & (span >= min_days)
    width = days + 1
    flat = np.bincount(group[simple] * width + (a[simple] - first_day), minlength=n_groups * width)
    flat -= np.bincount(group[simple] * width + (b[simple] - first_day + 1),
                        minlength=n_groups * width)
    any_day = np.bincount(group[simple], minlength=n_groups).astype(np.int64)
    counted = simple.copy()
    active_days = span.astype(np.int64)
    if dup.any():
        idx = np.flatnonzero(dup)
        ks = key[idx]
        for kval in np.unique(ks):
            rows = idx[ks == kval]
            mask = np.zeros(days, dtype=bool)
            for r in rows:
                mask[a[r] - first_day: b[r] - first_day + 1] = True
            total = int(mask.sum())
            latest = rows[np.lexsort((rows, start[rows]))[-1]]
            active_days[rows] = total
            if total < min_days[latest]:
                continue
            counted[latest] = True
            g = int(group[latest])
            edges = np.diff(np.concatenate(([0], mask.astype(np.int64), [0])))
            for s in np.flatnonzero(edges == 1):
                flat[g * width + s] += 1
            for e in np.flatnonzero(edges == -1):
                flat[g * width + e] -= 1
            any_day[g] += 1
    daily = np.cumsum(flat.reshape(n_groups, width), axis=1)[:, :days]
    return DayCounts(daily.astype(np.int64), any_day, counted, active_days)


def classify(roster: pd.DataFrame, types: dict[str, UserType], client_ok: BoolArray,
             first_day: int, days: int) -> tuple[BoolArray, BoolArray, IntArray]:
    """Per roster row: (billable user candidate, device candidate, MinActiveDays)."""
    tkey = roster["type"].str.lower()
    billable = tkey.map({k: t.billable for k, t in types.items()}).fillna("No").to_numpy(dtype=object)
    min_days = tkey.map({k: t.min_active_days for k, t in types.items()}).fillna(0)
    enabled = (roster["status"] != "disabled").to_numpy()
    ok = client_ok & enabled
    return ok & (billable == "Yes"), ok & (billable == "Device"), min_days.to_numpy(np.int64)


def reasons(roster: pd.DataFrame, types: dict[str, UserType], counted: BoolArray,
            devices: BoolArray, active_days: IntArray, first_day: int, days: int,
            client_ok: BoolArray) -> pd.Series:
    """A reason in words for every roster row ("billable: Employee, active 30 days")."""
    tkey = roster["type"].str.lower()
    tinfo = {k: t for k, t in types.items()}
    out: list[str] = []
    last = first_day + days - 1
    for i, (tk, status, s, e) in enumerate(zip(tkey, roster["status"], roster["start"],
                                               roster["end"], strict=True)):
        t = tinfo.get(tk)
        tname = t.name if t else roster["type"].iloc[i]
        if not client_ok[i]:
            out.append("not billed: client is inactive or unknown")
        elif t is None:
            out.append(f"not billable: type {tname!r} is not in UserTypes")
        elif status == "disabled":
            out.append("not billable: sign-in disabled")
        elif e < first_day or s > last:
            when = "ended " + from_day_number(e).isoformat() if e < first_day else (
                "starts " + from_day_number(s).isoformat())
            out.append(f"not billable: {when}, outside the period")
        elif t.billable == "No":
            out.append(f"not billable: {tname}" + (f" ({t.definition})" if t.definition else ""))
        elif devices[i]:
            out.append(f"billed as a shared device: {tname}")
        elif counted[i]:
            span = ""
            if s > first_day or e < last:
                a = from_day_number(max(s, first_day)).strftime("%b %-d")
                b = from_day_number(min(e, last)).strftime("%b %-d")
                span = f", active {a}–{b}"
            out.append(f"billable: {tname}{span}")
        elif active_days[i] < t.min_active_days:
            out.append(f"not billable: active {active_days[i]} days, {tname} needs "
                       f"{t.min_active_days}")
        else:
            out.append("counted once: same UserID as another row of this client")
    return pd.Series(out, dtype="str")


__all__ = ["FOREVER", "SINCE_EVER", "DayCounts", "classify", "count_days", "reasons"]
