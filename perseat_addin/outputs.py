"""What a run produces: invoices.xlsx, the QuickBooks and Xero import CSVs, and a JSON summary.

Files are written into a temporary folder beside the destination and moved
into place only when all of them are complete.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from .invoicing import Invoice, Run
from .money import cents_to_decimal

# ---------------------------------------------------------------------------
# CSV


def csv_safe(text: Any) -> str:
    """Neutralise spreadsheet formula injection in a text cell (SPEC §10)."""
    s = "" if text is None else str(text)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _date_format(run: Run) -> str:
    st = run.book.settings
    fmt = st.csv_date_format or ("MM/DD/YYYY" if st.currency == "USD" else "DD/MM/YYYY")
    return fmt.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split integer ``total`` over ``weights`` proportionally; parts sum to ``total`` exactly."""
    wsum = sum(weights)
    if not wsum:
        return [0] * len(weights)
    raw = [total * w for w in weights]
    parts = [r // wsum for r in raw]
    rest = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: -(raw[i] % wsum))
    for i in order[:rest]:
        parts[i] += 1
    return parts


QUICKBOOKS_COLUMNS = (
    "InvoiceNo", "Customer", "InvoiceDate", "DueDate", "Terms", "Memo", "Item(Product/Service)",
    "ItemDescription", "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode", "Currency", "ServiceDate",
)
XERO_COLUMNS = (
    "*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
    "POCity", "PORegion", "POPostalCode", "POCountry", "*InvoiceNumber", "Reference", "*InvoiceDate",
    "*DueDate", "Total", "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount",
    "*AccountCode", "*TaxType", "TaxAmount", "TrackingName1", "TrackingOption1", "TrackingName2",
    "TrackingOption2", "Currency", "BrandingTheme",
)


def _qty_unit(amount_cents: int, qty: Decimal, unit: Decimal) -> tuple[str, str]:
    """Quantity and unit price that multiply to the line amount exactly (else 1 × amount)."""
    amount = cents_to_decimal(amount_cents)
    if qty and (qty * unit).quantize(Decimal("0.01")) == amount and qty * unit == amount:
        return f"{qty.normalize():f}", f"{unit.normalize():f}"
    return "1", f"{amount:.2f}"


def quickbooks_csv(run: Run) -> str:
    """QuickBooks Online invoice import: one row per line, tax and discount as their own lines."""
    st = run.book.settings
    fmt = _date_format(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(QUICKBOOKS_COLUMNS)
    for inv in run.invoices:
        for ln in inv.lines:
            qty, unit = _qty_unit(ln.amount_cents, ln.quantity, ln.unit_price)
            item = {"discount": "Discount", "tax": "Sales tax"}.get(ln.kind, st.quickbooks_item)
            w.writerow([
                csv_safe(inv.number), csv_safe(inv.client.name), inv.issue_date.strftime(fmt),
                inv.due_date.strftime(fmt), f"Net {st.payment_terms_days}",
                csv_safe(f"{inv.period.label()} per-user services" + (
                    f", PO {inv.client.po_number}" if inv.client.po_number else "")),
                csv_safe(item), csv_safe(ln.description), qty, unit, f"{ln.amount:.2f}",
                "TAX" if ln.taxable else "NON", inv.currency, inv.period.last.strftime(fmt),
            ])
    return out.getvalue()


def _address_lines(address: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"[\n,]", address) if p.strip()]
    return (parts + [""] * 4)[:4]


