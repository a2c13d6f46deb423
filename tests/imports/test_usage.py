"""PSA time entries and tickets into the Usage table: column sets, messy files, idempotency, tickets once."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from perseat_addin.engine.report import build_report
from perseat_addin.errors import InputProblems
from perseat_addin.imports.mappings import Mapping
from perseat_addin.imports.usage import billable_value, company_key, detect_usage_source, parse_hours, read_usage
from perseat_addin.workbook.load import load

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ["Acme Dental Group", "Delta Pediatrics", "Birch & Lowe LLP"]

# ConnectWise PSA time/entries, as the API names the fields (company and ticket flattened as exports do)
CW = ("id,company/name,member/identifier,chargeToType,chargeToId,timeStart,timeEnd,actualHours,billableOption,notes\n"
      '101,Acme Dental Group,jsmith,ServiceTicket,5001,2026-11-02T14:00:00Z,2026-11-02T15:30:00Z,1.5,Billable,'
      '"Printer, again\nand again"\n'
      "102,Acme Dental Group,jsmith,ServiceTicket,5001,2026-11-03T09:00:00Z,2026-11-03T09:30:00Z,0.5,Billable,\n"
      '103,"ACME DENTAL GROUP, LLC",adoe,ServiceTicket,5002,2026-11-05T10:00:00Z,,1,Billable,\n'
      "104,Delta Pediatrics,adoe,ChargeCode,17,2026-11-06T10:00:00Z,,2,DoNotBill,onsite\n"
      "105,Unknown Co,adoe,ServiceTicket,5003,2026-11-06T10:00:00Z,,2,Billable,\n"
      "106,Unknown Co,adoe,ServiceTicket,5004,2026-11-07T10:00:00Z,,1,Billable,\n"
      "\n\n")


def test_connectwise_time_entries() -> None:
    res = read_usage(CW, "connectwise-time", CLIENTS, name="time.csv")
    got = [(u.client, u.date, u.tickets, u.hours, u.ticket, u.ref) for u in res.rows]
    assert got == [("Acme Dental Group", dt.date(2026, 11, 2), 1, Decimal("1.5"), "5001", "101"),
                   ("Acme Dental Group", dt.date(2026, 11, 3), 0, Decimal("0.5"), "5001", "102"),  # same ticket
                   ("Acme Dental Group", dt.date(2026, 11, 5), 1, Decimal("1"), "5002", "103"),  # "…, LLC" matched
                   ("Delta Pediatrics", dt.date(2026, 11, 6), 0, Decimal("2"), "", "104")]  # a charge code: time only
    [warn] = res.problems
    assert warn.severity == "warning" and warn.column == "company/name"
    assert "2 line(s) for companies not in Clients were left out: Unknown Co (2)" in warn.message
    assert res.totals() == {"Acme Dental Group": (3, 2, Decimal("3.0")), "Delta Pediatrics": (1, 0, Decimal("2"))}
    again = read_usage(CW, "connectwise-time", CLIENTS, known_tickets={"ConnectWise PSA time entries|5001"})
    assert [u.tickets for u in again.rows] == [0, 0, 1, 0]  # 5001 was counted by an earlier import


def test_autotask_ticket_export_in_import_template_format() -> None:
    text = ("\ufeffExternal (Legacy) Ticket ID;Autotask Ticket Number (updates only);[required] Title;"
            "[required] Company;Contact;[required] Status;Create Date/Time;Total Hours Worked\n"
            ";T20261102.0001;VPN down;Acme Dental Group;Reyes, John;Complete;02/11/2026 09:15 AM;1.25\n"
            ";T20261115.0007;New hire;Delta Pediatrics;Nair, Priya;In Progress;15/11/2026 04:03 PM;\n"
            ";T20261103.0002;Printer;Acme Dental Group;Reyes, John;Complete;03/11/2026 10:00 AM;0:45\n")
    res = read_usage(text, "autotask-tickets", CLIENTS)
    assert [(u.client, u.date, u.tickets, u.hours, u.user, u.ref) for u in res.rows] == [
        ("Acme Dental Group", dt.date(2026, 11, 2), 1, Decimal("1.25"), "Reyes, John", "T20261102.0001"),
        ("Delta Pediatrics", dt.date(2026, 11, 15), 1, Decimal(0), "Nair, Priya", "T20261115.0007"),
        ("Acme Dental Group", dt.date(2026, 11, 3), 1, Decimal("0.75"), "Reyes, John", "T20261103.0002")]
    assert res.problems == []  # 15/11 settles the file as day-first, so 02/11 is November 2


def test_autotask_time_entries_without_a_company_column_say_what_to_do() -> None:
    with pytest.raises(InputProblems) as exc:
        read_usage("id,ticketID,resourceID,dateWorked,hoursWorked\n1,77,5,2026-11-02,1.5\n", "autotask-time",
                   CLIENTS, name="te.csv")
    [p] = exc.value.problems
    assert p.sheet == "te.csv" and p.column == "Account" and 'no "Account" column' in p.message
    assert "import the tickets export instead" in p.fix and "'Company'" in p.fix


def test_halopsa_tickets_with_hours_as_decimals_or_hh_mm() -> None:
    text = ("id,summary,client_name,site_name,user_email,dateoccurred,timetaken\n"
            "9001,Outlook,Delta Pediatrics,Main,priya@deltapeds.example,2026-11-04T08:00:00,1.25\n"
            "9002,Laptop,Delta Pediatrics,Main,ben@deltapeds.example,2026-11-05T08:00:00,1:30\n"
            "9003,Wifi,Delta Pediatrics,Main,ben@deltapeds.example,2026-11-05T09:00:00,lots\n"
            "9004,Backup,Delta Pediatrics,Main,,not a date,1\n")
    res = read_usage(text, "halopsa-tickets", CLIENTS)
    assert [(u.user, u.tickets, u.hours) for u in res.rows] == [("priya@deltapeds.example", 1, Decimal("1.25")),
                                                               ("ben@deltapeds.example", 1, Decimal("1.5"))]
    where = sorted((p.row, p.column, p.severity) for p in res.problems)
    assert where == [(4, "timetaken", "error"), (5, "dateoccurred", "error")]


def test_any_export_through_a_usage_mapping() -> None:
    m = Mapping("Helpdesk", {"Client": "Customer", "Date": "Day", "Hours": "Duration", "Ticket": "Case"}, "Usage")
    text = "Customer,Day,Duration,Case\nBirch & Lowe,11/20/2026,2h 15m,C-1\nBirch & Lowe,11/21/2026,30m,C-1\n"
    res = read_usage(text, m, CLIENTS)
    assert [(u.client, u.date, u.tickets, u.hours, u.source) for u in res.rows] == [
        ("Birch & Lowe LLP", dt.date(2026, 11, 20), 1, Decimal("2.25"), "Helpdesk"),
        ("Birch & Lowe LLP", dt.date(2026, 11, 21), 0, Decimal("0.5"), "Helpdesk")]
    assert res.rows[0].ref.startswith("h:") and res.rows[0].ref != res.rows[1].ref


def test_hours_and_company_names() -> None:
    assert [parse_hours(v) for v in (1.5, "2", "1:30", "0:05", "2h", "45m", "1h 15m", None, " ")] == [
        Decimal("1.5"), Decimal(2), Decimal("1.5"), Decimal(5) / 60, Decimal(2), Decimal("0.75"), Decimal("1.25"),
        None, None]
    with pytest.raises(ValueError):
        parse_hours("lots")
    assert company_key("Acme Dental Group, LLC") == company_key("acme dental group") == "acme dental group"
    assert company_key("Birch & Lowe LLP") == company_key("Birch & Lowe") == "birch lowe"


def test_cli_adds_usage_once_and_the_report_counts_it(tmp_path: Path) -> None:
    wb = Path(shutil.copyfile(ROOT / "workbook_template.xlsm", tmp_path / "wb.xlsm"))
    csv = tmp_path / "time.csv"
    csv.write_text(CW, encoding="utf-8")
    before = build_report(load(wb)).clients[0].period.hours
    cmd = [sys.executable, "-m", "perseat_addin.cli", "import", "connectwise-time", str(csv), "--workbook", str(wb),
           "--apply", "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert (doc["rows_new"], doc["rows_already_there"], doc["unknown_companies"]) == (4, 0, {"Unknown Co": 2})
    assert doc["by_client"]["Acme Dental Group"] == {"rows": 3, "tickets": 2, "hours": "3.0"}
    second = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout)
    assert (second["rows_new"], second["rows_already_there"]) == (0, 4)
    after = build_report(load(wb)).clients[0]
    assert after.client == "Acme Dental Group" and after.period.hours == before + 3


# --------------------------------------------------------------------------
# Time the PSA marks as not billable to the client (SPEC §8): imported with Billable = No


def test_connectwise_billable_option_no_charge_and_do_not_bill_are_not_billable() -> None:
    res = read_usage(CW, "connectwise-time", CLIENTS)
    assert [(u.ref, u.billable) for u in res.rows] == [("101", True), ("102", True), ("103", True), ("104", False)]
    text = ("id,company/name,timeStart,actualHours,billableOption\n"
            "1,Acme Dental Group,2026-11-02T14:00:00Z,1.5,Billable\n"
            "2,Acme Dental Group,2026-11-02T15:00:00Z,0.75,NoCharge\n"
            "3,Acme Dental Group,2026-11-03T09:00:00Z,2,DoNotBill\n"
            "4,Acme Dental Group,2026-11-03T11:00:00Z,1,NoDefault\n"
            "5,Acme Dental Group,2026-11-04T11:00:00Z,1,\n")
    res = read_usage(text, "connectwise-time", CLIENTS)
    assert [(u.hours, u.billable) for u in res.rows] == [(Decimal("1.5"), True), (Decimal("0.75"), False),
                                                         (Decimal(2), False), (Decimal(1), True), (Decimal(1), True)]
    assert res.problems == []
    assert res.non_billable() == {"Acme Dental Group": (2, Decimal("2.75"))}
    assert res.totals() == {"Acme Dental Group": (5, 0, Decimal("6.25"))}  # every hour is still work done


def test_connectwise_grid_export_spellings_and_the_nc_nb_abbreviations() -> None:
    text = ("Time RecId,Company,Date,Hours,Ticket #,Billable Option\n"
            "11,Acme Dental Group,11/02/2026,1,5001,Billable\n"
            "12,Acme Dental Group,11/03/2026,1,5001,Do Not Bill\n"
            "13,Acme Dental Group,11/24/2026,1,5002,No Charge\n")
    assert [u.billable for u in read_usage(text, "connectwise-time", CLIENTS).rows] == [True, False, False]
    text = ("Time RecId,Company,Date,Hours,Bill\n11,Acme Dental Group,2026-11-02,1,B\n"
            "12,Acme Dental Group,2026-11-02,2,NC\n13,Acme Dental Group,2026-11-02,3,nb\n"
            "14,Acme Dental Group,2026-11-02,4,N/C\n")
    assert [u.billable for u in read_usage(text, "connectwise-time", CLIENTS).rows] == [True, False, False, False]


def test_a_billable_value_that_means_neither_leaves_the_line_out() -> None:
    text = ("id,company/name,timeStart,actualHours,billableOption\n"
            "1,Acme Dental Group,2026-11-02,1,Billable\n2,Acme Dental Group,2026-11-03,1,Sometimes\n")
    res = read_usage(text, "connectwise-time", CLIENTS, name="time.csv")
    assert [u.ref for u in res.rows] == ["1"]
    [p] = res.problems
    assert (p.sheet, p.row, p.column, p.severity) == ("time.csv", 3, "billableOption", "error")
    assert "'Sometimes'" in p.message and "Do Not Bill" in p.fix


def test_autotask_is_non_billable() -> None:
    # the API's TimeEntries fields (psa-fixtures/autotask/time_entries_query.json), with the company the export adds
    text = ("id,ticketID,Account,dateWorked,hoursWorked,hoursToBill,isNonBillable\n"
            "4,100,Delta Pediatrics,2018-01-23T00:00:00.00Z,1.0,1.0,false\n"
            "5,100,Delta Pediatrics,2018-01-24T00:00:00.00Z,2.5,0,true\n"
            "6,101,Delta Pediatrics,2018-01-24T00:00:00.00Z,0.5,0.5,\n")
    res = read_usage(text, "autotask-time", CLIENTS)
    assert [(u.ref, u.tickets, u.hours, u.billable) for u in res.rows] == [
        ("4", 1, Decimal("1.0"), True), ("5", 0, Decimal("2.5"), False), ("6", 1, Decimal("0.5"), True)]
    export = ("Account,Date Worked,Hours Worked,Non-Billable\nDelta Pediatrics,2026-11-02,1,Yes\n"
              "Delta Pediatrics,2026-11-03,2,No\n")
    assert [u.billable for u in read_usage(export, "autotask-time", CLIENTS).rows] == [False, True]


def test_halopsa_tickets_not_billable_and_non_billable_time() -> None:
    text = ("id,client_name,dateoccurred,timetaken,isbillable,nonbillable_time\n"
            "9001,Delta Pediatrics,2026-11-04T08:00:00,1.25,true,0\n"
            "9002,Delta Pediatrics,2026-11-05T08:00:00,2,false,\n"
            "9003,Delta Pediatrics,2026-11-06T08:00:00,1,true,0:30\n")
    res = read_usage(text, "halopsa-tickets", CLIENTS)
    assert [(u.ref, u.tickets, u.hours, u.billable) for u in res.rows] == [
        ("9001", 1, Decimal("1.25"), True), ("9002", 1, Decimal(2), False),
        ("9003", 1, Decimal(1), True), ("9003/non-billable", 0, Decimal("0.5"), False)]


def test_halopsa_time_entries_are_actions() -> None:
    text = ("ticket_id,id,client_name,actionarrivaldate,timetaken,nonbilltime,actisbillable,note\n"
            "9001,1,Delta Pediatrics,2026-11-04T08:00:00,1.5,0,True,Outlook\n"
            "9001,2,Delta Pediatrics,2026-11-05T08:00:00,0.5,0.25,True,follow-up\n"
            "9002,1,Delta Pediatrics,2026-11-05T09:00:00,1,0,False,our mistake\n")
    assert detect_usage_source(text) == "halopsa-time"
    res = read_usage(text, "halopsa-time", CLIENTS)
    assert [(u.ref, u.ticket, u.tickets, u.hours, u.billable) for u in res.rows] == [
        ("9001/1", "9001", 1, Decimal("1.5"), True), ("9001/2", "9001", 0, Decimal("0.5"), True),
        ("9001/2/non-billable", "9001", 0, Decimal("0.25"), False), ("9002/1", "9002", 1, Decimal(1), False)]
    assert res.non_billable() == {"Delta Pediatrics": (2, Decimal("1.25"))}


def test_a_usage_mapping_may_map_billable() -> None:
    m = Mapping("Helpdesk", {"Client": "Customer", "Date": "Day", "Hours": "Duration", "Billable": "Charge?"},
                "Usage")
    text = "Customer,Day,Duration,Charge?\nBirch & Lowe,2026-11-20,1,yes\nBirch & Lowe,2026-11-21,2,No Charge\n"
    assert [u.billable for u in read_usage(text, m, CLIENTS).rows] == [True, False]


def test_billable_values() -> None:
    yes = ["", " ", "Billable", "NoDefault", "No Default", "yes", "Y", "true", "1", "B"]
    no = ["DoNotBill", "Do Not Bill", "NoCharge", "No Charge", "NC", "NB", "n/c", "Non-billable", "no", "false", "0"]
    assert [billable_value(v) for v in yes] == [True] * len(yes)
    assert [billable_value(v) for v in no] == [False] * len(no)
    assert [billable_value(v, means_not=True) for v in ("true", "Yes", "1", "false", "no", "")] == [
        False, False, False, True, True, True]
    assert billable_value("No Charge", means_not=True) is False  # the word wins over the column's sense
    assert billable_value("perhaps") is None


def test_cli_imports_no_charge_time_and_the_invoice_bills_only_billable_overage(tmp_path: Path) -> None:
    wb = Path(shutil.copyfile(ROOT / "workbook_template.xlsm", tmp_path / "wb.xlsm"))
    # Acme Dental Group (Standard: 1.5 h/user included, 90.00/h above) is already 2.65 h above plan in November
    time = ("id,company/name,chargeToType,chargeToId,timeStart,actualHours,billableOption\n"
            "701,Acme Dental Group,ServiceTicket,6001,2026-11-25T14:00:00Z,3,NoCharge\n"
            "702,Acme Dental Group,ServiceTicket,6001,2026-11-26T09:00:00Z,1.5,DoNotBill\n"
            "703,Acme Dental Group,ServiceTicket,6002,2026-11-27T09:00:00Z,1,Billable\n")
    csv = tmp_path / "cw.csv"
    csv.write_text(time, encoding="utf-8")

    def invoice(out: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "invoice", str(wb), "--out",
                               str(tmp_path / out), "--json"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return next(i for i in json.loads(proc.stdout)["invoices"] if i["client"] == "Acme Dental Group")

    before = invoice("before")
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "import", "connectwise-time", str(csv),
                           "--workbook", str(wb), "--apply", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_new"] == 3
    after = invoice("after")
    overage = [ln for ln in after["lines"] if ln["kind"] == "overage"]
    assert len(overage) == 1 and "21.25 h used" in overage[0]["description"]  # 20.25 + 1 billable hour
    assert Decimal(after["total"]) - Decimal(before["total"]) == Decimal("90.00")
    ws = load_workbook(wb)["Usage"]
    heads = [c.value for c in ws[1]]
    written = {r[heads.index("Ref")]: r[heads.index("Billable")] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert (written["701"], written["702"], written["703"]) == ("No", "No", "Yes")
    rep = build_report(load(wb)).clients[0]
    assert rep.client == "Acme Dental Group"
    # the template's 22.25 h (2 of them not billable) and these 5.5 h (4.5 not billable)
    assert (rep.period.hours, rep.period.non_billable_hours) == (Fraction(2775, 100), Fraction(650, 100))
