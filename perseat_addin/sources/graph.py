"""Microsoft Graph, app-only: each client's tenant users and licences (SPEC §8 "Live sources").

One app registration (multi-tenant, consented in each client's tenant) signs in per tenant with
the client-credentials grant (``POST {login}/{tenant}/oauth2/v2.0/token``, scope
``https://graph.microsoft.com/.default``), then reads

* ``/users?$select=…&$top=999`` to the last ``@odata.nextLink``. ``signInActivity`` needs
  AuditLog.Read.All and an Entra ID P1 licence: when the tenant refuses it, the users are read
  again without it and the sync says so;
* ``/subscribedSkus`` for the licences' SKU part numbers (LicenseAssignment.Read.All, or
  Organization.Read.All / Directory.Read.All); when refused, licences are named by their skuId
  and the sync says so.

Settings (environment, then the OS keyring): ``PERSEAT_GRAPH_CLIENT_ID``,
``PERSEAT_GRAPH_CLIENT_SECRET``, ``PERSEAT_GRAPH_LOGIN_URL`` (default
``https://login.microsoftonline.com``), ``PERSEAT_GRAPH_URL`` (default
``https://graph.microsoft.com/v1.0``). Throttling (429 + Retry-After) and server errors are retried
by :mod:`perseat_addin.sources.http`; an expired token is renewed once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from perseat_addin.imports.graph import USER_FIELDS, read_graph_users
from perseat_addin.imports.roster import ImportResult
from perseat_addin.sources import credentials
from perseat_addin.sources.credentials import KeyringGet, Setting
from perseat_addin.sources.http import HttpClient, Policy, Secret, SourceError, VendorClient, error_detail, odata_next

SERVICE = "Microsoft Graph"
SCOPE = "https://graph.microsoft.com/.default"
PAGE_SIZE = 999
SETTINGS = (
    Setting("PERSEAT_GRAPH_CLIENT_ID", "the app registration's Application (client) ID"),
    Setting("PERSEAT_GRAPH_CLIENT_SECRET", "the value of one of the app's client secrets", secret=True),
    Setting("PERSEAT_GRAPH_LOGIN_URL", "the sign-in address", default="https://login.microsoftonline.com"),
    Setting("PERSEAT_GRAPH_URL", "the Graph address", default="https://graph.microsoft.com/v1.0"),
)
_TENANT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
                     r"[A-Za-z0-9])?)*$")
_PERMISSION_HELP = ("in the Microsoft Entra admin center, App registrations ▸ the app ▸ API permissions ▸ Add a "
                    "permission ▸ Microsoft Graph ▸ Application permissions, then Grant admin consent (for a "
                    "client's tenant: consent the app in that tenant)")


@dataclass(frozen=True)
class GraphConfig:
    """Where and as whom to sign in."""

    client_id: str
    secret: Secret
    login_url: str
    graph_url: str

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, keyring_get: KeyringGet | None = None) -> GraphConfig:
        """The settings from the environment, then the OS keyring (SourceError names what is missing)."""
        got = credentials.read(SETTINGS, env=env, keyring_get=keyring_get, label=SERVICE)
        secret = got["PERSEAT_GRAPH_CLIENT_SECRET"]
        assert isinstance(secret, Secret)
        return cls(str(got["PERSEAT_GRAPH_CLIENT_ID"]), secret, str(got["PERSEAT_GRAPH_LOGIN_URL"]).rstrip("/"),
                   str(got["PERSEAT_GRAPH_URL"]).rstrip("/"))

    def __repr__(self) -> str:
        return f"GraphConfig(client_id={self.client_id!r}, login_url={self.login_url!r}, graph_url={self.graph_url!r})"


def check_tenant(tenant: str) -> str:
    """``tenant`` (a Clients TenantID: a tenant id or a domain such as contoso.onmicrosoft.com), trimmed;
    SourceError when it cannot be one."""
    t = tenant.strip()
    if not _TENANT.match(t) or len(t) > 253:
        raise SourceError(f"TenantID {t!r} is not a Microsoft 365 tenant id or domain; type the tenant id (a GUID "
                          "from the Entra admin center's Overview) or a domain such as contoso.onmicrosoft.com")
    return t


def _first_sentence(text: str) -> str:
    """An Entra error description without its trace and correlation ids."""
    text = re.split(r"\r?\n|\s+Trace ID:", text, maxsplit=1)[0].strip()
    return text


@dataclass(frozen=True)
class Check:
    """One line of ``perseat connect``: what was checked, and whether it works (None: optional, missing)."""

    ok: bool | None
    text: str

    def __str__(self) -> str:
        mark = {True: "ok     ", False: "FAILED ", None: "missing"}[self.ok]
        return f"{mark} {self.text}"


class _TenantToken:
    """The app's access token for one tenant (the :class:`~perseat_addin.sources.http.Auth` of its calls)."""

    def __init__(self, graph: GraphClient, tenant: str) -> None:
        self.graph, self.tenant = graph, tenant
        self._token: Secret | None = None
        self._until = 0.0

    def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._until:
            self._token, lifetime = self.graph.token(self.tenant)
            self._until = time.monotonic() + max(0.0, lifetime - 120)  # renew two minutes early
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401  # Graph says InvalidAuthenticationToken: a new token may work

    def refresh(self) -> None:
        self._token = None

    def __repr__(self) -> str:
        return f"_TenantToken({self.tenant!r})"


