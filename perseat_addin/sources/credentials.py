"""A live source's settings and secrets: environment variables first, then the OS keyring (SPEC §8).

Never the workbook, a log or an output file. Each :class:`Setting` is named by its environment
variable (``PERSEAT_GRAPH_CLIENT_SECRET``); in the keyring it is the password stored under the
service ``perseat`` with that name as the user name::

    keyring set perseat PERSEAT_GRAPH_CLIENT_SECRET

Secrets come back as :class:`~perseat_addin.sources.http.Secret`. When no keyring backend is
available (a server without a desktop session, say), the message says so in words.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from perseat_addin.sources.http import Secret, SourceError

KEYRING_SERVICE = "perseat"


@dataclass(frozen=True)
class Setting:
    """One value a source needs."""

    name: str  # the environment variable, also the keyring user name
    what: str  # in words, for messages: "the app's client secret"
    secret: bool = False
    default: str | None = None
    optional: bool = False  # may stay unset: then it is left out of what :func:`read` returns


KeyringGet = Callable[[str, str], "str | None"]


def keyring_problem() -> str | None:
    """None when an OS keyring can be used here; else why not, in words."""
    try:
        import keyring  # lazy: only the live sources need it, and it looks for backends on import
        from keyring.backends import fail, null
    except ImportError:
        return "the keyring package is not installed (pip install keyring)"
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken backend configuration: say so, never crash
        return f"the OS keyring could not be opened ({type(exc).__name__})"
    if isinstance(backend, fail.Keyring):
        return ("no OS keyring is available on this machine (no Windows Credential Manager, macOS Keychain or "
                "Secret Service was found)")
    if isinstance(backend, null.Keyring):
        return "the OS keyring is switched off (PYTHON_KEYRING_BACKEND names the null keyring)"
    return None


def _keyring_get(service: str, name: str) -> str | None:
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(service, name)
    except KeyringError:
        return None


def read(settings: Sequence[Setting], *, env: Mapping[str, str] | None = None,
         keyring_get: KeyringGet | None = None, label: str = "") -> dict[str, str | Secret]:
    """Each setting's value (secrets as :class:`Secret`), from ``env`` (default: the environment), then the
    keyring; a default where there is one. :class:`SourceError` names every missing one and how to set it."""
    env = os.environ if env is None else env
    found: dict[str, str | Secret] = {}
    missing: list[Setting] = []
    problem: str | None = None
    checked = False
    for s in settings:
        value = (env.get(s.name) or "").strip()
        if not value:
            if not checked:
                problem = keyring_problem() if keyring_get is None else None
                checked = True
            if problem is None:
                value = ((keyring_get or _keyring_get)(KEYRING_SERVICE, s.name) or "").strip()
        if not value and s.default is not None:
            value = s.default
        if not value:
            if not s.optional:
                missing.append(s)
            continue
        found[s.name] = Secret(value) if s.secret else value
    if missing:
        names = ", ".join(f"{s.name} ({s.what})" for s in missing)
        how = (f"; {problem}, so set them as environment variables" if problem else
               f", or store each in the OS keyring: keyring set {KEYRING_SERVICE} {missing[0].name}")
        raise SourceError(f"{label + ': ' if label else ''}missing {names}. Set the environment "
                          f"variable{'s' if len(missing) > 1 else ''}{how}")
    return found


__all__ = ["KEYRING_SERVICE", "Setting", "keyring_problem", "read"]
