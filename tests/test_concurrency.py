"""Writers on one workbook at once, a save by Excel during a write, kill -9 at random moments, the workbook
file's identity, and record-and-publish together (SPEC §10, Reliability and safety).

Everything runs the real command line (``python -m perseat_addin.cli``) as separate processes on real files:
no mocks. The workbooks come from the CLI benchmark's generator (``python -m benchmarks.cli --generate``).

The default run is sized for CI: a 5,000-user workbook and 5 rounds per pair of writers; the Excel-save and
kill tests use a 20,000-user workbook. ``PERSEAT_STRESS=1`` switches to the acceptance scale: a 100,000-user
workbook, 20 rounds per pair, and a 100,000-user workbook for the Excel save. Each test prints what it saw
(run pytest with ``-s`` to read it). ``PERSEAT_KILL_SEED`` replays the kill test's random moments.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from openpyxl import load_workbook
from openpyxl.utils.cell import range_boundaries

ROOT = Path(__file__).resolve().parent.parent
STRESS = os.environ.get("PERSEAT_STRESS") == "1"
PAIR_USERS, PAIR_CLIENTS, ROUNDS, IN_FLIGHT = (100_000, 1_000, 20, 1) if STRESS else (5_000, 50, 5, 2)
SAVE_USERS, SAVE_CLIENTS = (100_000, 1_000) if STRESS else (20_000, 200)
KILL_USERS, KILL_CLIENTS, KILL_RUNS = 20_000, 200, 30
BOOK = "Billing.xlsm"
LOCK_WAIT = 30.0  # seconds a writer waits for the lock by default (PERSEAT_LOCK_WAIT)
EXCEL_CLIENT_HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"
HELD = re.compile(r"is being changed by another run \(perseat .+ by .+ \(process \d+\) since .+\); nothing was written")

_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"


# --------------------------------------------------------------------------
# processes


def _env(**extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PERSEAT_LOCK_WAIT"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def start(args: Sequence[str | Path], **env: str | None) -> subprocess.Popen[bytes]:
    """Start ``perseat ARGS`` in its own process; its output goes to files (a full pipe would stop a writer
    that still holds the lock while the test waits for the other one)."""
    files = (tempfile.TemporaryFile(), tempfile.TemporaryFile())  # noqa: SIM115 - closed by finish()
    proc = subprocess.Popen([sys.executable, "-m", "perseat_addin.cli", *map(str, args)], cwd=ROOT,
                            stdout=files[0], stderr=files[1], env=_env(**env))
    proc.output_files = files  # type: ignore[attr-defined]
    return proc


@dataclass
class Done:
    args: list[str]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return f"{self.out}\n{self.err}"

    def __str__(self) -> str:
        return (f"perseat {' '.join(self.args)}\n  exit {self.code}\n  stdout: {self.out[-1500:]}\n"
                f"  stderr: {self.err[-3000:]}")


def finish(proc: subprocess.Popen[bytes], t0: float, timeout: float = 600) -> Done:
    proc.wait(timeout=timeout)
    seconds = time.perf_counter() - t0
    texts = []
    for f in proc.output_files:  # type: ignore[attr-defined]
        f.seek(0)
        texts.append(f.read().decode("utf-8", "replace"))
        f.close()
    args = [str(a) for a in proc.args][3:]  # type: ignore[index, union-attr]
    return Done(args, proc.returncode, texts[0], texts[1], seconds)


def finish_all(procs: Sequence[subprocess.Popen[bytes]], t0: float, timeout: float = 600) -> list[Done]:
    """Wait for every process, each timed to its own exit."""
    ended: dict[int, float] = {}
    while len(ended) < len(procs):
        for i, p in enumerate(procs):
            if i not in ended and p.poll() is not None:
                ended[i] = time.perf_counter()
        assert time.perf_counter() - t0 < timeout, "a perseat run did not end"
        time.sleep(0.01)
    dones = [finish(p, t0) for p in procs]
    for i, d in enumerate(dones):
        d.seconds = ended[i] - t0
    return dones


def perseat(*args: str | Path, **env: str | None) -> Done:
    t0 = time.perf_counter()
    return finish(start(args, **env), t0)


def check_all(books: Sequence[Path]) -> dict[Path, int]:
    """``perseat check`` on each workbook: the command's own entry point, one process for all of them (each
    workbook is checked exactly as ``perseat check WB`` checks it; one interpreter saves the start-ups)."""
    script = ("import sys\nfrom perseat_addin.cli import main\n"
              "for p in sys.argv[1:]:\n    code = main(['check', p])\n"
              "    print(f'@@check {code} {p}', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, books)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=900)
    codes = {Path(m.group(2)): int(m.group(1)) for m in re.finditer(r"^@@check (\d+) (.+)$", proc.stdout, re.M)}
    assert proc.returncode == 0 and len(codes) == len(books), (proc.returncode, proc.stdout[-3000:],
                                                                  proc.stderr[-3000:])
    bad = {p: c for p, c in codes.items() if c != 0}
    assert not bad, f"perseat check failed on {bad}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return codes


# --------------------------------------------------------------------------
# files


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(*folders: Path) -> list[str]:
    """Staging names (the workbook's or an output folder's) and lock files in ``folders``."""
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [str(folder / n) for n in os.listdir(folder) if ".perseat-staging" in n or
                      n.endswith(".perseat-lock")]
    return sorted(found)


def tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) with its kind and, for a file, its SHA-256."""
    if not folder.exists():
        return {}
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            found[os.path.relpath(os.path.join(dirpath, d), folder)] = "folder"
        for f in filenames:
            p = Path(dirpath, f)
            found[str(p.relative_to(folder))] = sha(p)
    return found


