"""Who is billable, and how many seats each group has on each day of a period.

All of it is columnar: one pass of numpy over the roster, whatever its size.
The same UserID twice for one client counts once (its active days are united).
"""

from __future__ import annotations

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
    the period). A row with group < 0 is ignored.
    """
    n = len(group)
    last_day = first_day + days - 1
    a = np.maximum(start, first_day)
    b = np.minimum(end, last_day)
    active = (b >= a) & (group >= 0)
    span = np.where(active, b - a + 1, 0)
    dup = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(active & (key >= 0))
    if len(cand):
        ks = key[cand]
        _, inverse, counts = np.unique(ks, return_inverse=True, return_counts=True)
        dup[cand] = counts[inverse] > 1
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
            rows = rows[np.lexsort((rows, start[rows]))]  # oldest first; a later row wins its days
            owner = np.full(days, -1, dtype=np.int64)
            for r in rows:
                owner[a[r] - first_day: b[r] - first_day + 1] = r
            total = int((owner >= 0).sum())
            latest = rows[-1]
            active_days[rows] = total
            if total < min_days[latest]:
                continue
            for r in rows:
                mask = owner == r
                if not mask.any():
                    continue
                counted[r] = True
                g = int(group[r])
                edges = np.diff(np.concatenate(([0], mask.astype(np.int64), [0])))
                for s in np.flatnonzero(edges == 1):
                    flat[g * width + s] += 1
                for e in np.flatnonzero(edges == -1):
                    flat[g * width + e] -= 1
            any_day[int(group[latest])] += 1
    daily = np.cumsum(flat.reshape(n_groups, width), axis=1)[:, :days]
    return DayCounts(daily.astype(np.int64), any_day, counted, active_days)


def _lookup(cats: pd.Series, table: dict[str, object], default: object) -> npt.NDArray[np.generic]:
    """Map a categorical through ``table`` by its categories (fast on a million rows)."""
    codes = cats.cat.codes.to_numpy()
    values = np.array([table.get(k, default) for k in cats.cat.categories] + [default])
    return values[np.where(codes < 0, len(values) - 1, codes)]


def classify(roster: pd.DataFrame, types: dict[str, UserType],
             client_ok: BoolArray) -> tuple[BoolArray, BoolArray, IntArray]:
    """Per roster row: (billable user candidate, device candidate, MinActiveDays)."""
    billable = _lookup(roster["type_key"], {k: str(t.billable) for k, t in types.items()}, "No")
    min_days = _lookup(roster["type_key"], {k: t.min_active_days for k, t in types.items()}, 0)
    enabled = _lookup(roster["status"], {"disabled": False}, True).astype(bool)
    ok = client_ok & enabled
    return ok & (billable == Billable.YES.value), ok & (billable == Billable.DEVICE.value), min_days.astype(np.int64)


def reasons(roster: pd.DataFrame, types: dict[str, UserType], counted: BoolArray,
            devices: BoolArray, active_days: IntArray, first_day: int, days: int,
            client_ok: BoolArray) -> pd.Series:
    """A reason in words for every roster row ("billable: Employee, active 30 days")."""
    tkey = roster["type_key"].astype("str")
    tinfo = dict(types)
    out: list[str] = []
    last = first_day + days - 1
    for i, (tk, status, s, e) in enumerate(zip(tkey, roster["status"].astype("str"), roster["start"],
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
        elif t.billable == Billable.NO:
            out.append(f"not billable: {tname}" + (f" ({t.definition})" if t.definition else ""))
        elif devices[i]:
            out.append(f"billed as a shared device: {tname}")
        elif counted[i]:
            span = ""
            if s > first_day or e < last:
                da, db = from_day_number(max(s, first_day)), from_day_number(min(e, last))
                a, b = f"{da:%b} {da.day}", f"{db:%b} {db.day}"  # not %-d: Windows strftime lacks it
                span = f", active {a}–{b}"
            out.append(f"billable: {tname}{span}")
        elif active_days[i] < t.min_active_days:
            out.append(f"not billable: active {active_days[i]} days, {tname} needs "
                       f"{t.min_active_days}")
        else:
            out.append("counted once: same UserID as another row of this client")
    return pd.Series(out, dtype="str")


__all__ = ["FOREVER", "SINCE_EVER", "DayCounts", "classify", "count_days", "reasons"]
