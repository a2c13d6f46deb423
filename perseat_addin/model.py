"""The billing vocabulary as plain values, no I/O.

- What the workbook says: :class:`Settings`, :class:`Plan`, :class:`UserType`, :class:`Client`,
  :class:`AddOn`, gathered in a :class:`Book`; the large tables (Roster, Devices, Usage) stay columnar
  as pandas DataFrames with dates as day numbers (days since 1970-01-01, :func:`day_number`).
- What a run produces: an :class:`Invoice` of :class:`Line` values.
- The closed sets of words as types: :class:`Billable`, :class:`ImportKind`, :class:`LineKind` (each
  kind's docstring names the rule that prices it), the settings' modes, and :class:`Period`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from functools import cached_property

import pandas as pd

from perseat_addin.errors import Problem
from perseat_addin.money import (
    ZERO_MICROS,
    ZERO_PPM,
    Cents,
    Micros,
    Ppm,
    Rounding,
    cents_to_decimal,
    factor_for,
    multiplies_out,
)

FOREVER = 10**7
"""Day number standing for a blank End (still active)."""

SINCE_EVER = -(10**7)
"""Day number standing for a blank Start (active since before any period)."""

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def from_day_number(n: int) -> dt.date:
    """Inverse of :func:`day_number`."""
    return EPOCH + dt.timedelta(days=int(n))


class Word(str, Enum):
    """An enum whose members are their text everywhere: in cells, f-strings, dict keys and JSON."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __hash__(self) -> int:
        return hash(self.value)


class Billable(Word):
    """A UserTypes row's Billable: who a Roster Type bills (SPEC §3, rule in ``engine.seats.classify``)."""

    YES = "Yes"
    """A billable user once active MinActiveDays in the period."""
    NO = "No"
    """Never billed (guests, service accounts, rooms); ``seats.reasons`` says why."""
    DEVICE = "Device"
    """Billed as a shared device at the plan's DeviceRate, not as a user."""


class ImportKind(Word):
    """What a saved mapping (the Mappings table's Import column) fills: Roster or Usage."""

    ROSTER = "Roster"
    """Users into Roster: ``tasks.import_roster`` → ``engine.roster_sync.plan_import``."""
    USAGE = "Usage"
    """Time entries or tickets into Usage: ``tasks.import_usage`` → ``imports.usage.read_usage``."""


class LineKind(Word):
    """What an invoice line charges, and where its rule lives (all in ``engine.invoicing``)."""

    SEATS = "seats"
    """Users (or seats) on the period's first day × the tier price, charged for the whole period:
    ``_Pricer.seat_line``, for every group at once in ``_Pricer.group_lines`` (count from ``seats.count_days``,
    price from ``pricing.PlanTable.seat_price``)."""
    SEAT_CHANGE = "seat-change"
    """A change in billed seats on day d, charged r_d/D of the month: ``_Pricer.changes`` (amount),
    ``pricing.day_weights`` (r, D)."""
    DEVICES = "devices"
    """Shared devices × DeviceRate for the period: ``_Pricer.device_line``."""
    DEVICE_CHANGE = "device-change"
    """A change in shared devices on day d, prorated like a seat change: ``_Pricer.changes``."""
    ADDON = "addon"
    """An AddOns row (per client or per user), prorated over its active days: ``_Pricer.addon_line``."""
    OVERAGE = "overage"
    """Support hours above IncludedHours × users, at OverageRate: ``_overage_line``."""
    MINIMUM = "minimum"
    """The top-up to MinFee when recurring lines (:data:`RECURRING`) fall short: ``invoice_run``."""
    ADJUSTMENT = "adjustment"
    """Billing in advance: last month's actual changes vs. what was billed ahead: ``_adjustment_lines``."""
    ONE_TIME = "one-time"
    """An AddOns row with Frequency ``once``: billed in full on the invoice of the period that contains its
    Start, never prorated, never again: ``_Pricer.addon_line``."""
    CORRECTION = "correction"
    """A late change to a recorded period, priced with that period's recorded rules: ``engine.corrections``."""
    CREDIT = "credit"
    """A credit note's line: part or all of a recorded invoice given back: ``engine.ledger.credit_note``."""
    DISCOUNT = "discount"
    """DiscountPct of the subtotal, a negative line rounded once: ``discount_and_tax``."""
    TAX = "tax"
    """TaxRate on the taxable lines after discount, rounded once per invoice: ``discount_and_tax``."""


