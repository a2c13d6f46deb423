"""Synthetic MSP books for benchmarks: many clients, a large roster, realistic churn.

``roster_frame`` builds the Roster columns directly (for the 1,048,575-row
engine benchmark); ``workbook_sheets`` builds a whole workbook (for the CLI).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import numpy as np
import pandas as pd

from perseat_addin.excel.template import SheetSpec, template_sheets
from perseat_addin.model import FOREVER, SINCE_EVER, Period, day_number
from perseat_addin.workbook.load import prepare_roster

PERIOD = Period(2026, 11)
TYPES = np.array(["Employee", "Contractor", "Intern", "Service", "Guest", "Shared"])
TYPE_P = np.array([0.86, 0.05, 0.02, 0.03, 0.03, 0.01])
PLANS = np.array(["Standard", "Premium", "Essentials", "Volume Pro", "Growth", "Shop Floor"])


def roster_frame(users: int, clients: int, seed: int = 7) -> pd.DataFrame:
    """Roster as the loader returns it: about 3% hires and 3% leavers in the month, some duplicates."""
    rng = np.random.default_rng(seed)
    client = rng.integers(0, clients, users)
    first = day_number(PERIOD.first)
    start = np.full(users, SINCE_EVER, dtype=np.int64)
    known = rng.random(users) < 0.7
    start[known] = first - rng.integers(30, 2000, known.sum())
    hire = rng.random(users) < 0.03
    start[hire] = first + rng.integers(1, PERIOD.days, hire.sum())
    end = np.full(users, FOREVER, dtype=np.int64)
    leave = rng.random(users) < 0.03
    end[leave] = first + rng.integers(0, PERIOD.days - 1, leave.sum())
    end = np.where(end < start, FOREVER, end)
    uid = np.arange(users)
    dup = rng.random(users) < 0.001
    uid[dup] = np.maximum(uid[dup] - 1, 0)
    client[dup] = client[np.maximum(np.flatnonzero(dup) - 1, 0)]
    names = pd.Series(uid).astype("str")
    status = np.where(rng.random(users) < 0.02, "disabled", "active")
    return prepare_roster(pd.DataFrame({
        "row": np.arange(2, users + 2),
        "client": pd.Series(np.char.add("Client ", client.astype(str))).astype("str"),
        "user": ("user" + names + "@client.example").astype("str"),
        "name": ("User " + names).astype("str"),
        "type": pd.Series(TYPES[rng.choice(len(TYPES), users, p=TYPE_P)]).astype("str"),
        "plan": pd.Series(np.where(rng.random(users) < 0.01, "Premium", "")).astype("str"),
        "start": start, "end": end,
        "status": pd.Series(status).astype("str"),
    }))


def client_rows(clients: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """Clients table rows spread over the template's plans."""
    rng = np.random.default_rng(seed + 1)
    plans = PLANS[rng.integers(0, len(PLANS), clients)]
    return [(f"Client {i}", str(plans[i]), "Active", f"Contact {i}", f"ap{i}@client{i}.example",
             f"{i} Main Street, Portland, ME 04101", "", 0.05 if i % 10 == 0 else 0,
             0.055 if i % 7 == 0 else None, None) for i in range(clients)]


def workbook_sheets(users: int, clients: int, seed: int = 7) -> list[SheetSpec]:
    """The template's settings and plans with a generated Clients and Roster."""
    sheets = {s.name: s for s in template_sheets()}
    r = roster_frame(users, clients, seed)

    def d(n: int) -> dt.date | None:
        if n in (FOREVER, SINCE_EVER):
            return None
        return PERIOD.first + dt.timedelta(days=int(n - day_number(PERIOD.first)))

    rows = [(c, u, n, u, t, p, d(s), d(e), st.capitalize(), "Benchmark", "")
            for c, u, n, t, p, s, e, st in zip(r["client"], r["user"], r["name"], r["type"], r["plan"],
                                                r["start"], r["end"], r["status"], strict=True)]
    sheets["Roster"].rows = rows
    sheets["Clients"].rows = client_rows(clients, seed)
    sheets["Devices"].rows = [(f"Client {i}", f"D{i}-{k}", "Kiosk", "Kiosk", None, None)
                              for i in range(0, clients, 5) for k in range(3)]
    sheets["AddOns"].rows = [(f"Client {i}", "Email archiving", 1, 4, "Yes", None, None, "Yes")
                             for i in range(0, clients, 3)]
    sheets["Usage"].rows = [(f"Client {i % clients}", "", PERIOD.first + dt.timedelta(days=i % 30), 1, 1.5)
                            for i in range(clients * 5)]
    return list(sheets.values())


def run_measured(args: list[str]) -> tuple[float, float, str]:
    """Run ``python -m perseat_addin.cli ARGS``: seconds, the child's own peak RSS (MiB) and its stdout."""
    import os
    import subprocess
    import sys
    import time

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "perseat_addin.cli", *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (KiB on Linux)
    secs = time.perf_counter() - t0
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"perseat {args[0]} failed with exit code {code}")
    return secs, usage.ru_maxrss / 1024, text



CPU_SECONDS: list[float] = []
"""CPU seconds (user + system) of each measured run, for :func:`figures`: on a busy machine the wall-clock
seconds measure the other processes too, the CPU seconds stay close to a quiet machine's wall clock."""


def figures(times: list[float], peak_mib: float | None, target_seconds: float, target_mib: float | None = None,
            floor_seconds: float | None = None, floor_ratio: float | None = None,
            process_floor_seconds: float | None = None) -> dict[str, Any]:
    """A benchmark's JSON figures: best and every time, peak RSS, the targets, whether they are met, and the
    ratio of the best time to the measured floor (with its target ratio, when there is one; the target is
    judged on the in-process floor, the stricter) and to the floor as a process of its own."""
    best = min(times)
    out: dict[str, Any] = {"seconds_best": round(best, 3), "seconds_all": [round(t, 3) for t in times],
                           "peak_rss_mib": None if peak_mib is None else round(peak_mib, 1),
                           "target_seconds": target_seconds}
    meets = best <= target_seconds
    if target_mib is not None and peak_mib is not None:
        out["target_mib"] = target_mib
        meets = meets and peak_mib <= target_mib
    if floor_seconds:
        out["floor_seconds"] = round(floor_seconds, 3)
        out["ratio_to_floor"] = round(best / floor_seconds, 2)
        if floor_ratio is not None:
            out["target_ratio_to_floor"] = floor_ratio
            meets = meets and best <= floor_ratio * floor_seconds
    if process_floor_seconds:
        out["process_floor_seconds"] = round(process_floor_seconds, 3)
        out["ratio_to_process_floor"] = round(best / process_floor_seconds, 2)
    out["meets_target"] = meets
    if CPU_SECONDS:
        out["cpu_seconds_best"] = round(min(CPU_SECONDS), 3)
        out["cpu_seconds_all"] = [round(t, 3) for t in CPU_SECONDS]
        CPU_SECONDS.clear()
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    return out
