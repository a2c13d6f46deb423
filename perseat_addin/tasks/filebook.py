"""The workbook file on disk, as the port the command line's tasks work over."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

from perseat_addin.errors import PerseatError, WorkbookError
from perseat_addin.tables import RawTable, TableEdit, TableSource, apply_edit, editable, edited_rows
from perseat_addin.workbook.guard import WorkbookGuard, stamp_of
from perseat_addin.workbook.package import Package
from perseat_addin.workbook.reader import WorkbookFile


class FileBook:
    """The workbook file on disk as a :class:`~perseat_addin.tasks.port.BookPort`: read once (fast reader),
    written in place (:class:`~perseat_addin.workbook.package.Package`: only the edited sheets' XML changes;
    the VBA project, ribbon, charts and every other part are kept), replaced atomically and exclusively
    (:class:`~perseat_addin.workbook.guard.WorkbookGuard`), and never over a file that changed on disk since
    it was read.

    ``FileBook(path, writing="import")`` takes the workbook's lock before reading, so a second writer waits
    for this one and then reads what it wrote (use it as a context manager to let go of the lock); a plain
    ``FileBook(path)`` reads without the lock and takes it only to write, refusing if the file changed since."""

    def __init__(self, path: str | Path, writing: str | None = None, ahead: Iterable[str] = (),
                 prepare: Iterable[str] = ()):
        self.path = Path(path)
        _regular_file(self.path)  # a folder, device or pipe is never read (nor hashed)
        self._guard: WorkbookGuard | None = None
        self._before: bytes | None = None  # the bytes this book replaced, for rollback()
        self._prepared: tuple[bytes, threading.Thread, list[Package]] | None = None
        if writing is not None:
            self._guard = WorkbookGuard(self.path, writing)
            self._guard.acquire()
            self._stamp = self._guard.stamp
        else:
            self._stamp = stamp_of(self.path)  # before reading: a change after this point stops the write
        try:
            self.reader = WorkbookFile(self.path, ahead)  # a missing, damaged or hostile file says so here
        except BaseException:
            self.close()
            raise
        names = list(prepare)
        if names:  # only once the package passed its checks
            self.prepare(names)

    def __enter__(self) -> FileBook:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the workbook's lock (if this book holds it), after any parsing started ahead."""
        if self._prepared is not None:
            self._prepared[1].join()
            self._prepared = None
        if self._guard is not None:
            self._guard.release()
            self._guard = None

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
        guard, held = self._guard, self._guard is not None
        if guard is None:
            guard = WorkbookGuard(self.path, "write")
            guard.acquire()
            if guard.stamp != self._stamp:
                guard.release()
                raise PerseatError(f"{self.path} changed on disk since perseat read it (saved in Excel, synced, or "
                                   "changed by another run); nothing was written — run the command again")
        try:
            pkg = self._package(guard.data)
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
            before = guard.data
            try:
                data = pkg.data()
            finally:
                pkg.close()
            guard.replace(data)
            self._stamp = guard.stamp
            if self._before is None:
                self._before = before
        finally:
            if not held:
                guard.release()  # a book read without the lock holds it only while it writes

    def prepare(self, tables: Iterable[str]) -> None:
        """Start parsing, on another thread, the sheets of the ``tables`` this book is about to write (a book
        that holds the workbook's lock: its bytes cannot change before the write); otherwise nothing."""
        if self._guard is not None and self._prepared is None:
            self._prepared = _prepare(self._guard.data, self.path, list(tables))

    def _package(self, data: bytes) -> Package:
        """The package of ``data`` to edit: the one prepared ahead when it was made from these very bytes."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            source, thread, made = prepared
            thread.join()
            if made and source is data:
                return made[0]
        return Package(data, self.path)

    def rollback(self) -> None:
        """Put back the workbook as it was before this book's writes (a later step failed), if it is still
        exactly what this book wrote; else say so."""
        if self._before is None:
            return
        guard, held = self._guard, self._guard is not None
        if guard is None:
            guard = WorkbookGuard(self.path, "rollback")
            guard.acquire()
        try:
            if guard.stamp != self._stamp:
                raise PerseatError(f"{self.path} changed on disk after perseat wrote it, so it was not put back; "
                                   "check its Invoices table")
            guard.replace(self._before)
            self._stamp = guard.stamp
            self._before = None
        finally:
            if not held:
                guard.release()

    def progress(self, verb: str, total: int, noun: str = "") -> Callable[[int], None]:
        """Silent: the command line draws its own progress bars."""
        return _silent


def open_ahead(path: str | Path, writing: str | None = None, tables: Iterable[str] = (),
               prepare: Iterable[str] = ()) -> Callable[[], FileBook]:
    """Open ``FileBook(path, writing, prepare=prepare)`` on another thread, then read the ``tables``, while the
    caller goes on (importing the engine): the package checks, zlib and the cell readers mostly run without
    the GIL. The function returned waits and gives the book, or raises what opening raised. A table that
    fails to read is left for the caller to read again (the same message, in the same order)."""
    done: list[FileBook] = []
    failed: list[BaseException] = []

    names = list(tables)
    writes = list(prepare)

    def work() -> None:
        try:
            book = FileBook(path, writing, ahead=names, prepare=writes)
        except BaseException as exc:  # handed to the caller, which raises it
            failed.append(exc)
            return
        done.append(book)
        try:  # the small tables while the large ones are read ahead, then those
            for name in sorted(names, key=book.reader.is_large):
                book.reader.table(name)
        except BaseException:  # read again by the caller, which then says what is wrong
            return

    thread = threading.Thread(target=work, name="perseat-open", daemon=True)
    thread.start()

    def book() -> FileBook:
        thread.join()
        if failed:
            raise failed[0]
        return done[0]

    return book


def _prepare(data: bytes, path: Path, tables: list[str]) -> tuple[bytes, threading.Thread, list[Package]]:
    """Start parsing the package of ``data`` and the sheets of ``tables`` on another thread (a command that
    holds the workbook's lock and will write those tables). A package that fails to parse is simply not
    prepared: the write makes it again and says what is wrong."""
    made: list[Package] = []

    def work() -> None:
        try:
            pkg = Package(data, path)
            pkg.prepare(tables)
        except Exception:  # said again, in order, by the write that makes the package itself
            return
        made.append(pkg)

    thread = threading.Thread(target=work, name="perseat-prepare", daemon=True)
    thread.start()
    return data, thread, made


def _regular_file(path: Path) -> None:
    """Refuse a path that is not a regular file before anything reads it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WorkbookError(f"{path}: no such file") from None
    except OSError as exc:
        raise WorkbookError(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise WorkbookError(f"{path} is a folder, not a workbook; name the .xlsm file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise WorkbookError(f"{path} is not a file (a device or a pipe); save the workbook as an .xlsm file and "
                            "name that file")


def _silent(n: int = 1) -> None:
    """A progress callback that shows nothing."""


__all__ = ["FileBook", "open_ahead"]