def _rels(z: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    folder, name = posixpath.split(part)
    rels = f"{folder}/_rels/{name}.rels"
    if rels not in z.namelist():
        return {}
    found = {}
    for r in ET.fromstring(z.read(rels)).iter(f"{_NS_PKG}Relationship"):
        target = r.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        found[r.get("Id", "")] = (r.get("Type", ""), path)
    return found


def table_places(path: Path) -> dict[str, tuple[str, str, list[str]]]:
    """Each table of the package: its sheet, its range and its column names (from the table parts)."""
    with zipfile.ZipFile(path) as z:
        places = {}
        wb_rels = _rels(z, "xl/workbook.xml")
        for sheet in ET.fromstring(z.read("xl/workbook.xml")).iter(f"{_NS_MAIN}sheet"):
            _, part = wb_rels[sheet.get(f"{_NS_REL}id", "")]
            for kind, target in _rels(z, part).values():
                if kind.endswith("/table"):
                    t = ET.fromstring(z.read(target))
                    cols = [c.get("name", "") for c in t.iter(f"{_NS_MAIN}tableColumn")]
                    places[t.get("displayName") or t.get("name", "")] = (sheet.get("name", ""), t.get("ref", ""),
                                                                          cols)
    return places


def read_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table of the workbook read with openpyxl: rows of the table's range as dicts by header (the
    header row must name the table's columns)."""
    places = table_places(path)
    wb = load_workbook(path, read_only=True)
    try:
        tables = {}
        for name, (sheet, ref, cols) in places.items():
            c1, r1, c2, r2 = range_boundaries(ref)
            rows = list(wb[sheet].iter_rows(min_row=r1, max_row=r2, min_col=c1, max_col=c2, values_only=True))
            assert [str(h) for h in rows[0]] == cols, f"{path}: table {name}: header {rows[0]} ≠ columns {cols}"
            tables[name] = [dict(zip(cols, r, strict=True)) for r in rows[1:] if any(v is not None for v in r)]
    finally:
        wb.close()
    return tables


def settings(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {r["Setting"]: r["Value"] for r in tables["Settings"]}


def next_month(period: str) -> str:
    y, m = map(int, period.split("-"))
    return f"{y + m // 12}-{m % 12 + 1:02d}"


def generate(path: Path, users: int, clients: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", "--generate", str(path), "--users", str(users),
                             "--clients", str(clients)], cwd=ROOT, env=_env())


@dataclass
class Base:
    """A generated workbook (never written by a test: each test copies it) and what it holds."""

    path: Path
    users: int
    clients: int
    period: str = ""
    current: dict[str, list[str]] = field(default_factory=dict)  # client → its current UserIDs

    def copy(self, folder: Path, name: str = BOOK) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, folder / name)
        return folder / name


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Base]:
    """The generated workbooks: "pair" for the writers at once and the file checks, "save" and "kill"."""
    folder = tmp_path_factory.mktemp("bases")
    sizes = {"pair": (PAIR_USERS, PAIR_CLIENTS), "save": (SAVE_USERS, SAVE_CLIENTS),
             "kill": (KILL_USERS, KILL_CLIENTS)}
    made: dict[tuple[int, int], Path] = {}
    procs = []
    for users, clients in dict.fromkeys(sizes.values()):
        made[users, clients] = folder / f"book-{users}-{clients}.xlsm"
        procs.append(generate(made[users, clients], users, clients))
    assert all(p.wait() == 0 for p in procs), "the benchmark generator failed"
    found = {}
    for key, (users, clients) in sizes.items():
        base = Base(made[users, clients], users, clients)
        wb = load_workbook(base.path, read_only=True)
        base.period = str(dict(wb["Settings"].iter_rows(min_row=2, max_col=2, values_only=True))["BillingPeriod"])
        wb.close()
        found[key] = base
    found["pair"].current = current_users(PAIR_USERS, PAIR_CLIENTS)
    return found


