"""Load a workbook into a validated :class:`~.model.Book`, collecting every problem at once.

One function per table (``load_settings``, ``load_plans``, ``load_clients``, ``load_roster``…), each returning
``(value, problems)``; :func:`load_source` composes them. The Excel functions call the ones they need.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from perseat_addin.cells import ExcelError
from perseat_addin.errors import InputProblems, Problem
from perseat_addin.model import (
    DEFAULT_USER_TYPES,
    EMAIL_PLACEHOLDERS,
    FOREVER,
    SINCE_EVER,
    AddOn,
    Basis,
    Billable,
    BillingTiming,
    Book,
    Client,
    DayCount,
    Period,
    Plan,
    ProrationMode,
    Settings,
    Tiering,
    UserType,
    day_number,
    from_day_number,
)
from perseat_addin.money import MICRO, PPM, Micros, Ppm, Rounding, to_decimal, to_micros
from perseat_addin.tables import TableSource, header_key
from perseat_addin.workbook.reader import WorkbookFile
from perseat_addin.workbook.schema import REQUIRED_TABLES, SCHEMA, Table, convert

T = TypeVar("T")



CSV_DATE_FORMATS = ("MM/DD/YYYY", "DD/MM/YYYY", "YYYY-MM-DD", "DD.MM.YYYY", "DD-MM-YYYY", "YYYY/MM/DD",
                    "MM-DD-YYYY", "YYYYMMDD")
"""The date formats Settings.CsvDateFormat accepts: what QuickBooks Online and Xero read (an allow-list: the
value goes into every date cell of both accounting files)."""

SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "ProrationMode": tuple(m.value for m in ProrationMode),
    "DayCount": tuple(m.value for m in DayCount),
    "BillingTiming": tuple(m.value for m in BillingTiming),
    "Rounding": tuple(m.value for m in Rounding),
    "CsvDateFormat": CSV_DATE_FORMATS,
    "AttachUserList": ("Yes", "No"),
    "PSA": ("connectwise", "autotask", "halopsa"),
}
"""The settings whose Value is one word from a list (the template's drop-downs offer these)."""

SETTING_ABOUT: dict[str, str] = {
    "MSPName": "Your company's name, printed at the top of every invoice.",
    "MSPAddress": "Your postal address, printed under your name on every invoice.",
    "MSPEmail": "The address clients write to about invoices, printed on every invoice.",
    "Currency": "The three-letter ISO 4217 code every amount is in (USD, EUR, GBP, ...); blank means USD.",
    "BillingPeriod": "The month being billed, as YYYY-MM (2026-11); Finalize period moves it on by one month.",
    "InvoicePrefix": "Starts every invoice number and file name (HV- gives HV-1001); blank means INV-.",
    "CreditPrefix": "Starts every credit note number (CN- gives CN-1002); credit notes share NextInvoiceNumber "
                    "with invoices; blank means CN-.",
    "NextInvoiceNumber": "The number the next invoice or credit note gets; Finalize period and Credit note move it "
                         "on, so change it only when starting out.",
    "PaymentTermsDays": "Days from issue to due date (30: due 30 days after the invoice date); a client's own "
                        "PaymentTermsDays overrides it; blank means 30.",
    "DefaultTaxRate": "Sales tax on taxable lines for clients whose TaxRate is blank, as a fraction (0.055) or a "
                      "percent (5.5%); 0 means no tax.",
    "ProrationMode": "How users who join or leave mid-month are charged: daily: by the days each user is active; "
                     "snapshot: the users on SnapshotDay pay the whole month; peak: the most users on any one day; "
                     "full: everyone active on any day pays the whole month.",
    "DayCount": "The length of a month for daily proration: actual: a month has its real number of days (30 in "
                "November, 31 in December); thirty: every month counts 30 days.",
    "SnapshotDay": "The day of the month whose users are billed when ProrationMode is snapshot: 1 to 31, or last "
                   "for the month's last day; blank means 1.",
    "BillingTiming": "Which month an invoice charges: arrears: the month just ended, as it happened; advance: the "
                     "coming month at its first day's users, plus an adjustment line for the month before.",
    "Rounding": "How each line's amount becomes cents: half-up: half a cent or more rounds up (6.665 gives 6.67); "
                "down: fractions of a cent are dropped (6.669 gives 6.66), never overcharging.",
    "LaborCostPerHour": "What an hour of support costs you; the usage report and RecommendedPrice use it to "
                        "compute each client's cost to serve.",
    "TargetMargin": "The share of the price you aim to keep after support costs, as a fraction (0.35) or a percent "
                    "(35%); RecommendedPrice earns this margin.",
    "PriceStep": "RecommendedPrice is rounded up to a multiple of this (5 gives 95, 100, 105 ...); blank rounds "
                 "up to the cent.",
    "OutputFolder": "Where invoices, PDFs and accounting files go: a folder name beside the workbook (invoices) or "
                    "a full path; each month gets its own subfolder.",
    "XeroAccountCode": "The Xero sales account code every line of xero.csv is posted to; blank means 200.",
    "XeroTaxType": "The Xero tax rate name for taxed lines; blank means Tax on Sales.",
    "XeroTaxExemptType": "The Xero tax rate name for untaxed lines; blank means Tax Exempt.",
    "QuickBooksItem": "The QuickBooks Online product/service every line of quickbooks.csv is booked to; blank means "
                      "Managed services.",
    "Phone": "Your billing phone number, printed beside your address on every invoice.",
    "TaxID": "Your tax or VAT registration number (EIN, VAT no., ABN ...), printed on every invoice.",
    "PaymentInstructions": "How to pay, printed on every invoice: bank name, account and routing numbers or IBAN, "
                           "a payment link; the cell may hold several lines.",
    "RemitTo": "Where cheques and remittance advice go, printed on every invoice when it differs from your "
               "address; the cell may hold several lines.",
    "LogoFile": "Your logo for the top of every invoice: a PNG or JPEG file beside the workbook (logo.png) or a "
                "full path; blank prints your name only.",
    "EmailSubject": "The subject of each invoice e-mail; {client} {invoice} {period} {total} {due} are filled "
                    "in; blank means Invoice {invoice} for {period}.",
    "EmailBody": "The text of each invoice e-mail, with the same {placeholders} as EmailSubject; blank gives a "
                 "short covering note.",
    "AttachUserList": "Yes: every invoice PDF gets a page listing the client's users, who was billed and who was "
                      "not and why; No: the invoice alone (blank means No).",
    "PSA": "The PSA that holds your companies and agreements: connectwise, autotask or halopsa; blank means none "
           "(Push to PSA and the PSA columns of Clients are then unused).",
    "CsvDateFormat": "How dates are written in quickbooks.csv and xero.csv (MM/DD/YYYY, DD/MM/YYYY, YYYY-MM-DD "
                     "...), to match your accounting company's settings; blank means MM/DD/YYYY for USD, "
                     "DD/MM/YYYY otherwise.",
}
"""Every setting the workbook reads, with one sentence on what its value means and its alternatives (the
template's Settings About column, and the list of known settings)."""

def _placeholder_problem(template: str) -> str:
    """Why ``template`` (EmailSubject/EmailBody) cannot be filled in, or ""."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"has an unmatched brace ({exc})"
    unknown = sorted({f for f in fields if f not in EMAIL_PLACEHOLDERS})
    return f"{{{unknown[0]}}} is not a placeholder" if unknown else ""


_PREFIX = re.compile(r"(?:[^\W_]|#)[\w .#-]{0,19}|")
"""A document-number prefix: it starts every invoice number and file name, so it stays a plain name."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

def _ppm(d: Decimal | None) -> Ppm | None:
    return None if d is None else Ppm(int((d * PPM).to_integral_value()))


def _micros(d: Decimal | None, default: int = 0) -> Micros:
    return Micros(default) if d is None else to_micros(d)


def _int(d: Decimal | None, default: int = 0) -> int:
    return default if d is None else int(d)


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()


def _yes(v: Any, default: bool) -> bool:
    return default if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v)


