"""Sending the invoice e-mails through an SMTP server named by environment variables (never the workbook).

``PERSEAT_SMTP_HOST`` (required), ``PERSEAT_SMTP_PORT`` (587), ``PERSEAT_SMTP_USER`` and
``PERSEAT_SMTP_PASSWORD`` (or the password in the OS keyring: ``keyring set perseat PERSEAT_SMTP_PASSWORD``),
``PERSEAT_SMTP_SSL=1`` for implicit TLS (port 465), ``PERSEAT_SMTP_CAFILE`` for a server whose certificate a
private CA signed. The connection is always encrypted and the server's certificate checked: on port 587
the server must offer STARTTLS, which is started before any login.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from perseat_addin.errors import PerseatError
from perseat_addin.sources.credentials import KEYRING_SERVICE, KeyringGet, Setting, read
from perseat_addin.sources.http import Secret, SourceError

ENV_HOST, ENV_PORT, ENV_USER, ENV_PASSWORD = ("PERSEAT_SMTP_HOST", "PERSEAT_SMTP_PORT", "PERSEAT_SMTP_USER",
                                              "PERSEAT_SMTP_PASSWORD")
ENV_SSL, ENV_CAFILE = "PERSEAT_SMTP_SSL", "PERSEAT_SMTP_CAFILE"
TIMEOUT = 60.0


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send."""

    host: str
    port: int
    user: str = ""
    password: Secret | None = None
    implicit_tls: bool = False
    cafile: str = ""

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_config(env: Mapping[str, str], keyring_get: KeyringGet | None = None) -> SmtpConfig:
    """The server from ``env``; PerseatError naming every variable that is missing or wrong."""
    host = (env.get(ENV_HOST) or "").strip()
    if not host:
        raise PerseatError(f"--smtp needs the mail server: set {ENV_HOST} (e.g. smtp.office365.com), and "
                           f"{ENV_PORT} (default 587), {ENV_USER} and {ENV_PASSWORD} (or store the password in "
                           f"the OS keyring: keyring set {KEYRING_SERVICE} {ENV_PASSWORD}); nothing was sent")
    implicit = (env.get(ENV_SSL) or "").strip().lower() in ("1", "yes", "true")
    port_text = (env.get(ENV_PORT) or "").strip() or ("465" if implicit else "587")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise PerseatError(f"{ENV_PORT} is {port_text!r}: type the server's port number (587 for STARTTLS, 465 "
                           f"with {ENV_SSL}=1); nothing was sent")
    user = (env.get(ENV_USER) or "").strip()
    password: Secret | None = None
    if user:
        try:
            found = read([Setting(ENV_PASSWORD, f"the password of {user} on {host}", secret=True)], env=env,
                         keyring_get=keyring_get, label="--smtp")
        except SourceError as exc:
            raise PerseatError(f"{exc}; nothing was sent") from None
        value = found[ENV_PASSWORD]
        password = value if isinstance(value, Secret) else Secret(value)
    cafile = (env.get(ENV_CAFILE) or "").strip()
    return SmtpConfig(host, int(port_text), user, password, implicit, cafile)


def _context(config: SmtpConfig) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=config.cafile or None)
    except (OSError, ssl.SSLError) as exc:
        raise PerseatError(f"{ENV_CAFILE} {config.cafile}: cannot be read as certificates ({exc}); nothing was "
                           "sent") from None


def send_all(config: SmtpConfig, messages: Sequence[EmailMessage], sent: Callable[[int], None]) -> None:
    """Send each message over one encrypted connection; ``sent(i)`` after the server accepted message ``i``.
    PerseatError in words when the server cannot be reached, offers no STARTTLS, refuses the login or a
    message (the messages accepted before that have been reported through ``sent``)."""
    context = _context(config)
    try:
        if config.implicit_tls:
            server: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=TIMEOUT, context=context)
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT)
        with server:
            if not config.implicit_tls:
                server.ehlo()
                if not server.has_extn("starttls"):
                    raise PerseatError(f"the mail server {config} does not offer STARTTLS, so the invoices would "
                                       "travel unencrypted. Use the server's submission port (587), or its "
                                       f"implicit-TLS port 465 with {ENV_SSL}=1")
                server.starttls(context=context)
                server.ehlo()
            if config.user:
                assert config.password is not None  # smtp_config
                server.login(config.user, config.password.reveal())
            for i, msg in enumerate(messages):
                server.send_message(msg)
                sent(i)
    except smtplib.SMTPAuthenticationError as exc:
        raise PerseatError(f"the mail server {config} refused the login of {config.user} "
                           f"({_reply(exc.smtp_code, exc.smtp_error)}); check {ENV_USER} and {ENV_PASSWORD}") \
            from None
    except smtplib.SMTPNotSupportedError:
        raise PerseatError(f"the mail server {config} does not accept a login (AUTH) here; leave {ENV_USER} unset "
                           "if it needs none") from None
    except smtplib.SMTPRecipientsRefused as exc:
        who = ", ".join(exc.recipients)
        raise PerseatError(f"the mail server {config} refused the address {who}; check BillingEmail in "
                           "Clients") from None
    except smtplib.SMTPResponseException as exc:
        raise PerseatError(f"the mail server {config} refused: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise PerseatError(f"the mail server {config}'s certificate is not trusted ({exc.verify_message}); if a "
                           f"private CA signed it, name its certificate file in {ENV_CAFILE}") from None
    except ssl.SSLError as exc:
        raise PerseatError(f"the encrypted connection to the mail server {config} failed ({exc.reason or exc})") \
            from None
    except (smtplib.SMTPException, socket.gaierror, OSError) as exc:
        raise PerseatError(f"cannot reach the mail server {config} ({exc}); check {ENV_HOST} and {ENV_PORT} and "
                           "the network") from None


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"


__all__ = ["ENV_CAFILE", "ENV_HOST", "ENV_PASSWORD", "ENV_PORT", "ENV_SSL", "ENV_USER", "SmtpConfig", "send_all",
           "smtp_config"]