def current_users(users: int, clients: int) -> dict[str, list[str]]:
    """Each client's users without an End date, from the generator's own roster."""
    from benchmarks.synth import roster_frame
    from perseat_addin.model import FOREVER

    r = roster_frame(users, clients)
    r = r[(r["end"] == FOREVER) & (r["status"] == "active")]
    found: dict[str, list[str]] = {}
    for client, user in zip(r["client"], r["user"], strict=True):
        found.setdefault(str(client), []).append(str(user))
    return {c: list(dict.fromkeys(u)) for c, u in found.items()}


def m365_export(path: Path, users: Sequence[str]) -> Path:
    lines = [EXCEL_CLIENT_HEADER] + [f"False,{u.split('@')[0]},First,Last,Microsoft 365 Business Premium,{u},"
                                     "1/1/2025 9:00:00 AM" for u in users]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


# --------------------------------------------------------------------------
# two writers at once


@dataclass
class Writer:
    """One run of a writing command and how to tell whether its change is in a workbook."""

    kind: str
    args: list[str]
    out: Path | None = None
    client: str = ""
    new_users: frozenset[str] = frozenset()
    reason: str = ""

    def applied(self, tables: dict[str, list[dict[str, Any]]], done: Done, period: str) -> None:
        """Its change is fully in the workbook (and its files in its folder)."""
        if self.kind == "import":
            rows = [r for r in tables["Roster"] if r["UserID"] in self.new_users]
            assert {r["UserID"] for r in rows} == self.new_users and all(r["Client"] == self.client for r in rows), \
                f"import exited 0 but its new users are not all in the Roster:\n{done}"
            assert self.new_users <= {r["UserID"] for r in tables["ChangeLog"]}, f"not in the ChangeLog:\n{done}"
            return
        summary = json.loads(done.out)
        numbers = {i["number"] for i in summary["invoices"]}
        recorded = {r["InvoiceNo"]: r for r in tables["Invoices"]}
        assert numbers and numbers <= set(recorded), f"{self.kind} exited 0 but {numbers - set(recorded)} are not " \
                                                     f"in the Invoices table:\n{done}"
        assert all(recorded[n]["Status"] == "Final" for n in numbers)
        assert numbers <= {r["InvoiceNo"] for r in tables["InvoiceLines"]}, f"lines missing:\n{done}"
        if self.kind == "finalize":
            assert all(recorded[n]["Period"] == period and recorded[n]["Kind"] == "Invoice" for n in numbers)
            assert sum(r["Period"] == period and r["Kind"] == "Invoice" for r in tables["Invoices"]) == len(numbers)
            assert settings(tables)["BillingPeriod"] == next_month(period), done
        else:
            (n,) = numbers
            assert recorded[n]["Kind"] == "Credit" and recorded[n]["Corrects"] == "HV-0990"
            assert recorded[n]["Reason"] == self.reason
        assert summary["outputs"] and all(Path(p).is_file() for p in summary["outputs"].values()), done

    def absent(self, tables: dict[str, list[dict[str, Any]]], period: str) -> None:
        """Nothing of its change is in the workbook, and it wrote no file."""
        if self.kind == "import":
            assert not [r for r in tables["Roster"] + tables["ChangeLog"] if r["UserID"] in self.new_users]
        elif self.kind == "finalize":
            assert not [r for r in tables["Invoices"] if r["Period"] == period and r["Kind"] == "Invoice"]
            assert settings(tables)["BillingPeriod"] == period
        else:
            assert not [r for r in tables["Invoices"] if r["Reason"] == self.reason]
        if self.out is not None:
            assert tree(self.out) == {}, f"a refused {self.kind} left files: {tree(self.out)}"


