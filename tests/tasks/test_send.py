"""Sending invoices (``perseat send``): .eml drafts that parse back with the PDF attached and the right To and
Subject, SMTP with STARTTLS through a local server on 127.0.0.1, the ChangeLog, asking before sending twice,
and refusing before anything is written when an address is missing or hostile."""

from __future__ import annotations

import datetime as dt
import email
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from perseat_addin.outputs.mail import addresses, fill, invoice_message, long_date
from perseat_addin.tasks.filebook import FileBook

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
NOVEMBER = [f"HV-{n}" for n in range(1001, 1008)]
USER, PASSWORD = "billing@harborview-it.example", "correct horse battery staple"


def perseat(*args: str | Path, code: int = 0, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          input=stdin)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def rows(path: Path, table: str) -> list[dict[str, Any]]:
    with FileBook(path) as book:
        t = book.rows(table)
    assert t is not None
    return [dict(zip(t.headers, r, strict=True)) for r in t.rows if any(v not in (None, "") for v in r)]


def sent_log(path: Path) -> list[dict[str, Any]]:
    return [r for r in rows(path, "ChangeLog") if r["Field"] == "InvoiceNo"]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with November finalized (seven recorded invoices)."""
    tmp = tmp_path_factory.mktemp("send")
    wb = Path(shutil.copyfile(TEMPLATE, tmp / "wb.xlsm"))
    perseat("invoice", wb, "--finalize", "--early", "--out", tmp / "nov")
    return wb


@pytest.fixture
def wb(ledger: Path, tmp_path: Path) -> Path:
    return Path(shutil.copyfile(ledger, tmp_path / "wb.xlsm"))


def set_cells(path: Path, table: str, key: tuple[str, str], values: dict[str, Any]) -> None:
    """Type ``values`` into the row of ``table`` whose ``key[0]`` column is ``key[1]`` (as staff would)."""
    from perseat_addin.tables import TableEdit

    with FileBook(path, "test") as book:
        t = book.rows(table)
        assert t is not None
        [i] = [i for i, r in enumerate(t.rows) if str(t.get(r, key[0])) == key[1]]
        cells = []
        for col, v in values.items():
            j = t.col(col)
            assert j is not None
            cells.append((i, j, v))
        book.write([TableEdit(t.name, tuple(cells))])


# --------------------------------------------------------------------------
# .eml drafts


def test_eml_drafts_parse_back_with_the_pdf_attached(wb: Path, tmp_path: Path) -> None:
    out = tmp_path / "mail"
    before = rows(wb, "Invoices")
    perseat("send", wb, "--out", out)
    files = sorted(out.iterdir())
    assert [f.name.split()[0] for f in files] == NOVEMBER
    invoices = {r["InvoiceNo"]: r for r in before}
    clients = {r["Client"]: r for r in rows(wb, "Clients")}
    for f in files:
        with f.open("rb") as fh:
            msg = email.message_from_binary_file(fh, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        number = f.name.split()[0]
        inv = invoices[number]
        assert msg["To"].addresses[0].addr_spec == clients[inv["Client"]]["BillingEmail"]
        assert msg["From"].addresses[0].addr_spec == "billing@harborview-it.example"
        assert number in msg["Subject"] and "November 2026" in msg["Subject"]
        assert msg["X-Unsent"] == "1" and msg["Message-ID"] and msg["Date"]
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert f"Dear {inv['Client']}," in text and f"USD {float(inv['Total']):,.2f}" in text
        assert f"due {long_date(inv['DueDate'])}" in text
        [pdf] = list(msg.iter_attachments())
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_filename() == f.name.removesuffix(".eml") + ".pdf"
        data = pdf.get_content()
        assert data.startswith(b"%PDF")
    assert rows(wb, "Invoices") == before  # recorded documents are never rewritten
    log = sent_log(wb)
    assert [r["New"].split()[0] for r in log] == NOVEMBER
    assert {(r["Action"], r["Source"], r["UserID"], r["Old"]) for r in log} == \
        {("Invoice e-mail drafted", "eml", "", "")}
    perseat("send", wb, "--out", out)  # drafting again needs no confirmation, and is logged again
    assert len(sent_log(wb)) == 2 * len(NOVEMBER)


def test_the_attached_pdf_is_the_invoice(wb: Path, tmp_path: Path) -> None:
    perseat("send", wb, "--out", tmp_path / "mail")
    eml = next((tmp_path / "mail").glob("HV-1003 *.eml"))
    with eml.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=policy.default)
    [part] = list(msg.iter_attachments())
    pdf = tmp_path / "attached.pdf"
    pdf.write_bytes(part.get_content())
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "HV-1003" in text and "Cobalt Logistics" in text


def test_a_credit_note_of_the_period_is_sent_too(wb: Path, tmp_path: Path) -> None:
    perseat("credit", wb, "HV-1003", "--line", "2", "--reason", "Kiosks were down", "--out", tmp_path / "cn")
    for name in ("EmailSubject", "EmailBody"):  # blank: the built-in wording, a credit note's own
        set_cells(wb, "Settings", ("Setting", name), {"Value": None})
    perseat("send", wb, "--out", tmp_path / "mail")
    assert sorted(f.name.split()[0] for f in (tmp_path / "mail").iterdir()) == sorted([*NOVEMBER, "CN-1008"])
    eml = next((tmp_path / "mail").glob("CN-1008 *.eml"))
    with eml.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=policy.default)
    assert msg["Subject"] == "Credit note CN-1008 for November 2026"
    body = msg.get_body(("plain",))
    assert body is not None and "credit note CN-1008 for November 2026: -USD 145.00" in body.get_content()
    assert msg["To"].addresses[0].addr_spec == "finance@cobalt-log.example"
    invoice = next((tmp_path / "mail").glob("HV-1001 *.eml"))
    with invoice.open("rb") as fh:
        assert email.message_from_binary_file(fh, policy=policy.default)["Subject"] == \
            "Invoice HV-1001 for November 2026"


def test_default_folder_is_the_periods_mail_folder(wb: Path) -> None:
    out = perseat("send", wb).stdout
    folder = wb.parent / "invoices" / "2026-11" / "mail"
    assert str(folder) in out and len(list(folder.glob("*.eml"))) == len(NOVEMBER)


def test_an_explicit_period_must_be_recorded(wb: Path, tmp_path: Path) -> None:
    err = perseat("send", wb, "--period", "2026-12", "--out", tmp_path / "m", code=1).stderr
    assert "December 2026 has no recorded invoices to send" in err and "2026-11" in err
    assert not (tmp_path / "m").exists() and not sent_log(wb)


@pytest.mark.parametrize(("value", "why"), [(None, "is blank"), ("accounts at birchlowe", "is not an e-mail"),
                                            ("ap@x.com\r\nBcc: all@evil.example", "line break")])
def test_a_client_without_a_usable_billing_email_stops_everything(wb: Path, tmp_path: Path, value: str | None,
                                                                  why: str) -> None:
    set_cells(wb, "Clients", ("Client", "Birch & Lowe LLP"), {"BillingEmail": value})
    data = wb.read_bytes()
    err = perseat("send", wb, "--out", tmp_path / "m", code=1).stderr
    assert "Clients, row 3, column BillingEmail: Birch & Lowe LLP's BillingEmail" in err and why in err
    assert "HV-1002 cannot be e-mailed" in err and "nothing was written" in err
    assert wb.read_bytes() == data and not (tmp_path / "m").exists()


def test_mspemail_is_required(wb: Path, tmp_path: Path) -> None:
    set_cells(wb, "Settings", ("Setting", "MSPEmail"), {"Value": None})
    err = perseat("send", wb, "--out", tmp_path / "m", code=1).stderr
    assert "Settings, row" in err and "MSPEmail is blank" in err
    assert not (tmp_path / "m").exists()


def test_hostile_names_cannot_inject_headers_or_paths(wb: Path, tmp_path: Path) -> None:
    hostile = "=cmd|' /C calc'!A0\r\nBcc: everyone@evil.example\r\n../../../etc/x"
    set_cells(wb, "Clients", ("Client", "Birch & Lowe LLP"), {"BillingContact": hostile,
                                                               "BillingEmail": "=cmd@birchlowe.example"})
    set_cells(wb, "Settings", ("Setting", "EmailSubject"), {"Value": "Invoice {invoice} for {client}"})
    set_cells(wb, "Settings", ("Setting", "MSPName"), {"Value": "Harborview\r\nBcc: x@evil.example"})
    out = tmp_path / "mail"
    perseat("send", wb, "--out", out)
    assert all(p.parent == out for p in out.rglob("*")) and len(list(out.iterdir())) == len(NOVEMBER)
    eml = next(out.glob("HV-1002 *.eml"))
    raw = eml.read_bytes()
    head = raw.split(b"\r\n\r\n")[0]
    assert not [line for line in head.split(b"\r\n") if line.lower().startswith(b"bcc")]  # only inside quotes
    with eml.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=policy.default)
    assert msg["Bcc"] is None and msg.get_all("To") and len(msg.get_all("To")) == 1
    assert [a.addr_spec for a in msg["To"].addresses] == ["=cmd@birchlowe.example"]
    assert [a.addr_spec for a in msg["From"].addresses] == ["billing@harborview-it.example"]
    assert "\n" not in msg["Subject"] and msg["Subject"] == "Invoice HV-1002 for Birch & Lowe LLP"


def test_placeholders_are_filled_once() -> None:
    assert fill("{client}: {total}", {"client": "{total}", "total": "USD 1.00"}) == "{total}: USD 1.00"
    assert long_date(dt.date(2026, 12, 31)) == "December 31, 2026"
    assert [a.addr_spec for a in addresses("a@b.example; c@d.example")] == ["a@b.example", "c@d.example"]
    for bad in ("", "a@b", "a b@c.example", "<a@b.example>"):
        with pytest.raises(ValueError):
            addresses(bad)


def test_usage_errors(wb: Path) -> None:
    assert "--again goes with --smtp" in perseat("send", wb, "--again", code=2).stderr
    assert "--out names the folder" in perseat("send", wb, "--smtp", "--out", "x", code=2).stderr
    assert "is not YYYY-MM" in perseat("send", wb, "--period", "2026-13", code=2).stderr
    assert "unrecognized arguments: --bogus" in perseat("send", wb, "--bogus", code=2).stderr
    assert "no such file" in perseat("send", wb.parent / "missing.xlsm", code=2).stderr


# --------------------------------------------------------------------------
# SMTP through a local server on 127.0.0.1


@dataclass
class Received:
    """What the test server saw for one message."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: bool
    tls: bool