def _dec(v: Any) -> Decimal | None:
    return v if isinstance(v, Decimal) else None


def read_table(source: TableSource, name: str) -> tuple[Table | None, list[Problem]]:
    """Table ``name`` converted to its SPEC columns (None when it is absent, empty or lacks a required column)."""
    problems: list[Problem] = []
    raw = source.table(name)
    if raw is None:
        if name in REQUIRED_TABLES:
            problems.append(Problem(
                name, None, None, f"the workbook has no {name} sheet or table",
                f"add a sheet named {name} holding an Excel table named {name} "
                "(run 'perseat template' for a ready-made workbook)"))
        return None, problems
    if not raw.headers and name in REQUIRED_TABLES:
        problems.append(Problem(raw.sheet, 1, None, f"the {name} sheet is empty",
                                     f"add the {name} table with its header row"))
        return None, problems
    t = convert(raw, name, problems)
    if any(c.required and c.name not in t.present for c in SCHEMA[name]):
        return None, problems  # the missing column is reported; its rows cannot be read
    return t, problems


def load_settings(t: Table | None, period_override: str | None = None) -> tuple[Settings | None, list[Problem]]:
    """The Settings table, typed (None when a setting is wrong); unknown settings are warnings."""
    problems: list[Problem] = []
    values: dict[str, tuple[Any, int]] = {}
    if t is not None:
        for name, value, row in zip(t.frame["Setting"], t.frame.get("Value", [None] * len(t.frame)),
                                    t.frame["_row"], strict=True):
            if name:
                values[header_key(name)] = (value, int(row))
    sheet = t.sheet if t is not None else "Settings"
    known = {header_key(f) for f in SETTING_ABOUT}
    for k, (_, row) in values.items():
        if k not in known:
            problems.append(Problem(sheet, row, "Setting", f"unknown setting {k!r} ignored",
                                         "check the spelling against the template", "warning"))
    bad = len(problems)

    def get(name: str) -> tuple[Any, int | None]:
        v, row = values.get(header_key(name), (None, None))
        if isinstance(v, str) and not v.strip():
            v = None
        return v, row

    def err(name: str, row: int | None, msg: str, fix: str) -> None:
        problems.append(Problem(sheet, row, "Value" if row else None,
                                     f"{name}: {msg}", fix))

    def text(name: str, default: str = "") -> str:
        v, _ = get(name)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return default if v is None else str(v).strip()

    def number(name: str, *, required: bool = False, integer: bool = False, rate: bool = False,
               lo: Decimal | None = None, hi: Decimal | None = None) -> Decimal | None:
        v, row = get(name)
        if v is None:
            if required:
                err(name, row, "missing", f"add a Settings row '{name}' with its value")
            return None
        if isinstance(v, ExcelError):
            err(name, row, f"cell holds the Excel error {v}", "type the value")
            return None
        try:
            typed = v.strip() if isinstance(v, str) else ""
            d = to_decimal(typed[:-1]) / 100 if typed.endswith("%") else to_decimal(v)
        except ValueError:
            err(name, row, f"{v!r} is not a number", f"type a number for {name}")
            return None
        if integer and d != d.to_integral_value():
            err(name, row, f"{d} is not a whole number", "type a whole number")
            return None
        if rate and d >= 1 and not typed.endswith("%"):
            err(name, row, f"{d.normalize():f} would mean {d * 100:.0f}%",
                f"type {d.normalize():f}% for {d.normalize():f} percent, or 100% if {d * 100:.0f}% is meant")
            return None
        if (lo is not None and d < lo) or (hi is not None and d > hi):
            err(name, row, f"{d} is out of range", f"type a value from {lo} to {hi}")
            return None
        if abs(d) >= 10**9:
            err(name, row, f"{d} is too large", f"check {name}")
            return None
        return d

    def choice(name: str, enum: Any, default: Any) -> Any:
        v, row = get(name)
        if v is None:
            return default
        try:
            return enum(str(v).strip().lower())
        except ValueError:
            opts = ", ".join(e.value for e in enum)
            err(name, row, f"{v!r} is not one of {opts}", f"type one of: {opts}")
            return default

    period_text = period_override if period_override else text("BillingPeriod")
    period = None
    if not period_text:
        err("BillingPeriod", get("BillingPeriod")[1], "missing",
            "add a Settings row 'BillingPeriod' with a month such as 2026-11")
    else:
        raw_p, _ = get("BillingPeriod")
        if hasattr(raw_p, "year") and not period_override:
            period = Period(raw_p.year, raw_p.month)
        else:
            try:
                period = Period.parse(period_text)
            except ValueError as exc:
                if period_override:
                    raise
                err("BillingPeriod", get("BillingPeriod")[1], str(exc), "type e.g. 2026-11")
    nxt = number("NextInvoiceNumber", required=True, integer=True, lo=Decimal(1))
    terms = number("PaymentTermsDays", integer=True, lo=Decimal(0), hi=Decimal(365))
    tax = number("DefaultTaxRate", rate=True, lo=Decimal(0), hi=Decimal(1))
    snap_v, _ = get("SnapshotDay")
    snapshot: int | None = 1
    if snap_v is not None:
        if str(snap_v).strip().lower() == "last":
            snapshot = None
        else:
            d = number("SnapshotDay", integer=True, lo=Decimal(1), hi=Decimal(31))
            snapshot = int(d) if d is not None else 1
    margin = number("TargetMargin", lo=Decimal(0), hi=Decimal("0.99"))
    currency = text("Currency", "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        err("Currency", get("Currency")[1], f"{currency!r} is not an ISO 4217 code",
            "type a three-letter code such as USD, EUR, GBP")
    for name, default in (("InvoicePrefix", "INV-"), ("CreditPrefix", "CN-")):
        prefix = text(name, default)
        if not _PREFIX.fullmatch(prefix):
            bad_ch = sorted({ch for ch in prefix if not (ch.isalnum() or ch in " -_.#")})
            what = (f"has {', '.join(repr(ch) for ch in bad_ch)}, which cannot go in a file name" if bad_ch
                    else "must start with a letter or digit and be at most 20 characters")
            err(name, get(name)[1], f"{prefix!r} {what}",
                "use letters, digits, spaces and - _ . # (e.g. INV-); the prefix starts every document number "
                "and file name")
    folder = text("OutputFolder")
    if folder and (_CONTROL.search(folder) or len(folder) > 240 or folder[:1] in "=+@"):
        err("OutputFolder", get("OutputFolder")[1], f"{folder[:60]!r} is not a folder name",
            "type a folder beside the workbook (invoices) or a full path (C:\\Billing\\invoices)")
    date_format = text("CsvDateFormat")
    if date_format and date_format.upper() not in CSV_DATE_FORMATS:
        err("CsvDateFormat", get("CsvDateFormat")[1], f"{date_format[:40]!r} is not a date format the accounting "
            "imports read", f"type one of: {', '.join(CSV_DATE_FORMATS)} (or leave it blank)")
    logo = text("LogoFile")
    if logo and (_CONTROL.search(logo) or len(logo) > 240 or logo[:1] in "=+@"
                 or not logo.lower().endswith((".png", ".jpg", ".jpeg"))):
        err("LogoFile", get("LogoFile")[1], f"{logo[:60]!r} is not a PNG or JPEG file name",
            "type the name of a .png or .jpg file beside the workbook (logo.png) or a full path")
    subject, body = text("EmailSubject"), text("EmailBody")
    for name, template in (("EmailSubject", subject), ("EmailBody", body)):
        bad_field = _placeholder_problem(template)
        if bad_field:
            err(name, get(name)[1], bad_field,
                "use only {client} {invoice} {period} {total} {due}; write {{ and }} for a brace")
    if "\n" in subject or "\r" in subject:
        err("EmailSubject", get("EmailSubject")[1], "has a line break", "keep the subject on one line")
    user_list = False
    ul_v, ul_row = get("AttachUserList")
    if ul_v is not None:
        ul = str(ul_v).strip().lower()
        if ul in ("yes", "y", "true", "1"):
            user_list = True
        elif ul not in ("no", "n", "false", "0"):
            err("AttachUserList", ul_row, f"{str(ul_v)[:40]!r} is not Yes or No", "type Yes or No")
    psa = text("PSA").lower()
    if psa and psa not in SETTING_CHOICES["PSA"]:
        err("PSA", get("PSA")[1], f"{psa[:40]!r} is not a PSA the program connects to",
            "type connectwise, autotask or halopsa, or leave it blank")
    if len(problems) > bad or period is None or nxt is None:
        return None, problems
    return Settings(
        period=period,
        next_invoice_number=int(nxt),
        msp_name=text("MSPName"),
        msp_address=text("MSPAddress"),
        msp_email=text("MSPEmail"),
        currency=currency,
        invoice_prefix=text("InvoicePrefix", "INV-"),
        credit_prefix=text("CreditPrefix", "CN-"),
        payment_terms_days=_int(terms, 30),
        default_tax_ppm=_ppm(tax) or Ppm(0),
        proration_mode=choice("ProrationMode", ProrationMode, ProrationMode.DAILY),
        day_count=choice("DayCount", DayCount, DayCount.ACTUAL),
        snapshot_day=snapshot,
        billing_timing=choice("BillingTiming", BillingTiming, BillingTiming.ARREARS),
        rounding=choice("Rounding", Rounding, Rounding.HALF_UP),
        labor_cost_per_hour_micros=(None if (lc := number("LaborCostPerHour", lo=Decimal(0)))
                                    is None else to_micros(lc)),
        target_margin_ppm=_ppm(margin),
        price_step_micros=(None if (ps := number("PriceStep", lo=Decimal(0))) is None
                           else to_micros(ps)),
        output_folder=text("OutputFolder"),
        xero_account_code=text("XeroAccountCode", "200"),
        xero_tax_type=text("XeroTaxType", "Tax on Sales"),
        xero_tax_exempt_type=text("XeroTaxExemptType", "Tax Exempt"),
        quickbooks_item=text("QuickBooksItem", "Managed services"),
        phone=text("Phone"),
        tax_id=text("TaxID"),
        payment_instructions=text("PaymentInstructions"),
        remit_to=text("RemitTo"),
        logo_file=logo,
        email_subject=subject,
        email_body=body,
        attach_user_list=user_list,
        psa=psa,
        csv_date_format=date_format.upper(),
    ), problems


