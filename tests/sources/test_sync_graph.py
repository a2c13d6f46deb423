"""``perseat sync graph`` and ``perseat connect graph`` on a copy of the template, against the Graph stand-in.

The acceptance of issue 13 for Graph: a 2,500-user tenant across pages, with a 429 in the middle,
syncs to the same Roster as the admin-center CSV export of the same users; each failure gives its
message and changes nothing; ``--all`` with one failing tenant still syncs the others; no secret
appears in any file, output or log.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standins.graph import Faults, GraphStandIn, Tenant, admin_center_csv, make_users

from perseat_addin.cli import main
from perseat_addin.tables import TableEdit
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.workbook.reader import WorkbookFile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
CLIENT_ID = "7d3c5a1e-0b1f-4c2a-9e8d-2f6b4a1c3e5d"
SECRET = "Zq8~graph.Secret-Value_42"
GRANITE_TENANT = "52eaad04-13a2-4a2f-9ce8-93a294fadf36"
GRANITE_PEOPLE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "carla.mendes", "jin.woo",
                  "backup.agent", "old.mailbox"]  # wes.hall left; the guest auditor is not in the tenant
EFFECTIVE = "2026-11-16"


def granite(n: int = 2500, **kw: Any) -> Tenant:
    users = make_users(n, "graniteacct.example", GRANITE_PEOPLE)
    return Tenant(GRANITE_TENANT, "graniteacct.example", users, **kw)


def acme(**kw: Any) -> Tenant:
    return Tenant("0b6f3c2d-8e4a-4f1b-a9c7-3d2e1f0a9b8c", "acmedental.example",
                  make_users(60, "acmedental.example", ["maria.alvarez"]), **kw)


def with_tenants(folder: Path, tenants: dict[str, str], name: str = "billing.xlsm") -> Path:
    """A copy of the template whose Clients have a TenantID column, filled for ``tenants`` (client → id)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copyfile(TEMPLATE, folder / name))
    with FileBook(path, "test") as book:
        clients = book.rows("Clients")
        assert clients is not None
        col = len(clients.headers)
        cells = tuple((i, col, tenants[row[0]]) for i, row in enumerate(clients.rows) if row[0] in tenants)
        book.write([TableEdit("Clients", cells, add_columns=("TenantID",))])
    return path


def table(path: Path, name: str) -> list[dict[str, Any]]:
    t = WorkbookFile(path).table(name)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphStandIn]:
    with GraphStandIn(CLIENT_ID, SECRET) as g:
        for k, v in g.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        yield g


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def scan_for_secrets(g: GraphStandIn, folder: Path, *texts: str) -> None:
    """No secret (the client secret, any issued token) in ``texts`` nor in any file under ``folder``, read as bytes
    and, for a workbook, every part inflated."""
    secrets = [SECRET, *g.issued()]
    blobs = list(texts)
    for f in folder.rglob("*"):
        if not f.is_file():
            continue
        data = f.read_bytes()
        blobs.append(data.decode("latin-1"))
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as z:
                blobs += [z.read(n).decode("latin-1") for n in z.namelist()]
    for blob in blobs:
        for s in secrets:
            assert s not in blob


