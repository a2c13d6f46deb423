"""Hostile and broken inputs (SPEC §7, §8, §10): every case of ``corpus.CASES`` run through ``perseat``.

A refused case must end with its exit code (1: a problem in the inputs, 2: a usage error), one clear
message on stderr naming the file (and the sheet, row and column when there is one), no traceback,
and nothing written: the case's folder (workbook, exports, output folder, anything beside them) is
exactly as it was. Cases that could abort or hang the interpreter run out of process, with limits.

Formula-injection cases may succeed: then every CSV field and every text cell of every output
(quickbooks.csv, xero.csv, users.csv, invoices.xlsx, and report.xlsx from ``perseat report``) that
starts with = + - @, a tab or a CR is neutralised with a leading quote (a plain number excepted), no
formula holds the user's text, and every chart series points at cells.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

import corpus
import pytest
from corpus import ACCENTED, CASES, GRANITE_USERS, UTF16_NAMES, Case, Parts, Run

from perseat_addin import cli
from perseat_addin.imports.roster import read_export

# --------------------------------------------------------------------------- running perseat


def run_in_process(run: Run, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``perseat ARGV`` through the real ``main``; an escaping exception becomes traceback text on stderr."""
    try:
        code = cli.main(run.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # what the console script would print as a traceback
        code = 1
        sys.stderr.write(traceback.format_exc())
    out, err = capsys.readouterr()
    return code, out, err


def run_out_of_process(run: Run, case: Case, cwd: Path) -> tuple[int, str, str]:
    """``python -m perseat_addin.cli ARGV`` with an address-space limit (and a file-size limit for a full
    disk: writes then fail with EFBIG, SIGXFSZ ignored); a hang is a failure."""
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (case.memory, case.memory))
        if case.fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))

    try:
        proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *run.argv], capture_output=True,
                              text=True, timeout=case.timeout, preexec_fn=limits, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"perseat {' '.join(run.argv)} hung (still running after {case.timeout:.0f} s); "
                    f"stderr so far: {exc.stderr!r}")
    return proc.returncode, proc.stdout, proc.stderr


