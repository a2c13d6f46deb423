"""The one HTTP layer every live source uses, over httpx: timeouts, retries, paging, errors in words.

:class:`HttpClient` sends a request and either returns a successful response or raises
:class:`SourceError` with a message a billing clerk can act on. On the way it

* times out (``Policy.timeout`` seconds to connect and between bytes; ``PERSEAT_HTTP_TIMEOUT``);
* retries HTTP 429 and 5xx, timeouts and dropped connections, waiting what ``Retry-After`` asks
  (seconds or an HTTP date) or else ``backoff`` seconds doubling each try, never more than
  ``Policy.max_wait`` seconds in all for one request (``PERSEAT_HTTP_MAX_WAIT``);
* refreshes the credentials once when the service says the token expired mid-run (an
  :class:`Auth` decides what "expired" looks like), then tries again;
* reads JSON, and says so in words when the answer is not JSON;
* follows a service's paging to the end (:meth:`HttpClient.pages` with :func:`odata_next`,
  :func:`link_next` or :func:`field_next`), refusing a next-page link that loops.

A service module adds what only it knows: ``explain`` turns its error bodies into words
(bad credentials, a missing tenant or company, a missing permission) and ``retryable`` says
which failures are worth another try (Autotask reports some permission errors as HTTP 500).

Secrets: credentials and tokens travel as :class:`Secret` (its repr is ``[redacted]``) and are
registered with the client's :class:`Redactor`, which every message passes through. Nothing here
logs; httpx's own log lines name the method, URL and status only.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import httpx

from perseat_addin.errors import PerseatError
from perseat_addin.version import __version__

REDACTED = "[redacted]"


class Secret:
    """A credential or token: its text comes out only through :meth:`reveal`; repr and str hide it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret's text, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret is not pickled")


class Redactor:
    """The secrets of one run; :meth:`clean` takes every one of them (and its URL-encoded forms) out of a text."""

    MIN_LENGTH = 4  # shorter "secrets" would shred ordinary words; nobody's key is that short

    def __init__(self, *secrets: Secret | str) -> None:
        self._texts: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: Secret | str | None) -> None:
        """Hide ``secret`` from now on."""
        text = secret.reveal() if isinstance(secret, Secret) else (secret or "")
        if len(text) >= self.MIN_LENGTH:
            self._texts |= {text, quote(text, safe=""), quote_plus(text, safe="")}

    def clean(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``."""
        for s in sorted(self._texts, key=len, reverse=True):
            text = text.replace(s, REDACTED)
        return text


class SourceError(PerseatError):
    """A live source failed: the message says what failed and what to do, and never holds a secret."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of the answer that failed, if there was one
        self.code = code  # the service's own error code ("Authorization_RequestDenied"), if it gave one


class Auth(Protocol):
    """How a source signs its requests, and renews that when the service says it expired."""

    def headers(self) -> dict[str, str]:
        """Headers that authenticate the next request (fetching a token first if need be)."""
        ...

    def expired(self, response: httpx.Response) -> bool:
        """True when ``response`` says the credentials ran out mid-run (a fresh token may work)."""
        ...

    def refresh(self) -> None:
        """Forget the current token: the next :meth:`headers` fetches a new one."""
        ...


@dataclass(frozen=True)
class Policy:
    """Timeouts and retries for one source."""

    timeout: float = 30.0  # seconds to connect, and between bytes of an answer
    attempts: int = 5  # tries of one request, the first included
    backoff: float = 0.5  # first wait (seconds) when the service does not say; doubles each try
    max_backoff: float = 30.0
    max_wait: float = 300.0  # seconds spent waiting between the tries of one request, in all

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        """The default policy, with ``PERSEAT_HTTP_TIMEOUT`` and ``PERSEAT_HTTP_MAX_WAIT`` (seconds) if set."""
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for name, key in (("PERSEAT_HTTP_TIMEOUT", "timeout"), ("PERSEAT_HTTP_MAX_WAIT", "max_wait")):
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                values[key] = float(text)
            except ValueError:
                raise SourceError(f"{name}={text!r} is not a number of seconds; set it to e.g. 30, or unset "
                                  "it") from None
            if not values[key] > 0:
                raise SourceError(f"{name} must be more than 0 seconds (it is {text})")
        return cls(timeout=values.get("timeout", cls.timeout), max_wait=values.get("max_wait", cls.max_wait))

    def delay(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based) when the service names none."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date (RFC 9110); None
    when absent or unreadable. A date in the past means 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def error_detail(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a failed answer's body: the shapes most APIs use (``{"error": {"code",
    "message"}}``, OAuth's ``{"error", "error_description"}``, ``{"message"}``), else its first words."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return "", text[:200]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("code") or ""), str(err.get("message") or "")
        if isinstance(err, str):
            return err, str(body.get("error_description") or body.get("message") or "")
        for key in ("message", "Message", "title", "detail"):
            if isinstance(body.get(key), str):
                return str(body.get("code") or ""), str(body[key])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            return "", str(first.get("message") if isinstance(first, dict) else first)
    return "", str(body)[:200]


