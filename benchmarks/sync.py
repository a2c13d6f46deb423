"""Roster sync benchmark: a 50,000-user Microsoft 365 export against a 50,000-row Roster of one client.

Prints seconds for reading the export, planning the sync (dry run), applying it
(Roster + ChangeLog written into the workbook) and the whole ``perseat import --apply``
command, and checks the 5 s target.
Run (from the project folder): python -m benchmarks.sync [--users N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
        cmd = [sys.executable, "-m", "perseat_addin.cli", "import", "m365", str(csv), "--workbook", str(copy),
               "--client", "Big Client", "--effective", "2026-12-01", "--apply"]
        t3 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        t_cli = time.perf_counter() - t3
        if done.returncode != 0:
            raise SystemExit(f"perseat import failed:\n{done.stdout}\n{done.stderr}")
    result = {"benchmark": "sync", "users": n, "changes": len(changes), "read_s": round(t_read, 2),
              "dry_run_s": round(t_plan, 2), "apply_s": round(t_apply, 2),
              "read_plus_apply_s": round(t_read + t_apply, 2), "cli_apply_s": round(t_cli, 2), "target_s": 5.0,
              "meets_target": max(t_read + t_apply, t_cli) <= 5.0}
    print(f"sync: {n:,}-user export vs {n:,}-row Roster, {len(changes):,} changes")
    print(f"  read {t_read:.2f} s, dry run {t_plan:.2f} s, apply (Roster + ChangeLog, atomic save) {t_apply:.2f} s")
    print(f"  perseat import ... --apply end to end (with the drift report): {t_cli:.2f} s (target 5 s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