def xero_csv(run: Run) -> str:
    """Xero sales invoice import: one row per line, tax given per line so totals match exactly."""
    st = run.book.settings
    fmt = _date_format(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(XERO_COLUMNS)
    for inv in run.invoices:
        lines = [ln for ln in inv.lines if ln.kind != "tax"]
        # the invoice's tax, rounded once, spread over its taxable charge lines so each row carries its share
        taxes = allocate(inv.tax_cents, [max(ln.amount_cents, 0) if ln.taxable else 0 for ln in lines])
        addr = _address_lines(inv.client.address)
        for ln, tax in zip(lines, taxes, strict=True):
            qty, unit = _qty_unit(ln.amount_cents, ln.quantity, ln.unit_price)
            w.writerow([
                csv_safe(inv.client.name), csv_safe(inv.client.billing_email), *map(csv_safe, addr),
                "", "", "", "", csv_safe(inv.number), csv_safe(inv.client.po_number or inv.period.label()),
                inv.issue_date.strftime(fmt), inv.due_date.strftime(fmt),
                f"{cents_to_decimal(inv.total_cents):.2f}", "", csv_safe(ln.description), qty, unit, "",
                csv_safe(st.xero_account_code),
                csv_safe(st.xero_tax_type if (ln.taxable and inv.tax_cents) else st.xero_tax_exempt_type),
                f"{cents_to_decimal(tax):.2f}", "", "", "", "", inv.currency, "",
            ])
    return out.getvalue()


# ---------------------------------------------------------------------------
# JSON


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
                    {"kind": ln.kind, "description": ln.description, "quantity": f"{ln.quantity.normalize():f}",
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


# ---------------------------------------------------------------------------
# invoices.xlsx


def _sheet_name(number: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", number)[:31] or "Invoice"
    name, k = base, 2
    while name.lower() in used:
        name = f"{base[:27]}~{k}"
        k += 1
    used.add(name.lower())
    return name


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook, currency: str):
        money = "#,##0.00;[Red]-#,##0.00"
        self.money = wb.add_format({"num_format": money})
        self.money_b = wb.add_format({"num_format": money, "bold": True, "top": 1})
        self.total = wb.add_format({"num_format": f'"{currency} "#,##0.00', "bold": True, "font_size": 12,
                                    "top": 2, "bottom": 2})
        self.total_label = wb.add_format({"bold": True, "font_size": 12, "top": 2, "bottom": 2, "align": "right"})
        self.label_r = wb.add_format({"align": "right"})
        self.qty = wb.add_format({"num_format": "#,##0.##", "align": "right"})
        self.date = wb.add_format({"num_format": "mmm d, yyyy", "align": "left"})
        self.date_r = wb.add_format({"num_format": "mmm d, yyyy", "align": "right"})
        self.iso = wb.add_format({"num_format": "yyyy-mm-dd"})
        self.title = wb.add_format({"bold": True, "font_size": 22, "font_color": "#1F3864", "align": "right"})
        self.msp = wb.add_format({"bold": True, "font_size": 14, "font_color": "#1F3864"})
        self.small = wb.add_format({"font_color": "#555555", "font_size": 9})
        self.small_wrap = wb.add_format({"font_color": "#555555", "font_size": 9, "text_wrap": True,
                                         "valign": "top"})
        self.head = wb.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F3864",
                                   "border": 1, "border_color": "#1F3864"})
        self.head_r = wb.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F3864",
                                     "align": "right", "border": 1, "border_color": "#1F3864"})
        self.bold = wb.add_format({"bold": True})
        self.key = wb.add_format({"bold": True, "font_color": "#555555", "align": "right"})
        self.value_r = wb.add_format({"align": "right"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top", "bottom": 1, "bottom_color": "#D9D9D9"})
        self.line_money = wb.add_format({"num_format": money, "valign": "top", "bottom": 1,
                                         "bottom_color": "#D9D9D9"})
        self.line_qty = wb.add_format({"num_format": "#,##0.##", "valign": "top", "bottom": 1,
                                       "bottom_color": "#D9D9D9"})


def _excel_date(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day)


def write_invoice_sheet(wb: xlsxwriter.Workbook, f: _Formats, name: str, inv: Invoice, run: Run) -> None:
    """One printable invoice on one page."""
    st = run.book.settings
    ws = wb.add_worksheet(name)
    ws.hide_gridlines(2)
    ws.set_column("A:A", 58)
    ws.set_column("B:B", 9)
    ws.set_column("C:C", 13)
    ws.set_column("D:D", 15)
    ws.set_paper(1 if st.currency in ("USD", "CAD") else 9)
    ws.set_portrait()
    ws.set_margins(left=0.6, right=0.6, top=0.6, bottom=0.7)
    ws.fit_to_pages(1, 0)
    ws.set_footer(f"&L&8{st.msp_name}&R&8{inv.number} · page &P of &N")
    ws.write("A1", st.msp_name or "Invoice", f.msp)
    ws.write("D1", "INVOICE", f.title)
    ws.set_row(0, 30)
    for i, text in enumerate([st.msp_address, st.msp_email]):
        ws.write(1 + i, 0, text, f.small)
    facts = [("Invoice no.", inv.number), ("Issue date", inv.issue_date), ("Due date", inv.due_date),
             ("Period", inv.period.label())]
    if inv.client.po_number:
        facts.append(("PO number", inv.client.po_number))
    for i, (k, v) in enumerate(facts):
        ws.write(1 + i, 2, k, f.key)
        if isinstance(v, dt.date):
            ws.write_datetime(1 + i, 3, _excel_date(v), f.date_r)
        else:
            ws.write(1 + i, 3, v, f.value_r)
    row = 2 + max(len(facts), 3)
    ws.write(row, 0, "BILL TO", f.small)
    row += 1
    ws.write(row, 0, inv.client.name, f.bold)
    row += 1
    for text in [inv.client.billing_contact, inv.client.address, inv.client.billing_email]:
        if text:
            ws.write(row, 0, text)
            row += 1
    row += 1
    ws.write_row(row, 0, ["Description"], f.head)
    ws.write_row(row, 1, ["Qty", "Unit price", f"Amount ({inv.currency})"], f.head_r)
    row += 1
    body = [ln for ln in inv.lines if ln.kind not in ("discount", "tax")]
    for ln in body:
        ws.write(row, 0, ln.description, f.wrap)
        ws.write_number(row, 1, float(ln.quantity), f.line_qty)
        ws.write_number(row, 2, float(ln.unit_price), f.line_money)
        ws.write_number(row, 3, float(ln.amount), f.line_money)
        if len(ln.description) > 62:
            ws.set_row(row, 30)
        row += 1
    row += 1
    totals: list[tuple[str, int, Any]] = [("Subtotal", inv.subtotal_cents, f.money)]
    totals += [(ln.description, ln.amount_cents, f.money) for ln in inv.lines if ln.kind in ("discount", "tax")]
    for label, cents, fmt in totals:
        ws.merge_range(row, 0, row, 2, label, f.label_r)
        ws.write_number(row, 3, float(cents_to_decimal(cents)), fmt)
        row += 1
    ws.merge_range(row, 0, row, 2, "Total due", f.total_label)
    ws.write_number(row, 3, float(cents_to_decimal(inv.total_cents)), f.total)
    row += 3
    due = inv.due_date
    terms = (f"Payment due by {due:%B} {due.day}, {due.year} ({st.payment_terms_days} days). "
             f"Please quote {inv.number} with your payment.")
    if st.msp_email:
        terms += f" Questions about this invoice: {st.msp_email}."
    ws.merge_range(row, 0, row + 1, 3, terms, f.small_wrap)
    ws.merge_range(row + 2, 0, row + 3, 3,
                   "Per-user charges are prorated by day: a user added mid-month is charged from their "
                   "start date, a user who leaves is credited from the day after their last day.", f.small_wrap)
    ws.print_area(0, 0, row + 3, 3)


def invoices_xlsx(run: Run, path: Path, progress: Callable[[int], None] | None = None) -> None:
    """Register, lines, users and one printable sheet per invoice."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    wb.set_properties({"title": f"Invoices {run.period}", "author": "perseat-addin"})
    f = _Formats(wb, run.book.settings.currency)
    ws = wb.add_worksheet("Register")
    heads = ["InvoiceNo", "Client", "Period", "IssueDate", "DueDate", "Seats", "Subtotal", "Discount",
             "Tax", "Total", "Status", "Currency", "BillingEmail", "Sheet"]
    used: set[str] = {"register", "lines"}
    sheet_names = [_sheet_name(i.number, used) for i in run.invoices]
    n = len(run.invoices)
    for j, inv in enumerate(run.invoices, start=1):
        ws.write_row(j, 0, [inv.number, inv.client.name, str(inv.period)])
        ws.write_datetime(j, 3, _excel_date(inv.issue_date), f.iso)
        ws.write_datetime(j, 4, _excel_date(inv.due_date), f.iso)
        ws.write_number(j, 5, inv.seats)
        for k, c in enumerate((inv.subtotal_cents, inv.discount_cents, inv.tax_cents, inv.total_cents)):
            ws.write_number(j, 6 + k, float(cents_to_decimal(c)), f.money)
        ws.write_row(j, 10, [inv.status, inv.currency, inv.client.billing_email])
        ws.write_url(j, 13, f"internal:'{sheet_names[j - 1]}'!A1", string=sheet_names[j - 1])
    cols = [{"header": h} for h in heads]
    for k, key in enumerate(("Subtotal", "Discount", "Tax", "Total")):
        cols[6 + k] = {"header": key, "total_function": "sum", "format": f.money}
    cols[0]["total_string"] = "Total"
    ws.add_table(0, 0, max(n, 1) + 1, len(heads) - 1, {"name": "Register", "columns": cols,
                                                       "total_row": True, "style": "Table Style Medium 2"})
    ws.set_column("A:A", 12)
    ws.set_column("B:B", 28)
    ws.set_column("C:F", 11)
    ws.set_column("G:J", 13, f.money)
    ws.set_column("K:L", 9)
    ws.set_column("M:M", 30)
    ws.freeze_panes(1, 0)
    wl = wb.add_worksheet("Lines")
    lheads = ["InvoiceNo", "Client", "Line", "Kind", "Description", "Quantity", "UnitPrice", "Amount", "Taxable"]
    r = 1
    for inv in run.invoices:
        for k, ln in enumerate(inv.lines, start=1):
            wl.write_row(r, 0, [inv.number, inv.client.name, k, ln.kind, ln.description])
            wl.write_number(r, 5, float(ln.quantity))
            wl.write_number(r, 6, float(ln.unit_price))
            wl.write_number(r, 7, float(ln.amount), f.money)
            wl.write(r, 8, "Yes" if ln.taxable else "No")
            r += 1
    wl.add_table(0, 0, max(r - 1, 1), len(lheads) - 1, {"name": "Lines", "columns": [{"header": h} for h in lheads],
                                                        "style": "Table Style Light 9"})
    wl.set_column("A:A", 12)
    wl.set_column("B:B", 26)
    wl.set_column("E:E", 70)
    wl.set_column("G:H", 12, f.money)
    wl.freeze_panes(1, 0)
    for name, inv in zip(sheet_names, run.invoices, strict=True):
        write_invoice_sheet(wb, f, name, inv, run)
        if progress:
            progress(1)
    wb.close()


def users_csv(run: Run) -> str:
    """Every Roster row with the reason it is, or is not, billed (the evidence behind seat counts)."""
    roster = run.book.roster
    frame = pd.DataFrame({
        "RosterRow": roster["row"], "Client": roster["client"], "UserID": roster["user"],
        "Name": roster["name"], "Type": roster["type"], "Billing": run.user_reasons().to_numpy(),
    })
    for col in ("Client", "UserID", "Name", "Type"):
        text = frame[col].astype("str")
        risky = text.str.match(r"^[=+\-@\t\r]")
        frame[col] = text.where(~risky, "'" + text)
    return str(frame.to_csv(index=False, lineterminator="\r\n"))


def single_invoice_xlsx(run: Run, inv: Invoice, path: Path) -> None:
    """A workbook holding only one invoice sheet (the source of its PDF)."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    write_invoice_sheet(wb, _Formats(wb, inv.currency), _sheet_name(inv.number, set()), inv, run)
    wb.close()


# ---------------------------------------------------------------------------
# Writing a run's files atomically


def write_outputs(run: Run, out_dir: Path, *, pdf: bool = False,
                  progress: Callable[[int], None] | None = None,
                  before_publish: Callable[[], None] | None = None) -> dict[str, str]:
    """Write every output into ``out_dir``; on any failure nothing is left half-written.

    ``before_publish`` runs once every file is complete but before any is moved
    into place (finalizing the workbook); if it fails, no output appears.
    """
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".perseat-", dir=out_dir))
    try:
        invoices_xlsx(run, staging / "invoices.xlsx", progress)
        (staging / "quickbooks.csv").write_text(quickbooks_csv(run), encoding="utf-8-sig", newline="")
        (staging / "xero.csv").write_text(xero_csv(run), encoding="utf-8-sig", newline="")
        (staging / "users.csv").write_text(users_csv(run), encoding="utf-8-sig", newline="")
        files = ["invoices.xlsx", "quickbooks.csv", "xero.csv", "users.csv"]
        if pdf:
            from .pdf import invoice_pdfs

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
