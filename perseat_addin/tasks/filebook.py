"""The workbook file on disk, as the port the command line's tasks work over."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from perseat_addin.errors import PerseatError
from perseat_addin.tables import RawTable, TableEdit, TableSource, apply_edit, editable, edited_rows
from perseat_addin.workbook.package import Package
from perseat_addin.workbook.reader import WorkbookFile


class FileBook:
    """The workbook file on disk as a :class:`~perseat_addin.tasks.port.BookPort`: read once (fast reader),
    written in place (:class:`~perseat_addin.workbook.package.Package`: only the edited sheets' XML changes;
    the VBA project, ribbon, charts and every other part are kept), replaced atomically, and never over a
    file that changed on disk since it was read."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._stamp = _stamp(self.path)  # before reading: a change after this point stops the write
        self.reader = WorkbookFile(self.path)  # a missing, damaged or hostile file says so here

    @property
    def name(self) -> str:
        return str(self.path)

    def source(self) -> TableSource:
        return self.reader

    def rows(self, name: str) -> RawTable | None:
        return editable(self.reader.table(name))  # the reader reads each table once

    def release(self) -> None:
        """Let go of the tables read so far (a later :meth:`rows` reads again): the invoice run holds only
        the priced book while it writes, not the workbook's raw cells."""
        self.reader.release()

    def write(self, edits: Sequence[TableEdit]) -> None:
        todo = [e for e in edits if e.changes]
        if not todo:
            return
        original = self.path.read_bytes()
        if self._stamp is None or _stamp(self.path) != self._stamp:
            raise PerseatError(f"{self.path} changed while the import ran (open in Excel and saved?); nothing was "
                               "written — run it again")
        pkg = Package(original, self.path)
        for edit in todo:
            t = self.rows(edit.table)
            if t is None and edit.create:
                pkg.add_table(edit.table, edit.create)
                t = RawTable(edit.table, edit.table, edit.create, ((None,) * len(edit.create),))
            if t is None:
                raise PerseatError(f"the workbook has no {edit.table} table to write to; nothing was written")
            pkg.add_columns(t.name, [h for h in edit.add_columns if t.col(h) is None])
            wide = t.with_columns(edit.add_columns)
            pkg.write_rows(t.name, wide.rows, apply_edit(t, edit).rows, edited_rows(wide, edit))
        pkg.save()

    def progress(self, verb: str, total: int, noun: str = "") -> Callable[[int], None]:
        """Silent: the command line draws its own progress bars."""
        return _silent


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is saved: inode, size, modification time (None if it cannot be read)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _silent(n: int = 1) -> None:
    """A progress callback that shows nothing."""


__all__ = ["FileBook"]
