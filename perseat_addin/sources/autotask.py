"""Autotask (Datto/Kaseya) REST: a client's contacts, its time for a period, and its contract units.

Sign-in is three headers on every call (``UserName``, ``Secret``, ``ApiIntegrationCode``; plus
``ImpersonationResourceId`` on writes when set) against the API user's *zone*, found with
``GET https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user=<username>``
(``{url, webUrl, zoneName, ci}``; the REST base is ``{url}V1.0/``). On a 401 the zone is looked up
again once (it may have moved), as django-autotask does.

Reading is ``POST {Entity}/query`` with ``{"MaxRecords": 500, "IncludeFields": […, "id"], "filter": […]}``
then ``GET pageDetails.nextPageUrl`` verbatim to the last page:

* ``Companies`` — is the client's PSACompanyID there (else "no such company")?
* ``Contacts`` of the company (``isActive`` 1/0, ``emailAddress``, ``createDate``) → Roster rows by
  the Autotask contacts export's rules (:func:`~perseat_addin.imports.roster.read_records`);
* ``Tickets`` of the company, then ``TimeEntries`` whose ``ticketID`` is one of them and whose
  ``dateWorked`` falls in the period (time entries carry no company) → Usage rows by the
  ``autotask-time`` export's rules, ``isNonBillable`` → Billable = No;
* ``ContractServices``/``ContractServiceUnits`` (query only) and ``ContractServiceAdjustments``
  (create only: a *change* of units from an effective date) for the push: :meth:`AutotaskClient.current_units`,
  :meth:`AutotaskClient.adjust_units`, :meth:`AutotaskClient.set_units`, each write read back.

Budget: every Autotask database allows 10,000 API requests an hour, shared by *all* its integrations;
Autotask slows every caller down past half of it and blocks them all at the limit. The client reads
``ThresholdInformation`` before its first call and every :attr:`Budget.poll_every` calls, counts its own
requests in between, waits :attr:`Budget.slow_wait` seconds between calls past :attr:`Budget.slow_at`, and
stops with a message at :attr:`Budget.stop_at` (default 90 %) so the other integrations keep working.
Autotask reports some permission failures as HTTP 500 with ``{"errors": ["… does not have the adequate
permissions …"]}``: those are not retried and say which permission is missing.

Settings (environment, then the OS keyring): ``PERSEAT_AUTOTASK_USERNAME``, ``PERSEAT_AUTOTASK_SECRET``,
``PERSEAT_AUTOTASK_INTEGRATION_CODE``, optional ``PERSEAT_AUTOTASK_URL`` (the zone's REST address,
skipping discovery), ``PERSEAT_AUTOTASK_IMPERSONATION_ID`` and ``PERSEAT_AUTOTASK_DISCOVERY_URL``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from perseat_addin.imports.roster import ImportResult, read_records
from perseat_addin.imports.usage import USAGE_SOURCES, UsageImport, read_usage_records
from perseat_addin.model import Period
from perseat_addin.sources import credentials
from perseat_addin.sources.credentials import KeyringGet, Setting
from perseat_addin.sources.graph import Check
from perseat_addin.sources.http import (
    HttpClient,
    Policy,
    Secret,
    SourceError,
    VendorClient,
    default_retryable,
    field_next,
)
from perseat_addin.sources.writer import PsaRecord, PushTarget, product_key

SERVICE = "Autotask"
PAGE_SIZE = 500  # Autotask's MaxRecords ceiling
IN_CHUNK = 500  # ids in one "in" filter
DISCOVERY = "https://webservices.autotask.net/atservicesrest"
SETTINGS = (
    Setting("PERSEAT_AUTOTASK_USERNAME", "the API user's username (an e-mail address)"),
    Setting("PERSEAT_AUTOTASK_SECRET", "the API user's secret (password)", secret=True),
    Setting("PERSEAT_AUTOTASK_INTEGRATION_CODE", "the API tracking identifier (integration code)", secret=True),
    Setting("PERSEAT_AUTOTASK_URL", "the zone's REST address, e.g. https://webservices5.autotask.net/ATServicesRest/",
            optional=True),
    Setting("PERSEAT_AUTOTASK_IMPERSONATION_ID", "the resource id writes are made in the name of", optional=True),
    Setting("PERSEAT_AUTOTASK_DISCOVERY_URL", "the zone-discovery address", default=DISCOVERY),
)
CONTACT_FIELDS = ("id", "companyID", "firstName", "lastName", "emailAddress", "isActive", "createDate")
TICKET_FIELDS = ("id", "ticketNumber", "companyID", "contactID", "createDate")
TIME_FIELDS = ("id", "ticketID", "dateWorked", "hoursWorked", "isNonBillable", "billingCodeID")
_PERMISSION = re.compile(r"permission|not authori[sz]ed|access denied", re.I)
_FINAL = re.compile(r"permission|not authori[sz]ed|access denied|zone information", re.I)  # a 500 not worth retrying
_VERSION = re.compile(r"/v1\.0/?$", re.I)
_SETUP = ("in Autotask, Admin ▸ Resources (Users) ▸ the API user: Security Level API User (system) (API-only), "
          "with the integration's tracking identifier")


@dataclass(frozen=True)
class AutotaskConfig:
    """As whom and where to call Autotask."""

    username: str
    secret: Secret
    integration_code: Secret
    zone_url: str = ""  # blank: discover it
    impersonate: str = ""
    discovery_url: str = DISCOVERY

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, keyring_get: KeyringGet | None = None) -> AutotaskConfig:
        """The settings from the environment, then the OS keyring (SourceError names what is missing)."""
        got = credentials.read(SETTINGS, env=env, keyring_get=keyring_get, label=SERVICE)
        secret, code = got["PERSEAT_AUTOTASK_SECRET"], got["PERSEAT_AUTOTASK_INTEGRATION_CODE"]
        assert isinstance(secret, Secret) and isinstance(code, Secret)
        return cls(str(got["PERSEAT_AUTOTASK_USERNAME"]), secret, code, str(got.get("PERSEAT_AUTOTASK_URL", "")),
                   str(got.get("PERSEAT_AUTOTASK_IMPERSONATION_ID", "")),
                   str(got["PERSEAT_AUTOTASK_DISCOVERY_URL"]).rstrip("/"))

    def __repr__(self) -> str:
        return f"AutotaskConfig(username={self.username!r}, zone_url={self.zone_url!r})"


@dataclass
class Budget:
    """The share of Autotask's hourly request threshold this client may use (fractions of the threshold)."""

    slow_at: float = 0.5  # past this, wait slow_wait seconds before each request
    stop_at: float = 0.9  # at this, stop with a message
    slow_wait: float = 1.0
    poll_every: int = 250  # re-read ThresholdInformation after this many requests
    threshold: int = 10_000  # until ThresholdInformation says otherwise
    used: int = 0  # requests in the current hour, as last read plus those sent since
    sent: int = 0  # requests this client sent (every try)
    since_poll: int = -1  # -1: not read yet


