"""A prospect's quote (SPEC §7, §11): ``perseat quote``. The template's Quote sheet prices the same way with
SEATCHARGE in Excel."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from perseat_addin.engine.quote import Quote, find_plan, quote
from perseat_addin.model import Book
from perseat_addin.outputs.documents import quote_layout, safe_stem, write_document
from perseat_addin.outputs.publish import prepare_folder, workbook_folder
from perseat_addin.tasks.port import BookPort, validated


def make_quote(book: BookPort, users: int, devices: int = 0, plan: str | None = None,
               prospect: str = "") -> tuple[Book, Quote]:
    """The workbook validated, and the quote for ``users`` users and ``devices`` shared devices on ``plan`` or
    on every plan (tax at DefaultTaxRate, rounding as Settings say)."""
    loaded, _ = validated(book)
    plans = list(loaded.plans.values())
    if plan is not None:
        plans = [find_plan(plans, plan)]
    st = loaded.settings
    return loaded, quote(plans, users, devices, tax_ppm=st.default_tax_ppm, currency=st.currency,
                         prospect=prospect.strip(), rounding=st.rounding)


def quote_folder(workbook: str, output_folder: str) -> Path:
    """``OutputFolder/quotes`` beside the workbook (OutputFolder may be a full path)."""
    f = Path(output_folder or "invoices").expanduser()
    return (f if f.is_absolute() else workbook_folder(workbook) / f) / "quotes"


def quote_stem(q: Quote, today: dt.date) -> str:
    """``Quote 2026-11-20 Prospect (12 users)``."""
    who = f"{q.prospect} " if q.prospect else ""
    return safe_stem(f"Quote {today.isoformat()} {who}({q.users} users)")


def write_quote(book: Book, q: Quote, out_dir: Path, today: dt.date) -> list[Path]:
    """The quote's .xlsx and PDF in ``out_dir``; a folder made for them is removed again when they fail."""
    created = prepare_folder(out_dir)
    try:
        return write_document(quote_layout(q, book.settings.msp_name, today), out_dir, quote_stem(q, today),
                              f"Quote for {q.prospect or 'a prospect'}")
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


__all__ = ["make_quote", "quote_folder", "quote_stem", "write_quote"]
