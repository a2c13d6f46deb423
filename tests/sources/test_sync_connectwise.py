"""``perseat sync connectwise``, ``perseat push`` and ``perseat connect connectwise`` on a copy of the template,
against the ConnectWise stand-in.

Issue 13's acceptance for ConnectWise: 10,000 contacts across pages sync to the same Roster as the contacts
export of the same people; the period's time entries land in Usage with their billable flags and a second
sync adds nothing; each failure gives its message and changes nothing; push writes the billed seats, reads
them back, logs them, and a second push changes nothing; no secret in any file, output or log.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standins.connectwise import (
    ConnectWiseStandIn,
    Faults,
    addition,
    agreement,
    company,
    contacts_csv,
    make_contacts,
    make_time_entries,
)

from perseat_addin.cli import main
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
COMPANY, PUBLIC, PRIVATE, CLIENT_ID = "harborview", "pUbLiCkEy1234567", "Pr1vate.Key-Value_9xz", \
    "4f1c2e3d-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
GRANITE_PEOPLE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "carla.mendes", "jin.woo",
                  "backup.agent", "old.mailbox"]
EFFECTIVE = "2026-11-16"
IDS = {"Granite Accounting": (250, 7), "Acme Dental Group": (251, 8), "Birch & Lowe LLP": (252, 9),
       "Cobalt Logistics": (253, 10)}


def workbook(folder: Path, ids: dict[str, tuple[int, int]] = IDS, name: str = "billing.xlsm",
             products: dict[str, str] | None = None) -> Path:
    """A copy of the template with PSACompanyID/PSAAgreementID for ``ids``, Settings PSA connectwise, and a Plans
    PSAProduct column filled from ``products``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copyfile(TEMPLATE, folder / name))
    with FileBook(path, "test") as book:
        clients, settings, plans = book.rows("Clients"), book.rows("Settings"), book.rows("Plans")
        assert clients is not None and settings is not None and plans is not None
        col = len(clients.headers)
        cells = tuple(c for i, row in enumerate(clients.rows) if row[0] in ids
                      for c in ((i, col, str(ids[row[0]][0])), (i, col + 1, str(ids[row[0]][1]))))
        pcol = len(plans.headers)
        pcells = tuple((i, pcol, (products or {})[row[0]]) for i, row in enumerate(plans.rows)
                       if row[0] in (products or {}))
        book.write([TableEdit("Clients", cells, add_columns=("PSACompanyID", "PSAAgreementID")),
                    TableEdit("Settings", (), (), (settings.make({"Setting": "PSA", "Value": "connectwise"}),)),
                    TableEdit("Plans", pcells, add_columns=("PSAProduct",))])
    return path


def table(path: Path, name: str) -> list[dict[str, Any]]:
    t = WorkbookFile(path).table(name)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectWiseStandIn]:
    with ConnectWiseStandIn(COMPANY, PUBLIC, PRIVATE, CLIENT_ID) as cw:
        for k, v in cw.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        for client, (c, a) in IDS.items():
            cw.companies[c] = company(c, client, client.split()[0])
            cw.agreements[a] = agreement(a, c, f"{client} managed services")
        yield cw


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def scan_for_secrets(cw: ConnectWiseStandIn, folder: Path, *texts: str) -> None:
    """Neither the private key nor the Basic header (or its base64) in ``texts`` nor in any file under ``folder``
    (a workbook's parts inflated)."""
    secrets = [PRIVATE, cw.auth_header(), cw.auth_header().removeprefix("Basic ")]
    blobs = list(texts)
    for f in folder.rglob("*"):
        if f.is_file():
            blobs.append(f.read_bytes().decode("latin-1"))
            if zipfile.is_zipfile(f):
                with zipfile.ZipFile(f) as z:
                    blobs += [z.read(n).decode("latin-1") for n in z.namelist()]
    for blob in blobs:
        for s in secrets:
            assert s not in blob


def granite(cw: ConnectWiseStandIn, n: int = 10_000) -> list[dict[str, Any]]:
    cw.contacts = make_contacts(n, 250, "Granite Accounting", "graniteacct.example", GRANITE_PEOPLE)
    cw.time_entries = make_time_entries(250, "Granite Accounting", "2026-11", 40)
    return cw.contacts


