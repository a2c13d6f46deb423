"""Roster sync: an import adds, ends, updates and brings back users — never deletes, never loses Notes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from perseat_addin.engine.roster_sync import plan_sync
from perseat_addin.imports.roster import read_export
from perseat_addin.tables import RawTable

ROOT = Path(__file__).resolve().parents[2]
HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"
GRANITE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "carla.mendes", "jin.woo"]


def export(users: list[str], domain: str = "graniteacct.example", blocked: tuple[str, ...] = ()) -> str:
    lines = [HEADER]
    for u in users:
        name = u.replace(".", " ").title()
        lines.append(f"{u in blocked},{name},{name.split()[0]},{name.split()[-1]},Microsoft 365 Business Standard,"
                     f"{u}@{domain},1/6/2025 9:00:00 AM")
    return "\n".join(lines) + "\n"


def perseat(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def wb(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(ROOT / "workbook_template.xlsm", tmp_path / "wb.xlsm"))


def sync(wb: Path, tmp_path: Path, text: str, effective: str, *flags: str) -> dict:
    csv = tmp_path / f"m365-{effective}.csv"
    csv.write_text(text, encoding="utf-8-sig")
    proc = perseat("import", "m365", csv, "--workbook", wb, "--client", "Granite Accounting", "--effective",
                   effective, "--json", *flags)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def roster(t: list[tuple]) -> RawTable:
    return RawTable.of("Roster", [("Client", "UserID", "Name", "Type", "Start", "End", "Status", "Notes"), *t])


def test_dry_run_lists_changes_and_writes_nothing(wb: Path, tmp_path: Path) -> None:
    before = wb.read_bytes()
    out = sync(wb, tmp_path, export([*GRANITE, "new.hire"]), "2026-12-01")
    assert not out["applied"]
    actions = {(c["action"], c["user"].split("@")[0]) for c in out["changes"]}
    assert ("add", "new.hire") in actions
    assert ("end", "wes.hall") in actions
    assert wb.read_bytes() == before


def test_importing_the_same_file_twice_changes_nothing_the_second_time(wb: Path, tmp_path: Path) -> None:
    text = export([*GRANITE, "new.hire"], blocked=("uma.das",))
    first = sync(wb, tmp_path, text, "2026-12-01", "--apply")
    assert first["changes"]
    after_first = wb.read_bytes()
    second = sync(wb, tmp_path, text, "2026-12-01", "--apply")
    assert second["changes"] == []
    assert wb.read_bytes() == after_first


def test_apply_keeps_rows_notes_vba_and_ribbon_and_logs_every_change(wb: Path, tmp_path: Path) -> None:
    before = openpyxl.load_workbook(wb)["Roster"]
    notes_before = {(r[1].value, r[10].value) for r in before.iter_rows(min_row=2) if r[10].value}
    rows_before = before.max_row
    out = sync(wb, tmp_path, export(GRANITE, blocked=("uma.das",)), "2026-12-01", "--apply")
    book = openpyxl.load_workbook(wb, keep_vba=True)
    ws = book["Roster"]
    assert ws.max_row >= rows_before  # nothing deleted
    notes_after = {(r[1].value, r[10].value) for r in ws.iter_rows(min_row=2) if r[10].value}
    assert notes_before <= notes_after
    log = [[c.value for c in r] for r in book["ChangeLog"].iter_rows(min_row=2)]
    assert len(log) == len(out["changes"])
    assert {r[1] for r in log} <= {"import add", "import end", "import update", "import return"}
    uma = [r for r in log if r[3] == "uma.das@graniteacct.example"]
    assert uma and uma[0][4:7] == ["Status", "Active", "Disabled"]
    import zipfile

    names = zipfile.ZipFile(wb).namelist()
    assert "xl/vbaProject.bin" in names and "customUI/customUI.xml" in names


def test_a_departure_then_a_return_is_billed_for_the_days_in_between(wb: Path, tmp_path: Path) -> None:
    everyone = [*GRANITE, "wes.hall"]
    sync(wb, tmp_path, export([u for u in everyone if u != "wes.hall"]), "2026-11-11", "--apply")
    back = sync(wb, tmp_path, export(everyone), "2026-11-21", "--apply")
    assert [(c["action"], c["user"]) for c in back["changes"]] == [("return", "wes.hall@graniteacct.example")]
    proc = perseat("invoice", wb, "--out", tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    inv = next(i for i in json.loads(proc.stdout)["invoices"] if i["client"] == "Granite Accounting")
    changes = {ln["description"]: ln["amount"] for ln in inv["lines"] if ln["kind"] == "seat-change"}
    # away Nov 11–20: credited 20/30 days from Nov 11, charged again 10/30 days from Nov 21
    assert changes.get("Standard −1 user from Nov 11 (Wes Hall), 20/30 days") == "-63.33"
    assert changes.get("Standard +1 user from Nov 21 (Wes Hall), 10/30 days") == "31.67"


def test_plan_keeps_specific_types_and_ignores_other_clients() -> None:
    t = roster([("Acme", "a@x", "A", "Contractor", dt.datetime(2025, 1, 1), None, "Active", "keep me"),
                ("Other", "b@x", "B", "Employee", dt.datetime(2025, 1, 1), None, "Active", "")])
    imported = read_export(HEADER + "\nFalse,A,A,A,Microsoft 365 E3,a@x,1/1/2025\n", "m365")
    edit, changes = plan_sync(t, "Acme", imported, dt.date(2026, 12, 1))
    assert changes == [] and not edit.changes


def test_an_export_with_a_row_left_out_ends_nobody() -> None:
    from perseat_addin.errors import InputProblems

    t = roster([("Acme", "a@x", "A", "Employee", dt.datetime(2025, 1, 1), None, "Active", "")])
    imported = read_export(HEADER + "\nFalse,No Upn,No,Upn,Microsoft 365 E3,,1/1/2025\n", "m365")
    with pytest.raises(InputProblems):
        plan_sync(t, "Acme", imported, dt.date(2026, 12, 1))


def test_drift_reports_source_roster_and_last_invoice(wb: Path, tmp_path: Path) -> None:
    """December: the intern who started Nov 27 now counts (8 billable); November was invoiced for 7."""
    first = perseat("invoice", wb, "--out", tmp_path / "out", "--finalize")
    assert first.returncode == 0, first.stderr
    out = sync(wb, tmp_path, export(GRANITE[:5]), "2026-12-01")
    assert out["drift"] == {"client": "Granite Accounting", "licensed_in_source": 5, "billable_in_roster": 8,
                            "seats_on_last_invoice": 7, "last_invoice": "HV-1007"}


def test_an_import_leaves_final_invoices_and_every_other_sheet_byte_identical(wb: Path, tmp_path: Path) -> None:
    import io
    import zipfile

    assert perseat("invoice", wb, "--out", tmp_path / "out", "--finalize").returncode == 0
    before = wb.read_bytes()
    out = sync(wb, tmp_path, export([*GRANITE[:5], "new.person"]), "2026-12-01", "--apply")
    assert out["changes"]
    with zipfile.ZipFile(io.BytesIO(before)) as a, zipfile.ZipFile(wb) as b:
        changed = {n for n in a.namelist() if a.read(n) != b.read(n)}
        assert set(a.namelist()) == set(b.namelist())
    book = openpyxl.load_workbook(wb)
    roster_part = {ws.title: f"xl/worksheets/sheet{i + 1}.xml" for i, ws in enumerate(book.worksheets)}
    assert changed - {"xl/workbook.xml"} == {roster_part["Roster"], roster_part["ChangeLog"],  # + full recalc flag
                                             "xl/tables/table6.xml", "xl/tables/table12.xml"}
    heads = [c.value for c in book["Invoices"][1]]
    status = heads.index("Status")
    assert {r[status].value for r in book["Invoices"].iter_rows(min_row=2)} == {"Final", "Paid"}


def test_a_new_users_start_is_its_created_day_after_the_last_recorded_period() -> None:
    """SPEC §8: created later than the client's last recorded period → Start = created; else the effective
    date; and the preview says which."""
    from perseat_addin.engine.roster_sync import new_start
    from perseat_addin.model import Period

    eff, oct_ = dt.date(2026, 12, 3), Period(2026, 10)
    assert new_start(dt.date(2026, 11, 12), eff, oct_) == (
        dt.date(2026, 11, 12), "created 2026-11-12, after the last recorded period 2026-10")
    assert new_start(dt.date(2026, 10, 31), eff, oct_)[0] == eff  # inside a recorded month: not back-billed
    assert "the effective date" in new_start(dt.date(2026, 10, 31), eff, oct_)[1]
    assert new_start(None, eff, oct_) == (eff, "")
    assert new_start(dt.date(2025, 1, 6), eff, None)[0] == dt.date(2025, 1, 6)  # nothing recorded yet

    export_ = read_export("Block credential,Display name,Licenses,User principal name,When created\n"
                          "False,Nina New,Microsoft 365 Business Standard,nina@x.example,2026-11-12\n"
                          "False,Olaf Old,Microsoft 365 Business Standard,olaf@x.example,2026-10-02\n"
                          "False,Back Again,Microsoft 365 Business Standard,back@x.example,2026-11-20\n", "m365")
    r = roster([("Acme", "back@x.example", "Back Again", "Employee", dt.date(2025, 1, 1), dt.date(2026, 6, 30),
                 "Active", None)])
    edit, changes = plan_sync(r, "Acme", export_, eff, oct_)
    starts = {c.user: (c.action, c.new, c.why) for c in changes}
    assert starts["nina@x.example"][:2] == ("add", "2026-11-12")
    assert starts["olaf@x.example"][:2] == ("add", "2026-12-03")
    assert starts["back@x.example"] == ("return", "2026-12-03", "")  # a returning user: the effective date
    assert "after the last recorded period 2026-10" in str(next(c for c in changes if c.user == "nina@x.example"))
    start_col = r.col("Start")
    assert start_col is not None
    assert sorted(row[start_col].date() for row in edit.append) == [
        dt.date(2026, 11, 12), dt.date(2026, 12, 3), dt.date(2026, 12, 3)]

