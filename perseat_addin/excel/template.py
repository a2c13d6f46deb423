"""Build ``workbook_template.xlsm``: every SPEC §3 table with a fictional MSP's sample data.

The build is a pure function of this file: fixed document dates, fixed zip
timestamps, so two builds are byte-identical. Extend it by adding a sheet spec
to :func:`template_sheets` (or post-processing the package in :func:`build`).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import re
import textwrap
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from defusedxml import ElementTree

from perseat_addin.engine.advice import recommend_plan, recommend_price
from perseat_addin.engine.corrections import BILLED, BILLED_COLUMNS
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.ledger import INVOICE_COLUMNS, LINE_COLUMNS
from perseat_addin.engine.measures import billable_users, usage_per_user
from perseat_addin.errors import PerseatError
from perseat_addin.excel.vbaproject import build_vba_project
from perseat_addin.model import DEFAULT_USER_TYPES, Book
from perseat_addin.workbook.load import SETTING_ABOUT, SETTING_CHOICES, load
from perseat_addin.workbook.package import atomic_write, macro_enable
from perseat_addin.workbook.schema import SCHEMA

FIXED_DATE = dt.datetime(2026, 11, 1, 9, 0, 0)
XL_LAST_ROW = 1_048_575  # zero-based: Excel's last row


@dataclass
class SheetSpec:
    """One sheet holding one Excel table named like the sheet."""

    name: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    widths: dict[str, float] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)  # header → number format
    note: str = ""
    formulas: dict[str, str] = field(default_factory=dict)  # header → calculated column formula
    cached: dict[tuple[int, str], Any] = field(default_factory=dict)  # (row index, header) → formula result
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header → its drop-down list
    cells: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # A1 cell beside the table → (value or
    # formula, the formula's cached result)
    lists: dict[str, str] = field(default_factory=dict)  # header → defined name of its drop-down (LIST_NAMES)
    cell_choices: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict)  # one cell's drop-down
    wrap: tuple[str, ...] = ()  # headers whose text wraps (their rows are made tall enough)
    cell_formats: dict[str, str] = field(default_factory=dict)  # A1 cell beside the table → its number format
    cell_lists: dict[str, str] = field(default_factory=dict)  # A1 cell beside the table → its drop-down (LIST_NAMES)
    cell_width: float = 62  # width of the columns holding ``cells``


StartRow = tuple[str, str, str]
"""A row of the Start here sheet: kind (title, text, heading, item), the left cell's text, the right cell's."""


@dataclass
class ExcelParts:
    """What makes the file an Excel application: names, config sheet, VBA project, ribbon."""

    names: dict[str, str] = field(default_factory=dict)  # defined name → formula
    config: Sequence[tuple[str, str]] = ()  # the xlwings.conf sheet: key, value from A1 down
    vba_project: bytes | None = None
    vba_codename: str = "ThisWorkbook"
    custom_ui: bytes | None = None  # customUI/customUI.xml (Office 2007 namespace, survives openpyxl)
    start_here: Sequence[StartRow] = ()  # the first sheet, "Start here", active on open (none when empty)


CUSTOM_UI_REL = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"

# Named values the Clients formula columns use; each looks its Setting up by name.
SETTING_NAMES = {
    "PeriodStart": '=DATEVALUE(INDEX(Settings[Value],MATCH("BillingPeriod",Settings[Setting],0))&"-01")',
    "PeriodEnd": "=EOMONTH(PeriodStart,0)",
    "LaborCostPerHour": '=INDEX(Settings[Value],MATCH("LaborCostPerHour",Settings[Setting],0))',
    "TargetMargin": '=INDEX(Settings[Value],MATCH("TargetMargin",Settings[Setting],0))',
    "PriceStep": '=INDEX(Settings[Value],MATCH("PriceStep",Settings[Setting],0))',
}

# Clients formula columns: the Excel functions over the workbook handle Book (one parse of the workbook per
# recalculation, SPEC §5), whose cells sit beside the Settings table. Excel 2007-style structured references
# (Clients[[#This Row],[Client]]) so LibreOffice reads them too.
_ROW = "Clients[[#This Row],[{}]]"
CLIENT_FORMULAS = {
    "BillableUsers": f"=BILLABLEUSERS(Book,{_ROW.format('Client')},PeriodEnd)",
    "Devices": f"=COUNTIFS(Devices[Client],{_ROW.format('Client')})",
    "MonthlyCharge": f"=CLIENTCHARGE(Book,{_ROW.format('Client')})",
    "HoursPerUser": f'=USAGEPERUSER(Book,{_ROW.format("Client")},PeriodStart,"hours")',
    "RecommendedPrice": f"=RECOMMENDPRICE({_ROW.format('HoursPerUser')},LaborCostPerHour,TargetMargin,0,PriceStep)",
    "RecommendedPlan": f"=RECOMMENDPLAN({_ROW.format('HoursPerUser')},Plans[#All],Tiers[#All],"
                       f"{_ROW.format('BillableUsers')},{_ROW.format('Plan')})",
}

# The handle cells: Usage read once (UsageBook: the columns billing reads, Client to Billable; Ticket, Source
# and Ref are for people), then the whole workbook read and priced once (Book). Book takes the Clients
# table's own columns only (Client to End): its formula columns use Book.
HANDLE_CELLS = {
    "Book": ("E2", "=PERSEATBOOK(Settings[#All],Plans[#All],Tiers[#All],UserTypes[#All],"
                   "Clients[[#All],[Client]:[End]],Roster[#All],Devices[#All],AddOns[#All],UsageBook)"),
    "UsageBook": ("E5", "=PERSEATUSAGE(Usage[[#All],[Client]:[Billable]])"),
}
HANDLE_LABELS = {
    "E1": "Book: the workbook, read and priced once (the Clients columns use it)",
    "E4": "UsageBook: the Usage table, read once (Book uses it)",
}
STALE_HANDLE = "#000000-0"
"""The id of the handles saved in the template: never issued, so a per-client cell that reads one before Book is
recomputed asks for a recalculation instead of answering."""

# The Quote sheet: a prospect's cost on the chosen plan and on every plan, priced by SEATCHARGE like
# ``perseat quote``. Its inputs sit beside the table (defined names below); the table lists the plans.
QUOTE_INPUTS = {"QuoteProspect": "H3", "QuoteUsers": "H4", "QuoteDevices": "H5", "QuotePlan": "H6"}
_QROW = "Quote[[#This Row],[{}]]"
QUOTE_FORMULAS = {
    "Monthly": f"=SEATCHARGE(QuoteUsers,{_QROW.format('Plan')},Plans[#All],Tiers[#All],QuoteDevices)",
    "Annual": f"={_QROW.format('Monthly')}*12",
}
QUOTE_CHOSEN = {  # cell → (label cell, label, formula)
    "H8": ("G8", "Chosen plan: monthly", "=SEATCHARGE(QuoteUsers,QuotePlan,Plans[#All],Tiers[#All],QuoteDevices)"),
    "H9": ("G9", "Chosen plan: annual", "=H8*12"),
    "H10": ("G10", "Chosen plan: users charged", "=BILLEDSEATS(QuoteUsers,QuotePlan,Plans[#All])"),
}
QUOTE_SAMPLE = ("Casco Marine", 12, 0, "Standard")
"""The sample prospect: name, users, shared devices, plan."""


XLWINGS_CONF = (
    ("UDF Modules", "perseat_addin.udfs"),
    ("Use UDF Server", "False"),
    ("Show Console", "False"),
    ("ADD_WORKBOOK_TO_PYTHONPATH", "False"),
)


D = dt.date

YES_NO = ("Yes", "No")
"""The drop-down of a Yes/No column."""

LIST_NAMES: dict[str, tuple[str, str, str]] = {
    "PlanList": ("Plans", "Plan", "a plan"),
    "TypeList": ("UserTypes", "Type", "a user type"),
    "ClientList": ("Clients", "Client", "a client"),
}
"""Defined names holding one table column (``PlanList`` is ``Plans[Plan]``), the sources of the drop-downs
bound to a table: Excel's list validation takes a name but not a structured reference, and the name follows
the table as rows are added, so a new plan is in every Plan drop-down at once."""

TABLE_LISTS: dict[tuple[str, str], str] = {
    ("Tiers", "Plan"): "PlanList",
    ("Clients", "Plan"): "PlanList",
    ("Roster", "Plan"): "PlanList",
    ("Roster", "Type"): "TypeList",
    ("Roster", "Client"): "ClientList",
    ("Devices", "Client"): "ClientList",
    ("AddOns", "Client"): "ClientList",
    ("Usage", "Client"): "ClientList",
}
"""(table, column) → the defined name of its drop-down."""

CAPITALISED = frozenset({"Status", "Billable"})
"""Choice columns whose words are shown capitalised (Active, Device); the others as the engine spells them."""


def schema_choices(table: str, header: str) -> tuple[str, ...]:
    """The drop-down of a SPEC column: Yes/No, or the words the loader accepts (none for other columns)."""
    col = next((c for c in SCHEMA.get(table, ()) if c.name == header), None)
    if col is None:
        return ()
    if col.kind == "yesno":
        return YES_NO
    if col.kind == "choice":
        return tuple(v.capitalize() if header in CAPITALISED else v for v in col.choices)
    return ()


def with_drop_downs(spec: SheetSpec) -> SheetSpec:
    """``spec`` with a drop-down on every column that takes a Yes/No, a word from a list or a row of
    another table (Plans, UserTypes, Clients); the Settings Value cells of settings that take a word."""
    choices = {h: c for h in spec.headers if (c := schema_choices(spec.name, h))}
    lists = {h: name for (table, h), name in TABLE_LISTS.items() if table == spec.name and h in spec.headers}
    cells = dict(spec.cell_choices)
    if spec.name == "Settings" and "Value" in spec.headers:
        for i, row in enumerate(spec.rows):
            if str(row[0]) in SETTING_CHOICES:
                cells[(i, "Value")] = SETTING_CHOICES[str(row[0])]
    return replace(spec, choices={**choices, **spec.choices}, lists={**lists, **spec.lists}, cell_choices=cells)


def template_sheets() -> list[SheetSpec]:
    """The sample workbook: Harborview IT Services and eight clients, billing November 2026."""
    settings = [
        ("MSPName", "Harborview IT Services LLC"),
        ("MSPAddress", "410 Wharf Street, Suite 3, Portland, ME 04101"),
        ("MSPEmail", "billing@harborview-it.example"),
        ("Phone", "+1 (207) 555-0148"),
        ("TaxID", "EIN 47-1234567"),
        ("PaymentInstructions", "Bank transfer (ACH): Casco Bay Bank, routing 011200365, account 4401 2297 18\n"
                                "Card or ACH online: pay.harborview-it.example/invoices"),
        ("RemitTo", "Harborview IT Services LLC\nPO Box 7731\nPortland, ME 04112"),
        ("LogoFile", ""),
        ("Currency", "USD"),
        ("BillingPeriod", "2026-11"),
        ("InvoicePrefix", "HV-"),
        ("CreditPrefix", "CN-"),
        ("NextInvoiceNumber", 1001),
        ("PaymentTermsDays", 30),
        ("DefaultTaxRate", 0),
        ("ProrationMode", "daily"),
        ("DayCount", "actual"),
        ("SnapshotDay", 1),
        ("BillingTiming", "arrears"),
        ("Rounding", "half-up"),
        ("LaborCostPerHour", 55),
        ("TargetMargin", 0.35),
        ("PriceStep", 5),
        ("OutputFolder", "invoices"),
        ("CsvDateFormat", ""),
        ("QuickBooksItem", "Managed services"),
        ("XeroAccountCode", "200"),
        ("XeroTaxType", "Tax on Sales"),
        ("XeroTaxExemptType", "Tax Exempt"),
        ("EmailSubject", "Invoice {invoice} from Harborview IT Services, {period}"),
        ("EmailBody", "Dear {client},\n\nPlease find attached invoice {invoice} for {period}: {total}, due {due}. "
                      "Payment details are on the invoice.\n\nThank you,\nHarborview IT Services billing"),
        ("AttachUserList", "No"),
        ("PSA", ""),
    ]
    plans = [
        ("Standard", 95, "flat", 0, 0, "users", 35, 1.5, 90, "Yes",
         "Helpdesk, patching, monitoring and backup per user"),
        ("Premium", 145, "flat", 5, 0, "users", 35, None, 0, "Yes",
         "Standard plus security stack and unlimited on-site support"),
        ("Essentials", 65, "flat", 0, 250, "users", 0, 1, 95, "Yes",
         "Remote helpdesk and patching for small offices"),
        ("Volume Pro", 60, "volume", 0, 0, "users", 0, None, 0, "Yes",
         "Per-user price falls for every user once a tier is reached"),
        ("Growth", 70, "graduated", 0, 0, "users", 0, None, 0, "Yes",
         "Each user priced at the rate of their own tier"),
        ("Shop Floor", 55, "flat", 4, 0, "greater", 0, None, 0, "Yes",
         "Users or shared kiosks, whichever is greater"),
    ]
    tiers = [
        ("Volume Pro", 10, 60), ("Volume Pro", 25, 55), ("Volume Pro", None, 50),
        ("Growth", 5, 70), ("Growth", 15, 62.5), ("Growth", None, 55),
    ]
    user_types = [(t.name, t.billable.value, t.min_active_days, t.definition) for t in DEFAULT_USER_TYPES]
    clients = [
        ("Acme Dental Group", "Standard", "Active", "Maria Alvarez", "ap@acmedental.example",
         "12 Harbor Road, Portland, ME 04101", "PO-7731", 0, None, None),
        ("Birch & Lowe LLP", "Premium", "Active", "Tom Birch", "accounts@birchlowe.example",
         "88 Congress Street, Portland, ME 04101", "", 0.05, None, None),
        ("Cobalt Logistics", "Volume Pro", "Active", "Dana Cho", "finance@cobalt-log.example",
         "5 Terminal Way, South Portland, ME 04106", "CL-2026-114", 0, None, None),
        ("Delta Pediatrics", "Growth", "Active", "Dr. Priya Nair", "office@deltapeds.example",
         "230 Forest Ave, Portland, ME 04103", "", 0, None, None),
        ("Elm Street Bakery", "Essentials", "Active", "Sam Okafor", "sam@elmbakery.example",
         "7 Elm Street, Portland, ME 04101", "", 0, None, None),
        ("Fjord Manufacturing", "Shop Floor", "Active", "Lars Holm", "ap@fjordmfg.example",
         "1 Mill Road, Westbrook, ME 04092", "FM-88", 0, None, None),
        ("Granite Accounting", "Standard", "Active", "Helen Park", "helen@graniteacct.example",
         "19 Exchange Street, Portland, ME 04101", "", 0.10, 0.055, None),
        ("Harbor Yacht Club", "Essentials", "Inactive", "Ray Dunn", "office@harboryc.example",
         "2 Pier Lane, Falmouth, ME 04105", "", 0, None, None),
    ]
    roster: list[tuple[Any, ...]] = []

    since = D(2024, 3, 1)

    def users(client: str, domain: str, names: Sequence[str], typ: str = "Employee",
              start: dt.date | None = since, end: dt.date | None = None,
              plan: str = "", status: str = "Active", notes: str = "") -> None:
        for n in names:
            uid = n.lower().replace(" ", ".").replace("'", "") + "@" + domain
            roster.append((client, uid, n, uid, typ, plan, start, end, status, "Manual", notes))

    users("Acme Dental Group", "acmedental.example", [
        "Maria Alvarez", "John Reyes", "Keiko Tanaka", "Olivia Brooks", "Ethan Ward", "Grace Kim",
        "Liam Foster", "Nora Patel", "Owen Hughes", "Ruby Chen"])
    users("Acme Dental Group", "acmedental.example", ["Ava Martin", "Noah Bell"],
          start=D(2026, 11, 15), notes="New hygienists, started Nov 15")
    users("Acme Dental Group", "acmedental.example", ["Peter Lang"], end=D(2026, 11, 20),
          notes="Left the practice; last day Nov 20")
    users("Acme Dental Group", "acmedental.example", ["Front Desk"], typ="Shared",
          notes="Shared reception login; workstation billed as a device")
    users("Birch & Lowe LLP", "birchlowe.example", [
        "Tom Birch", "Alice Lowe", "Mark Stone", "Julia Price"])
    users("Birch & Lowe LLP", "birchlowe.example", ["Scan Service"], typ="Service",
          notes="Copier scan-to-email account")
    users("Cobalt Logistics", "cobalt-log.example", [f"Driver {i:02d}" for i in range(1, 25)],
          start=D(2025, 1, 6))
    users("Cobalt Logistics", "cobalt-log.example", ["Dana Cho", "Victor Ruiz"], start=D(2023, 5, 1))
    users("Cobalt Logistics", "cobalt-log.example", ["Ops Manager"], start=D(2023, 5, 1),
          plan="Premium", notes="Premium plan for the operations manager")
    users("Delta Pediatrics", "deltapeds.example", [
        "Priya Nair", "Ben Carter", "Chloe Adams", "Diego Flores", "Emma Scott", "Felix Young",
        "Gina Lopez", "Hannah Reed", "Ivan Petrov"])
    users("Elm Street Bakery", "elmbakery.example", ["Sam Okafor", "Lily Okafor"])
    users("Fjord Manufacturing", "fjordmfg.example", ["Lars Holm", "Anna Berg", "Erik Dahl"])
    users("Fjord Manufacturing", "fjordmfg.example", ["Floor Kiosk Login"], typ="Shared",
          notes="Shared by the shop floor; kiosks are on the Devices sheet")
    users("Granite Accounting", "graniteacct.example", [
        "Helen Park", "Marcus Lee", "Sofia Rossi", "Tariq Aziz", "Uma Das", "Wes Hall"])
    users("Granite Accounting", "graniteacct.example", ["Carla Mendes"], typ="Contractor",
          start=D(2026, 10, 1), end=D(2027, 1, 31), notes="Tax-season contractor")
    users("Granite Accounting", "graniteacct.example", ["Jin Woo"], typ="Intern",
          start=D(2026, 11, 27), notes="Intern from Nov 27: under MinActiveDays this month")
    users("Granite Accounting", "graniteacct.example", ["Backup Agent"], typ="Service")
    users("Granite Accounting", "graniteacct.example", ["Auditor Guest"], typ="Guest",
          notes="External auditor (guest account)")
    users("Granite Accounting", "graniteacct.example", ["Marcus Lee"], start=D(2025, 2, 1),
          notes="Duplicate row from an old import: same UserID, billed once")
    users("Granite Accounting", "graniteacct.example", ["Old Mailbox"], status="Disabled",
          notes="Sign-in blocked")
    users("Harbor Yacht Club", "harboryc.example", ["Ray Dunn", "Commodore Desk"])
    devices = [
        ("Acme Dental Group", "ACME-FD-01", "Front desk PC", "Workstation", D(2024, 3, 1), None),
    ] + [
        ("Fjord Manufacturing", f"FJ-KIOSK-{i}", f"Shop floor kiosk {i}", "Kiosk", D(2025, 6, 1), None)
        for i in range(1, 7)
    ]
    recurring = [
        ("Acme Dental Group", "Email archiving", 1, 4, "Yes", None, None, "Yes"),
        ("Birch & Lowe LLP", "Firewall management", 1, 120, "No", None, None, "Yes"),
        ("Elm Street Bakery", "POS terminal support", 2, 25, "No", D(2026, 11, 10), None, "Yes"),
        ("Delta Pediatrics", "Security awareness training", 1, 3.5, "Yes", None, None, "No"),
    ]
    addons: list[tuple[Any, ...]] = [(*a, "monthly") for a in recurring]
    addons.append(("Elm Street Bakery", "POS terminal installation", 1, 150, "No", D(2026, 11, 10), None, "Yes",
                   "once"))
    # contract dates (Start, End) and payment terms where they differ from Settings
    contracts: dict[str, tuple[Any, ...]] = {"Fjord Manufacturing": (15, D(2025, 6, 1), D(2027, 5, 31))}
    usage: list[tuple[Any, ...]] = []
    hours = {"Acme Dental Group": [3.5, 2.0, 4.25, 1.5, 2.75, 3.0, 2.5, 0.75],
             "Birch & Lowe LLP": [1.5, 2.0, 0.5], "Cobalt Logistics": [2.0, 1.25, 3.0, 1.0],
             "Delta Pediatrics": [4.0, 2.5, 3.5, 1.0, 2.0, 3.0, 4.5, 2.5, 3.0, 1.5], "Elm Street Bakery": [0.5],
             "Fjord Manufacturing": [1.5, 2.5], "Granite Accounting": [1.0, 0.75, 2.0]}
    for client, hs in hours.items():
        for i, h in enumerate(hs):
            usage.append((client, "", D(2026, 11, 2 + 3 * i), 1, h, "Yes"))
    # time the MSP does not bill (Billable No): counted as work in the report, never as overage — Acme's
    # overage line reads 20.25 h used with or without its 2 h of warranty rework
    usage.append(("Acme Dental Group", "", D(2026, 11, 20), 1, 2.0, "No"))
    usage.append(("Birch & Lowe LLP", "", D(2026, 11, 24), 0, 0.5, "No"))
    # the eleven months before, for the report's trailing-three-month figures and 12-month trend
    scales = (0.7, 0.75, 0.9, 0.8, 0.85, 0.95, 0.9, 0.8, 1.0, 1.1, 0.9)
    for k, scale in enumerate(scales):
        year, month = (2025, 12) if k == 0 else (2026, k)
        for client, hs in hours.items():
            for i, h in enumerate(hs):
                day = min(2 + 3 * i, 28)
                usage.append((client, "", D(year, month, day), 1, round(h * scale * 4) / 4, "Yes"))
    sheets = [
        SheetSpec("Settings", ("Setting", "Value", "About"), [(*s, SETTING_ABOUT[s[0]]) for s in settings],
                  {"Setting": 22, "Value": 46, "About": 80}, wrap=("Setting", "Value", "About"),
                  cells=handle_cells()),
        SheetSpec("Plans", ("Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate",
                            "IncludedHours", "OverageRate", "Taxable", "Description"), plans,
                  {"Plan": 14, "Description": 56}, {"Rate": "#,##0.00", "MinFee": "#,##0.00",
                                                    "DeviceRate": "#,##0.00", "OverageRate": "#,##0.00"}),
        SheetSpec("Tiers", ("Plan", "UpTo", "Rate", "FlatFee"), [(*t, None) for t in tiers], {"Plan": 14},
                  {"Rate": "#,##0.00", "FlatFee": "#,##0.00"}),
        SheetSpec("UserTypes", ("Type", "Billable", "MinActiveDays", "Definition"), user_types,
                  {"Definition": 60}),
        SheetSpec("Clients", ("Client", "Plan", "Status", "BillingContact", "BillingEmail", "Address",
                              "PONumber", "DiscountPct", "TaxRate", "ProrationMode", "PaymentTermsDays", "Start",
                              "End"), [(*c, *contracts.get(c[0], (None, None, None))) for c in clients],
                  {"Client": 22, "BillingContact": 16, "BillingEmail": 28, "Address": 40,
                   "BillableUsers": 14, "MonthlyCharge": 15, "HoursPerUser": 14, "RecommendedPrice": 17,
                   "RecommendedPlan": 17},
                  {"DiscountPct": "0%", "TaxRate": "0.0%", "MonthlyCharge": "#,##0.00", "HoursPerUser": "0.00",
                   "RecommendedPrice": "#,##0.00", "Start": "yyyy-mm-dd", "End": "yyyy-mm-dd"},
                  formulas=dict(CLIENT_FORMULAS)),
        SheetSpec("Roster", ("Client", "UserID", "Name", "Email", "Type", "Plan", "Start", "End",
                             "Status", "Source", "Notes"), roster,
                  {"Client": 22, "UserID": 34, "Name": 18, "Email": 34, "Notes": 44},
                  {"Start": "yyyy-mm-dd", "End": "yyyy-mm-dd"}),
        SheetSpec("Devices", ("Client", "DeviceID", "Name", "Kind", "Start", "End"), devices,
                  {"Client": 22, "DeviceID": 14, "Name": 22},
                  {"Start": "yyyy-mm-dd", "End": "yyyy-mm-dd"}),
        SheetSpec("AddOns", ("Client", "Description", "Quantity", "UnitPrice", "PerUser", "Start",
                             "End", "Taxable", "Frequency"), addons, {"Client": 22, "Description": 28},
                  {"UnitPrice": "#,##0.00", "Start": "yyyy-mm-dd", "End": "yyyy-mm-dd"}),
        SheetSpec("Usage", ("Client", "UserID", "Date", "Tickets", "Hours", "Billable", "Ticket", "Source", "Ref"),
                  [(*u, None, None, None) for u in usage], {"Client": 22, "UserID": 30, "Source": 26, "Ref": 16},
                  {"Date": "yyyy-mm-dd"}),
        SheetSpec("Invoices", INVOICE_COLUMNS, SAMPLE_INVOICES,
                  {"Client": 22, "File": 30, "Reason": 40},
                  {"IssueDate": "yyyy-mm-dd", "DueDate": "yyyy-mm-dd", "Subtotal": "#,##0.00",
                   "Discount": "#,##0.00", "Tax": "#,##0.00", "Total": "#,##0.00"}),
        SheetSpec("InvoiceLines", LINE_COLUMNS, SAMPLE_LINES, {"Description": 60},
                  {"UnitPrice": "#,##0.00", "Amount": "#,##0.00"}),
        SheetSpec("ChangeLog", ("Timestamp", "Action", "Client", "UserID", "Field", "Old", "New",
                                "Source"), [], {"Timestamp": 20, "Client": 22, "UserID": 30},
                  {"Timestamp": "yyyy-mm-dd hh:mm"}),
        SheetSpec("Mappings", ("Source", "Import", "Field", "Column", "Notes"), MAPPINGS,
                  {"Source": 16, "Field": 12, "Column": 24, "Notes": 60}),
        SheetSpec(BILLED, BILLED_COLUMNS, [], {"Client": 22, "Users": 30, "Devices": 16, "Rules": 60},
                  {"Amount": "#,##0.00"}),
        quote_sheet([p[0] for p in plans]),
    ]
    return [with_drop_downs(s) for s in sheets]


def quote_sheet(plans: Sequence[str], cached: dict[Any, Any] | None = None) -> SheetSpec:
    """The Quote sheet: inputs (Prospect, Users, Devices, Plan with the plans' drop-down), the chosen plan's
    monthly and annual cost, and every plan side by side, all by SEATCHARGE; ``cached``: the results saved."""
    cached = cached or {}
    prospect, users, devices, plan = QUOTE_SAMPLE
    cells: dict[str, tuple[Any, Any]] = {
        "G1": ("Quote for a prospect", None),
        "G3": ("Prospect", None), "G4": ("Users", None), "G5": ("Shared devices", None), "G6": ("Plan", None),
        "H3": (prospect, None), "H4": (users, None), "H5": (devices, None), "H6": (plan, None),
    }
    for ref, (label_ref, label, formula) in QUOTE_CHOSEN.items():
        cells[label_ref] = (label, None)
        cells[ref] = (formula, cached.get(ref))
    return SheetSpec("Quote", ("Plan",), [(p,) for p in plans], {"Plan": 16, "Monthly": 14, "Annual": 14},
                     {"Monthly": "#,##0.00", "Annual": "#,##0.00"}, formulas=dict(QUOTE_FORMULAS), cells=cells,
                     cell_formats={"H8": "#,##0.00", "H9": "#,##0.00", "H10": "0", "H3": "@", "H4": "0", "H5": "0"},
                     cell_lists={"H6": "PlanList"}, cell_width=30, lists={"Plan": "PlanList"},
                     cached={k: v for k, v in cached.items() if isinstance(k, tuple)})


SAMPLE_INVOICES: list[tuple[Any, ...]] = [
    ("HV-0990", "Invoice", None, "Birch & Lowe LLP", "2026-10", D(2026, 11, 1), D(2026, 12, 1), 845, -42.25, 0,
     802.75, "Paid", "", 5, None),
    ("CN-0991", "Credit", "HV-0990", "Birch & Lowe LLP", "2026-10", D(2026, 11, 12), D(2026, 11, 12), -120, 6, 0,
     -114, "Final", "", None, "Firewall appliance offline Oct 20–31: October's management fee credited"),
]
"""The sample ledger: October's invoice for Birch & Lowe (paid) and a credit note against it."""

SAMPLE_LINES: list[tuple[Any, ...]] = [
    ("HV-0990", 1, "seats", "5 users × 145.00 Premium (minimum 5; 4 users), Oct 1–31", 5, 145, 725, "Yes"),
    ("HV-0990", 2, "addon", "Firewall management, Oct 1–31", 1, 120, 120, "Yes"),
    ("HV-0990", 3, "discount", "Discount 5%", 1, -42.25, -42.25, "No"),
    ("CN-0991", 1, "credit", "Credit for HV-0990 line 2: Firewall management, Oct 1–31", -1, 120, -120, "Yes"),
    ("CN-0991", 2, "discount", "Credit for HV-0990: its share of the discount", 1, 6, 6, "No"),
]


MAPPINGS: list[tuple[Any, ...]] = [
    ("HR system", "Roster", "UserID", "Work Email", "A sample mapping: `perseat import \"HR system\" FILE` "
     "or Import roster reads a file with these headers"),
    ("HR system", "Roster", "Name", "Employee Name", ""),
    ("HR system", "Roster", "Type", "Worker Type", "Values must be UserTypes (Employee, Contractor, ...)"),
    ("HR system", "Roster", "Status", "Employment Status", "Active/Inactive, Enabled/Disabled, Yes/No"),
    ("HR system", "Roster", "Created", "Hire Date", "Informational; new users start on the effective date"),
    ("Helpdesk log", "Usage", "Client", "Customer", "A usage mapping: `perseat import \"Helpdesk log\" FILE` adds "
     "rows to Usage"),
    ("Helpdesk log", "Usage", "Date", "Day", ""),
    ("Helpdesk log", "Usage", "Hours", "Duration", "1.5, 1:30 or 1h 30m"),
    ("Helpdesk log", "Usage", "Ticket", "Case", "Each case counts as one ticket, on its first day"),
]
"""Sample column mappings: one row per Roster field an export's column fills (Fields: see importers)."""


def write_workbook(path: str | Path, sheets: Sequence[SheetSpec], *, macro: bool | None = None,
                   parts: ExcelParts | None = None) -> None:
    """Write ``sheets`` as Excel tables; an .xlsm gets the macro-enabled content type."""
    parts = parts or ExcelParts()
    path = Path(path)
    macro = path.suffix.lower() == ".xlsm" if macro is None else macro
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False,
                                   "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"title": "Per-seat billing workbook", "author": "perseat-addin",
                       "created": FIXED_DATE})
    wb.set_calc_mode("auto")
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    cache: dict[str, Any] = {"yyyy-mm-dd": date_fmt}
    if parts.start_here:
        _write_start_here(wb, parts.start_here)
    tables = {spec.name for spec in sheets}
    used = {name for spec in sheets for name in (*spec.lists.values(), *spec.cell_lists.values())
            if LIST_NAMES[name][0] in tables}
    for spec in sheets:
        _write_table_sheet(wb, spec, cache, used)
    for name, formula in parts.names.items():
        wb.define_name(name, formula)
    for name in sorted(used):
        table, column, _ = LIST_NAMES[name]
        wb.define_name(name, f"={table}[{column}]")
    if parts.config:
        conf = wb.add_worksheet("xlwings.conf")
        conf.set_column(0, 0, 28)
        conf.set_column(1, 1, 40)
        for r, (key, value) in enumerate(parts.config):
            conf.write_string(r, 0, key)
            conf.write_string(r, 1, value)
        conf.hide()
    if parts.vba_project is not None:
        wb.add_vba_project(io.BytesIO(parts.vba_project), is_stream=True)
        wb.set_vba_name(parts.vba_codename)
    wb.close()
    data = buf.getvalue()
    if macro and parts.vba_project is None:
        data = macro_enable(data)
    if parts.custom_ui is not None:
        data = add_custom_ui(data, parts.custom_ui)
    atomic_write(path, data)