def make_writer(kind: str, base: Base, folder: Path, book: Path, tag: str, client: str = "") -> Writer:
    if kind == "import":
        new = frozenset(f"new{k}.{tag}@client.example" for k in range(3))
        export = m365_export(folder / f"export-{tag}.csv", [*base.current[client], *sorted(new)])
        effective = f"{next_month(base.period)}-01"
        return Writer(kind, ["import", "m365", str(export), "--workbook", str(book), "--client", client,
                             "--effective", effective, "--apply"], client=client, new_users=new)
    out = folder / f"out-{tag}"
    if kind == "finalize":
        return Writer(kind, ["invoice", str(book), "--finalize", "--early", "--out", str(out), "--json"], out=out)
    reason = f"Outage credit {tag}"
    return Writer(kind, ["credit", str(book), "HV-0990", "--amount", "10", "--reason", reason, "--out", str(out),
                         "--json"], out=out, reason=reason)


PAIRS = {"import+import": ("import", "import"), "import+finalize": ("import", "finalize"),
         "finalize+credit": ("finalize", "credit")}


def one_round(pair: str, base: Base, folder: Path, r: int) -> tuple[Counter[str], list[str], Path]:
    """Round ``r`` of a pair on a fresh copy of the workbook: both writers started together, then every
    check on the result. Odd rounds set PERSEAT_LOCK_WAIT=0, so the writer that finds the lock taken is
    refused instead of waiting."""
    outcome: Counter[str] = Counter()
    lines = []
    book = base.copy(folder)
    clients = iter(("Client 3", "Client 7"))
    writers = [make_writer(kind, base, folder, book, f"r{r}w{i}", next(clients) if kind == "import" else "")
               for i, kind in enumerate(PAIRS[pair])]
    wait = "0" if r % 2 else None
    started = time.perf_counter()
    procs = [start(w.args, PERSEAT_LOCK_WAIT=wait) for w in writers]
    results = finish_all(procs, started)
    tables = read_tables(book)
    for w, done in zip(writers, results, strict=True):
        assert "Traceback" not in done.text, str(done)
        if done.code == 0:
            w.applied(tables, done, base.period)
            outcome["applied"] += 1
            outcome["waited"] += "waiting for" in done.err
        else:
            assert done.code == 1 and HELD.search(done.text), f"neither applied nor refused for the lock:\n{done}"
            assert wait == "0" or done.seconds >= LOCK_WAIT, f"refused before waiting {LOCK_WAIT} s:\n{done}"
            w.absent(tables, base.period)
            outcome["refused"] += 1
        lines.append(f"  round {r} {w.kind}: exit {done.code} after {done.seconds:.1f} s"
                     f"{' (waited)' if 'waiting for' in done.err else ''}")
    assert outcome["applied"] >= 1, "both writers refused: " + "\n".join(map(str, results))
    numbers = [row["InvoiceNo"] for row in tables["Invoices"]]
    assert len(numbers) == len(set(numbers)), f"invoice numbers repeated: {Counter(numbers).most_common(3)}"
    assert not leftovers(folder, *(w.out for w in writers if w.out)), leftovers(folder)
    return outcome, lines, book


