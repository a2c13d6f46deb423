"""The accounting import files column by column against the products' documented import templates, and the
Address cell cut into Xero's address columns."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from perseat_addin.outputs.accounting import (
    QUICKBOOKS_COLUMNS,
    XERO_COLUMNS,
    XERO_CREDIT_COLUMNS,
    PostalAddress,
    postal_address,
)

# Xero ▸ Business ▸ Invoices ▸ Import: the columns of its SalesInvoiceTemplate.csv, in order (* = required).
XERO_TEMPLATE = (
    "*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
    "POCity", "PORegion", "POPostalCode", "POCountry", "*InvoiceNumber", "Reference", "*InvoiceDate", "*DueDate",
    "Total", "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount", "*AccountCode",
    "*TaxType", "TaxAmount", "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2", "Currency",
    "BrandingTheme",
)
# QuickBooks Online ▸ Import data ▸ Invoices: the headers it maps by itself (Invoice no., Customer, Invoice
# date, Due date, Terms, Memo, Item (Product/Service), Item description, Item quantity, Item rate, Item amount,
# Item tax code, Service date), plus Currency for multicurrency companies.
QUICKBOOKS_TEMPLATE = (
    "InvoiceNo", "Customer", "InvoiceDate", "DueDate", "Terms", "Memo", "Item(Product/Service)",
    "ItemDescription", "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode", "Currency", "ServiceDate",
)


def test_the_column_lists_are_the_documented_templates() -> None:
    assert XERO_COLUMNS == XERO_TEMPLATE
    assert QUICKBOOKS_COLUMNS == QUICKBOOKS_TEMPLATE
    # the credit note import is the invoice template with its number and date renamed, without DueDate/Total
    swapped = tuple({"*InvoiceNumber": "*CreditNoteNumber", "*InvoiceDate": "*CreditNoteDate"}.get(c, c)
                    for c in XERO_TEMPLATE if c not in ("*DueDate", "Total"))
    assert swapped == XERO_CREDIT_COLUMNS


@pytest.mark.parametrize(("address", "expected"), [
    ("12 Harbor Road, Portland, ME 04101",
     PostalAddress(("12 Harbor Road", "", "", ""), "Portland", "ME", "04101")),
    ("5 Terminal Way\nSuite 200\nSouth Portland, ME 04106-1234\nUSA",
     PostalAddress(("5 Terminal Way", "Suite 200", "", ""), "South Portland", "ME", "04106-1234", "United States")),
    ("1 High St, London SW1A 1AA, UK",
     PostalAddress(("1 High St", "", "", ""), "London", "", "SW1A 1AA", "United Kingdom")),
    ("Unter den Linden 5\n10117 Berlin\nGermany",
     PostalAddress(("Unter den Linden 5", "", "", ""), "Berlin", "", "10117", "Germany")),
    ("100 Queen St W\r\nToronto, ON M5H 2N2\r\nCanada",
     PostalAddress(("100 Queen St W", "", "", ""), "Toronto", "ON", "M5H 2N2", "Canada")),
    ("Level 3, 50 Pitt St, Sydney NSW 2000, Australia",
     PostalAddress(("Level 3", "50 Pitt St", "", ""), "Sydney", "NSW", "2000", "Australia")),
    ("12 Harbor Road, Portland, ME", PostalAddress(("12 Harbor Road", "", "", ""), "Portland", "ME")),
    ("Just a name", PostalAddress(("Just a name", "", "", ""))),
    ("", PostalAddress(("", "", "", ""))),
    ("A\nB\nC\nD\nE\nPortland, ME 04101", PostalAddress(("A", "B", "C", "D, E"), "Portland", "ME", "04101")),
])
def test_an_address_is_cut_into_street_city_region_code_and_country(address: str,
                                                                    expected: PostalAddress) -> None:
    assert postal_address(address) == expected


def test_nothing_of_an_address_is_dropped() -> None:
    for address in ("Suite 9, 1 Long Road, Somewhere odd", "PO Box 12\nHamlet\nRegion X", "a,,b,\n,c"):
        got = postal_address(address)
        kept = " ".join([*got.lines, got.city, got.region, got.postal_code])
        for word in address.replace(",", " ").split():
            assert word in kept, (address, got)


def test_the_xero_file_puts_the_templates_addresses_in_their_columns(tmp_path: Path) -> None:
    template = Path(__file__).parents[2] / "workbook_template.xlsm"
    proc = subprocess.run([sys.executable, "-m", "perseat_addin.cli", "invoice", str(template), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "xero.csv").read_text("utf-8-sig"))))
    acme = [r for r in rows if r["*ContactName"] == "Acme Dental Group"]
    assert acme and all(
        (r["POAddressLine1"], r["POAddressLine2"], r["POCity"], r["PORegion"], r["POPostalCode"])
        == ("12 Harbor Road", "", "Portland", "ME", "04101") for r in acme)
    for r in rows:  # no city, state or ZIP left in a street column
        assert not any(r[f"POAddressLine{i}"].endswith(("ME", "04101")) for i in range(1, 5)), r
        assert r["POCity"] and r["PORegion"] == "ME" and r["POPostalCode"].startswith("04"), r