def load_plans(t: Table | None, tiers: Table | None,
               need_tiers: bool = True) -> tuple[dict[str, Plan], list[Problem]]:
    """Plans with their tiers. ``need_tiers=False`` (a function given no Tiers table) keeps a volume or
    graduated plan without tier rows, priced flat, instead of reporting it."""
    problems: list[Problem] = []
    if t is None:
        return {}, problems
    f = t.frame
    if f.empty:
        problems.append(Problem(t.sheet, None, None, "the Plans table has no rows",
                                     "add at least one plan with its Rate"))
    tier_rows: dict[str, list[tuple[int | None, int, int]]] = {}
    tier_fees: dict[tuple[str, int], int] = {}
    if tiers is not None:
        blank = [None] * len(tiers.frame)
        for plan, upto, rate, fee, row in zip(tiers.frame["Plan"], tiers.frame.get("UpTo", blank),
                                              tiers.frame["Rate"], tiers.frame.get("FlatFee", blank),
                                              tiers.frame["_row"], strict=True):
            if plan and rate is not None:
                tier_rows.setdefault(plan.lower(), []).append(
                    (None if upto is None else int(upto), to_micros(rate), int(row)))
                tier_fees[(plan.lower(), int(row))] = _micros(_dec(fee))
    out: dict[str, Plan] = {}
    seen: dict[str, int] = {}
    for r in f.to_dict("records"):
        name, row = r["Plan"], int(r["_row"])
        if not name:
            continue
        key = name.lower()
        if key in seen:
            problems.append(Problem(*t.where(row, "Plan"),
                                         f"plan {name!r} is listed twice (first in row {seen[key]})",
                                         "give each plan one row; rename or delete the copy"))
            continue
        seen[key] = row
        if r.get("Rate") is None:
            continue
        tiering = Tiering(r.get("Tiering") or "flat")
        plan_tiers: tuple[tuple[int | None, int], ...] = ()
        flat_fees: tuple[int, ...] = ()
        if tiering is not Tiering.FLAT:
            rows = tier_rows.get(key, [])
            if not rows and not need_tiers:
                rows = [(None, to_micros(r["Rate"]), row)]
            if not rows:
                problems.append(Problem(*t.where(row, "Tiering"),
                                             f"plan {name!r} is {tiering.value} but has no rows in Tiers",
                                             f"add Tiers rows for {name} (UpTo, Rate) or set Tiering to flat"))
                continue
            rows = sorted(rows, key=lambda x: (x[0] is None, x[0] or 0))
            ok = True
            uppers = [u for u, _, _ in rows]
            if uppers.count(None) != 1 or uppers[-1] is not None:
                problems.append(Problem(
                    tiers.sheet if tiers else "Tiers", rows[-1][2], "UpTo",
                    f"the tiers of plan {name!r} need exactly one last tier with a blank UpTo",
                    "leave UpTo blank on the top tier (it covers every seat above the others)"))
                ok = False
            nums = [u for u in uppers if u is not None]
            if len(set(nums)) != len(nums) or any(u < 1 for u in nums):
                problems.append(Problem(
                    tiers.sheet if tiers else "Tiers", rows[0][2], "UpTo",
                    f"the tiers of plan {name!r} repeat an UpTo or use one below 1",
                    "give each tier a different UpTo of 1 or more"))
                ok = False
            if not ok:
                continue
            plan_tiers = tuple((u, rate) for u, rate, _ in rows)
            flat_fees = tuple(tier_fees.get((key, tr), 0) for _, _, tr in rows)
        elif r["Rate"] == 0:
            problems.append(Problem(*t.where(row, "Rate"), f"plan {name!r} has Rate 0: its users are billed nothing",
                                    "type the price per user per month (or ignore this if the plan is free)",
                                    "warning"))
        inc = r.get("IncludedHours")
        out[key] = Plan(
            name=name,
            rate_micros=to_micros(r["Rate"]),
            tiering=tiering,
            min_users=_int(_dec(r.get("MinUsers"))),
            min_fee_micros=_micros(_dec(r.get("MinFee"))),
            basis=Basis(r.get("Basis") or "users"),
            device_rate_micros=_micros(_dec(r.get("DeviceRate"))),
            included_hours_centi=None if inc is None else int((inc * 100).to_integral_value()),
            overage_rate_micros=_micros(_dec(r.get("OverageRate"))),
            taxable=_yes(r.get("Taxable"), True),
            description=_text(r.get("Description")),
            tiers=plan_tiers,
            tier_flat=flat_fees if any(flat_fees) else (),
        )
    if tiers is not None:
        for key, rows in tier_rows.items():
            if key not in seen:
                problems.append(Problem(tiers.sheet, rows[0][2], "Plan (A)",
                                             f"tier for plan {key!r} which is not in Plans",
                                             "add the plan to Plans or fix the name"))
    return out, problems


