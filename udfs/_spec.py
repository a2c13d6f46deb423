"""The Excel functions' contract in one place: names, argument order, help texts and xlwings options.

``FUNCTIONS`` (SPEC §5 order, arguments in signature order) is the single
source for

- :func:`perseat_addin.udfs._excel.excel_function`, which applies xlwings'
  ``@xw.func``/``@xw.arg``/``@xw.ret`` to each function from its entry;
- the generated VBA wrapper module (``XLPy.CallUDF``) and the
  ``Application.MacroOptions`` registration (description, category, one help
  text per argument, each ≤ 255 characters as Excel requires);
- the tests, which feed Excel-shaped values through xlwings' own conversion
  with exactly these options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CATEGORY = "Per-Seat Billing"
"""Function Wizard category of every function."""

# xlwings argument options. Every argument is taken "raw": exactly the COM value Excel passes (a number, text,
# None, a COM time, an error code, or a range as tuples of row tuples), read by ``_excel`` itself. xlwings'
# value cleaning would visit every cell of a range in Python on every call, and its DataFrame conversion
# costs milliseconds even for a five-row Plans table.
RAW: Mapping[str, Any] = {"convert": "raw"}

CELL: Mapping[str, Any] = RAW
"""One cell or value: number, text, date, blank (None) or an error code."""

TABLE: Mapping[str, Any] = RAW
"""A table passed with its header row (e.g. ``Roster[#All]``): a tuple of row tuples, header first."""

ANSWER: Mapping[str, Any] = RAW
"""One number or text: handed back to Excel as it is (xlwings' writer would wrap it in a 2-D list first)."""

SPILL: Mapping[str, Any] = {}
"""A 2-D list result: dynamic-array Excel spills it natively (no legacy ``expand``, which rewrites the formula)."""


@dataclass(frozen=True)
class ArgSpec:
    """One argument: its name (as in SPEC §5), Function Wizard help, whether it may be omitted, xlwings options."""

    name: str
    help: str
    optional: bool = False
    convert: Mapping[str, Any] = field(default_factory=lambda: dict(CELL))


@dataclass(frozen=True)
class FunctionSpec:
    """One Excel function: name, one-line description for the Function Wizard, arguments in order."""

    name: str
    description: str
    args: tuple[ArgSpec, ...]
    category: str = CATEGORY
    volatile: bool = False
    call_in_wizard: bool = True  # False: skip the (slow, whole-table) calculation while the Function Wizard is open
    ret: Mapping[str, Any] = field(default_factory=lambda: dict(ANSWER))  # xlwings return options


def _table(name: str, table: str, extra: str = "", optional: bool = False) -> ArgSpec:
    return ArgSpec(name, f"The {table} table with its header row, e.g. {table}[#All].{extra}", optional, dict(TABLE))


USERS = ArgSpec("users", "Number of billable users (seats), e.g. the client's BillableUsers.")
PLAN_NAME = ArgSpec("plan", 'Plan name from the Plans table, e.g. "Standard".')
PLANS = _table("plans", "Plans")
TIERS_TABLE = ArgSpec("tiers", "Two columns with a header row: UpTo (users; blank on the last tier) and Rate "
                      "(per user per month).", convert=dict(TABLE))
MODE = ArgSpec("mode", "graduated (each user at their own tier's rate; the default) or volume (every user at "
               "the rate of the tier reached).", optional=True)
ROSTER = ArgSpec("roster", "The Roster table with its header row, e.g. Roster[#All]; or the workbook handle "
                 "Book (a PERSEATBOOK cell).", convert=dict(TABLE))
USERTYPES = _table("usertypes", "UserTypes", " Blank = the template's default types (or Book's).", optional=True)
BOOK_HELP = "Book: the workbook handle from PERSEATBOOK (a cell such as Book), which prices the workbook once."
HOURS = ArgSpec("hours_per_user", "Support hours per user per month, e.g. from USAGEPERUSER.")


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "SEATCHARGE",
        "Monthly charge for a number of users on a plan, with its minimum users, tiers, device rate and minimum "
        "fee; or at a flat rate per user.",
        (USERS,
         ArgSpec("plan", 'Plan name from the Plans table, e.g. "Standard"; or a number for a flat rate per user.'),
         _table("plans", "Plans", " Needed when plan is a name.", optional=True),
         _table("tiers", "Tiers", " Needed for volume and graduated plans.", optional=True),
         ArgSpec("devices", "Number of shared devices (kiosks, shared PCs) billed at the plan's DeviceRate. "
                 "Blank = 0.", optional=True)),
    ),
    FunctionSpec(
        "TIERPRICE",
        "Price per user at a number of users from a tier table: the rate of the tier reached (volume), or the "
        "total charge ÷ users (graduated).",
        (ArgSpec("users", "Number of users (seats), 1 or more."), TIERS_TABLE, MODE),
    ),
    FunctionSpec(
        "TIERCHARGE",
        "Total monthly charge for a number of users from a tier table, priced volume or graduated.",
        (ArgSpec("users", "Number of users (seats)."), TIERS_TABLE, MODE),
    ),
    FunctionSpec(
        "BILLEDSEATS",
        "Seats billed for a number of users on a plan: the users, or the plan's MinUsers if that is more.",
        (USERS, PLAN_NAME, PLANS),
    ),
    FunctionSpec(
        "MINFEETOPUP",
        "Amount the plan's MinFee adds to a month's charge: MinFee minus the charge, or 0 when the charge "
        "reaches it.",
        (ArgSpec("charge", "The month's recurring charge before the minimum: seats, devices and add-ons."),
         PLAN_NAME, PLANS),
    ),
    FunctionSpec(
        "BILLABLEUSERS",
        "Billable users of a client on a date: billable types, Active status, at least MinActiveDays in that "
        "month, each UserID counted once.",
        (ROSTER,
         ArgSpec("client", "Client name as written in the Roster."),
         ArgSpec("as_of", "The date to count on, e.g. the last day of the billing period."),
         USERTYPES),
        call_in_wizard=False,
    ),
    FunctionSpec(
        "PRORATE",
        "Part of a monthly amount for only the days active in the month, prorated daily like the invoices.",
        (ArgSpec("amount", "The full monthly amount, e.g. a plan's Rate."),
         ArgSpec("start", "First active day. Blank = active since before the month."),
         ArgSpec("end", "Last active day (inclusive). Blank = still active."),
         ArgSpec("period_start", "Any date in the month to prorate, e.g. its first day."),
         ArgSpec("day_count", "actual (the month's real number of days; the default) or thirty (every month "
                 "counts 30 days).", optional=True),
         ArgSpec("rounding", "half-up (the default) or down (cents are never rounded up).", optional=True)),
    ),
    FunctionSpec(
        "USAGEPERUSER",
        "Support hours (or tickets) per billable user for a client's month: the month's Usage total ÷ the "
        "client's average daily billable users. With Book: USAGEPERUSER(Book, client, period_start, [measure]).",
        (ArgSpec("usage", "The Usage table with its header row, e.g. Usage[#All]; or Book, the workbook handle "
                 "from PERSEATBOOK (then the next arguments are client, period_start, measure).",
                 convert=dict(TABLE)),
         ArgSpec("roster", "The Roster table with its header row, e.g. Roster[#All] (with Book: the client).",
                 convert=dict(TABLE)),
         ArgSpec("client", "Client name as written in the Roster and Usage tables (with Book: period_start).",
                 optional=True),
         ArgSpec("period_start", "Any date in the month, e.g. its first day (with Book: the measure).",
                 optional=True),
         ArgSpec("measure", "hours (the default) or tickets.", optional=True),
         USERTYPES),
        call_in_wizard=False,
    ),
    FunctionSpec(
        "RECOMMENDPRICE",
        "Monthly price per user that earns the target margin: (hours × cost per hour + other cost) ÷ "
        "(1 − margin), rounded up to the step.",
        (HOURS,
         ArgSpec("cost_per_hour", "Labor cost per hour, e.g. the LaborCostPerHour setting."),
         ArgSpec("target_margin", "Target margin as a fraction below 1, e.g. 0.35 or 35%."),
         ArgSpec("other_cost_per_user", "Other monthly cost per user (licences, tools). Blank = 0.",
                 optional=True),
         ArgSpec("step", "Round up to a multiple of this, e.g. 5 (the PriceStep setting). Blank = to the cent.",
                 optional=True)),
    ),
    FunctionSpec(
        "RECOMMENDPLAN",
        "The cheapest plan whose IncludedHours per user covers the usage (blank IncludedHours = unlimited): by "
        "Rate, or with users by what that many users would cost on each plan.",
        (HOURS, PLANS,
         _table("tiers", "Tiers", " Needed with users when a plan is tiered.", optional=True),
         ArgSpec("users", "Billable users, e.g. the client's BillableUsers: compares the monthly charge for them "
                 "(MinUsers, tiers, MinFee) instead of the Rate.", optional=True),
         ArgSpec("current_plan", "The client's plan: only plans billed on the same Basis (users, or the greater of "
                 "users and shared devices) are considered.", optional=True)),
    ),
    FunctionSpec(
        "INVOICEPREVIEW",
        "Spills the invoice lines that Generate invoices would produce for a client this BillingPeriod, "
        "then a Total row. With Book: INVOICEPREVIEW(client, Book).",
        (ArgSpec("client", "Client name from the Clients table."),
         ArgSpec("settings", "The Settings table with its header row, e.g. Settings[#All]; or Book, the "
                 "workbook handle from PERSEATBOOK (then leave the other tables out).", convert=dict(TABLE)),
         _table("plans", "Plans", optional=True),
         _table("tiers", "Tiers", " Blank if no plan is tiered.", optional=True),
         _table("usertypes", "UserTypes", " Blank = the template's default types.", optional=True),
         _table("clients", "Clients", optional=True),
         _table("roster", "Roster", optional=True),
         _table("devices", "Devices", optional=True),
         _table("addons", "AddOns", optional=True),
         _table("usage", "Usage", " Needed for overage charges.", optional=True)),
        call_in_wizard=False,
        ret=dict(SPILL),
    ),
    FunctionSpec(
        "PERSEATUSAGE",
        "A short text handle to the Usage table, read once: give it to PERSEATBOOK as usage, so editing the "
        "Roster does not pass Usage to Python again.",
        (_table("usage", "Usage"),),
        call_in_wizard=False,
    ),
    FunctionSpec(
        "PERSEATBOOK",
        "A short text handle to the whole workbook, read and priced once per recalculation; the per-client "
        "functions take it in place of their tables.",
        (_table("settings", "Settings"),
         PLANS,
         _table("tiers", "Tiers", " Blank if no plan is tiered."),
         _table("usertypes", "UserTypes", " Blank = the template's default types."),
         _table("clients", "Clients", " Only its own columns, e.g. Clients[[#All],[Client]:[End]] (not the "
                "columns that use Book)."),
         _table("roster", "Roster"),
         _table("devices", "Devices", optional=True),
         _table("addons", "AddOns", optional=True),
         ArgSpec("usage", "The Usage table with its header row (e.g. Usage[#All]), or a PERSEATUSAGE cell "
                 "(e.g. UsageBook). Needed for overage charges.", optional=True, convert=dict(TABLE))),
        call_in_wizard=False,
    ),
    FunctionSpec(
        "CLIENTCHARGE",
        "The total of the client's invoice for BillingPeriod: exactly what Generate invoices will bill, "
        "proration, minimums, discount and tax included (0 if none).",
        (ArgSpec("book", BOOK_HELP),
         ArgSpec("client", "Client name from the Clients table.")),
    ),
)

SPECS: dict[str, FunctionSpec] = {f.name: f for f in FUNCTIONS}
