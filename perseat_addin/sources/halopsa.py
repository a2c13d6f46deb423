"""HaloPSA: a client's users, its time (ticket actions) for a period, and its recurring-invoice lines.

Sign-in is OAuth 2.0 client credentials: the token address comes from ``GET {url}/api/authinfo``
(``auth_url``; hosted Halo also names its tenant), else ``{url}/auth``; then
``POST {auth}/token?tenant=<tenant>`` with ``grant_type=client_credentials, client_id, client_secret,
scope=all`` gives ``{access_token, expires_in}``, sent as ``Authorization: Bearer …``. A token that
expires mid-run (401) is renewed once.

Lists are paged with ``pageinate=true&page_size=N&page_no=K`` (1-based) and come wrapped as
``{record_count, users|clients|tickets|actions|invoices: […]}``; pages are read to ``record_count``.

* ``GET /api/Client/{id}`` — is the client's PSACompanyID there (404: no such client)?
* ``GET /api/Users?client_id=N&includeinactive=true`` (``inactive``, ``emailaddress``, ``datecreated``)
  → Roster rows by the HaloPSA users export's rules (:func:`~perseat_addin.imports.roster.read_records`);
* ``GET /api/Tickets?client_id=N`` then ``GET /api/Actions?ticket_id=T&timeentriesonly=true`` with the
  period's dates → Usage rows by the ``halopsa-time`` export's rules (``timetaken`` hours,
  ``actisbillable`` false → Billable = No, ``nonbilltime`` as a row of its own);
* ``GET /api/RecurringInvoice/{id}?includedetails=true`` and ``POST /api/RecurringInvoice`` with the
  *whole* invoice (Halo's POST is an upsert of everything sent: every line goes back, only the one
  quantity changed) for the push: :meth:`HaloClient.current_quantity`, :meth:`HaloClient.set_quantity`.

Settings (environment, then the OS keyring): ``PERSEAT_HALO_URL``, ``PERSEAT_HALO_CLIENT_ID``,
``PERSEAT_HALO_CLIENT_SECRET``, optional ``PERSEAT_HALO_TENANT`` (hosted Halo) and
``PERSEAT_HALO_AUTH_URL`` (the authorisation server, skipping authinfo).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from perseat_addin.imports.roster import ImportResult, read_records
from perseat_addin.imports.usage import USAGE_SOURCES, UsageImport, read_usage_records
from perseat_addin.model import Period
from perseat_addin.money import to_decimal
from perseat_addin.sources import credentials
from perseat_addin.sources.autotask import company_id, period_days
from perseat_addin.sources.credentials import KeyringGet, Setting
from perseat_addin.sources.graph import Check
from perseat_addin.sources.http import HttpClient, Policy, Secret, SourceError, VendorClient, error_detail
from perseat_addin.sources.writer import PsaRecord, PushTarget, product_key

SERVICE = "HaloPSA"
PAGE_SIZE = 500
SCOPE = "all"
SETTINGS = (
    Setting("PERSEAT_HALO_URL", "the Halo address, e.g. https://yourcompany.halopsa.com"),
    Setting("PERSEAT_HALO_CLIENT_ID", "the API application's Client ID"),
    Setting("PERSEAT_HALO_CLIENT_SECRET", "the API application's Client Secret", secret=True),
    Setting("PERSEAT_HALO_TENANT", "the tenant name of a hosted Halo", optional=True),
    Setting("PERSEAT_HALO_AUTH_URL", "the authorisation server, e.g. https://yourcompany.halopsa.com/auth",
            optional=True),
)
USER_FIELDS = ("id", "name", "firstname", "surname", "emailaddress", "inactive", "client_name", "site_name",
               "datecreated")
_SETUP = ("in Halo, Configuration ▸ Integrations ▸ HaloPSA API ▸ View Applications ▸ the application: "
          "Authentication Method Client ID and Secret (Services), Login Type Agent")


@dataclass(frozen=True)
class HaloConfig:
    """Where and as which API application to call Halo."""

    url: str
    client_id: str
    secret: Secret
    tenant: str = ""
    auth_url: str = ""  # blank: ask /api/authinfo

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, keyring_get: KeyringGet | None = None) -> HaloConfig:
        """The settings from the environment, then the OS keyring (SourceError names what is missing)."""
        got = credentials.read(SETTINGS, env=env, keyring_get=keyring_get, label=SERVICE)
        secret = got["PERSEAT_HALO_CLIENT_SECRET"]
        assert isinstance(secret, Secret)
        return cls(str(got["PERSEAT_HALO_URL"]).rstrip("/"), str(got["PERSEAT_HALO_CLIENT_ID"]), secret,
                   str(got.get("PERSEAT_HALO_TENANT", "")), str(got.get("PERSEAT_HALO_AUTH_URL", "")).rstrip("/"))

    def __repr__(self) -> str:
        return f"HaloConfig(url={self.url!r}, client_id={self.client_id!r}, tenant={self.tenant!r})"


@dataclass(frozen=True)
class LineQuantity:
    """A recurring-invoice line's quantity: the invoice, the line's id and its ``qty_order``."""

    invoice_id: int
    line_id: int
    quantity: Decimal


@dataclass(frozen=True)
class QuantityWrite:
    """What :meth:`HaloClient.set_quantity` did, with the read-back."""

    invoice_id: int
    line_id: int
    old: Decimal
    new: Decimal
    written: bool


class _Token:
    """The application's bearer token (the ``Auth`` of every API call): fetched when needed, renewed once on a 401."""

    def __init__(self, halo: HaloClient) -> None:
        self.halo = halo
        self._token: Secret | None = None
        self._until = 0.0

    def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._until:
            self._token, lifetime = self.halo.token()
            self._until = time.monotonic() + max(0.0, lifetime - 60)
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401

    def refresh(self) -> None:
        self._token = None