class DocKind(Word):
    """An Invoices row's Kind (SPEC §3): what the recorded document is."""

    INVOICE = "Invoice"
    """A bill for a period: ``engine.invoicing.invoice_run``."""
    CREDIT = "Credit"
    """A credit note: its lines are negative; Corrects names the invoice it credits (blank for a period
    whose charges came out negative): ``engine.ledger.credit_note``."""


RECURRING = (LineKind.SEATS, LineKind.SEAT_CHANGE, LineKind.DEVICES, LineKind.DEVICE_CHANGE, LineKind.ADDON)
"""Line kinds that count toward MinFee (this period's recurring charges)."""

TOTALS = (LineKind.DISCOUNT, LineKind.TAX)
"""Line kinds printed under the subtotal (they are computed from the other lines)."""


class ProrationMode(str, Enum):
    """How seat changes within a month are charged (SPEC §4)."""

    DAILY = "daily"
    SNAPSHOT = "snapshot"
    PEAK = "peak"
    FULL = "full"


class DayCount(str, Enum):
    """Denominator of daily proration: days in the month, or 30."""

    ACTUAL = "actual"
    THIRTY = "thirty"


class BillingTiming(str, Enum):
    """Arrears: bill the month just ended. Advance: bill the coming month, adjust the last."""

    ARREARS = "arrears"
    ADVANCE = "advance"


class Tiering(str, Enum):
    """Flat rate, volume (all seats at one tier's rate) or graduated (each seat its tier)."""

    FLAT = "flat"
    VOLUME = "volume"
    GRADUATED = "graduated"


class Basis(str, Enum):
    """Bill users, or the greater of users and shared devices."""

    USERS = "users"
    GREATER = "greater"


