"""CLI benchmark: `perseat invoice` end to end on a generated workbook, against its measured floor.

Default: 100,000 users and 1,000 clients (target ≤ 3 s, ≤ 400 MiB, within 2.5× of the floor);
``--rows-limit``: Excel's row limit, 1,048,575 roster rows and 10,000 clients (target ≤ 20 s, ≤ 2 GiB).
The floor is reading every cell of the workbook with the fastest reader installed plus writing the bytes
the command writes (benchmarks/floor.py). ``--baseline`` adds the spreadsheet way (COUNTIFS/SUMPRODUCT
formulas recalculated by LibreOffice headless, see spreadsheet_way.py) on a roster of the same size.
Run (from the project folder): python -m benchmarks.cli [--users N] [--clients C] [--rows-limit] [--repeat K]
[--keep PATH] [--baseline]
"""

from __future__ import annotations

import argparse
import compileall
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.floor import floor, output_size
from benchmarks.synth import figures, run_measured, workbook_sheets
from perseat_addin.excel.template import write_workbook

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: the generator runs as ``python -m benchmarks.…`` from there."""

EXCEL_ROWS = 1_048_575
"""Data rows under a header row at Excel's row limit."""


def run_cli(workbook: Path, out: Path) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MiB) and JSON summary of one `perseat invoice` run."""
    secs, peak, text = run_measured(["invoice", str(workbook), "--out", str(out), "--json"])
    return secs, peak, json.loads(text)


def generate(path: Path, users: int, clients: int) -> None:
    """The workbook, written by a child process: the parent stays small, so the CLI child's peak RSS is its
    own (a forked child starts with a copy of its parent's memory, which ru_maxrss would count)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.cli", "--generate", str(path), "--users", str(users),
                    "--clients", str(clients)], check=True, cwd=ROOT)
    print(f"generated {users:,}-user workbook ({path.stat().st_size / 2**20:.1f} MiB) "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--rows-limit", action="store_true",
                    help=f"{EXCEL_ROWS:,} roster rows and 10,000 clients (Excel's row limit)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="PATH", help="keep (or reuse) the generated workbook here")
    ap.add_argument("--no-floor", action="store_true", help="skip measuring the floor")
    ap.add_argument("--baseline", action="store_true", help="add the LibreOffice comparison")
    ap.add_argument("--no-baseline", action="store_true", help=argparse.SUPPRESS)  # the default now
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rows_limit:
        args.users, args.clients = EXCEL_ROWS, 10_000
    if args.generate:
        write_workbook(args.generate, workbook_sheets(args.users, args.clients))
        return
    big = args.users > 200_000
    # the project byte-compiled once, as an installed package is (pip compiles on install): with
    # PYTHONDONTWRITEBYTECODE set, every timed run would otherwise compile its modules again
    compileall.compile_dir(ROOT / "perseat_addin", quiet=1)
    target_s, target_mib, ratio = (20.0, 2048.0, None) if big else (3.0, 400.0, 2.5)
    with tempfile.TemporaryDirectory() as tmp:
        wb = Path(args.keep) if args.keep else Path(tmp) / "book.xlsm"
        if not wb.exists():
            generate(wb, args.users, args.clients)
        times, summary, peaks = [], {}, []
        for i in range(args.repeat):
            secs, peak, summary = run_cli(wb, Path(tmp) / f"out{i}")
            times.append(secs)
            peaks.append(peak)
        out_bytes, out_files = output_size(Path(tmp) / "out0")
        measured = None if args.no_floor else floor(wb, out_bytes, out_files)
    result: dict = {
        "benchmark": "cli", "command": "perseat invoice", "users": args.users, "clients": args.clients,
        "invoices": summary["totals"]["invoices"], "total": summary["totals"]["total"],
        **figures(times, max(peaks), target_s, target_mib, measured["floor_seconds"] if measured else None, ratio,
                  measured["process_floor_seconds"] if measured else None),
        "output_bytes": out_bytes,
    }
    if measured:
        result["floor"] = measured
    print(f"perseat invoice: {args.users:,} users, {args.clients:,} clients, {result['invoices']:,} invoices: "
          f"best {result['seconds_best']:.2f} s of {args.repeat} (target ≤ {target_s:g} s), peak RSS "
          f"{result['peak_rss_mib']:.0f} MiB (target ≤ {target_mib:g} MiB)"
          + (f", {result['ratio_to_floor']}× the floor of {measured['floor_seconds']:.2f} s "
             f"({result['ratio_to_process_floor']}× the floor as a process, {measured['process_floor_seconds']:.2f} s)"
             if measured else ""),
          file=sys.stderr)
    if args.baseline:
        from benchmarks.spreadsheet_way import run_baseline

        base = run_baseline(args.users, args.clients)
        lo = float(base["total_s"])
        result["libreoffice"] = base
        result["ratio_libreoffice_over_perseat"] = round(lo / result["seconds_best"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