@dataclass(frozen=True)
class Units:
    """A contract service's units on a day: the ContractServiceUnits row covering it (None: no row does)."""

    record_id: int | None
    units: int
    contract_service_id: int
    service_id: int


@dataclass(frozen=True)
class UnitsWrite:
    """What :meth:`AutotaskClient.set_units` did: the adjustment made (None: none was needed) and the read-back."""

    adjustment_id: int | None
    record_id: int | None  # the ContractServiceUnits row covering the effective date, after
    old: int
    new: int
    effective: dt.date

    @property
    def written(self) -> bool:
        return self.adjustment_id is not None


class _Headers:
    """The three sign-in headers, counted against the budget on every try (an ``Auth`` of the HTTP layer)."""

    def __init__(self, client: AutotaskClient, write: bool = False) -> None:
        self.client, self.write = client, write

    def headers(self) -> dict[str, str]:
        self.client._spend()
        c = self.client.config
        out = {"UserName": c.username, "Secret": c.secret.reveal(), "ApiIntegrationCode": c.integration_code.reveal()}
        if self.write and c.impersonate:
            out["ImpersonationResourceId"] = c.impersonate
        return out

    def expired(self, response: httpx.Response) -> bool:
        return False  # a 401 is handled by looking the zone up again (AutotaskClient._call)

    def refresh(self) -> None:
        """Nothing to renew: the headers are the credentials."""


def _errors(response: httpx.Response) -> list[str]:
    """Autotask's ``{"errors": [...]}`` messages, if the body has them."""
    try:
        body = response.json()
    except ValueError:
        return []
    errs = body.get("errors") if isinstance(body, dict) else None
    return [str(e.get("message") if isinstance(e, dict) else e) for e in errs] if isinstance(errs, list) else []