class HaloClient(VendorClient):
    """HaloPSA for one API application. Use as a context manager."""

    label = SERVICE
    key_column = "PSACompanyID"
    usage_label = USAGE_SOURCES["halopsa-time"]  # the Usage Source of its actions' time, as the export's

    def __init__(self, config: HaloConfig, *, policy: Policy | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.http = HttpClient(SERVICE, policy=policy, explain=self._explain, sleep=sleep)
        self.http.redactor.add(config.secret)
        self._auth = _Token(self)
        self._auth_url = config.auth_url

    @classmethod
    def from_env(cls) -> HaloClient:
        """A client with the settings of :meth:`HaloConfig.load`."""
        return cls(HaloConfig.load())

    @property
    def identity(self) -> str:
        """Which application signs in, for ``perseat connect`` (no secret)."""
        return f"client id {self.config.client_id}"

    # sign-in ------------------------------------------------------------------------------------------------

    def auth_url(self) -> str:
        """The authorisation server: PERSEAT_HALO_AUTH_URL, else authinfo's ``auth_url``, else ``{url}/auth``."""
        if not self._auth_url:
            found = ""
            try:
                body = self.http.json("GET", f"{self.config.url}/api/authinfo", what="finding Halo's sign-in address")
            except SourceError as exc:
                if exc.status is None or (exc.status >= 500 and exc.status != 501):
                    raise
            else:
                got = body.get("auth_url") if isinstance(body, dict) else None
                found = got.rstrip("/") if isinstance(got, str) and got.startswith(("http://", "https://")) else ""
            self._auth_url = found or f"{self.config.url}/auth"
        return self._auth_url

    def token(self) -> tuple[Secret, float]:
        """A fresh access token and its lifetime in seconds."""
        c = self.config
        url = f"{self.auth_url()}/token"
        params = {"tenant": c.tenant} if c.tenant else None
        form = {"grant_type": "client_credentials", "client_id": c.client_id, "client_secret": c.secret.reveal(),
                "scope": SCOPE}
        body = self.http.json("POST", url, what="signing in", params=params, data=form, explain=self._refused)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self.http.fail(f"{SERVICE}: signing in gave no access token; try again later")
        self.http.redactor.add(token)
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return Secret(token), lifetime

    def _refused(self, response: httpx.Response, what: str) -> str:
        """The token endpoint's refusal in words."""
        error, said = error_detail(response)
        if response.status_code in (400, 401) and error in ("invalid_client", "unauthorized_client", ""):
            return (f"{SERVICE}: signing in failed — bad credentials ({error or response.status_code}: "
                    f"{said or 'refused'}). Check PERSEAT_HALO_CLIENT_ID and PERSEAT_HALO_CLIENT_SECRET "
                    f"({_SETUP}); for hosted Halo set PERSEAT_HALO_TENANT")
        if error == "invalid_scope":
            return (f"{SERVICE}: signing in failed — the application may not use scope {SCOPE!r} ({said}); give it "
                    "the permissions in its Permissions tab")
        if response.status_code == 404:
            return (f"{SERVICE}: no sign-in at {self.auth_url()}/token (HTTP 404); check PERSEAT_HALO_URL, or set "
                    "PERSEAT_HALO_AUTH_URL to the authorisation server")
        hint = f"; check PERSEAT_HALO_TENANT ({self.config.tenant})" if self.config.tenant else ""
        return f"{SERVICE}: signing in failed (HTTP {response.status_code} {error}: {said or 'no reason given'}){hint}"

    def _explain(self, response: httpx.Response, what: str) -> str:
        """A Halo API refusal in words."""
        _, said = error_detail(response)
        status = response.status_code
        if status == 401:
            return (f"{SERVICE} refused the application's token for {what} even after signing in again (HTTP 401"
                    f"{': ' + said if said else ''}); check the application in Halo")
        if status == 403:
            return (f"{SERVICE} denied {what} (HTTP 403{': ' + said if said else ''}): the API application lacks a "
                    "permission — in its Permissions tab allow read:customers, read:tickets and read:invoices "
                    "(edit:invoices to push), or 'all'")
        if status == 404:
            return f"{SERVICE} found nothing for {what} (HTTP 404{': ' + said if said else ''})"
        return f"{SERVICE} refused {what} (HTTP {status}{': ' + said if said else ''})"

    # reading ------------------------------------------------------------------------------------------------

    def get(self, path: str, *, what: str, params: Mapping[str, str] | None = None,
            explain: Callable[[httpx.Response, str], str] | None = None) -> Any:
        """One GET of ``/api/{path}``."""
        return self.http.json("GET", f"{self.config.url}/api/{path}", what=what, params=params, auth=self._auth,
                              explain=explain)

    def pages(self, path: str, wrapper: str, *, what: str, params: Mapping[str, str] | None = None,
              progress: Callable[[int], None] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Each page of a wrapped list (``{record_count, <wrapper>: […]}``) to ``record_count``."""
        page, pages = 1, 1
        while page <= pages:
            query = {**(params or {}), "pageinate": "true", "page_size": str(PAGE_SIZE), "page_no": str(page)}
            here = what if page == 1 else f"{what} (page {page})"
            body = self.get(path, what=here, params=query)
            items = body.get(wrapper) if isinstance(body, dict) else None
            count = body.get("record_count") if isinstance(body, dict) else None
            if not isinstance(items, list) or not isinstance(count, int):
                raise self.http.fail(f"{SERVICE} sent a page of {what} without \"{wrapper}\" and \"record_count\"; "
                                     "stopped (nothing was changed)")
            pages = math.ceil(count / PAGE_SIZE)
            if page < pages and not items:
                raise self.http.fail(f"{SERVICE} sent an empty page {page} of {what} before its {count} records; "
                                     "stopped (nothing was changed)")
            yield [i for i in items if isinstance(i, dict)]
            if progress is not None:
                progress(len(items))
            page += 1

    def all(self, path: str, wrapper: str, *, what: str, params: Mapping[str, str] | None = None,
            progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every record of :meth:`pages`."""
        return [r for p in self.pages(path, wrapper, what=what, params=params, progress=progress) for r in p]

    def client(self, client: int) -> dict[str, Any]:
        """The Halo client with that id; SourceError (unknown client) when there is none."""
        def explain(response: httpx.Response, what: str) -> str:
            if response.status_code == 404:
                return (f"{SERVICE} has no client with id {client} (the client's PSACompanyID); check the id in Halo "
                        "(Customers ▸ the client: the number in its address) and type it in Clients")
            return self._explain(response, what)
        body = self.get(f"Client/{client}", what=f"client {client}", explain=explain)
        if not isinstance(body, dict) or not body.get("id"):
            raise self.http.fail(f"{SERVICE} has no client with id {client} (the client's PSACompanyID); check the id "
                                 "in Halo and type it in Clients", code="unknown")
        return body

    def clients(self, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every client (``/api/Client``, inactive ones too)."""
        return self.all("Client", "clients", what="the clients", params={"includeinactive": "true"},
                        progress=progress)

    def users(self, client: int, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every user of the client, inactive ones too."""
        return self.all("Users", "users", what=f"the users of client {client}",
                        params={"client_id": str(client), "includeinactive": "true"}, progress=progress)

    def fetch(self, key: str, progress: Callable[[int], None] | None = None) -> ImportResult:
        """The client's users as an import, by the HaloPSA users export's rules (every page, or nothing)."""
        cid = company_id(key, service=SERVICE)
        name = str(self.client(cid).get("name") or "")
        users = self.users(cid, progress)
        headers = list(USER_FIELDS)
        records = [(n, [u.get(h) for h in headers]) for n, u in enumerate(users, start=1)]
        shown = f"HaloPSA, client {cid}" + (f" ({name})" if name else "")
        return read_records(headers, records, "halopsa", shown=shown)

    def fetch_usage(self, key: str, period: Period | str, client: str | None = None,
                    progress: Callable[[int], None] | None = None, known_tickets: Iterable[str] = ()) -> UsageImport:
        """The client's time (ticket actions) of ``period`` as Usage rows of ``client``, by the ``halopsa-time``
        export's rules: hours kept, non-chargeable (``actisbillable`` false) → Billable = No; a ticket in
        ``known_tickets`` is not counted again."""
        cid = company_id(key, service=SERVICE)
        first, last = period_days(period)
        self.client(cid)
        tickets = self.all("Tickets", "tickets", what=f"the tickets of client {cid}",
                           params={"client_id": str(cid)}, progress=progress)
        who = (client or "").strip() or key.strip()
        headers = ["ticket_id", "id", "client_name", "user_email", "actionarrivaldate", "timetaken", "actisbillable",
                   "nonbilltime"]
        records: list[tuple[int, list[Any]]] = []
        dates = {"startdate": f"{first.isoformat()}T00:00:00", "enddate": f"{last.isoformat()}T23:59:59",
                 "timeentriesonly": "true"}
        for t in tickets:
            tid = t.get("id")
            if not isinstance(tid, int):
                continue
            body = self.get("Actions", what=f"the time on ticket {tid}", params={"ticket_id": str(tid), **dates})
            actions = body.get("actions") if isinstance(body, dict) else None
            if not isinstance(actions, list):
                raise self.http.fail(f"{SERVICE} sent the actions of ticket {tid} without an \"actions\" list; "
                                     "stopped (nothing was changed)")
            for a in actions:
                if not isinstance(a, dict) or not _in(a, first, last):
                    continue
                when = a.get("actionarrivaldate") or a.get("actiondatecreated")
                records.append((len(records) + 1, [tid, a.get("id"), who, t.get("user_email") or "", when,
                                                   a.get("timetaken"), a.get("actisbillable", True),
                                                   a.get("nonbilltime")]))
        return read_usage_records(headers, records, "halopsa-time", [who], known_tickets=known_tickets,
                                  shown=f"HaloPSA actions, client {cid}, {first:%Y-%m}")

    # recurring invoices (push) ------------------------------------------------------------------------------

    def recurring_invoice(self, invoice: int) -> dict[str, Any]:
        """The recurring invoice with its lines; SourceError when there is none."""
        def explain(response: httpx.Response, what: str) -> str:
            if response.status_code == 404:
                return (f"{SERVICE} has no recurring invoice {invoice} (the client's PSAAgreementID); check it in "
                        "Halo (Billing ▸ Recurring Invoices)")
            return self._explain(response, what)
        body = self.get(f"RecurringInvoice/{invoice}", what=f"recurring invoice {invoice}",
                        params={"includedetails": "true"}, explain=explain)
        if not isinstance(body, dict) or not isinstance(body.get("lines"), list):
            raise self.http.fail(f"{SERVICE} sent recurring invoice {invoice} without its lines; stopped")
        return body

    def recurring_invoices(self, client: int) -> list[dict[str, Any]]:
        """The client's recurring invoices (headers only)."""
        return self.all("RecurringInvoice", "invoices", what=f"the recurring invoices of client {client}",
                        params={"client_id": str(client)})

    @staticmethod
    def _line(invoice: dict[str, Any], line: int | str) -> dict[str, Any]:
        """The line ``line`` names: its id (a number), else its item's description (case ignored)."""
        for ln in invoice["lines"]:
            if not isinstance(ln, dict):
                continue
            if isinstance(line, int) and ln.get("id") == line:
                return ln
            if isinstance(line, str) and str(ln.get("item_shortdescription") or "").strip().lower() == \
                    line.strip().lower():
                return ln
        raise SourceError(f"{SERVICE}: recurring invoice {invoice.get('id')} has no line {line!r}; name the line by "
                          "its id or its item's description")

    def current_quantity(self, invoice: int, line: int | str) -> LineQuantity:
        """The quantity (``qty_order``) of a recurring-invoice line."""
        ln = self._line(self.recurring_invoice(invoice), line)
        return LineQuantity(invoice, int(ln["id"]), to_decimal(ln.get("qty_order") or 0))

    def set_quantity(self, invoice: int, line: int | str, quantity: Decimal | int) -> QuantityWrite:
        """Make the line's quantity ``quantity``: the whole invoice POSTed back with only that changed, then read
        back. Nothing is written when it already holds it (a second push writes nothing)."""
        target = Decimal(quantity)
        inv = self.recurring_invoice(invoice)
        ln = self._line(inv, line)
        old = to_decimal(ln.get("qty_order") or 0)
        if old == target:
            return QuantityWrite(invoice, int(ln["id"]), old, old, False)
        lines = copy.deepcopy([x for x in inv["lines"] if isinstance(x, dict)])
        for x in lines:
            if x.get("id") == ln["id"]:
                x["qty_order"] = float(target)
        body = [{"id": invoice, "lines": lines}]
        self.http.json("POST", f"{self.config.url}/api/RecurringInvoice", json=body, auth=self._auth,
                       what=f"setting line {ln['id']} of recurring invoice {invoice} to {target}")
        back = self.recurring_invoice(invoice)
        got = to_decimal(self._line(back, int(ln["id"])).get("qty_order") or 0)
        others = {x.get("id") for x in back["lines"] if isinstance(x, dict)}
        if got != target or others != {x.get("id") for x in lines}:
            raise self.http.fail(f"{SERVICE}: recurring invoice {invoice} reads quantity {got} on line {ln['id']} "
                                 f"({len(others)} lines) after setting {target} ({len(lines)} lines); check it in Halo")
        return QuantityWrite(invoice, int(ln["id"]), old, got, True)

    # the push (sources.writer.PsaWriter) ------------------------------------------------------------------

    def invoice_of(self, target: PushTarget) -> dict[str, Any]:
        """The client's recurring invoice with its lines: PSAAgreementID names it (and it must be the client's,
        PSACompanyID); blank, the client's only active one (not ``disabled``, and no ``enddate`` in the past:
        InvoiceHeader's fields in Halo's published OpenAPI)."""
        company = company_id(target.company, service=SERVICE) if target.company else None
        if target.agreement:
            number = company_id(target.agreement, "PSAAgreementID", SERVICE)
            inv = self.recurring_invoice(number)
            owner = inv.get("client_id")
            if company is not None and owner is not None and str(owner) != str(company):
                raise self.http.fail(f"recurring invoice {number} belongs to client {owner}, not the client's "
                                     f"PSACompanyID {company}; check PSAAgreementID in Clients")
            return inv
        if company is None:
            raise SourceError("no PSAAgreementID nor PSACompanyID: type the recurring invoice's id (or the Halo "
                              "client's id) in Clients")
        active = [i for i in self.recurring_invoices(company) if isinstance(i.get("id"), int) and _running(i)]
        if len(active) != 1:
            have = ", ".join(str(i["id"]) for i in active) or "none"
            raise self.http.fail(f"client {company} has {len(active)} active recurring invoices ({have}); type the one "
                                 "to push to in the client's PSAAgreementID in Clients")
        return self.recurring_invoice(int(active[0]["id"]))

    def current(self, target: PushTarget) -> PsaRecord:
        """The line of the client's recurring invoice for ``target``'s plan, and its quantity (``qty_order``).

        The rule: the recurring invoice of :meth:`invoice_of`; of its lines, the one whose item description
        (``item_shortdescription``) is the plan's product (Plans.PSAProduct, else the plan's name; case, spaces
        and punctuation ignored), else, when the product is a number, the line of that item id (``_itemid``);
        none or two is a SourceError naming what there is."""
        inv = self.invoice_of(target)
        number = inv.get("id")
        lines = [ln for ln in inv["lines"] if isinstance(ln, dict) and isinstance(ln.get("id"), int)]
        want = product_key(target.product)
        found = [ln for ln in lines if product_key(str(ln.get("item_shortdescription") or "")) == want]
        if not found and target.product.strip().isdigit():
            found = [ln for ln in lines if str(ln.get("_itemid")) == target.product.strip()]
        if not found:
            have = ", ".join(sorted({str(ln.get("item_shortdescription") or "") for ln in lines} - {""})) or "none"
            raise self.http.fail(f"recurring invoice {number} has no line for plan {target.plan!r} (product "
                                 f"{target.product!r}; its lines: {have}). Add the item to the recurring invoice, or "
                                 "type the item's description in the plan's PSAProduct column in Plans")
        if len(found) > 1:
            raise self.http.fail(f"recurring invoice {number} has {len(found)} lines for product {target.product!r} "
                                 f"(line ids {', '.join(str(ln['id']) for ln in found)}); keep one line per plan")
        ln = found[0]
        return PsaRecord(f"recurring invoice {number} line {ln['id']}", float(to_decimal(ln.get("qty_order") or 0)),
                         f"line {ln['id']} ({ln.get('item_shortdescription') or ln.get('_itemid')}) of recurring "
                         f"invoice {number}", (int(str(number)), int(ln["id"])))

    def set(self, record: PsaRecord, quantity: int) -> PsaRecord:
        """The whole invoice POSTed back with the line's new quantity, and the line as read back."""
        invoice, line = record.ref
        done = self.set_quantity(invoice, line, quantity)
        return PsaRecord(record.id, float(done.new), record.what, record.ref)

    # connect ------------------------------------------------------------------------------------------------

    def check(self, key: str) -> list[Check]:
        """What works, in words: sign-in, the client, reading users, tickets and recurring invoices."""
        try:
            cid = company_id(key, service=SERVICE)
            self._auth.headers()
        except SourceError as exc:
            return [Check(False, str(exc))]
        out = [Check(True, f"signed in at {self.auth_url()} (Halo reachable)")]
        try:
            found = self.client(cid)
        except SourceError as exc:
            return [*out, Check(False, str(exc))]
        out.append(Check(True, f"client {cid} is {found.get('name') or '(no name)'}"))
        probes = (("Users", {"client_id": str(cid)}, "can read users"),
                  ("Tickets", {"client_id": str(cid)}, "can read tickets"),
                  ("RecurringInvoice", {"client_id": str(cid)}, "can read recurring invoices (for push)"))
        for path, params, words in probes:
            try:
                self.get(path, what=f"{path} (a test read)", params={**params, "pageinate": "true", "page_size": "1",
                                                                    "page_no": "1"})
            except SourceError as exc:
                out.append(Check(False, f"{words.replace('can ', 'cannot ')}: {exc}"))
            else:
                out.append(Check(True, words))
        return out


def _in(action: Mapping[str, Any], first: dt.date, last: dt.date) -> bool:
    """True when the action's date falls in the period (the filter is also sent; this keeps the rule here)."""
    text = str(action.get("actionarrivaldate") or action.get("actiondatecreated") or "")[:10]
    try:
        return first <= dt.date.fromisoformat(text) <= last
    except ValueError:
        return True  # an unreadable date: the usage rules report it



def _running(invoice: dict[str, Any]) -> bool:
    """A recurring invoice still raised: not ``disabled`` and its ``enddate`` (if any) not past."""
    if invoice.get("disabled"):
        return False
    end = str(invoice.get("enddate") or "")[:10]
    try:
        return not end or dt.date.fromisoformat(end) >= dt.date.today()
    except ValueError:
        return True

__all__ = ["PAGE_SIZE", "SETTINGS", "USER_FIELDS", "HaloClient", "HaloConfig", "LineQuantity", "QuantityWrite"]
