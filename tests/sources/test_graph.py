"""The Microsoft Graph client against the stand-in server: paging, throttling, and every failure in words."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterator

import pytest
from standins.graph import ALL_PERMISSIONS, Faults, GraphStandIn, Tenant, make_users

from perseat_addin.imports.roster import read_export
from perseat_addin.sources.graph import GraphClient, GraphConfig
from perseat_addin.sources.http import Policy, SourceError

CLIENT_ID = "7d3c5a1e-0b1f-4c2a-9e8d-2f6b4a1c3e5d"
SECRET = "Zq8~graph.Secret-Value_42"
GRANITE = "52eaad04-13a2-4a2f-9ce8-93a294fadf36"
FAST = Policy(timeout=5, backoff=0.01)


def tenant(n: int = 300, **kw: object) -> Tenant:
    return Tenant(GRANITE, "graniteacct.example", make_users(n, "graniteacct.example"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[GraphStandIn]:
    with GraphStandIn(CLIENT_ID, SECRET) as g:
        yield g


def client(g: GraphStandIn, policy: Policy = FAST, secret: str = SECRET, client_id: str = CLIENT_ID) -> GraphClient:
    env = {**g.env(), "PERSEAT_GRAPH_CLIENT_SECRET": secret, "PERSEAT_GRAPH_CLIENT_ID": client_id}
    return GraphClient(GraphConfig.load(env=env), policy=policy)


def no_secret_in(g: GraphStandIn, *texts: str) -> None:
    """Neither the client secret nor any token the stand-in issued appears in ``texts``."""
    for text in texts:
        for s in [SECRET, *g.issued()]:
            assert s not in text


def test_2500_users_across_pages_with_a_429_in_the_middle(server: GraphStandIn) -> None:
    server.tenants.append(tenant(2500, faults=Faults(throttle={11})))
    with client(server) as c:
        got = c.fetch("graniteacct.example")
        waited = c.http.waited
    assert len(got.rows) == 2500 and got.ok and not got.problems
    assert len({u.user_id for u in got.rows}) == 2500
    assert waited >= 1  # Retry-After: 1 was honoured
    users = [s for s in server.log if s.path == "/v1.0/users"]
    assert [s.status for s in users].count(429) == 1 and len(users) == 22  # 21 pages of 120 (signInActivity cap)
    first = users[0].query
    assert first["$top"] == "999" and set(first["$select"].split(",")) == {
        "id", "displayName", "userPrincipalName", "mail", "accountEnabled", "userType", "assignedLicenses",
        "createdDateTime", "signInActivity"}
    assert all("$skiptoken" in s.query for s in users[1:])  # the nextLink, followed verbatim
    assert all(s.headers["authorization"].startswith("Bearer ") for s in users)
    token = next(s for s in server.log if s.path.endswith("/token"))
    assert token.form == {"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "client_credentials",
                          "scope": "https://graph.microsoft.com/.default"}
    assert token.path == "/login/graniteacct.example/oauth2/v2.0/token"


def test_a_graph_user_is_billable_by_the_export_rules(server: GraphStandIn, tmp_path: object) -> None:
    """Every user classified as the admin-center export of the same users classifies them."""
    from standins.graph import admin_center_csv

    users = make_users(200, "graniteacct.example")
    server.tenants.append(Tenant(GRANITE, "graniteacct.example", users))
    with client(server) as c:
        live = c.fetch(GRANITE)
    export = read_export(admin_center_csv(users), "m365", name="users.csv")
    assert export.ok and live.ok
    assert [(u.user_id, u.name, u.email, u.type, u.status, u.billable_hint) for u in live.rows] == \
        [(u.user_id, u.name, u.email, u.type, u.status, u.billable_hint) for u in export.rows]
    assert live.source == export.source == "Microsoft 365"
    assert {u.type for u in live.rows} == {"Employee", "Guest", "Room", "Shared", "Service"}
    assert {u.reason.split(" (")[0] for u in live.rows if not u.billable_hint} >= {
        "not billable: sign-in blocked", "not billable: no licence", "not billable: only free licences",
        "not billable: guest"}
    assert live.rows[0].created == dt.date(2025, 1, 16)


@pytest.mark.parametrize(("premium", "permissions", "why"), [
    (False, ALL_PERMISSIONS, "the tenant has no Microsoft Entra ID P1 or P2 licence"),
    (True, ALL_PERMISSIONS - {"AuditLog.Read.All"}, "the app lacks the AuditLog.Read.All application permission"),
])
def test_sign_in_dates_refused_reads_again_without_them(server: GraphStandIn, premium: bool,
                                                        permissions: frozenset[str], why: str) -> None:
    server.tenants.append(tenant(1200, premium=premium, permissions=permissions))
    with client(server) as c:
        got = c.fetch(GRANITE)
    assert len(got.rows) == 1200 and got.ok
    [note] = got.problems
    assert note.severity == "warning" and why in note.message and "sign-in dates left out" in note.message
    users = [s for s in server.log if s.path == "/v1.0/users"]
    assert users[0].status == 403 and "signInActivity" in users[0].query["$select"]
    assert all("signInActivity" not in s.query["$select"] for s in users[1:]) and len(users) == 3  # 999 a page


def test_licence_names_refused_still_counts_licences(server: GraphStandIn) -> None:
    server.tenants.append(tenant(100, permissions=ALL_PERMISSIONS - {"LicenseAssignment.Read.All"}))
    with client(server) as c:
        got = c.fetch(GRANITE)
    assert "licence names unavailable" in got.problems[0].message and got.ok
    assert got.rows[0].reason == "billable: licensed (c7df2760-2c81-4ef7-b578-5b5392b571df)"


def test_an_expired_token_mid_run_is_renewed_once(server: GraphStandIn) -> None:
    server.tenants.append(tenant(1000, faults=Faults(expire=4)))
    with client(server) as c:
        got = c.fetch(GRANITE)
    assert len(got.rows) == 1000
    assert len(server.issued()) == 2
    assert [s.status for s in server.log if s.path == "/v1.0/users"].count(401) == 1


def test_a_burst_of_server_errors_is_ridden_out(server: GraphStandIn) -> None:
    server.tenants.append(tenant(500, faults=Faults(burst={2: 3})))
    with client(server) as c:
        assert len(c.fetch(GRANITE).rows) == 500
        assert c.http.waited == pytest.approx(0.01 + 0.02 + 0.04)


def test_retry_after_as_an_http_date(server: GraphStandIn) -> None:
    when = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2), usegmt=True)
    server.tenants.append(tenant(300, faults=Faults(throttle={2}, retry_after=when)))
    with client(server) as c:
        assert len(c.fetch(GRANITE).rows) == 300
        assert 0 < c.http.waited <= 2


FAILURES = [
    ("tenant not found", dict(key="nosuch.example"), "tenant 'nosuch.example' was not found"),
    ("bad secret", dict(secret="not-the-secret"), "bad credentials — the client id or secret was refused "
                                                  "(invalid_client"),
    ("unknown app", dict(client_id="00000000-0000-0000-0000-000000000000"), "is not consented in that tenant"),
    ("not consented", dict(consented=False), "is not consented in that tenant"),
    ("no User.Read.All", dict(permissions=frozenset({"AuditLog.Read.All"})),
     "the app needs the application permission User.Read.All"),
    ("malformed JSON", dict(faults=Faults(malformed=3)), "sent an answer to the users of tenant graniteacct.example "
                                                          "(page 3) that is not valid JSON"),
    ("part-way failure", dict(faults=Faults(broken=4)), "kept failing the users of tenant graniteacct.example "
                                                         "(page 4) (HTTP 503 Service Unavailable: The service is "
                                                         "temporarily unavailable.), 5 tries"),
    ("timeout", dict(faults=Faults(slow=2, slow_seconds=2), policy=Policy(timeout=0.3, attempts=2, backoff=0.01)),
     "did not answer the users of tenant graniteacct.example (page 2): no answer within 0.3 s, 2 tries"),
    ("throttled too long", dict(faults=Faults(throttle={2}, retry_after="900")),
     "is throttling the users of tenant graniteacct.example (page 2) and asks to wait 900 s more, past the 300 s "
     "allowed"),
]


@pytest.mark.parametrize(("case", "how", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_says_what_in_words(server: GraphStandIn, case: str, how: dict[str, object],
                                         message: str) -> None:
    how = dict(how)
    key = str(how.pop("key", "graniteacct.example"))
    policy = how.pop("policy", Policy(timeout=5, backoff=0.01, max_wait=300))
    secret, client_id = str(how.pop("secret", SECRET)), str(how.pop("client_id", CLIENT_ID))
    server.tenants.append(tenant(400, **how))
    with client(server, policy, secret, client_id) as c, pytest.raises(SourceError) as caught:  # type: ignore[arg-type]
        c.fetch(key)
    text = str(caught.value)
    assert message in text, text
    no_secret_in(server, text, repr(caught.value), repr(caught.value.args))
    assert "not-the-secret" not in text


def test_connect_checks_say_what_works(server: GraphStandIn) -> None:
    server.tenants.append(tenant(10, premium=False, permissions=ALL_PERMISSIONS - {"LicenseAssignment.Read.All"}))
    with client(server) as c:
        lines = [str(x) for x in c.check(GRANITE)]
    assert lines[0].startswith("ok      signed in: the app got a token for tenant")
    assert lines[1] == "ok      User.Read.All present: can read the users"
    assert lines[2].startswith("missing AuditLog.Read.All not granted or the tenant has no Entra ID P1 licence")
    assert lines[3].startswith("missing LicenseAssignment.Read.All not granted or Organization.Read.All")
    with client(server, secret="wrong-secret") as c:
        [bad] = c.check(GRANITE)
    assert bad.ok is False and "bad credentials" in bad.text
    no_secret_in(server, *lines, bad.text)
