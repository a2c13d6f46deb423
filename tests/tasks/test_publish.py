"""Record and publish together: destinations checked before recording, a failed publish undone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from perseat_addin.errors import PerseatError
from perseat_addin.outputs.publish import clear_stale_staging, write_outputs
from perseat_addin.tasks import invoice
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.tasks.port import validated

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


@pytest.fixture
def wb(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(TEMPLATE, tmp_path / "billing.xlsm"))


def _finalize(wb: Path, out: Path, sabotage: object = None) -> dict[str, str]:
    with FileBook(wb, "invoice --finalize") as book:
        loaded, period = validated(book)
        run, corrections = invoice.priced(book, loaded, period)
        billed = invoice.billed_edit(book, run, corrections, create=True)

        def record() -> None:
            invoice.record(book, run.invoices, period, final=True, files={}, billed=billed)
            if callable(sabotage):
                sabotage()

        return write_outputs(run, out, before_publish=record, inputs=[wb], rollback=book.rollback)


def test_a_file_vanishing_after_recording_puts_everything_back(wb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "quickbooks.csv").write_text("last month's file", encoding="utf-8")
    before = wb.read_bytes()

    def lose_a_staged_file() -> None:  # something (an antivirus, a sync client) takes a file away
        (next(out.glob(".perseat-staging-*")) / "xero.csv").unlink()

    with pytest.raises(PerseatError, match=r"xero.csv: .*the files in .* are as they were\. The workbook was put "
                                           r"back as it was, so nothing is recorded"):
        _finalize(wb, out, lose_a_staged_file)
    assert wb.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["quickbooks.csv"]
    assert (out / "quickbooks.csv").read_text(encoding="utf-8") == "last month's file"


def test_a_folder_in_the_way_stops_before_recording(wb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "xero.csv").mkdir(parents=True)
    before = wb.read_bytes()
    with pytest.raises(PerseatError, match=r"xero.csv is a folder, so xero.csv cannot be written there"):
        _finalize(wb, out)
    assert wb.read_bytes() == before and [p.name for p in out.iterdir()] == ["xero.csv"]


def test_an_output_never_replaces_the_workbook(tmp_path: Path) -> None:
    wb = Path(shutil.copyfile(TEMPLATE, tmp_path / "invoices.xlsx"))
    before = wb.read_bytes()
    with pytest.raises(PerseatError, match=r"the output invoices.xlsx would replace .*invoices.xlsx, an input"):
        _finalize(wb, tmp_path)
    assert wb.read_bytes() == before


def test_publishing_records_and_writes_together(wb: Path, tmp_path: Path) -> None:
    written = _finalize(wb, tmp_path / "out")
    assert set(written) >= {"invoices.xlsx", "quickbooks.csv", "xero.csv", "users.csv"}
    assert not list((tmp_path / "out").glob(".perseat-*"))
    table = FileBook(wb).rows("Invoices")
    assert table is not None
    finals = [r for r in table.rows if table.get(r, "Status") == "Final" and table.get(r, "Period") == "2026-11"]
    assert len(finals) >= 5


def test_files_of_a_run_killed_after_recording_are_moved_in_by_the_next_run(wb: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    left = out / ".perseat-staging-999999-abc"  # a process that no longer exists
    left.mkdir(parents=True)
    (left / "xero.csv").write_text("recorded month's file", encoding="utf-8")
    (left / ".recorded").write_text("xero.csv\nmissing.csv", encoding="utf-8")
    before = out / ".perseat-staging-999998-abc"  # killed before recording: nothing to keep
    before.mkdir()
    (before / "quickbooks.csv").write_text("never recorded", encoding="utf-8")
    clear_stale_staging(out)
    assert sorted(p.name for p in out.iterdir()) == ["xero.csv"]
    assert (out / "xero.csv").read_text(encoding="utf-8") == "recorded month's file"


def test_a_failure_while_users_csv_is_written_beside_the_rest_records_and_writes_nothing(
        wb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """users.csv is made on a worker thread while the other files are written: its failure still stops the
    run before anything is recorded, and the files written so far are removed."""
    from perseat_addin.outputs import publish

    def broken(run: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish, "users_csv", broken)
    out = tmp_path / "out"
    before = wb.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        _finalize(wb, out)
    assert wb.read_bytes() == before
    assert not out.exists()


def test_the_files_are_listed_in_the_same_order_whatever_thread_made_them(wb: Path, tmp_path: Path) -> None:
    written = _finalize(wb, tmp_path / "out")
    assert list(written)[:4] == ["invoices.xlsx", "quickbooks.csv", "xero.csv", "users.csv"]
    users = (tmp_path / "out" / "users.csv").read_text(encoding="utf-8-sig")
    assert users.startswith("RosterRow,Client,") and users.count("\n") > 10
