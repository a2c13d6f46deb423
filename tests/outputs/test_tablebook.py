"""The tables workbook writer (invoices.xlsx's Register and Lines for a large run): text as Excel stores it."""

from __future__ import annotations

from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from perseat_addin.outputs.tablebook import Column, Table, write_tables

TEXTS = ["Acme & Co <Ltd>", "_x0041_", "Ann_x0041_Lee", "_x0041\x01", "_x0041_x0042_", "a_x00e9\x1fb_x0041_c",
         "line\r\nbreak", "tab\there"]


@pytest.mark.parametrize("text", TEXTS)
def test_text_reads_back_as_written(tmp_path: Path, text: str) -> None:
    # a literal "_x0041" followed by a control character, whose own escape (_x0001_) would close it
    path = tmp_path / "t.xlsx"
    table = Table("Register", (Column("Client"), Column("Note")), "TableStyleMedium2")
    write_tables(path, [(table, [[text, "x"]])], "Register", "perseat")
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Register").to_python()
    assert rows[1][0] == text
