"""The accounting import files: QuickBooks Online and Xero invoice CSVs, users.csv, and the cent allocation
that keeps their totals equal to the invoices'."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perseat_addin.cells import formula_safe
from perseat_addin.engine.invoicing import Run
from perseat_addin.model import DocKind, Invoice, Line, LineKind, Settings
from perseat_addin.money import multiplies_out, plain

csv_safe = formula_safe
"""Neutralise spreadsheet formula injection in a text field (SPEC §10)."""


def _date_format(run: Run) -> str:
    st = run.book.settings
    fmt = st.csv_date_format or ("MM/DD/YYYY" if st.currency == "USD" else "DD/MM/YYYY")
    return fmt.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")


def _dates(run: Run) -> Callable[[dt.date], str]:
    """The run's CSV date format as a function, each distinct date formatted once (a run's invoices share a
    few dates)."""
    fmt = _date_format(run)
    done: dict[dt.date, str] = {}

    def text(day: dt.date) -> str:
        out = done.get(day)
        if out is None:
            out = done[day] = day.strftime(fmt)
        return out

    return text


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


def cents_text(cents: int) -> str:
    """Integer cents as ``f"{cents_to_decimal(cents):.2f}"`` writes them, without making a Decimal."""
    sign, whole = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{whole // 100}.{whole % 100:02d}"


IMPORT_PLACES = 4
"""Decimals the accounting products take in a quantity or a unit price (Xero: 4; QuickBooks Online takes
more). Each recomputes a line's amount as quantity × unit price rounded to cents."""