def default_retryable(response: httpx.Response) -> bool:
    """Worth another try: throttled (429) or a server error (5xx, not 501 Not Implemented)."""
    return response.status_code == 429 or (response.status_code >= 500 and response.status_code != 501)


Explain = Callable[[httpx.Response, str], str]
"""(failed response, what was being done) → the message of the :class:`SourceError`."""


def odata_next(response: httpx.Response, body: Any) -> str | None:
    """OData paging (Microsoft Graph): the ``@odata.nextLink`` of the page, followed verbatim."""
    link = body.get("@odata.nextLink") if isinstance(body, dict) else None
    return link if isinstance(link, str) and link else None


def link_next(response: httpx.Response, body: Any) -> str | None:
    """RFC 8288 paging (ConnectWise PSA): the ``Link: <…>; rel="next"`` header."""
    link = response.links.get("next", {}).get("url")
    return link or None


def field_next(*path: str) -> Callable[[httpx.Response, Any], str | None]:
    """Paging by a URL in the body (Autotask: ``field_next("pageDetails", "nextPageUrl")``)."""
    def find(response: httpx.Response, body: Any) -> str | None:
        for key in path:
            body = body.get(key) if isinstance(body, dict) else None
        return body if isinstance(body, str) and body else None
    return find


class HttpClient:
    """HTTP for one source (``service`` names it in messages): one connection pool, one policy, one
    set of secrets. Use as a context manager, or :meth:`close` it."""

    def __init__(self, service: str, *, policy: Policy | None = None, redactor: Redactor | None = None,
                 explain: Explain | None = None, retryable: Callable[[httpx.Response], bool] = default_retryable,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.service = service
        self.policy = policy or Policy.from_env()
        self.redactor = redactor or Redactor()
        self._explain = explain or self.default_explain
        self._retryable = retryable
        self._sleep = sleep
        self.waited = 0.0  # seconds spent waiting on retries (for reports and tests)
        t = self.policy.timeout
        self._client = httpx.Client(timeout=httpx.Timeout(t, connect=min(t, 15.0)), follow_redirects=False,
                                    headers={"User-Agent": f"perseat-addin/{__version__}",
                                             "Accept": "application/json"})

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"HttpClient({self.service!r})"

    def fail(self, message: str, *, status: int | None = None, code: str = "") -> SourceError:
        """A :class:`SourceError` whose message has passed through the redactor."""
        return SourceError(self.redactor.clean(message), status=status, code=code)

    def default_explain(self, response: httpx.Response, what: str) -> str:
        """Words for a failed answer when the service module has none of its own."""
        _, detail = error_detail(response)
        status = response.status_code
        said = f": {detail}" if detail else ""
        if status == 401:
            return f"{self.service} refused the credentials for {what} (HTTP 401{said}); check them and try again"
        if status == 403:
            return f"{self.service} denied permission for {what} (HTTP 403{said}); grant the missing permission"
        if status == 404:
            return f"{self.service} found nothing at the address for {what} (HTTP 404{said})"
        return f"{self.service} answered {what} with HTTP {status} {response.reason_phrase}{said}"

    def send(self, method: str, url: str, *, what: str, params: Mapping[str, str] | None = None,
             data: Mapping[str, str] | None = None, json: Any = None, headers: Mapping[str, str] | None = None,
             auth: Auth | None = None, explain: Explain | None = None) -> httpx.Response:
        """The successful answer to one request, after the policy's retries; :class:`SourceError` otherwise.
        ``what`` says what the request is for ("the users of tenant contoso.com"); ``explain`` overrides the
        client's words for a failed answer (a call that needs its own permission, say)."""
        policy = self.policy
        waited = 0.0
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            sent = {**(headers or {}), **(auth.headers() if auth is not None else {})}
            asked: float | None = None
            final: httpx.Response | None = None
            try:
                response = self._client.request(method, url, params=params, data=data, json=json, headers=sent)
            except httpx.TimeoutException:
                last = f"no answer within {policy.timeout:g} s"
                kind = "timeout"
            except httpx.TransportError as exc:
                last = f"the connection failed ({type(exc).__name__}: {exc})"
                kind = "connection"
            else:
                if response.is_success:
                    return response
                if auth is not None and not refreshed and auth.expired(response):
                    refreshed = True  # once: a second "expired" right after a fresh token is a real refusal
                    auth.refresh()
                    attempt -= 1
                    continue
                if not self._retryable(response):
                    code, _ = error_detail(response)
                    raise self.fail((explain or self._explain)(response, what), status=response.status_code,
                                    code=code)
                asked = retry_after(response.headers.get("Retry-After"))
                status = response.status_code
                last = ("HTTP 429 Too Many Requests (throttled)" if status == 429 else
                        f"HTTP {status} {response.reason_phrase}")
                kind = "throttled" if status == 429 else "server"
                final = response
            delay = asked if asked is not None else policy.delay(attempt)
            if attempt >= policy.attempts or waited + delay > policy.max_wait:
                raise self._gave_up(what, url, kind, last, attempt, waited, delay, final)
            self._pause(delay)
            waited += delay
            self.waited += delay

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif seconds > 0:
            time.sleep(seconds)

    def _gave_up(self, what: str, url: str, kind: str, last: str, tries: int, waited: float, delay: float,
                 response: httpx.Response | None) -> SourceError:
        policy = self.policy
        over = waited + delay > policy.max_wait and tries < policy.attempts
        after = f"{tries} tr{'y' if tries == 1 else 'ies'}" + (f" over {waited:.0f} s" if waited >= 1 else "")
        if kind == "timeout":
            text = (f"{self.service} did not answer {what}: {last}, {after}. Check the network connection and try "
                    "again later (PERSEAT_HTTP_TIMEOUT sets the seconds to wait)")
        elif kind == "connection":
            host = urlsplit(url).hostname
            text = (f"{self.service} could not be reached for {what}{f' at {host}' if host else ''}: {last}, {after}. "
                    "Check the network connection and the service's address")
        elif kind == "throttled" and over:
            text = (f"{self.service} is throttling {what} and asks to wait {delay:.0f} s more, past the "
                    f"{policy.max_wait:.0f} s allowed (PERSEAT_HTTP_MAX_WAIT); try again later")
        elif kind == "throttled":
            text = (f"{self.service} kept throttling {what} ({last}), {after}; try again later, or sync fewer "
                    "clients at once")
        else:
            detail = ""
            if response is not None:
                _, said = error_detail(response)
                detail = f": {said}" if said else ""
            text = f"{self.service} kept failing {what} ({last}{detail}), {after}; try again later"
        status = response.status_code if response is not None else None
        return self.fail(text, status=status, code=kind)

    def json(self, method: str, url: str, *, what: str, **kw: Any) -> Any:
        """The JSON body of the successful answer (see :meth:`send`); :class:`SourceError` when it is not JSON."""
        return self.decode(self.send(method, url, what=what, **kw), what)

    def decode(self, response: httpx.Response, what: str) -> Any:
        """``response``'s JSON body, or a :class:`SourceError` that says the answer was not JSON."""
        try:
            return response.json()
        except ValueError:
            text = " ".join(response.text.split())
            start = text[:60] + ("…" if len(text) > 60 else "")
            raise self.fail(f"{self.service} sent an answer to {what} that is not valid JSON (HTTP "
                            f"{response.status_code}, {len(response.content)} bytes, starting {start!r}); the service "
                            "or a proxy in between is failing — try again later", status=response.status_code,
                            code="malformed") from None

    def pages(self, url: str, *, what: str, items: Callable[[Any], list[Any]],
              next_url: Callable[[httpx.Response, Any], str | None], params: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None, auth: Auth | None = None, explain: Explain | None = None,
              max_pages: int = 100_000) -> Iterator[list[Any]]:
        """Each page's items, following ``next_url`` to the last page. ``items`` picks a page's list out of
        its body (a SourceError when the body is not the expected shape). The next page's address is used
        verbatim: it carries the query, so ``params`` go with the first page only; ``headers`` go with every
        page (Graph does not carry ConsistencyLevel to the next page)."""
        seen: set[str] = set()
        page = 0
        next_: str | None = url
        while next_ is not None:
            page += 1
            if page > max_pages:
                raise self.fail(f"{self.service} gave more than {max_pages:,} pages for {what}; stopped")
            here = f"{what} (page {page})" if page > 1 else what
            response = self.send("GET", next_, what=here, params=params if page == 1 else None, headers=headers,
                                 auth=auth, explain=explain)
            body = self.decode(response, here)
            yield items(body)
            seen.add(next_)
            next_ = next_url(response, body)
            if next_ is not None and next_ in seen:
                raise self.fail(f"{self.service} sent the same next-page link twice for {what} (page {page}); "
                                "stopped rather than loop — try again later")


_V = TypeVar("_V", bound="VendorClient")


class VendorClient:
    """What every vendor's client shares: its :class:`HttpClient` (``http``), closed on leaving a ``with``
    block or by :meth:`close`."""

    http: HttpClient

    def __enter__(self: _V) -> _V:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()


__all__ = [
    "REDACTED",
    "Auth",
    "HttpClient",
    "Policy",
    "Redactor",
    "Secret",
    "SourceError",
    "VendorClient",
    "default_retryable",
    "error_detail",
    "field_next",
    "link_next",
    "odata_next",
    "retry_after",
]
