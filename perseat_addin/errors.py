"""Problems in user data (values) and the small exception tree (programmer and I/O errors)."""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the workbook: where it is, what is wrong, how to fix it."""

    sheet: str
    row: int | None
    column: str | None
    message: str
    fix: str = ""
    severity: str = "error"  # "error" stops invoicing; "warning" is reported only

    def location(self) -> str:
        """``Roster!E14 (column Start)``-style location for messages."""
        if self.row is None and self.column is None:
            return self.sheet
        parts = [self.sheet]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
            "fix": self.fix,
            "severity": self.severity,
        }


class PerseatError(Exception):
    """Base of every error this package raises on purpose."""


class InputProblems(PerseatError):
    """The workbook has problems; nothing was written."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(
            problems, key=lambda p: (p.sheet, p.row if p.row is not None else 0, p.column or "")
        )
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the workbook; nothing was written"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class WorkbookError(PerseatError):
    """The file cannot be opened as a workbook (missing, not xlsx, damaged, too large)."""


class UsageError(PerseatError):
    """The command line names something that does not exist (a source, a file): exit code 2."""


class FinalizedError(PerseatError):
    """An operation would change a Final invoice."""


class ArgumentError(PerseatError):
    """A function argument cannot be used; the message names it and says why."""


def os_error_text(exc: OSError) -> str:
    """An OS error in words, with what to do about it."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full (or your quota is used up) — free some space, then run again"
    if code == errno.EFBIG:
        return "the file would exceed the largest file size allowed here — free space or raise the limit"
    if code in (errno.EACCES, errno.EPERM):
        return ("permission denied — the file or its folder is read-only for you, or another program "
                "(Excel?) holds it open")
    if code == errno.EROFS:
        return "the disk is read-only"
    if code == errno.EISDIR:
        return "a folder is in the way of a file of that name"
    if code == errno.ENOTDIR:
        return "part of the path is a file, not a folder"
    return exc.strerror or str(exc)
