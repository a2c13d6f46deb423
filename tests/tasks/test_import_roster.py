"""Import roster (ribbon) through the Excel stand-in, the CLI with a saved mapping, and finding the client."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import perseat_addin.macros as m
import pytest
from test_macros import ExcelStandIn, copy_of, perseat

from perseat_addin.engine.roster_sync import guess_client
from perseat_addin.imports.roster import read_export
from perseat_addin.tables import RawTable
from perseat_addin.workbook.load import load
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
HEADER = "Block credential,Display name,First name,Last name,Licenses,User principal name,When created"
GRANITE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "wes.hall"]


def m365(path: Path, users: list[str], domain: str = "graniteacct.example") -> Path:
    lines = [HEADER] + [f"False,{u.replace('.', ' ').title()},,,Microsoft 365 Business Standard,{u}@{domain},"
                        "1/6/2025 9:00:00 AM" for u in users]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


@pytest.fixture
def book(tmp_path: Path) -> ExcelStandIn:
    return ExcelStandIn(copy_of(TEMPLATE, tmp_path))


def granite_rows(book: ExcelStandIn) -> list[dict]:
    return [r for r in book.rows("Roster") if r["Client"] == "Granite Accounting"]


def test_preview_then_yes_writes_roster_and_changelog(book: ExcelStandIn, tmp_path: Path) -> None:
    today = dt.date.today()
    export = m365(tmp_path / "granite.csv", [*GRANITE[:5], "nina.holt"])  # Wes left, Nina joined
    before = granite_rows(book)
    outcome = m.import_roster(str(export), book)
    assert outcome.ok, outcome.message
    [(title, question)] = book.questions
    assert title == "Per-Seat Billing: Import roster"
    assert "granite.csv: 6 users read as a Microsoft 365 export, for Granite Accounting" in question
    assert "share e-mail domains with Granite Accounting's Roster" in question
    assert "add    nina.holt@graniteacct.example" in question and "end    wes.hall@graniteacct.example" in question
    assert "Drift: licensed in the export 6, billable in the Roster" in question
    rows = granite_rows(book)
    assert rows[: len(before)] != before  # Wes got an End date
    wes = next(r for r in rows if r["UserID"] == "wes.hall@graniteacct.example")
    assert wes["End"].date() == today - dt.timedelta(days=1)
    nina = rows[-1]
    assert nina["UserID"] == "nina.holt@graniteacct.example" and nina["Start"].date() == today
    assert nina["Source"] == "Microsoft 365" and nina["Type"] == "Employee"
    assert [r["Notes"] for r in rows[: len(before)]] == [r["Notes"] for r in before]  # Notes untouched
    log = book.rows("ChangeLog")
    assert {(r["Action"], r["UserID"]) for r in log} >= {("import add", "nina.holt@graniteacct.example"),
                                                       ("import end", "wes.hall@graniteacct.example")}
    assert "Save the workbook to keep them" in outcome.message and book.saves == 0
    # the same file again: nothing to do, and no question asked
    again = m.import_roster(str(export), book)
    assert again.ok and "already matches" in again.message and len(book.questions) == 1


def test_no_changes_nothing(book: ExcelStandIn, tmp_path: Path) -> None:
    export = m365(tmp_path / "granite.csv", GRANITE[:3])
    before_roster, before_log = book.rows("Roster"), book.rows("ChangeLog")
    book.answer = False
    outcome = m.import_roster(str(export), book)
    assert outcome.message == "Nothing was changed."
    assert book.rows("Roster") == before_roster and book.rows("ChangeLog") == before_log


def test_unknown_domain_asks_for_the_selected_client(book: ExcelStandIn, tmp_path: Path) -> None:
    export = tmp_path / "hr.csv"
    export.write_text("Work Email,Employee Name,Worker Type,Employment Status,Hire Date\n"
                      "pat@new-bakery.example,Pat Lin,Employee,Active,2026-11-01\n"
                      "kim@new-bakery.example,Kim Ode,Contractor,Active,2026-11-01\n", encoding="utf-8")
    first = m.import_roster(str(export), book)
    assert not first.ok and "select the client's row on the Clients sheet" in first.message
    clients = book.table("Clients")
    assert clients is not None
    names = [r["Client"] for r in book.rows("Clients")]
    book.selection = ("Clients", clients.header_row + 1 + names.index("Elm Street Bakery"))
    second = m.import_roster(str(export), book)
    assert second.ok, second.message
    assert "read as a HR system export, for Elm Street Bakery (it is the client selected" in book.questions[-1][1]
    added = [r for r in book.rows("Roster") if r["UserID"] in ("pat@new-bakery.example", "kim@new-bakery.example")]
    assert [(r["Client"], r["Type"], r["Source"]) for r in added] == [
        ("Elm Street Bakery", "Employee", "HR system"), ("Elm Street Bakery", "Contractor", "HR system")]


def test_without_a_file_one_box_says_what_to_do(book: ExcelStandIn) -> None:
    outcome = m.import_roster(None, book)
    assert not outcome.ok and "Choose the export file" in outcome.message and len(book.alerts) == 1


def test_cli_imports_through_a_saved_mapping(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    hr = tmp_path / "hr.csv"
    hr.write_text("Employee Name,Work Email,Worker Type,Employment Status,Hire Date\n"
                  "Sam Okafor,sam.okafor@elmbakery.example,Employee,Active,2023-01-01\n"
                  "Lily Okafor,lily.okafor@elmbakery.example,Employee,Inactive,2023-01-01\n"
                  "Tom Baker,tom.baker@elmbakery.example,Seasonal,Active,2026-11-20\n", encoding="utf-8")
    proc = perseat("import", "HR system", hr, "--workbook", wb, "--client", "elm street bakery",
                   "--effective", "2026-12-01", "--apply", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["client"] == "Elm Street Bakery"
    assert {(c["action"], c["user"], c["field"]) for c in out["changes"]} == {
        ("update", "lily.okafor@elmbakery.example", "Status"), ("add", "tom.baker@elmbakery.example", "Start")}
    raw = WorkbookFile(wb).table("Roster")
    assert raw is not None
    tom = next(dict(zip(raw.headers, r, strict=True)) for r in raw.rows if r[1] == "tom.baker@elmbakery.example")
    # hired on 2026-11-20, and nothing recorded for the client yet: billed from the hire date (SPEC §8)
    assert (tom["Type"], tom["Source"], tom["Start"]) == ("Seasonal", "HR system", dt.date(2026, 11, 20))
    assert load(wb).clients  # the workbook still loads
    unknown = perseat("import", "Payroll", hr, "--workbook", wb, "--client", "Elm Street Bakery")
    assert unknown.returncode == 2 and 'no importer or saved mapping called "Payroll"' in unknown.stderr
    assert "m365, connectwise, autotask, halopsa, connectwise-time" in unknown.stderr
    assert "Helpdesk log, HR system" in unknown.stderr


def test_guess_client_by_company_then_domain() -> None:
    roster = RawTable.of("Roster", [("Client", "UserID"), ("Acme", "a@acme.example"), ("Acme", "b@acme.example"),
                                     ("Birch", "c@birch.example"), ("Birch", "x@gmail.example"),
                                     ("Acme", "y@gmail.example")])
    psa = read_export("Company,First Name,Last Name,Email\nACME,Z,Q,z@elsewhere.example\n", "connectwise")
    assert guess_client(psa, ["Acme", "Birch"], roster) == ("Acme", 'the export\'s company column says "Acme"')
    ms = read_export(f"{HEADER}\nFalse,N,,,E3,n@acme.example,\nFalse,M,,,E3,m@gmail.example,\n", "m365")
    client, why = guess_client(ms, ["Acme", "Birch"], roster)
    assert client == "Acme" and why.startswith("1 of 2 users")  # gmail.example is on both rosters: no vote
    split = read_export(f"{HEADER}\nFalse,N,,,E3,n@acme.example,\nFalse,M,,,E3,m@birch.example,\n", "m365")
    assert guess_client(split, ["Acme", "Birch"], roster)[0] is None


def test_cli_finds_the_source_and_the_client_itself(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    export = m365(tmp_path / "users.csv", GRANITE)
    proc = perseat("import", "auto", export, "--workbook", wb, "--effective", "2026-12-01")
    assert proc.returncode == 0, proc.stderr
    assert "6 users in users.csv (Microsoft 365) for Granite Accounting (6 of 6 users share e-mail domains" \
        in proc.stdout
    lost = m365(tmp_path / "lost.csv", ["a.b"], domain="unknown.example")
    proc = perseat("import", "m365", lost, "--workbook", wb)
    assert proc.returncode == 1 and "cannot tell which client" in proc.stderr and "--client NAME" in proc.stderr


def test_check_reports_mapping_problems(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    book = ExcelStandIn(wb)
    book.type_into("Mappings", ("Column", "Employee Name"), "Field", "Department")
    book.save()
    proc = perseat("check", wb)
    assert proc.returncode == 1
    assert "Mappings, row 3, column Field (C): 'Department' is not a field a roster mapping can fill" in proc.stderr
    outcome = m.check_workbook(book)
    assert not outcome.ok and "'Department' is not a field a roster mapping can fill" in outcome.message


CW_TIME = ("id,company/name,member/identifier,chargeToType,chargeToId,timeStart,timeEnd,actualHours,billableOption\n"
           "9101,Acme Dental Group,jsmith,ServiceTicket,7001,2026-11-02T14:00:00Z,,1.5,Billable\n"
           "9102,Delta Pediatrics,adoe,ServiceTicket,7002,2026-11-03T09:00:00Z,,0.5,Billable\n")


def test_the_button_takes_a_time_entry_export_into_usage(book: ExcelStandIn, tmp_path: Path) -> None:
    """Import roster recognises a PSA time-entry export and adds its rows to Usage (the import_usage task)."""
    export = tmp_path / "time.csv"
    export.write_text(CW_TIME, encoding="utf-8")
    before = book.rows("Usage")
    outcome = m.import_roster(str(export), book)
    assert outcome.ok, outcome.message
    [(title, question)] = book.questions
    assert title == "Per-Seat Billing: Import usage"
    assert "time.csv: 2 usage rows read as ConnectWise PSA time entries; 2 new, 0 already" in question
    assert "Acme Dental Group: 1 rows, 1 tickets, 1.5 h" in question
    added = book.rows("Usage")[len(before):]
    assert [(r["Client"], r["Ref"], r["Source"]) for r in added] == [
        ("Acme Dental Group", "9101", "ConnectWise PSA time entries"),
        ("Delta Pediatrics", "9102", "ConnectWise PSA time entries")]
    assert any(r["Action"] == "import usage" for r in book.rows("ChangeLog"))
    # the same file again adds nothing and asks nothing
    again = m.import_roster(str(export), book)
    assert again.ok and "Nothing to add" in again.message and len(book.questions) == 1
    assert len(book.rows("Usage")) == len(before) + 2


def test_an_export_naming_no_users_is_refused_and_ends_nobody(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    before = wb.read_bytes()
    export = m365(tmp_path / "failed.csv", [])  # the header only: a failed export
    for extra in ([], ["--apply"], ["--apply", "--force"]):
        proc = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting", *extra)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "failed.csv names no users" in proc.stderr and "nothing was changed" in proc.stderr
    assert wb.read_bytes() == before


def test_an_export_from_another_domain_needs_force(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    before = wb.read_bytes()
    export = m365(tmp_path / "other.csv", GRANITE, domain="birchlowe.example")
    proc = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting", "--apply")
    assert proc.returncode == 1 and "none of the e-mail domains in other.csv (birchlowe.example)" in proc.stderr
    assert "Granite Accounting's Roster (graniteacct.example)" in proc.stderr and "--force" in proc.stderr
    assert wb.read_bytes() == before
    forced = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting", "--apply",
                     "--force")
    assert forced.returncode == 0, forced.stderr
    assert any(r["UserID"] == "helen.park@birchlowe.example" for r in granite_rows(ExcelStandIn(wb)))


def test_ending_more_than_half_of_a_client_needs_force(tmp_path: Path) -> None:
    wb = copy_of(TEMPLATE, tmp_path)
    before = wb.read_bytes()
    export = m365(tmp_path / "partial.csv", GRANITE[:2])
    dry = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting")
    assert dry.returncode == 0 and "warning: the import would end" in dry.stderr
    assert "Granite Accounting's 12 current users (more than half)" in dry.stderr
    applied = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting", "--apply")
    assert applied.returncode == 1 and "more than half" in applied.stderr and "add --force" in applied.stderr
    assert wb.read_bytes() == before
    forced = perseat("import", "m365", export, "--workbook", wb, "--client", "Granite Accounting", "--apply",
                     "--force")
    assert forced.returncode == 0 and wb.read_bytes() != before


def test_the_button_cautions_before_ending_more_than_half(book: ExcelStandIn, tmp_path: Path) -> None:
    export = m365(tmp_path / "granite.csv", GRANITE[:1])
    book.answer = False
    outcome = m.import_roster(str(export), book)
    assert outcome.message == "Nothing was changed."
    assert "CAUTION: the import would end" in book.questions[-1][1] and "more than half" in book.questions[-1][1]
    assert "answer Yes" in book.questions[-1][1]