def plan_names(t: Table | None) -> set[str]:
    """Every plan name listed in Plans (lower case), its row valid or not: a reference to a listed plan
    whose row has a problem is not reported again."""
    if t is None:
        return set()
    return {name.lower() for name in t.frame["Plan"] if name}


def load_user_types(t: Table | None) -> tuple[dict[str, UserType], list[Problem]]:
    """UserTypes (the SPEC defaults when the workbook has none)."""
    problems: list[Problem] = []
    if t is None:
        return {u.name.lower(): u for u in DEFAULT_USER_TYPES}, problems
    out: dict[str, UserType] = {}
    for r in t.frame.to_dict("records"):
        name = r["Type"]
        if not name or not r.get("Billable"):
            continue
        if name.lower() in out:
            problems.append(Problem(*t.where(int(r["_row"]), "Type"),
                                         f"user type {name!r} is listed twice",
                                         "keep one row per type"))
            continue
        out[name.lower()] = UserType(name, Billable(r["Billable"].capitalize()),
                                     _int(_dec(r.get("MinActiveDays"))), _text(r.get("Definition")))
    if not out and not t.frame.empty:
        return out, problems
    return out or {u.name.lower(): u for u in DEFAULT_USER_TYPES}, problems


def load_clients(t: Table | None, plans: dict[str, Plan],
                 listed: Collection[str] = ()) -> tuple[list[Client], list[Problem]]:
    """Clients, each with a plan from ``plans`` (or one ``listed`` in Plans whose row has a problem)."""
    problems: list[Problem] = []
    if t is None:
        return [], problems
    out: list[Client] = []
    seen: dict[str, int] = {}
    if t.frame.empty:
        problems.append(Problem(t.sheet, None, None, "the Clients table has no rows",
                                     "add your clients, one per row"))
    for r in t.frame.to_dict("records"):
        name, row = r["Client"], int(r["_row"])
        if not name:
            continue
        key = name.lower()
        if key in seen:
            problems.append(Problem(*t.where(row, "Client"),
                                         f"client {name!r} is listed twice (first in row {seen[key]})",
                                         "keep one row per client; merge or rename the copy"))
            continue
        seen[key] = row
        plan = r["Plan"]
        if plan and plan.lower() not in plans and plan.strip().lower() not in listed:
            problems.append(Problem(*t.where(row, "Plan"), f'plan "{plan}" not in Plans',
                                         "add it to Plans or pick an existing plan"))
        tax = _dec(r.get("TaxRate"))
        out.append(Client(
            name=name, plan=plan, row=row,
            active=(r.get("Status") or "active") == "active",
            billing_contact=_text(r.get("BillingContact")),
            billing_email=_text(r.get("BillingEmail")),
            address=_text(r.get("Address")),
            po_number=_text(r.get("PONumber")),
            discount_ppm=_ppm(_dec(r.get("DiscountPct"))) or Ppm(0),
            tax_ppm=_ppm(tax),
            proration_mode=ProrationMode(r["ProrationMode"]) if r.get("ProrationMode") else None,
            payment_terms_days=None if r.get("PaymentTermsDays") is None else _int(_dec(r.get("PaymentTermsDays"))),
            start=int(r.get("Start", SINCE_EVER)), end=int(r.get("End", FOREVER)),
        ))
    _check_dates(t, problems)
    return out, problems


