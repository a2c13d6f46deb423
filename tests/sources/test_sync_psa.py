"""``perseat sync autotask|halopsa`` and ``perseat connect`` on a copy of the template, against the stand-ins.

The acceptance of issue 13 for the two PSAs: 10,000 contacts (users) across pages, with a 429 (and for
Halo a token expiring) in the middle, sync to the same Roster as the CSV export of the same records;
each failure gives its message and changes nothing; no secret appears in any file, output or log.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standins import autotask as at
from standins import halopsa as halo

from perseat_addin.cli import main
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
EFFECTIVE = "2026-11-16"
PEOPLE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "carla.mendes", "jin.woo",
          "backup.agent", "old.mailbox"]
AT_USER, AT_SECRET, AT_CODE = "perseat-api@harborview-it.example", "At$ecret-Value_9912", "TRACKING-ID-4F2A9C7E1B"
HALO_ID, HALO_SECRET = "0f3a9c1e-perseat", "Halo-Secret_Value-5531"


def with_companies(folder: Path, ids: dict[str, str], name: str = "billing.xlsm") -> Path:
    """A copy of the template whose Clients have PSACompanyID and PSAAgreementID, filled for ``ids``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copyfile(TEMPLATE, folder / name))
    with FileBook(path, "test") as book:
        clients = book.rows("Clients")
        assert clients is not None
        col = len(clients.headers)
        cells = tuple((i, col, ids[row[0]]) for i, row in enumerate(clients.rows) if row[0] in ids)
        book.write([TableEdit("Clients", cells, add_columns=("PSACompanyID", "PSAAgreementID"))])
    return path


def table(path: Path, name: str) -> list[dict[str, Any]]:
    t = WorkbookFile(path).table(name)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows]


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def scan(secrets: list[str], folder: Path, *texts: str) -> None:
    """No secret in ``texts`` nor in any file under ``folder`` (a workbook's parts inflated)."""
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


@pytest.fixture
def autotask(monkeypatch: pytest.MonkeyPatch) -> Iterator[at.AutotaskStandIn]:
    data = at.Data(companies=[{"id": 174, "companyName": "Granite Accounting", "isActive": True},
                              {"id": 175, "companyName": "Acme Dental Group", "isActive": True}])
    data.contacts = at.make_contacts(10_000, 174, "graniteacct.example", PEOPLE) + \
        at.make_contacts(40, 175, "acmedental.example", ["maria.alvarez"], start_id=31_000_000)
    with at.AutotaskStandIn(AT_USER, AT_SECRET, AT_CODE, data) as s:
        for k, v in s.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        yield s


@pytest.fixture
def halopsa(monkeypatch: pytest.MonkeyPatch) -> Iterator[halo.HaloStandIn]:
    data = halo.Data(clients=[{"id": 12, "name": "Granite Accounting"}, {"id": 13, "name": "Acme Dental Group"}])
    data.users = halo.make_users(10_000, 12, "Granite Accounting", "graniteacct.example", PEOPLE) + \
        halo.make_users(40, 13, "Acme Dental Group", "acmedental.example", ["maria.alvarez"], start_id=50_000)
    with halo.HaloStandIn(HALO_ID, HALO_SECRET, "harborview", data) as s:
        for k, v in s.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        yield s


CASES = {
    "autotask": ("174", "Autotask", lambda s: at.contacts_csv([c for c in s.data.contacts if c["companyID"] == 174])),
    "halopsa": ("12", "HaloPSA", lambda s: halo.users_csv([u for u in s.data.users if u["client_id"] == 12])),
}


def secrets_of(source: str, server: Any) -> list[str]:
    return [AT_SECRET, AT_CODE] if source == "autotask" else [HALO_SECRET, *server.issued()]