def test_2500_users_sync_to_the_same_roster_as_the_admin_center_export(
        server: GraphStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.tenants.append(granite(faults=Faults(throttle={9})))
    live = with_tenants(tmp_path / "live", {"Granite Accounting": GRANITE_TENANT})
    before = live.read_bytes()

    code, out, err = run(capsys, "sync", "graph", "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE)
    assert code == 0, err
    assert live.read_bytes() == before  # a dry run writes nothing
    assert f"Granite Accounting (TenantID {GRANITE_TENANT}): 2500 users in Microsoft Graph, effective {EFFECTIVE}:" \
        in out
    lines = out.splitlines()
    adds = [ln for ln in lines if ln.startswith("  add    ")]
    assert len(adds) == 2500 - len(GRANITE_PEOPLE)  # every change listed
    assert "  end    wes.hall@graniteacct.example: End 2026-11-15 (not in the import)" in lines
    assert "  end    auditor.guest@graniteacct.example: End 2026-11-15 (not in the import)" in lines
    assert "  Drift: Granite Accounting: licensed in source 2151, billable in roster" in out
    assert "1 of 1 clients synced: 2494 changes. Dry run: nothing written. Add --apply to write them." in out
    assert "  update old.mailbox@graniteacct.example: Status 'Disabled' → 'Active'" in lines
    assert "Granite Accounting: reading Microsoft Graph (TenantID" in err
    dry = out

    code, out, err = run(capsys, "sync", "graph", "--workbook", live, "--client", "Granite Accounting",
                         "--effective", EFFECTIVE, "--apply")
    assert code == 0, err
    assert len(server.issued()) == 2  # one token per run
    assert f"applied 2494 changes to {live}" in out

    # the same users, exported from the admin center and imported from the file
    export = tmp_path / "users.csv"
    export.write_text(admin_center_csv(server.tenants[0].users), encoding="utf-8-sig")
    filed = with_tenants(tmp_path / "file", {"Granite Accounting": GRANITE_TENANT})
    code, _, ferr = run(capsys, "import", "m365", export, "--workbook", filed, "--client", "Granite Accounting",
                           "--effective", EFFECTIVE, "--apply")
    assert code == 0, ferr
    assert table(live, "Roster") == table(filed, "Roster")
    assert len(table(live, "Roster")) == 75 + len(adds)
    strip = [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")} for r in table(live, "ChangeLog")]
    assert strip == [{k: v for k, v in r.items() if k not in ("Timestamp", "Source")}
                     for r in table(filed, "ChangeLog")]
    assert {r["Source"] for r in table(live, "ChangeLog") if r["Action"]} == {"Microsoft Graph"}

    # a second sync changes nothing
    code, out, _ = run(capsys, "sync", "graph", "--workbook", live, "--client", "Granite Accounting",
                       "--effective", EFFECTIVE, "--apply")
    assert code == 0 and "no changes: the Roster already matches" in out and "applied 0 changes" in out
    scan_for_secrets(server, tmp_path, dry, out, err, caplog.text)


FAILURES = [
    ("bad secret", {"env": {"PERSEAT_GRAPH_CLIENT_SECRET": "not-the-secret-9"}},
     "bad credentials — the client id or secret was refused (invalid_client"),
    ("tenant not found", {"tenant_id": "granite-typo.example"}, "tenant 'granite-typo.example' was not found"),
    ("no permission", {"permissions": frozenset({"AuditLog.Read.All"})},
     "the app needs the application permission User.Read.All"),
    ("malformed JSON", {"faults": Faults(malformed=5)}, "that is not valid JSON"),
    ("part-way failure", {"faults": Faults(broken=12), "env": {"PERSEAT_HTTP_MAX_WAIT": "1"}},
     "kept failing the users of tenant"),
    ("timeout", {"faults": Faults(slow=3, slow_seconds=3), "env": {"PERSEAT_HTTP_TIMEOUT": "0.3",
                                                                   "PERSEAT_HTTP_MAX_WAIT": "0.5"}},
     "did not answer the users of tenant"),
]


@pytest.mark.parametrize(("case", "how", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_gives_its_message_and_changes_nothing(
        server: GraphStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, case: str, how: dict[str, Any], message: str) -> None:
    caplog.set_level(logging.DEBUG)
    how = dict(how)
    for k, v in how.pop("env", {}).items():
        monkeypatch.setenv(k, v)
    tenant_id = how.pop("tenant_id", GRANITE_TENANT)
    server.tenants.append(granite(**how))
    book = with_tenants(tmp_path, {"Granite Accounting": tenant_id})
    before = book.read_bytes()
    code, out, err = run(capsys, "sync", "graph", "--workbook", book, "--client", "Granite Accounting", "--apply",
                         "--effective", EFFECTIVE)
    assert code == 1
    assert message in err and "nothing was changed for Granite Accounting" in err, err
    assert "Traceback" not in err and "0 of 1 clients synced" in out
    assert book.read_bytes() == before
    scan_for_secrets(server, tmp_path, out, err, caplog.text)
    assert "not-the-secret-9" not in out + err + caplog.text


def test_all_syncs_each_client_on_its_own(server: GraphStandIn, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    server.tenants += [granite(300, faults=Faults(throttle={2})), acme(permissions=frozenset())]
    book = with_tenants(tmp_path, {"Granite Accounting": GRANITE_TENANT, "Acme Dental Group": "acmedental.example"})
    acme_before = [r for r in table(book, "Roster") if r["Client"] == "Acme Dental Group"]
    code, out, err = run(capsys, "sync", "graph", "--workbook", book, "--all", "--apply", "--effective", EFFECTIVE)
    assert code == 1
    assert "perseat: Acme Dental Group: Microsoft Graph denied the users of tenant acmedental.example" in err
    assert "nothing was changed for Acme Dental Group" in err
    assert "1 of 2 clients synced" in out and "6 without a TenantID or Inactive left out" in out
    roster = table(book, "Roster")
    assert [r for r in roster if r["Client"] == "Acme Dental Group"] == acme_before
    assert sum(r["Client"] == "Granite Accounting" for r in roster) == 12 + 300 - len(GRANITE_PEOPLE)
    log = table(book, "ChangeLog")
    assert {r["Client"] for r in log if r["Action"]} == {"Granite Accounting"}


def test_json_output(server: GraphStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    server.tenants.append(granite(20))
    book = with_tenants(tmp_path, {"Granite Accounting": GRANITE_TENANT})
    code, out, _ = run(capsys, "sync", "graph", "--workbook", book, "--client", "granite accounting", "--json",
                       "--effective", EFFECTIVE)
    assert code == 0
    got = json.loads(out)
    [c] = got["clients"]
    assert c["ok"] and c["users_in_source"] == 20 and c["drift"]["client"] == "Granite Accounting"
    assert {ch["action"] for ch in c["changes"]} == {"add", "end", "update"} and got["applied"] is False


def test_usage_errors(server: GraphStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = with_tenants(tmp_path, {})
    code, _, err = run(capsys, "sync", "graph", "--workbook", book)
    assert code == 2 and "name the client to sync with --client NAME, or sync every client with --all" in err
    code, _, err = run(capsys, "sync", "nowhere", "--workbook", book, "--all")
    assert code == 2 and 'no live source called "nowhere"' in err
    code, _, err = run(capsys, "sync", "graph", "--workbook", book, "--client", "Granite Accounting")
    assert code == 1 and "Granite Accounting has no TenantID in Clients" in err
    code, _, err = run(capsys, "sync", "graph", "--workbook", TEMPLATE, "--all")
    assert code == 1 and "the Clients table has no TenantID column" in err


def test_missing_credentials_say_where_to_put_them(server: GraphStandIn, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSEAT_GRAPH_CLIENT_SECRET")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        book = with_tenants(tmp_path, {"Granite Accounting": GRANITE_TENANT})
        code, _, err = run(capsys, "sync", "graph", "--workbook", book, "--all")
    finally:
        keyring.set_keyring(before)
    assert code == 1
    assert "missing PERSEAT_GRAPH_CLIENT_SECRET (the value of one of the app's client secrets)" in err
    assert "no OS keyring is available on this machine" in err


def test_connect_says_what_works(server: GraphStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.tenants += [granite(5, premium=False), acme(consented=False)]
    book = with_tenants(tmp_path, {"Granite Accounting": GRANITE_TENANT, "Acme Dental Group": "acmedental.example"})
    code, out, err = run(capsys, "connect", "graph", "--workbook", book)
    assert code == 1
    assert f"Microsoft Graph: credentials found (client id {CLIENT_ID}; the secret is not shown)." in out
    assert f"Granite Accounting (TenantID {GRANITE_TENANT}):\n  ok      signed in" in out
    assert "  ok      User.Read.All present: can read the users" in out
    assert "  missing AuditLog.Read.All not granted or the tenant has no Entra ID P1 licence (optional)" in out
    assert "Acme Dental Group (TenantID acmedental.example):\n  FAILED  Microsoft Graph: signing in to tenant " \
           "acmedental.example failed: the app (client id" in out
    assert "1 of 2 tenants cannot be synced yet" in err
    code, out, _ = run(capsys, "connect", "graph", "--tenant", GRANITE_TENANT)
    assert code == 0 and "ok      User.Read.All present" in out
    scan_for_secrets(server, tmp_path, out, err)


def test_the_real_command_keeps_secrets_out_of_its_output(server: GraphStandIn, tmp_path: Path) -> None:
    """The installed command in its own process: stdout, stderr and the workbook hold no secret."""
    server.tenants.append(granite(400, faults=Faults(throttle={2}, expire=3)))
    book = with_tenants(tmp_path, {"Granite Accounting": GRANITE_TENANT})
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "sync", "graph", "--workbook", str(book),
                           "--all", "--apply", "--effective", EFFECTIVE], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 clients synced" in proc.stdout
    assert len(server.issued()) == 2  # the token expired mid-run and was renewed
    scan_for_secrets(server, tmp_path, proc.stdout, proc.stderr)