@pytest.mark.parametrize("pair", list(PAIRS))
def test_two_writers_at_once_apply_fully_or_refuse(pair: str, bases: dict[str, Base], tmp_path: Path) -> None:
    """Two writers started together on one workbook: each applies fully or refuses (exit 1, a message naming
    the holder) and then changed nothing; every change that exited 0 is in the final workbook, which opens
    (``perseat check``, every table read with openpyxl); invoice numbers stay unique; no staging or lock file
    is left. In the default run two rounds (each on its own copy) run at a time."""
    base = bases["pair"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        rounds = list(pool.map(lambda r: one_round(pair, base, tmp_path / f"round{r}", r), range(ROUNDS)))
    check_all([book for _, _, book in rounds])
    outcome = sum((o for o, _, _ in rounds), Counter())
    print(f"\n{pair}: {base.users:,} users, {ROUNDS} rounds: applied {outcome['applied']} (waited "
          f"{outcome['waited']}), refused {outcome['refused']} in {time.perf_counter() - t0:.1f} s")
    print("\n".join(line for _, lines, _ in rounds for line in lines))
    assert outcome["applied"] + outcome["refused"] == 2 * ROUNDS


# --------------------------------------------------------------------------
# a save by Excel during the write; Excel's owner file


def edited_copy(path: Path, setting: str, new: str) -> bytes:
    """The workbook's bytes with one Settings value changed (the text edited in its XML part), as Excel
    would save it."""
    wb = load_workbook(path, read_only=True)
    old = str(dict(wb["Settings"].iter_rows(min_row=2, max_col=2, values_only=True))[setting])
    wb.close()
    needle = f">{escape(old)}</t>".encode()
    out = io.BytesIO()
    hits = 0
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".xml") and needle in data:
                hits += data.count(needle)
                data = data.replace(needle, f">{escape(new)}</t>".encode())
            dst.writestr(info, data)
    assert hits == 1, f"{setting}={old!r} found {hits} times in the package"
    return out.getvalue()


def test_a_save_by_excel_during_the_write_is_kept_and_the_writer_refuses(bases: dict[str, Base],
                                                                          tmp_path: Path) -> None:
    base = bases["save"]
    book = base.copy(tmp_path / "book")
    out = tmp_path / "out"
    saved = edited_copy(book, "MSPName", "Harborview IT (saved in Excel)")
    lock = book.with_name(f".{BOOK}.perseat-lock")
    t0 = time.perf_counter()
    proc = start(["invoice", book, "--finalize", "--early", "--out", out])
    while not (lock.exists() and lock.stat().st_size) and proc.poll() is None:
        time.sleep(0.005)
    assert proc.poll() is None, "the writer ended before its lock file appeared"
    time.sleep(0.2)  # the writer has read the workbook and is pricing
    tmp = book.with_name("8F3A21C0")  # Excel writes a new file under a random name, then renames it
    tmp.write_bytes(saved)
    os.replace(tmp, book)
    saved_at = time.perf_counter() - t0
    done = finish(proc, t0)
    print(f"\nExcel save {saved_at:.2f} s into a {done.seconds:.1f} s finalize of {base.users:,} users: "
          f"exit {done.code}: {done.err.strip()[-300:]}")
    assert done.code == 1, str(done)
    assert "changed on disk" in done.err and "nothing was written" in done.err, str(done)
    assert book.read_bytes() == saved
    wb = load_workbook(book, read_only=True)
    assert dict(wb["Settings"].iter_rows(max_col=2, values_only=True))["MSPName"] == "Harborview IT (saved in Excel)"
    wb.close()
    assert tree(out) == {} and not leftovers(book.parent)