def _write_table_sheet(wb: xlsxwriter.Workbook, spec: SheetSpec, cache: dict[str, Any],
                       lists: Collection[str] = ()) -> None:
    """One table sheet; its drop-downs bound to a table only for the defined names in ``lists``."""
    ws = wb.add_worksheet(spec.name)
    headers = list(spec.headers) + [h for h in spec.formulas if h not in spec.headers]
    nrows = max(len(spec.rows), 1)
    columns = []

    def fmt_of(header: str) -> Any:
        text = spec.formats.get(header)
        if header in spec.wrap:
            key = f"wrap:{text or ''}"
            if key not in cache:
                cache[key] = wb.add_format({"text_wrap": True, "valign": "top", **({"num_format": text} if text
                                                                                   else {})})
            return cache[key]
        return cache.setdefault(text, wb.add_format({"num_format": text})) if text else None

    for j, h in enumerate(headers):
        fmt = fmt_of(h)
        col: dict[str, Any] = {"header": h}
        if fmt is not None:
            col["format"] = fmt
        if h in spec.formulas:
            col["formula"] = spec.formulas[h]
        columns.append(col)
        ws.set_column(j, j, spec.widths.get(h, max(10.0, len(h) + 3)), fmt)
    ws.add_table(0, 0, nrows, len(headers) - 1, {"name": spec.name, "columns": columns,
                                                  "style": "Table Style Medium 2"})
    for h, choices in spec.choices.items():  # the whole column below the header, rows added later included
        j = headers.index(h)
        ws.data_validation(1, j, XL_LAST_ROW, j, _choice_rule(h, choices, f"the values the billing reads in {h}"))
    for h, name in spec.lists.items():
        if name not in lists:  # the workbook lacks the table the list would come from
            continue
        j = headers.index(h)
        table, column, noun = LIST_NAMES[name]
        ws.data_validation(1, j, XL_LAST_ROW, j, {
            "validate": "list", "source": f"={name}", "error_type": "stop", "error_title": f"Not {noun}"[:32],
            "error_message": f"Type {noun} listed in the {table} table ({table} sheet, {column} column), or pick "
                             f"one from the drop-down. For a new one, add its row to {table} first: it then "
                             "appears in this list.",
        })
    for (i, h), choices in spec.cell_choices.items():
        j = headers.index(h)
        what = str(spec.rows[i][0]) if spec.rows[i] else h
        ws.data_validation(i + 1, j, i + 1, j, _choice_rule(what, choices, f"the values {what} takes; its About "
                                                                           "cell explains each"))
    for (i, h), value in spec.cached.items():  # the formulas' results, as Excel will compute them
        ws.write_formula(i + 1, headers.index(h), spec.formulas[h], fmt_of(h), value)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_paper(1)
    for i, row in enumerate(spec.rows, start=1):
        tall = max((_lines(str(v), spec.widths.get(h, 10.0)) for h, v in zip(spec.headers, row, strict=False)
                    if h in spec.wrap and v), default=1)
        if tall > 1:
            ws.set_row(i, 15 * tall)
        for j, v in enumerate(row):
            fmt = fmt_of(spec.headers[j])
            if v is None or v == "":
                continue
            if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                ws.write_datetime(i, j, dt.datetime(v.year, v.month, v.day), fmt or cache["yyyy-mm-dd"])
            elif isinstance(v, dt.datetime):
                ws.write_datetime(i, j, v, fmt or cache["yyyy-mm-dd"])
            elif isinstance(v, str) and v.startswith("="):
                ws.write_formula(i, j, v, fmt)
            else:
                ws.write(i, j, v, fmt)
    if spec.cells:
        label = cache.setdefault("label", wb.add_format({"bold": True, "text_wrap": True}))
        for ref, (value, result) in spec.cells.items():
            shown = spec.cell_formats.get(ref)
            fmt = cache.setdefault(f"cell:{shown}", wb.add_format({"num_format": shown})) if shown else None
            if isinstance(value, str) and value.startswith("=") and result is None:  # Excel computes it on open
                ws.write_formula(ref, value, fmt)
            elif isinstance(value, str) and value.startswith("="):
                ws.write_formula(ref, value, fmt, result)
            elif ref in spec.cell_lists or shown:  # an input: the plain value, not a label
                ws.write(ref, value, fmt)
            else:
                ws.write(ref, value, label)
        for ref, name in spec.cell_lists.items():
            if name in lists:
                table, column, noun = LIST_NAMES[name]
                ws.data_validation(ref, {"validate": "list", "source": f"={name}", "error_type": "stop",
                                         "error_title": f"Not {noun}"[:32],
                                         "error_message": f"Pick {noun} from the {table} table ({column} column)."})
        for letter in sorted({ref.rstrip("0123456789") for ref in spec.cells}):
            ws.set_column(f"{letter}:{letter}", spec.cell_width)
    ws.freeze_panes(1, 0)


