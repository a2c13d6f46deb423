"""The ribbon's *Sync sources* over the Excel stand-in, against the ConnectWise stand-in: which source, the
preview ``perseat sync --all`` prints, Yes/No, and the same write as the command line."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from standins.connectwise import ConnectWiseStandIn, agreement, company, make_contacts, make_time_entries
from test_macros import ExcelStandIn

from perseat_addin.cli import main
from perseat_addin.tables import TableEdit
from perseat_addin.tasks import livebook, sync_source
from perseat_addin.tasks.filebook import FileBook

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
COMPANY, PUBLIC, PRIVATE, CLIENT_ID = "harborview", "pUbLiCkEy1234567", "Pr1vate.Key-Value_9xz", "4f1c2e3d-5a6b"
TODAY = dt.date(2026, 11, 16)
PEOPLE = ["helen.park", "marcus.lee", "sofia.rossi", "tariq.aziz", "uma.das", "carla.mendes", "jin.woo"]


def workbook(folder: Path, name: str = "billing.xlsm") -> Path:
    """The template with Granite (250) and Acme (251) PSACompanyIDs and Settings PSA connectwise."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copyfile(TEMPLATE, folder / name))
    ids = {"Granite Accounting": "250", "Acme Dental Group": "251"}
    with FileBook(path, "test") as book:
        clients, settings = book.rows("Clients"), book.rows("Settings")
        assert clients is not None and settings is not None
        col = len(clients.headers)
        cells = tuple((i, col, ids[row[0]]) for i, row in enumerate(clients.rows) if row[0] in ids)
        book.write([TableEdit("Clients", cells, add_columns=("PSACompanyID",)),
                    TableEdit("Settings", (), (), (settings.make({"Setting": "PSA", "Value": "connectwise"}),))])
    return path


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectWiseStandIn]:
    with ConnectWiseStandIn(COMPANY, PUBLIC, PRIVATE, CLIENT_ID) as cw:
        for k, v in cw.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PERSEAT_HTTP_TIMEOUT", "5")
        cw.companies[250] = company(250, "Granite Accounting", "Granite")  # Acme's 251 is not in ConnectWise
        cw.agreements[7] = agreement(7, 250, "Granite managed services")
        cw.contacts = make_contacts(1200, 250, "Granite Accounting", "graniteacct.example", PEOPLE)
        cw.time_entries = make_time_entries(250, "Granite Accounting", "2026-11", 12)
        yield cw


def press(book: ExcelStandIn) -> livebook.Outcome:
    return livebook.perform(book, "Per-Seat Billing: Sync sources",
                            lambda live: sync_source.sync_sources(live, today=TODAY))


def test_sync_sources_previews_what_the_cli_prints_then_writes_on_yes(
        server: ConnectWiseStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli_book = workbook(tmp_path / "cli")
    code = main(["sync", "connectwise", "--workbook", str(cli_book), "--all", "--effective", TODAY.isoformat()])
    dry = capsys.readouterr().out
    assert code == 1  # Acme fails on its own
    book = ExcelStandIn(workbook(tmp_path / "xl"))
    book.typed = ["ConnectWise"]
    outcome = press(book)
    (_, asked), (title, question) = book.questions
    assert "Type one of: connectwise." in asked
    assert title == "Per-Seat Billing: Sync sources"
    preview = [line for line in dry.splitlines() if line.startswith(("Granite Accounting (", "  "))]
    assert preview and all(line in question.splitlines() for line in preview[:38])  # the CLI's own lines
    assert "Acme Dental Group: ConnectWise PSA has no company with id 251" in question
    assert "1 of 2 clients synced" in question and "Write them to the Roster, Usage and ChangeLog?" in question
    assert any(s and "records read from ConnectWise PSA" in s for s in book.statuses)  # progress in the status bar
    assert any(s and "reading ConnectWise PSA: 2/2 clients" in s for s in book.statuses)
    assert not outcome.ok and "changes written to the Roster, Usage and ChangeLog" in outcome.message
    log = book.rows("ChangeLog")
    assert {r["Source"] for r in log if r["Client"] == "Granite Accounting" and r["Action"]} >= {"ConnectWise PSA"}
    assert not any(r["Client"] == "Acme Dental Group" for r in log)
    assert book.saves == 0 and PRIVATE not in question + outcome.message

    again = ExcelStandIn(workbook(tmp_path / "no"))
    again.typed, again.answer = ["connectwise"], False
    before = again.rows("Roster")
    assert press(again).message == "Nothing was changed." and again.rows("Roster") == before


def test_sync_sources_needs_a_configured_source_and_a_known_answer(tmp_path: Path) -> None:
    bare = ExcelStandIn(Path(shutil.copyfile(TEMPLATE, tmp_path / "bare.xlsm")))
    outcome = press(bare)
    assert not outcome.ok and "No live source is set up" in outcome.message and not bare.questions
    book = ExcelStandIn(workbook(tmp_path / "x"))
    book.typed = ["autotask"]
    outcome = press(book)
    assert not outcome.ok and '"autotask" is not a source this workbook is set up for' in outcome.message
    book.typed = [None]
    assert press(book).message == "Nothing was changed."
