"""The workbook guard: one writer at a time, Excel's owner file, changed files, file identity, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from perseat_addin.errors import PerseatError
from perseat_addin.workbook.guard import WorkbookGuard, WriteRefused, excel_owner


@pytest.fixture
def book(tmp_path: Path) -> Path:
    p = tmp_path / "Billing.xlsm"
    p.write_bytes(b"old workbook bytes")
    return p


def leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if "perseat" in n)


def test_replace_writes_atomically_and_leaves_nothing_beside(book: Path) -> None:
    with WorkbookGuard(book, "import") as g:
        assert g.data == b"old workbook bytes"
        assert leftovers(book.parent) == [".Billing.xlsm.perseat-lock"]
        g.replace(b"new workbook bytes")
    assert book.read_bytes() == b"new workbook bytes"
    assert leftovers(book.parent) == []


def test_a_second_writer_is_told_who_holds_the_workbook(book: Path) -> None:
    held = r"being changed by another run \(perseat invoice --finalize by .* \(process \d+\) since"
    with WorkbookGuard(book, "invoice --finalize"), pytest.raises(WriteRefused, match=held):
        WorkbookGuard(book, "import", wait=0.2).acquire()
    with WorkbookGuard(book, "import", wait=0.2) as g:  # free again
        g.replace(b"x")
    assert book.read_bytes() == b"x"


def test_excel_owner_file_stops_the_write_and_names_the_user(book: Path) -> None:
    owner = book.with_name("~$Billing.xlsm")
    owner.write_bytes(bytes([5]) + b"Alice".ljust(53, b" ") + "Alice".encode("utf-16-le"))
    assert excel_owner(book) == f"Alice ({owner})"
    with pytest.raises(WriteRefused, match=r"open in Excel by Alice"):
        WorkbookGuard(book, "import").acquire()
    assert book.read_bytes() == b"old workbook bytes" and leftovers(book.parent) == []


def test_excel_opening_the_workbook_during_the_run_stops_the_write(book: Path) -> None:
    with WorkbookGuard(book, "import") as g:
        book.with_name("~$Billing.xlsm").write_bytes(bytes([3]) + b"Bob")
        with pytest.raises(WriteRefused, match=r"open in Excel by Bob"):
            g.replace(b"new")
    assert book.read_bytes() == b"old workbook bytes"


def test_a_save_meanwhile_is_detected_and_kept(book: Path) -> None:
    with WorkbookGuard(book, "import") as g:
        saved = book.with_name("Billing.tmp")  # Excel saves to a new file and renames it over the workbook
        saved.write_bytes(b"saved by a colleague")
        os.replace(saved, book)
        with pytest.raises(WriteRefused, match=r"changed on disk since perseat read it"):
            g.replace(b"ours")
    assert book.read_bytes() == b"saved by a colleague"
    assert leftovers(book.parent) == []


def test_same_size_same_time_different_bytes_is_still_a_change(book: Path) -> None:
    with WorkbookGuard(book, "import") as g:
        st = book.stat()
        book.write_bytes(b"OLD workbook bytes")
        os.utime(book, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(WriteRefused, match="changed on disk"):
            g.replace(b"ours")


def test_a_symlink_stays_a_link_and_its_target_is_written(book: Path, tmp_path: Path) -> None:
    link = tmp_path / "shortcut.xlsm"
    link.symlink_to(book)
    with WorkbookGuard(link, "import") as g:
        g.replace(b"through the link")
    assert link.is_symlink() and book.read_bytes() == b"through the link"


def test_mode_owner_and_group_are_kept(book: Path) -> None:
    os.chmod(book, 0o660)
    if os.geteuid() == 0:
        os.chown(book, 1234, 5678)
    with WorkbookGuard(book, "import") as g:
        g.replace(b"new")
    st = book.stat()
    assert stat.S_IMODE(st.st_mode) == 0o660
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_read_only_and_hard_linked_workbooks_are_refused(book: Path, tmp_path: Path) -> None:
    os.chmod(book, 0o444)
    with pytest.raises(WriteRefused, match="is read-only"):
        WorkbookGuard(book, "import").acquire()
    os.chmod(book, 0o644)
    os.link(book, tmp_path / "other name.xlsm")
    with pytest.raises(WriteRefused, match="2 hard links"):
        WorkbookGuard(book, "import").acquire()
    assert book.read_bytes() == b"old workbook bytes" and leftovers(book.parent) == []


def test_a_staging_name_left_by_a_killed_run_is_removed_by_the_next_writer(book: Path) -> None:
    stale = book.with_name(".Billing.xlsm.perseat-staging-999999")
    stale.write_bytes(b"half")
    with WorkbookGuard(book, "import") as g:
        assert not stale.exists()
        g.replace(b"new")


def test_missing_and_looping_paths_say_so(tmp_path: Path) -> None:
    with pytest.raises(PerseatError, match="no such file"):
        WorkbookGuard(tmp_path / "nope.xlsm", "import")
    loop = tmp_path / "loop.xlsm"
    loop.symlink_to(loop)
    with pytest.raises(PerseatError, match="cannot be opened"):
        WorkbookGuard(loop, "import")
