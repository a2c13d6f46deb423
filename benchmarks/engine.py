"""Engine benchmark: price 1,048,575 roster rows across 10,000 clients with daily proration.

Prints seconds (best of several runs, and every run), peak memory, and checks the 0.5 s target.
Run (from the project folder): python -m benchmarks.engine [--rows N] [--clients C] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd

from benchmarks.synth import PERIOD, client_rows, roster_frame
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.excel.template import build
from perseat_addin.model import Book, Client, ProrationMode
from perseat_addin.workbook.load import load

TARGET = 0.5
"""Seconds to price Excel's row limit of roster rows."""


def make_book(rows: int, clients: int, tmp: Path) -> Book:
    """The template's settings and plans with a generated roster of ``rows`` rows."""
    base = load(build(tmp / "template.xlsm"))
    cl = [Client(name=r[0], plan=r[1], row=i + 2, discount_ppm=int((r[7] or 0) * 1_000_000),
                 tax_ppm=None if r[8] is None else int(r[8] * 1_000_000))
          for i, r in enumerate(client_rows(clients))]
    empty = base.devices.iloc[0:0]
    return Book(path="(generated)", settings=base.settings, plans=base.plans, user_types=base.user_types,
                clients=cl, roster=roster_frame(rows, clients), devices=empty, addons=[],
                usage=base.usage.iloc[0:0], invoices=pd.DataFrame())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_048_575)
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="exit 1 when the best run is slower (a smoke test's generous bound)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        book = make_book(args.rows, args.clients, Path(tmp))
    assert book.settings.proration_mode is ProrationMode.DAILY
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run = invoice_run(book, PERIOD)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    invoice_run(book, PERIOD)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lines = sum(len(i.lines) for i in run.invoices)
    changes = sum(1 for i in run.invoices for ln in i.lines if ln.kind == "seat-change")
    best = min(times)
    result = {
        "benchmark": "engine", "rows": args.rows, "clients": args.clients, "invoices": len(run.invoices),
        "lines": lines, "prorated_change_lines": changes, "seconds_best": round(best, 3),
        "seconds_all": [round(t, 3) for t in times], "peak_python_mib": round(peak / 2**20, 1),
        "cpu_seconds_best": round(min(cpu), 3), "load_average_1m": round(os.getloadavg()[0], 2),
        "target_seconds": TARGET, "meets_target": best <= TARGET,
        "total": f"{run.total_cents / 100:,.2f}",
    }
    print(f"engine: {args.rows:,} roster rows, {args.clients:,} clients, daily proration")
    print(f"  {len(run.invoices):,} invoices, {lines:,} lines ({changes:,} prorated change lines)")
    print(f"  best {best:.3f} s of {args.repeat} (target ≤ {TARGET} s); peak traced memory {peak / 2**20:.0f} MiB")
    print(json.dumps(result))
    if args.max_seconds is not None and best > args.max_seconds:
        print(f"engine: {best:.3f} s is over the bound of {args.max_seconds} s", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
