"""Write-safety benchmark: what one writer at a time and the verified, atomic replace cost (SPEC §10).

Two writes, each timed end to end as a user runs them:
  (a) ``perseat invoice WB --finalize --early --out DIR`` on a 100,000-user / 1,000-client workbook;
  (b) ``perseat import m365 EXPORT --workbook WB --client NAME --apply`` of a 50,000-user export into a
      50,000-row Roster (2% leavers, 2% joiners, renames and blocked users, as in benchmarks/sync.py).

Each runs with the product as it is and with the product at the commit before the workbook guard
(``--before``: a work tree of that commit, run through PYTHONPATH), alternately, several times on fresh
copies; the medians are compared. The whole-command difference also holds whatever else changed between the
two commits, so the guard's own work is timed too, inside the real command: a run of the product as it is
with WorkbookGuard's steps timed (taking the lock, the owner-file check, reading and hashing the workbook,
staging the new bytes with fsync, the hash check after compression, the rename and folder fsync, letting go).

Run (from the project folder): python -m benchmarks.writes [--repeat N] [--before PATH]
    (make the work tree once: git worktree add --detach /work/before-guard 6061982)
Prints JSON: seconds (every run and the medians), the child's peak RSS, the overhead in percent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: the product as it is."""
TARGET_PCT = 10.0
HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"

# The guard's steps, timed in the child. The methods of WorkbookGuard hold every step (acquire: the
# read-only/hard-link check, the lock, clearing staging names, the owner file, reading and hashing; replace:
# staging with fsync, verifying owner file and hash, the rename; release); the module's functions break
# that time down.
TIMED = """
import json, sys, time
from perseat_addin.workbook import guard

spent = {}

def timed(owner, name, label):
    f = getattr(owner, name)
    def run(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - t
    setattr(owner, name, run)

for name in ("acquire", "replace", "release"):
    timed(guard.WorkbookGuard, name, name)
for name, label in (("_lock", "lock"), ("excel_owner", "owner_file"), ("read_stamped", "read_and_hash"),
                    ("_clear_staging", "clear_staging"), ("_stage", "stage_write_fsync"),
                    ("stamp_of", "verify_hash"), ("_rename", "rename_fsync_folder")):
    timed(guard, name, "part:" + label)

from perseat_addin.cli import main
code = main(sys.argv[1:])
print("@@guard " + json.dumps(spent), file=sys.stderr)
sys.exit(code)
"""


