"""Publishing a run: every output written beside its final name, then moved into place together (nothing
half-written), the output folder beside the workbook, and how the Invoices table names a file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perseat_addin.engine.invoicing import Run
from perseat_addin.errors import PerseatError
from perseat_addin.model import Period
from perseat_addin.money import cents_to_decimal
from perseat_addin.outputs.accounting import (
    has_credits,
    quickbooks_credit_memos_csv,
    quickbooks_csv,
    users_csv,
    xero_credit_notes_csv,
    xero_csv,
)
from perseat_addin.outputs.pdf import invoice_pdfs
from perseat_addin.outputs.xlsx import invoices_xlsx


def summary(run: Run, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Machine-readable summary of a run; amounts are decimal strings."""

    def money(c: int) -> str:
        return f"{cents_to_decimal(c):.2f}"

    invs = run.invoices
    return {
        "workbook": run.book.path,
        "period": str(run.period),
        "currency": run.book.settings.currency,
        "invoices": [
            {
                "number": i.number, "client": i.client.name, "status": i.status,
                "issue_date": i.issue_date.isoformat(), "due_date": i.due_date.isoformat(),
                "seats": i.seats,
                "lines": [
                    {"kind": str(ln.kind), "description": ln.description, "quantity": f"{ln.quantity.normalize():f}",
                     "unit_price": f"{ln.unit_price.normalize():f}", "amount": money(ln.amount_cents),
                     "taxable": ln.taxable}
                    for ln in i.lines
                ],
                "subtotal": money(i.subtotal_cents), "discount": money(i.discount_cents),
                "tax": money(i.tax_cents), "total": money(i.total_cents),
            }
            for i in invs
        ],
        "skipped": [{"client": c, "reason": r} for c, r in run.skipped],
        "totals": {
            "invoices": len(invs),
            "subtotal": money(sum(i.subtotal_cents for i in invs)),
            "discount": money(sum(i.discount_cents for i in invs)),
            "tax": money(sum(i.tax_cents for i in invs)),
            "total": money(run.total_cents),
        },
        "warnings": [p.as_dict() for p in run.book.warnings],
        "outputs": outputs or {},
    }


def write_outputs(run: Run, out_dir: Path, *, pdf: bool = False,
                  progress: Callable[[int], None] | None = None,
                  before_publish: Callable[[], None] | None = None, credits_only: bool = False) -> dict[str, str]:
    """Write every output into ``out_dir``; on any failure nothing is left half-written.

    ``before_publish`` runs once every file is complete but before any is moved
    into place (finalizing the workbook); if it fails, no output appears.
    """
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".perseat-", dir=out_dir))
    try:
        invoices_xlsx(run, staging / "invoices.xlsx", progress)
        texts: dict[str, Callable[[Run], str]] = {} if credits_only else {
            "quickbooks.csv": quickbooks_csv, "xero.csv": xero_csv, "users.csv": users_csv}
        if has_credits(run):
            texts |= {"quickbooks_credit_memos.csv": quickbooks_credit_memos_csv,
                      "xero_credit_notes.csv": xero_credit_notes_csv}
        for name, make in texts.items():
            (staging / name).write_text(make(run), encoding="utf-8-sig", newline="")
        files = ["invoices.xlsx", *texts]
        if pdf:
            files += invoice_pdfs(run, staging)
        if before_publish is not None:
            before_publish()
        written: dict[str, str] = {}
        for name in files:
            os.replace(staging / name, out_dir / name)
            written[name] = str(out_dir / name)
        return written
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def workbook_folder(fullname: str) -> Path:
    """The folder of the open workbook; refuses for a never-saved or web-only workbook."""
    if "://" in fullname:
        raise PerseatError(f"the workbook is open from a web address ({fullname}), not a folder: open it from "
                           "its synced OneDrive/SharePoint folder, or set OutputFolder in Settings to a full "
                           "path such as C:\\Billing\\invoices")
    path = Path(fullname)
    if not path.is_absolute() and path.parent == Path("."):
        raise PerseatError("save the workbook first: invoices are written to its OutputFolder, beside it")
    return path.resolve().parent


def output_dir(fullname: str, folder: str, period: Period) -> Path:
    """``OutputFolder/PERIOD``: relative to the workbook's folder unless OutputFolder is a full path."""
    f = os.path.expanduser(os.path.expandvars(folder or "invoices"))
    base = Path(f) if os.path.isabs(f) else workbook_folder(fullname) / f
    return (base / str(period)).resolve()


def file_ref(path: Path, fullname: str) -> str:
    """How the Invoices table's File column names an output: relative to the workbook's folder if inside it."""
    try:
        return str(path.relative_to(workbook_folder(fullname)))
    except (ValueError, PerseatError):
        return str(path)