@pytest.mark.parametrize("source", ["autotask", "halopsa"])
def test_10000_contacts_sync_to_the_same_roster_as_the_csv_export(
        source: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = request.getfixturevalue(source)
    key, label, export = CASES[source]
    if source == "autotask":
        server.faults = at.Faults(throttle={("Contacts", 11)})
    else:
        server.faults = halo.Faults(throttle={("Users", 11)}, expire=("Users", 15))
    live = with_companies(tmp_path / "live", {"Granite Accounting": key})
    before = live.read_bytes()
    code, out, err = run(capsys, "sync", source, "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE)
    assert code == 0, err
    assert live.read_bytes() == before  # a dry run writes nothing
    assert f"Granite Accounting (PSACompanyID {key}): 10000 users in {label}, effective {EFFECTIVE}:" in out
    lines = out.splitlines()
    adds = [ln for ln in lines if ln.startswith("  add    ")]
    assert len(adds) == 10_000 - len(PEOPLE)
    assert "  end    wes.hall@graniteacct.example: End 2026-11-15 (not in the import)" in lines
    assert "  update old.mailbox@graniteacct.example: Status 'Disabled' → 'Active'" in lines
    assert "Dry run: nothing written" in out
    dry = out

    code, out, err = run(capsys, "sync", source, "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--apply")
    assert code == 0, err
    assert "1 of 1 clients synced: applied" in out

    csv = tmp_path / "contacts.csv"
    csv.write_text(export(server), encoding="utf-8")
    filed = with_companies(tmp_path / "file", {"Granite Accounting": key})
    code, _, ferr = run(capsys, "import", source, csv, "--workbook", filed, "--client", "Granite Accounting",
                        "--effective", EFFECTIVE, "--apply")
    assert code == 0, ferr
    assert table(live, "Roster") == table(filed, "Roster")
    roster = [r for r in table(live, "Roster") if r["Client"] == "Granite Accounting"]
    assert sum(r["Status"] == "Disabled" for r in roster if not r["End"]) >= 199  # inactive contacts kept, disabled
    strip = [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")} for r in table(live, "ChangeLog")]
    assert strip == [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")}
                     for r in table(filed, "ChangeLog")]
    assert {r["Source"] for r in table(live, "ChangeLog") if r["Action"]} == {label}

    code, out, _ = run(capsys, "sync", source, "--workbook", live, "--client", "Granite Accounting",
                       "--effective", EFFECTIVE, "--apply")
    assert code == 0 and "no changes: the Roster already matches" in out and "applied 0 changes" in out
    scan(secrets_of(source, server), tmp_path, dry, out, err, caplog.text)


FAILURES = [
    ("autotask", "bad secret", {"env": {"PERSEAT_AUTOTASK_SECRET": "not-the-secret-9"}},
     "Autotask refused the credentials"),
    ("autotask", "zone not found", {"env": {"PERSEAT_AUTOTASK_USERNAME": "nobody@harborview-it.example"}},
     "the zone of API user nobody@harborview-it.example was not found"),
    ("autotask", "unknown company", {"key": "999"}, "Autotask has no company with id 999"),
    ("autotask", "permission as HTTP 500", {"deny": "Contacts"}, "the API user lacks a permission"),
    ("autotask", "malformed JSON", {"faults": at.Faults(malformed=("Contacts", 5))}, "that is not valid JSON"),
    ("autotask", "part-way failure", {"faults": at.Faults(broken=("Contacts", 12)),
                                      "env": {"PERSEAT_HTTP_MAX_WAIT": "1"}}, "kept failing the contacts of company"),
    ("autotask", "timeout", {"faults": at.Faults(slow=("Contacts", 3), slow_seconds=3),
                             "env": {"PERSEAT_HTTP_TIMEOUT": "0.3", "PERSEAT_HTTP_MAX_WAIT": "0.5"}},
     "did not answer the contacts of company"),
    ("autotask", "budget", {"used": 8_999}, "API budget is nearly used"),
    ("halopsa", "bad secret", {"env": {"PERSEAT_HALO_CLIENT_SECRET": "not-the-secret-9"}},
     "signing in failed — bad credentials"),
    ("halopsa", "unknown client", {"key": "999"}, "HaloPSA has no client with id 999"),
    ("halopsa", "no permission", {"deny": "Users"}, "the API application lacks a permission"),
    ("halopsa", "malformed JSON", {"faults": halo.Faults(malformed=("Users", 5))}, "that is not valid JSON"),
    ("halopsa", "part-way failure", {"faults": halo.Faults(broken=("Users", 12)),
                                     "env": {"PERSEAT_HTTP_MAX_WAIT": "1"}}, "kept failing the users of client"),
    ("halopsa", "timeout", {"faults": halo.Faults(slow=("Users", 3), slow_seconds=3),
                            "env": {"PERSEAT_HTTP_TIMEOUT": "0.3", "PERSEAT_HTTP_MAX_WAIT": "0.5"}},
     "did not answer the users of client"),
]


@pytest.mark.parametrize(("source", "case", "how", "message"), FAILURES, ids=[f"{f[0]}-{f[1]}" for f in FAILURES])
def test_each_failure_gives_its_message_and_changes_nothing(
        source: str, case: str, how: dict[str, Any], message: str, request: pytest.FixtureRequest, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = request.getfixturevalue(source)
    for k, v in how.get("env", {}).items():
        monkeypatch.setenv(k, v)
    if "deny" in how:
        server.permissions.discard(how["deny"])
    if "faults" in how:
        server.faults = how["faults"]
    if "used" in how:
        server.used = how["used"]
    book = with_companies(tmp_path, {"Granite Accounting": how.get("key", CASES[source][0])})
    before = book.read_bytes()
    code, out, err = run(capsys, "sync", source, "--workbook", book, "--client", "Granite Accounting", "--apply",
                         "--effective", EFFECTIVE)
    assert code == 1
    assert message in err and "nothing was changed for Granite Accounting" in err, err
    assert "Traceback" not in err and "0 of 1 clients synced" in out
    assert book.read_bytes() == before
    scan([*secrets_of(source, server), "not-the-secret-9"], tmp_path, out, err, caplog.text)


@pytest.mark.parametrize("source", ["autotask", "halopsa"])
def test_all_syncs_each_client_on_its_own(source: str, request: pytest.FixtureRequest, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    request.getfixturevalue(source)
    acme = "175" if source == "autotask" else "13"
    book = with_companies(tmp_path, {"Granite Accounting": "999", "Acme Dental Group": acme})
    acme_before = len([r for r in table(book, "Roster") if r["Client"] == "Acme Dental Group"])
    code, out, err = run(capsys, "sync", source, "--workbook", book, "--all", "--apply", "--force", "--effective",
                         EFFECTIVE)  # --force: Acme's 40 stand-in contacts end most of its template Roster
    assert code == 1
    assert "perseat: Granite Accounting:" in err and "no company with id 999" in err.replace("client", "company")
    assert "1 of 2 clients synced" in out
    roster = table(book, "Roster")
    assert sum(r["Client"] == "Acme Dental Group" for r in roster) == acme_before + 40 - 1
    assert {r["Client"] for r in table(book, "ChangeLog") if r["Action"]} == {"Acme Dental Group"}


def test_connect_says_what_works(autotask: at.AutotaskStandIn, halopsa: halo.HaloStandIn, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    book = with_companies(tmp_path, {"Granite Accounting": "174", "Acme Dental Group": "999"})
    code, out, err = run(capsys, "connect", "autotask", "--workbook", book)
    assert code == 1
    assert f"Autotask: credentials found (API user {AT_USER}; the secret is not shown)." in out
    assert "Granite Accounting (PSACompanyID 174):\n  ok      zone found" in out
    assert "  ok      can read contacts" in out
    assert "Acme Dental Group (PSACompanyID 999):" in out and "FAILED  Autotask has no company with id 999" in out
    code, out2, _ = run(capsys, "connect", "halopsa", "--tenant", "12")
    assert code == 0 and f"HaloPSA: credentials found (client id {HALO_ID}; the secret is not shown)." in out2
    assert "  ok      client 12 is Granite Accounting" in out2
    scan([AT_SECRET, AT_CODE, HALO_SECRET, *halopsa.issued()], tmp_path, out, err, out2)
