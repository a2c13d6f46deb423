"""A stand-in for HaloPSA's API and authorisation server, served over real HTTP on 127.0.0.1.

Built from the documented shapes (``shared/PSA_APIS.md`` §1.4 and §2, ``shared/psa-fixtures/halopsa``;
trust RECORDED > DOC EXAMPLE > TEST FIXTURE > COMPOSED):

* ``GET /api/authinfo`` — ``{auth_url, tenant_id}`` (HaloAPI's Connect-HaloAPI reads these; values
  COMPOSED); switched off with ``authinfo=False`` (404) to test the ``{url}/auth`` fallback.
* ``POST /auth/token?tenant=`` — the client-credentials form of ``token.request.txt``; answers
  ``token.response.json``'s shape; a wrong id or secret gets 401 ``{"error": "invalid_client"}``, a wrong
  tenant 400 ``{"error": "invalid_request"}`` (OAuth error bodies; Halo's exact texts UNCONFIRMED).
* ``/api/…`` with ``Authorization: Bearer``: an unknown or expired token gets 401.
  ``Client/{id}`` (404 when unknown), ``Client``, ``Users?client_id=&includeinactive=`` (inactive users
  only when asked), ``Tickets?client_id=``, ``Actions?ticket_id=&startdate=&enddate=&timeentriesonly=``,
  each list wrapped as ``{record_count, <name>: […]}`` and paged by ``pageinate=true&page_size&page_no``
  (1-based; COMPOSED ``users_page.json``/``clients_page.json``).
* ``RecurringInvoice/{id}?includedetails=true`` (lines only with details), ``RecurringInvoice?client_id=``
  and ``POST RecurringInvoice`` with an array: an upsert of each object sent, whose ``lines`` *replace*
  the invoice's lines (a line not sent is gone — why the client re-sends them all), as the
  ``recurring_invoice_update.request.json`` script does.
* Permissions per resource (403), and faults per resource and page (:class:`Faults`): 429 + Retry-After,
  503 bursts, a page that always fails, a slow page, a cut-off JSON body, a token expiring mid-run.

Every request is recorded in :attr:`HaloStandIn.log` (secrets included: tests scan for them).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standins.server import LocalServer, send

RESOURCES = frozenset({"Client", "Users", "Tickets", "Actions", "RecurringInvoice"})


@dataclass
class Faults:
    """What goes wrong, by (resource, page number 1-based)."""

    throttle: set[tuple[str, int]] = field(default_factory=set)
    retry_after: str = "1"
    burst: dict[tuple[str, int], int] = field(default_factory=dict)
    broken: tuple[str, int] | None = None
    slow: tuple[str, int] | None = None
    slow_seconds: float = 3.0
    malformed: tuple[str, int] | None = None
    expire: tuple[str, int] | None = None  # the token in use expires when this page is asked for (once)


@dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Data:
    """The Halo instance behind the stand-in."""

    clients: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)


class HaloStandIn(LocalServer):
    """The stand-in server; ``with HaloStandIn(...) as h:`` serves on 127.0.0.1 at a free port."""

    METHODS = ("GET", "POST")

    def __init__(self, client_id: str, secret: str, tenant: str = "", data: Data | None = None) -> None:
        self.client_id, self.secret, self.tenant = client_id, secret, tenant
        self.data = data or Data()
        self.faults = Faults()
        self.permissions = set(RESOURCES)
        self.authinfo = True
        self.tokens: dict[str, bool] = {}  # token → still valid
        self.log: list[Seen] = []
        self.posted: list[Any] = []  # bodies of POST RecurringInvoice
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def env(self) -> dict[str, str]:
        """The PERSEAT_HALO_* variables that point the product at this stand-in."""
        out = {"PERSEAT_HALO_URL": self.base, "PERSEAT_HALO_CLIENT_ID": self.client_id,
               "PERSEAT_HALO_CLIENT_SECRET": self.secret}
        if self.tenant:
            out["PERSEAT_HALO_TENANT"] = self.tenant
        return out

    def issued(self) -> list[str]:
        return list(self.tokens)

    def calls(self, resource: str) -> list[Seen]:
        return [s for s in self.log if s.path.startswith(f"/api/{resource}")]

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        return next(i for i in self.data.invoices if i["id"] == invoice_id)

    # requests ---------------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body: Any
        if h.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            body = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        seen = Seen(method, url.path, query, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.log.append(seen)
        status, headers, data, delay = self._route(method, url.path, query, seen.headers, body)
        seen.status = status
        if delay:
            time.sleep(delay)
        send(h, status, headers, data)

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, str], bytes, float]:
        if path == "/api/authinfo" and method == "GET":
            if not self.authinfo:
                return 404, {}, b"", 0.0
            return 200, {}, _json({"auth_url": f"{self.base}/auth", "tenant_id": self.tenant or None}), 0.0
        if path == "/auth/token" and method == "POST":
            return self._token(query, body if isinstance(body, dict) else {})
        if not path.startswith("/api/"):
            return 404, {}, b"", 0.0
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not self.tokens.get(token):
            return 401, {}, b"", 0.0
        parts = path.removeprefix("/api/").strip("/").split("/")
        resource = parts[0]
        if resource not in RESOURCES:
            return 404, {}, _json({"message": f"No resource {resource}"}), 0.0
        if resource not in self.permissions:
            return 403, {}, _json({"message": f"The application does not have permission to access {resource}."}), 0.0
        page = int(query.get("page_no") or 1)
        f = self.faults
        if f.expire == (resource, page) and self._count("expire", resource, page) == 1:
            with self._lock:
                self.tokens[token] = False
            return 401, {}, b"", 0.0
        if (resource, page) in f.throttle and self._count("throttle", resource, page) == 1:
            return 429, {"Retry-After": f.retry_after}, _json({"message": "Too many requests"}), 0.0
        if (resource, page) in f.burst and self._count("burst", resource, page) <= f.burst[(resource, page)]:
            return 503, {}, _json({"message": "Service unavailable"}), 0.0
        if f.broken == (resource, page):
            return 503, {}, _json({"message": "Service unavailable"}), 0.0
        status, out = self._api(method, resource, parts[1:], query, body)
        data = _json(out) if out is not None else b""
        if f.malformed == (resource, page) and status == 200:
            data = data[: len(data) // 2]
        delay = f.slow_seconds if f.slow == (resource, page) else 0.0
        return status, {}, data, delay

    def _count(self, kind: str, resource: str, page: int) -> int:
        k = f"{kind}:{resource}:{page}"
        with self._lock:
            self._hits[k] = self._hits.get(k, 0) + 1
            return self._hits[k]

    def _token(self, query: dict[str, str], form: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        if self.tenant and query.get("tenant") != self.tenant:
            return 400, {}, _json({"error": "invalid_request", "error_description": "Unknown tenant."}), 0.0
        if form.get("grant_type") != "client_credentials":
            return 400, {}, _json({"error": "unsupported_grant_type"}), 0.0
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.secret:
            return 401, {}, _json({"error": "invalid_client", "error_description": "Invalid client credentials."}), 0.0
        token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = True
        return 200, {}, _json({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                               "scope": form.get("scope", "all")}), 0.0

    def _api(self, method: str, resource: str, rest: list[str], query: dict[str, str],
             body: Any) -> tuple[int, Any]:
        d = self.data
        if resource == "RecurringInvoice" and method == "POST":
            return self._upsert(body)
        if method != "GET":
            return 405, {"message": "Method not allowed"}
        if rest:
            try:
                key = int(rest[0])
            except ValueError:
                return 404, None
            table = {"Client": d.clients, "RecurringInvoice": d.invoices, "Users": d.users, "Tickets": d.tickets}
            found = next((r for r in table.get(resource, []) if r["id"] == key), None)
            if found is None:
                return 404, {"message": f"{resource} {key} not found"}
            out = copy.deepcopy(found)
            if resource == "RecurringInvoice" and query.get("includedetails") != "true":
                out.pop("lines", None)
            return 200, out

        def by_client(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            cid = query.get("client_id")
            return [r for r in rows if cid is None or str(r.get("client_id")) == cid]

        if resource == "Client":
            rows, wrapper = d.clients, "clients"
            if query.get("includeinactive") != "true":
                rows = [r for r in rows if not r.get("inactive")]
        elif resource == "Users":
            rows, wrapper = by_client(d.users), "users"
            if query.get("includeinactive") != "true":
                rows = [r for r in rows if not r.get("inactive")]
        elif resource == "Tickets":
            rows, wrapper = by_client(d.tickets), "tickets"
        elif resource == "Actions":
            wrapper = "actions"
            tid = query.get("ticket_id")
            rows = [a for a in d.actions if tid is None or str(a["ticket_id"]) == tid]
            if query.get("timeentriesonly") == "true":
                rows = [a for a in rows if a.get("timetaken") or a.get("nonbilltime")]
            for k, keep in (("startdate", lambda a, b: a >= b), ("enddate", lambda a, b: a <= b)):
                if query.get(k):
                    rows = [a for a in rows if keep(a["actionarrivaldate"][:19], query[k][:19])]
        else:
            rows, wrapper = by_client(d.invoices), "invoices"
            rows = [{k: v for k, v in r.items() if k != "lines"} for r in rows]
        out: dict[str, Any] = {"record_count": len(rows)}
        if query.get("pageinate") == "true":
            size, no = int(query.get("page_size") or 50), int(query.get("page_no") or 1)
            if size < 1 or no < 1:
                return 400, {"message": "page_size and page_no must be 1 or more"}
            out.update(page_no=no, page_size=size)
            rows = rows[(no - 1) * size: no * size] if no <= max(1, math.ceil(len(rows) / size)) else []
        out[wrapper] = copy.deepcopy(rows)
        return 200, out

    def _upsert(self, body: Any) -> tuple[int, Any]:
        """POST /api/RecurringInvoice: an array of invoices, each replacing the stored one's fields and lines."""
        if not isinstance(body, list) or not body:
            return 400, {"message": "Expected an array of recurring invoices"}
        with self._lock:
            self.posted.append(copy.deepcopy(body))
            saved = []
            for obj in body:
                if not isinstance(obj, dict):
                    return 400, {"message": "Expected objects"}
                inv = next((i for i in self.data.invoices if i["id"] == obj.get("id")), None)
                if inv is None:
                    return 400, {"message": f"Recurring invoice {obj.get('id')} not found"}
                for k, v in obj.items():
                    inv[k] = copy.deepcopy(v)  # lines replaced wholesale: a line not sent is deleted
                saved.append(copy.deepcopy(inv))
        return 201, saved[0]


