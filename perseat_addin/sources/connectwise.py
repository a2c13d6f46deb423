"""ConnectWise PSA (Manage) REST API: each client's contacts and time entries, and agreement additions' quantities.

Sign-in and address (PSA_APIS.md §1.2):

* the API address is discovered: ``GET https://{site}/login/companyinfo/{company}`` answers the
  ``Codebase`` (``v2025_1/``); the API is ``https://{api host}/{Codebase}apis/3.0`` (a cloud site
  ``na.myconnectwise.net`` has its API at ``api-na.myconnectwise.net``, likewise eu, au, aus, za; an
  on-premises site serves both). A 404 re-reads companyinfo once (the codebase moves with releases);
* every call carries ``Authorization: Basic base64("{company}+{public key}:{private key}")`` and the
  integration's ``clientId`` header;
* lists are read with ``conditions`` (``company/id=250 and timeStart >= [2026-11-01T00:00:00Z]``),
  ``page``/``pageSize`` (1,000, the maximum) and ``orderBy=id asc``, following the ``Link: <…>; rel="next"``
  header to the last page.

Reads: ``company/companies/{id}`` (does the client's PSACompanyID exist), ``company/contacts`` of the
company, ``time/entries`` of the company in a period, ``finance/agreements/{id}`` and its
``additions``. Write: ``PATCH finance/agreements/{id}/additions/{id}`` with the JSON Patch
``[{"op": "replace", "path": "quantity", "value": N}]``, then the addition is read back.

Settings (environment, then the OS keyring): ``PERSEAT_CW_SITE`` (``na.myconnectwise.net``),
``PERSEAT_CW_COMPANY`` (the company id typed at login), ``PERSEAT_CW_PUBLIC_KEY``,
``PERSEAT_CW_PRIVATE_KEY``, ``PERSEAT_CW_CLIENT_ID`` (from developer.connectwise.com), and
``PERSEAT_CW_URL`` to name the API address outright (skipping companyinfo). ConnectWise publishes no
request rate; 429 and 5xx are retried by :mod:`perseat_addin.sources.http` all the same.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from perseat_addin.imports.connectwise import read_contacts, read_time_entries
from perseat_addin.imports.roster import ImportResult
from perseat_addin.imports.usage import UsageImport
from perseat_addin.model import Period
from perseat_addin.sources import credentials
from perseat_addin.sources.credentials import KeyringGet, Setting
from perseat_addin.sources.graph import Check
from perseat_addin.sources.http import HttpClient, Policy, Secret, SourceError, VendorClient, error_detail, link_next
from perseat_addin.sources.writer import PsaRecord, PushTarget, product_key

SERVICE = "ConnectWise PSA"
PAGE_SIZE = 1000
SETTINGS = (
    Setting("PERSEAT_CW_SITE", "the ConnectWise site you sign in at, e.g. na.myconnectwise.net", optional=True),
    Setting("PERSEAT_CW_COMPANY", "the company id typed at the ConnectWise login"),
    Setting("PERSEAT_CW_PUBLIC_KEY", "the API member's public key"),
    Setting("PERSEAT_CW_PRIVATE_KEY", "the API member's private key", secret=True),
    Setting("PERSEAT_CW_CLIENT_ID", "the integration's clientId from developer.connectwise.com"),
    Setting("PERSEAT_CW_URL", "the API address, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0 "
            "(instead of discovering it from the site)", optional=True),
)
CLOUD_API_HOSTS = {f"{r}.myconnectwise.net": f"api-{r}.myconnectwise.net" for r in ("na", "eu", "au", "aus", "za")}
"""Cloud sites and the hosts their API answers at."""

_ROLE_HELP = ("in ConnectWise PSA, System ▸ Security Roles ▸ the API member's role, allow it (Inquire Level All; "
              "Edit for perseat push)")
_PERMISSIONS = {"company/companies": "Companies ▸ Company Maintenance", "company/contacts": "Companies ▸ Contacts",
                "time/entries": "Time & Expense ▸ Time Entry", "finance/agreements": "Finance ▸ Agreements",
                "system/info": "System ▸ API Reports"}


@dataclass(frozen=True)
class ConnectWiseConfig:
    """Where and as which API member to sign in."""

    site: str
    company: str
    public_key: str
    private_key: Secret
    client_id: str
    api_url: str  # blank: discover it from the site's companyinfo

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None,
             keyring_get: KeyringGet | None = None) -> ConnectWiseConfig:
        """The settings from the environment, then the OS keyring (SourceError names what is missing)."""
        got = credentials.read(SETTINGS, env=env, keyring_get=keyring_get, label=SERVICE)
        key = got["PERSEAT_CW_PRIVATE_KEY"]
        assert isinstance(key, Secret)
        site, url = str(got.get("PERSEAT_CW_SITE", "")).strip().rstrip("/"), str(got.get("PERSEAT_CW_URL", ""))
        if not site and not url:
            raise SourceError(f"{SERVICE}: missing PERSEAT_CW_SITE (the ConnectWise site you sign in at, e.g. "
                              "na.myconnectwise.net). Set the environment variable, or store it in the OS keyring: "
                              "keyring set perseat PERSEAT_CW_SITE (or name the API address in PERSEAT_CW_URL)")
        return cls(site, str(got["PERSEAT_CW_COMPANY"]).strip(), str(got["PERSEAT_CW_PUBLIC_KEY"]).strip(), key,
                   str(got["PERSEAT_CW_CLIENT_ID"]).strip(), url.strip().rstrip("/"))

    def __repr__(self) -> str:
        return f"ConnectWiseConfig(site={self.site!r}, company={self.company!r}, api_url={self.api_url!r})"


def site_url(site: str) -> str:
    """The site as an address (``https://`` unless it names its scheme, as a test server's does)."""
    return site if re.match(r"^https?://", site, re.I) else f"https://{site}"


def api_base(site: str, codebase: str) -> str:
    """The API address of ``site`` for ``codebase`` (``v2025_1/``)."""
    parts = urlsplit(site_url(site))
    host = parts.netloc
    host = CLOUD_API_HOSTS.get(host.lower(), host)
    return f"{parts.scheme}://{host}/{codebase.strip('/')}/apis/3.0"


def record_id(text: str, column: str) -> int:
    """A Clients PSACompanyID / PSAAgreementID as ConnectWise's record id; SourceError when it is not one."""
    t = text.strip()
    if t.endswith(".0"):
        t = t[:-2]
    if not t.isdigit() or int(t) <= 0:
        raise SourceError(f"{column} {text.strip()!r} is not a ConnectWise record id: type the number ConnectWise "
                          "shows as the record's ID (RecID), not its name or identifier")
    return int(t)


def _period_conditions(period: Period) -> str:
    first, after = period.first, period.next().first
    return f"timeStart >= [{first.isoformat()}T00:00:00Z] and timeStart < [{after.isoformat()}T00:00:00Z]"


@dataclass(frozen=True)
class Addition:
    """One agreement addition, as the push reads it."""

    id: int
    agreement: int
    product: str  # the product's identifier
    description: str
    quantity: float
    active: bool


def addition_of(body: Mapping[str, Any], agreement: int) -> Addition:
    """An addition object of the API → :class:`Addition`."""
    product = body.get("product")
    ident = str(product.get("identifier") or "") if isinstance(product, Mapping) else ""
    status = str(body.get("agreementStatus") or "Active").strip().lower()
    cancelled = body.get("cancelledDate")
    ended = False
    if isinstance(cancelled, str) and cancelled.strip():
        try:
            ended = dt.datetime.fromisoformat(cancelled.replace("Z", "+00:00")).date() <= dt.date.today()
        except ValueError:
            ended = True
    try:
        qty = float(body.get("quantity") or 0)
    except (TypeError, ValueError):
        qty = 0.0
    return Addition(int(body.get("id") or 0), agreement, ident,
                    str(body.get("description") or body.get("invoiceDescription") or ""), qty,
                    status == "active" and not ended)


class _Basic:
    """Basic auth plus clientId on every call (an :class:`~perseat_addin.sources.http.Auth` that never expires)."""

    def __init__(self, config: ConnectWiseConfig) -> None:
        raw = f"{config.company}+{config.public_key}:{config.private_key.reveal()}"
        self._header = Secret("Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii"))
        self._client_id = config.client_id

    def headers(self) -> dict[str, str]:
        return {"Authorization": self._header.reveal(), "clientId": self._client_id}

    def expired(self, response: httpx.Response) -> bool:
        return False  # keys do not expire mid-run: a 401 is a refusal

    def refresh(self) -> None:
        """Nothing to renew."""

    def secrets(self) -> list[str]:
        return [self._header.reveal(), self._header.reveal().removeprefix("Basic ")]

    def __repr__(self) -> str:
        return "_Basic([redacted])"


