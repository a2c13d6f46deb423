"""CLI benchmark: `perseat invoice` end to end on a generated 100,000-user workbook.

Compares with the spreadsheet way (COUNTIFS/SUMPRODUCT formulas recalculated by
LibreOffice headless, see spreadsheet_way.py) on a roster of the same size.
Run (from the project folder): python -m benchmarks.cli [--users N] [--clients C] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.synth import run_measured, workbook_sheets
from perseat_addin.excel.template import write_workbook

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: the generator runs as ``python -m benchmarks.…`` from there."""


def run_cli(workbook: Path, out: Path) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MiB) and JSON summary of one `perseat invoice` run."""
    secs, peak, text = run_measured(["invoice", str(workbook), "--out", str(out), "--json"])
    return secs, peak, json.loads(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true", help="skip the LibreOffice comparison")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        write_workbook(args.generate, workbook_sheets(args.users, args.clients))
        return
    with tempfile.TemporaryDirectory() as tmp:
        wb = Path(tmp) / "book.xlsm"
        t0 = time.perf_counter()
        # generated in a child process: the parent stays small, so the CLI child's peak RSS is its own
        # (a forked child starts with a copy of its parent's memory, which ru_maxrss would count)
        subprocess.run([sys.executable, "-m", __spec__.name, "--generate", str(wb), "--users", str(args.users),
                        "--clients", str(args.clients)], check=True, cwd=ROOT)
        print(f"generated {args.users:,}-user workbook ({wb.stat().st_size / 2**20:.1f} MiB) "
              f"in {time.perf_counter() - t0:.1f} s")
        times, summary, peak = [], {}, 0.0
        for i in range(args.repeat):
            secs, peak, summary = run_cli(wb, Path(tmp) / f"out{i}")
            times.append(secs)
        best = min(times)
        result: dict = {
            "benchmark": "cli", "users": args.users, "clients": args.clients,
            "invoices": summary["totals"]["invoices"], "total": summary["totals"]["total"],
            "seconds_best": round(best, 2), "seconds_all": [round(t, 2) for t in times],
            "peak_rss_mib": round(peak, 1), "target_seconds": 10.0, "meets_target": best <= 10.0,
        }
        print(f"perseat invoice: {args.users:,} users, {args.clients:,} clients, {result['invoices']:,} invoices")
        print(f"  best {best:.2f} s of {args.repeat} (target ≤ 10 s), peak RSS {peak:.0f} MiB")
    if not args.no_baseline:
        from benchmarks.spreadsheet_way import run_baseline

        base = run_baseline(args.users, args.clients)
        lo = float(base["total_s"])
        result["libreoffice"] = base
        result["ratio_libreoffice_over_perseat"] = round(lo / best, 1) if best else None
        print(f"  spreadsheet way (LibreOffice COUNTIFS/SUMPRODUCT recalculation): {lo:.1f} s "
              f"→ perseat is {lo / best:.1f}× faster")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