def _choice_rule(what: str, choices: Sequence[str], source: str) -> dict[str, Any]:
    """A drop-down of fixed words that refuses anything else ("stop"), saying what to type and why."""
    listed = ", ".join(choices)
    text = f"Type one of: {listed}, or pick one from the drop-down ({source})."
    if len(text) > 255:  # Excel's limit for the message
        text = f"Pick a value from the drop-down ({source})."
    return {"validate": "list", "source": list(choices), "error_type": "stop",
            "error_title": f"Not a {what} value"[:32], "error_message": text}


def _lines(text: str, width: float, bold: bool = False) -> int:
    """How many lines ``text`` takes wrapped in a column ``width`` digits wide (a little generous: prose is
    narrower than digits, bold wider)."""
    chars = max(int(width * (0.95 if bold else 1.15)), 8)
    return sum(max(1, len(textwrap.wrap(part, chars))) for part in text.split("\n"))


def _write_start_here(wb: xlsxwriter.Workbook, rows: Sequence[StartRow]) -> None:
    """The first sheet, active on open: what the workbook is for, the monthly routine, the buttons, the sheets,
    the functions. Wrapped text in two columns; prints portrait, one page wide."""
    ws = wb.add_worksheet(START_HERE)
    widths = (34.0, 68.0)
    ws.set_column(0, 0, widths[0])
    ws.set_column(1, 1, widths[1])
    base = {"text_wrap": True, "valign": "top"}
    fmt = {
        "title": wb.add_format({**base, "bold": True, "font_size": 16, "font_color": "#1F3864"}),
        "heading": wb.add_format({"text_wrap": True, "valign": "bottom", "bold": True, "font_size": 12,
                                  "font_color": "#1F3864", "bottom": 1}),
        "text": wb.add_format(base),
        "label": wb.add_format({**base, "bold": True}),
    }
    for r, (kind, left, right) in enumerate(rows):
        if kind in ("title", "heading", "text"):
            text = left + (f" {right}" if right else "")
            ws.merge_range(r, 0, r, 1, text, fmt[kind])
            if kind == "text":
                ws.set_row(r, 15.0 * _lines(text, sum(widths)))
            else:  # a heading gets a blank line's space above it
                ws.set_row(r, 28.0 if kind == "heading" else 30.0)
        else:
            ws.write_string(r, 0, left, fmt["label"])
            ws.write_string(r, 1, right, fmt["text"])
            ws.set_row(r, 15.0 * max(_lines(left, widths[0], bold=True), _lines(right, widths[1])))
    ws.set_portrait()
    ws.set_paper(1)
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.hide_gridlines(2)
    ws.activate()


