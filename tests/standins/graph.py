"""A stand-in for Microsoft Entra sign-in and Microsoft Graph, served over real HTTP on 127.0.0.1.

Built from the documented shapes (``shared/PSA_APIS.md`` §1.1 and ``shared/psa-fixtures/graph``;
trust RECORDED > DOC EXAMPLE > TEST FIXTURE > COMPOSED):

* ``POST /login/{tenant}/oauth2/v2.0/token`` — the client-credentials grant (form fields of
  ``token_client_credentials.request.txt``; answer shaped as ``token_client_credentials.response.json``).
  Refusals carry Entra's OAuth error body ``{error, error_description, error_codes}`` with the AADSTS
  codes Microsoft documents (COMPOSED: 90002 tenant not found, 700016 app not in the directory,
  7000215 invalid client secret).
* ``GET /v1.0/users`` — ``$select`` honoured (only the selected properties come back; without it,
  Graph's default set, which lacks accountEnabled, userType, assignedLicenses), ``$top`` 1–999 (else
  400), at most 120 a page when signInActivity is selected (the cap the docs version in PSA_APIS.md
  states), ``@odata.nextLink`` with an opaque ``$skiptoken`` until the last page (paging.md).
  signInActivity needs AuditLog.Read.All (403 Authorization_RequestDenied) and a premium tenant
  (403 Authentication_RequestFromNonPremiumTenantOrB2CTenant).
* ``GET /v1.0/subscribedSkus`` — the DOC EXAMPLE shape; needs LicenseAssignment.Read.All.
* Faults per tenant and page (:class:`Faults`): 429 with ``Retry-After`` and the identity throttle
  headers of ``error_429.http``, bursts of 503, a page that always fails, a slow page (longer than the
  client waits), a truncated JSON body, and a token that expires mid-run (401 InvalidAuthenticationToken).

Every request is recorded in :attr:`GraphStandIn.log` (secrets included: tests scan for them).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from standins.server import LocalServer, send

DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
ALL_PERMISSIONS = frozenset({"User.Read.All", "AuditLog.Read.All", "LicenseAssignment.Read.All"})
SIGN_IN_PAGE_CAP = 120

# skuId → (skuPartNumber, the product name the admin center's export shows)
SKUS: dict[str, tuple[str, str]] = {
    "c7df2760-2c81-4ef7-b578-5b5392b571df": ("ENTERPRISEPREMIUM", "Office 365 E5"),  # DOC EXAMPLE pair
    "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46": ("SPB", "Microsoft 365 Business Premium"),  # id from users_page1
    "f30db892-07e9-47e9-837c-80727f46fd3d": ("FLOW_FREE", "Microsoft Power Automate Free"),
}


@dataclass
class Faults:
    """What goes wrong, by page number (1-based) of a tenant's /users listing."""

    throttle: set[int] = field(default_factory=set)  # first request for the page: 429 + Retry-After
    retry_after: str = "1"
    burst: dict[int, int] = field(default_factory=dict)  # page → that many 503s before it answers
    broken: int | None = None  # this page always answers 503 (a fetch that fails part-way)
    slow: int | None = None  # this page answers after slow_seconds
    slow_seconds: float = 3.0
    malformed: int | None = None  # this page's body is cut off mid-JSON
    expire: int | None = None  # the token in use expires when this page is asked for (once)


@dataclass
class Tenant:
    """One customer tenant."""

    tenant_id: str
    domain: str
    users: list[dict[str, Any]]
    permissions: frozenset[str] = ALL_PERMISSIONS
    premium: bool = True
    consented: bool = True
    faults: Faults = field(default_factory=Faults)
    hits: dict[str, int] = field(default_factory=dict)  # fault key → times seen


@dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    status: int = 0


