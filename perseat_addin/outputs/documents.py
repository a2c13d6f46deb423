"""Schedule A and the quote as printable sheets (one layout for the file and for Excel), their .xlsx files and,
through LibreOffice, their PDFs; and the quote as JSON-ready values."""

from __future__ import annotations

import datetime as dt
import tempfile
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from perseat_addin.engine.quote import Quote, plan_terms
from perseat_addin.engine.schedule import Schedule, Table
from perseat_addin.money import cents_to_decimal, fmt_money
from perseat_addin.outputs.layout import GREY, MONEY, NAVY, RULE, Cell, SheetLayout, Style, typed

SCHEDULE_SHEET = "Schedule A"
QUOTE_SHEET = "Quote"

_PLAIN = Style()
_TITLE = Style(bold=True, size=16, color=NAVY)
_MSP = Style(bold=True, size=12, color=NAVY)
_SMALL = Style(size=9, color=GREY, wrap=True, valign="top")
_HEADING = Style(bold=True, size=12, color=NAVY, bottom="thin", border_color=NAVY, valign="bottom")
_TEXT = Style(size=10, wrap=True, valign="top")
_HEAD = Style(bold=True, size=9, color="#FFFFFF", fill=NAVY, wrap=True, valign="center")
_HEAD_R = Style(bold=True, size=9, color="#FFFFFF", fill=NAVY, wrap=True, valign="center", align="right")
_FORMATS = {"int": "#,##0", "num": "#,##0.##", "money": MONEY, "rate": "#,##0.00##", "pct": "0.0%"}


def _cell_style(kind: str, fill: str | None = None, bold: bool = False) -> Style:
    if kind == "text":
        return Style(size=9, wrap=True, valign="top", bottom="thin", border_color=RULE, fill=fill, bold=bold)
    return Style(size=9, number_format=_FORMATS[kind], valign="top", bottom="thin", border_color=RULE,
                 align="right", fill=fill, bold=bold)


def _lines(text: str, width: float, size: float = 10) -> int:
    """Lines ``text`` takes wrapped in ``width`` column units at ``size`` points (a little generous)."""
    chars = max(int(width * 1.3 * 10 / size), 6)
    return sum(max(1, len(textwrap.wrap(part, chars))) for part in str(text).split("\n"))


class _Sheet:
    """Cells placed row by row across ``widths`` columns."""

    def __init__(self, widths: Sequence[float]):
        self.widths = list(widths)
        self.cells: list[Cell] = []
        self.heights: dict[int, float] = {}
        self.row = 1

    @property
    def last_col(self) -> int:
        return len(self.widths)

    def put(self, row: int, col: int, value: Any, style: Style = _PLAIN, to: tuple[int, int] | None = None) -> None:
        self.cells.append(Cell(row, col, typed(value), style, to))

    def text(self, value: str, style: Style = _TEXT, gap: float = 0) -> None:
        """A paragraph across the sheet, its row tall enough for the wrapped text."""
        self.put(self.row, 1, value, style, to=(self.row, self.last_col) if self.last_col > 1 else None)
        size = style.size or 11
        self.heights[self.row] = max(size * 1.35 * _lines(value, sum(self.widths), size), size * 1.6) + gap
        self.row += 1

    def table(self, t: Table, highlight: int | None = None, start_col: int = 1) -> None:
        """``t`` with a header row; row ``highlight`` (0-based) bold on a light fill."""
        tall = 1
        for j, h in enumerate(t.headers):
            col = start_col + j
            self.put(self.row, col, h, _HEAD if t.kinds[j] == "text" else _HEAD_R)
            tall = max(tall, _lines(h, self.widths[col - 1] * 0.75, 9))
        self.heights[self.row] = 13.0 * tall + 2
        self.row += 1
        for i, r in enumerate(t.rows):
            fill = "#E2EFDA" if i == highlight else None
            tall = 1
            for j, v in enumerate(r):
                col = start_col + j
                kind = t.kinds[j] if not isinstance(v, str) else "text"
                self.put(self.row, col, v, _cell_style(kind, fill, bold=i == highlight))
                if isinstance(v, str):
                    tall = max(tall, _lines(v, self.widths[col - 1], 9))
            if tall > 1:
                self.heights[self.row] = 12.5 * tall + 2
            self.row += 1

    def skip(self, n: int = 1) -> None:
        self.row += n

    def layout(self, name: str, footer_left: str, footer_right: str, paper: str,
               landscape: bool = False) -> SheetLayout:
        return SheetLayout(name=name, cells=tuple(self.cells), widths=tuple(enumerate(self.widths, start=1)),
                           heights=tuple(sorted(self.heights.items())), print_area=(1, 1, self.row, self.last_col),
                           paper=paper, footer_left=footer_left.replace("&", "&&"),
                           footer_right=footer_right.replace("&", "&&") + " · page &P of &N", landscape=landscape)