def test_excel_owner_file_stops_writers_and_dry_runs_still_work(bases: dict[str, Base], tmp_path: Path) -> None:
    base = bases["pair"]
    book = base.copy(tmp_path)
    before = sha(book)
    owner = book.with_name(f"~${BOOK}")
    owner.write_bytes(bytes([5]) + b"Alice".ljust(53, b" ") + b"\x05\x00" + "Alice".encode("utf-16-le"))
    export = m365_export(tmp_path / "export.csv", [*base.current["Client 3"], "new.owner@client.example"])
    effective = f"{next_month(base.period)}-01"
    imp = ["import", "m365", export, "--workbook", book, "--client", "Client 3", "--effective", effective]
    t0 = time.perf_counter()
    procs = [start(["invoice", book, "--finalize", "--early", "--out", tmp_path / "out"]), start([*imp, "--apply"]),
             start(["credit", book, "HV-0990", "--amount", "5", "--reason", "r", "--out", tmp_path / "cn"])]
    for done in (finish(p, t0) for p in procs):
        assert done.code == 1, str(done)
        assert "open in Excel by Alice" in done.err and "nothing was written" in done.err, str(done)
    assert sha(book) == before and not (tmp_path / "out").exists() and not (tmp_path / "cn").exists()
    t1 = time.perf_counter()
    procs = [start(imp), start(["invoice", book, "--out", tmp_path / "preview"])]
    dry, preview = (finish(p, t1) for p in procs)
    assert dry.code == 0 and "Dry run: nothing written" in dry.out and "new.owner@client.example" in dry.out, str(dry)
    assert preview.code == 0 and (tmp_path / "preview" / "xero.csv").is_file(), str(preview)
    assert sha(book) == before and leftovers(tmp_path) == []


# --------------------------------------------------------------------------
# kill -9 at random moments


@dataclass
class Killed:
    delay: float
    code: int
    state: str  # old, new
    staged: list[str]  # staging names seen right after the kill
    locked: bool
    published: bool  # every output file in place (for a "new" workbook)
    folder: Path