@dataclass
class Handler:
    """The server's end: keeps each message it accepted (and refuses those to ``refuse``)."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        if self.refuse & set(envelope.rcpt_tos):
            return "554 5.7.1 Message rejected by policy"
        tls = session.ssl is not None or (server.transport is not None and
                                          server.transport.get_extra_info("ssl_object") is not None)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content,
                                      bool(session.authenticated), tls))
        return "250 OK"


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailServer:
    handler: Handler
    env: dict[str, str]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def _serve(certificate: tuple[trustme.CA, Path], starttls: bool, implicit: bool = False) -> Iterator[MailServer]:
    ca, ca_file = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    handler = Handler()
    port = _free_port()
    kw: dict[str, Any] = {"tls_context": context, "require_starttls": True} if starttls else {}
    if implicit:
        kw = {"ssl_context": context}
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=starttls, **kw)
    controller.start()
    try:
        yield MailServer(handler, {"PERSEAT_SMTP_HOST": "127.0.0.1", "PERSEAT_SMTP_PORT": str(port),
                                   "PERSEAT_SMTP_USER": USER, "PERSEAT_SMTP_PASSWORD": PASSWORD,
                                   "PERSEAT_SMTP_CAFILE": str(ca_file)})
    finally:
        controller.stop()


@pytest.fixture
def server(certificate: tuple[trustme.CA, Path]) -> Iterator[MailServer]:
    yield from _serve(certificate, starttls=True)


@pytest.fixture
def tls_server(certificate: tuple[trustme.CA, Path]) -> Iterator[MailServer]:
    yield from _serve(certificate, starttls=False, implicit=True)


@pytest.fixture
def plain_server(certificate: tuple[trustme.CA, Path]) -> Iterator[MailServer]:
    yield from _serve(certificate, starttls=False)


def test_smtp_sends_each_invoice_over_tls_after_login(wb: Path, server: MailServer) -> None:
    before = rows(wb, "Invoices")
    out = perseat("send", wb, "--smtp", env=server.env).stdout
    assert f"Sent {len(NOVEMBER)} e-mails for November 2026 through 127.0.0.1:" in out
    got = server.handler.received
    assert len(got) == len(NOVEMBER) and all(r.tls and r.authenticated for r in got)
    clients = {r["Client"]: r["BillingEmail"] for r in rows(wb, "Clients")}
    for r, number in zip(got, NOVEMBER, strict=True):
        msg = email.message_from_bytes(r.content, policy=policy.default)
        inv = next(i for i in before if i["InvoiceNo"] == number)
        assert r.rcpt_tos == [clients[inv["Client"]]] and r.mail_from == "billing@harborview-it.example"
        assert number in msg["Subject"] and msg["X-Unsent"] is None
        [pdf] = list(msg.iter_attachments())
        assert pdf.get_content().startswith(b"%PDF")
    log = sent_log(wb)
    assert [(r["Action"], r["Source"], r["New"].split()[0]) for r in log] == \
        [("Invoice e-mailed", "smtp", n) for n in NOVEMBER]
    assert rows(wb, "Invoices") == before

    # a second run without a terminal refuses, names --again, sends nothing and writes nothing
    data = wb.read_bytes()
    err = perseat("send", wb, "--smtp", env=server.env, code=1).stderr
    assert "HV-1001 was e-mailed on" in err and "--again" in err
    assert len(server.handler.received) == len(NOVEMBER) and wb.read_bytes() == data

    perseat("send", wb, "--smtp", "--again", env=server.env)
    assert len(server.handler.received) == 2 * len(NOVEMBER) and len(sent_log(wb)) == 2 * len(NOVEMBER)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_each_document_already_sent_is_asked_about(wb: Path, server: MailServer) -> None:
    perseat("send", wb, "--smtp", env=server.env)
    primary, secondary = os.openpty()
    try:
        os.write(primary, b"y\n" + b"n\n" * (len(NOVEMBER) - 1))  # yes for HV-1001 only
        proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "send", str(wb), "--smtp"],
                              stdin=secondary, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **server.env})
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("send again? [y/N]") == len(NOVEMBER)
    assert "HV-1001 was e-mailed on" in proc.stdout and "Sent 1 e-mail for November 2026" in proc.stdout
    assert len(server.handler.received) == len(NOVEMBER) + 1
    assert [r["New"].split()[0] for r in sent_log(wb)] == [*NOVEMBER, "HV-1001"]


def test_a_failure_part_way_logs_what_was_sent(wb: Path, server: MailServer) -> None:
    server.handler.refuse = {"office@deltapeds.example"}  # HV-1004, Delta Pediatrics
    err = perseat("send", wb, "--smtp", env=server.env, code=1).stderr
    assert "refused: 554 5.7.1 Message rejected by policy" in err
    assert "3 of 7 e-mails were sent before that (HV-1001, HV-1002, HV-1003) and are logged in ChangeLog" in err
    assert "HV-1004 and the rest were not sent" in err and err.count("perseat:") == 1
    assert len(server.handler.received) == 3
    assert [r["New"].split()[0] for r in sent_log(wb)] == NOVEMBER[:3]


def test_implicit_tls_on_request(wb: Path, tls_server: MailServer) -> None:
    perseat("send", wb, "--smtp", env={**tls_server.env, "PERSEAT_SMTP_SSL": "1"})
    got = tls_server.handler.received
    assert len(got) == len(NOVEMBER) and all(r.tls and r.authenticated for r in got)


def test_a_login_without_a_password_names_the_variable(wb: Path, server: MailServer) -> None:
    env = {**server.env, "PERSEAT_SMTP_PASSWORD": "", "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    err = perseat("send", wb, "--smtp", env=env, code=1).stderr
    assert "missing PERSEAT_SMTP_PASSWORD (the password of billing@harborview-it.example on 127.0.0.1)" in err
    assert not server.handler.received and not sent_log(wb)


def test_a_server_without_starttls_is_refused(wb: Path, plain_server: MailServer) -> None:
    data = wb.read_bytes()
    err = perseat("send", wb, "--smtp", env=plain_server.env, code=1).stderr
    assert "does not offer STARTTLS" in err and "; nothing was sent" in err
    assert not plain_server.handler.received and wb.read_bytes() == data


def test_a_wrong_password_logs_nothing(wb: Path, server: MailServer) -> None:
    data = wb.read_bytes()
    err = perseat("send", wb, "--smtp", env={**server.env, "PERSEAT_SMTP_PASSWORD": "wrong"}, code=1).stderr
    assert "refused the login of billing@harborview-it.example" in err
    assert not server.handler.received and wb.read_bytes() == data


def test_an_untrusted_certificate_is_refused(wb: Path, server: MailServer) -> None:
    env = {k: v for k, v in server.env.items() if k != "PERSEAT_SMTP_CAFILE"}
    err = perseat("send", wb, "--smtp", env=env, code=1).stderr
    assert "certificate is not trusted" in err and "PERSEAT_SMTP_CAFILE" in err
    assert not server.handler.received


def test_missing_smtp_settings_name_the_variables(wb: Path) -> None:
    env = {k: "" for k in ("PERSEAT_SMTP_HOST", "PERSEAT_SMTP_USER", "PERSEAT_SMTP_PASSWORD")}
    err = perseat("send", wb, "--smtp", env=env, code=1).stderr
    assert "PERSEAT_SMTP_HOST" in err and "PERSEAT_SMTP_PASSWORD" in err and "nothing was sent" in err


def test_message_headers_refuse_line_breaks_in_any_field(ledger: Path) -> None:
    """The message builder itself: a BillingContact with CR/LF becomes one line, never a second header."""
    from perseat_addin.tasks.send import plan_send

    with FileBook(ledger) as book:
        plan = plan_send(book)
    m = plan.mails[0]
    doc = m.doc
    from dataclasses import replace

    evil = replace(doc, client=replace(doc.client, billing_contact="A\r\nBcc: x@evil.example", name="B\nC"))
    msg = invoice_message(evil, plan.book.settings, m.to, b"%PDF-1.4\n", "x.pdf", draft=True,
                          when=dt.datetime(2026, 12, 1, 9, 0))
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and "\n" not in str(parsed["To"])


def test_a_hostile_client_name_stays_inside_the_folder_and_one_header(ledger: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from perseat_addin.tasks.send import Mail, messages, plan_send, write_drafts

    with FileBook(ledger) as book:
        plan = plan_send(book)
    name = "../../..\\evil/=cmd|' /C calc'!A0\r\nBcc: all@evil.example"
    first = plan.mails[0]
    mail = Mail(replace(first.doc, client=replace(first.doc.client, name=name)), first.to)
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    [msg] = messages(plan, [mail], {mail.doc.number: pdf}, draft=True, when=dt.datetime(2026, 12, 1, 9, 0))
    out = tmp_path / "out"
    [written] = write_drafts([mail], [msg], out, lambda: None)
    assert written.parent == out and [p.name for p in tmp_path.rglob("*.eml")] == [written.name]
    with written.open("rb") as fh:
        parsed = email.message_from_binary_file(fh, policy=policy.default)
    assert parsed["Bcc"] is None and [a.addr_spec for a in parsed["To"].addresses] == [first.to[0].addr_spec]
    [part] = list(parsed.iter_attachments())
    assert "/" not in part.get_filename() and "\n" not in part.get_filename()