def _paper(currency: str) -> str:
    return "letter" if currency in ("USD", "CAD") else "a4"


def schedule_layout(s: Schedule, name: str = SCHEDULE_SHEET) -> SheetLayout:
    """Schedule A on letter/A4 portrait: title, parties, then each section's words and tables."""
    sh = _Sheet((22, 13, 13, 13, 14, 14))
    sh.put(1, 1, s.title, _TITLE, to=(1, sh.last_col))
    sh.heights[1] = 26
    sh.row = 2
    if s.msp:
        sh.text(s.msp, _MSP)
    sh.text(f"Client: {s.client}" if s.client else "For every client on the price list below, unless a client's "
            "own schedule says otherwise.", Style(size=11, bold=bool(s.client), wrap=True))
    sh.text(f"{s.effective}. Prices in {s.currency}, per month.", _SMALL)
    for sec in s.sections:
        sh.skip()
        sh.text(sec.heading, _HEADING)
        sh.heights[sh.row - 1] = 20
        for p in sec.paragraphs:
            sh.text(p, _TEXT, gap=2)
        for t in sec.tables:
            if t.caption:
                sh.text(t.caption, _TEXT, gap=4)
            sh.table(t)
            sh.skip()
    sh.skip()
    sh.text("The invoices apply exactly these rules: the figures above are computed by the same billing engine.",
            _SMALL)
    who = s.client or "Price list"
    return sh.layout(name, s.msp, f"Schedule A · {who}", _paper(s.currency))


def quote_table(q: Quote) -> tuple[Table, int | None]:
    """The side-by-side table of the quote and the index of the marked row."""
    taxed = bool(q.tax_ppm)
    headers = ["Plan", "Pricing", "Seats charged", f"Monthly ({q.currency})"]
    kinds = ["text", "text", "int", "money"]
    if taxed:
        headers += ["Tax", "Monthly with tax", "Annual with tax"]
        kinds += ["money", "money", "money"]
    else:
        headers.append("Annual")
        kinds.append("money")
    headers.append("Per user")
    kinds.append("money")
    rows = []
    marked = None
    for i, r in enumerate(q.rows):
        label = r.plan.name + (" ★ cheapest" if r.plan.name == q.cheapest and len(q.rows) > 1 else "")
        if r.plan.name == q.cheapest:
            marked = i
        row: list[object] = [label, plan_terms(r.plan), r.charge.seats, cents_to_decimal(r.monthly_cents)]
        if taxed:
            row += [cents_to_decimal(r.tax_cents), cents_to_decimal(r.monthly_with_tax_cents),
                    cents_to_decimal(r.annual_with_tax_cents)]
        else:
            row.append(cents_to_decimal(r.annual_cents))
        per = q.per_user_cents(r)
        row.append("—" if per is None else cents_to_decimal(per))
        rows.append(tuple(row))
    return Table(tuple(headers), tuple(rows), tuple(kinds)), marked


