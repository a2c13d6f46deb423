"""Opening the workbook on another thread (while the command imports the engine) reads the same tables and
refuses the same files with the same words as opening it in line."""

from __future__ import annotations

from pathlib import Path

import pytest

from perseat_addin.errors import WorkbookError
from perseat_addin.tables import BOOK_TABLES
from perseat_addin.tasks.filebook import FileBook, open_ahead
from perseat_addin.workbook.load import load_source
from perseat_addin.workbook.schema import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


def test_book_tables_are_the_schema_tables_in_order() -> None:
    assert tuple(SCHEMA) == BOOK_TABLES


def test_the_same_book() -> None:
    ahead = open_ahead(TEMPLATE, None, BOOK_TABLES)()
    inline = FileBook(TEMPLATE)
    for name in BOOK_TABLES:
        a, b = ahead.reader.table(name), inline.reader.table(name)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.headers, [list(r) for r in a.rows], a.errors, a.first_row) == \
                   (b.headers, [list(r) for r in b.rows], b.errors, b.first_row)
    a_book, b_book = load_source(ahead.source(), name="x"), load_source(inline.source(), name="x")
    assert (a_book.settings, a_book.plans, a_book.clients) == (b_book.settings, b_book.plans, b_book.clients)
    assert a_book.roster.equals(b_book.roster)


@pytest.mark.parametrize("content", [b"", b"not a workbook", b"PK\x03\x04cut short"])
def test_the_same_refusal(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "book.xlsm"
    path.write_bytes(content)
    with pytest.raises(WorkbookError) as inline:
        FileBook(path)
    with pytest.raises(WorkbookError) as ahead:
        open_ahead(path, None, BOOK_TABLES)()
    assert str(ahead.value) == str(inline.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkbookError, match="no such file"):
        open_ahead(tmp_path / "gone.xlsm")()