def add_custom_ui(data: bytes, custom_ui: bytes) -> bytes:
    """Add the ribbon: ``customUI/customUI.xml`` wired by a package relationship."""
    out = io.BytesIO()
    rel = (f'<Relationship Id="rIdPerseatUI" Type="{CUSTOM_UI_REL}" '
           'Target="customUI/customUI.xml"/>').encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "_rels/.rels" and CUSTOM_UI_REL.encode() not in body:
                body = body.replace(b"</Relationships>", rel + b"</Relationships>")
            dst.writestr(info, body)
        ui = zipfile.ZipInfo("customUI/customUI.xml", date_time=(1980, 1, 1, 0, 0, 0))
        ui.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(ui, custom_ui)
    return out.getvalue()


START_HERE = "Start here"
"""The first sheet: what the workbook is for and how to use it."""

SHEET_PURPOSES: dict[str, str] = {
    "Settings": "Your company, the month being billed (BillingPeriod), invoice numbering, and how charges are "
                "prorated, timed and rounded. The About column explains each value and its alternatives.",
    "Plans": "The plans you sell: rate per user, tiering, minimum users or minimum fee, device rate, included "
             "support hours and overage rate.",
    "Tiers": "The price tiers of volume and graduated plans: one row per tier (UpTo users at Rate); the top tier's "
             "UpTo is blank.",
    "UserTypes": "Which kinds of account are billed (Employee: yes; Service: no; Shared: as a device) and after "
                 "how many active days.",
    "Clients": "One row per client: plan, status, billing contact, discount, tax and contract dates. The columns "
               "on the right compute this month's users, charge and price advice with the Excel functions.",
    "Roster": "Every user of every client with Start and End dates, typed in or kept up to date by Import roster. "
              "Give a leaver an End date rather than deleting the row.",
    "Devices": "Shared devices (kiosks, shared PCs) billed at the plan's DeviceRate.",
    "AddOns": "Extra charges per client: monthly or once, per user or a fixed quantity.",
    "Usage": "Support time per client (tickets, hours), imported from your PSA or typed in: drives overage "
             "charges and the usage report.",
    "Invoices": "The invoice register: Draft rows from Generate invoices, Final after Finalize period, credit "
                "notes. Mark an invoice Paid in its Status.",
    "InvoiceLines": "Every line of every recorded invoice, written by the buttons.",
    "ChangeLog": "Every change an import made to the Roster: when, what, old and new value, and from which file.",
    "Mappings": "How to read an export the importer does not know: which of its columns fills which field.",
    "Quote": "A prospect's monthly and annual cost: type the users and shared devices, pick a plan; the table "
             "prices every plan side by side with SEATCHARGE. 'perseat quote' prints it as a PDF.",
    BILLED: "What each finalized invoice billed, per client and plan, written by Finalize period: a late Roster "
            "change to a past month is billed as a correction against it.",
}
"""What each table sheet is for, as the Start here sheet says it."""