def quote_layout(q: Quote, msp: str, today: dt.date, name: str = QUOTE_SHEET) -> SheetLayout:
    """The quote on one landscape page: who and what, every plan side by side, the marked plan and why."""
    t, marked = quote_table(q)
    taxed = bool(q.tax_ppm)
    widths = [20.0, 32.0, 9.0, 12.0] + ([9.0, 15.0, 14.0] if taxed else [13.0]) + [10.0]
    sh = _Sheet(widths)
    sh.put(1, 1, "Quote", _TITLE, to=(1, sh.last_col))
    sh.heights[1] = 26
    sh.row = 2
    if msp:
        sh.text(msp, _MSP)
    sh.text(f"Prepared for: {q.prospect}" if q.prospect else "Prepared for: prospective client",
            Style(size=11, bold=True, wrap=True))
    devices = f" and {q.devices} shared device{'s' if q.devices != 1 else ''}" if q.devices else ""
    sh.text(f"{q.users} user{'s' if q.users != 1 else ''}{devices}, all month · {today:%B} {today.day}, {today.year}"
            f" · amounts in {q.currency}", _SMALL)
    sh.skip()
    sh.table(t, marked)
    sh.skip()
    if q.cheapest and len(q.rows) > 1:
        best = next(r for r in q.rows if r.plan.name == q.cheapest)
        sh.text(f"★ {q.cheapest} is the cheapest plan that fits: {q.currency} {fmt_money(best.monthly_with_tax_cents)} "
                f"a month, {q.currency} {fmt_money(best.annual_with_tax_cents)} a year"
                + (" with tax." if taxed else "."), Style(size=10, bold=True, wrap=True))
        for r in q.rows:
            if r.plan.name != q.cheapest:
                sh.text(f"{r.plan.name}: {r.note.removeprefix('not marked: ')}.", _TEXT)
    elif q.cheapest is None:
        sh.text("No plan fits: every plan listed bills on the greater of users and shared devices, and this quote has "
                "no shared devices.", _TEXT)
    sh.skip()
    tax = (f"Tax at {Decimal(q.tax_ppm) / 10000:.4g}% on taxable plans is shown separately. " if taxed
           else "Prices exclude any tax. ")
    sh.text(tax + "Minimum users, minimum fees, tiers and shared devices are applied as on our invoices; add-ons and "
            "support hours above a plan's included hours are extra. Annual = 12 × monthly.", _SMALL)
    return sh.layout(name, msp, f"Quote · {q.prospect or 'prospect'}", _paper(q.currency), landscape=True)


def quote_dict(q: Quote) -> dict[str, Any]:
    """The quote as JSON-ready values (amounts as strings with two decimals)."""
    def m(c: int | None) -> str | None:
        return None if c is None else str(cents_to_decimal(c))

    return {
        "prospect": q.prospect, "users": q.users, "devices": q.devices, "currency": q.currency,
        "tax_rate": str(Decimal(q.tax_ppm) / 1_000_000), "cheapest": q.cheapest,
        "plans": [{"plan": r.plan.name, "pricing": plan_terms(r.plan), "seats": r.charge.seats,
                   "seat_charge": m(r.charge.seat_cents), "device_charge": m(r.charge.device_cents),
                   "minimum_fee_topup": m(r.charge.minimum_cents), "monthly": m(r.monthly_cents),
                   "tax": m(r.tax_cents), "monthly_with_tax": m(r.monthly_with_tax_cents),
                   "annual": m(r.annual_cents), "annual_with_tax": m(r.annual_with_tax_cents),
                   "per_user": m(q.per_user_cents(r)), "fits": r.fits, "cheapest": r.plan.name == q.cheapest,
                   "note": r.note} for r in q.rows],
    }


def safe_stem(text: str) -> str:
    """``text`` as a file name stem."""
    return "".join(ch if ch.isalnum() or ch in " -_.()" else "_" for ch in text).strip() or "document"


def write_sheet_xlsx(layout: SheetLayout, path: Path, title: str) -> None:
    """A workbook holding the one printable sheet ``layout``."""
    import xlsxwriter

    from perseat_addin.outputs.xlsx import write_layout

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    wb.set_properties({"title": title, "author": "perseat-addin"})
    write_layout(wb, layout, {})
    wb.close()


def write_document(layout: SheetLayout, out_dir: Path, stem: str, title: str, pdf: bool = True) -> list[Path]:
    """``stem``.xlsx (and ``stem``.pdf through LibreOffice) in ``out_dir``; each file is complete or absent."""
    import shutil

    from perseat_addin.outputs.pdf import convert_to_pdf

    written = []
    with tempfile.TemporaryDirectory(prefix="perseat-doc-", dir=out_dir) as tmp:
        src = Path(tmp) / f"{stem}.xlsx"
        write_sheet_xlsx(layout, src, title)
        if pdf:
            convert_to_pdf([src], Path(tmp))
        for ext in ((".xlsx", ".pdf") if pdf else (".xlsx",)):
            dest = out_dir / f"{stem}{ext}"
            shutil.move(str(Path(tmp) / f"{stem}{ext}"), dest)
            written.append(dest)
    return written


__all__ = ["QUOTE_SHEET", "SCHEDULE_SHEET", "quote_dict", "quote_layout", "quote_table", "safe_stem",
           "schedule_layout", "write_document", "write_sheet_xlsx"]
