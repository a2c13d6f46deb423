"""Report benchmark: `perseat report` on 100,000 users and 1,000,000 usage rows (12 months).

Prints JSON: seconds (best of --repeat, and every run), peak RSS, the targets (≤ 5 s, ≤ 600 MiB) and the
ratio to the measured floor (reading every cell of the workbook, writing report.xlsx's bytes: floor.py).
Run (from the project folder): python -m benchmarks.report [--users N] [--clients C] [--usage-rows U] [--keep PATH]
[--repeat K] [--no-floor]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.floor import floor, output_size
from benchmarks.synth import PERIOD, figures, run_measured, workbook_sheets
from perseat_addin.excel.template import write_workbook

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: the generator runs as ``python -m benchmarks.…`` from there."""


def usage_rows(n: int, clients: int, users: int, seed: int = 11) -> list[tuple[object, ...]]:
    """``n`` time entries over the 12 months ending with the period: client, user, date, tickets, hours."""
    rng = np.random.default_rng(seed)
    first = PERIOD.first.replace(year=PERIOD.first.year - 1, month=PERIOD.first.month % 12 + 1)
    days = (PERIOD.last - first).days + 1
    c = rng.integers(0, clients, n)
    heavy = c % 50 == 7  # a few clients log far more
    hours = np.round(rng.gamma(1.5, 0.6, n) * np.where(heavy, 3, 1) * 4) / 4 + 0.25
    day = rng.integers(0, days, n)
    ticket = rng.random(n) < 0.4
    user = rng.integers(0, users, n)
    return [(f"Client {ci}", f"user{u}@client.example", first + dt.timedelta(days=int(d)), int(t), float(h))
            for ci, u, d, t, h in zip(c, user, day, ticket, hours, strict=True)]


def run(workbook: Path, out: Path) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MiB) and JSON of one `perseat report` run."""
    secs, peak, text = run_measured(["report", str(workbook), "--out", str(out), "--json"])
    return secs, peak, json.loads(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--usage-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-floor", action="store_true", help="skip measuring the floor")
    ap.add_argument("--keep", metavar="PATH", help="keep (or reuse) the generated workbook here")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        sheets = workbook_sheets(args.users, args.clients)
        next(s for s in sheets if s.name == "Usage").rows = usage_rows(args.usage_rows, args.clients, args.users)
        write_workbook(args.generate, sheets)
        return
    with tempfile.TemporaryDirectory() as tmp:
        wb = Path(args.keep) if args.keep else Path(tmp) / "book.xlsm"
        if not wb.exists():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", __spec__.name, "--generate", str(wb), "--users", str(args.users),
                            "--clients", str(args.clients), "--usage-rows", str(args.usage_rows)], check=True, cwd=ROOT)
            print(f"generated {args.users:,} users, {args.usage_rows:,} usage rows "
                  f"({wb.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        times, peaks, doc = [], [], {}
        for i in range(args.repeat):
            secs, peak, doc = run(wb, Path(tmp) / f"out{i}")
            times.append(secs)
            peaks.append(peak)
        out_bytes, out_files = output_size(Path(tmp) / "out0")
        measured = None if args.no_floor else floor(wb, out_bytes, out_files)
    outliers = sum(1 for c in doc["clients"] if c["outlier"])
    result = {"benchmark": "report", "command": "perseat report", "users": args.users, "clients": args.clients,
              "usage_rows": args.usage_rows, "outliers": outliers,
              **figures(times, max(peaks), 5.0, 600.0, measured["floor_seconds"] if measured else None,
                        process_floor_seconds=measured["process_floor_seconds"] if measured else None),
              "output_bytes": out_bytes}
    if measured:
        result["floor"] = measured
    print(f"perseat report: {args.users:,} users, {args.clients:,} clients, {args.usage_rows:,} usage rows: best "
          f"{result['seconds_best']:.2f} s of {args.repeat} (target ≤ 5 s), peak RSS {result['peak_rss_mib']:.0f} MiB "
          "(target ≤ 600 MiB)" + (f", {result['ratio_to_floor']}× the floor" if measured else ""), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