class ConnectWiseClient(VendorClient):
    """ConnectWise PSA for every client of one MSP. Use as a context manager."""

    label = SERVICE
    key_column = "PSACompanyID"
    usage_label = "ConnectWise PSA time entries"

    def __init__(self, config: ConnectWiseConfig, *, policy: Policy | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.http = HttpClient(SERVICE, policy=policy, explain=self._explain, sleep=sleep)
        self._auth = _Basic(config)
        self.http.redactor.add(config.private_key)
        for s in self._auth.secrets():
            self.http.redactor.add(s)
        self._base = config.api_url
        self._discovered = False

    @classmethod
    def from_env(cls) -> ConnectWiseClient:
        """A client with the settings of :meth:`ConnectWiseConfig.load`."""
        return cls(ConnectWiseConfig.load())

    # address and errors -------------------------------------------------------------------------------------

    def codebase(self) -> tuple[str, bool]:
        """The site's codebase (``v2025_1/``) and whether it is a cloud site, from companyinfo (no keys needed)."""
        company = self.config.company
        url = f"{site_url(self.config.site)}/login/companyinfo/{quote(company, safe='')}"
        what = f"the company id {company!r} at {self.config.site}"

        def unknown(response: httpx.Response, what: str) -> str:
            if response.status_code == 404:
                return (f"{SERVICE}: the site {self.config.site} does not know the company id {company!r} (HTTP 404); "
                        "check PERSEAT_CW_COMPANY (the company id typed at the ConnectWise login) and PERSEAT_CW_SITE")
            return self.http.default_explain(response, what)

        body = self.http.json("GET", url, what=what, explain=unknown)
        code = body.get("Codebase") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code.strip():
            raise self.http.fail(f"{SERVICE}: the site {self.config.site} does not know the company id {company!r} "
                                 "(companyinfo named no codebase); check PERSEAT_CW_COMPANY (the company id typed at "
                                 "the ConnectWise login) and PERSEAT_CW_SITE")
        return code.strip(), bool(body.get("IsCloud"))

    def base(self) -> str:
        """The API address: PERSEAT_CW_URL, else discovered once from the site's companyinfo."""
        if not self._base:
            self._base = api_base(self.config.site, self.codebase()[0])
            self._discovered = True
        return self._base

    def _explain(self, response: httpx.Response, what: str) -> str:
        """A ConnectWise refusal in words."""
        _, message = error_detail(response)
        status = response.status_code
        said = f": {message}" if message else ""
        if status == 401:
            if "clientid" in message.lower().replace(" ", ""):
                return (f"{SERVICE} refused the clientId for {what} (HTTP 401{said}); set PERSEAT_CW_CLIENT_ID to "
                        "the clientId of your integration from developer.connectwise.com")
            return (f"{SERVICE} refused the API keys for {what} (HTTP 401{said}): bad credentials — check "
                    "PERSEAT_CW_COMPANY, PERSEAT_CW_PUBLIC_KEY and PERSEAT_CW_PRIVATE_KEY (the API member's key "
                    "pair, from System ▸ Members ▸ API Members ▸ API Keys)")
        if status == 403:
            area = next((v for k, v in _PERMISSIONS.items() if k in what or k in str(response.request.url)), "")
            need = f" {area}" if area else " the module"
            return f"{SERVICE} denied {what} (HTTP 403{said}): the API member lacks permission for{need} — {_ROLE_HELP}"
        if status == 404:
            return f"{SERVICE} found nothing for {what} (HTTP 404{said})"
        return f"{SERVICE} refused {what} (HTTP {status}{said})"

    def _send(self, method: str, path: str, *, what: str, **kw: Any) -> httpx.Response:
        """One call to the API at ``path``; a 404 on a discovered address re-reads companyinfo once."""
        try:
            return self.http.send(method, f"{self.base()}/{path}", what=what, auth=self._auth, **kw)
        except SourceError as exc:
            if exc.status != 404 or not self._discovered:
                raise
            before = self._base
            self._base, self._discovered = "", False
            if self.base() == before:
                raise
            return self.http.send(method, f"{self.base()}/{path}", what=what, auth=self._auth, **kw)

    def _get(self, path: str, *, what: str, **kw: Any) -> Any:
        return self.http.decode(self._send("GET", path, what=what, **kw), what)

    def _list(self, path: str, *, what: str, conditions: str = "",
              progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every object of a list call, all pages (``Link`` rel=next), or a SourceError and nothing."""
        params = {"pageSize": str(PAGE_SIZE), "page": "1", "orderBy": "id asc"}
        if conditions:
            params["conditions"] = conditions
        out: list[dict[str, Any]] = []
        self.base()
        for attempt in (1, 2):
            try:
                for page in self.http.pages(f"{self.base()}/{path}", what=what, params=params, auth=self._auth,
                                            items=_items, next_url=link_next):
                    out.extend(x for x in page if isinstance(x, dict))
                    if progress is not None:
                        progress(len(page))
                return out
            except SourceError as exc:
                if attempt == 2 or exc.status != 404 or not self._discovered or out:
                    raise
                before, self._base, self._discovered = self._base, "", False
                if self.base() == before:
                    raise
        return out

    # reads --------------------------------------------------------------------------------------------------

    def company(self, company_id: int | str) -> dict[str, Any]:
        """The company record of a Clients PSACompanyID; SourceError in words when there is none."""
        n = record_id(str(company_id), "PSACompanyID")
        try:
            body = self._get(f"company/companies/{n}", what=f"company {n} (company/companies)")
        except SourceError as exc:
            if exc.status == 404:
                raise self.http.fail(f"{SERVICE} has no company with id {n} (HTTP 404): check the client's "
                                     "PSACompanyID in Clients — the company's RecID (the number in the company's "
                                     "address in ConnectWise), not its identifier or name", status=404) from None
            raise
        if not isinstance(body, dict):
            raise self.http.fail(f"{SERVICE} sent no company object for company {n}; try again later")
        return body

    def contacts(self, company_id: int | str, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Every contact of the company (active and inactive), all pages."""
        n = record_id(str(company_id), "PSACompanyID")
        return self._list("company/contacts", what=f"the contacts of company {n} (company/contacts)",
                          conditions=f"company/id={n}", progress=progress)

    def time_entries(self, company_id: int | str, period: Period,
                     progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """The company's time entries that start in ``period`` (UTC), all pages."""
        n = record_id(str(company_id), "PSACompanyID")
        return self._list("time/entries", what=f"the time entries of company {n} for {period} (time/entries)",
                          conditions=f"company/id={n} and {_period_conditions(period)}", progress=progress)

    def agreement(self, agreement_id: int | str) -> dict[str, Any]:
        """An agreement record of a Clients PSAAgreementID; SourceError in words when there is none."""
        n = record_id(str(agreement_id), "PSAAgreementID")
        try:
            body = self._get(f"finance/agreements/{n}", what=f"agreement {n} (finance/agreements)")
        except SourceError as exc:
            if exc.status == 404:
                raise self.http.fail(f"{SERVICE} has no agreement with id {n} (HTTP 404): check the client's "
                                     "PSAAgreementID in Clients — the agreement's RecID in ConnectWise",
                                     status=404) from None
            raise
        if not isinstance(body, dict):
            raise self.http.fail(f"{SERVICE} sent no agreement object for agreement {n}; try again later")
        return body

    def additions(self, agreement_id: int | str) -> list[Addition]:
        """The agreement's additions (all pages)."""
        n = record_id(str(agreement_id), "PSAAgreementID")
        return [addition_of(a, n) for a in self._list(f"finance/agreements/{n}/additions",
                                                      what=f"the additions of agreement {n} (finance/agreements)")]

    def addition(self, agreement_id: int, addition_id: int) -> Addition:
        """One addition, read now."""
        body = self._get(f"finance/agreements/{agreement_id}/additions/{addition_id}",
                         what=f"addition {addition_id} of agreement {agreement_id} (finance/agreements)")
        if not isinstance(body, dict):
            raise self.http.fail(f"{SERVICE} sent no addition object for addition {addition_id}; try again later")
        return addition_of(body, agreement_id)

    def set_quantity(self, agreement_id: int, addition_id: int, quantity: int) -> Addition:
        """Write an addition's quantity (JSON Patch) and read it back; SourceError when the read-back differs."""
        what = f"the quantity of addition {addition_id} of agreement {agreement_id} (finance/agreements)"
        self._send("PATCH", f"finance/agreements/{agreement_id}/additions/{addition_id}", what=what,
                   json=[{"op": "replace", "path": "quantity", "value": quantity}])
        back = self.addition(agreement_id, addition_id)
        if back.quantity != quantity:
            raise self.http.fail(f"{SERVICE} accepted {what} = {quantity} but reads back {back.quantity:g}; check the "
                                 "addition in ConnectWise (a workflow or another integration may have changed it)")
        return back

    # the live source (tasks.sync_source.LiveSource) ---------------------------------------------------------

    def fetch(self, key: str, progress: Callable[[int], None] | None = None) -> ImportResult:
        """The company's contacts as an import (the ConnectWise contacts export's rules): every page, or a
        SourceError and nothing."""
        n = record_id(key, "PSACompanyID")
        self.company(n)
        return read_contacts(self.contacts(n, progress), company=str(n))

    def fetch_usage(self, key: str, period: str, client: str | None = None,
                    progress: Callable[[int], None] | None = None) -> UsageImport:
        """The company's time entries of ``period`` (YYYY-MM) as Usage rows, by the ``connectwise-time`` export's
        rules; the rows' Client is ``client`` (default: the key)."""
        n = record_id(key, "PSACompanyID")
        return read_time_entries(self.time_entries(n, Period.parse(period.strip()), progress),
                                 client=client or key.strip(), company=str(n))

    # the push (sources.writer.PsaWriter) ------------------------------------------------------------------

    def current(self, target: PushTarget) -> PsaRecord:
        """The addition of the client's agreement (PSAAgreementID) for ``target``'s plan, and its quantity.

        The rule: the agreement must belong to the client's company (PSACompanyID); of its active additions
        (agreementStatus Active, no cancelledDate on or before today), the one whose product identifier is the
        plan's product (Plans.PSAProduct, else the plan's name; case, spaces and punctuation ignored), else
        the one whose description is; none or two is a SourceError naming what there is."""
        n = record_id(target.agreement, "PSAAgreementID")
        agreement = self.agreement(n)
        owner = agreement.get("company")
        owner_id = owner.get("id") if isinstance(owner, dict) else None
        if target.company and owner_id is not None and str(owner_id) != str(record_id(target.company,
                                                                                      "PSACompanyID")):
            raise self.http.fail(f"agreement {n} ({agreement.get('name')}) belongs to company {owner_id}, not the "
                                 f"client's PSACompanyID {target.company}; check PSAAgreementID in Clients")
        additions = [a for a in self.additions(n) if a.active]
        want = product_key(target.product)
        found = [a for a in additions if product_key(a.product) == want] or \
            [a for a in additions if product_key(a.description) == want]
        if not found:
            have = ", ".join(sorted({a.product or a.description for a in additions})) or "none"
            raise self.http.fail(f"agreement {n} has no active addition for plan {target.plan!r} (product "
                                 f"{target.product!r}; its additions: {have}). Add the product to the agreement, or "
                                 "type the product's identifier in the plan's PSAProduct column in Plans")
        if len(found) > 1:
            raise self.http.fail(f"agreement {n} has {len(found)} active additions for product {target.product!r} "
                                 f"(ids {', '.join(str(a.id) for a in found)}); cancel the extra ones in ConnectWise "
                                 "so the push knows which to set")
        a = found[0]
        return PsaRecord(f"agreement {n} addition {a.id}", a.quantity,
                         f"addition {a.id} ({a.product or a.description}) of agreement {n}", (n, a.id))

    def set(self, record: PsaRecord, quantity: int) -> PsaRecord:
        """Write the addition's quantity (JSON Patch) and return it as read back."""
        agreement, addition = record.ref
        back = self.set_quantity(agreement, addition, quantity)
        return PsaRecord(record.id, back.quantity, record.what, record.ref)

    # perseat connect ----------------------------------------------------------------------------------------

    def check(self, company: str | None = None, agreement: str | None = None) -> list[Check]:
        """What works, in words: the site and company id, the keys and clientId, each permission a sync and a
        push need; with ``company`` (and ``agreement``), that client's records."""
        out: list[Check] = []
        try:
            if self.config.api_url:
                out.append(Check(True, f"API address from PERSEAT_CW_URL: {self.config.api_url}"))
            else:
                code, cloud = self.codebase()
                self._base = api_base(self.config.site, code)
                self._discovered = True
                out.append(Check(True, f"site {self.config.site} knows company id {self.config.company!r} (codebase "
                                       f"{code.strip('/')}, {'cloud' if cloud else 'on premises'}; API at "
                                       f"{self._base})"))
            info = self._get("system/info", what="the version (system/info)")
            version = info.get("version") if isinstance(info, dict) else None
            out.append(Check(True, "the API keys and clientId were accepted" + (f" (ConnectWise PSA {version})"
                                                                                 if version else "")))
        except SourceError as exc:
            return [*out, Check(False, str(exc))]
        probes = (("company/companies", "can read companies"), ("company/contacts", "can read contacts (sync)"),
                  ("time/entries", "can read time entries (sync usage)"),
                  ("finance/agreements", "can read agreements and additions (push)"))
        for path, works in probes:
            try:
                self._send("GET", path, what=f"{path}", params={"pageSize": "1"})
            except SourceError as exc:
                out.append(Check(False, f"{_PERMISSIONS[path]}: {exc}"))
            else:
                out.append(Check(True, f"{_PERMISSIONS[path]}: {works}"))
        out.append(Check(None, "editing agreement additions (perseat push) is not tried without a write: the role "
                               "needs Finance ▸ Agreements: Edit Level All"))
        if company:
            try:
                c = self.company(company)
                out.append(Check(True, f"company {company} is {c.get('name') or c.get('identifier') or '?'}"))
                if agreement:
                    a = self.agreement(agreement)
                    owner = a.get("company", {}).get("id") if isinstance(a.get("company"), dict) else None
                    if owner is not None and str(owner) != str(record_id(company, "PSACompanyID")):
                        out.append(Check(False, f"agreement {agreement} ({a.get('name')}) belongs to company {owner}, "
                                                f"not {company}: check PSAAgreementID"))
                    else:
                        adds = self.additions(agreement)
                        out.append(Check(True, f"agreement {agreement} ({a.get('name')}) has {len(adds)} additions: "
                                               + (", ".join(sorted({x.product for x in adds if x.product})) or "none")))
            except SourceError as exc:
                out.append(Check(False, str(exc)))
        return out


def _items(body: Any) -> list[Any]:
    """A list call's page: the JSON array itself."""
    if not isinstance(body, list):
        raise SourceError(f"{SERVICE} sent a page that is not a list of records; stopped (nothing was changed)")
    return body


__all__ = ["CLOUD_API_HOSTS", "PAGE_SIZE", "SETTINGS", "Addition", "ConnectWiseClient", "ConnectWiseConfig",
           "addition_of", "api_base", "record_id", "site_url"]
