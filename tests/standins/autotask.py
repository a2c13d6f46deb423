"""A stand-in for Autotask's REST API, served over real HTTP on 127.0.0.1.

Built from the documented shapes (``shared/PSA_APIS.md`` §1.3 and §2, ``shared/psa-fixtures/autotask``;
trust RECORDED > DOC EXAMPLE > TEST FIXTURE > COMPOSED):

* ``GET /atservicesrest/v1.0/zoneInformation?user=`` — ``{zoneName, url, webUrl, ci}`` (COMPOSED fixture);
  an unknown user gets HTTP 500 ``{"errors": ["Zone information could not be determined"]}`` (the body
  shape is Autotask's; the status for this case is UNCONFIRMED).
* ``/ATServicesRest/V1.0/…`` — the three headers (UserName, Secret, ApiIntegrationCode) on every call,
  else 401. ``POST {Entity}/query`` with ``{MaxRecords ≤ 500, IncludeFields, filter}`` or ``GET
  {Entity}/query?search=``: the filter JSON is parsed and applied (eq, noteq, gt, gte, lt, lte,
  beginsWith, endsWith, contains, exist, notExist, in, notIn; and/or groups); past 500 results
  IncludeFields must hold ``id``. Answers ``{items, pageDetails{count, requestCount, prevPageUrl,
  nextPageUrl}}`` with an opaque ``…/query/next?paging=…&search=…`` link (TEST FIXTURE shape).
* ``GET ThresholdInformation`` — ``{externalRequestThreshold, requestThresholdTimeframe,
  currentTimeframeRequestCount}``; every authenticated call counts, and at the threshold every call is
  refused (429) as Autotask blocks all integrations at 100 %.
* Permission errors the Autotask way: HTTP 500 ``{"errors": ["The logged in Resource does not have the
  adequate permissions to query this entity type."]}``.
* ``Contracts`` (``id, companyID, contractName, status``) and ``Services`` (``id, name, description,
  isActive``: the service catalogue a contract service points at), query only, as the swagger's
  ContractModel and ServiceModel name them (values COMPOSED).
* ``POST ContractServiceAdjustments`` — create only (PATCH/PUT/DELETE: 405), a *change* of units from
  ``effectiveDate``: the ContractServiceUnits row covering that day is split there and every row from it
  on gains ``unitChange``; answers ``{itemId}``. ``ContractServiceUnits`` is query only.
* Faults per entity and page (:class:`Faults`): 429 + Retry-After, 503 bursts, a page that always fails,
  a slow page, a cut-off JSON body.

Every request is recorded in :attr:`AutotaskStandIn.log` (secrets included: tests scan for them).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from standins.server import LocalServer, send

ENTITIES = ("Companies", "Contacts", "Tickets", "TimeEntries", "Contracts", "Services", "ContractServices",
            "ContractServiceUnits", "ContractServiceAdjustments")
NO_PERMISSION = "The logged in Resource does not have the adequate permissions to query this entity type."


@dataclass
class Faults:
    """What goes wrong, by (entity, page number 1-based)."""

    throttle: set[tuple[str, int]] = field(default_factory=set)
    retry_after: str = "1"
    burst: dict[tuple[str, int], int] = field(default_factory=dict)
    broken: tuple[str, int] | None = None
    slow: tuple[str, int] | None = None
    slow_seconds: float = 3.0
    malformed: tuple[str, int] | None = None


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
    """The Autotask database behind the stand-in."""

    companies: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    time_entries: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    contract_services: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)

    def table(self, entity: str) -> list[dict[str, Any]]:
        return {"Companies": self.companies, "Contacts": self.contacts, "Tickets": self.tickets,
                "TimeEntries": self.time_entries, "Contracts": self.contracts, "Services": self.services,
                "ContractServices": self.contract_services,
                "ContractServiceUnits": self.units, "ContractServiceAdjustments": self.adjustments}[entity]


class AutotaskStandIn(LocalServer):
    """The stand-in server; ``with AutotaskStandIn(...) as at:`` serves on 127.0.0.1 at a free port."""

    METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")

    def __init__(self, username: str, secret: str, code: str, data: Data | None = None) -> None:
        self.username, self.secret, self.code = username, secret, code
        self.data = data or Data()
        self.faults = Faults()
        self.permissions = set(ENTITIES) | {"ThresholdInformation"}
        self.threshold = 10_000
        self.used = 0  # requests this hour, all integrations
        self.log: list[Seen] = []
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_id = 7_000_000

    @property
    def rest(self) -> str:
        return f"{self.base}/ATServicesRest/V1.0/"

    def env(self) -> dict[str, str]:
        """The PERSEAT_AUTOTASK_* variables that point the product at this stand-in (zone found by discovery)."""
        return {"PERSEAT_AUTOTASK_USERNAME": self.username, "PERSEAT_AUTOTASK_SECRET": self.secret,
                "PERSEAT_AUTOTASK_INTEGRATION_CODE": self.code,
                "PERSEAT_AUTOTASK_DISCOVERY_URL": f"{self.base}/atservicesrest"}

    def calls(self, entity: str, method: str | None = None) -> list[Seen]:
        """The logged requests for ``entity``."""
        return [s for s in self.log if f"/V1.0/{entity}" in s.path and (method is None or s.method == method)]

    # requests ---------------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("latin-1")
        seen = Seen(method, url.path, query, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.log.append(seen)
        status, headers, data, delay = self._route(method, url.path, query, seen.headers, body)
        seen.status = status
        if delay:
            time.sleep(delay)
        send(h, status, headers, data, "application/json; charset=utf-8")

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, str], bytes, float]:
        low = path.lower()
        if low == "/atservicesrest/v1.0/zoneinformation" and method == "GET":
            if query.get("user", "").lower() != self.username.lower():
                return 500, {}, _errors("Zone information could not be determined"), 0.0
            return 200, {}, _json({"zoneName": "Stand-in Zone", "url": f"{self.base}/ATServicesRest/",
                                   "webUrl": f"{self.base}/", "ci": 5}), 0.0
        if "/ATServicesRest/V1.0/" in path and not path.startswith("/ATServicesRest/V1.0/"):
            return 401, {}, b"", 0.0  # another zone's address: this user is not known there
        if not path.startswith("/ATServicesRest/V1.0/"):
            return 404, {}, _errors(f"No HTTP resource was found that matches the request URI '{path}'."), 0.0
        if (headers.get("username"), headers.get("secret"), headers.get("apiintegrationcode")) != \
                (self.username, self.secret, self.code):
            return 401, {}, b"", 0.0
        with self._lock:
            self.used += 1
            over = self.used > self.threshold
        if over:
            return 429, {}, _errors("API request threshold exceeded: the API is blocked for all integrations "
                                    "until the hourly count falls below the threshold."), 0.0
        parts = path.removeprefix("/ATServicesRest/V1.0/").strip("/").split("/")
        entity = parts[0]
        if entity == "ThresholdInformation" and method == "GET":
            if "ThresholdInformation" not in self.permissions:
                return 500, {}, _errors(NO_PERMISSION), 0.0
            return 200, {}, _json({"externalRequestThreshold": self.threshold, "requestThresholdTimeframe": 60,
                                   "currentTimeframeRequestCount": self.used}), 0.0
        if entity not in ENTITIES:
            return 404, {}, _errors(f"Entity {entity} not found"), 0.0
        if entity not in self.permissions:
            return 500, {}, _errors(NO_PERMISSION), 0.0
        if parts[1:2] == ["query"]:
            if method == "POST" and len(parts) == 2:
                return self._query(entity, body if isinstance(body, dict) else {}, 0)
            if method == "GET" and len(parts) == 2:
                return self._query(entity, _loads(query.get("search", "{}")), 0)
            if method == "GET" and parts[2:] == ["next"]:
                paging = json.loads(base64.urlsafe_b64decode(query.get("paging", "").encode()))
                return self._query(entity, _loads(query.get("search", "{}")), int(paging["offset"]))
        if len(parts) == 1 and entity == "ContractServiceAdjustments":
            if method == "POST":
                return self._adjust(body if isinstance(body, dict) else {})
            return 405, {}, _errors("ContractServiceAdjustments can only be created: the entity does not support "
                                    f"{method}."), 0.0
        if len(parts) == 1 and method in ("POST", "PATCH", "PUT", "DELETE"):
            return 405, {}, _errors(f"{entity} does not support {method}."), 0.0
        return 404, {}, _errors(f"No HTTP resource was found that matches the request URI '{path}'."), 0.0

    def _fault(self, entity: str, page: int) -> tuple[int, dict[str, str], bytes, float] | None:
        f, key = self.faults, (entity, page)

        def count(kind: str) -> int:
            k = f"{kind}:{entity}:{page}"
            with self._lock:
                self._hits[k] = self._hits.get(k, 0) + 1
                return self._hits[k]

        if key in f.throttle and count("throttle") == 1:
            return 429, {"Retry-After": f.retry_after}, _errors("Too many requests."), 0.0
        if key in f.burst and count("burst") <= f.burst[key]:
            return 503, {}, _errors("The service is temporarily unavailable."), 0.0
        if f.broken == key:
            return 503, {}, _errors("The service is temporarily unavailable."), 0.0
        return None

    def _query(self, entity: str, q: dict[str, Any], offset: int) -> tuple[int, dict[str, str], bytes, float]:
        size = int(q.get("MaxRecords") or q.get("maxRecords") or 500)
        if not 1 <= size <= 500:
            return 500, {}, _errors("MaxRecords must be between 1 and 500."), 0.0
        page = offset // size + 1
        bad = self._fault(entity, page)
        if bad is not None:
            return bad
        filters = q.get("filter") or q.get("Filter") or []
        if not filters:
            return 500, {}, _errors("A query must have at least one filter."), 0.0
        try:
            rows = [r for r in self.data.table(entity) if all(_match(r, f) for f in filters)]
        except KeyError as exc:
            return 500, {}, _errors(f"Unable to find {exc.args[0]} in the {entity} Entity."), 0.0
        include = q.get("IncludeFields") or q.get("includeFields") or []
        if len(rows) > 500 and include and "id" not in include:
            return 500, {}, _errors("IncludeFields must contain id when the query returns more than 500 "
                                    "records."), 0.0
        chunk = rows[offset:offset + size]
        items = [{k: v for k, v in r.items() if not include or k in include or k == "id"} for r in chunk]
        nxt = None
        if offset + size < len(rows):
            paging = base64.urlsafe_b64encode(json.dumps({"offset": offset + size}).encode()).decode()
            nxt = f"{self.rest}{entity}/query/next?paging={paging}&search={quote(json.dumps(q), safe='')}"
        data = _json({"items": items, "pageDetails": {"count": len(items), "requestCount": size,
                                                      "prevPageUrl": None, "nextPageUrl": nxt}})
        f = self.faults
        if f.malformed == (entity, page):
            data = data[: len(data) // 2]
        delay = f.slow_seconds if f.slow == (entity, page) else 0.0
        return 200, {}, data, delay

    def _adjust(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        need = ("contractID", "effectiveDate", "unitChange")
        missing = [k for k in need if body.get(k) is None]
        if missing or (body.get("contractServiceID") is None and body.get("serviceID") is None):
            return 500, {}, _errors(f"Missing required field(s): {', '.join(missing) or 'contractServiceID'}"), 0.0
        cs = next((c for c in self.data.contract_services if c["contractID"] == body["contractID"] and
                   (c["id"] == body.get("contractServiceID") or c["serviceID"] == body.get("serviceID"))), None)
        if cs is None:
            return 500, {}, _errors("The contract has no such service."), 0.0
        change = body["unitChange"]
        if not isinstance(change, int) or change == 0:
            return 500, {}, _errors("unitChange must be a non-zero whole number."), 0.0
        day = dt.date.fromisoformat(str(body["effectiveDate"])[:10])
        with self._lock:
            self._next_id += 1
            item = self._next_id
            rows = sorted((u for u in self.data.units if u["contractServiceID"] == cs["id"]),
                          key=lambda u: u["startDate"])
            for u in rows:
                start, end = _date(u["startDate"]), _date(u["endDate"])
                if start < day <= end:  # split the row covering the effective day
                    tail = dict(u, id=item + 500_000, startDate=_stamp(day))
                    u["endDate"] = _stamp(day - dt.timedelta(days=1), end_of_day=True)
                    self.data.units.append(tail)
            for u in self.data.units:
                if u["contractServiceID"] == cs["id"] and _date(u["startDate"]) >= day:
                    u["units"] += change
            self.data.adjustments.append({"id": item, **body, "contractServiceID": cs["id"]})
        return 200, {}, _json({"itemId": item}), 0.0


def _loads(text: str) -> dict[str, Any]:
    got = json.loads(text)
    return got if isinstance(got, dict) else {}


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _stamp(day: dt.date, end_of_day: bool = False) -> str:
    return f"{day.isoformat()}T{'23:59:59' if end_of_day else '00:00:00'}Z"


def _key(v: Any) -> Any:
    """A value as filters compare it: dates as datetimes, numbers as numbers."""
    if isinstance(v, str) and len(v) >= 10 and v[4:5] == "-" and v[7:8] == "-":
        try:
            return dt.datetime.fromisoformat(v[:19])
        except ValueError:
            return v
    return v


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: _key(a) == _key(b), "noteq": lambda a, b: _key(a) != _key(b),
    "gt": lambda a, b: a is not None and _key(a) > _key(b), "gte": lambda a, b: a is not None and _key(a) >= _key(b),
    "lt": lambda a, b: a is not None and _key(a) < _key(b), "lte": lambda a, b: a is not None and _key(a) <= _key(b),
    "beginswith": lambda a, b: str(a or "").lower().startswith(str(b).lower()),
    "endswith": lambda a, b: str(a or "").lower().endswith(str(b).lower()),
    "contains": lambda a, b: str(b).lower() in str(a or "").lower(),
    "exist": lambda a, b: a not in (None, ""), "notexist": lambda a, b: a in (None, ""),
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


def _match(row: dict[str, Any], f: dict[str, Any]) -> bool:
    """Whether ``row`` passes one Autotask filter item (KeyError names an unknown field)."""
    op = str(f.get("op", "")).lower()
    if op in ("and", "or"):
        results = [_match(row, i) for i in f.get("items") or []]
        return all(results) if op == "and" else any(results)
    name = f.get("field")
    if name not in row:
        raise KeyError(name)
    return _OPS[op](row[name], f.get("value"))


def _json(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def _errors(*messages: str) -> bytes:
    """Autotask's error body."""
    return _json({"errors": list(messages)})