def test_kill_9_at_random_moments_leaves_the_old_or_the_new_workbook(bases: dict[str, Base],
                                                                     tmp_path: Path) -> None:
    base = bases["kill"]
    old = sha(base.path)
    outputs = {"invoices.xlsx", "quickbooks.csv", "xero.csv", "users.csv"}

    def finalize(folder: Path) -> subprocess.Popen[bytes]:
        return start(["invoice", folder / BOOK, "--finalize", "--early", "--out", folder / "out"])

    # the reference: two runs at once (the kills run two at a time too), byte-identical results
    refs = [tmp_path / "ref0", tmp_path / "ref1"]
    t0 = time.perf_counter()
    procs = [finalize(base.copy(f).parent) for f in refs]
    dones = finish_all(procs, t0)
    assert all(d.code == 0 for d in dones), "\n".join(map(str, dones))
    new = sha(refs[0] / BOOK)
    assert sha(refs[1] / BOOK) == new, "two finalize runs of one workbook wrote different bytes"
    assert {p.name for p in (refs[0] / "out").iterdir()} == outputs
    typical = max(d.seconds for d in dones)
    check_all([base.path, refs[0] / BOOK])  # the only two contents a killed run may leave

    seed = int(os.environ.get("PERSEAT_KILL_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    delays = [rng.uniform(0, typical) for _ in range(KILL_RUNS)]

    def kill_run(i: int) -> Killed:
        folder = tmp_path / f"kill{i:02d}"
        base.copy(folder)
        proc = finalize(folder)
        time.sleep(delays[i])
        proc.send_signal(signal.SIGKILL)
        code = finish(proc, time.perf_counter()).code
        staged = [n for n in leftovers(folder, folder / "out") if ".perseat-staging" in n]
        digest = sha(folder / BOOK)
        assert digest in (old, new), f"run {i} (seed {seed}, killed after {delays[i]:.2f} s): the workbook is " \
                                     "neither the old nor the new version"
        state = "old" if digest == old else "new"
        published = (folder / "out").is_dir() and outputs <= {p.name for p in (folder / "out").iterdir()}
        locked = (folder / f".{BOOK}.perseat-lock").exists()
        return Killed(delays[i], code, state, staged, locked, published, folder)

    def aimed_kill(folder: Path) -> list[str]:
        """A kill while the outputs are being written, on purpose: their staging folder is left behind."""
        base.copy(folder)
        proc = finalize(folder)
        while proc.poll() is None and not [n for n in leftovers(folder / "out") if ".perseat-staging" in n]:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        finish(proc, time.perf_counter())
        assert sha(folder / BOOK) == old
        return [n for n in leftovers(folder, folder / "out") if ".perseat-staging" in n]

    aimed = tmp_path / "aimed"
    with ThreadPoolExecutor(2) as pool:
        aimed_run = pool.submit(aimed_kill, aimed)
        killed = list(pool.map(kill_run, range(KILL_RUNS)))
    aimed_staged = aimed_run.result()
    assert aimed_staged, "the finalize ended before its output staging folder was seen"

    # the next writer (finalize again, --early) cleans what a kill left and leaves nothing itself; where the
    # kill left the old workbook, it writes exactly the reference's new one
    state = {k.folder: k.state for k in killed} | {aimed: "old"}
    staged, locked = [k.folder for k in killed if k.staged], [k.folder for k in killed if k.locked]
    again = list(dict.fromkeys([*staged[:1], *locked[:1], aimed]))
    t1 = time.perf_counter()
    procs = [finalize(f) for f in again]
    for f, done in zip(again, (finish(p, t1) for p in procs), strict=True):
        assert done.code == 0, str(done)
        assert leftovers(f, f / "out") == [], f"{f}: the next writer left {leftovers(f, f / 'out')}"
        assert outputs <= {p.name for p in (f / "out").iterdir()}
        assert state[f] == "new" or sha(f / BOOK) == new

    states = Counter(k.state for k in killed)
    finished = sum(k.code == 0 for k in killed)
    unpublished = [k for k in killed if k.state == "new" and not k.published]
    beside = [Path(n).name for k in killed for n in k.staged if Path(n).parent == k.folder]
    inside = [Path(n).name for k in killed for n in k.staged if Path(n).parent != k.folder]
    print(f"\nkill -9 of `invoice --finalize` ({base.users:,} users, typical {typical:.2f} s, seed {seed}): "
          f"{KILL_RUNS} runs → old {states['old']}, new {states['new']} ({finished} finished before the kill); "
          f"right after a kill: workbook staging names beside it {beside}, output staging folders in "
          f"{len(inside)} runs {inside[:3]}, lock file left by {sum(k.locked for k in killed)}; recorded but "
          f"outputs not in place: {len(unpublished)}; the aimed kill left {[Path(n).name for n in aimed_staged]}; "
          f"the next writer cleaned {len(again)} folders")


# --------------------------------------------------------------------------
# the workbook file keeps its identity


def test_a_symlinked_workbook_keeps_its_link_mode_and_owner(bases: dict[str, Base], tmp_path: Path) -> None:
    target = bases["pair"].copy(tmp_path / "real", "Target.xlsm")
    os.chmod(target, 0o660)
    os.chown(target, 1234, 5678)
    link = tmp_path / "desk" / BOOK
    link.parent.mkdir()
    link.symlink_to(target)
    before = sha(target)
    done = perseat("invoice", link, "--finalize", "--early", "--out", tmp_path / "out")
    assert done.code == 0, str(done)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert sha(target) != before
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (1234, 5678) and st.st_nlink == 1
    assert settings(read_tables(link))["BillingPeriod"] == next_month(bases["pair"].period)
    assert leftovers(target.parent, link.parent, tmp_path / "out") == []


def test_read_only_and_hard_linked_workbooks_are_refused_unchanged(bases: dict[str, Base], tmp_path: Path) -> None:
    ro = bases["pair"].copy(tmp_path / "ro")
    os.chmod(ro, 0o444)
    hard = bases["pair"].copy(tmp_path / "hard")
    os.link(hard, tmp_path / "hard" / "Billing copy.xlsm")
    before = sha(ro)
    t0 = time.perf_counter()
    procs = [start(["invoice", b, "--finalize", "--early", "--out", b.parent / "out"]) for b in (ro, hard)]
    done_ro, done_hard = (finish(p, t0) for p in procs)
    assert done_ro.code == 1 and "is read-only; nothing was written" in done_ro.err, str(done_ro)
    assert done_hard.code == 1 and "2 hard links" in done_hard.err and "nothing was written" in done_hard.err, \
        str(done_hard)
    assert sha(ro) == sha(hard) == before and stat.S_IMODE(ro.stat().st_mode) == 0o444
    assert hard.stat().st_nlink == 2 and sha(tmp_path / "hard" / "Billing copy.xlsm") == before
    for b in (ro, hard):
        assert not (b.parent / "out").exists() and leftovers(b.parent) == []


# --------------------------------------------------------------------------
# record and publish together


def test_a_folder_in_the_way_stops_finalize_before_recording(bases: dict[str, Base], tmp_path: Path) -> None:
    book = bases["pair"].copy(tmp_path / "book")
    out = tmp_path / "out"
    (out / "xero.csv").mkdir(parents=True)
    (out / "xero.csv" / "notes.txt").write_text("kept")
    (out / "quickbooks.csv").write_text("an earlier export")
    before, files = sha(book), tree(out)
    done = perseat("invoice", book, "--finalize", "--early", "--out", out)
    assert done.code == 1 and "is a folder" in done.err and "nothing was written" in done.err, str(done)
    assert sha(book) == before and tree(out) == files and leftovers(book.parent) == []


def test_a_workbook_named_like_an_output_is_never_replaced(bases: dict[str, Base], tmp_path: Path) -> None:
    book = bases["pair"].copy(tmp_path, "invoices.xlsx")
    before = sha(book)
    done = perseat("invoice", book, "--finalize", "--early", "--out", tmp_path)
    assert done.code == 1 and "would replace" in done.err and "nothing was written" in done.err, str(done)
    assert sha(book) == before and tree(tmp_path) == {"invoices.xlsx": before}


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files made immutable (chattr +i) for a test; made mutable again after it."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed: no way to make a destination unreplaceable")
    made: list[Path] = []
    yield made
    for p in made:
        subprocess.run(["chattr", "-i", str(p)], check=False)


def test_a_failed_publish_after_recording_rolls_the_workbook_back(bases: dict[str, Base], tmp_path: Path,
                                                                  immutable: list[Path]) -> None:
    """xero.csv is immutable (chattr +i): it passes the checks before recording, and the move into place
    after recording fails for real. invoices.xlsx and quickbooks.csv were already replaced by then."""
    book = bases["pair"].copy(tmp_path / "book")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("invoices.xlsx", "quickbooks.csv", "xero.csv"):
        (out / name).write_text(f"the earlier {name}")
    locked = subprocess.run(["chattr", "+i", str(out / "xero.csv")], capture_output=True, text=True)
    if locked.returncode != 0:
        pytest.skip(f"this file system has no immutable files: {locked.stderr.strip()}")
    immutable.append(out / "xero.csv")
    before, files = sha(book), tree(out)
    done = perseat("invoice", book, "--finalize", "--early", "--out", out)
    assert done.code == 1, str(done)
    assert "xero.csv" in done.err and "put back as it was" in done.err and "as they were" in done.err, str(done)
    assert sha(book) == before, "the workbook was not rolled back after the failed publish"
    assert tree(out) == files, "the output folder was not put back"
    assert leftovers(book.parent) == []
    assert settings(read_tables(book))["BillingPeriod"] == bases["pair"].period

