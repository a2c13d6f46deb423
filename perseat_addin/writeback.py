"""Write invoices back into the user's workbook, atomically, keeping its VBA project and ribbon.

Only the Invoices, InvoiceLines and Settings tables change. Final invoices are
never touched; re-running a period replaces that period's Draft rows only.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.workbook.workbook import Workbook as OpenpyxlWorkbook
from openpyxl.worksheet.worksheet import Worksheet

from .errors import FinalizedError, PerseatError
from .invoicing import Invoice
from .model import Period
from .money import cents_to_decimal
from .schema import header_key
from .template import MACRO_MAIN, macro_enable


def _find_table(wb: OpenpyxlWorkbook, name: str) -> tuple[Worksheet, Any]:
    for ws in wb.worksheets:
        for table in ws.tables.values():
            if table.name.lower() == name.lower():
                return ws, table
    raise PerseatError(f"the workbook has no {name} table to write to; add the {name} sheet from the "
                       "template (perseat template) and try again")


class _TableRows:
    """Rows of an Excel table as dicts keyed by header, rewritten in place."""

    def __init__(self, wb: OpenpyxlWorkbook, name: str):
        self.ws, self.table = _find_table(wb, name)
        c0, r0, c1, r1 = range_boundaries(self.table.ref)
        self.c0, self.r0, self.c1 = c0, r0, c1
        self.headers = [str(self.ws.cell(r0, c).value or "") for c in range(c0, c1 + 1)]
        self.keys = [header_key(h) for h in self.headers]
        self.old_last = r1
        self.rows: list[list[Any]] = []
        for r in range(r0 + 1, r1 + 1):
            vals = [self.ws.cell(r, c).value for c in range(c0, c1 + 1)]
            if any(v not in (None, "") for v in vals):
                self.rows.append(vals)

    def get(self, row: list[Any], header: str) -> Any:
        k = header_key(header)
        return row[self.keys.index(k)] if k in self.keys else None

    def make(self, values: dict[str, Any]) -> list[Any]:
        by = {header_key(k): v for k, v in values.items()}
        return [by.get(k) for k in self.keys]

    def require(self, headers: Sequence[str]) -> None:
        missing = [h for h in headers if header_key(h) not in self.keys]
        if missing:
            raise PerseatError(f"the {self.table.name} table lacks column(s) {', '.join(missing)}; "
                               "add them (see the template) and try again")

    def save(self) -> None:
        styles = [self.ws.cell(self.r0 + 1, c)._style for c in range(self.c0, self.c1 + 1)]
        last = self.r0 + max(len(self.rows), 1)
        for i in range(max(len(self.rows), 1)):
            vals = self.rows[i] if i < len(self.rows) else [None] * len(self.keys)
            for j, v in enumerate(vals):
                cell = self.ws.cell(self.r0 + 1 + i, self.c0 + j)
                cell.value = v
                cell._style = styles[j]
                if isinstance(v, dt.datetime):
                    cell.number_format = "yyyy-mm-dd"
        for r in range(last + 1, self.old_last + 1):
            for c in range(self.c0, self.c1 + 1):
                self.ws.cell(r, c).value = None
        self.table.ref = f"{get_column_letter(self.c0)}{self.r0}:{get_column_letter(self.c1)}{last}"
        if self.table.autoFilter is not None:
            self.table.autoFilter.ref = self.table.ref


def _set_setting(wb: OpenpyxlWorkbook, name: str, value: Any) -> None:
    t = _TableRows(wb, "Settings")
    for row in t.rows:
        if header_key(t.get(row, "Setting") or "") == header_key(name):
            row[t.keys.index("value")] = value
            break
    else:
        t.rows.append(t.make({"Setting": name, "Value": value}))
    t.save()


def record_invoices(path: str | Path, invoices: Sequence[Invoice], period: Period, *, final: bool,
                    files: dict[str, str] | None = None) -> Path:
    """Replace ``period``'s Draft invoices with ``invoices``; with ``final`` mark them Final and
    advance NextInvoiceNumber and BillingPeriod. The file is replaced atomically."""
    path = Path(path)
    original = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        content_types = z.read("[Content_Types].xml")
        parts_before = set(z.namelist())
    keep_vba = path.suffix.lower() in (".xlsm", ".xltm") or MACRO_MAIN.encode() in content_types
    wb = load_workbook(io.BytesIO(original), keep_vba=keep_vba, keep_links=True, rich_text=True)
    inv_t = _TableRows(wb, "Invoices")
    inv_t.require(("InvoiceNo", "Client", "Period", "Status"))
    line_t = _TableRows(wb, "InvoiceLines")
    line_t.require(("InvoiceNo", "Amount"))
    p = str(period)
    clients = {i.client.name.lower() for i in invoices}
    drop: set[str] = set()
    kept = []
    for row in inv_t.rows:
        status = str(inv_t.get(row, "Status") or "").strip().lower()
        same_period = Period.key(inv_t.get(row, "Period")) == p
        if same_period and status == "final" and str(inv_t.get(row, "Client") or "").lower() in clients:
            raise FinalizedError(f"{inv_t.get(row, 'InvoiceNo')} for {inv_t.get(row, 'Client')} ({p}) is Final "
                                 "and cannot be replaced; issue a credit invoice instead")
        if same_period and status != "final":
            drop.add(str(inv_t.get(row, "InvoiceNo")))
            continue
        kept.append(row)
    inv_t.rows = kept
    line_t.rows = [r for r in line_t.rows if str(line_t.get(r, "InvoiceNo")) not in drop]
    status = "Final" if final else "Draft"
    for inv in invoices:
        inv_t.rows.append(inv_t.make({
            "InvoiceNo": inv.number, "Client": inv.client.name, "Period": p,
            "IssueDate": dt.datetime.combine(inv.issue_date, dt.time()),
            "DueDate": dt.datetime.combine(inv.due_date, dt.time()),
            "Subtotal": float(cents_to_decimal(inv.subtotal_cents)),
            "Discount": float(cents_to_decimal(inv.discount_cents)),
            "Tax": float(cents_to_decimal(inv.tax_cents)),
            "Total": float(cents_to_decimal(inv.total_cents)),
            "Status": status, "File": (files or {}).get(inv.number, ""),
        }))
        for k, ln in enumerate(inv.lines, start=1):
            line_t.rows.append(line_t.make({
                "InvoiceNo": inv.number, "Line": k, "Kind": ln.kind, "Description": ln.description,
                "Quantity": float(ln.quantity), "UnitPrice": float(ln.unit_price), "Amount": float(ln.amount),
            }))
    inv_t.save()
    line_t.save()
    if final:
        numbers = [int(i.number.rsplit("-", 1)[-1]) for i in invoices if i.number.rsplit("-", 1)[-1].isdigit()]
        if numbers:
            _set_setting(wb, "NextInvoiceNumber", max(numbers) + 1)
        _set_setting(wb, "BillingPeriod", str(period.next()))
    buf = io.BytesIO()
    wb.save(buf)
    data = _restore_package(buf.getvalue(), content_types, parts_before)
    tmp = path.with_name(f".{path.name}.perseat-tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _restore_package(data: bytes, content_types: bytes, parts_before: set[str]) -> bytes:
    """Keep the macro-enabled content type and check the ribbon and VBA parts survived."""
    macro = MACRO_MAIN.encode() in content_types
    src = zipfile.ZipFile(io.BytesIO(data))
    names = set(src.namelist())
    for needed in ("xl/vbaProject.bin", "customUI/customUI.xml"):
        if needed in parts_before and needed not in names:
            raise PerseatError(f"saving would drop {needed} from the workbook; nothing was written")
    if not macro:
        return data
    if MACRO_MAIN.encode() in src.read("[Content_Types].xml"):
        return data
    return macro_enable(data)
