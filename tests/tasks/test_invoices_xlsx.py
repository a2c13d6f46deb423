"""invoices.xlsx: the Register and Lines always hold every invoice; a printable sheet per invoice is written for
runs of up to PRINTABLE_SHEETS invoices, and the command line says where the per-invoice documents are when
they are left out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
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
