"""The ConnectWise PSA client against the stand-in: discovery, paging, filters, writes, and every failure in words."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from standins.connectwise import (
    ConnectWiseStandIn,
    Faults,
    addition,
    agreement,
    company,
    conditions,
    make_contacts,
    make_time_entries,
)

from perseat_addin.model import Period
from perseat_addin.sources.connectwise import ConnectWiseClient, ConnectWiseConfig, api_base
from perseat_addin.sources.http import Policy, SourceError
from perseat_addin.sources.writer import PushTarget

COMPANY, PUBLIC, PRIVATE, CLIENT_ID = "harborview", "pUbLiCkEy1234567", "Pr1vate.Key-Value_9xz", \
    "4f1c2e3d-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
FAST = Policy(timeout=5, backoff=0.01)


@pytest.fixture
def server() -> Iterator[ConnectWiseStandIn]:
    with ConnectWiseStandIn(COMPANY, PUBLIC, PRIVATE, CLIENT_ID) as cw:
        cw.companies[250] = company(250, "Granite Accounting", "Granite")
        cw.contacts = make_contacts(2500, 250, "Granite Accounting", "graniteacct.example") + \
            make_contacts(30, 251, "Acme Dental Group", "acmedental.example", start_id=90_000)
        cw.time_entries = make_time_entries(250, "Granite Accounting", "2026-11", 40)
        cw.agreements[7] = agreement(7, 250, "Granite managed services")
        cw.additions[7] = [addition(101, 7, "STANDARD", 6), addition(102, 7, "BACKUP", 9),
                           addition(103, 7, "STANDARD", 2, cancelledDate="2025-06-30T00:00:00Z",
                                    agreementStatus="Cancelled")]
        yield cw


def client(cw: ConnectWiseStandIn, policy: Policy = FAST, **env: str) -> ConnectWiseClient:
    return ConnectWiseClient(ConnectWiseConfig.load(env={**cw.env(), **env}), policy=policy)


def api_calls(cw: ConnectWiseStandIn, path: str) -> list[dict[str, str]]:
    return [s.query for s in cw.log if s.path.endswith(path)]


def no_secret_in(cw: ConnectWiseStandIn, *texts: str) -> None:
    secrets = [PRIVATE, cw.auth_header(), cw.auth_header().removeprefix("Basic ")]
    for text in texts:
        for s in secrets:
            assert s not in text


def test_contacts_across_pages_with_throttling_and_a_burst(server: ConnectWiseStandIn) -> None:
    server.contacts = make_contacts(10_000, 250, "Granite Accounting", "graniteacct.example")
    server.faults = Faults(throttle={("company/contacts", 4)}, burst={("company/contacts", 7): 2})
    with client(server) as c:
        got = c.fetch("250")
        waited = c.http.waited
    assert len(got.rows) == 10_000 and got.source == "ConnectWise PSA"
    assert waited >= 1  # Retry-After: 1 honoured
    calls = [s for s in server.log if s.path.endswith("/company/contacts")]
    assert [s.status for s in calls].count(429) == 1 and [s.status for s in calls].count(503) == 2
    assert [s.query["page"] for s in calls if s.status == 200] == [str(n) for n in range(1, 11)]
    assert all(s.query["pageSize"] == "1000" and s.query["conditions"] == "company/id=250" for s in calls)
    assert all(s.headers["authorization"] == server.auth_header() and s.headers["clientid"] == CLIENT_ID
               for s in server.log if "/apis/3.0/" in s.path)
    assert sum(s.path == f"/login/companyinfo/{COMPANY}" for s in server.log) == 1  # discovered once
    by = {u.user_id: u for u in got.rows}
    assert by["contact00007@graniteacct.example"].status == "Disabled"
    assert by["contact00011@graniteacct.example"].reason == "not billable: contact type 'No Longer Employed'"
    assert "old.contact00013@graniteacct.example" not in by  # the default e-mail, not the first
    assert by["contact00013@graniteacct.example"].billable_hint


def test_api_address() -> None:
    assert api_base("na.myconnectwise.net", "v2025_1/") == "https://api-na.myconnectwise.net/v2025_1/apis/3.0"
    assert api_base("cw.example.com", "v4_6_release/") == "https://cw.example.com/v4_6_release/apis/3.0"


def test_url_override_skips_discovery_and_a_moved_codebase_is_found_again(server: ConnectWiseStandIn) -> None:
    with client(server, PERSEAT_CW_URL=server.api, PERSEAT_CW_SITE="") as c:
        assert len(c.contacts(251)) == 30
    assert not any(s.path.startswith("/login/") for s in server.log)
    with client(server) as c:
        assert len(c.contacts(251)) == 30
        server.codebase = "v2025_2/"  # an upgrade moved the API
        assert len(c.contacts(251)) == 30
    assert sum(s.path.startswith("/login/") for s in server.log) == 2


def test_time_entries_of_the_period(server: ConnectWiseStandIn) -> None:
    with client(server) as c:
        usage = c.fetch_usage("250", "2026-11", "Granite Accounting")
    [q] = api_calls(server, "/time/entries")
    assert q["conditions"] == ("company/id=250 and timeStart >= [2026-11-01T00:00:00Z] and timeStart < "
                               "[2026-12-01T00:00:00Z]")
    assert len(usage.rows) == 40 and usage.source == "ConnectWise PSA time entries"
    assert {u.date.month for u in usage.rows} == {11}
    flags = {u.ref: u.billable for u in usage.rows}
    entries = {str(e["id"]): e["billableOption"] for e in server.time_entries}
    assert all(flags[r] == (entries[r] in ("Billable", "NoDefault")) for r in flags)
    charge = {str(e["id"]) for e in server.time_entries if e["chargeToType"] == "ChargeCode"}
    assert all(u.ticket == "" and u.tickets == 0 for u in usage.rows if u.ref in charge)
    assert sum(u.tickets for u in usage.rows) == len({u.ticket for u in usage.rows if u.ticket})  # once each


FAILURES = [
    ("bad private key", {"PERSEAT_CW_PRIVATE_KEY": "wrong-key-123"}, "250",
     "refused the API keys for company 250 (company/companies) (HTTP 401: Authentication failed"),
    ("bad clientId", {"PERSEAT_CW_CLIENT_ID": "not-the-client"}, "250", "refused the clientId"),
    ("unknown login company", {"PERSEAT_CW_COMPANY": "harborvue"}, "250",
     "does not know the company id 'harborvue'"),
    ("unknown PSACompanyID", {}, "999", "has no company with id 999 (HTTP 404): check the client's PSACompanyID"),
    ("not a record id", {}, "Granite", "PSACompanyID 'Granite' is not a ConnectWise record id"),
]


@pytest.mark.parametrize(("case", "env", "key", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_in_words(server: ConnectWiseStandIn, case: str, env: dict[str, str], key: str,
                           message: str) -> None:
    with client(server, **env) as c, pytest.raises(SourceError) as exc:
        c.fetch(key)
    assert message in str(exc.value)
    no_secret_in(server, str(exc.value), repr(exc.value))


def test_missing_permission(server: ConnectWiseStandIn) -> None:
    server.permissions = frozenset({"companies", "system"})
    with client(server) as c, pytest.raises(SourceError) as exc:
        c.fetch("250")
    assert "denied the contacts of company 250 (company/contacts) (HTTP 403" in str(exc.value)
    assert "lacks permission for Companies ▸ Contacts" in str(exc.value)


def test_malformed_and_broken_pages(server: ConnectWiseStandIn) -> None:
    server.faults = Faults(malformed=("company/contacts", 2))
    with client(server) as c, pytest.raises(SourceError) as exc:
        c.fetch("250")
    assert "that is not valid JSON" in str(exc.value)
    server.faults = Faults(broken=("company/contacts", 3))
    with client(server, policy=Policy(timeout=5, backoff=0.01, attempts=3)) as c, pytest.raises(SourceError) as exc:
        c.fetch("250")
    assert "kept failing the contacts of company 250 (company/contacts) (page 3)" in str(exc.value)


def test_push_reads_matches_writes_and_reads_back(server: ConnectWiseStandIn) -> None:
    target = PushTarget("Granite Accounting", "250", "7", "Standard", "Standard", 8, "2026-11",
                        Period.parse("2026-12").first)
    with client(server) as c:
        record = c.current(target)
        assert (record.id, record.quantity) == ("agreement 7 addition 101", 6)  # the cancelled 103 is not matched
        back = c.set(record, 8)
        assert back.quantity == 8
        with pytest.raises(SourceError, match="has no active addition for plan 'Premium'"):
            c.current(PushTarget("Granite Accounting", "250", "7", "Premium", "Premium", 1, "2026-11",
                                 target.effective))
        with pytest.raises(SourceError, match="belongs to company 250, not the client's PSACompanyID 251"):
            c.current(PushTarget("Acme Dental Group", "251", "7", "Standard", "Standard", 1, "2026-11",
                                 target.effective))
        server.faults = Faults(patch_drift=True)
        with pytest.raises(SourceError, match="reads back 8"):
            c.set(record, 9)
    [patch] = [s for s in server.log if s.method == "PATCH"][:1]
    assert json.loads(patch.body) == [{"op": "replace", "path": "quantity", "value": 8}]
    assert patch.path.endswith("/finance/agreements/7/additions/101")


def test_the_stand_in_checks_patch_documents(server: ConnectWiseStandIn) -> None:
    url = f"{server.api}/finance/agreements/7/additions/101"
    headers = {"Authorization": server.auth_header(), "clientId": CLIENT_ID}
    for body, said in (({"quantity": 3}, "array of operations"),
                       ([{"op": "replace", "path": "quantityy", "value": 3}], "The field quantityy is not valid"),
                       ([{"op": "move", "path": "quantity", "value": 3}], "unknown op"),
                       ([{"op": "replace", "path": "quantity", "value": "3"}], "must be a number")):
        r = httpx.patch(url, json=body, headers=headers)
        assert r.status_code == 400 and said in r.text
    assert httpx.patch(url, json=[{"op": "replace", "path": "quantity", "value": 3}],
                       headers={"Authorization": server.auth_header()}).status_code == 401


def test_conditions_subset() -> None:
    row = {"id": 5, "company": {"id": 250, "name": "Granite"}, "timeStart": "2026-11-03T08:00:00Z"}
    assert conditions('company/id=250 and company/name="Granite"')(row)
    assert conditions("id in (4,5,6) and timeStart >= [2026-11-01T00:00:00Z]")(row)
    assert not conditions("timeStart < [2026-11-01T00:00:00Z]")(row)
    with pytest.raises(ValueError):
        conditions("company/id=Granite")


def test_connect_checks(server: ConnectWiseStandIn) -> None:
    server.permissions = frozenset({"companies", "contacts", "system", "agreements"})
    with client(server) as c:
        checks = c.check("250", "7")
    text = "\n".join(map(str, checks))
    assert f"ok      site {server.site} knows company id 'harborview' (codebase v2025_1" in text
    assert "ok      the API keys and clientId were accepted (ConnectWise PSA v2025.1.12345)" in text
    assert "FAILED  Time & Expense ▸ Time Entry:" in text
    assert "ok      company 250 is Granite Accounting" in text
    assert "ok      agreement 7 (Granite managed services) has 3 additions: BACKUP, STANDARD" in text