def _check_dates(t: Table, problems: list[Problem]) -> None:
    f = t.frame
    if "Start" in f and "End" in f:
        start, end = f["Start"].to_numpy(), f["End"].to_numpy()
        bad = (end < start) & (end != FOREVER) & (start != SINCE_EVER)
        for row in f["_row"].to_numpy()[bad]:
            problems.append(Problem(*t.where(int(row), "End"), "End is before Start",
                                         "End is the last active day; make it on or after Start"))


def _unlisted(column: pd.Series, listed: Collection[str]) -> bool:
    """True when a non-blank name in ``column`` is not in ``listed`` (lower case): each distinct name looked at
    once."""
    return any(name != "" and name.lower() not in listed for name in column.unique())


def _check_clients(t: Table, clients: set[str] | None, problems: list[Problem]) -> None:
    if clients is None:
        return
    f = t.frame
    if not _unlisted(f["Client"], clients):
        return
    low = f["Client"].str.lower()
    bad = (f["Client"] != "") & ~low.isin(clients)
    if bad.any():
        sub = f.loc[bad, ["Client", "_row"]]
        for name, rows in sub.groupby("Client", sort=True)["_row"]:
            rows_l = [int(x) for x in rows]
            more = f" (and {len(rows_l) - 1} more rows)" if len(rows_l) > 1 else ""
            problems.append(Problem(*t.where(rows_l[0], "Client"),
                                         f'client "{name}" not in Clients{more}',
                                         "add the client to Clients or fix the name"))


