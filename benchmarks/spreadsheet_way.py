"""Baseline: per-seat billing done the spreadsheet way, recalculated in LibreOffice.

This benchmark generates (deterministically, from a seed) the workbook an MSP's
billing staff would keep today and measures how long headless LibreOffice Calc
needs to load it and to recalculate it.  It is the baseline the engine in
``perseat_addin`` is compared against.

Workbook layout
---------------
``Clients``   one row per client: Client, Plan and four formula columns
              (Rate, Billable users, Seat charge, Monthly charge) plus a total.
``Roster``    one row per user: Client, UserID, Type, Start, End, Status
              (Start/End are real Excel date serials; End is empty when open).
``UserTypes`` Type, Billable (Yes/No).
``Plans``     Plan, Rate (flat price per seat per month).
``Settings``  B1 billing month (2026-11-01), B2 period start, B3 period end,
              B4 days in month (B2:B4 are formulas).

Pricing rule implemented by the formulas (and re-implemented in numpy here)
---------------------------------------------------------------------------
For billing month M with period start PS = first day of M, period end PE =
last day of M and D = number of days in M (30 for 2026-11):

* A roster row counts for its client iff Status = "Active", its Type has
  Billable = "Yes" (Employee, Contractor, Intern; not Service, Guest, Shared),
  Start <= PE and (End is empty or End >= PS).
* Its active days are ``min(End or PE, PE) - max(Start, PS) + 1`` (inclusive).
* Seat charge of a client = Rate(plan of client) * sum(active days) / D,
  i.e. the flat monthly per-seat rate prorated by day.
* Monthly charge = ROUND(seat charge, 2) (half away from zero, to the cent).
* "Billable users" = number of counting rows (any active day in the month).
* Checksum = sum of the monthly charges over all clients.

Run as a script with the project Python; LibreOffice is driven through
``_lo_recalc.py`` under ``/usr/bin/python3`` (which has ``python3-uno``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xlsxwriter

HERE = Path(__file__).resolve().parent
LO_PYTHON = "/usr/bin/python3"
LO_HELPER = HERE / "_lo_recalc.py"
SOFFICE = shutil.which("soffice") or "/usr/bin/soffice"

MONTH = "2026-11"
TYPES: list[tuple[str, str, float]] = [  # (type, billable, share of users)
    ("Employee", "Yes", 0.80),
    ("Contractor", "Yes", 0.07),
    ("Intern", "Yes", 0.03),
    ("Service", "No", 0.04),
    ("Guest", "No", 0.03),
    ("Shared", "No", 0.03),
]
PLANS: list[tuple[str, float]] = [
    ("Essentials", 35.00),
    ("Standard", 54.99),
    ("Premium", 89.95),
    ("Enterprise", 124.50),
]
EXCEL_EPOCH = dt.date(1899, 12, 30)


def _serial(d: dt.date) -> int:
    """Return the Excel (1900 system) date serial of ``d``."""
    return (d - EXCEL_EPOCH).days


def _period(month: str) -> tuple[int, int, int]:
    """Return (period start serial, period end serial, days in month) for 'YYYY-MM'."""
    year, mon = (int(x) for x in month.split("-"))
    first = dt.date(year, mon, 1)
    nxt = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return _serial(first), _serial(nxt) - 1, (nxt - first).days


def make_data(users: int, clients: int, seed: int = 1, month: str = MONTH) -> dict[str, Any]:
    """Generate the roster/client data as numpy arrays (deterministic in ``seed``).

    Dates are Excel serials; ``end`` is ``-1`` where End is empty.
    """
    rng = np.random.default_rng(seed)
    ps, pe, _ = _period(month)

    # Skewed client sizes; roster sorted by client like a typical export.
    weights = rng.lognormal(0.0, 1.0, clients)
    client = np.sort(rng.choice(clients, size=users, p=weights / weights.sum()))
    shares = np.array([t[2] for t in TYPES])
    utype = rng.choice(len(TYPES), size=users, p=shares / shares.sum())

    # Start: ~96.5% before the month, ~3% mid-month, ~0.5% after the month.
    u = rng.random(users)
    start = rng.integers(_serial(dt.date(2018, 1, 1)), ps, users)
    mid = u < 0.03
    start[mid] = rng.integers(ps + 1, pe + 1, int(mid.sum()))
    late = (u >= 0.03) & (u < 0.035)
    start[late] = rng.integers(pe + 1, pe + 62, int(late.sum()))

    # End: mostly empty, ~3% mid-month, ~2% before the month (left earlier).
    end = np.full(users, -1, dtype=np.int64)
    v = rng.random(users)
    lo = np.maximum(start, ps)
    in_month = (v < 0.03) & (lo <= pe - 1)
    end[in_month] = lo[in_month] + (rng.random(int(in_month.sum())) * (pe - lo[in_month])).astype(np.int64)
    before = (v >= 0.03) & (v < 0.05) & (start < ps)
    end[before] = start[before] + (rng.random(int(before.sum())) * (ps - start[before])).astype(np.int64)

    disabled = rng.random(users) < 0.02
    plan = rng.integers(0, len(PLANS), clients)
    return {
        "client": client,
        "type": utype,
        "start": start,
        "end": end,
        "disabled": disabled,
        "plan": plan,
        "month": month,
    }


def expected_charges(data: dict[str, Any]) -> dict[str, Any]:
    """Apply the pricing rule with numpy; charges are exact integers in cents."""
    ps, pe, days_in_month = _period(data["month"])
    clients = len(data["plan"])
    billable_type = np.array([t[1] == "Yes" for t in TYPES])
    start, end = data["start"], data["end"]
    end_eff = np.where(end < 0, pe, np.minimum(end, pe))
    counts = ~data["disabled"] & billable_type[data["type"]] & (start <= pe) & ((end < 0) | (end >= ps))
    days = np.where(counts, end_eff - np.maximum(start, ps) + 1, 0)
    seat_days = np.bincount(data["client"], weights=days, minlength=clients).astype(np.int64)
    n_users = np.bincount(data["client"], weights=counts, minlength=clients).astype(np.int64)
    rate_cents = np.array([round(p[1] * 100) for p in PLANS], dtype=np.int64)[data["plan"]]
    # ROUND(rate * days / D, 2) with half away from zero, in exact integer arithmetic.
    num = rate_cents * seat_days
    cents = (2 * num + days_in_month) // (2 * days_in_month)
    return {"billable_users": n_users, "charge_cents": cents, "checksum_cents": int(cents.sum())}


def formulas(users: int, row: int) -> dict[str, str]:
    """Return the four Clients-sheet formulas for 1-based sheet row ``row``."""
    last = users + 1

    def r(col: str) -> str:
        return f"Roster!${col}${2}:${col}${last}"

    ps, pe, dim = "Settings!$B$2", "Settings!$B$3", "Settings!$B$4"
    types, bill = "UserTypes!$A$2:$A$7", "UserTypes!$B$2:$B$7"
    base = f'{r("A")},$A{row},{r("F")},"Active",{r("D")},"<="&{pe}'
    users_f = (
        f'=SUMPRODUCT(COUNTIFS({base},{r("E")},"",{r("C")},{types})*({bill}="Yes"))'
        f'+SUMPRODUCT(COUNTIFS({base},{r("E")},">="&{ps},{r("C")},{types})*({bill}="Yes"))'
    )
    end_eff = f'IF({r("E")}="",{pe},IF({r("E")}>{pe},{pe},{r("E")}))'
    start_eff = f"IF({r('D')}<{ps},{ps},{r('D')})"
    charge_f = (
        f'=$C{row}*SUMPRODUCT(({r("A")}=$A{row})*({r("F")}="Active")'
        f'*(VLOOKUP({r("C")},UserTypes!$A$2:$B$7,2,FALSE)="Yes")'
        f'*({r("D")}<={pe})*((({r("E")}="")+({r("E")}>={ps}))>0)'
        f"*({end_eff}-{start_eff}+1))/{dim}"
    )
    return {
        "Rate": f"=INDEX(Plans!$B$2:$B${len(PLANS) + 1},MATCH($B{row},Plans!$A$2:$A${len(PLANS) + 1},0))",
        "Billable users": users_f,
        "Seat charge": charge_f,
        "Monthly charge": f"=ROUND(E{row},2)",
    }


def client_name(i: int) -> str:
    """Return the display name of client ``i``."""
    return f"Client {i + 1:05d}"


def write_workbook(path: Path, data: dict[str, Any]) -> int:
    """Write the billing workbook to ``path``; return the number of formula cells.

    Formula cells get an empty cached result, so their values only exist after
    LibreOffice recalculates.
    """
    users, clients = len(data["client"]), len(data["plan"])
    wb = xlsxwriter.Workbook(str(path))
    datef = wb.add_format({"num_format": "yyyy-mm-dd"})
    money = wb.add_format({"num_format": "#,##0.00"})
    n_formulas = 0

    ws = wb.add_worksheet("Clients")
    ws.write_row(0, 0, ["Client", "Plan", "Rate", "Billable users", "Seat charge", "Monthly charge"])
    for i in range(clients):
        row = i + 2
        ws.write_string(i + 1, 0, client_name(i))
        ws.write_string(i + 1, 1, PLANS[int(data["plan"][i])][0])
        for j, f in enumerate(formulas(users, row).values()):
            ws.write_formula(i + 1, 2 + j, f, money if j != 1 else None, "")
            n_formulas += 1
    ws.write_string(clients + 1, 0, "Total")
    ws.write_formula(clients + 1, 5, f"=SUM(F2:F{clients + 1})", money, "")
    n_formulas += 1

    ro = wb.add_worksheet("Roster")
    ro.write_row(0, 0, ["Client", "UserID", "Type", "Start", "End", "Status"])
    names = [client_name(i) for i in range(clients)]
    tnames = [t[0] for t in TYPES]
    cols = zip(
        data["client"].tolist(),
        data["type"].tolist(),
        data["start"].tolist(),
        data["end"].tolist(),
        data["disabled"].tolist(),
        strict=True,
    )
    for k, (c, t, s, e, dis) in enumerate(cols):
        r = k + 1
        ro.write_string(r, 0, names[c])
        ro.write_string(r, 1, f"U{k + 1:07d}")
        ro.write_string(r, 2, tnames[t])
        ro.write_number(r, 3, s, datef)
        if e >= 0:
            ro.write_number(r, 4, e, datef)
        ro.write_string(r, 5, "Disabled" if dis else "Active")

    ut = wb.add_worksheet("UserTypes")
    ut.write_row(0, 0, ["Type", "Billable"])
    for i, (name, billable, _) in enumerate(TYPES):
        ut.write_row(i + 1, 0, [name, billable])

    pl = wb.add_worksheet("Plans")
    pl.write_row(0, 0, ["Plan", "Rate"])
    for i, (name, rate) in enumerate(PLANS):
        pl.write_string(i + 1, 0, name)
        pl.write_number(i + 1, 1, rate, money)

    st = wb.add_worksheet("Settings")
    year, mon = (int(x) for x in data["month"].split("-"))
    st.write_string(0, 0, "Billing month")
    st.write_number(0, 1, _serial(dt.date(year, mon, 1)), datef)
    st.write_string(1, 0, "Period start")
    st.write_formula(1, 1, "=DATE(YEAR(B1),MONTH(B1),1)", datef, "")
    st.write_string(2, 0, "Period end")
    st.write_formula(2, 1, "=EOMONTH(B1,0)", datef, "")
    st.write_string(3, 0, "Days in month")
    st.write_formula(3, 1, "=B3-B2+1", None, "")
    n_formulas += 3
    wb.close()
    return n_formulas


def _free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Make sure the soffice we started (and its process group) is gone."""
    try:
        proc.wait(timeout=30)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def recalc_in_libreoffice(path: Path, clients: int, workdir: Path) -> dict[str, Any]:
    """Start a private headless soffice, run the UNO helper on ``path``, stop soffice."""
    port = _free_port()
    profile = (workdir / "lo-profile").as_uri()
    cmd = [
        SOFFICE,
        f"-env:UserInstallation={profile}",
        "--headless",
        "--invisible",
        "--norestore",
        "--nologo",
        "--nodefault",
        "--nolockcheck",
        f"--accept=socket,host=127.0.0.1,port={port};urp;",
    ]
    t0 = time.perf_counter()
    with open(workdir / "soffice.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        helper = [
            LO_PYTHON,
            str(LO_HELPER),
            str(path),
            "--port",
            str(port),
            "--pid",
            str(proc.pid),
            "--clients",
            str(clients),
            "--terminate",
        ]
        out = subprocess.run(helper, capture_output=True, text=True, timeout=6 * 3600)
        if out.returncode != 0:
            raise RuntimeError(f"_lo_recalc.py failed ({out.returncode}):\n{out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        result["session_s"] = time.perf_counter() - t0
        return result
    finally:
        _stop(proc)


def run_baseline(users: int, clients: int, seed: int = 1, keep: str | None = None) -> dict[str, Any]:
    """Generate, recalculate in LibreOffice and verify; return the figures.

    ``keep``: optional path to copy the generated workbook to.
    """
    data = make_data(users, clients, seed)
    expected = expected_charges(data)
    with tempfile.TemporaryDirectory(prefix="perseat-lo-") as tmp:
        workdir = Path(tmp)
        xlsx = workdir / "billing.xlsx"
        t0 = time.perf_counter()
        n_formulas = write_workbook(xlsx, data)
        generate_s = time.perf_counter() - t0
        size = xlsx.stat().st_size
        if keep:
            shutil.copyfile(xlsx, keep)
        lo = recalc_in_libreoffice(xlsx, clients, workdir)

    lo_cents = np.rint(np.array(lo["monthly_charge"]) * 100).astype(np.int64)
    lo_users = np.rint(np.array(lo["billable_users"])).astype(np.int64)
    checksum_cents = int(lo_cents.sum())
    ex = formulas(users, 2)
    return {
        "users": users,
        "clients": clients,
        "seed": seed,
        "month": data["month"],
        "formula_cells": n_formulas,
        "xlsx_bytes": size,
        "generate_s": round(generate_s, 3),
        "load_s": round(lo["load_s"], 3),
        "recalc_s": round(lo["recalc_s"], 3),
        "total_s": round(lo["load_s"] + lo["recalc_s"], 3),
        "lo_session_s": round(lo["session_s"], 3),
        "peak_mem_mib": round(lo["vm_hwm_kib"] / 1024, 1) if lo["vm_hwm_kib"] else None,
        "peak_mem_process": f"soffice.bin pid {lo['soffice_bin_pid']} (VmHWM before close)",
        "checksum": round(checksum_cents / 100, 2),
        "checksum_numpy": round(expected["checksum_cents"] / 100, 2),
        "checksum_sheet_total": round(lo["sheet_total"], 2),
        "checksum_match": checksum_cents == expected["checksum_cents"],
        "clients_charge_mismatch": int((lo_cents != expected["charge_cents"]).sum()),
        "clients_users_mismatch": int((lo_users != expected["billable_users"]).sum()),
        "billable_users_total": int(lo_users.sum()),
        "lo_version": lo.get("lo_version"),
        "formula_examples": {k: v for k, v in ex.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: human-readable lines, then one JSON line."""
    ap = argparse.ArgumentParser(description="Spreadsheet-way billing baseline (LibreOffice).")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="also save the generated workbook to this path")
    args = ap.parse_args(argv)

    res = run_baseline(args.users, args.clients, args.seed, args.keep)
    print(
        f"LibreOffice {res['lo_version']}: {res['users']} users, {res['clients']} clients, "
        f"{res['formula_cells']} formula cells, billing month {res['month']}, seed {res['seed']}"
    )
    print(f"  generate xlsx : {res['generate_s']:.3f} s ({res['xlsx_bytes']} bytes)")
    print(f"  LO load       : {res['load_s']:.3f} s")
    print(f"  LO recalc     : {res['recalc_s']:.3f} s")
    print(f"  LO total      : {res['total_s']:.3f} s (load + recalc)")
    print(f"  peak memory   : {res['peak_mem_mib']} MiB, {res['peak_mem_process']}")
    print(f"  checksum LO   : {res['checksum']:.2f} (sheet total {res['checksum_sheet_total']:.2f})")
    print(
        f"  checksum numpy: {res['checksum_numpy']:.2f} -> match={res['checksum_match']}, "
        f"per-client mismatches charge={res['clients_charge_mismatch']} "
        f"users={res['clients_users_mismatch']}"
    )
    print(json.dumps({k: v for k, v in res.items() if k != "formula_examples"}))
    return 0 if res["checksum_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