ROUTINE: tuple[tuple[str, str], ...] = (
    ("Import roster", "Bring in each client's user export (Microsoft 365 or your PSA): joiners and leavers get "
                      "their dates. Or type the changes on the Roster sheet. Add the month's support time to "
                      "Usage the same way (a PSA time-entry export)."),
    ("Check workbook", "Lists every problem at once, with its sheet, row, column and fix. Repeat until it finds "
                       "none."),
    ("Generate invoices", "Prices BillingPeriod (Settings), records Draft invoices, and writes the PDFs and the "
                          "QuickBooks and Xero files to OutputFolder. Review them; after a fix, run it again."),
    ("Finalize period", "Marks the drafts Final, moves BillingPeriod and NextInvoiceNumber on to the next month "
                        "and saves. Final invoices never change; a mistake is fixed with a Credit note."),
    ("", "Send each client its PDF from OutputFolder and import quickbooks.csv or xero.csv into your accounting "
         "software."),
)
"""The monthly routine: (ribbon button, what to do)."""

BOOK_CELL = ("Book (Settings!E2) prices the whole workbook once; the Clients columns use it, so a 100,000-user "
             "Roster is read once per recalculation, not once per client. UsageBook (Settings!E5) reads Usage once "
             "for it, so editing the Roster does not read Usage again.")