def load_roster(t: Table | None, clients: set[str] | None, plans: dict[str, Plan] | None,
                types: dict[str, UserType], listed: Collection[str] = ()) -> tuple[pd.DataFrame, list[Problem]]:
    """The Roster as columns (see :func:`prepare_roster`). ``clients``/``plans`` None: names not checked."""
    problems: list[Problem] = []
    if t is None:
        return _empty_roster(), problems
    f = t.frame
    if f.empty:
        problems.append(Problem(t.sheet, None, None, "the Roster table has no rows",
                                     "add the users of your clients, one per row "
                                     "(or import them with 'perseat import')"))
        return _empty_roster(), problems
    _check_clients(t, clients, problems)
    _check_dates(t, problems)
    if _unlisted(f["Type"], types):
        low_type = f["Type"].str.lower()
        bad = (f["Type"] != "") & ~low_type.isin(list(types))
        for typ, rows in f.loc[bad].groupby("Type")["_row"]:
            problems.append(Problem(*t.where(int(rows.iloc[0]), "Type"),
                                         f'user type "{typ}" not in UserTypes'
                                         + (f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""),
                                         "use one of: " + ", ".join(u.name for u in types.values())))
    if "Plan" in f and plans is not None and _unlisted(f["Plan"], plans):
        lp = f["Plan"].str.lower()
        badp = (f["Plan"] != "") & ~lp.isin(list(plans))
        for plan, rows in f.loc[badp].groupby("Plan")["_row"]:
            if str(plan).strip().lower() in listed:
                continue
            problems.append(Problem(*t.where(int(rows.iloc[0]), "Plan"),
                                         f'plan "{plan}" not in Plans',
                                         "add it to Plans or leave Plan blank to use the client's plan"))
    n = len(f)
    empty = pd.Series([""] * n, dtype="str")
    out = pd.DataFrame({
        "row": f["_row"].to_numpy(),
        "client": f["Client"],
        "user": f["UserID"],
        "name": f.get("Name", empty),
        "type": f["Type"],
        "plan": f.get("Plan", empty),
        "start": f["Start"] if "Start" in f else np.full(n, SINCE_EVER),
        "end": f["End"] if "End" in f else np.full(n, FOREVER),
        "status": f.get("Status", empty),
    })
    out = prepare_roster(out)
    _overlaps(t, out, problems)
    return out, problems


