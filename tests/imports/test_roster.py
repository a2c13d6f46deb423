"""Importers (SPEC §8): vendor exports → Roster rows, with the messy files real exports are."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from perseat_addin.errors import InputProblems
from perseat_addin.imports.exportfile import MAX_BYTES
from perseat_addin.imports.mappings import Mapping, saved_mappings
from perseat_addin.imports.roster import ImportedUser, ImportResult, detect_source, read_export
from perseat_addin.tables import MemoryTables

ROOT = Path(__file__).resolve().parents[2]

# Microsoft 365 admin center > Users > Active users > Export users (column set as the export writes it)
M365_HEADER = (
    "Block credential,City,Country/Region,Department,DirSyncEnabled,Display name,Fax,First name,"
    "Last dirsync time,Last name,Last password change time stamp,License assignment details,"
    "License reconciliation needed,Licenses,LiveID,Mobile Phone,Object Id,Office,Password never expires,"
    "Phone number,Postal code,Preferred data location,Preferred language,Proxy addresses,Release track,"
    "Soft deletion time stamp,State,Street address,Strong password required,Title,Usage location,"
    "User principal name,When created"
)


def m365_line(upn: str, name: str, licenses: str = "Microsoft 365 Business Premium", blocked: str = "False",
              created: str = "3/14/2024 10:22:01 AM", proxy: str = "") -> str:
    first, _, last = name.partition(" ")
    cells = [blocked, "Perth", "Australia", "Ops", "", name, "", first, "", last, "", "", "False", licenses, "",
             "", "0b5f-1", "", "False", "", "6000", "", "en-AU", proxy, "", "", "WA", "", "True", "", "AU",
             upn, created]
    return ",".join(f'"{c}"' if ("," in c or "\n" in c) else c for c in cells)


def m365_export(*lines: str) -> ImportResult:
    """An Entra ID users.csv export of ``lines`` (from :func:`m365_line`), read."""
    return read_export("\n".join([M365_HEADER, *lines]) + "\n", "m365", name="users.csv")


def by_id(result: ImportResult) -> dict[str, ImportedUser]:
    return {u.user_id: u for u in result.rows}


def test_m365_classification_and_reasons() -> None:
    res = m365_export(
        m365_line("ann@acme.com", "Ann Lee", proxy="SMTP:ann.lee@acme.com+smtp:ann@acme.onmicrosoft.com"),
        m365_line("bob@acme.com", "Bob Stone", blocked="True"),
        m365_line("carol@acme.com", "Carol Ng", licenses="Unlicensed"),
        m365_line("partner_ext.com#EXT#@acme.onmicrosoft.com", "Pat Partner", licenses="Unlicensed"),
        m365_line("info@acme.com", "Acme Info", licenses="Unlicensed", blocked="True"),
        m365_line("boardroom@acme.com", "Boardroom", licenses=""),
        m365_line("svc-backup@acme.com", "Backup Service", licenses="Unlicensed"),
        m365_line("dave@acme.com", "Dave Free", licenses="Microsoft Power Automate Free"),
        m365_line("erin@acme.com", "Erin Two", licenses="Microsoft 365 Business Basic+Microsoft Teams Exploratory"),
    )
    u = by_id(res)
    assert [x.source_row for x in res.rows] == list(range(2, 11))
    ann = u["ann@acme.com"]
    assert (ann.type, ann.status, ann.billable_hint) == ("Employee", "Active", True)
    assert ann.email == "ann.lee@acme.com" and ann.name == "Ann Lee" and ann.source == "Microsoft 365"
    assert ann.created == dt.date(2024, 3, 14)
    assert ann.reason == "billable: licensed (Microsoft 365 Business Premium)"
    bob = u["bob@acme.com"]
    assert (bob.type, bob.status, bob.billable_hint) == ("Employee", "Disabled", False)
    assert "sign-in blocked" in bob.reason
    carol = u["carol@acme.com"]
    assert (carol.type, carol.billable_hint, carol.reason) == ("Employee", False, "not billable: no licence")
    guest = u["partner_ext.com#EXT#@acme.onmicrosoft.com"]
    assert guest.type == "Guest" and not guest.billable_hint and "guest (#EXT# in UPN)" in guest.reason
    assert guest.email == ""
    info = u["info@acme.com"]
    assert (info.type, info.status) == ("Shared", "Disabled") and "shared mailbox" in info.reason
    assert u["boardroom@acme.com"].type == "Room"
    assert u["svc-backup@acme.com"].type == "Service"
    assert not u["dave@acme.com"].billable_hint and "only free licences" in u["dave@acme.com"].reason
    assert u["erin@acme.com"].billable_hint
    assert "Microsoft Teams Exploratory" in u["erin@acme.com"].reason
    assert res.problems == [] and res.ok


def test_m365_mailbox_type_column_wins_over_guessing() -> None:
    text = ("User principal name,Display name,Licenses,Block credential,Recipient type details\n"
            "frontdesk@acme.com,Front Desk,Unlicensed,True,SharedMailbox\n"
            "bigroom@acme.com,Big,Unlicensed,True,RoomMailbox\n"
            "projector@acme.com,Projector,Unlicensed,True,EquipmentMailbox\n"
            "info@acme.com,Info,Microsoft 365 Business Premium,False,UserMailbox\n")
    u = by_id(read_export(text, "m365"))
    assert u["frontdesk@acme.com"].type == "Shared"
    assert u["bigroom@acme.com"].type == "Room" and "room mailbox" in u["bigroom@acme.com"].reason
    assert u["projector@acme.com"].type == "Room"
    assert u["info@acme.com"].type == "Employee" and u["info@acme.com"].billable_hint


def test_graph_style_headers_and_account_enabled() -> None:
    text = ("userPrincipalName;displayName;accountEnabled;userType;assignedLicenses;createdDateTime\n"
            "ann@acme.com;Ann;true;Member;O365_BUSINESS_PREMIUM;2024-03-14T10:22:01Z\n"
            "bob@acme.com;Bob;false;Member;O365_BUSINESS_PREMIUM;2024-03-15T00:00:00Z\n"
            "g@other.com;G;true;Guest;;2024-03-16\n")
    u = by_id(read_export(text, "m365"))
    assert u["ann@acme.com"].billable_hint and u["ann@acme.com"].created == dt.date(2024, 3, 14)
    assert u["bob@acme.com"].status == "Disabled"
    assert u["g@other.com"].type == "Guest"


def test_bom_semicolons_quotes_embedded_newlines_and_trailing_blank_lines() -> None:
    text = ('User principal name;Display name;Licenses;Block credential;When created;Title\n'
            'ann@acme.com;"Lee; Ann";"Microsoft 365 E3";False;14.03.2024;"Head of\nSales, EMEA"\n'
            'bob@acme.com;Bob;"Microsoft 365 E3";False;15.03.2024;Clerk\n'
            '\n\n\n')
    raw = b"\xef\xbb\xbf" + text.encode("utf-8")
    res = read_export(raw, "m365", name="export.csv")
    u = by_id(res)
    assert res.columns[0] == "User principal name"  # BOM not glued to the first header
    assert u["ann@acme.com"].name == "Lee; Ann" and u["ann@acme.com"].created == dt.date(2024, 3, 14)
    assert u["bob@acme.com"].source_row == 4  # the quoted newline makes Ann's record two lines long
    assert len(res.rows) == 2 and res.problems == []


def test_utf16_tab_separated() -> None:
    text = "User principal name\tDisplay name\tLicenses\tBlock credential\nzoë@acme.com\tZoë\tE3\tFalse\r\n"
    for raw in (text.encode("utf-16"), text.encode("utf-16-le")):
        res = read_export(raw, "m365")
        assert by_id(res)["zoë@acme.com"].name == "Zoë"


def test_windows_1252_is_read_with_a_warning() -> None:
    raw = "User principal name,Display name,Licenses\nrene@acme.com,René,E3\n".encode("cp1252")
    res = read_export(raw, "m365", name="x.csv")
    assert res.rows[0].name == "René"
    assert any("Windows-1252" in p.message and p.severity == "warning" for p in res.problems)


def test_excel_sep_line() -> None:
    res = read_export("sep=;\nUser principal name;Licenses\nann@acme.com;E3\n", "m365")
    assert res.rows[0].user_id == "ann@acme.com" and res.rows[0].source_row == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("3/14/2024 10:22:01 AM", dt.date(2024, 3, 14)),
    ("14/03/2024 22:22", dt.date(2024, 3, 14)),
    ("14.03.2024", dt.date(2024, 3, 14)),
    ("2024-03-14", dt.date(2024, 3, 14)),
    ("2024-03-14T10:22:01.123Z", dt.date(2024, 3, 14)),
    ("45365", dt.date(2024, 3, 14)),
    ("45365.43", dt.date(2024, 3, 14)),
    ("14 Mar 2024", dt.date(2024, 3, 14)),
])
def test_dates_as_excel_mangles_them(text: str, expected: dt.date) -> None:
    res = read_export(f"User principal name,Licenses,When created\nann@acme.com,E3,{text}\n", "m365")
    assert res.rows[0].created == expected


def test_ambiguous_dates_follow_the_rest_of_the_file() -> None:
    text = ("User principal name,Licenses,When created\n"
            "a@x.com,E3,3/4/2024 9:00:00 AM\n"
            "b@x.com,E3,3/14/2024 9:00:00 AM\n")
    u = by_id(read_export(text, "m365"))
    assert u["a@x.com"].created == dt.date(2024, 3, 4)  # month-first, as b@x.com shows
    res = read_export("User principal name,Licenses,When created\na@x.com,E3,3/4/2024\nb@x.com,E3,banana\n", "m365",
                      name="u.csv")
    assert res.rows[0].created is None and res.rows[1].created is None
    msgs = {(p.row, p.column): p.message for p in res.problems}
    assert "day/month or month/day" in msgs[(2, "When created")]
    assert "not a date" in msgs[(3, "When created")]
    assert res.ok  # warnings only


def test_duplicates_are_one_user_with_a_warning_naming_the_lines() -> None:
    text = ("User principal name,Display name,Licenses\n"
            "ann@acme.com,Ann,E3\n"
            "bob@acme.com,Bob,E3\n"
            " ANN@acme.com ,Ann again,E3\n"
            "ann@acme.com,Ann thrice,E3\n")
    res = read_export(text, "m365", name="users.csv")
    assert [u.user_id for u in res.rows] == ["ann@acme.com", "bob@acme.com"]
    assert res.rows[0].name == "Ann"
    [p] = res.problems
    assert (p.sheet, p.row, p.column, p.severity) == ("users.csv", 2, "User principal name", "warning")
    assert "lines 2, 4, 5" in p.message


def test_missing_required_column_is_fatal_and_lists_columns_found() -> None:
    text = "Display name,Licenses,Block credential\nAnn,E3,False\n"
    with pytest.raises(InputProblems) as exc:
        read_export(text, "m365", name="users.csv")
    [p] = exc.value.problems
    assert p.column == "User principal name" and p.row == 1 and p.sheet == "users.csv"
    assert '"Display name", "Licenses", "Block credential"' in p.message
    with pytest.raises(InputProblems, match="Email Address"):
        read_export("First Name,Last Name,Active\nAnn,Lee,Yes\n", "autotask")


def test_row_without_user_id_is_an_error_and_left_out() -> None:
    res = read_export("User principal name,Display name,Licenses\n,Nobody,E3\nann@acme.com,Ann,E3\n", "m365",
                      name="u.csv")
    assert [u.user_id for u in res.rows] == ["ann@acme.com"]
    [p] = res.problems
    assert (p.row, p.column, p.severity) == (2, "User principal name", "error") and not res.ok


def test_empty_file_too_large_and_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(InputProblems, match="empty"):
        read_export("\n\n", "m365")
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(InputProblems, match="limit is 200 MB"):
        read_export(big, "m365")
    with pytest.raises(InputProblems, match="cannot open"):
        read_export(tmp_path / "nope.csv", "m365")
    with pytest.raises(ValueError, match="unknown source"):
        read_export("a\n", "salesforce")


def test_path_and_str_path(tmp_path: Path) -> None:
    p = tmp_path / "users.csv"
    p.write_text("User principal name,Licenses\nann@acme.com,E3\n", encoding="utf-8-sig")
    for data in (p, str(p)):
        res = read_export(data, "m365")
        assert res.file == "users.csv" and res.rows[0].user_id == "ann@acme.com"


def test_connectwise_contacts() -> None:
    text = ("First Name,Last Name,Company,Type,Email,Phone,Inactive\n"
            "Ann,Lee,Acme Corp,End User,ann@acme.com,555-0100,False\n"
            "Bob,Stone,Acme Corp,No Longer Employed,bob@acme.com,,False\n"
            "Cy,Old,Acme Corp,End User,cy@acme.com,,True\n")
    res = read_export(text, "connectwise")
    u = by_id(res)
    assert u["ann@acme.com"].name == "Ann Lee" and u["ann@acme.com"].billable_hint
    assert u["ann@acme.com"].source == "ConnectWise PSA" and u["ann@acme.com"].type == "Employee"
    assert u["bob@acme.com"].status == "Disabled" and "No Longer Employed" in u["bob@acme.com"].reason
    assert u["cy@acme.com"].status == "Disabled" and u["cy@acme.com"].reason == "not billable: inactive in PSA"
    assert res.problems == []


def test_autotask_contacts_and_several_companies_warning() -> None:
    text = ("Account,First Name,Last Name,Email Address,Phone,Active,Create Date\n"
            "Acme,Ann,Lee,ann@acme.com,,Yes,01/31/2023\n"
            "Acme,Bob,Stone,bob@acme.com,,No,02/01/2023\n"
            "Other Co,Zed,Z,zed@other.com,,Yes,02/02/2023\n"
            "Acme,Al,Bad,not-an-email,,Maybe,\n")
    res = read_export(text, "autotask", name="contacts.csv")
    u = by_id(res)
    assert u["ann@acme.com"].billable_hint and u["ann@acme.com"].created == dt.date(2023, 1, 31)
    assert u["bob@acme.com"].status == "Disabled" and "inactive in PSA" in u["bob@acme.com"].reason
    assert u["bob@acme.com"].created == dt.date(2023, 2, 1)  # month-first, as 01/31/2023 shows
    probs = {(p.row, p.column): p for p in res.problems}
    assert "2 companies" in probs[(None, "Account")].message
    assert "not Yes or No" in probs[(5, "Active")].message
    assert "e-mail" in probs[(5, "Email Address")].message


def test_psa_status_words_and_blanks() -> None:
    text = ("Email Address,Active\n"
            "a@x.com,Active\n"
            "b@x.com,Inactive\n"
            "c@x.com,\n"
            "d@x.com,1\n")
    res = read_export(text, "autotask", name="c.csv")
    u = by_id(res)
    assert [u[k].status for k in ("a@x.com", "b@x.com", "c@x.com", "d@x.com")] == [
        "Active", "Disabled", "Active", "Active"]
    [p] = res.problems
    assert (p.row, p.column, p.severity) == (4, "Active", "warning")
    u = by_id(read_export("Email,Status\na@x.com,Active\nb@x.com,Disabled\nc@x.com,\n", "connectwise"))
    assert [u[k].status for k in ("a@x.com", "b@x.com", "c@x.com")] == ["Active", "Disabled", "Active"]


def test_admin_account_unlicensed_is_service() -> None:
    u = by_id(read_export("User principal name,Licenses\nadmin@acme.onmicrosoft.com,Unlicensed\n", "m365"))
    assert u["admin@acme.onmicrosoft.com"].type == "Service"


def test_halopsa_users() -> None:
    text = ("name,firstname,surname,emailaddress,client_name,site_name,inactive\n"
            "Ann Lee,Ann,Lee,ann@acme.com,Acme,Main,false\n"
            "Bob Stone,Bob,Stone,bob@acme.com,Acme,Main,true\n")
    u = by_id(read_export(text, "halopsa"))
    assert u["ann@acme.com"].billable_hint and u["ann@acme.com"].source == "HaloPSA"
    assert u["bob@acme.com"].status == "Disabled"


def test_ragged_rows_are_reported() -> None:
    res = read_export("User principal name,Licenses\nann@acme.com,E3,oops\n", "m365", name="u.csv")
    assert res.rows[0].user_id == "ann@acme.com"
    assert any(p.row == 2 and "more fields" in p.message for p in res.problems)


def test_xlsx_export(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["User principal name", "Display name", "Licenses", "Block credential", "When created"])
    ws.append(["ann@acme.com", "Ann", "E3", False, dt.datetime(2024, 3, 14, 10, 22)])
    ws.append(["x#EXT#@acme.onmicrosoft.com", "X", None, False, None])
    p = tmp_path / "users.xlsx"
    wb.save(p)
    res = read_export(p, "m365")
    u = by_id(res)
    assert u["ann@acme.com"].created == dt.date(2024, 3, 14) and u["ann@acme.com"].billable_hint
    assert u["x#EXT#@acme.onmicrosoft.com"].type == "Guest" and u["x#EXT#@acme.onmicrosoft.com"].source_row == 3


def test_fifty_thousand_rows_are_fast() -> None:
    lines = [M365_HEADER]
    for i in range(50_000):
        lic = "Unlicensed" if i % 10 == 0 else "Microsoft 365 Business Premium"
        upn = f"user{i}_ext.com#EXT#@acme.onmicrosoft.com" if i % 97 == 0 else f"user{i}@acme.com"
        lines.append(m365_line(upn, f"User {i}", licenses=lic, blocked="True" if i % 50 == 0 else "False",
                               created=f"{1 + i % 12}/{1 + i % 28}/2024 10:22:01 AM"))
    raw = ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")
    t0 = time.perf_counter()
    res = read_export(raw, "m365", name="big.csv")
    elapsed = time.perf_counter() - t0
    print(f"\n50,000-row Microsoft 365 export read in {elapsed:.2f} s")
    assert len(res.rows) == 50_000
    assert sum(u.billable_hint for u in res.rows) > 40_000
    assert elapsed < 5


# --------------------------------------------------------------------------- saved column mappings

HR = Mapping("HR system", {"UserID": "Work Email", "Name": "Employee Name", "Type": "Worker Type",
                           "Status": "Employment Status", "Created": "Hire Date"})


def test_a_saved_mapping_reads_any_csv_and_says_why() -> None:
    text = ("Employee Name;Work Email;Worker Type;Employment Status;Hire Date;Cost Centre\n"
            "Ana Ruiz;ana@elm.example;Employee;Active;2024-02-01;CC1\n"
            "Ben Ode;ben@elm.example;Contractor;Active;01/15/2025;CC2\n"
            "Cal Mox;cal@elm.example;;Inactive;;CC2\n"
            "Front Desk;desk@elm.example;Shared;Active;;\n"
            "Gus Guest;gus_x.example#EXT#@elm.onmicrosoft.com;;Active;;\n"
            "Dee Ray;dee@elm.example;Employee;on leave;;\n")
    res = read_export(text, HR, name="hr.csv")
    u = by_id(res)
    assert res.source == "HR system" and len(res.rows) == 6
    assert (u["ana@elm.example"].name, u["ana@elm.example"].type, u["ana@elm.example"].status) == \
        ("Ana Ruiz", "Employee", "Active")
    assert u["ana@elm.example"].billable_hint and u["ana@elm.example"].created == dt.date(2024, 2, 1)
    assert u["ben@elm.example"].type == "Contractor" and u["ben@elm.example"].billable_hint
    assert u["cal@elm.example"].status == "Disabled" and not u["cal@elm.example"].billable_hint
    assert "Employment Status 'Inactive'" in u["cal@elm.example"].reason
    assert u["desk@elm.example"].type == "Shared" and u["desk@elm.example"].reason == "not billable: type Shared"
    assert u["gus_x.example#EXT#@elm.onmicrosoft.com"].type == "Guest"
    assert u["dee@elm.example"].status == "Active"  # unknown word: a warning, read as active
    [warn] = [p for p in res.problems if p.row == 7]
    assert warn.severity == "warning" and warn.column == "Employment Status" and "'on leave'" in warn.message


def test_a_mapped_column_missing_from_the_file_names_it_and_the_fix() -> None:
    with pytest.raises(InputProblems) as exc:
        read_export("Employee Name,Email,Worker Type,Employment Status,Hire Date\nA,a@x.example,,,\n", HR)
    [p] = exc.value.problems
    assert p.column == "Work Email" and 'no "Work Email" column in this HR system export' in p.message
    assert "Mappings table" in p.fix and '"Email"' in p.message


def test_the_mappings_table_is_checked_row_by_row() -> None:
    raw = MemoryTables({"Mappings": ([
        ["Source", "Import", "Field", "Column"],
        ["HR system", "Roster", "UserID", "Work Email"],
        ["HR system", "", "Name", "Employee Name"],
        ["HR system", "Roster", "Department", "Dept"],      # not a field
        ["HR system", "Roster", "Name", "Full Name"],       # twice
        ["Payroll", "Roster", "Name", "Name"],              # no UserID row
        ["m365", "Roster", "UserID", "UPN"],                # a built-in
        ["Tickets", "Usage", "Hours", "Time"],              # another kind of import: ignored here
        [None, None, "Email", ""],                          # no source
        [None, None, None, None],
    ], "Mappings", 1, 0)}).table("Mappings")
    mappings, problems = saved_mappings(raw)
    assert list(mappings) == ["hr system"]
    assert mappings["hr system"].columns == {"UserID": "Work Email", "Name": "Employee Name"}
    where = [(p.sheet, p.row, p.column) for p in problems]
    assert where == [("Mappings", 4, "Field (C)"), ("Mappings", 5, "Field (C)"), ("Mappings", 7, "Source (A)"),
                     ("Mappings", 9, "Source (A)"), ("Mappings", 6, "Source (A)")]
    assert "use one of: UserID, Name" in problems[0].fix
    assert "has no UserID row" in problems[-1].message


def test_the_template_ships_a_sample_mapping() -> None:
    from perseat_addin.workbook.reader import WorkbookFile

    mappings, problems = saved_mappings(WorkbookFile(ROOT / "workbook_template.xlsm").table("Mappings"))
    assert problems == [] and mappings["hr system"] == HR


@pytest.mark.parametrize(("text", "expected"), [
    (M365_HEADER + "\n" + m365_line("a@x.example", "A B"), "m365"),
    ("First Name,Last Name,Company,Type,Email,Phone,Inactive\nA,B,C,End User,a@x.example,,False\n", "connectwise"),
    ("Account,First Name,Last Name,Email Address,Active,Create Date\nAcme,A,B,a@x.example,Yes,\n", "autotask"),
    ("Name,Surname,Email Address,Client,Site,Inactive\nA,B,a@x.example,Acme,HQ,False\n", "halopsa"),
])
def test_the_source_is_recognised_from_the_headers(text: str, expected: str) -> None:
    assert detect_source(text + "\n", [HR]) == expected


def test_a_saved_mapping_wins_and_unknown_files_are_explained() -> None:
    assert detect_source("Work Email,Employee Name,Worker Type,Employment Status,Hire Date\n", [HR]) == HR
    with pytest.raises(InputProblems) as exc:
        detect_source("Employee,Full name\nx,y\n", [HR], name="odd.csv")
    [p] = exc.value.problems
    assert p.sheet == "odd.csv" and '"Employee", "Full name"' in p.message and "Mappings table" in p.fix


def test_accounts_sharing_licences_and_state_are_still_told_apart_by_name_and_line() -> None:
    """Accounts with the same licence and state columns are classified once, but an unlicensed account's
    address still decides its type, a guest stays a guest, and a bad Block credential warns on each line."""
    res = m365_export(
        m365_line("amy@acme.com", "Amy Fox", licenses="Unlicensed"),
        m365_line("reception@acme.com", "Reception", licenses="Unlicensed"),
        m365_line("svc-scan@acme.com", "Scanner", licenses="Unlicensed"),
        m365_line("partner_x.com#EXT#@acme.onmicrosoft.com", "Pat", licenses="Microsoft 365 Business Premium"),
        m365_line("ben@acme.com", "Ben Ode", licenses="Microsoft 365 Business Premium"),
        m365_line("cy@acme.com", "Cy Ode", blocked="maybe"),
        m365_line("di@acme.com", "Di Ode", blocked="maybe"),
    )
    u = by_id(res)
    assert [u[k].type for k in ("amy@acme.com", "reception@acme.com", "svc-scan@acme.com")] == \
        ["Employee", "Shared", "Service"]
    assert "guessed from 'reception@acme.com'" in u["reception@acme.com"].reason
    assert u["partner_x.com#EXT#@acme.onmicrosoft.com"].type == "Guest"
    assert (u["ben@acme.com"].type, u["ben@acme.com"].billable_hint) == ("Employee", True)
    assert [(p.row, p.column) for p in res.problems if "not True or False" in p.message] == \
        [(7, "Block credential"), (8, "Block credential")]
