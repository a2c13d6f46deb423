"""invoices.xlsx: the Register and Lines always hold every invoice; a printable sheet per invoice is written for
runs of up to PRINTABLE_SHEETS invoices, and the command line says where the per-invoice documents are when
they are left out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ooxml import decode_text
from ooxml.reading import read_tables
from openpyxl import load_workbook

from perseat_addin import cli
from perseat_addin.engine.invoicing import Run
from perseat_addin.outputs import xlsx
from perseat_addin.tasks import invoice
from perseat_addin.tasks.filebook import FileBook
from perseat_addin.tasks.port import validated

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"


@pytest.fixture(scope="module")
def run() -> Run:
    with FileBook(TEMPLATE) as wb:
        book, period = validated(wb)
        return invoice.priced(wb, book, period)[0]


def with_invoices(run: Run, n: int) -> Run:
    """``run`` with ``n`` invoices (the template's, repeated under new numbers)."""
    base = run.invoices
    invoices = [replace(base[k % len(base)], number=f"T-{k + 1:04d}") for k in range(n)]
    return Run(run.book, run.period, invoices, run.skipped)


def read(path: Path) -> tuple[list[str], list[tuple[object, ...]], int]:
    """Sheet names, Register rows (without the header and totals) and the number of Lines rows."""
    book = load_workbook(path)
    try:
        reg = book["Register"]
        rows = [tuple(c.value for c in r) for r in reg.iter_rows(min_row=2, max_row=reg.max_row - 1)]
        links = [reg.cell(row=j, column=14).hyperlink for j in range(2, reg.max_row)]
        assert all(link is not None for link in links) or all(link is None for link in links)
        return book.sheetnames, rows, book["Lines"].max_row - 1
    finally:
        book.close()


@pytest.mark.parametrize("extra", [0, 1])
def test_printable_sheets_up_to_the_threshold(run: Run, extra: int, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx, "PRINTABLE_SHEETS", 9)
    big = with_invoices(run, 9 + extra)
    path = tmp_path / "invoices.xlsx"
    xlsx.invoices_xlsx(big, path)
    names, rows, lines = read(path)
    numbers = [i.number for i in big.invoices]
    assert [r[0] for r in rows] == numbers  # the Register always holds every invoice
    assert lines == sum(len(i.lines) for i in big.invoices)  # and Lines every line
    if extra:
        assert names == ["Register", "Lines"]
        assert {r[13] for r in rows} == {None}  # no sheet to link to
        assert not xlsx.has_printable_sheets(big)
    else:
        assert names == ["Register", "Lines", *numbers]
        assert [r[13] for r in rows] == numbers
        assert xlsx.has_printable_sheets(big)


def test_the_threshold_is_the_documented_one() -> None:
    assert xlsx.PRINTABLE_SHEETS == 250
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "250 invoices" in readme


def test_the_command_line_says_where_the_per_invoice_documents_are(run: Run, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx, "PRINTABLE_SHEETS", 9)
    assert cli.sheets_note(with_invoices(run, 9), tmp_path, pdf=False) is None
    big = with_invoices(run, 10)
    without = cli.sheets_note(big, tmp_path, pdf=False)
    assert without is not None and "all 10 invoices" in without and "up to 9 invoices" in without
    assert "--pdf" in without
    with_pdf = cli.sheets_note(big, tmp_path, pdf=True)
    assert with_pdf is not None and f"the 10 PDFs in {tmp_path}" in with_pdf and "--pdf" not in with_pdf


def contents(path: Path) -> dict[str, Any]:
    """What a reader of the Register and Lines sees: cells (value and number format), column widths and
    styles, frozen panes and the tables."""
    book = load_workbook(path)
    try:
        out: dict[str, Any] = {"sheets": book.sheetnames[:2]}
        for name in ("Register", "Lines"):
            ws = book[name]
            out[name] = {
                "cells": [[(c.value, c.number_format if c.value is not None else None) for c in row]
                          for row in ws.iter_rows()],
                "widths": {col: (d.width, d.number_format) for d in ws.column_dimensions.values() if d.customWidth
                           for col in range(d.min, d.max + 1)},
                "freeze": ws.freeze_panes,
                "tables": {t.name: (t.ref, t.tableStyleInfo.name, t.totalsRowCount,
                                    [(c.name, c.totalsRowFunction, c.totalsRowLabel) for c in t.tableColumns])
                           for t in ws.tables.values()},
            }
        return out
    finally:
        book.close()


def test_the_large_run_writer_draws_the_same_register_and_lines(run: Run, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the threshold invoices.xlsx is written straight as SpreadsheetML: its Register and Lines are
    cell for cell, format for format, what XlsxWriter draws (less the links to sheets that are not there)."""
    evil = with_invoices(run, 12)
    first = evil.invoices[0]
    evil.invoices[0] = replace(first, number="=1+1 <b>&amp;_x0041_", lines=[
        replace(first.lines[0], description=" bell\x07 & _x0041_ <tab>\t "), *first.lines[1:]])
    drawn, straight = tmp_path / "drawn.xlsx", tmp_path / "straight.xlsx"
    monkeypatch.setattr(xlsx, "PRINTABLE_SHEETS", 12)
    xlsx.invoices_xlsx(evil, drawn)
    monkeypatch.setattr(xlsx, "PRINTABLE_SHEETS", 11)
    xlsx.invoices_xlsx(evil, straight)
    a, b = contents(drawn), contents(straight)
    for row in a["Register"]["cells"][1:-1]:
        row[13] = (None, None)  # the Sheet links
    assert a == b
    assert b["Register"]["cells"][1][0][0] == "'=1+1 <b>&amp;_x0041_"  # neutralised, escaped, read back
    for path in (drawn, straight):  # the stored text, as Excel reads it
        cell = read_tables(path)["Lines"].rows[0]["Description"]
        assert cell is not None and decode_text(cell.text or "") == " bell\x07 & _x0041_ <tab>\t "
    assert len(b["Lines"]["cells"]) == 1 + sum(len(i.lines) for i in evil.invoices)


def test_the_large_run_writer_of_an_empty_run(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "invoices.xlsx"
    xlsx.invoices_xlsx(Run(run.book, run.period, [], run.skipped), path)
    assert contents(path)["sheets"] == ["Register", "Lines"]
