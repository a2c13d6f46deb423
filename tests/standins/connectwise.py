"""A stand-in for ConnectWise PSA (Manage) REST, served over real HTTP on 127.0.0.1.

Built from the documented shapes (``shared/PSA_APIS.md`` §1.2 and §2, ``shared/psa-fixtures/connectwise``;
trust RECORDED > DOC EXAMPLE > TEST FIXTURE > COMPOSED — every CW fixture is TEST FIXTURE or COMPOSED):

* ``GET /login/companyinfo/{company}`` — the ``companyinfo.json`` shape (``Codebase``, ``IsCloud``…); an
  unknown company gets ``null`` (COMPOSED: what CW answers there is not documented in what we hold).
* ``/{codebase}apis/3.0/…`` — every call needs ``Authorization: Basic base64("{company}+{public}:{private}")``
  and a ``clientId`` header (401 without either, CW's ``{code, message}`` error body, COMPOSED wording).
  Another codebase's path answers 404 (the codebase moved).
* Lists (``company/contacts``, ``time/entries``, ``finance/agreements/{id}/additions``): ``conditions``
  parsed for what the client sends (``a/b=1``, ``>=``, ``<``, ``[date]``, quoted strings, ``in (…)``,
  ``and``; anything else is a 400 naming it), ``page`` (1-based), ``pageSize`` ≤ 1,000 (default 25; more is a
  400), ``orderBy`` id; a ``Link`` header with ``rel="next"`` and ``rel="last"`` as in
  ``pagination_link_header.txt`` while there are more pages.
* Records: ``company/companies/{id}``, ``finance/agreements/{id}``, ``…/additions/{id}`` (404 when absent),
  ``system/info``.
* ``PATCH …/additions/{id}``: a JSON Patch document (an array of ``{op, path, value}``) — anything else, an
  unknown op or a path that is not a field of an addition is a 400 with ``errors[]``; ``quantity`` must be a
  number. Needs the agreements edit permission.
* Permissions per area (403 ``{code: "Forbidden"}``); faults per list and page (:class:`Faults`): 429 with
  ``Retry-After``, 503 bursts, a page that always fails, a slow page, a truncated JSON body.

Every request is recorded in :attr:`ConnectWiseStandIn.log` (secrets included: tests scan for them).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from standins.server import LocalServer, send

CODEBASE = "v2025_1/"
AREAS = frozenset({"companies", "contacts", "time", "agreements", "agreements-edit", "system"})
ADDITION_FIELDS = frozenset({"product", "description", "quantity", "lessIncluded", "unitPrice", "unitCost",
                             "billCustomer", "effectiveDate", "cancelledDate", "taxableFlag",
                             "prorateCurrentPeriodFlag", "invoiceDescription", "uom", "sequenceNumber"})


@dataclass
class Faults:
    """What goes wrong, by list (``company/contacts``…) and page number (1-based)."""

    throttle: set[tuple[str, int]] = field(default_factory=set)  # first request for the page: 429 + Retry-After
    retry_after: str = "1"
    burst: dict[tuple[str, int], int] = field(default_factory=dict)  # that many 503s before it answers
    broken: tuple[str, int] | None = None  # always 503
    slow: tuple[str, int] | None = None
    slow_seconds: float = 3.0
    malformed: tuple[str, int] | None = None  # body cut off mid-JSON
    patch_drift: bool = False  # a PATCH is accepted but the quantity stays (a workflow resets it)


@dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str
    status: int = 0


class ConnectWiseStandIn(LocalServer):
    """The stand-in server; ``with ConnectWiseStandIn(...) as cw:`` serves on 127.0.0.1 at a free port."""

    METHODS = ("GET", "PATCH")

    def __init__(self, company: str, public: str, private: str, client_id: str) -> None:
        self.company, self.public, self.private, self.client_id = company, public, private, client_id
        self.companies: dict[int, dict[str, Any]] = {}
        self.contacts: list[dict[str, Any]] = []
        self.time_entries: list[dict[str, Any]] = []
        self.agreements: dict[int, dict[str, Any]] = {}
        self.additions: dict[int, list[dict[str, Any]]] = {}
        self.permissions: frozenset[str] = AREAS
        self.faults = Faults()
        self.codebase = CODEBASE
        self.log: list[Seen] = []
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()

    # server -----------------------------------------------------------------------------------------------

    @property
    def site(self) -> str:
        return self.base

    @property
    def api(self) -> str:
        return f"{self.site}/{self.codebase}apis/3.0"

    def env(self) -> dict[str, str]:
        """The PERSEAT_CW_* variables that point the product at this stand-in."""
        return {"PERSEAT_CW_SITE": self.site, "PERSEAT_CW_COMPANY": self.company,
                "PERSEAT_CW_PUBLIC_KEY": self.public, "PERSEAT_CW_PRIVATE_KEY": self.private,
                "PERSEAT_CW_CLIENT_ID": self.client_id}

    def auth_header(self) -> str:
        raw = f"{self.company}+{self.public}:{self.private}"
        return "Basic " + base64.b64encode(raw.encode()).decode()

    # requests ---------------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8") if length else ""
        seen = Seen(method, url.path, query, {k.lower(): v for k, v in h.headers.items()}, raw)
        with self._lock:
            self.log.append(seen)
        status, headers, body, delay = self._route(method, url.path, query, seen.headers, raw)
        seen.status = status
        if delay:
            time.sleep(delay)
        send(h, status, headers, body, "application/json; charset=utf-8")

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               raw: str) -> tuple[int, dict[str, str], bytes, float]:
        m = re.fullmatch(r"/login/companyinfo/([^/]+)", path)
        if m and method == "GET":
            if m.group(1).lower() != self.company.lower():
                return 200, {}, b"null", 0.0
            return 200, {}, _json({"CompanyName": "Harborview IT", "Codebase": self.codebase,
                                   "VersionCode": "v2025.1", "VersionNumber": "v4.6.12345",
                                   "CompanyID": self.company, "IsCloud": False}), 0.0
        prefix = f"/{self.codebase}apis/3.0/"
        if not path.startswith(prefix):
            return 404, {}, _error("NotFound", f"The requested URL {path} was not found"), 0.0
        if headers.get("authorization") != self.auth_header():
            return 401, {}, _error("Unauthorized", "Authentication failed: the public/private key pair or company "
                                   "is not valid"), 0.0
        if headers.get("clientid") != self.client_id:
            return 401, {}, _error("Unauthorized", "A valid clientId header is required (developer.connectwise.com)"), \
                0.0
        rest = path[len(prefix):].strip("/")
        if rest == "system/info":
            return 200, {}, _json({"version": "v2025.1.12345", "isCloud": False, "serverTimeZone": "UTC",
                                   "cloudRegion": "NA"}), 0.0
        if rest in ("company/companies", "company/contacts", "time/entries", "finance/agreements"):
            area = {"company/companies": "companies", "company/contacts": "contacts", "time/entries": "time",
                    "finance/agreements": "agreements"}[rest]
            if area not in self.permissions:
                return _forbidden(rest)
            rows = {"company/companies": list(self.companies.values()), "company/contacts": self.contacts,
                    "time/entries": self.time_entries, "finance/agreements": list(self.agreements.values())}[rest]
            return self._list(rest, rows, query)
        m = re.fullmatch(r"company/companies/(\d+)", rest)
        if m:
            if "companies" not in self.permissions:
                return _forbidden(rest)
            company = self.companies.get(int(m.group(1)))
            if company is None:
                return 404, {}, _error("NotFound", f"Company with id {m.group(1)} not found"), 0.0
            return 200, {}, _json(company), 0.0
        m = re.fullmatch(r"finance/agreements/(\d+)(?:/additions(?:/(\d+))?)?", rest)
        if m:
            if "agreements" not in self.permissions:
                return _forbidden(rest)
            a = int(m.group(1))
            if a not in self.agreements:
                return 404, {}, _error("NotFound", f"Agreement with id {a} not found"), 0.0
            if "/additions" not in rest:
                return 200, {}, _json(self.agreements[a]), 0.0
            if m.group(2) is None:
                return self._list(f"finance/agreements/{a}/additions", self.additions.get(a, []), query)
            add = next((x for x in self.additions.get(a, []) if x["id"] == int(m.group(2))), None)
            if add is None:
                return 404, {}, _error("NotFound", f"Addition with id {m.group(2)} not found"), 0.0
            if method == "PATCH":
                if "agreements-edit" not in self.permissions:
                    return _forbidden(rest)
                return self._patch(add, raw)
            return 200, {}, _json(add), 0.0
        return 404, {}, _error("NotFound", f"The requested URL {path} was not found"), 0.0

    def _list(self, name: str, rows: list[dict[str, Any]],
              query: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        try:
            size = int(query.get("pageSize", "25"))
            page = int(query.get("page", "1"))
        except ValueError:
            return 400, {}, _invalid("page and pageSize must be whole numbers"), 0.0
        if not 1 <= size <= 1000:
            return 400, {}, _invalid(f"pageSize {size} is outside 1 to 1000"), 0.0
        if page < 1:
            return 400, {}, _invalid(f"page {page} is not 1 or more"), 0.0
        try:
            test = conditions(query.get("conditions", ""))
        except ValueError as exc:
            return 400, {}, _invalid(f"conditions: {exc}"), 0.0
        chosen = sorted((r for r in rows if test(r)), key=lambda r: r.get("id", 0))
        f = self.faults
        key = (name, page)
        if key in f.throttle and self._first(f"throttle:{name}:{page}"):
            return 429, {"Retry-After": f.retry_after}, _error("TooManyRequests", "Too many requests"), 0.0
        if key in f.burst and self._count(f"burst:{name}:{page}") <= f.burst[key]:
            return 503, {}, _error("ServiceUnavailable", "The service is temporarily unavailable"), 0.0
        if f.broken == key:
            return 503, {}, _error("ServiceUnavailable", "The service is temporarily unavailable"), 0.0
        delay = f.slow_seconds if f.slow == key else 0.0
        pages = max(1, -(-len(chosen) // size))
        body = _json(chosen[(page - 1) * size: page * size])
        if f.malformed == key:
            body = body[: len(body) // 2]
        headers: dict[str, str] = {}
        if pages > 1:
            def at(n: int) -> str:
                return f"{self.api}/{name}?{urlencode({**query, 'page': str(n)})}"
            links = []
            if page < pages:
                links.append(f'<{at(page + 1)}>; rel="next"')
            links.append(f'<{at(pages)}>; rel="last"')
            headers["Link"] = ", ".join(links)
        return 200, headers, body, delay

    def _patch(self, addition: dict[str, Any], raw: str) -> tuple[int, dict[str, str], bytes, float]:
        try:
            ops = json.loads(raw)
        except ValueError:
            return 400, {}, _invalid("the body is not JSON"), 0.0
        if not isinstance(ops, list) or not ops:
            return 400, {}, _invalid("a PATCH body is a JSON Patch document: an array of operations"), 0.0
        for op in ops:
            if not isinstance(op, dict) or set(op) - {"op", "path", "value"} or "op" not in op or "path" not in op:
                return 400, {}, _invalid("each operation is {op, path, value}"), 0.0
            if op["op"] not in ("replace", "add", "remove"):
                return 400, {}, _invalid(f"unknown op {op['op']!r}"), 0.0
            path = str(op["path"]).lstrip("/")
            if path not in ADDITION_FIELDS:
                return 400, {}, _json({"code": "InvalidObject", "message": "Addition object is invalid",
                                       "errors": [{"code": "InvalidField", "message": f"The field {path} is not "
                                                   "valid on Addition", "resource": "Addition", "field": path}]}), 0.0
            if path == "quantity" and (isinstance(op.get("value"), bool)
                                       or not isinstance(op.get("value"), int | float)):
                return 400, {}, _invalid("quantity must be a number"), 0.0
        with self._lock:
            for op in ops:
                path = str(op["path"]).lstrip("/")
                if path == "quantity" and self.faults.patch_drift:
                    continue
                addition[path] = op.get("value")
            addition["_info"] = {"lastUpdated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "updatedBy": self.public}
        return 200, {}, _json(addition), 0.0

    def _first(self, key: str) -> bool:
        return self._count(key) == 1

    def _count(self, key: str) -> int:
        with self._lock:
            self.hits[key] = self.hits.get(key, 0) + 1
            return self.hits[key]


# conditions -------------------------------------------------------------------------------------------------

_CLAUSE = re.compile(r'^\s*([A-Za-z_][\w/]*)\s*(>=|<=|!=|=|<|>|\bin\b|\blike\b)\s*(.+?)\s*$', re.I)


def _split_and(text: str) -> list[str]:
    """``text`` split at ``and`` outside quotes, brackets and parentheses."""
    out, depth, quote, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quote = not quote
        elif not quote and c in "([":
            depth += 1
        elif not quote and c in ")]":
            depth -= 1
        elif not quote and depth == 0 and text[i:i + 5].lower() == " and ":
            out.append(text[start:i])
            start = i = i + 5
            continue
        elif not quote and depth == 0 and text[i:i + 4].lower() == " or ":
            raise ValueError("'or' is not supported by this stand-in")
        i += 1
    out.append(text[start:])
    return out


def _value(text: str) -> Any:
    t = text.strip()
    if t.startswith('"') and t.endswith('"'):
        return t[1:-1]
    if t.startswith("[") and t.endswith("]"):
        return dt.datetime.fromisoformat(t[1:-1].replace("Z", "+00:00"))
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() == "null":
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", t):
        return float(t) if "." in t else int(t)
    raise ValueError(f"{t!r} is not a value (strings in double quotes, dates in [ ])")


def _field(row: dict[str, Any], path: str) -> Any:
    v: Any = row
    for part in path.split("/"):
        v = v.get(part) if isinstance(v, dict) else None
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+Z?", v):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v


def conditions(text: str) -> Any:
    """A predicate over a record for a ConnectWise ``conditions`` string (the subset in the module docstring)."""
    if not text.strip():
        return lambda row: True
    tests = []
    for clause in _split_and(text):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"cannot read {clause.strip()!r}")
        path, op, raw = m.group(1), m.group(2).lower(), m.group(3)
        if op == "in":
            if not (raw.startswith("(") and raw.endswith(")")):
                raise ValueError(f"'in' takes a list in parentheses: {clause.strip()!r}")
            want: Any = [_value(x) for x in raw[1:-1].split(",")]
        else:
            want = _value(raw)
        tests.append((path, op, want))

    def test(row: dict[str, Any]) -> bool:
        return all(_holds(_field(row, path), op, want) for path, op, want in tests)
    return test


def _holds(v: Any, op: str, want: Any) -> bool:
    """``v op want`` as ConnectWise compares (a missing field never matches an ordering)."""
    try:
        if op == "=":
            return bool(v == want)
        if op == "!=":
            return bool(v != want)
        if op == "in":
            return v in want
        if op == "like":
            return isinstance(v, str) and re.fullmatch(str(want).replace("*", ".*"), v, re.I) is not None
        if v is None:
            return False
        return bool({">=": v >= want, "<=": v <= want, ">": v > want, "<": v < want}[op])
    except TypeError:
        return False


def _json(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def _error(code: str, message: str) -> bytes:
    return _json({"code": code, "message": message})


def _invalid(message: str) -> bytes:
    return _json({"code": "InvalidObject", "message": message, "errors": [{"code": "Invalid", "message": message}]})


def _forbidden(what: str) -> tuple[int, dict[str, str], bytes, float]:
    return 403, {}, _error("Forbidden", f"You do not have permission to access {what}."), 0.0


# data -------------------------------------------------------------------------------------------------------


def company(n: int, name: str, identifier: str) -> dict[str, Any]:
    """A company record (the company_companies.json shape)."""
    return {"id": n, "identifier": identifier, "name": name, "status": {"id": 1, "name": "Active"},
            "types": [{"id": 1, "name": "Client"}], "deletedFlag": False,
            "_info": {"lastUpdated": "2025-01-02T10:00:00Z", "updatedBy": "admin"}}


def make_contacts(n: int, company_id: int, name: str, domain: str, people: Sequence[str] = (),
                  start_id: int = 1) -> list[dict[str, Any]]:
    """``n`` contacts of one company (the company_contacts.json shape): ``people`` (local parts) first, then a mix
    — every 40: an inactive contact, a "No Longer Employed" type, a contact whose default e-mail is its second
    one; the rest plain."""
    out = []
    for i in range(n):
        local = people[i] if i < len(people) else f"contact{i:05d}"
        first, _, last = (local.replace(".", " ").title() + " ").partition(" ")
        email = f"{local}@{domain}"
        items = [{"id": 1, "type": {"id": 1, "name": "Email"}, "value": email, "defaultFlag": True,
                  "communicationType": "Email", "domain": f"@{domain}"}]
        kind = "plain" if i < len(people) else {7: "inactive", 11: "former", 13: "second"}.get(i % 40, "plain")
        if kind == "second":
            items = [{"id": 2, "type": {"id": 1, "name": "Email"}, "value": f"old.{local}@{domain}",
                      "defaultFlag": False, "communicationType": "Email"},
                     {"id": 3, "type": {"id": 2, "name": "Direct"}, "value": "2075550100", "defaultFlag": True,
                      "communicationType": "Phone"}, *items]
        created = (dt.datetime(2025, 1, 6, 9) + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({"id": start_id + i, "firstName": first.strip() or local, "lastName": last.strip(),
                    "company": {"id": company_id, "identifier": name.split()[0], "name": name},
                    "site": {"id": 1, "name": "Main"}, "inactiveFlag": kind == "inactive",
                    "defaultFlag": i == 0, "defaultBillingFlag": False, "communicationItems": items,
                    "types": [{"id": 4, "name": "No Longer Employed"}] if kind == "former" else [],
                    "_info": {"lastUpdated": created, "dateEntered": created, "updatedBy": "admin"}})
    return out


def contacts_csv(contacts: Sequence[dict[str, Any]]) -> str:
    """The same contacts as a ConnectWise contacts export (the grid's headers the importer accepts:
    First Name, Last Name, Email, Inactive, Type, Company, Date Entered)."""
    lines = ["First Name,Last Name,Email,Inactive,Type,Company,Date Entered"]
    for c in contacts:
        email = next((x["value"] for x in c["communicationItems"] if x["communicationType"] == "Email"
                      and x["defaultFlag"]), "")
        types = ", ".join(t["name"] for t in c["types"])
        lines.append(",".join(_csv(v) for v in (c["firstName"], c["lastName"], email,
                                                "Yes" if c["inactiveFlag"] else "No", types, c["company"]["name"],
                                                c["_info"]["dateEntered"][:10])))
    return "\n".join(lines) + "\n"


def make_time_entries(company_id: int, name: str, period: str, n: int, start_id: int = 1000) -> list[dict[str, Any]]:
    """``n`` time entries of one company in ``period`` (YYYY-MM) plus one the day before it and one the day after
    (the time_entries.json shape; the one before the period is on the first ticket): billable options cycle
    Billable, DoNotBill, NoCharge, NoDefault; every third entry is on a charge code, the rest on tickets (two
    entries per ticket)."""
    year, month = map(int, period.split("-"))
    first = dt.datetime(year, month, 1, 8)
    options = ("Billable", "DoNotBill", "NoCharge", "NoDefault")
    out = []
    for i in range(-1, n + 1):
        when = first - dt.timedelta(days=1) if i < 0 else first + dt.timedelta(days=min(i, 27), hours=i % 5)
        if i == n:
            when = dt.datetime(year + month // 12, month % 12 + 1, 1, 9)
        hours = 0.25 * (1 + i % 8)
        on_ticket = i < 0 or i % 3 != 2
        out.append({"id": start_id + i + 1, "company": {"id": company_id, "identifier": name.split()[0],
                                                         "name": name},
                    "chargeToId": 5000 + max(i, 0) // 2 if on_ticket else 17,
                    "chargeToType": "ServiceTicket" if on_ticket else "ChargeCode",
                    "member": {"id": 176, "identifier": "tech1"},
                    "timeStart": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "timeEnd": (when + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "actualHours": hours, "billableOption": options[max(i, 0) % 4], "hoursBilled": hours,
                    "status": "Open", "_info": {"lastUpdated": "2026-11-30T18:00:00Z", "updatedBy": "tech1"}})
    return out


def agreement(n: int, company_id: int, name: str) -> dict[str, Any]:
    """An agreement record (the finance_agreements.json shape)."""
    return {"id": n, "name": name, "type": {"id": 5, "name": "Managed Services"}, "agreementStatus": "Active",
            "company": {"id": company_id, "name": name}, "cancelledFlag": False, "prorateFlag": True,
            "billingCycle": {"id": 1, "name": "Monthly"}}


def addition(n: int, agreement_id: int, product: str, quantity: float, **kw: Any) -> dict[str, Any]:
    """An addition (the COMPOSED finance_agreement_additions.json shape)."""
    return {"id": n, "agreementId": agreement_id, "product": {"id": n + 50, "identifier": product},
            "description": kw.pop("description", f"{product} per user"), "quantity": quantity, "lessIncluded": 0,
            "unitPrice": 95.0, "unitCost": 40.0, "billCustomer": "Billable", "effectiveDate": "2025-01-01T00:00:00Z",
            "cancelledDate": None, "taxableFlag": True, "prorateCurrentPeriodFlag": False, "uom": "monthly",
            "agreementStatus": "Active", **kw}


def _csv(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value