class GraphClient(VendorClient):
    """Microsoft Graph for every tenant of one app registration. Use as a context manager."""

    label = SERVICE
    key_column = "TenantID"

    def __init__(self, config: GraphConfig, *, policy: Policy | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.http = HttpClient(SERVICE, policy=policy, explain=self._explain, sleep=sleep)
        self.http.redactor.add(config.secret)

    @classmethod
    def from_env(cls) -> GraphClient:
        """A client with the settings of :meth:`GraphConfig.load`."""
        return cls(GraphConfig.load())

    # sign-in ------------------------------------------------------------------------------------------------

    def token(self, tenant: str) -> tuple[Secret, float]:
        """A fresh app-only access token for ``tenant`` and its lifetime in seconds."""
        tenant = check_tenant(tenant)
        url = f"{self.config.login_url}/{quote(tenant, safe='')}/oauth2/v2.0/token"
        form = {"client_id": self.config.client_id, "client_secret": self.config.secret.reveal(), "scope": SCOPE,
                "grant_type": "client_credentials"}
        body = self.http.json("POST", url, what=f"signing in to tenant {tenant}", data=form,
                              explain=lambda r, what: self._sign_in_refused(r, tenant))
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self.http.fail(f"{SERVICE}: signing in to tenant {tenant} gave no access token; try again later")
        self.http.redactor.add(token)
        try:
            lifetime = float(body.get("expires_in") or 3599)
        except (TypeError, ValueError):
            lifetime = 3599.0
        return Secret(token), lifetime

    def _sign_in_refused(self, response: httpx.Response, tenant: str) -> str:
        """The token endpoint's refusal in words (Entra's AADSTS codes)."""
        error, description = error_detail(response)
        said = _first_sentence(description)
        codes = re.findall(r"AADSTS(\d+)", description)
        try:
            raw = response.json().get("error_codes")
        except (ValueError, AttributeError):
            raw = None
        if isinstance(raw, list):
            codes += [str(c) for c in raw]
        head = f"{SERVICE}: signing in to tenant {tenant} failed"
        if {"90002", "900023", "90013"} & set(codes):
            return (f"{head}: tenant {tenant!r} was not found ({said}). Check the client's TenantID in Clients: the "
                    "tenant id (GUID) or a domain such as contoso.onmicrosoft.com")
        if {"700016", "7000229"} & set(codes) or error == "unauthorized_client":
            return (f"{head}: the app (client id {self.config.client_id}) is not consented in that tenant ({said}). "
                    "An administrator of the client's tenant must consent to the app (or check "
                    "PERSEAT_GRAPH_CLIENT_ID)")
        if "7000222" in codes:
            return (f"{head}: the client secret has expired ({said}). Create a new client secret for the app and "
                    "store its value (PERSEAT_GRAPH_CLIENT_SECRET or the keyring)")
        if error == "invalid_client" or "7000215" in codes or response.status_code == 401:
            return (f"{head}: bad credentials — the client id or secret was refused (invalid_client: {said}). "
                    "Check PERSEAT_GRAPH_CLIENT_ID and that PERSEAT_GRAPH_CLIENT_SECRET holds the secret's Value "
                    "(not its Secret ID)")
        return f"{head} (HTTP {response.status_code} {error or ''}: {said or 'no reason given'})"

    def _explain(self, response: httpx.Response, what: str) -> str:
        """A Graph API refusal in words."""
        code, message = error_detail(response)
        status = response.status_code
        said = f"{code}: {message}" if code else message
        if status == 401:
            return (f"{SERVICE} refused the app's token for {what} even after signing in again (HTTP 401 {said}); "
                    "check the app's permissions and consent in that tenant, then try again")
        if status == 403:
            return f"{SERVICE} denied {what} (HTTP 403 {said}): the app lacks a permission — {_PERMISSION_HELP}"
        return f"{SERVICE} refused {what} (HTTP {status} {said})"

    def _needs(self, permission: str) -> Callable[[httpx.Response, str], str]:
        """Words for a call that needs ``permission``."""
        def explain(response: httpx.Response, what: str) -> str:
            if response.status_code == 403:
                code, message = error_detail(response)
                return (f"{SERVICE} denied {what} (HTTP 403 {code}: {message}): the app needs the application "
                        f"permission {permission} — {_PERMISSION_HELP}")
            return self._explain(response, what)
        return explain

    # reading ------------------------------------------------------------------------------------------------

    def auth(self, tenant: str) -> _TenantToken:
        """The token holder for ``tenant``'s calls."""
        return _TenantToken(self, check_tenant(tenant))

    def users(self, tenant: str, progress: Callable[[int], None] | None = None,
              auth: _TenantToken | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """Every user of ``tenant`` (all pages), and notes on what was left out (sign-in dates)."""
        tenant = check_tenant(tenant)
        auth = auth or self.auth(tenant)
        try:
            return self._users(tenant, USER_FIELDS, auth, progress), []
        except _RefusedOnFirstPage as refused:
            exc = refused.error
        why = ("the tenant has no Microsoft Entra ID P1 or P2 licence"
               if exc.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
               else "the app lacks the AuditLog.Read.All application permission (or its admin consent)")
        note = (f"sign-in dates left out: tenant {tenant} refused signInActivity ({why}); the users were read "
                "without it")
        fields = tuple(f for f in USER_FIELDS if f != "signInActivity")
        try:
            return self._users(tenant, fields, auth, progress), [note]
        except _RefusedOnFirstPage as refused:
            raise refused.error from None

    def _users(self, tenant: str, fields: tuple[str, ...], auth: _TenantToken,
               progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params = {"$select": ",".join(fields), "$top": str(PAGE_SIZE)}
        pages = self.http.pages(f"{self.config.graph_url}/users", what=f"the users of tenant {tenant}",
                                params=params, auth=auth, items=_values, next_url=odata_next,
                                explain=self._needs("User.Read.All" + (" and AuditLog.Read.All"
                                                                       if "signInActivity" in fields else "")))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return out
            except SourceError as exc:
                if exc.status == 403 and not out:
                    raise _RefusedOnFirstPage(exc) from None
                raise
            out.extend(u for u in page if isinstance(u, dict))
            if progress is not None:
                progress(len(page))

    def skus(self, tenant: str, auth: _TenantToken | None = None) -> dict[str, str]:
        """skuId → skuPartNumber of the tenant's subscriptions."""
        tenant = check_tenant(tenant)
        out: dict[str, str] = {}
        for page in self.http.pages(f"{self.config.graph_url}/subscribedSkus", what=f"the licences of tenant {tenant}",
                                    params={"$select": "skuId,skuPartNumber"}, auth=auth or self.auth(tenant),
                                    items=_values, next_url=odata_next,
                                    explain=self._needs("LicenseAssignment.Read.All (or Organization.Read.All)")):
            for sku in page:
                if isinstance(sku, dict) and sku.get("skuId"):
                    out[str(sku["skuId"])] = str(sku.get("skuPartNumber") or "")
        return out

    def fetch(self, tenant: str, progress: Callable[[int], None] | None = None) -> ImportResult:
        """The tenant's users as an import (the same shape as the admin-center export's): every page, or a
        SourceError and nothing."""
        tenant = check_tenant(tenant)
        auth = self.auth(tenant)
        notes: list[str] = []
        try:
            skus = self.skus(tenant, auth)
        except SourceError as exc:
            if exc.status != 403:
                raise
            skus = {}
            notes.append(f"licence names unavailable: tenant {tenant} refused /subscribedSkus (grant the app "
                         "LicenseAssignment.Read.All or Organization.Read.All); licences are named by their skuId, "
                         "so a user holding only free licences counts as licensed")
        users, more = self.users(tenant, progress, auth)
        return read_graph_users(users, skus, tenant=tenant, notes=[*more, *notes])

    def check(self, tenant: str) -> list[Check]:
        """What works for ``tenant``, in words: sign-in, User.Read.All, AuditLog.Read.All, licence names."""
        try:
            tenant = check_tenant(tenant)
            auth = self.auth(tenant)
            auth.headers()
        except SourceError as exc:
            return [Check(False, str(exc))]
        out = [Check(True, f"signed in: the app got a token for tenant {tenant} (tenant reachable)")]
        probes = (
            ("users", {"$select": "id", "$top": "1"}, "User.Read.All", True, "can read the users"),
            ("users", {"$select": "id,signInActivity", "$top": "1"}, "AuditLog.Read.All", None,
             "can read sign-in dates (signInActivity)"),
            ("subscribedSkus", {"$select": "skuId,skuPartNumber"}, "LicenseAssignment.Read.All", None,
             "can read licence names (/subscribedSkus)"),
        )
        for path, params, permission, required, works in probes:
            try:
                self.http.send("GET", f"{self.config.graph_url}/{path}", what=f"{path} of tenant {tenant}",
                               params=params, auth=auth, explain=self._needs(permission))
            except SourceError as exc:
                if exc.status == 403 and required is None:
                    extra = (" or the tenant has no Entra ID P1 licence"
                             if permission == "AuditLog.Read.All" else " or Organization.Read.All")
                    out.append(Check(None, f"{permission} not granted{extra} (optional): {works.replace('can ', '')}"
                                     " will be left out"))
                else:
                    out.append(Check(False, f"{permission}: {exc}"))
                    if required:
                        break
            else:
                out.append(Check(True, f"{permission} present: {works}"))
        return out


class _RefusedOnFirstPage(Exception):
    """A 403 before any user was read (a refused $select), to try again without signInActivity."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(str(error))
        self.error = error


def _values(body: Any) -> list[Any]:
    """The ``value`` list of an OData collection page."""
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, list):
        raise SourceError(f"{SERVICE} sent a page without a \"value\" list; stopped (nothing was changed)")
    return value


__all__ = ["PAGE_SIZE", "SCOPE", "SETTINGS", "Check", "GraphClient", "GraphConfig", "check_tenant"]