class GraphStandIn(LocalServer):
    """The stand-in server; ``with GraphStandIn(...) as g:`` serves on 127.0.0.1 at a free port."""

    METHODS = ("GET", "POST")

    def __init__(self, client_id: str, secret: str, tenants: list[Tenant] | None = None) -> None:
        self.client_id, self.secret = client_id, secret
        self.tenants = list(tenants or [])
        self.log: list[Seen] = []
        self.tokens: dict[str, tuple[str, bool]] = {}  # token → (tenant id, still valid)
        self._lock = threading.Lock()

    # server -----------------------------------------------------------------------------------------------

    @property
    def login_url(self) -> str:
        return f"{self.base}/login"

    @property
    def graph_url(self) -> str:
        return f"{self.base}/v1.0"

    def env(self) -> dict[str, str]:
        """The PERSEAT_GRAPH_* variables that point the product at this stand-in."""
        return {"PERSEAT_GRAPH_CLIENT_ID": self.client_id, "PERSEAT_GRAPH_CLIENT_SECRET": self.secret,
                "PERSEAT_GRAPH_LOGIN_URL": self.login_url, "PERSEAT_GRAPH_URL": self.graph_url}

    def tenant(self, key: str) -> Tenant | None:
        k = key.lower()
        return next((t for t in self.tenants if k in (t.tenant_id.lower(), t.domain.lower())), None)

    def issued(self) -> list[str]:
        """Every access token handed out so far."""
        return list(self.tokens)

    # requests ---------------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        seen = Seen(method, url.path, query, {k.lower(): v for k, v in h.headers.items()}, form)
        with self._lock:
            self.log.append(seen)
        parts = [p for p in url.path.split("/") if p]
        if method == "POST" and len(parts) == 5 and parts[0] == "login" and parts[2:] == ["oauth2", "v2.0", "token"]:
            status, headers, body, delay = self._token(parts[1], form)
        elif method == "GET" and parts[:1] == ["v1.0"] and len(parts) == 2:
            status, headers, body, delay = self._graph(parts[1], query, h.headers.get("Authorization", ""))
        else:
            status, headers, body, delay = 404, {}, _json({"error": {"code": "Request_ResourceNotFound",
                                                                    "message": f"Resource not found: {url.path}"}}), 0.0
        seen.status = status
        if delay:
            time.sleep(delay)
        send(h, status, headers, body)

    def _token(self, key: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        def refuse(status: int, error: str, code: int, text: str) -> tuple[int, dict[str, str], bytes, float]:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            trace = "0b5b2a5f-5e63-4a8f-9b1e-3f3c2b6a0d11"
            return status, {}, _json({"error": error, "error_description": f"AADSTS{code}: {text} Trace ID: {trace} "
                                      f"Correlation ID: {trace} Timestamp: {stamp}", "error_codes": [code],
                                      "timestamp": stamp, "trace_id": trace, "correlation_id": trace}), 0.0

        tenant = self.tenant(key)
        if tenant is None:
            return refuse(400, "invalid_request", 90002, f"Tenant '{key}' not found. Check to make sure you have the "
                          "correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return refuse(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        if form.get("client_id") != self.client_id or not tenant.consented:
            return refuse(400, "unauthorized_client", 700016, f"Application with identifier "
                          f"'{form.get('client_id')}' was not found in the directory '{tenant.domain}'.")
        if form.get("client_secret") != self.secret:
            return refuse(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                          "sent in the request is the client secret value, not the client secret ID, for a secret "
                          f"added to app '{self.client_id}'.")
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (tenant.tenant_id, True)
        return 200, {}, _json({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                               "access_token": token}), 0.0

    def _graph(self, resource: str, query: dict[str, str],
               authorization: str) -> tuple[int, dict[str, str], bytes, float]:
        token = authorization.removeprefix("Bearer ").strip()
        held = self.tokens.get(token)
        if not token or held is None or not held[1]:
            text = "Access token is empty." if not token else "Access token has expired or is not yet valid."
            return 401, {}, _error("InvalidAuthenticationToken", text), 0.0
        tenant = self.tenant(held[0])
        assert tenant is not None
        if resource == "subscribedSkus":
            if "LicenseAssignment.Read.All" not in tenant.permissions:
                return 403, {}, _error("Authorization_RequestDenied", "Insufficient privileges to complete the "
                                       "operation."), 0.0
            value = [{"skuId": k, "skuPartNumber": p, "appliesTo": "User", "capabilityStatus": "Enabled",
                      "consumedUnits": 0, "prepaidUnits": {"enabled": 25, "lockedOut": 0, "suspended": 0,
                                                           "warning": 0}} for k, (p, _) in SKUS.items()]
            selected = [s for s in query.get("$select", "").split(",") if s]
            if selected:
                value = [{k: v for k, v in s.items() if k in selected} for s in value]
            return 200, {}, _json({"@odata.context": f"{self.graph_url}/$metadata#subscribedSkus",
                                   "value": value}), 0.0
        if resource != "users":
            return 400, {}, _error("BadRequest", f"Resource not found for the segment '{resource}'."), 0.0
        return self._users(tenant, token, query)

    def _users(self, tenant: Tenant, token: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        selected = [s for s in query.get("$select", "").split(",") if s] or list(DEFAULT_PROPERTIES)
        try:
            top = int(query.get("$top", "100"))
        except ValueError:
            top = -1
        if not 1 <= top <= 999:
            return 400, {}, _error("Request_UnsupportedQuery", f"Invalid page size specified: '{query.get('$top')}'. "
                                   "Must be between 1 and 999 inclusive."), 0.0
        if "signInActivity" in selected:
            if "AuditLog.Read.All" not in tenant.permissions:
                return 403, {}, _error("Authorization_RequestDenied", "Insufficient privileges to complete the "
                                       "operation."), 0.0
            if not tenant.premium:
                return 403, {}, _error("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                       "Neither tenant is B2C or tenant doesn't have premium license"), 0.0
            top = min(top, SIGN_IN_PAGE_CAP)
        if "User.Read.All" not in tenant.permissions:
            return 403, {}, _error("Authorization_RequestDenied", "Insufficient privileges to complete the "
                                   "operation."), 0.0
        skip = query.get("$skiptoken")
        offset = int(base64.urlsafe_b64decode(skip.encode()).decode().split(":")[1]) if skip else 0
        page = offset // top + 1
        f = tenant.faults

        def first(kind: str) -> bool:
            key = f"{kind}:{page}"
            with self._lock:
                tenant.hits[key] = tenant.hits.get(key, 0) + 1
                return tenant.hits[key] == 1

        def count(kind: str) -> int:
            key = f"{kind}:{page}"
            with self._lock:
                tenant.hits[key] = tenant.hits.get(key, 0) + 1
                return tenant.hits[key]

        if f.expire == page and first("expire"):
            with self._lock:
                self.tokens[token] = (tenant.tenant_id, False)
            return 401, {}, _error("InvalidAuthenticationToken", "Access token has expired or is not yet valid."), 0.0
        if page in f.throttle and first("throttle"):
            scope = f"Tenant_Application/ReadWrite/{tenant.tenant_id}/{self.client_id}"
            return 429, {"Retry-After": f.retry_after, "x-ms-throttle-scope": scope,
                         "x-ms-throttle-information": "ResourceUnitLimitExceeded"}, \
                _error("TooManyRequests", "Too many requests."), 0.0
        if page in f.burst and count("burst") <= f.burst[page]:
            return 503, {}, _error("serviceNotAvailable", "The service is temporarily unavailable."), 0.0
        if f.broken == page:
            return 503, {}, _error("serviceNotAvailable", "The service is temporarily unavailable."), 0.0
        delay = f.slow_seconds if f.slow == page else 0.0
        rows = tenant.users[offset:offset + top]
        body: dict[str, Any] = {"@odata.context": f"{self.graph_url}/$metadata#users({','.join(selected)})",
                                "value": [{k: u.get(k) for k in selected} for u in rows]}
        if offset + top < len(tenant.users):
            nxt = base64.urlsafe_b64encode(f"X'4453707402':{offset + top}".encode()).decode()
            body["@odata.nextLink"] = (f"{self.graph_url}/users?$select={quote(','.join(selected), safe=',')}"
                                       f"&$top={top}&$skiptoken={nxt}")
        data = _json(body)
        if f.malformed == page:
            data = data[: len(data) // 2]
        return 200, {}, data, delay


def _json(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def _error(code: str, message: str) -> bytes:
    """Graph's error body (``{"error": {"code", "message", "innerError"}}``)."""
    return _json({"error": {"code": code, "message": message,
                            "innerError": {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                                           "request-id": "6c5ab6d0-0f5e-4b0a-9d8b-5d2c0a2f3e11"}}})


# users ----------------------------------------------------------------------------------------------------------


def make_users(n: int, domain: str, people: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``n`` Graph users of ``domain``: ``people`` (local parts such as "helen.park") first, as licensed
    members, then a mix — every 50 users: a guest, a blocked member, an unlicensed member, a room, a shared
    mailbox, a service account, a user with only a free licence, the rest licensed members."""
    skus = list(SKUS)
    out: list[dict[str, Any]] = []
    for i in range(n):
        created = (dt.datetime(2025, 1, 16, 9) + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        local = people[i] if i < len(people) else f"user{i:04d}"
        name = local.replace(".", " ").title() if i < len(people) else f"User {i:04d}"
        kind = "member" if i < len(people) else {7: "guest", 11: "blocked", 13: "unlicensed", 17: "room",
                                                 19: "shared", 23: "service", 29: "free"}.get(i % 50, "member")
        licences = [skus[i % 2]] if kind in ("member", "blocked") else [skus[2]] if kind == "free" else []
        upn = f"{local}@{domain}"
        mail: str | None = upn
        user_type = "Member"
        if kind == "guest":
            upn, mail, name, user_type = (f"partner{i}_fabrikam.example#EXT#@{domain}", f"partner{i}@fabrikam.example",
                                          f"Partner {i}", "Guest")
        elif kind == "room":
            upn = mail = f"confroom{i}@{domain}"
            name = f"Conf Room {i}"
        elif kind == "shared":
            upn = mail = f"info.{i}@{domain}"
            name = f"Info {i}"
        elif kind == "service":
            upn = f"svc-backup{i}@{domain}"
            mail, name = None, f"Backup service {i}"
        out.append({
            "id": f"{i:08d}-0000-4000-8000-{zlib.crc32(domain.encode()):012d}",
            "displayName": name, "userPrincipalName": upn, "mail": mail, "accountEnabled": kind != "blocked",
            "userType": user_type, "createdDateTime": created,
            "assignedLicenses": [{"disabledPlans": [], "skuId": s} for s in licences],
            "signInActivity": None if i % 3 else {"lastSignInDateTime": created, "lastSignInRequestId": "",
                                                  "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z",
                                                  "lastNonInteractiveSignInRequestId": ""},
        })
    return out


def admin_center_csv(users: list[dict[str, Any]]) -> str:
    """The Microsoft 365 admin center's *Export users* file of the same users (its column names, licences by
    product name joined with "+", "Unlicensed" for none, "Block credential" True for a disabled account)."""
    lines = ["Block credential,Display name,First name,Last name,Licenses,Proxy addresses,User principal name,"
             "When created"]
    for u in users:
        licences = "+".join(SKUS[lic["skuId"]][1] for lic in u["assignedLicenses"]) or "Unlicensed"
        created = dt.datetime.strptime(u["createdDateTime"], "%Y-%m-%dT%H:%M:%SZ")
        when = f"{created.month}/{created.day}/{created.year} {created.strftime('%I:%M:%S %p').lstrip('0')}"
        proxies = f"SMTP:{u['mail']}" if u["mail"] else ""
        lines.append(",".join(_csv(v) for v in ("False" if u["accountEnabled"] else "True", u["displayName"], "", "",
                                                licences, proxies, u["userPrincipalName"], when)))
    return "\n".join(lines) + "\n"


def _csv(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def pages_of(log: list[Seen], path: str = "/v1.0/users") -> Iterator[Seen]:
    """The logged requests for ``path``."""
    return (s for s in log if s.path == path)
