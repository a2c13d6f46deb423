"""The one port every task works over: a workbook's tables, read once, and one all-or-nothing write.

Two implementations: :class:`~perseat_addin.tasks.filebook.FileBook` (the file on disk,
for the ``perseat`` command line) and :class:`~perseat_addin.tasks.livebook.ExcelBook`
(the workbook open in Excel, for the ribbon). A task reads through :meth:`BookPort.source`
(validation, pricing) and :meth:`BookPort.rows` (the rows it edits), plans
:class:`~perseat_addin.tables.TableEdit` values, and hands them to :meth:`BookPort.write`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from perseat_addin.errors import PerseatError
from perseat_addin.model import Book, Period
from perseat_addin.tables import RawTable, TableEdit, TableSource
from perseat_addin.workbook.load import load_source


class BookPort(Protocol):
    """A workbook as the tasks see it."""

    @property
    def name(self) -> str:
        """How messages name the workbook (its path, or Excel's full name)."""
        ...

    def source(self) -> TableSource:
        """Every table of the workbook, as read (for validation and pricing)."""
        ...

    def rows(self, name: str) -> RawTable | None:
        """The real Excel table ``name`` (any case) as rows to edit; None for a missing or table-less sheet."""
        ...

    def write(self, edits: Sequence[TableEdit]) -> None:
        """Apply every edit, or none: refuses (PerseatError) before writing if any table cannot take its edit."""
        ...

    def progress(self, verb: str, total: int, noun: str = "") -> Callable[[int], None]:
        """A progress callback for ``total`` steps (status bar in Excel; silent on a file)."""
        ...


def require(book: BookPort, name: str, why: str = "") -> RawTable:
    """The table ``name`` to write to, or a message that says which sheet to add."""
    t = book.rows(name)
    if t is None:
        raise PerseatError(f"the workbook has no {name} table{why}; add the {name} sheet from the template "
                           "(perseat template) and try again")
    return t


def validated(book: BookPort, period: str | None = None) -> tuple[Book, Period]:
    """The workbook validated like ``perseat check`` (InputProblems lists every problem), and the
    period to work on: ``period`` (YYYY-MM) or the workbook's BillingPeriod."""
    loaded = load_source(book.source(), period, name=book.name)
    return loaded, Period.parse(period) if period else loaded.settings.period


__all__ = ["BookPort", "require", "validated"]