def ribbon_buttons(custom_ui: bytes) -> list[tuple[str, str]]:
    """(label, explanation) of every button of the ribbon XML, in order."""
    root = ElementTree.fromstring(custom_ui)
    return [(b.get("label", ""), b.get("supertip") or b.get("screentip") or "")
            for b in root.iter() if b.tag.rsplit("}", 1)[-1] == "button"]


_VBA_FUNCTION = re.compile(r"^Function (\w+)\(([^)]*)\)", re.M)
_VBA_DESCRIPTION = re.compile(r'Macro:="(\w+)", _\s+Description:="((?:[^"]|"")*)"')


def excel_functions(vba_dir: Path) -> list[tuple[str, str]]:
    """(``NAME(arg, [optional])``, description) of every Excel function the VBA project declares."""
    described: dict[str, str] = {}
    for bas in sorted(vba_dir.glob("*.bas")):
        for m in _VBA_DESCRIPTION.finditer(bas.read_text(encoding="utf-8")):
            described[m.group(1)] = m.group(2).replace('""', '"')
    out = []
    for bas in sorted(vba_dir.glob("*.bas")):
        for m in _VBA_FUNCTION.finditer(bas.read_text(encoding="utf-8")):
            args = [a.strip() for a in m.group(2).split(",") if a.strip()]
            shown = ", ".join(f"[{a.removeprefix('Optional ').strip()}]" if a.startswith("Optional ") else a
                              for a in args)
            out.append((f"{m.group(1)}({shown})", described.get(m.group(1), "")))
    return out