def run(cmd: list[str], pythonpath: Path, cwd: Path) -> tuple[float, float, str]:
    """Seconds, the child's own peak RSS (MiB) and its stderr; the run must succeed."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} (PYTHONPATH={pythonpath}) failed with exit code {proc.returncode}:\n"
                         f"{text[-3000:]}")
    return secs, usage.ru_maxrss / 1024, text


def import_case(folder: Path, users: int) -> tuple[Path, Path]:
    """A workbook whose one client has ``users`` Roster rows, and that client's Microsoft 365 export."""
    from perseat_addin.excel.template import template_sheets, write_workbook

    sheets = {s.name: s for s in template_sheets()}
    sheets["Clients"].rows = [("Big Client", "Standard", "Active", "", "", "", "", 0, None, None)]
    sheets["Roster"].rows = [("Big Client", f"user{i}@big.example", f"User {i}", f"user{i}@big.example",
                              "Employee", "", dt.date(2025, 1, 1), None, "Active", "Benchmark", "")
                             for i in range(users)]
    for name in ("Devices", "AddOns", "Usage"):
        sheets[name].rows = []
    wb = folder / "import.xlsm"
    write_workbook(wb, list(sheets.values()))
    lines = [HEADER]
    for i in range(users):
        if i % 50 == 0:
            continue
        name = f"User {i}" + (" Jr" if i % 100 == 1 else "")
        lines.append(f"{i % 200 == 3},{name},User,{i},Microsoft 365 Business Premium,user{i}@big.example,"
                     "1/1/2025 9:00:00 AM")
    lines += [f"False,New {k},New,{k},Microsoft 365 Business Premium,new{k}@big.example,11/20/2026 9:00:00 AM"
              for k in range(users // 50)]
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return wb, export


def measure(name: str, base: Path, args: list[str], before: Path, repeat: int, tmp: Path) -> dict:
    """Run one command ``repeat`` times with each version (alternately) and ``repeat`` times timed inside."""
    times: dict[str, list[float]] = {"before": [], "after": [], "timed": []}
    peaks: dict[str, float] = {"before": 0.0, "after": 0.0}
    guard: list[dict[str, float]] = []
    for i in range(repeat):
        for version in ("before", "after", "timed"):
            folder = tmp / f"{name}-{version}-{i}"
            folder.mkdir()
            wb = folder / base.name
            shutil.copyfile(base, wb)
            argv = [a.replace("{WB}", str(wb)).replace("{OUT}", str(folder / "out")) for a in args]
            if version == "timed":
                secs, _, err = run([sys.executable, "-c", TIMED, *argv], ROOT, folder)
                line = next(x for x in err.splitlines() if x.startswith("@@guard "))
                guard.append(json.loads(line.removeprefix("@@guard ")))
            else:
                secs, peak, _ = run([sys.executable, "-m", "perseat_addin.cli", *argv],
                                    before if version == "before" else ROOT, folder)
                peaks[version] = max(peaks[version], peak)
            times[version].append(secs)
            shutil.rmtree(folder)
    med = {v: statistics.median(t) for v, t in times.items()}
    guard_total = [sum(v for k, v in g.items() if not k.startswith("part:")) for g in guard]
    parts = sorted({k for g in guard for k in g if k.startswith("part:")})
    guard_med = statistics.median(guard_total)
    overhead = 100 * (med["after"] - med["before"]) / med["before"]
    return {
        "command": "perseat " + " ".join(a.replace("{WB}", base.name).replace("{OUT}", "out") for a in args),
        "seconds_before": [round(t, 2) for t in times["before"]],
        "seconds_after": [round(t, 2) for t in times["after"]],
        "median_before_s": round(med["before"], 2), "median_after_s": round(med["after"], 2),
        "overhead_whole_command_pct": round(overhead, 1),
        "min_before_s": round(min(times["before"]), 2), "min_after_s": round(min(times["after"]), 2),
        "overhead_of_the_fastest_runs_pct": round(100 * (min(times["after"]) / min(times["before"]) - 1), 1),
        "peak_rss_mib_before": round(peaks["before"], 1), "peak_rss_mib_after": round(peaks["after"], 1),
        "guard_s_each_run": [round(t, 3) for t in guard_total],
        "guard_median_s": round(guard_med, 3),
        "guard_pct_of_command": round(100 * guard_med / med["after"], 1),
        "guard_pct_of_the_rest": round(100 * guard_med / (med["timed"] - guard_med), 1),
        "guard_parts_median_s": {k.removeprefix("part:"): round(statistics.median(g.get(k, 0.0) for g in guard), 3)
                                 for k in parts},
        "timed_runs_median_s": round(med["timed"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", type=Path, default=Path("/work/before-guard"),
                    help="a work tree of the commit before the workbook guard (default: /work/before-guard)")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1_000)
    ap.add_argument("--export-users", type=int, default=50_000)
    args = ap.parse_args()
    if not (args.before / "perseat_addin" / "cli.py").is_file():
        raise SystemExit(f"{args.before} is not a work tree of perseat: git worktree add --detach {args.before} "
                         "6061982")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        book = tmp / "book.xlsm"
        subprocess.run([sys.executable, "-m", "benchmarks.cli", "--generate", str(book), "--users", str(args.users),
                        "--clients", str(args.clients)], check=True, cwd=ROOT)
        imp_book, export = import_case(tmp, args.export_users)
        print(f"generated a {args.users:,}-user workbook ({book.stat().st_size / 2**20:.1f} MiB) and a "
              f"{args.export_users:,}-user export in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        finalize = measure("finalize", book, ["invoice", "{WB}", "--finalize", "--early", "--out", "{OUT}"],
                           args.before, args.repeat, tmp)
        imported = measure("import", imp_book, ["import", "m365", str(export), "--workbook", "{WB}", "--client",
                                                "Big Client", "--effective", "2026-12-01", "--apply"],
                           args.before, args.repeat, tmp)
    result = {
        "benchmark": "writes", "repeat": args.repeat, "before": str(args.before), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "finalize": {"users": args.users, "clients": args.clients, **finalize},
        "import": {"export_users": args.export_users, **imported},
        "target_pct": TARGET_PCT,
        "meets_target": all(c["overhead_whole_command_pct"] <= TARGET_PCT for c in (finalize, imported)),
        "guard_meets_target": all(c["guard_pct_of_the_rest"] <= TARGET_PCT for c in (finalize, imported)),
    }
    for name, c in (("finalize", finalize), ("import", imported)):
        print(f"{name}: median {c['median_before_s']:.2f} s before the guard, {c['median_after_s']:.2f} s now "
              f"({c['overhead_whole_command_pct']:+.1f} % whole command); the guard's own work "
              f"{c['guard_median_s']:.3f} s = {c['guard_pct_of_the_rest']:.1f} % of the rest "
              f"(target ≤ {TARGET_PCT:.0f} %)",
              file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