def test_10000_contacts_sync_to_the_same_roster_as_the_contacts_export(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    contacts = granite(server)
    server.faults = Faults(throttle={("company/contacts", 5)}, burst={("company/contacts", 8): 2})
    live = workbook(tmp_path / "live")
    before = live.read_bytes()
    code, out, err = run(capsys, "sync", "connectwise", "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--period", "2026-11")
    assert code == 0, err
    assert live.read_bytes() == before
    assert f"Granite Accounting (PSACompanyID 250): 10000 users in ConnectWise PSA, effective {EFFECTIVE}:" in out
    assert "  end    wes.hall@graniteacct.example: End 2026-11-15 (not in the import)" in out
    assert "  Usage: 40 time entries in ConnectWise PSA; 40 new, 0 already in the Usage table" in out
    dry = out

    code, out, err = run(capsys, "sync", "connectwise", "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--period", "2026-11", "--apply")
    assert code == 0, err
    assert "(Roster, Usage and ChangeLog)" in out

    export = tmp_path / "contacts.csv"
    export.write_text(contacts_csv(contacts), encoding="utf-8")
    filed = workbook(tmp_path / "file")
    code, _, ferr = run(capsys, "import", "connectwise", export, "--workbook", filed, "--client",
                        "Granite Accounting", "--effective", EFFECTIVE, "--apply")
    assert code == 0, ferr
    assert table(live, "Roster") == table(filed, "Roster")
    roster_log = [r for r in table(live, "ChangeLog") if r["Action"] and r["Field"] != "Usage"]
    strip = [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")} for r in roster_log]
    assert strip == [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")}
                     for r in table(filed, "ChangeLog") if r["Action"]]
    assert {r["Source"] for r in roster_log} == {"ConnectWise PSA"}
    granite_rows = [r for r in table(live, "Roster") if r["Client"] == "Granite Accounting"]
    assert sum(r["Status"] == "Disabled" and not r["End"] for r in granite_rows) >= 2 * (10_000 // 40) - 1
    scan_for_secrets(server, tmp_path, dry, out, err, caplog.text)


def test_time_entries_land_in_usage_with_billable_flags_and_a_resync_adds_nothing(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    granite(server, 40)
    book = workbook(tmp_path)
    code, out, err = run(capsys, "sync", "connectwise", "--workbook", book, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--period", "2026-10", "--apply")
    assert code == 0 and "Usage: 1 time entries in ConnectWise PSA; 1 new" in out, err  # Oct 31, ticket 5000
    before = table(book, "Usage")
    [october] = [r for r in before if r["Source"] == "ConnectWise PSA time entries"]
    assert (october["Ticket"], october["Tickets"], october["Date"].month) == ("5000", 1, 10)
    code, out, err = run(capsys, "sync", "connectwise", "--workbook", book, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--apply")  # the period: Settings BillingPeriod (2026-11)
    assert code == 0, err
    usage = table(book, "Usage")
    added = [r for r in usage if r["Source"] == "ConnectWise PSA time entries" and r["Date"].month == 11]
    assert len(added) == 40 and {r["Source"] for r in added} == {"ConnectWise PSA time entries"}
    options = {str(e["id"]): e["billableOption"] for e in server.time_entries}
    for r in added:
        assert r["Billable"] == ("Yes" if options[r["Ref"]] in ("Billable", "NoDefault") else "No")
        assert r["Hours"] > 0 and r["Date"].month == 11
    assert sum(r["Billable"] == "No" for r in added) == 20  # DoNotBill and NoCharge: hours kept, not billable
    assert [r["Tickets"] for r in added if r["Ticket"] == "5000"] == [0, 0]  # counted in October already
    assert sum(r["Tickets"] for r in added) == len({r["Ticket"] for r in added if r["Ticket"]}) - 1
    log = [r for r in table(book, "ChangeLog") if r["Field"] == "Usage"]
    assert [r["Source"] for r in log] == ["ConnectWise PSA time entries"] * 2  # October's sync, then November's
    assert "h not billable" in log[-1]["New"]

    first = book.read_bytes()
    code, out, _ = run(capsys, "sync", "connectwise", "--workbook", book, "--client", "Granite Accounting",
                       "--effective", EFFECTIVE, "--apply")
    assert code == 0 and "0 new, 40 already in the Usage table" in out
    assert len(table(book, "Usage")) == len(usage) and book.read_bytes() == first

    # the same entries from the time-entry export: already there too (same Source and Ref)
    export = tmp_path / "time.csv"
    heads = ["id", "company/name", "timeStart", "actualHours", "chargeToId", "chargeToType", "billableOption"]
    lines = [",".join(heads)] + [",".join(str(e[h] if "/" not in h else e["company"]["name"]) for h in heads)
                                 for e in server.time_entries if e["timeStart"].startswith("2026-11")]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "import", "connectwise-time", export, "--workbook", book)
    assert code == 0, err
    assert "0 new, 40 already in the Usage table" in out


FAILURES = [
    ("bad private key", {"env": {"PERSEAT_CW_PRIVATE_KEY": "not-the-key-42"}}, "bad credentials"),
    ("bad clientId", {"env": {"PERSEAT_CW_CLIENT_ID": "someone-elses-id"}}, "refused the clientId"),
    ("unknown PSACompanyID", {"ids": {"Granite Accounting": (999, 7)}}, "has no company with id 999"),
    ("no contacts permission", {"permissions": frozenset({"companies", "time"})},
     "lacks permission for Companies ▸ Contacts"),
    ("no time permission (users were fine)", {"permissions": frozenset({"companies", "contacts"})},
     "lacks permission for Time & Expense ▸ Time Entry"),
    ("malformed JSON", {"faults": Faults(malformed=("company/contacts", 4))}, "that is not valid JSON"),
    ("part-way failure", {"faults": Faults(broken=("company/contacts", 6)), "env": {"PERSEAT_HTTP_MAX_WAIT": "1"}},
     "kept failing the contacts of company 250"),
    ("timeout", {"faults": Faults(slow=("company/contacts", 3), slow_seconds=3),
                 "env": {"PERSEAT_HTTP_TIMEOUT": "0.3", "PERSEAT_HTTP_MAX_WAIT": "0.5"}},
     "did not answer the contacts of company 250"),
    ("usage fails part-way", {"faults": Faults(broken=("time/entries", 1)), "env": {"PERSEAT_HTTP_MAX_WAIT": "1"}},
     "kept failing the time entries of company 250 for 2026-11"),
]


@pytest.mark.parametrize(("case", "how", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_gives_its_message_and_changes_nothing(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, case: str, how: dict[str, Any],
        message: str) -> None:
    caplog.set_level(logging.DEBUG)
    granite(server, 6000)
    for k, v in how.get("env", {}).items():
        monkeypatch.setenv(k, v)
    if "permissions" in how:
        server.permissions = how["permissions"] | {"system", "agreements"}
    server.faults = how.get("faults", Faults())
    book = workbook(tmp_path, how.get("ids", IDS))
    before = book.read_bytes()
    code, out, err = run(capsys, "sync", "connectwise", "--workbook", book, "--client", "Granite Accounting",
                         "--apply", "--effective", EFFECTIVE)
    assert code == 1
    assert message in err and "nothing was changed for Granite Accounting" in err, err
    assert "Traceback" not in err and "0 of 1 clients synced" in out
    assert book.read_bytes() == before
    scan_for_secrets(server, tmp_path, out, err, caplog.text)
    assert "not-the-key-42" not in out + err + caplog.text


def test_all_syncs_each_client_on_its_own(server: ConnectWiseStandIn, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    granite(server, 300)
    server.contacts += make_contacts(5, 251, "Acme Dental Group", "acmedental.example", start_id=90_000)
    book = workbook(tmp_path, {"Granite Accounting": (250, 7), "Acme Dental Group": (777, 8),
                               "Birch & Lowe LLP": (252, 9)})  # Birch's company has no contacts: refused
    acme = [r for r in table(book, "Roster") if r["Client"] == "Acme Dental Group"]
    code, out, err = run(capsys, "sync", "connectwise", "--workbook", book, "--all", "--apply", "--force",
                         "--effective", EFFECTIVE)
    assert code == 1
    assert "perseat: Acme Dental Group: ConnectWise PSA has no company with id 777" in err
    assert "Birch & Lowe LLP: ConnectWise PSA, company 252 names no users" in err
    assert "1 of 3 clients synced" in out
    assert [r for r in table(book, "Roster") if r["Client"] == "Acme Dental Group"] == acme
    assert "Acme Dental Group" not in {r["Client"] for r in table(book, "ChangeLog")}


def finalized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    book = workbook(tmp_path / "push", products={"Volume Pro": "VOL-PRO"})
    code, _, err = run(capsys, "invoice", book, "--finalize", "--early", "--out", tmp_path / "out")
    assert code == 0, err
    return book


def test_push_writes_the_billed_seats_reads_them_back_and_a_second_push_changes_nothing(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.additions = {7: [addition(101, 7, "STANDARD", 6), addition(102, 7, "BACKUP", 9)],
                        8: [addition(111, 8, "Standard", 10)],
                        9: [addition(121, 9, "PREMIUM", 4)],
                        10: [addition(131, 10, "VOL-PRO", 20), addition(132, 10, "premium", 0),
                             addition(133, 10, "VOL-PRO", 30, agreementStatus="Cancelled")]}
    book = finalized(tmp_path, capsys)
    before = book.read_bytes()
    code, out, err = run(capsys, "push", "--workbook", book)
    assert code == 0, err
    assert "Billed seats of 2026-11 → ConnectWise PSA:" in out
    lines = out.splitlines()
    assert ("  Acme Dental Group (Standard, addition 111 (Standard) of agreement 8, record agreement 8 addition 111): "
            "quantity 10 → 12") in lines  # 11 users + 2 − 1 during November: 12 on the last day
    assert "  Birch & Lowe LLP (Premium, addition 121 (PREMIUM) of agreement 9, record agreement 9 addition 121): " \
           "quantity 4 → 5" in lines  # MinUsers 5, as billed
    assert "  Cobalt Logistics (Volume Pro, addition 131 (VOL-PRO) of agreement 10, record agreement 10 addition " \
           "131): quantity 20 → 26" in lines  # the plan's PSAProduct; the cancelled 133 is not matched
    assert "  Cobalt Logistics (Premium, addition 132 (premium) of agreement 10, record agreement 10 addition 132): " \
           "quantity 0 → 1" in lines  # a user on another plan: its own addition
    assert "  Granite Accounting (Standard, addition 101 (STANDARD) of agreement 7, record agreement 7 addition " \
           "101): quantity 6 → 7" in lines
    assert "  left out: Delta Pediatrics: no PSAAgreementID in Clients" in lines
    assert "Dry run: 5 quantities would change. Add --apply to write them." in out
    assert book.read_bytes() == before and not any(s.method == "PATCH" for s in server.log)

    code, out, err = run(capsys, "push", "--workbook", book, "--period", "2026-11", "--apply")
    assert code == 0, err
    assert "Wrote 5 quantities to ConnectWise PSA, each read back; 5 ChangeLog rows added" in out
    patches = [s for s in server.log if s.method == "PATCH"]
    assert len(patches) == 5 and all(s.status == 200 for s in patches)
    assert {(s.path.rsplit("/", 1)[1], json.loads(s.body)[0]["value"]) for s in patches} == {
        ("111", 12), ("121", 5), ("131", 26), ("132", 1), ("101", 7)}
    reads = [s for s in server.log if s.method == "GET" and s.path.split("/")[-1] in ("111", "121", "131", "132",
                                                                                         "101")]
    assert len(reads) == 5  # each write read back
    assert {a["id"]: a["quantity"] for adds in server.additions.values() for a in adds} == {
        101: 7, 102: 9, 111: 12, 121: 5, 131: 26, 132: 1, 133: 30}
    log = [r for r in table(book, "ChangeLog") if r["Action"] == "push"]
    assert len(log) == 5 and {r["Source"] for r in log} == {"ConnectWise PSA"}
    acme = next(r for r in log if r["Client"] == "Acme Dental Group")
    assert (acme["Field"], acme["Old"], acme["New"]) == ("Quantity of agreement 8 addition 111 (Standard, 2026-11)",
                                                         10, 12)

    written = book.read_bytes()
    code, out, _ = run(capsys, "push", "--workbook", book, "--apply")
    assert code == 0 and "Nothing to write: ConnectWise PSA already holds the billed seats." in out
    assert "quantity 12 (already 12: no change)" in out
    assert len([s for s in server.log if s.method == "PATCH"]) == 5 and book.read_bytes() == written
    scan_for_secrets(server, tmp_path, out)


def test_push_fails_per_client_and_logs_what_it_wrote(server: ConnectWiseStandIn, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    server.additions = {7: [addition(101, 7, "STANDARD", 6)], 8: [addition(111, 8, "BACKUP", 10)],
                        9: [addition(121, 9, "PREMIUM", 4), addition(122, 9, "PREMIUM", 1)],
                        10: [addition(131, 10, "VOL-PRO", 20), addition(132, 10, "PREMIUM", 0)]}
    book = finalized(tmp_path, capsys)
    code, out, _ = run(capsys, "push", "--workbook", book, "--apply", "--json")
    assert code == 1
    got = json.loads(out)
    errors = {(i["client"], i["plan"]): i["error"] for i in got["items"] if i["error"]}
    assert "agreement 8 has no active addition for plan 'Standard'" in errors[("Acme Dental Group", "Standard")]
    assert "has 2 active additions for product 'Premium' (ids 121, 122)" in errors[("Birch & Lowe LLP", "Premium")]
    assert got["writes"] == 3
    assert {r["Client"] for r in table(book, "ChangeLog") if r["Action"] == "push"} == {"Cobalt Logistics",
                                                                                       "Granite Accounting"}


def test_push_respects_credit_notes_and_refuses_what_is_not_recorded(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.additions = {9: [addition(121, 9, "PREMIUM", 3)]}
    book = workbook(tmp_path)  # the template records 2026-10: HV-0990 (Birch, 5 seats), partly credited by CN-0991
    code, out, err = run(capsys, "push", "--workbook", book)
    assert code == 0, err
    assert "Billed seats of 2026-10 → ConnectWise PSA:" in out  # the latest recorded period
    assert "record agreement 9 addition 121): quantity 3 → 5" in out  # a credit for part moves money, not seats
    assert "  left out: Acme Dental Group: no recorded invoice for 2026-10" in out
    code, _, err = run(capsys, "credit", book, "HV-0990", "--amount", "688.75", "--reason", "billed in error",
                       "--out", tmp_path / "cn")
    assert code == 0, err
    code, out, _ = run(capsys, "push", "--workbook", book)
    assert "  left out: Birch & Lowe LLP: HV-0990 was credited in full: nothing billed to push" in out
    code, _, err = run(capsys, "push", "--workbook", book, "--period", "2026-11")
    assert code == 1 and "2026-11 is not recorded: finalize it first" in err


def test_connect_says_what_works(server: ConnectWiseStandIn, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    server.additions = {7: [addition(101, 7, "STANDARD", 6)]}
    book = workbook(tmp_path, {"Granite Accounting": (250, 7), "Acme Dental Group": (251, 7)})
    code, out, err = run(capsys, "connect", "connectwise", "--workbook", book)
    assert code == 1
    assert "ConnectWise PSA: credentials found (site http://127.0.0.1" in out
    assert "the private key is not shown" in out
    assert "  ok      the API keys and clientId were accepted" in out
    assert "  ok      Companies ▸ Contacts: can read contacts (sync)" in out
    assert "Granite Accounting (PSACompanyID 250, PSAAgreementID 7):\n  ok      company 250 is Granite Accounting\n" \
           "  ok      agreement 7 (Granite Accounting managed services) has 1 additions: STANDARD" in out
    assert "  FAILED  agreement 7 (Granite Accounting managed services) belongs to company 250, not 251" in out
    assert "1 of 2 clients cannot be synced or pushed yet" in err
    scan_for_secrets(server, tmp_path, out, err)


def test_the_real_command_keeps_secrets_out_of_its_output(server: ConnectWiseStandIn, tmp_path: Path) -> None:
    """The installed command in its own process (its own logging set-up): stdout, stderr and the workbook hold
    no secret, through a throttled page and a push."""
    import os
    import subprocess
    import sys

    granite(server, 2500)
    server.faults = Faults(throttle={("company/contacts", 2)})
    server.additions = {7: [addition(101, 7, "STANDARD", 6)]}
    book = workbook(tmp_path, {"Granite Accounting": (250, 7)})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = []
    for args in (["sync", "connectwise", "--workbook", str(book), "--all", "--apply", "--effective", EFFECTIVE],
                 ["push", "--workbook", str(book), "--period", "2026-10", "--apply"],
                 ["connect", "connectwise", "--workbook", str(book)]):
        proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *args], capture_output=True, text=True,
                              env=env, timeout=300, check=False)
        outs += [proc.stdout, proc.stderr]
    assert "1 of 1 clients synced" in outs[0], outs[1]
    scan_for_secrets(server, tmp_path, *outs)