@dataclass(frozen=True)
class Period:
    """A calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """``'2026-11'`` → Period(2026, 11); raises ValueError."""
        t = str(text).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{1,2}", t):
                raise ValueError(t)
            y, m = t.split("-")
            p = cls(int(y), int(m))
        except ValueError:
            raise ValueError(f"billing period {text!r} is not YYYY-MM (e.g. 2026-11)") from None
        if not 1 <= p.month <= 12 or not 1900 <= p.year <= 9998:
            raise ValueError(f"billing period {text!r} is not YYYY-MM (e.g. 2026-11)")
        return p

    @cached_property
    def first(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @cached_property
    def last(self) -> dt.date:
        return self.next().first - dt.timedelta(days=1)

    @cached_property
    def days(self) -> int:
        return (self.next().first - self.first).days

    @classmethod
    def key(cls, value: object) -> str:
        """Normalise a Period cell (text '2026-11', or an Excel date Excel made of it) to 'YYYY-MM'."""
        if isinstance(value, dt.date):
            return f"{value.year:04d}-{value.month:02d}"
        text = str(value or "").strip()
        m = re.match(r"^(\d{4})-(\d{1,2})(?:-\d{1,2})?(?:[ T].*)?$", text)
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}" if m else text

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def prev(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def label(self) -> str:
        """``'November 2026'``."""
        return self.first.strftime("%B %Y")


@dataclass(frozen=True)
class Settings:
    """The Settings table, typed, with SPEC defaults filled in."""

    period: Period
    next_invoice_number: int
    msp_name: str = ""
    msp_address: str = ""
    msp_email: str = ""
    currency: str = "USD"
    invoice_prefix: str = "INV-"
    credit_prefix: str = "CN-"
    payment_terms_days: int = 30
    default_tax_ppm: Ppm = ZERO_PPM
    proration_mode: ProrationMode = ProrationMode.DAILY
    day_count: DayCount = DayCount.ACTUAL
    snapshot_day: int | None = 1  # None = last day of the month
    billing_timing: BillingTiming = BillingTiming.ARREARS
    rounding: Rounding = Rounding.HALF_UP
    labor_cost_per_hour_micros: Micros | None = None
    target_margin_ppm: Ppm | None = None
    price_step_micros: Micros | None = None
    output_folder: str = ""
    xero_account_code: str = "200"
    xero_tax_type: str = "Tax on Sales"
    xero_tax_exempt_type: str = "Tax Exempt"
    quickbooks_item: str = "Managed services"
    csv_date_format: str = ""  # blank: MM/DD/YYYY for USD, else DD/MM/YYYY
    phone: str = ""
    tax_id: str = ""
    payment_instructions: str = ""  # may hold line breaks
    remit_to: str = ""  # may hold line breaks
    logo_file: str = ""  # PNG/JPEG beside the workbook, or a full path
    email_subject: str = ""  # blank: DEFAULT_EMAIL_SUBJECT
    email_body: str = ""  # blank: DEFAULT_EMAIL_BODY
    attach_user_list: bool = False
    psa: str = ""


DEFAULT_EMAIL_SUBJECT = "Invoice {invoice} for {period}"
"""The e-mail subject when Settings.EmailSubject is blank."""

DEFAULT_EMAIL_BODY = ("Dear {client},\n\nPlease find attached invoice {invoice} for {period}, {total}, due {due}."
                      "\n\nThank you for your business.")
"""The e-mail body when Settings.EmailBody is blank."""

EMAIL_PLACEHOLDERS = ("client", "invoice", "period", "total", "due")
"""The {placeholders} EmailSubject and EmailBody may use."""


@dataclass(frozen=True)
class Plan:
    """A price list entry; tiers are (UpTo or None, rate micros), ascending."""

    name: str
    rate_micros: Micros
    tiering: Tiering = Tiering.FLAT
    min_users: int = 0
    min_fee_micros: Micros = ZERO_MICROS
    basis: Basis = Basis.USERS
    device_rate_micros: Micros = ZERO_MICROS
    included_hours_centi: int | None = None  # hundredths of an hour; None = unlimited
    overage_rate_micros: Micros = ZERO_MICROS
    taxable: bool = True
    description: str = ""
    tiers: tuple[tuple[int | None, int], ...] = ()
    tier_flat: tuple[int, ...] = ()  # each tier's FlatFee, micros (aligned with ``tiers``; empty: none)

    def tier_table(self) -> tuple[tuple[int | None, int], ...]:
        """Tiers used for pricing: a flat plan is one unbounded tier at Rate."""
        if self.tiering is Tiering.FLAT or not self.tiers:
            return ((None, self.rate_micros),)
        return self.tiers


@dataclass(frozen=True)
class UserType:
    """A Roster Type: Yes (billable user), No, or Device (billed as a shared device)."""

    name: str
    billable: Billable
    min_active_days: int = 0
    definition: str = ""


DEFAULT_USER_TYPES: tuple[UserType, ...] = (
    UserType("Employee", Billable.YES, 0, "A named person employed by the client."),
    UserType("Contractor", Billable.YES, 0, "A named contractor with their own login."),
    UserType("Intern", Billable.YES, 5, "An intern; billable once active 5 days in the month."),
    UserType("Seasonal", Billable.YES, 5, "A seasonal worker; billable once active 5 days in the month."),
    UserType("Shared", Billable.NO, 0, "A shared login; its workstation is billed as a device."),
    UserType("Service", Billable.NO, 0, "A service account used by software, not a person."),
    UserType("Guest", Billable.NO, 0, "A guest account from outside the client."),
    UserType("Room", Billable.NO, 0, "A room or resource mailbox."),
)


@dataclass(frozen=True)
class Client:
    """A row of Clients."""

    name: str
    plan: str
    row: int
    active: bool = True
    billing_contact: str = ""
    billing_email: str = ""
    address: str = ""
    po_number: str = ""
    discount_ppm: Ppm = ZERO_PPM
    tax_ppm: Ppm | None = None
    proration_mode: ProrationMode | None = None
    payment_terms_days: int | None = None  # None: Settings PaymentTermsDays
    start: int = SINCE_EVER  # contract: first day billed (day number)
    end: int = FOREVER  # contract: last day billed (day number)

    def contract_days(self, period: Period) -> tuple[int, int] | None:
        """The contract's days inside ``period`` as (first, last) indexes (0-based), or None if none."""
        first = day_number(period.first)
        lo, hi = max(self.start, first) - first, min(self.end, first + period.days - 1) - first
        return (lo, hi) if lo <= hi else None


