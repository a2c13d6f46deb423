"""Bad input (SPEC §3, §7, §10): every problem is reported with sheet, row and column; nothing is written.

Each case is a small modification of the template's sample data (``template_sheets()``).
``perseat invoice WB --out DIR`` must exit 1, name where the problem is, print no
traceback, leave DIR absent or empty and leave the workbook byte-identical;
``perseat check WB --json`` must exit 1 with the problems as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin import cli
from perseat_addin.excel.template import SheetSpec, template_sheets, write_workbook

# --------------------------------------------------------------------------
# helpers for editing the template's sheets (own to this file)


def _spec(sheets: list[SheetSpec], name: str) -> SheetSpec:
    return next(s for s in sheets if s.name == name)


def _col(spec: SheetSpec, header: str) -> int:
    return list(spec.headers).index(header)


def set_cell(sheets: list[SheetSpec], sheet: str, excel_row: int, header: str, value: Any) -> None:
    """Set one cell of a table by its Excel row number (row 1 is the header row)."""
    spec = _spec(sheets, sheet)
    rows = [list(r) for r in spec.rows]
    rows[excel_row - 2][_col(spec, header)] = value
    spec.rows = [tuple(r) for r in rows]


def set_setting(sheets: list[SheetSpec], name: str, value: Any) -> int:
    """Change a Settings value; returns its Excel row."""
    spec = _spec(sheets, "Settings")
    rows = [list(r) for r in spec.rows]
    for i, r in enumerate(rows):
        if r[0] == name:
            r[1] = value
            spec.rows = [tuple(x) for x in rows]
            return i + 2
    raise KeyError(name)


def excel_row_of(sheets: list[SheetSpec], sheet: str, header: str, value: Any) -> int:
    """Excel row of the first data row whose ``header`` cell equals ``value``."""
    spec = _spec(sheets, sheet)
    j = _col(spec, header)
    return next(i + 2 for i, r in enumerate(spec.rows) if r[j] == value)


def drop_column(sheets: list[SheetSpec], sheet: str, header: str) -> None:
    spec = _spec(sheets, sheet)
    j = _col(spec, header)
    spec.headers = [h for k, h in enumerate(spec.headers) if k != j]
    spec.rows = [tuple(v for k, v in enumerate(r) if k != j) for r in spec.rows]


def put_error(path: Path, sheet: str, excel_row: int, header: str, code: str) -> None:
    """Replace a cell with an Excel error value (``t="e"`` in the sheet XML)."""
    wb = load_workbook(path, keep_vba=True)
    ws = wb[sheet]
    col = next(c.column for c in ws[1] if c.value == header)
    cell = ws.cell(excel_row, col)
    cell.value = code
    cell.data_type = "e"
    wb.save(path)


def sheet_xml(path: Path, sheet: str) -> str:
    """The XML of ``sheet`` (sheets are written in template order: sheetN.xml)."""
    names = [s.name for s in template_sheets()]
    with zipfile.ZipFile(path) as z:
        return z.read(f"xl/worksheets/sheet{names.index(sheet) + 1}.xml").decode()


@dataclass
class Case:
    """One corrupted workbook and where its problem must be reported."""

    id: str
    make: Callable[[Path], Path]  # tmp dir → workbook path
    sheet: str | None  # None: a file-level problem (no sheet to name)
    row: int | None
    column: str | None
    words: tuple[str, ...] = ()  # the message must contain these (case-insensitive); words[0] finds its line
    broken: str | None = None  # a product bug makes the whole case fail: strict xfail with this reason


def from_sheets(edit: Callable[[list[SheetSpec]], None], *, suffix: str = ".xlsm",
                post: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        sheets = template_sheets()
        edit(sheets)
        path = tmp / f"bad{suffix}"
        write_workbook(path, sheets)
        if post is not None:
            post(path)
        return path

    return make


# --------------------------------------------------------------------------
# the corpus

S = template_sheets()
PREMIUM = excel_row_of(S, "Plans", "Plan", "Premium")  # 3
ELM = excel_row_of(S, "Clients", "Client", "Elm Street Bakery")
DRIVER7 = excel_row_of(S, "Roster", "UserID", "driver.07@cobalt-log.example")
HELEN = excel_row_of(S, "Roster", "UserID", "helen.park@graniteacct.example")
NEXT_ROW = next(i + 2 for i, r in enumerate(_spec(S, "Settings").rows) if r[0] == "NextInvoiceNumber")
PERIOD_ROW = next(i + 2 for i, r in enumerate(_spec(S, "Settings").rows) if r[0] == "BillingPeriod")
N_CLIENTS = len(_spec(S, "Clients").rows)


def _dup_client(sheets: list[SheetSpec]) -> None:
    spec = _spec(sheets, "Clients")
    spec.rows = [*spec.rows, spec.rows[1]]  # Birch & Lowe LLP again, at the end


def _drop_sheet(name: str) -> Callable[[list[SheetSpec]], None]:
    def edit(sheets: list[SheetSpec]) -> None:
        sheets[:] = [s for s in sheets if s.name != name]

    return edit


def _empty(name: str) -> Callable[[list[SheetSpec]], None]:
    def edit(sheets: list[SheetSpec]) -> None:
        _spec(sheets, name).rows = []

    return edit


def _csv_as_xlsm(tmp: Path) -> Path:
    path = tmp / "roster.xlsm"
    path.write_text("Client,UserID,Type\nAcme Dental Group,ann@acme.example,Employee\n", encoding="utf-8")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-workbook.xlsm"


def _cell(sheet: str, row: int, header: str, value: Any) -> Callable[[list[SheetSpec]], None]:
    return lambda sheets: set_cell(sheets, sheet, row, header, value)


def _setting(name: str, value: Any) -> Callable[[list[SheetSpec]], None]:
    return lambda sheets: set_setting(sheets, name, value)


def _error(sheet: str, row: int, header: str, code: str) -> Callable[[Path], None]:
    return lambda path: put_error(path, sheet, row, header, code)


CASES = [
    Case("text-rate", from_sheets(_cell("Plans", PREMIUM, "Rate", "ninety")), "Plans", PREMIUM, "Rate",
         ("ninety",)),
    Case("unknown-plan", from_sheets(_cell("Clients", ELM, "Plan", "Gold")), "Clients", ELM, "Plan",
         ("Gold",)),
    Case("end-before-start", from_sheets(_cell("Roster", DRIVER7, "End", dt.date(2024, 12, 31))),
         "Roster", DRIVER7, "End", ("before",)),
    Case("duplicate-client", from_sheets(_dup_client), "Clients", N_CLIENTS + 2, "Client",
         ("twice", "Birch & Lowe LLP")),
    Case("missing-roster-sheet", from_sheets(_drop_sheet("Roster")), "Roster", None, None, ("no Roster",)),
    Case("empty-roster", from_sheets(_empty("Roster")), "Roster", None, None, ("no rows",)),
    Case("roster-without-userid", from_sheets(lambda s: drop_column(s, "Roster", "UserID")),
         "Roster", 1, "UserID", ("missing",)),
    # regression: error cells were attached to the row above, and dropped in a table's first data row
    Case("na-in-rate", from_sheets(lambda s: None, post=_error("Plans", PREMIUM, "Rate", "#N/A")),
         "Plans", PREMIUM, "Rate", ("#N/A",)),
    Case("ref-in-start", from_sheets(lambda s: None, post=_error("Roster", DRIVER7, "Start", "#REF!")),
         "Roster", DRIVER7, "Start", ("#REF!",)),
    Case("na-in-first-row", from_sheets(lambda s: None, post=_error("Clients", 2, "DiscountPct", "#N/A")),
         "Clients", 2, "DiscountPct", ("#N/A",)),
    Case("date-31-feb", from_sheets(_cell("Roster", DRIVER7, "Start", "31/02/2026")), "Roster", DRIVER7,
         "Start", ("not a real date",)),
    Case("date-next-tuesday", from_sheets(_cell("Roster", DRIVER7, "End", "next tuesday")), "Roster", DRIVER7,
         "End", ("next tuesday",)),
    Case("date-ambiguous", from_sheets(_cell("Roster", HELEN, "Start", "03/04/2026")), "Roster", HELEN,
         "Start", ("03/04/2026", "could be")),
    Case("text-next-invoice-number", from_sheets(_setting("NextInvoiceNumber", "one thousand")), "Settings",
         NEXT_ROW, "Value", ("one thousand", "NextInvoiceNumber")),
    Case("period-nov-2026", from_sheets(_setting("BillingPeriod", "Nov 2026")), "Settings", PERIOD_ROW,
         "Value", ("Nov 2026", "BillingPeriod")),
    Case("period-2026-13", from_sheets(_setting("BillingPeriod", "2026-13")), "Settings", PERIOD_ROW,
         "Value", ("2026-13", "BillingPeriod")),
    Case("discount-15", from_sheets(_cell("Clients", ELM, "DiscountPct", 15)), "Clients", ELM,
         "DiscountPct", ("100%", "0.15")),
    Case("unknown-user-type", from_sheets(_cell("Roster", HELEN, "Type", "Employe")), "Roster", HELEN,
         "Type", ("Employe",)),
    Case("csv-renamed-xlsm", _csv_as_xlsm, None, None, None, ("roster.xlsm", "not an .xlsx/.xlsm")),
]


@pytest.mark.parametrize("command", [("invoice",), ("check", "--json"), ("report",),
                                     ("credit", "HV-1", "--reason", "x")])
def test_a_missing_workbook_is_a_usage_error(command: tuple[str, ...], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    wb = _missing(tmp_path)
    code, out, err = run_cli(capsys, command[0], str(wb), *command[1:])
    assert code == 2 and "Traceback" not in out + err, (out, err)
    assert "no-such-workbook.xlsm: no such file" in err and not wb.exists()
    if "--json" in command:
        assert json.loads(out) == {"ok": False, "error": f"WORKBOOK {wb}: no such file"}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``perseat ARGV`` in-process through the real ``main``; returns (exit code, stdout, stderr).

    An exception escaping ``main`` is what the console script would print as a traceback: it is
    turned into traceback text in stderr so the tests' "no traceback" assertions see it.
    """
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception:
        code = 1
        sys.stderr.write(traceback.format_exc())
    out, err = capsys.readouterr()
    return code, out, err