def _overlaps(t: Table, roster: pd.DataFrame, problems: list[Problem]) -> None:
    """A warning for each UserID listed more than once for a client with overlapping dates (its rows in
    the order of their Start; rows with the same Start in table order)."""
    key = roster["dupkey"].to_numpy()
    dups = np.flatnonzero(key >= 0)
    if not len(dups):
        return
    start, end, row = (roster[c].to_numpy() for c in ("start", "end", "row"))
    dups = dups[np.argsort(key[dups], kind="stable")]  # groups by first appearance, rows in table order
    for group in np.split(dups, np.flatnonzero(np.diff(key[dups])) + 1):
        group = group[np.argsort(start[group], kind="stable")]  # by Start, rows with the same Start in table order
        if not (start[group][1:] <= np.maximum.accumulate(end[group])[:-1]).any():
            continue
        row_list = ", ".join(str(int(x)) for x in row[group])
        problems.append(Problem(*t.where(int(row[group[1]]), "UserID"),
                                f"UserID {roster['user'].iloc[int(group[0])]!r} appears in rows {row_list} "
                                "with overlapping dates; billed once",
                                "delete the extra row, or give it an End date", "warning"))


def load_devices(t: Table | None, clients: set[str] | None) -> tuple[pd.DataFrame, list[Problem]]:
    """Shared devices as columns."""
    problems: list[Problem] = []
    if t is None or t.frame.empty:
        return pd.DataFrame({"row": [], "client": pd.Series([], dtype="str"),
                             "device": pd.Series([], dtype="str"), "start": [], "end": []}), problems
    _check_clients(t, clients, problems)
    _check_dates(t, problems)
    f = t.frame
    n = len(f)
    return pd.DataFrame({
        "row": f["_row"].to_numpy(), "client": f["Client"], "device": f["DeviceID"],
        "start": f["Start"] if "Start" in f else np.full(n, SINCE_EVER),
        "end": f["End"] if "End" in f else np.full(n, FOREVER),
    }), problems


def load_addons(t: Table | None, clients: set[str] | None) -> tuple[list[AddOn], list[Problem]]:
    """AddOns with exact quantities and prices."""
    problems: list[Problem] = []
    if t is None or t.frame.empty:
        return [], problems
    _check_clients(t, clients, problems)
    _check_dates(t, problems)
    out = []
    for r in t.frame.to_dict("records"):
        if not r["Client"] or r.get("UnitPrice") is None or not r["Description"]:
            continue
        qty = _dec(r.get("Quantity"))
        once = r.get("Frequency") == "once"
        if once and int(r.get("Start", SINCE_EVER)) == SINCE_EVER:
            problems.append(Problem(*t.where(int(r["_row"]), "Start"),
                                    f"one-time add-on {r['Description']!r} has no Start",
                                    "type the date it is billed in Start (it goes on that period's invoice)"))
            continue
        out.append(AddOn(
            client=r["Client"], description=r["Description"],
            quantity_micros=Micros(MICRO) if qty is None else to_micros(qty),
            unit_price_micros=to_micros(r["UnitPrice"]),
            per_user=_yes(r.get("PerUser"), False),
            start=int(r.get("Start", SINCE_EVER)), end=int(r.get("End", FOREVER)),
            taxable=_yes(r.get("Taxable"), True), row=int(r["_row"]), once=once,
        ))
    return out, problems


def load_usage(t: Table | None, clients: set[str] | None) -> tuple[pd.DataFrame, list[Problem]]:
    """Usage as columns, hours in hundredths; ``billable`` False where Billable is No (blank or no column: Yes)."""
    problems: list[Problem] = []
    if t is None or t.frame.empty:
        return pd.DataFrame({"client": pd.Series([], dtype="str"), "date": np.array([], np.int64),
                             "hours_centi": np.array([], np.int64),
                             "tickets": np.array([], np.float64), "billable": np.array([], bool)}), problems
    _check_clients(t, clients, problems)
    f = t.frame
    hours = f["Hours"].to_numpy(dtype=np.float64) if "Hours" in f else np.zeros(len(f))
    tickets = f["Tickets"].to_numpy(dtype=np.float64) if "Tickets" in f else np.zeros(len(f))
    billable = f["Billable"].to_numpy(dtype=np.float64) != 0 if "Billable" in f else np.ones(len(f), bool)
    return pd.DataFrame({
        "client": f["Client"], "user": f.get("UserID", ""),
        "date": f["Date"],
        "hours_centi": centi_hours(hours),
        "tickets": np.nan_to_num(tickets),
        "billable": billable,
    }), problems


