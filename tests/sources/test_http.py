"""The shared HTTP layer's small parts: Retry-After, secrets kept out of text, settings from env and keyring."""

from __future__ import annotations

import datetime as dt
import email.utils
import pickle

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from perseat_addin.sources import credentials
from perseat_addin.sources.credentials import Setting
from perseat_addin.sources.graph import SETTINGS, GraphConfig, check_tenant
from perseat_addin.sources.http import REDACTED, Policy, Redactor, Secret, SourceError, retry_after

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("header", "seconds"), [
    ("10", 10.0), (" 2.5 ", 2.5), ("-3", 0.0), (None, None), ("", None), ("soon", None),
    (email.utils.format_datetime(NOW + dt.timedelta(seconds=30), usegmt=True), 30.0),
    (email.utils.format_datetime(NOW - dt.timedelta(seconds=30), usegmt=True), 0.0),
    ("Fri, 20 Nov 2026 12:01:00 GMT", 60.0),
])
def test_retry_after_reads_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert retry_after(header, NOW) == seconds


def test_backoff_doubles_up_to_its_cap() -> None:
    p = Policy(backoff=0.5, max_backoff=3)
    assert [p.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_policy_from_the_environment() -> None:
    assert Policy.from_env({"PERSEAT_HTTP_TIMEOUT": "5", "PERSEAT_HTTP_MAX_WAIT": "60"}) == Policy(timeout=5,
                                                                                                   max_wait=60)
    with pytest.raises(SourceError, match="PERSEAT_HTTP_TIMEOUT='soon' is not a number of seconds"):
        Policy.from_env({"PERSEAT_HTTP_TIMEOUT": "soon"})
    with pytest.raises(SourceError, match="more than 0 seconds"):
        Policy.from_env({"PERSEAT_HTTP_MAX_WAIT": "0"})


def test_a_secret_never_shows_itself() -> None:
    s = Secret("p@ss word/+=")
    assert "p@ss" not in repr(s) and "p@ss" not in str(s) and "p@ss" not in f"{s} {s!r} {[s]} {({'k': s})}"
    assert s.reveal() == "p@ss word/+="
    with pytest.raises(TypeError):
        pickle.dumps(s)
    r = Redactor(s, "tok-123456")
    text = "secret=p@ss word/+= form=p%40ss%20word%2F%2B%3D plus=p%40ss+word%2F%2B%3D bearer tok-123456"
    assert r.clean(text) == f"secret={REDACTED} form={REDACTED} plus={REDACTED} bearer {REDACTED}"
    assert Redactor("ab").clean("ab cab") == "ab cab"  # too short to be anyone's secret


def test_graph_config_repr_hides_the_secret() -> None:
    cfg = GraphConfig.load(env={"PERSEAT_GRAPH_CLIENT_ID": "app", "PERSEAT_GRAPH_CLIENT_SECRET": "hunter2-secret"})
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)
    assert cfg.login_url == "https://login.microsoftonline.com" and cfg.graph_url == "https://graph.microsoft.com/v1.0"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps its passwords in memory (the test's OS keyring)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def os_keyring() -> object:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


def test_environment_first_then_the_keyring(os_keyring: MemoryKeyring) -> None:
    keyring.set_password("perseat", "PERSEAT_GRAPH_CLIENT_SECRET", "from-the-keyring")
    keyring.set_password("perseat", "PERSEAT_GRAPH_CLIENT_ID", "id-from-keyring")
    got = credentials.read(SETTINGS, env={"PERSEAT_GRAPH_CLIENT_ID": "id-from-env"})
    assert got["PERSEAT_GRAPH_CLIENT_ID"] == "id-from-env"
    secret = got["PERSEAT_GRAPH_CLIENT_SECRET"]
    assert isinstance(secret, Secret) and secret.reveal() == "from-the-keyring"
    with pytest.raises(SourceError) as caught:
        credentials.read([Setting("PERSEAT_X_KEY", "the X key", secret=True)], env={}, label="X")
    assert str(caught.value) == ("X: missing PERSEAT_X_KEY (the X key). Set the environment variable, or store each in "
                                 "the OS keyring: keyring set perseat PERSEAT_X_KEY")


def test_no_keyring_backend_is_said_in_words() -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        assert "no OS keyring is available on this machine" in (credentials.keyring_problem() or "")
        with pytest.raises(SourceError, match=r"no OS keyring is available on this machine.*so set them as "
                                              r"environment variables"):
            GraphConfig.load(env={})
    finally:
        keyring.set_keyring(before)


@pytest.mark.parametrize("tenant", ["contoso.onmicrosoft.com", "52eaad04-13a2-4a2f-9ce8-93a294fadf36", " x.com "])
def test_tenant_ids_and_domains_pass(tenant: str) -> None:
    assert check_tenant(tenant) == tenant.strip()


@pytest.mark.parametrize("tenant", ["", "a/b", "../common", "x y", "contoso.com?x=1", "-bad.com"])
def test_anything_else_is_not_a_tenant(tenant: str) -> None:
    with pytest.raises(SourceError, match="is not a Microsoft 365 tenant id or domain"):
        check_tenant(tenant)
