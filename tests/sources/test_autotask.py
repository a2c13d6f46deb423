"""The Autotask client against the stand-in: zone, paging, filters, usage, contract units, budget, failures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from standins.autotask import AutotaskStandIn, Data, Faults, make_contacts

from perseat_addin.model import Period
from perseat_addin.sources.autotask import AutotaskClient, AutotaskConfig, Budget
from perseat_addin.sources.http import Policy, SourceError

USER = "perseat-api@harborview-it.example"
SECRET = "At$ecret-Value_9912"
CODE = "TRACKING-ID-4F2A9C7E1B"
FAST = Policy(timeout=5, backoff=0.01)
GRANITE = 174


def data() -> Data:
    d = Data(companies=[{"id": GRANITE, "companyName": "Granite Accounting", "companyNumber": "289843",
                         "companyType": 1, "isActive": True},
                        {"id": 175, "companyName": "Acme Dental Group", "companyType": 1, "isActive": True}])
    d.contacts = make_contacts(1200, GRANITE, "graniteacct.example") + \
        make_contacts(30, 175, "acmedental.example", start_id=31_000_000)
    d.tickets = [{"id": 100 + i, "ticketNumber": f"T20261101.{i:04d}", "companyID": GRANITE if i < 8 else 175,
                  "contactID": 29_000_000 + i, "contractID": 29684183, "createDate": "2026-10-20T10:00:00.000Z",
                  "status": 1, "queueID": 1} for i in range(10)]
    d.tickets.append({"id": 120, "ticketNumber": "T20261210.0001", "companyID": GRANITE, "contactID": None,
                      "contractID": None, "createDate": "2026-12-10T10:00:00.000Z", "status": 1, "queueID": 1})
    entries = []
    for n, (ticket, day, hours, nonbill) in enumerate([
            (100, "2026-11-02", 1.5, False), (100, "2026-11-03", 0.5, True), (101, "2026-11-05", 2.0, False),
            (102, "2026-10-31", 3.0, False), (103, "2026-11-30", 0.25, True), (108, "2026-11-10", 4.0, False),
            (104, "2026-12-01", 1.0, False)]):
        entries.append({"id": 5000 + n, "ticketID": ticket, "taskID": None, "dateWorked": f"{day}T00:00:00.00Z",
                        "hoursWorked": hours, "hoursToBill": 0 if nonbill else hours, "isNonBillable": nonbill,
                        "billingCodeID": 3, "resourceID": 10, "contractID": 29684183})
    d.time_entries = entries
    d.contract_services = [{"id": 5501, "contractID": 29684183, "serviceID": 31, "unitPrice": 30.0, "unitCost": 10.0}]
    d.units = [{"id": 900001, "contractID": 29684183, "contractServiceID": 5501, "serviceID": 31,
                "startDate": "2026-11-01T00:00:00Z", "endDate": "2026-11-30T23:59:59Z", "units": 10, "price": 300.0},
               {"id": 900002, "contractID": 29684183, "contractServiceID": 5501, "serviceID": 31,
                "startDate": "2026-12-01T00:00:00Z", "endDate": "2026-12-31T23:59:59Z", "units": 10, "price": 300.0}]
    return d


@pytest.fixture
def server() -> Iterator[AutotaskStandIn]:
    with AutotaskStandIn(USER, SECRET, CODE, data()) as at:
        yield at


def client(at: AutotaskStandIn, budget: Budget | None = None, sleep: Any = None, **env: str) -> AutotaskClient:
    return AutotaskClient(AutotaskConfig.load(env={**at.env(), **env}), policy=FAST, budget=budget, sleep=sleep)


def no_secret_in(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and CODE not in text


def test_zone_headers_filters_and_paging(server: AutotaskStandIn) -> None:
    server.faults = Faults(throttle={("Contacts", 2)})
    with client(server) as c:
        got = c.fetch(str(GRANITE))
    assert len(got.rows) == 1200 and got.ok and got.source == "Autotask"
    assert sum(u.status == "Disabled" for u in got.rows) == 24
    zone = server.log[0]
    assert zone.path == "/atservicesrest/v1.0/zoneInformation" and zone.query == {"user": USER}
    contacts = server.calls("Contacts")
    assert [s.status for s in contacts] == [200, 429, 200, 200]  # 3 pages of 500, one 429 honoured
    first = contacts[0]
    assert first.method == "POST" and first.body["MaxRecords"] == 500 and "id" in first.body["IncludeFields"]
    assert first.body["filter"] == [{"op": "eq", "field": "companyID", "value": GRANITE}]
    assert all(s.method == "GET" and s.path.endswith("/Contacts/query/next") for s in contacts[1:])
    assert all(s.headers["username"] == USER and s.headers["apiintegrationcode"] == CODE for s in contacts)
    assert "impersonationresourceid" not in contacts[0].headers


def test_usage_for_the_period_with_billable_flags(server: AutotaskStandIn) -> None:
    with client(server) as c:
        got = c.fetch_usage(str(GRANITE), Period(2026, 11), "Granite Accounting")
    rows = sorted(got.rows, key=lambda r: r.ref)
    assert [(r.ref, r.date.isoformat(), r.hours, r.billable, r.ticket) for r in rows] == [
        ("5000", "2026-11-02", Decimal("1.5"), True, "100"), ("5001", "2026-11-03", Decimal("0.5"), False, "100"),
        ("5002", "2026-11-05", Decimal("2"), True, "101"), ("5004", "2026-11-30", Decimal("0.25"), False, "103")]
    assert {r.client for r in rows} == {"Granite Accounting"} and got.source == "Autotask time entries"
    assert [r.tickets for r in sorted(rows, key=lambda r: r.date)] == [1, 0, 1, 1]  # a ticket counts once
    assert rows[0].user == "contact00000@graniteacct.example"
    with client(server) as c:  # a ticket already counted in the workbook's Usage is not counted again
        again = c.fetch_usage(str(GRANITE), "2026-11", "Granite Accounting",
                              known_tickets={"Autotask time entries|100"})
    assert [r.tickets for r in sorted(again.rows, key=lambda r: r.date)] == [0, 0, 1, 1]
    te = server.calls("TimeEntries")[0].body["filter"]
    assert te[0] == {"op": "in", "field": "ticketID", "value": list(range(100, 108))}  # Granite's tickets, not 120
    assert te[1:] == [{"op": "gte", "field": "dateWorked", "value": "2026-11-01T00:00:00Z"},
                      {"op": "lte", "field": "dateWorked", "value": "2026-11-30T23:59:59Z"}]


def test_units_adjust_by_the_difference_from_the_effective_date(server: AutotaskStandIn) -> None:
    nov17 = dt.date(2026, 11, 17)
    with client(server, PERSEAT_AUTOTASK_IMPERSONATION_ID="29682885") as c:
        now = c.current_units(29684183, 31, nov17)
        assert (now.record_id, now.units) == (900001, 10)
        done = c.set_units(29684183, 31, 14, nov17)
        assert done.written and (done.old, done.new) == (10, 14)
        [adj] = server.data.adjustments
        assert adj["unitChange"] == 4 and adj["effectiveDate"] == "2026-11-17T00:00:00Z"
        assert adj["contractServiceID"] == 5501 and done.adjustment_id == adj["id"]
        post = server.calls("ContractServiceAdjustments", "POST")[0]
        assert post.headers["impersonationresourceid"] == "29682885"
        # Autotask split November at the 17th: 10 units before, 14 from it on
        assert c.current_units(29684183, 31, dt.date(2026, 11, 16)).units == 10
        assert c.current_units(29684183, 31, dt.date(2026, 12, 5)).units == 14
        assert done.record_id != 900001
        again = c.set_units(29684183, 31, 14, nov17)
        assert not again.written and len(server.data.adjustments) == 1  # the same target writes nothing
        down = c.set_units(29684183, 31, 12, dt.date(2026, 12, 1))
        assert down.written and server.data.adjustments[-1]["unitChange"] == -2 and down.new == 12
        with pytest.raises(SourceError, match=r"contract 29684183 .* has no service 99"):
            c.current_units(29684183, 99, nov17)


def test_adjustments_are_create_only(server: AutotaskStandIn) -> None:
    with client(server) as c, pytest.raises(SourceError, match=r"does not allow .*HTTP 405"):
        c._call("PATCH", "ContractServiceAdjustments", what="changing an adjustment", body={"id": 1})


def test_budget_polls_slows_and_stops_before_the_limit(server: AutotaskStandIn) -> None:
    waits: list[float] = []
    server.used = 5_100  # other integrations have spent half the hour's budget
    budget = Budget(poll_every=2)
    with client(server, budget=budget, sleep=waits.append) as c:
        c.fetch(str(GRANITE))
        assert budget.sent == len([s for s in server.log if "/V1.0/" in s.path])  # every request counted
    assert len(server.calls("ThresholdInformation")) >= 2
    assert waits and set(waits) == {1.0}  # past 50 %: a second between calls
    server.used = 8_995
    with client(server, budget=Budget(), sleep=waits.append) as c, \
            pytest.raises(SourceError, match=r"API budget is nearly used: 9,00\d of the 10,000 requests") as exc:
        c.fetch(str(GRANITE))
    assert server.used < 9_010 and exc.value.code == "budget"


@pytest.mark.parametrize(("how", "message"), [
    ({"env": {"PERSEAT_AUTOTASK_SECRET": "wrong-secret-77"}}, "refused the credentials"),
    ({"env": {"PERSEAT_AUTOTASK_USERNAME": "nobody@harborview-it.example"}},
     "the zone of API user nobody@harborview-it.example was not found"),
    ({"key": "999"}, "Autotask has no company with id 999"),
    ({"key": "acme"}, "PSACompanyID 'acme' is not a Autotask id"),
    ({"deny": "Contacts"}, "the API user lacks a permission (The logged in Resource does not have the adequate"),
    ({"faults": Faults(malformed=("Contacts", 2))}, "that is not valid JSON"),
    ({"faults": Faults(broken=("Contacts", 3)), "policy": Policy(timeout=5, backoff=0.01, max_wait=0.2)},
     "kept failing the contacts of company 174 (page 3)"),
])
def test_failures_in_words(server: AutotaskStandIn, how: dict[str, Any], message: str) -> None:
    if "deny" in how:
        server.permissions.discard(how["deny"])
    server.faults = how.get("faults", Faults())
    config = AutotaskConfig.load(env={**server.env(), **how.get("env", {})})
    with AutotaskClient(config, policy=how.get("policy", FAST)) as c, pytest.raises(SourceError) as exc:
        c.fetch(how.get("key", str(GRANITE)))
    assert message in str(exc.value)
    no_secret_in(str(exc.value), repr(config), repr(exc.value))
    if "deny" in how:  # a permission error reported as HTTP 500 is not retried
        assert [s.status for s in server.calls("Contacts")] == [500]


def test_a_moved_zone_is_found_again_after_a_401(server: AutotaskStandIn) -> None:
    with client(server, PERSEAT_AUTOTASK_URL=f"{server.base}/wrong/ATServicesRest/") as c, \
            pytest.raises(SourceError, match="refused the credentials"):
        c.fetch(str(GRANITE))  # an overridden address is used as given: no discovery
    with client(server) as c:
        c._base = f"{server.base}/zone9/ATServicesRest/V1.0/"  # the zone the user was in before it moved
        assert len(c.fetch(str(GRANITE)).rows) == 1200
    assert [s.path for s in server.log if "zoneInformation" in s.path] == ["/atservicesrest/v1.0/zoneInformation"]


def test_connect_check(server: AutotaskStandIn) -> None:
    server.permissions.discard("ContractServiceUnits")
    with client(server) as c:
        lines = [str(x) for x in c.check(str(GRANITE))]
    assert lines[0].startswith("ok      zone found: http://127.0.0.1")
    assert "ok      signed in; company 174 is Granite Accounting" in lines
    assert "ok      can read contacts" in lines and "ok      can read time entries" in lines
    assert any(x.startswith("FAILED  cannot read contract units (for push)") for x in lines)
    no_secret_in(*lines)