def _param(c: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=c.broken)] if c.broken else []
    return pytest.param(c, marks=marks, id=c.id)


def _where(c: Case) -> list[str]:
    return [w for w in (c.sheet, c.column) if w]


def _column(p: dict[str, Any]) -> str:
    """'Start (G)' → 'Start'."""
    return str(p.get("column") or "").split(" ")[0]


# --------------------------------------------------------------------------
# tests


def test_error_values_are_real_error_cells(tmp_path: Path) -> None:
    """The #N/A / #REF! cases really hold Excel error cells (t="e"), not the text '#N/A'."""
    path = from_sheets(lambda s: None, post=_error("Plans", PREMIUM, "Rate", "#N/A"))(tmp_path)
    xml = sheet_xml(path, "Plans")
    assert f'<c r="B{PREMIUM}"' in xml
    cell = xml[xml.index(f'<c r="B{PREMIUM}"'):]
    cell = cell[:cell.index("</c>")]
    assert 't="e"' in cell and "#N/A" in cell


def test_corpus_edits_the_rows_it_means() -> None:
    assert _spec(S, "Plans").rows[PREMIUM - 2][0] == "Premium"
    assert _spec(S, "Clients").rows[ELM - 2][0] == "Elm Street Bakery"
    assert _spec(S, "Settings").rows[NEXT_ROW - 2][0] == "NextInvoiceNumber"
    assert _spec(S, "Settings").rows[PERIOD_ROW - 2][0] == "BillingPeriod"
    assert _spec(S, "Roster").rows[DRIVER7 - 2][1] == "driver.07@cobalt-log.example"


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_invoice_refuses_bad_input(c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1, sheet/row/column and what is wrong on stderr, no traceback, nothing written, workbook untouched."""
    wb = c.make(tmp_path)
    before = wb.read_bytes() if wb.exists() else None
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "invoice", str(wb), "--out", str(out_dir))
    assert "Traceback" not in out + err, err
    assert code == 1, (out, err)
    for word in (*_where(c), *c.words):
        assert word.lower() in err.lower(), f"{word!r} not in stderr:\n{err}"
    if c.sheet is not None:  # "Plans, row 3, column Rate (B): 'ninety' is not a number — ..."
        line = next(ln for ln in err.splitlines() if c.words[0].lower() in ln.lower())
        location = line.split(": ")[0].strip()
        if c.row is None:
            assert location == c.sheet, line
        else:
            assert location.startswith(f"{c.sheet}, row {c.row}, column {c.column}"), line
    assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(out_dir.iterdir())
    if before is None:
        assert not wb.exists()
    else:
        assert wb.read_bytes() == before


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_check_json_lists_problems(c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wb = c.make(tmp_path)
    before = wb.read_bytes() if wb.exists() else None
    code, out, err = run_cli(capsys, "check", str(wb), "--json")
    assert "Traceback" not in out + err, err
    assert code == 1, (out, err)
    doc = json.loads(out)
    assert doc["ok"] is False
    if c.sheet is None:  # the file itself is unusable: one error naming it
        text = str(doc.get("error", "")) + json.dumps(doc.get("problems", []))
        for word in c.words:
            assert word.lower() in text.lower(), doc
    else:
        problems = doc["problems"]
        assert isinstance(problems, list) and problems
        for p in problems:
            assert {"sheet", "row", "column", "message", "fix"} <= set(p), p
        hits = [p for p in problems if p["sheet"] == c.sheet and (c.column is None or _column(p) == c.column)]
        assert hits, problems
        for word in c.words:
            assert any(word.lower() in f"{p['message']} {p['fix']}".lower() for p in hits), (word, hits)
        problem = next(p for p in hits if c.words[0].lower() in p["message"].lower())
        assert (problem["sheet"], problem["row"]) == (c.sheet, c.row), problem
    if before is not None:
        assert wb.read_bytes() == before


def test_out_of_process(tmp_path: Path) -> None:
    """The real console entry point: exit 1, the location on stderr, no traceback, nothing written."""
    wb = CASES[0].make(tmp_path)
    before = wb.read_bytes()
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "invoice", str(wb), "--out", str(out_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all(w in proc.stderr for w in ("Plans", "Rate", "ninety")), proc.stderr
    assert not out_dir.exists()
    assert wb.read_bytes() == before


@pytest.mark.parametrize("case_id", ["text-rate", "na-in-rate"])
def test_one_bad_cell_one_problem(case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = next(c for c in CASES if c.id == case_id)
    code, out, _ = run_cli(capsys, "check", str(c.make(tmp_path)), "--json")
    assert code == 1
    problems = json.loads(out)["problems"]
    assert [(p["sheet"], _column(p)) for p in problems] == [("Plans", "Rate")], problems
    assert "blank" not in problems[0]["message"]


def test_impossible_date_quotes_the_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = next(c for c in CASES if c.id == "date-31-feb")
    code, _, err = run_cli(capsys, "invoice", str(c.make(tmp_path)), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "31/02/2026" in err


def test_all_problems_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(sheets: list[SheetSpec]) -> None:
        set_cell(sheets, "Plans", PREMIUM, "Rate", "ninety")
        set_cell(sheets, "Clients", ELM, "Plan", "Gold")
        set_cell(sheets, "Clients", excel_row_of(sheets, "Clients", "Client", "Cobalt Logistics"),
                 "DiscountPct", 15)
        set_cell(sheets, "Roster", DRIVER7, "End", dt.date(2024, 12, 31))
        set_cell(sheets, "Roster", HELEN, "Type", "Employe")
        set_cell(sheets, "Roster", HELEN + 1, "Start", "next tuesday")
        set_setting(sheets, "NextInvoiceNumber", "one thousand")

    wb = from_sheets(edit, post=_error("Roster", DRIVER7 + 2, "Start", "#REF!"))(tmp_path)
    before = wb.read_bytes()
    code, out, _ = run_cli(capsys, "check", str(wb), "--json")
    assert code == 1
    problems = json.loads(out)["problems"]
    got = {(p["sheet"], _column(p)) for p in problems}
    assert {("Plans", "Rate"), ("Clients", "Plan"), ("Clients", "DiscountPct"), ("Roster", "End"),
            ("Roster", "Type"), ("Roster", "Start"), ("Settings", "Value")} <= got, got
    messages = " | ".join(p["message"] for p in problems)
    for word in ("ninety", "Gold", "100%", "before", "Employe", "next tuesday", "#REF!", "one thousand"):
        assert word in messages, (word, messages)
    code, _, err = run_cli(capsys, "invoice", str(wb), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "Traceback" not in err
    for word in ("ninety", "Gold", "100%", "before", "Employe", "next tuesday", "#REF!", "one thousand"):
        assert word in err, (word, err)
    assert not (tmp_path / "out").exists()
    assert wb.read_bytes() == before


# --------------------------------------------------------------------------
# password-protected and old-format files


def _encrypted(src: Path, dest: Path) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    with src.open("rb") as f, dest.open("wb") as out:
        OOXMLFile(f).encrypt("secret", out)
    return dest


def test_a_password_protected_workbook_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wb = _encrypted(Path(__file__).parent.parent / "workbook_template.xlsm", tmp_path / "locked.xlsm")
    before = wb.read_bytes()
    assert cli.main(["invoice", str(wb), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "locked.xlsm: the workbook is password-protected" in err and "remove the password" in err
    assert "Traceback" not in err and wb.read_bytes() == before and not (tmp_path / "out").exists()


def test_an_old_xls_workbook_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wb = tmp_path / "old.xls"
    wb.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    assert cli.main(["check", str(wb)]) == 1
    assert "old.xls: an old-format .xls workbook; open it in Excel and save it as" in capsys.readouterr().err


def test_a_password_protected_export_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = Path(__file__).parent.parent / "workbook_template.xlsm"
    export = _encrypted(template, tmp_path / "users.xlsx")
    assert cli.main(["import", "m365", str(export), "--workbook", str(template)]) == 1
    err = capsys.readouterr().err
    assert "users.xlsx: the export is password-protected" in err and "Traceback" not in err