def retryable(response: httpx.Response) -> bool:
    """429 and 5xx, except a 500 that is Autotask's way of saying a permission is missing (or no zone was found)."""
    if response.status_code == 500 and any(_FINAL.search(e) for e in _errors(response)):
        return False
    return default_retryable(response)


def company_id(key: str, column: str = "PSACompanyID", service: str = SERVICE) -> int:
    """A PSA record id typed in Clients, as a number; SourceError when it is not one."""
    text = key.strip().removesuffix(".0")
    if not text.isdigit() or int(text) <= 0:
        raise SourceError(f"{column} {key.strip()!r} is not a {service} id; type the number {service} shows for the "
                          "client's record")
    return int(text)


def _day(value: Any) -> dt.date | None:
    text = str(value or "")[:10]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def period_days(period: Period | str) -> tuple[dt.date, dt.date]:
    """First and last day of a billing period (a Period or ``YYYY-MM``); SourceError when it is not one."""
    if isinstance(period, str):
        try:
            period = Period.parse(period)
        except ValueError as exc:
            raise SourceError(str(exc)) from None
    return period.first, period.last


class AutotaskClient(VendorClient):
    """Autotask for one API user. Use as a context manager."""

    label = SERVICE
    key_column = "PSACompanyID"
    usage_label = USAGE_SOURCES["autotask-time"]  # the Usage Source of its time entries, as the export's

    def __init__(self, config: AutotaskConfig, *, policy: Policy | None = None, budget: Budget | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.budget = budget or Budget()
        self._sleep = sleep or time.sleep
        self.http = HttpClient(SERVICE, policy=policy, explain=self._explain, retryable=retryable, sleep=sleep)
        self.http.redactor.add(config.secret)
        self.http.redactor.add(config.integration_code)
        self._base = self._rest(config.zone_url) if config.zone_url else ""
        self._polling = False

    @classmethod
    def from_env(cls) -> AutotaskClient:
        """A client with the settings of :meth:`AutotaskConfig.load`."""
        return cls(AutotaskConfig.load())

    @property
    def identity(self) -> str:
        """Who signs in, for ``perseat connect`` (no secret)."""
        return f"API user {self.config.username}"

    # zone and calls -----------------------------------------------------------------------------------------

    @staticmethod
    def _rest(url: str) -> str:
        """The V1.0 REST base of a zone address (``…/ATServicesRest/`` → ``…/ATServicesRest/V1.0/``)."""
        base = _VERSION.sub("", url.strip().rstrip("/"))
        return f"{base}/V1.0/"

    def zone(self) -> str:
        """The REST base of the API user's zone (zoneInformation; PERSEAT_AUTOTASK_URL skips it)."""
        user = self.config.username
        url = f"{self.config.discovery_url}/v1.0/zoneInformation?user={quote(user, safe='@')}"

        def explain(response: httpx.Response, what: str) -> str:
            said = "; ".join(_errors(response)) or response.reason_phrase
            return (f"{SERVICE}: the zone of API user {user} was not found (HTTP {response.status_code}: {said}). "
                    "Check PERSEAT_AUTOTASK_USERNAME: the API user's username, an e-mail address")
        body = self.http.json("GET", url, what=f"finding the zone of API user {user}", explain=explain)
        zone = body.get("url") if isinstance(body, dict) else None
        if not isinstance(zone, str) or not zone.startswith(("http://", "https://")):
            raise self.http.fail(f"{SERVICE}: the zone of API user {user} was not found (zoneInformation gave no "
                                 "address). Check PERSEAT_AUTOTASK_USERNAME: the API user's username, an e-mail "
                                 "address")
        return self._rest(zone)

    def base(self) -> str:
        """The REST base, discovering the zone the first time."""
        if not self._base:
            self._base = self.zone()
        return self._base

    def _spend(self) -> None:
        """Count one request against the shared hourly budget: read it, slow down, or stop."""
        b = self.budget
        if not self._polling and (b.since_poll < 0 or b.since_poll >= b.poll_every):
            self._poll()
        b.sent += 1
        b.used += 1
        b.since_poll += 1
        if b.used >= b.stop_at * b.threshold:
            raise SourceError(f"{SERVICE}'s API budget is nearly used: {b.used:,} of the {b.threshold:,} requests an "
                              f"hour allowed are spent (by every integration on this Autotask database). perseat "
                              f"stops at {b.stop_at:.0%} so the others keep working; try again later", code="budget")
        if b.used >= b.slow_at * b.threshold and b.slow_wait > 0:
            self._sleep(b.slow_wait)

    def _poll(self) -> None:
        """Read ThresholdInformation (it counts as a request too); keep counting locally if it is refused."""
        b = self.budget
        self._polling = True
        try:
            body = self.http.json("GET", f"{self.base()}ThresholdInformation", what="reading the API usage "
                                  "(ThresholdInformation)", auth=_Headers(self))
        except SourceError as exc:
            if exc.status in (401, 404) or exc.code == "budget":
                raise
            body = None
        finally:
            self._polling = False
        b.since_poll = 0
        if isinstance(body, dict):
            try:
                b.threshold = int(body.get("externalRequestThreshold") or b.threshold)
                b.used = int(body.get("currentTimeframeRequestCount") or 0)
            except (TypeError, ValueError):
                pass

    def _call(self, method: str, path: str, *, what: str, body: Any = None, write: bool = False) -> Any:
        """One call to the REST base (a path, or a full next-page URL); a 401 looks the zone up again, once."""
        for again in (False, True):
            url = path if path.startswith(("http://", "https://")) else self.base() + path
            try:
                return self.http.json(method, url, what=what, json=body, auth=_Headers(self, write))
            except SourceError as exc:
                if exc.status != 401 or again or self.config.zone_url or path.startswith(("http://", "https://")):
                    raise
                zone = self.zone()
                if zone == self._base:
                    raise
                self._base = zone
        raise AssertionError("unreachable")

    def _explain(self, response: httpx.Response, what: str) -> str:
        """An Autotask refusal in words."""
        errs = _errors(response)
        said = "; ".join(errs) or response.reason_phrase
        status = response.status_code
        if status == 401:
            return (f"{SERVICE} refused the credentials for {what} (HTTP 401): check PERSEAT_AUTOTASK_USERNAME, "
                    "PERSEAT_AUTOTASK_SECRET and PERSEAT_AUTOTASK_INTEGRATION_CODE — " + _SETUP)
        if status == 403 or (status == 500 and any(_PERMISSION.search(e) for e in errs)):
            return (f"{SERVICE} denied {what}: the API user lacks a permission ({said}). Give its security level "
                    "access to Contacts, Companies, Tickets, Time Entries and Contracts (Admin ▸ Security Levels)")
        if status == 404:
            return f"{SERVICE} found nothing at the address for {what} (HTTP 404: {said})"
        if status == 405:
            return f"{SERVICE} does not allow {what} (HTTP 405: {said})"
        return f"{SERVICE} refused {what} (HTTP {status}: {said})"

    # reading ------------------------------------------------------------------------------------------------

    def query(self, entity: str, filters: Sequence[Mapping[str, Any]], fields: Sequence[str], *, what: str,
              progress: Callable[[int], None] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Each page of ``entity`` records matching ``filters`` (Autotask filter items, ANDed), every page."""
        include = list(dict.fromkeys(["id", *fields]))  # more than 500 results need the id
        body = {"MaxRecords": PAGE_SIZE, "IncludeFields": include, "filter": list(filters)}
        nxt = field_next("pageDetails", "nextPageUrl")
        seen: set[str] = set()
        page, url = 1, f"{entity}/query"
        got = self._call("POST", url, what=what, body=body)
        while True:
            items = got.get("items") if isinstance(got, dict) else None
            if not isinstance(items, list):
                raise self.http.fail(f"{SERVICE} sent a page of {what} without an \"items\" list; stopped")
            yield [i for i in items if isinstance(i, dict)]
            if progress is not None:
                progress(len(items))
            link = nxt(httpx.Response(200), got)
            if link is None:
                return
            if link in seen:
                raise self.http.fail(f"{SERVICE} sent the same next-page link twice for {what} (page {page}); stopped "
                                     "rather than loop — try again later")
            seen.add(link)
            page += 1
            got = self._call("GET", link, what=f"{what} (page {page})")

    def all(self, entity: str, filters: Sequence[Mapping[str, Any]], fields: Sequence[str], *, what: str,
            progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every record of :meth:`query`."""
        return [r for page in self.query(entity, filters, fields, what=what, progress=progress) for r in page]

    def company(self, company: int) -> dict[str, Any]:
        """The company with that id; SourceError (unknown company) when Autotask has none."""
        found = self.all("Companies", [_eq("id", company)], ("companyName", "isActive"), what=f"company {company}")
        if not found:
            raise self.http.fail(f"{SERVICE} has no company with id {company} (the client's PSACompanyID); check the "
                                 "id in Autotask (CRM ▸ the company) and type it in Clients", code="unknown")
        return found[0]

    def contacts(self, company: int, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every contact of the company, active or not."""
        return self.all("Contacts", [_eq("companyID", company)], CONTACT_FIELDS,
                        what=f"the contacts of company {company}", progress=progress)

    def fetch(self, key: str, progress: Callable[[int], None] | None = None) -> ImportResult:
        """The company's contacts as an import, by the Autotask contacts export's rules (every page, or nothing)."""
        cid = company_id(key)
        name = str(self.company(cid).get("companyName") or "")
        contacts = self.contacts(cid, progress)
        headers = list(CONTACT_FIELDS)
        records = [(n, [c.get(h) for h in headers]) for n, c in enumerate(contacts, start=1)]
        shown = f"Autotask, company {cid}" + (f" ({name})" if name else "")
        return read_records(headers, records, "autotask", shown=shown)

    def time_entries(self, company: int, first: dt.date, last: dt.date,
                     progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], dict[int, Any]]:
        """The company's time entries worked from ``first`` to ``last``, and its tickets by id."""
        start, end = f"{first.isoformat()}T00:00:00Z", f"{last.isoformat()}T23:59:59Z"
        tickets = {int(t["id"]): t for t in self.all(
            "Tickets", [_eq("companyID", company), {"op": "lte", "field": "createDate", "value": end}], TICKET_FIELDS,
            what=f"the tickets of company {company}", progress=progress) if isinstance(t.get("id"), int)}
        ids = sorted(tickets)
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), IN_CHUNK):
            out += self.all("TimeEntries", [{"op": "in", "field": "ticketID", "value": ids[i:i + IN_CHUNK]},
                                            {"op": "gte", "field": "dateWorked", "value": start},
                                            {"op": "lte", "field": "dateWorked", "value": end}],
                            TIME_FIELDS, what=f"the time entries of company {company}", progress=progress)
        return out, tickets

    def fetch_usage(self, key: str, period: Period | str, client: str | None = None,
                    progress: Callable[[int], None] | None = None, known_tickets: Iterable[str] = ()) -> UsageImport:
        """The company's time entries of ``period`` as Usage rows of ``client``, by the ``autotask-time`` export's
        rules: hours kept, ``isNonBillable`` → Billable = No; a ticket in ``known_tickets`` is not counted again."""
        cid = company_id(key)
        first, last = period_days(period)
        self.company(cid)
        entries, tickets = self.time_entries(cid, first, last, progress)
        contacts = {int(c["id"]): str(c.get("emailAddress") or "") for c in self.all(
            "Contacts", [_eq("companyID", cid)], ("emailAddress",), what=f"the contacts of company {cid}")
            if isinstance(c.get("id"), int)} if entries else {}
        who = (client or "").strip() or key.strip()
        headers = ["id", "Account", "dateWorked", "hoursWorked", "ticketID", "Contact", "isNonBillable"]
        records: list[tuple[int, list[Any]]] = []
        for n, e in enumerate(entries, start=1):
            tid, ticket = e.get("ticketID"), dict[str, Any]()
            if isinstance(tid, int):
                ticket = tickets.get(tid) or {}
            cid_ = ticket.get("contactID")
            contact = contacts.get(cid_, "") if isinstance(cid_, int) else ""
            records.append((n, [e.get("id"), who, e.get("dateWorked"), e.get("hoursWorked"), e.get("ticketID"),
                                contact or "", bool(e.get("isNonBillable"))]))
        return read_usage_records(headers, records, "autotask-time", [who], known_tickets=known_tickets,
                                  shown=f"Autotask time entries, company {cid}, {first:%Y-%m}")

    # contract units (push) ----------------------------------------------------------------------------------

    def contract_service(self, contract: int, service: int) -> dict[str, Any]:
        """The contract's ContractServices row for ``service`` (a Service id); SourceError when it has none."""
        found = self.all("ContractServices", [_eq("contractID", contract), _eq("serviceID", service)],
                         ("contractID", "serviceID", "unitPrice"), what=f"service {service} of contract {contract}")
        if not found:
            raise self.http.fail(f"{SERVICE}: contract {contract} (the client's PSAAgreementID) has no service "
                                 f"{service}; add the service to the contract in Autotask first", code="unknown")
        return found[0]

    def current_units(self, contract: int, service: int, day: dt.date) -> Units:
        """The units of ``service`` on ``contract`` on ``day`` (its ContractServiceUnits row covering that day)."""
        cs = self.contract_service(contract, service)
        rows = self.all("ContractServiceUnits", [_eq("contractID", contract), _eq("contractServiceID", cs["id"])],
                        ("contractID", "contractServiceID", "serviceID", "startDate", "endDate", "units"),
                        what=f"the units of service {service} on contract {contract}")
        for r in rows:
            start, end = _day(r.get("startDate")), _day(r.get("endDate"))
            if start is not None and start <= day and (end is None or day <= end):
                return Units(int(r["id"]), int(r.get("units") or 0), int(cs["id"]), service)
        return Units(None, 0, int(cs["id"]), service)

    def adjust_units(self, contract: int, service: int, change: int, effective: dt.date) -> tuple[int, Units]:
        """Create a ContractServiceAdjustment of ``change`` units from ``effective`` and read the units back:
        (the adjustment's id, the units after). SourceError when the read-back is not the old units + change."""
        if change == 0:
            raise ValueError("an adjustment of 0 units changes nothing; Autotask would refuse it")
        before = self.current_units(contract, service, effective)
        body = {"contractID": contract, "contractServiceID": before.contract_service_id, "serviceID": service,
                "effectiveDate": f"{effective.isoformat()}T00:00:00Z", "unitChange": change}
        made = self._call("POST", "ContractServiceAdjustments", body=body, write=True,
                          what=f"adjusting service {service} on contract {contract} by {change:+d} units")
        item = made.get("itemId") if isinstance(made, dict) else None
        if not isinstance(item, int):
            raise self.http.fail(f"{SERVICE} accepted the adjustment of contract {contract} but gave no itemId; check "
                                 "the contract's units in Autotask before pushing again")
        after = self.current_units(contract, service, effective)
        if after.units != before.units + change:
            raise self.http.fail(f"{SERVICE}: contract {contract} service {service} reads {after.units} units from "
                                 f"{effective} after adjustment {item} of {change:+d} to {before.units}; expected "
                                 f"{before.units + change}. Check the contract in Autotask")
        return item, after

    def set_units(self, contract: int, service: int, target: int, effective: dt.date) -> UnitsWrite:
        """Make ``service`` on ``contract`` hold ``target`` units from ``effective``: one adjustment of the
        difference, or none when it already does (a second push writes nothing)."""
        now = self.current_units(contract, service, effective)
        if now.units == target:
            return UnitsWrite(None, now.record_id, now.units, now.units, effective)
        item, after = self.adjust_units(contract, service, target - now.units, effective)
        return UnitsWrite(item, after.record_id, now.units, after.units, effective)

    # the push (sources.writer.PsaWriter) ------------------------------------------------------------------

    def contract(self, contract: int) -> dict[str, Any]:
        """The contract with that id; SourceError (unknown) when Autotask has none."""
        found = self.all("Contracts", [_eq("id", contract)], ("companyID", "contractName", "status"),
                         what=f"contract {contract}")
        if not found:
            raise self.http.fail(f"{SERVICE} has no contract with id {contract} (the client's PSAAgreementID); check "
                                 "the id in Autotask (Contracts ▸ the contract) and type it in Clients", code="unknown")
        return found[0]

    def current(self, target: PushTarget) -> PsaRecord:
        """The contract service of the client's contract (PSAAgreementID) for ``target``'s plan, and its units on
        the first day after the period (``target.effective``).

        The rule: the contract must belong to the client's company (PSACompanyID); of its contract services, the
        one whose service's name (the Services catalogue) is the plan's product (Plans.PSAProduct, else the plan's
        name; case, spaces and punctuation ignored), else the one whose invoice description is; none or two is a
        SourceError naming what there is. The units are those of the ContractServiceUnits row covering the first
        day after the period — what the next invoice will bill, and the day the push's adjustment takes effect;
        no row covering it (the contract ends with the period) is a SourceError."""
        cid = company_id(target.agreement, "PSAAgreementID")
        contract = self.contract(cid)
        owner = contract.get("companyID")
        if target.company and owner is not None and str(owner) != str(company_id(target.company)):
            raise self.http.fail(f"contract {cid} ({contract.get('contractName')}) belongs to company {owner}, not the "
                                 f"client's PSACompanyID {target.company}; check PSAAgreementID in Clients")
        services = self.all("ContractServices", [_eq("contractID", cid)],
                            ("contractID", "serviceID", "invoiceDescription"), what=f"the services of contract {cid}")
        ids = sorted({s["serviceID"] for s in services if isinstance(s.get("serviceID"), int)})
        names = {int(s["id"]): str(s.get("name") or "") for s in self.all(
            "Services", [{"op": "in", "field": "id", "value": ids}], ("name",),
            what=f"the services named on contract {cid}")} if ids else {}
        want = product_key(target.product)

        def named(s: dict[str, Any]) -> str:
            sid = s.get("serviceID")
            return names.get(sid, "") if isinstance(sid, int) else ""
        found = [s for s in services if product_key(named(s)) == want] or \
            [s for s in services if product_key(str(s.get("invoiceDescription") or "")) == want]
        if not found:
            have = ", ".join(sorted({named(s) or str(s.get("invoiceDescription") or "") for s in services} - {""})) \
                or "none"
            raise self.http.fail(f"contract {cid} has no service for plan {target.plan!r} (product {target.product!r}; "
                                 f"its services: {have}). Add the service to the contract in Autotask, or type the "
                                 "service's name in the plan's PSAProduct column in Plans")
        if len(found) > 1:
            raise self.http.fail(f"contract {cid} has {len(found)} services for product {target.product!r} (contract "
                                 f"service ids {', '.join(str(s['id']) for s in found)}); name one service per plan")
        cs = found[0]
        service = int(cs["serviceID"])
        name = names.get(service) or str(cs.get("invoiceDescription") or service)
        units = self.current_units(cid, service, target.effective)
        if units.record_id is None:
            raise self.http.fail(f"contract {cid} has no units of {name} on {target.effective} (its service periods "
                                 "end before it); extend or renew the contract in Autotask, then push again")
        return PsaRecord(f"contract {cid} service {cs['id']}", units.units,
                         f"service {name} of contract {cid}, units from {target.effective}",
                         (cid, service, target.effective))

    def set(self, record: PsaRecord, quantity: int) -> PsaRecord:
        """One ContractServiceAdjustment of the difference, effective the first day after the period, read back;
        the record id names the adjustment."""
        contract, service, effective = record.ref
        done = self.set_units(contract, service, quantity, effective)
        rid = f"{record.id} adjustment {done.adjustment_id}" if done.written else record.id
        return PsaRecord(rid, done.new, record.what, record.ref)

    # connect ------------------------------------------------------------------------------------------------

    def check(self, key: str) -> list[Check]:
        """What works, in words: the zone, the credentials, the company, reading contacts, tickets and time."""
        try:
            cid = company_id(key)
            base = self.base()
        except SourceError as exc:
            return [Check(False, str(exc))]
        out = [Check(True, f"zone found: {base}")]
        try:
            company = self.company(cid)
        except SourceError as exc:
            return [*out, Check(False, str(exc))]
        b = self.budget
        out.append(Check(True, f"signed in; company {cid} is {company.get('companyName') or '(no name)'}"))
        out.append(Check(True if b.used < b.slow_at * b.threshold else None,
                         f"API budget: {b.used:,} of {b.threshold:,} requests used this hour (shared by every "
                         "integration)"))
        for entity, field, words in (("Contacts", "companyID", "can read contacts"),
                                     ("Tickets", "companyID", "can read tickets"),
                                     ("TimeEntries", "id", "can read time entries"),
                                     ("ContractServiceUnits", "id", "can read contract units (for push)")):
            value: Any = cid if field == "companyID" else 0
            try:
                next(self.query(entity, [_eq(field, value)], (), what=f"{entity} (a test read)"), None)
            except SourceError as exc:
                out.append(Check(False, f"{words.replace('can ', 'cannot ')}: {exc}"))
            else:
                out.append(Check(True, words))
        return out


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"op": "eq", "field": field, "value": value}


__all__ = ["CONTACT_FIELDS", "PAGE_SIZE", "SETTINGS", "AutotaskClient", "AutotaskConfig", "Budget", "Units",
           "UnitsWrite", "company_id", "period_days", "retryable"]