@dataclass(frozen=True)
class AddOn:
    """A recurring extra on a client's invoice."""

    client: str
    description: str
    quantity_micros: Micros
    unit_price_micros: Micros
    per_user: bool
    start: int  # day number, SINCE_EVER when blank
    end: int  # day number, FOREVER when blank
    taxable: bool
    row: int
    once: bool = False  # Frequency once: billed in full on the invoice of the period containing Start


@dataclass
class Book:
    """Everything read from a workbook, typed and validated."""

    path: str
    settings: Settings
    plans: dict[str, Plan]  # key: plan name, lower-case
    user_types: dict[str, UserType]  # key: type name, lower-case
    clients: list[Client]
    roster: pd.DataFrame
    devices: pd.DataFrame
    addons: list[AddOn]
    usage: pd.DataFrame
    invoices: pd.DataFrame
    warnings: list[Problem] = field(default_factory=list)

    def plan(self, name: str) -> Plan:
        return self.plans[name.strip().lower()]


@dataclass(frozen=True)
class Line:
    """One invoice line. ``amount_cents`` is authoritative; quantity × unit is for reading."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount_cents: Cents
    taxable: bool = True
    plan: str = field(default="", compare=False)  # the plan group a seat or device line bills (not printed)

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)

    @property
    def multiplies_out(self) -> bool:
        """Whether Quantity × UnitPrice gives the amount as printed (within half a cent, strictly)."""
        return multiplies_out(self.quantity, self.unit_price, self.amount_cents)


COUNTED = (LineKind.SEATS, LineKind.DEVICES)
"""Line kinds whose Quantity is a count of users or devices (kept; the unit price gives way if need be)."""


def fitted(line: Line) -> Line:
    """``line`` with a Quantity × UnitPrice that gives its amount (SPEC §11); the amount never changes.

    Unchanged when it already does. Otherwise the quantity is solved from the amount and the unit price (a
    prorated line: its user-months, e.g. 1.0666 × 95.00 = 101.33); a count (seats, devices) or a line without
    a unit price keeps its quantity and solves the unit price; 1 × amount when neither can be."""
    if line.multiplies_out:
        return line
    if line.kind not in COUNTED and (q := factor_for(line.amount_cents, line.unit_price)) is not None:
        return replace(line, quantity=q)
    if (u := factor_for(line.amount_cents, line.quantity)) is not None:
        return replace(line, unit_price=u)
    return replace(line, quantity=Decimal(1), unit_price=cents_to_decimal(line.amount_cents))


@dataclass(frozen=True)
class UserChange:
    """A user who joined or left a client's plan group in a period (for the attached user list)."""

    name: str  # the Roster's Name, else its UserID
    user_id: str
    plan: str
    day: dt.date  # joined: its Start (the first day billed); left: its End (the last day billed)
    joined: bool


@dataclass(frozen=True)
class Invoice:
    """An invoice: header facts and its lines (discount and tax are lines too)."""

    number: str
    client: Client
    period: Period
    issue_date: dt.date
    due_date: dt.date
    currency: str
    lines: tuple[Line, ...]
    status: str = "Draft"
    seats: int = 0  # billed seats on the period's last day, for the register
    kind: DocKind = DocKind.INVOICE
    corrects: str = ""  # a credit note: the InvoiceNo it credits
    reason: str = ""  # a credit note: why (printed on it, and the accounting files' memo)

    @property
    def subtotal_cents(self) -> int:
        return sum(ln.amount_cents for ln in self.lines if ln.kind not in TOTALS)

    @property
    def discount_cents(self) -> int:
        return sum(ln.amount_cents for ln in self.lines if ln.kind == LineKind.DISCOUNT)

    @property
    def tax_cents(self) -> int:
        return sum(ln.amount_cents for ln in self.lines if ln.kind == LineKind.TAX)

    @property
    def total_cents(self) -> int:
        return sum(ln.amount_cents for ln in self.lines)

    @property
    def file_stem(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in " -_." else "_" for ch in self.client.name)
        return f"{self.number} {safe}".strip()