def start_here_rows(sheets: Sequence[str], buttons: Sequence[tuple[str, str]],
                    functions: Sequence[tuple[str, str]]) -> list[StartRow]:
    """The Start here sheet: the workbook, the monthly routine, the buttons, the sheets, the drop-downs, the
    Book cell and the functions."""
    labels = {label for label, _ in buttons}
    rows: list[StartRow] = [
        ("title", "Per-seat billing: start here", ""),
        ("text", "This workbook bills your clients per user, every month. Keep Clients, Roster and Plans up to "
                 "date; the Per-Seat Billing tab on the ribbon prices the month, records the invoices and writes "
                 "the PDFs and accounting files. Cells with a drop-down accept only the values in their list.", ""),
        ("heading", "The monthly routine", ""),
    ]
    for n, (button, what) in enumerate(ROUTINE, start=1):
        rows.append(("item", f"{n}. {button}" if button in labels else f"{n}. Send", what))
    if "Usage & pricing report" in labels:
        rows.append(("item", "Any time: Usage & pricing report", "Who uses support most, what each client costs "
                     "to serve, and what to charge."))
    if buttons:
        rows.append(("heading", "The buttons (Per-Seat Billing tab)", ""))
        rows += [("item", label, tip) for label, tip in buttons]
    rows.append(("heading", "The sheets", ""))
    rows += [("item", name, SHEET_PURPOSES[name]) for name in sheets if name in SHEET_PURPOSES]
    rows += [
        ("heading", "Drop-downs", ""),
        ("item", "Plan, Type, Client", "Every Plan cell lists the Plans table, every Type cell the UserTypes "
                                       "table, every Client cell the Clients table. Add a new plan, type or client "
                                       "to its table first: it then appears in the lists."),
        ("item", "Words and Yes/No", "Tiering, Basis, Status, Billable, ProrationMode, Frequency and the Yes/No "
                                     "columns list the values the billing reads; so do the Settings ProrationMode, "
                                     "DayCount, BillingTiming, Rounding and CsvDateFormat cells."),
        ("heading", "The Book cell", ""),
        ("item", "Settings!E2", BOOK_CELL),
    ]
    if functions:
        rows.append(("heading", "The Excel functions (Windows, with the xlwings add-in)", ""))
        rows += [("item", name, what) for name, what in functions]
    rows += [
        ("heading", "Set-up, once per computer", ""),
        ("text", "Install Python and perseat-addin, the xlwings add-in, and trust this file (Unblock it, or keep it "
                 "in a Trusted Location): the README's \"In Excel: install and share\" section goes step by step.",
         ""),
    ]
    return rows