# data -----------------------------------------------------------------------------------------------------------


def make_contacts(n: int, company: int, domain: str, people: Sequence[str] = (), start_id: int = 29_000_000
                  ) -> list[dict[str, Any]]:
    """``n`` contacts of ``company``: ``people`` (local parts such as "helen.park") first, active; then every 50
    contacts one inactive (isActive 0), the rest active (isActive 1), created a minute apart."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        local = people[i] if i < len(people) else f"contact{i:05d}"
        first, _, last = local.partition(".")
        created = (dt.datetime(2025, 1, 6, 9) + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        out.append({"id": start_id + i, "companyID": company, "firstName": first.title(),
                    "lastName": (last or f"{i}").title(), "emailAddress": f"{local}@{domain}",
                    "isActive": 0 if i >= len(people) and i % 50 == 17 else 1, "createDate": created,
                    "lastActivityDate": created, "lastModifiedDate": created, "phone": "551-555-5513"})
    return out


def contacts_csv(contacts: Sequence[dict[str, Any]]) -> str:
    """An Autotask contacts export of the same contacts, with the API's field names as its columns."""
    cols = ("id", "companyID", "firstName", "lastName", "emailAddress", "isActive", "createDate")
    lines = [",".join(cols)] + [",".join(str(c[k]) for k in cols) for c in contacts]
    return "\n".join(lines) + "\n"