# --------------------------------------------------------------------------- nothing written


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (symbolic links not followed): kind, size and content hash."""
    out: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                if st.st_size > 50 * 1024**2:  # a sparse 500 MB export: size and time are enough
                    out[rel] = ("file", st.st_size, st.st_mtime_ns)
                else:
                    out[rel] = ("file", st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("folder",)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def changes(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> list[str]:
    return ([f"new: {k}" for k in sorted(after.keys() - before.keys())]
            + [f"gone: {k}" for k in sorted(before.keys() - after.keys())]
            + [f"changed: {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]])


# --------------------------------------------------------------------------- neutralised outputs

_DANGER = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d[\d,]*(\.\d+)?%?")
_CELLS = re.compile(r"^(?:'[^']+'|[A-Za-z0-9_.]+)!\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?$")


def _dangerous(text: str) -> bool:
    return text.startswith(_DANGER) and not _NUMBER.fullmatch(text.strip())


def csv_fields(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [field for row in csv.reader(f) for field in row]


def xlsx_texts(path: Path) -> tuple[list[str], list[str], dict[str, bytes]]:
    """(every text a cell shows, every formula, the chart parts) of an .xlsx."""
    texts: list[str] = []
    formulas: list[str] = []
    charts: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            data = z.read(name)
            if name.endswith("sharedStrings.xml"):
                for si in re.findall(rb"<si>(.*?)</si>", data, re.S):
                    texts.append(html.unescape("".join(t.decode() for t in re.findall(rb"<t[^>]*>(.*?)</t>", si,
                                                                                       re.S))))
            elif name.startswith("xl/worksheets/") and name.endswith(".xml"):
                for t in re.findall(rb"<is>.*?<t[^>]*>(.*?)</t>", data, re.S):
                    texts.append(html.unescape(t.decode()))
                for c in re.findall(rb'<c [^>]*t="str"[^>]*>.*?<v>(.*?)</v>', data, re.S):
                    texts.append(html.unescape(c.decode()))
                formulas += [html.unescape(f.decode()) for f in re.findall(rb"<f[^>]*>(.*?)</f>", data, re.S)]
            elif name.startswith("xl/charts/"):
                charts[name] = data
    return texts, formulas, charts


def assert_neutralised(out: Path, payloads: tuple[str, ...]) -> None:
    files = sorted(p.name for p in out.iterdir())
    for expected in ("quickbooks.csv", "xero.csv", "users.csv", "invoices.xlsx", "report.xlsx"):
        assert expected in files, files
    cores = [p.lstrip("".join(_DANGER) + " '") for p in payloads]
    for name in ("quickbooks.csv", "xero.csv", "users.csv"):
        bad = [f for f in csv_fields(out / name) if _dangerous(f)]
        assert not bad, f"{name}: fields that a spreadsheet would run as formulas: {bad[:5]}"
    for name in ("invoices.xlsx", "report.xlsx"):
        texts, formulas, charts = xlsx_texts(out / name)
        bad = [t for t in texts if _dangerous(t)]
        assert not bad, f"{name}: text cells that start like a formula: {bad[:5]}"
        for core in cores:
            assert not any(core in f for f in formulas), f"{name}: a formula holds the user's text {core!r}"
        for part, xml in charts.items():
            for ref in re.findall(rb"<c:f>(.*?)</c:f>", xml, re.S):
                text = html.unescape(ref.decode())
                assert _CELLS.match(text), f"{name} {part}: a chart series takes {text!r}, not a range of cells"
            for v in re.findall(rb"<c:v>(.*?)</c:v>", xml, re.S):
                assert not _dangerous(html.unescape(v.decode())), f"{name} {part}: chart text {v!r}"
    client = payloads[0]  # a client's name: on every line of the accounting files, as text
    fields = csv_fields(out / "quickbooks.csv") + csv_fields(out / "xero.csv")
    assert "'" + client in fields, f"{client!r} is not in the accounting files as text ('{client})"


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = case.make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    workbook = run.workbook.read_bytes() if run.workbook is not None and run.workbook.is_file() else None
    code, out, err = run_out_of_process(run, case, tmp_path) if case.isolate else run_in_process(run, capsys)
    assert "Traceback" not in out + err, err
    assert code >= 0, f"perseat was killed by signal {-code}: {err[-2000:]}"
    if case.neutralise:
        assert code == 0, err
        rep = Run(["report", run.argv[1], "--out", run.argv[3]], run.workbook, run.out)
        r_code, r_out, r_err = run_in_process(rep, capsys)
        assert "Traceback" not in r_out + r_err, r_err
        assert r_code == 0, r_err
        assert run.out is not None
        assert_neutralised(run.out, case.tags)
        assert run.workbook is not None and run.workbook.read_bytes() == workbook
        book = {k: v for k, v in snapshot(tmp_path).items() if k.startswith("book")}
        assert book == {k: v for k, v in before.items() if k.startswith("book")}, changes(before, snapshot(tmp_path))
        return
    assert code in case.codes, f"exit {code}, expected {case.codes}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    if code != 0:
        assert err.strip(), f"exit {code} and nothing on stderr; stdout: {out[-1500:]}"
    for word in (*(run.names if code else ()), *case.words):
        assert word.casefold() in err.casefold(), f"{word!r} not in stderr:\n{err[-3000:]}"
    for word in case.not_words:
        assert word.casefold() not in err.casefold(), f"{word!r} in stderr:\n{err[-3000:]}"
    if "decoded" in case.tags:
        names = [u.name for u in read_export(Path(run.argv[2]), "m365").rows]
        expected = ([n for n, _ in UTF16_NAMES] if "utf16" in case.id
                    else ["José Núñez", "Zoë Brontë", "Amélie Roy", *(n for n, _ in GRANITE_USERS[:2])])
        assert names == expected, names
    if workbook is not None:
        assert run.workbook is not None and run.workbook.read_bytes() == workbook, "the workbook changed"
    assert not changes(before, snapshot(tmp_path)), changes(before, snapshot(tmp_path))


# --------------------------------------------------------------------------- the corpus is what it says


def test_the_corpus_is_large_and_named_once() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


def test_the_edits_land_where_the_cases_mean(tmp_path: Path) -> None:
    p = Parts.template()
    assert p.sheet_part("Roster") == "xl/worksheets/sheet7.xml" and p.table_part("Roster") == "xl/tables/table6.xml"
    assert p.row_of("Plans", "Premium") == 3 and p.row_of("Settings", "InvoicePrefix") == 12
    assert 'ref="A1:K76"' in p.xml("xl/tables/table6.xml")
    for name, value in (("CsvDateFormat", "=1+1"), ("NotATemplateSetting", "x")):  # a row it has, a new row
        row = p.set_setting(name, value)
        assert f'<c r="B{row}" t="inlineStr"><is><t xml:space="preserve">{value}</t>' in p.xml(
            p.sheet_part("Settings"))
        last = re.search(r'ref="A1:C(\d+)"', p.xml(p.table_part("Settings")))
        assert last and int(last.group(1)) >= row, (name, row, last)
    assert int(last.group(1)) == row  # the table grew by the new row


def test_the_zip_tricks_are_real() -> None:
    lied = corpus.lie_about_size(corpus.template_bytes(), "xl/worksheets/sheet7.xml")
    with zipfile.ZipFile(io.BytesIO(lied)) as z:
        info = z.getinfo("xl/worksheets/sheet7.xml")
    with zipfile.ZipFile(corpus.TEMPLATE) as z:
        real = z.getinfo("xl/worksheets/sheet7.xml").file_size
    assert info.file_size < real
    bomb = next(c for c in CASES if c.id == "zip-bomb-shared-strings")
    assert bomb is not None
    with zipfile.ZipFile(io.BytesIO(corpus._sst_bomb())) as z:
        sst = z.getinfo("xl/sharedStrings.xml")
    assert sst.file_size > 64 * 1024**2 and sst.file_size > 200 * sst.compress_size


def test_accented_names_are_what_the_decoding_cases_expect() -> None:
    assert [n for n, _ in ACCENTED][:2] == ["José Núñez", "Zoë Brontë"]