def centi_hours(hours: np.ndarray) -> np.ndarray:
    """Hours (floats, NaN = blank) → hundredths of an hour, as exact as reading each cell's decimal
    text: values with at most two decimals directly, the rest through Decimal (half-even)."""
    x = np.nan_to_num(hours) * 100
    out = np.rint(x)
    odd = np.flatnonzero(np.abs(x - out) > 1e-6)
    result: np.ndarray = out.astype(np.int64)
    for i in odd:
        result[i] = int((to_decimal(float(hours[i])) * 100).to_integral_value())
    return result


def _empty_roster() -> pd.DataFrame:
    s = pd.Series([], dtype="str")
    e = np.array([], dtype=np.int64)
    return prepare_roster(pd.DataFrame({"row": e, "client": s, "user": s, "name": s, "type": s, "plan": s,
                                        "start": e, "end": e, "status": s}))


def load(path: str | Path, period: str | None = None) -> Book:
    """Read and validate the workbook; raise :class:`InputProblems` listing every problem."""
    return load_source(WorkbookFile(path), period, name=str(path))


def load_source(source: TableSource, period: str | None = None, name: str = "",
                converted: Mapping[str, Table] | None = None) -> Book:
    """Validate tables from any source (a file, or an open Excel workbook's ranges), one table at a time;
    raise :class:`InputProblems` listing every problem. ``converted``: tables already read (and their
    problems already reported), used instead of the source's."""
    found: list[Problem] = []

    def keep(value_problems: tuple[T, list[Problem]]) -> T:
        value, problems = value_problems
        found.extend(problems)
        return value

    given = converted or {}
    tables = {n: given[n] if n in given else keep(read_table(source, n)) for n in SCHEMA}
    settings = keep(load_settings(tables["Settings"], period))
    plans = keep(load_plans(tables["Plans"], tables["Tiers"]))
    listed = plan_names(tables["Plans"])
    types = keep(load_user_types(tables["UserTypes"]))
    clients = keep(load_clients(tables["Clients"], plans, listed))
    names = {c.name.lower() for c in clients}
    roster = keep(load_roster(tables["Roster"], names, plans, types, listed))
    devices = keep(load_devices(tables["Devices"], names))
    addons = keep(load_addons(tables["AddOns"], names))
    usage = keep(load_usage(tables["Usage"], names))
    if settings is not None:
        found += far_dates(tables, settings.period)
    inv = tables["Invoices"]
    invoices = inv.frame if inv is not None else pd.DataFrame()
    problems = [p for p in found if p.severity != "warning"]
    if problems or settings is None:
        raise InputProblems(problems)
    return Book(name, settings, plans, types, clients, roster, devices, addons, usage,
                invoices, [p for p in found if p.severity == "warning"])


FAR_YEARS = 5
"""Dates further than this from the billing period are probably typos (2062 for 2026)."""


def far_dates(tables: dict[str, Table | None], period: Period) -> list[Problem]:
    """One warning per date column holding dates more than :data:`FAR_YEARS` years from ``period``."""
    mid = day_number(period.first)
    reach = FAR_YEARS * 366
    out: list[Problem] = []
    for name, cols in SCHEMA.items():
        t = tables.get(name)
        if t is None or name in ("Invoices",):
            continue
        for c in cols:
            if c.kind != "date" or c.name not in t.frame:
                continue
            days = t.frame[c.name].to_numpy(np.int64)
            far = np.flatnonzero((days != FOREVER) & (days != SINCE_EVER) & (np.abs(days - mid) > reach))
            if not len(far):
                continue
            rows = t.frame["_row"].to_numpy()[far]
            shown = ", ".join(f"row {int(r)}: {from_day_number(int(days[i])).isoformat()}"
                              for r, i in zip(rows[:3], far[:3], strict=True))
            more = f" and {len(far) - 3} more" if len(far) > 3 else ""
            out.append(Problem(*t.where(int(rows[0]), c.name),
                               f"{len(far)} date(s) more than {FAR_YEARS} years from {period} ({shown}{more})",
                               "check the year; leave End blank for 'still active' rather than a far-off date",
                               "warning"))
    return out


def prepare_roster(roster: pd.DataFrame) -> pd.DataFrame:
    """Add the matching keys the engine works on, computed once per load.

    ``client_key``/``type_key``/``plan_key`` are lower-case categoricals;
    ``dupkey`` numbers each (client, UserID) that occurs on more than one row
    (trimmed, any case) and is -1 elsewhere.
    """
    out = roster.copy()

    def cat(col: str) -> pd.Series:
        return out[col].str.strip().str.lower().astype("category")

    out["client_key"] = cat("client")
    out["type_key"] = cat("type")
    out["plan_key"] = cat("plan")
    out["status"] = cat("status")
    ucodes, _ = pd.factorize(out["user"].str.strip().str.lower())
    c = out["client_key"].cat.codes.to_numpy(np.int64)
    pair = pd.Series(c * (int(ucodes.max(initial=0)) + 1) + ucodes)
    dup = pair.duplicated(keep=False).to_numpy() & (ucodes >= 0)
    dupkey = np.full(len(out), -1, dtype=np.int64)
    if dup.any():
        dupkey[dup] = pd.factorize(pair[dup])[0]
    out["dupkey"] = dupkey
    return out
