"""The HaloPSA client against the stand-in: sign-in, paging, usage, recurring-invoice quantities, failures."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from standins.halopsa import Data, Faults, HaloStandIn, make_users

from perseat_addin.model import Period
from perseat_addin.sources.halopsa import HaloClient, HaloConfig
from perseat_addin.sources.http import Policy, SourceError

CLIENT_ID = "0f3a9c1e-perseat"
SECRET = "Halo-Secret_Value-5531"
TENANT = "harborview"
FAST = Policy(timeout=5, backoff=0.01)
GRANITE = 12


def data() -> Data:
    d = Data(clients=[{"id": GRANITE, "name": "Granite Accounting", "inactive": False},
                      {"id": 13, "name": "Acme Dental Group", "inactive": False}])
    d.users = make_users(1200, GRANITE, "Granite Accounting", "graniteacct.example") + \
        make_users(20, 13, "Acme Dental Group", "acmedental.example", start_id=50_000)
    d.tickets = [{"id": 3000 + i, "client_id": GRANITE if i < 3 else 13, "client_name": "Granite Accounting",
                  "user_email": f"user{i:05d}@graniteacct.example", "dateoccurred": "2026-10-28T09:00:00"}
                 for i in range(4)]
    d.actions = [
        {"ticket_id": 3000, "id": 1, "actionarrivaldate": "2026-11-02T10:00:00", "timetaken": 1.5,
         "actisbillable": True, "nonbilltime": 0},
        {"ticket_id": 3000, "id": 2, "actionarrivaldate": "2026-11-04T10:00:00", "timetaken": 0.75,
         "actisbillable": False, "nonbilltime": 0},
        {"ticket_id": 3001, "id": 1, "actionarrivaldate": "2026-11-05T10:00:00", "timetaken": 2.0,
         "actisbillable": True, "nonbilltime": 0.5},
        {"ticket_id": 3001, "id": 2, "actionarrivaldate": "2026-10-30T10:00:00", "timetaken": 9.0,
         "actisbillable": True, "nonbilltime": 0},
        {"ticket_id": 3003, "id": 1, "actionarrivaldate": "2026-11-06T10:00:00", "timetaken": 5.0,
         "actisbillable": True, "nonbilltime": 0},
    ]
    d.invoices = [{"id": 94, "client_id": GRANITE, "client_name": "Granite Accounting", "invoicenumber": "RI-94",
                   "lines": [{"id": 24964, "ihid": 94, "_itemid": 1394, "item_shortdescription": "Managed user",
                              "qty_order": 10.0, "unit_price": 119.0, "tax_code": "5",
                              "recurring_invoice_quantity_type": 2, "calculate_price_from_users": False,
                              "quantity_users": [], "quantity_licences": [], "prorata_next_invoice": False,
                              "prorata_quantity": 0.0, "prorata_unit_price": 0.0, "prorata_data": [], "sequenceid": 1},
                             {"id": 24965, "ihid": 94, "_itemid": 1400, "item_shortdescription": "Backup",
                              "qty_order": 3.0, "unit_price": 20.0, "tax_code": "5", "sequenceid": 2}]}]
    return d


@pytest.fixture
def server() -> Iterator[HaloStandIn]:
    with HaloStandIn(CLIENT_ID, SECRET, TENANT, data()) as h:
        yield h


def client(h: HaloStandIn, policy: Policy = FAST, **env: str) -> HaloClient:
    return HaloClient(HaloConfig.load(env={**h.env(), **env}), policy=policy)


def no_secret_in(h: HaloStandIn, *texts: str) -> None:
    for text in texts:
        for s in [SECRET, *h.issued()]:
            assert s not in text


def test_sign_in_paging_and_a_token_expiring_mid_run(server: HaloStandIn) -> None:
    server.faults = Faults(expire=("Users", 2), throttle={("Users", 3)})
    with client(server) as c:
        got = c.fetch(str(GRANITE))
    assert len(got.rows) == 1200 and got.ok and got.source == "HaloPSA"
    assert sum(u.status == "Disabled" for u in got.rows) == 24  # inactive users asked for and kept, as Disabled
    assert [s.path for s in server.log[:2]] == ["/api/authinfo", "/auth/token"]
    token = server.log[1]
    assert token.query == {"tenant": TENANT} and token.body["grant_type"] == "client_credentials"
    assert token.body["scope"] == "all"
    users = server.calls("Users")
    assert [(s.query["page_no"], s.status) for s in users] == [("1", 200), ("2", 401), ("2", 200), ("3", 429),
                                                               ("3", 200)]
    assert users[0].query["client_id"] == "12" and users[0].query["includeinactive"] == "true"
    assert users[0].query["pageinate"] == "true" and users[0].query["page_size"] == "500"
    assert len(server.issued()) == 2  # renewed once


def test_without_authinfo_the_token_is_asked_of_url_auth(server: HaloStandIn) -> None:
    server.authinfo = False
    with client(server) as c:
        assert len(c.fetch(str(GRANITE)).rows) == 1200
    assert [s.status for s in server.log if s.path == "/auth/token"] == [200]


def test_usage_for_the_period_with_billable_flags(server: HaloStandIn) -> None:
    with client(server) as c:
        got = c.fetch_usage(str(GRANITE), Period(2026, 11), "Granite Accounting")
    rows = [(r.ref, r.date.isoformat(), r.hours, r.billable, r.tickets) for r in got.rows]
    assert rows == [("3000/1", "2026-11-02", Decimal("1.5"), True, 1),
                    ("3000/2", "2026-11-04", Decimal("0.75"), False, 0),
                    ("3001/1", "2026-11-05", Decimal("2"), True, 1),
                    ("3001/1/non-billable", "2026-11-05", Decimal("0.5"), False, 0)]
    assert got.source == "HaloPSA time entries" and {r.client for r in got.rows} == {"Granite Accounting"}
    assert got.rows[0].user == "user00000@graniteacct.example"
    acts = server.calls("Actions")
    assert {s.query["ticket_id"] for s in acts} == {"3000", "3001", "3002"}
    assert acts[0].query["startdate"] == "2026-11-01T00:00:00" and acts[0].query["timeentriesonly"] == "true"


def test_line_quantity_written_as_the_whole_invoice_and_read_back(server: HaloStandIn) -> None:
    with client(server) as c:
        now = c.current_quantity(94, "managed user")
        assert (now.line_id, now.quantity) == (24964, Decimal(10))
        done = c.set_quantity(94, 24964, 14)
        assert done.written and (done.old, done.new) == (Decimal(10), Decimal(14))
        [posted] = server.posted
        assert len(posted) == 1 and posted[0]["id"] == 94
        assert [ln["id"] for ln in posted[0]["lines"]] == [24964, 24965]  # every line re-sent
        assert [ln["qty_order"] for ln in server.invoice(94)["lines"]] == [14.0, 3.0]
        assert server.invoice(94)["lines"][0]["unit_price"] == 119.0
        again = c.set_quantity(94, "Managed user", 14)
        assert not again.written and len(server.posted) == 1  # the same target writes nothing
        with pytest.raises(SourceError, match="no recurring invoice 95"):
            c.current_quantity(95, 24964)
        with pytest.raises(SourceError, match="has no line 'Support'"):
            c.current_quantity(94, "Support")


@pytest.mark.parametrize(("how", "message"), [
    ({"env": {"PERSEAT_HALO_CLIENT_SECRET": "wrong-secret-77"}}, "signing in failed — bad credentials"),
    ({"env": {"PERSEAT_HALO_TENANT": "someone-else"}}, "Unknown tenant.); check PERSEAT_HALO_TENANT (someone-else)"),
    ({"key": "999"}, "HaloPSA has no client with id 999"),
    ({"deny": "Users"}, "the API application lacks a permission"),
    ({"faults": Faults(malformed=("Users", 2))}, "that is not valid JSON"),
    ({"faults": Faults(broken=("Users", 3)), "policy": Policy(timeout=5, backoff=0.01, max_wait=0.2)},
     "kept failing the users of client 12 (page 3)"),
    ({"faults": Faults(slow=("Users", 2), slow_seconds=2), "policy": Policy(timeout=0.3, backoff=0.01, max_wait=0.2)},
     "did not answer the users of client 12 (page 2)"),
])
def test_failures_in_words(server: HaloStandIn, how: dict[str, Any], message: str) -> None:
    if "deny" in how:
        server.permissions.discard(how["deny"])
    server.faults = how.get("faults", Faults())
    config = HaloConfig.load(env={**server.env(), **how.get("env", {})})
    with HaloClient(config, policy=how.get("policy", FAST)) as c, pytest.raises(SourceError) as exc:
        c.fetch(how.get("key", str(GRANITE)))
    assert message in str(exc.value)
    no_secret_in(server, str(exc.value), repr(config))


def test_connect_check(server: HaloStandIn) -> None:
    server.permissions.discard("RecurringInvoice")
    with client(server) as c:
        lines = [str(x) for x in c.check(str(GRANITE))]
    assert lines[0].startswith("ok      signed in at http://127.0.0.1")
    assert "ok      client 12 is Granite Accounting" in lines and "ok      can read users" in lines
    assert any(x.startswith("FAILED  cannot read recurring invoices (for push)") for x in lines)
    no_secret_in(server, *lines)
