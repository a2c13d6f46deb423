"""Roster sync benchmark: a 50,000-user Microsoft 365 export against a 50,000-row Roster of one client.

Prints seconds for reading the export, planning the sync (dry run), applying it
(Roster + ChangeLog written into the workbook), and JSON for the whole ``perseat import --apply``
command (best of --repeat, each on a fresh copy of the workbook): peak RSS, the 3 s target and the
ratio to the measured floor (reading every cell of the workbook and the export, writing the workbook's
bytes: floor.py).
Run (from the project folder): python -m benchmarks.sync [--users N] [--repeat K] [--no-floor]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.floor import floor
from benchmarks.synth import figures, run_measured
from perseat_addin.engine.roster_sync import ImportPlan
from perseat_addin.excel.template import template_sheets, write_workbook
from perseat_addin.imports.roster import ImportResult, read_export
from perseat_addin.tasks import import_roster
from perseat_addin.tasks.filebook import FileBook

HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"



def sync(path: Path, client: str, imported: ImportResult, effective: dt.date, *, apply: bool) -> ImportPlan:
    """What ``perseat import`` does after reading the export: find the client, plan, and with ``apply`` write."""
    book = FileBook(path)
    name, why = import_roster.find_client(book, imported, client)
    assert name is not None
    planned = import_roster.plan(book, imported, name, why, effective)
    if apply:
        import_roster.apply(book, planned)
    return planned

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-floor", action="store_true", help="skip measuring the floor")
    args = ap.parse_args()
    n = args.users
    with tempfile.TemporaryDirectory() as tmp:
        sheets = {s.name: s for s in template_sheets()}
        sheets["Clients"].rows = [("Big Client", "Standard", "Active", "", "", "", "", 0, None, None)]
        sheets["Roster"].rows = [("Big Client", f"user{i}@big.example", f"User {i}", f"user{i}@big.example",
                                  "Employee", "", dt.date(2025, 1, 1), None, "Active", "Benchmark", "")
                                 for i in range(n)]
        for name in ("Devices", "AddOns", "Usage"):
            sheets[name].rows = []
        wb = Path(tmp) / "big.xlsm"
        write_workbook(wb, list(sheets.values()))
        # 2% leave, 2% join, 1% renamed, 0.5% blocked
        lines = [HEADER]
        for i in range(n):
            if i % 50 == 0:
                continue
            name = f"User {i}" + (" Jr" if i % 100 == 1 else "")
            lines.append(f"{i % 200 == 3},{name},User,{i},Microsoft 365 Business Premium,user{i}@big.example,"
                         "1/1/2025 9:00:00 AM")
        lines += [f"False,New {k},New,{k},Microsoft 365 Business Premium,new{k}@big.example,11/20/2026 9:00:00 AM"
                  for k in range(n // 50)]
        csv = Path(tmp) / "export.csv"
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
        t0 = time.perf_counter()
        imported = read_export(csv, "m365")
        t_read = time.perf_counter() - t0
        t1 = time.perf_counter()
        changes = sync(wb, "Big Client", imported, dt.date(2026, 12, 1), apply=False).changes
        t_plan = time.perf_counter() - t1
        copy = Path(tmp) / "copy.xlsm"
        shutil.copy(wb, copy)
        t2 = time.perf_counter()
        sync(wb, "Big Client", imported, dt.date(2026, 12, 1), apply=True)
        t_apply = time.perf_counter() - t2
        times, peaks = [], []
        for i in range(args.repeat):
            fresh = Path(tmp) / f"run{i}.xlsm"
            shutil.copy(copy, fresh)
            secs, peak, _ = run_measured(["import", "m365", str(csv), "--workbook", str(fresh), "--client",
                                          "Big Client", "--effective", "2026-12-01", "--apply"])
            times.append(secs)
            peaks.append(peak)
        written = (Path(tmp) / "run0.xlsm").stat().st_size
        measured = None
        if not args.no_floor:
            measured = floor(copy, written)
            t_csv = time.perf_counter()
            csv.read_bytes().decode("utf-8-sig").splitlines()
            measured["export_read_s"] = round(time.perf_counter() - t_csv, 3)
            measured["floor_seconds"] = round(measured["floor_seconds"] + measured["export_read_s"], 3)
            measured["process_floor_seconds"] = round(measured["process_floor_seconds"] + measured["export_read_s"], 3)
    result = {"benchmark": "sync", "command": "perseat import m365 --apply", "users": n, "changes": len(changes),
              "read_s": round(t_read, 2), "dry_run_s": round(t_plan, 2), "apply_s": round(t_apply, 2),
              **figures(times, max(peaks), 3.0, None, measured["floor_seconds"] if measured else None,
                        process_floor_seconds=measured["process_floor_seconds"] if measured else None)}
    if measured:
        result["floor"] = measured
    print(f"sync: {n:,}-user export vs {n:,}-row Roster, {len(changes):,} changes; read {t_read:.2f} s, dry run "
          f"{t_plan:.2f} s, apply (Roster + ChangeLog, atomic save) {t_apply:.2f} s; perseat import ... --apply "
          f"end to end: best {result['seconds_best']:.2f} s of {args.repeat} (target ≤ 3 s)", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