def _places(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else IMPORT_PLACES + 1


@lru_cache(maxsize=8192)
def _qty_unit(amount_cents: int, qty: Decimal, unit: Decimal) -> tuple[str, str]:
    """Quantity and unit price the product multiplies back to the line amount (within half a cent, so any
    rounding gives it, e.g. 1.0666 × 95 = 101.327 → 101.33), each with at most 4 decimals; else 1 × amount.
    The answer depends only on the three values, so a run's many equal lines share one (cached)."""
    if qty and multiplies_out(qty, unit, amount_cents) and max(_places(qty), _places(unit)) <= IMPORT_PLACES:
        return f"{plain(qty):f}", f"{plain(unit):f}"
    return "1", cents_text(amount_cents)


def quickbooks_csv(run: Run) -> str:
    """QuickBooks Online invoice import: one row per line, tax and discount as their own lines."""
    st = run.book.settings
    date = _dates(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(QUICKBOOKS_COLUMNS)
    terms = f"Net {st.payment_terms_days}"
    for inv in _of_kind(run, DocKind.INVOICE):
        head = [csv_safe(inv.number), csv_safe(inv.client.name), date(inv.issue_date), date(inv.due_date), terms,
                csv_safe(f"{inv.period.label()} per-user services" + (
                    f", PO {inv.client.po_number}" if inv.client.po_number else ""))]
        tail = [inv.currency, date(inv.period.last)]  # the invoice's columns, once per invoice
        taxed = _taxed(inv, st)
        w.writerows([*head, *_quickbooks_line(ln, st.quickbooks_item, 1, taxed), *tail] for ln in inv.lines)
    return out.getvalue()


def _taxed(doc: Invoice, st: Settings) -> bool:
    """Whether ``doc`` is taxed at all: it carries tax (a credit note of a taxed invoice does), or its client's
    effective tax rate (TaxRate, else DefaultTaxRate) is above zero. A taxable line of an untaxed client is
    coded NON, as its invoice carries no tax."""
    rate = doc.client.tax_ppm if doc.client.tax_ppm is not None else st.default_tax_ppm
    return doc.tax_cents != 0 or rate > 0


def _quickbooks_line(ln: Line, item: str, sign: int, taxed: bool = True) -> list[str]:
    """Item, description, quantity, rate, amount and tax code of a line (amounts × ``sign``: −1 for a credit
    memo, whose amounts QuickBooks wants positive; ``taxed``: the client's effective tax rate is above zero)."""
    qty, unit = _qty_unit(sign * ln.amount_cents, sign * ln.quantity, ln.unit_price)
    kind = ln.kind
    name = "Discount" if kind == LineKind.DISCOUNT else "Sales tax" if kind == LineKind.TAX else item
    return [csv_safe(name), csv_safe(ln.description), qty, unit, cents_text(sign * ln.amount_cents),
            "TAX" if ln.taxable and taxed else "NON"]


@dataclass(frozen=True)
class PostalAddress:
    """A client's Address cut into the fields accounting imports ask for (Xero's POAddressLine1–4, POCity,
    PORegion, POPostalCode, POCountry)."""

    lines: tuple[str, str, str, str]
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


_COUNTRIES = {
    "us": "United States", "usa": "United States", "united states": "United States",
    "united states of america": "United States", "ca": "Canada", "canada": "Canada",
    "uk": "United Kingdom", "gb": "United Kingdom", "united kingdom": "United Kingdom",
    "great britain": "United Kingdom", "england": "United Kingdom", "scotland": "United Kingdom",
    "wales": "United Kingdom", "northern ireland": "United Kingdom", "ie": "Ireland", "ireland": "Ireland",
    "au": "Australia", "australia": "Australia", "nz": "New Zealand", "new zealand": "New Zealand",
    "za": "South Africa", "south africa": "South Africa", "de": "Germany", "germany": "Germany",
    "fr": "France", "france": "France", "nl": "Netherlands", "netherlands": "Netherlands",
    "be": "Belgium", "belgium": "Belgium", "es": "Spain", "spain": "Spain", "it": "Italy", "italy": "Italy",
    "ch": "Switzerland", "switzerland": "Switzerland", "at": "Austria", "austria": "Austria",
    "se": "Sweden", "sweden": "Sweden", "dk": "Denmark", "denmark": "Denmark", "no": "Norway",
    "norway": "Norway", "fi": "Finland", "finland": "Finland", "sg": "Singapore", "singapore": "Singapore",
}
"""Country names (and two-letter codes) recognised on an address's last line, in the markets MSPs bill in."""

_POSTCODE = r"\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4}"
"""A ZIP (04101, 04101-1234), a Canadian (K1A 0B6) or UK (SW1A 1AA) postcode, or a 4-digit one (AU, NZ…)."""

_REGION_CODE = re.compile(rf"^(?P<region>[A-Z]{{2,3}})\s+(?P<code>{_POSTCODE})$")
_CITY_REGION_CODE = re.compile(rf"^(?P<city>[^,]+?),?\s+(?P<region>[A-Z]{{2,3}})\s+(?P<code>{_POSTCODE})$")
_CITY_CODE = re.compile(r"^(?P<city>[^,]+?),?\s+(?P<code>[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$")
_CODE_CITY = re.compile(r"^(?P<code>\d{4,5}|\d{3} \d{2})\s+(?P<city>\D.*)$")
_CODE_ONLY = re.compile(rf"^(?:{_POSTCODE})$")
_CITY_REGION = re.compile(r"^(?P<city>[^,]+?),\s+(?P<region>[A-Z]{2,3})$")
_REGION_ONLY = re.compile(r"^[A-Z]{2,3}$")


def postal_address(address: str) -> PostalAddress:
    """Cut an Address cell into street lines, city, region, postal code and country.

    The cell holds one line per row ("12 Harbor Road\\nPortland, ME 04101") or one line with commas
    ("12 Harbor Road, Portland, ME 04101"). The last line may name a country; the line before it (or the
    last one) is read as "City, ST 04101" (US, Canada, Australia), "London SW1A 1AA" or "10115 Berlin".
    What does not read so stays in the street lines, so nothing is ever dropped; more than four street
    lines are joined into the fourth.
    """
    rows = [r.strip() for r in address.replace("\r", "\n").split("\n") if r.strip()]
    parts = rows if len(rows) > 1 else [p.strip() for p in (rows[0] if rows else "").split(",") if p.strip()]
    country = ""
    if len(parts) > 1 and (name := _COUNTRIES.get(parts[-1].rstrip(".").replace(".", "").lower())):
        country, parts = name, parts[:-1]
    city = region = code = ""
    if len(parts) > 1:
        last = parts[-1]
        if m := _CITY_REGION_CODE.match(last):
            city, region, code, parts = m["city"].strip(), m["region"], m["code"], parts[:-1]
        elif (m := _REGION_CODE.match(last)) and len(parts) > 2:
            city, region, code, parts = parts[-2], m["region"], m["code"], parts[:-2]
        elif m := _CITY_CODE.match(last):
            city, code, parts = m["city"].strip(), m["code"], parts[:-1]
        elif _CODE_ONLY.match(last) and len(parts) > 2:
            city, code, parts = parts[-2], last, parts[:-2]
        elif m := _CODE_CITY.match(last):
            city, code, parts = m["city"].strip(), m["code"], parts[:-1]
        elif m := _CITY_REGION.match(last):
            city, region, parts = m["city"].strip(), m["region"], parts[:-1]
        elif _REGION_ONLY.match(last) and len(parts) > 2:
            city, region, parts = parts[-2], last, parts[:-2]
    if len(parts) > 4:
        parts = [*parts[:3], ", ".join(parts[3:])]
    lines = (*parts, "", "", "", "")[:4]
    return PostalAddress((lines[0], lines[1], lines[2], lines[3]), city, region, code, country)


def xero_csv(run: Run) -> str:
    """Xero sales invoice import: one row per line, tax given per line so totals match exactly."""
    st = run.book.settings
    date = _dates(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(XERO_COLUMNS)
    for inv in _of_kind(run, DocKind.INVOICE):
        head = [*_xero_contact(inv), csv_safe(inv.number), csv_safe(inv.client.po_number or inv.period.label()),
                date(inv.issue_date), date(inv.due_date),
                cents_text(inv.total_cents), ""]  # the invoice's columns, once per invoice
        w.writerows([*head, *line] for line in _xero_lines(inv, st, 1))
    return out.getvalue()


def _xero_contact(doc: Invoice) -> list[str]:
    """ContactName, EmailAddress and the address columns both Xero imports start with."""
    a = postal_address(doc.client.address)
    return [csv_safe(doc.client.name), csv_safe(doc.client.billing_email),
            *map(csv_safe, (*a.lines, a.city, a.region, a.postal_code, a.country))]


def _xero_lines(doc: Invoice, st: Settings, sign: int) -> Iterator[list[str]]:
    """Description … BrandingTheme of each charge line, both Xero imports alike (amounts × ``sign``: −1 for a
    credit note, whose amounts Xero wants positive). The document's tax, rounded once, is spread over its
    taxable lines so each row carries its share."""
    lines = [ln for ln in doc.lines if ln.kind != LineKind.TAX]
    tax_cents = doc.tax_cents
    taxes = allocate(sign * tax_cents, [max(sign * ln.amount_cents, 0) if ln.taxable else 0 for ln in lines])
    account, taxed, exempt = (csv_safe(t) for t in (st.xero_account_code, st.xero_tax_type,
                                                      st.xero_tax_exempt_type))
    for ln, tax in zip(lines, taxes, strict=True):
        qty, unit = _qty_unit(sign * ln.amount_cents, sign * ln.quantity, ln.unit_price)
        yield [csv_safe(ln.description), qty, unit, "", account, taxed if (ln.taxable and tax_cents) else exempt,
               cents_text(tax), "", "", "", "", doc.currency, ""]


def _of_kind(run: Run, kind: DocKind) -> list[Invoice]:
    return [i for i in run.invoices if i.kind is kind]


def has_credits(run: Run) -> bool:
    """Whether the run holds credit notes (which go to their own import files)."""
    return bool(_of_kind(run, DocKind.CREDIT))


QUICKBOOKS_CREDIT_COLUMNS = (
    "CreditMemoNo", "Customer", "CreditMemoDate", "Memo", "Item(Product/Service)", "ItemDescription",
    "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode", "Currency", "ServiceDate",
)
"""A QuickBooks Online credit memo per credit note (Import data ▸ Credit memos, or an importer such as
SaasAnt or Transaction Pro): amounts positive — a credit memo is a credit by its type."""

XERO_CREDIT_COLUMNS = (
    "*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
    "POCity", "PORegion", "POPostalCode", "POCountry", "*CreditNoteNumber", "Reference", "*CreditNoteDate",
    "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount", "*AccountCode", "*TaxType",
    "TaxAmount", "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2", "Currency",
    "BrandingTheme",
)
"""Xero's credit note import (Business ▸ Invoices ▸ Credit notes ▸ Import; type ACCRECCREDIT): the sales
invoice template with CreditNoteNumber and CreditNoteDate, amounts positive."""


def quickbooks_credit_memos_csv(run: Run) -> str:
    """The run's credit notes as QuickBooks Online credit memos (Memo: the reason and the invoice credited)."""
    st = run.book.settings
    fmt = _date_format(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(QUICKBOOKS_CREDIT_COLUMNS)
    for cn in _of_kind(run, DocKind.CREDIT):
        memo = f"Credit for {cn.corrects}: {cn.reason}" if cn.corrects else cn.reason
        for ln in cn.lines:
            w.writerow([
                csv_safe(cn.number), csv_safe(cn.client.name), cn.issue_date.strftime(fmt), csv_safe(memo),
                *_quickbooks_line(ln, st.quickbooks_item, -1, _taxed(cn, st)), cn.currency,
                cn.period.last.strftime(fmt),
            ])
    return out.getvalue()


def xero_credit_notes_csv(run: Run) -> str:
    """The run's credit notes for Xero's credit note import: tax per line, Reference the invoice credited."""
    st = run.book.settings
    fmt = _date_format(run)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(XERO_CREDIT_COLUMNS)
    for cn in _of_kind(run, DocKind.CREDIT):
        for line in _xero_lines(cn, st, -1):
            w.writerow([*_xero_contact(cn), csv_safe(cn.number), csv_safe(cn.corrects or cn.reason),
                        cn.issue_date.strftime(fmt), "", *line])
    return out.getvalue()


USERS_COLUMNS = ("RosterRow", "Client", "UserID", "Name", "Type", "Billing")


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _csv_column(values: pd.Series, neutralise: bool = True) -> pa.Array:
    """A text column as CSV fields, column at a time (Arrow): blank for an empty cell, neutralised like every CSV
    field (an apostrophe before = + - @, tab, CR or LF), and quoted as the csv module quotes (a field holding a
    comma, a quote, CR or LF in quotes, its quotes doubled)."""
    text = pa.array(values.astype("str"), pa.large_string())
    if neutralise:
        risky = pc.match_substring_regex(text, r"^[=+\-@\t\r\n]")
        if pc.any(risky).as_py():
            text = pc.if_else(risky, pc.binary_join_element_wise(_large("'"), text, _large("")), text)
    quote = pc.match_substring_regex(text, r'[",\r\n]')
    if pc.any(quote).as_py():
        quoted = pc.binary_join_element_wise(_large('"'), pc.replace_substring(text, '"', '""'), _large('"'),
                                              _large(""))
        text = pc.if_else(quote, quoted, text)
    return pc.fill_null(text, "")


def users_csv(run: Run, chunk: int = 100_000) -> str:
    """Every Roster row with the reason it is, or is not, billed (the evidence behind seat counts). Written
    ``chunk`` rows at a time, a column at a time (Arrow); the same bytes as the csv module writes."""
    roster = run.book.roster
    reasons = run.user_reasons()
    parts = [",".join(USERS_COLUMNS) + "\r\n"]
    for a in range(0, len(roster), chunk):
        part = roster.iloc[a:a + chunk]
        rows = pc.cast(pa.array(part["row"].to_numpy(np.int64)), pa.large_string())
        fields = [_csv_column(part[c]) for c in ("client", "user", "name", "type")]
        why = _csv_column(reasons.iloc[a:a + chunk], neutralise=False)
        lines = pc.binary_join_element_wise(rows, *fields, why, _large(","))
        one = pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines)
        parts.append(pc.binary_join(one, _large("\r\n"))[0].as_py() + ("\r\n" if len(lines) else ""))
    return "".join(parts)