def _json(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


# data -----------------------------------------------------------------------------------------------------------


def make_users(n: int, client: int, client_name: str, domain: str, people: Sequence[str] = (),
               start_id: int = 100) -> list[dict[str, Any]]:
    """``n`` Halo users of ``client``: ``people`` first (active), then every 50 users one inactive."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        local = people[i] if i < len(people) else f"user{i:05d}"
        first, _, last = local.partition(".")
        created = (dt.datetime(2025, 1, 6, 9) + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S")
        out.append({"id": start_id + i, "client_id": client, "name": f"{first.title()} {(last or str(i)).title()}",
                    "firstname": first.title(), "surname": (last or str(i)).title(),
                    "emailaddress": f"{local}@{domain}", "site_id": client * 10, "site_name": "Main",
                    "client_name": client_name, "inactive": i >= len(people) and i % 50 == 17,
                    "isserviceaccount": False, "ignoreautomatedbilling": False, "covered_by_contract": True,
                    "datecreated": created, "connectwiseid": 0, "autotaskid": 0})
    return out


def users_csv(users: Sequence[dict[str, Any]]) -> str:
    """A HaloPSA users export of the same users, with the API's field names as its columns."""
    cols = ("id", "name", "firstname", "surname", "emailaddress", "inactive", "client_name", "site_name",
            "datecreated")
    return "\n".join([",".join(cols)] + [",".join(str(u[k]) for k in cols) for u in users]) + "\n"