def excel_parts() -> ExcelParts:
    """The template's Excel application parts: defined names, xlwings.conf, VBA project and ribbon.

    The VBA sources and ribbon XML are text files shipped in ``perseat_addin/macros/vba``
    (generated from the function and action registries); they are read here as
    files, so this module never imports xlwings.
    """
    names = dict(SETTING_NAMES)
    names.update({name: f"=Settings!${ref[0]}${ref[1:]}" for name, (ref, _) in HANDLE_CELLS.items()})
    names.update({name: f"=Quote!${ref[0]}${ref[1:]}" for name, ref in QUOTE_INPUTS.items()})
    parts = ExcelParts(names=names, config=XLWINGS_CONF)
    vba_dir = vba_source_dir()
    sheets = [s.name for s in template_sheets()]
    parts.start_here = start_here_rows(sheets, [], [])
    if vba_dir is None:
        return parts
    ui = vba_dir / "customUI.xml"
    if ui.exists():
        parts.custom_ui = ui.read_bytes()
    parts.start_here = start_here_rows(sheets, ribbon_buttons(parts.custom_ui) if parts.custom_ui else [],
                                       excel_functions(vba_dir))
    modules = sorted(vba_dir.glob("*.bas"))
    if modules:
        workbook_cls = vba_dir / "ThisWorkbook.cls"
        parts.vba_project = build_vba_project(
            [(m.stem, read_bas(m)) for m in modules],
            project_references=[("xlwings", "xlwings.xlam")],
            document_code={"ThisWorkbook": workbook_cls.read_text(encoding="utf-8")} if workbook_cls.exists() else None,
        )
    return parts


def vba_source_dir() -> Path | None:
    """Folder of the VBA sources (``macros/vba`` in the repository, installed as package data)."""
    spec = importlib.util.find_spec("perseat_addin.macros")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "vba"
    return path if path.is_dir() else None


def read_bas(path: Path) -> str:
    """A .bas file's code without its ``Attribute VB_Name`` header (the project builder adds it)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(ln for ln in lines if not ln.startswith("Attribute VB_Name")) + "\n"


def formula_results(book: Book, sheets: Sequence[SheetSpec]) -> dict[tuple[int, str], Any]:
    """What the Clients formula columns evaluate to, through the same functions the UDFs call.

    Stored as the formulas' cached results so the workbook reads well before
    Excel recalculates it (and in viewers that cannot run the functions).
    """
    st = book.settings
    devices = book.devices["client"].str.strip().str.lower().value_counts().to_dict()
    clients = next(s for s in sheets if s.name == "Clients")
    invoices = {inv.client.name.lower(): inv for inv in invoice_run(book).invoices}
    out: dict[tuple[int, str], Any] = {}
    for i, row in enumerate(clients.rows):
        name = str(row[0])
        users = billable_users(book, name, st.period.last)
        n_dev = int(devices.get(name.lower(), 0))
        out[(i, "BillableUsers")] = users
        out[(i, "Devices")] = n_dev
        inv = invoices.get(name.lower())
        out[(i, "MonthlyCharge")] = 0.0 if inv is None else inv.total_cents / 100
        try:
            hours = usage_per_user(book, name, st.period)
        except PerseatError as exc:
            out[(i, "HoursPerUser")] = f"#PERSEAT! {exc}"
            out[(i, "RecommendedPrice")] = out[(i, "RecommendedPlan")] = f"#PERSEAT! {exc}"
            continue
        out[(i, "HoursPerUser")] = float(hours)
        labor = Decimal(st.labor_cost_per_hour_micros or 0) / 1_000_000
        margin = Decimal(st.target_margin_ppm or 0) / 1_000_000
        step = Decimal(st.price_step_micros or 0) / 1_000_000
        out[(i, "RecommendedPrice")] = float(recommend_price(hours, labor, margin, Decimal(0), step))
        try:
            own = book.plans.get(str(row[1]).strip().lower())  # the client's plan: only plans of its Basis
            same = [p for p in book.plans.values() if own is None or p.basis is own.basis]
            out[(i, "RecommendedPlan")] = recommend_plan(same, hours, users).name
        except PerseatError as exc:
            out[(i, "RecommendedPlan")] = f"#PERSEAT! {exc}"
    return out


def quote_results(book: Book) -> dict[Any, Any]:
    """What the Quote sheet's formulas evaluate to for the sample prospect, by ``perseat quote``'s pricing."""
    from perseat_addin.engine.pricing import seat_charge
    from perseat_addin.engine.quote import quote

    _, users, devices, chosen = QUOTE_SAMPLE
    q = quote(list(book.plans.values()), users, devices, rounding=book.settings.rounding)
    out: dict[Any, Any] = {}
    for i, r in enumerate(q.rows):
        out[(i, "Monthly")] = r.monthly_cents / 100
        out[(i, "Annual")] = r.annual_cents / 100
    plan = book.plan(chosen)
    c = seat_charge(plan, users, devices, book.settings.rounding)
    out.update({"H8": c.total_cents / 100, "H9": 12 * c.total_cents / 100, "H10": c.seats})
    return out


def handle_cells(clients: int = 0, users: int = 0, usage_rows: int = 0) -> dict[str, tuple[Any, Any]]:
    """The Book and UsageBook cells with their labels; the saved results name the counts and a stale id."""
    texts = {"Book": f"perseat · {clients:,} clients · {users:,} users · {STALE_HANDLE}",
             "UsageBook": f"perseat usage · {usage_rows:,} rows · {STALE_HANDLE}"}
    out: dict[str, tuple[Any, Any]] = {ref: (text, None) for ref, text in HANDLE_LABELS.items()}
    out.update({ref: (formula, texts[name]) for name, (ref, formula) in HANDLE_CELLS.items()})
    return out


SAMPLE_DATA = ("Clients", "Roster", "Devices", "AddOns", "Usage")
"""The template's sample-business tables, left empty by ``perseat template --blank``."""


def blank_sheets(sheets: Sequence[SheetSpec]) -> list[SheetSpec]:
    """``sheets`` with the sample business's clients, roster, devices, add-ons and usage taken out."""
    return [replace(s, rows=[]) if s.name in SAMPLE_DATA else s for s in sheets]


def build(path: str | Path = "workbook_template.xlsm", *, blank: bool = False) -> Path:
    """Write the template workbook to ``path`` (twice: the second time with the formulas' results);
    ``blank`` leaves out the sample clients, roster, devices, add-ons and usage."""
    p = Path(path)
    sheets = blank_sheets(template_sheets()) if blank else template_sheets()
    parts = excel_parts()
    write_workbook(p, sheets, parts=parts)
    clients = next(s for s in sheets if s.name == "Clients")
    if clients.rows:
        book = load(p)
        next(s for s in sheets if s.name == "Settings").cells = handle_cells(len(book.clients), len(book.roster),
                                                                              len(book.usage))
        clients.cached = formula_results(book, sheets)
        qi = next((i for i, s in enumerate(sheets) if s.name == "Quote"), None)
        if qi is not None:  # a blank workbook cannot be priced: its Quote sheet waits for Excel to recalculate
            sheets[qi] = quote_sheet([r[0] for r in sheets[qi].rows], quote_results(book))
    write_workbook(p, sheets, parts=parts)
    return p
