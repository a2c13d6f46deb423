"""Problems in user data (values) and the small exception tree (programmer and I/O errors)."""

from __future__ import annotations

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


class FinalizedError(PerseatError):
    """An operation would change a Final invoice."""


class ArgumentError(PerseatError):
    """A function argument cannot be used; the message names it and says why."""
