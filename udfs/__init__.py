"""Excel functions (xlwings UDFs, SPEC §5): thin wrappers over the perseat engine.

Each function turns what Excel passes into domain values (``_excel``), calls
the engine (:mod:`perseat_addin.excel.functions` and :mod:`perseat_addin.engine`, which prices with the same code as
the invoices) and returns a number, a text or a 2-D list to spill. Names,
argument order, descriptions and xlwings options live in ``_spec.FUNCTIONS``;
bad input answers ``#PERSEAT! …`` in the cell.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perseat_addin.engine.advice import recommend_plan, recommend_price
from perseat_addin.engine.measures import billable_users, usage_per_user
from perseat_addin.engine.pricing import min_fee_topup, month_of, per_user_price, prorate, seat_charge, to_cents
from perseat_addin.errors import ArgumentError
from perseat_addin.excel import functions as fx
from perseat_addin.model import DayCount, Invoice, Plan, Tiering
from perseat_addin.money import Rounding

from ._excel import (
    PREFIX,
    Upstream,
    choice,
    count,
    date,
    excel_function,
    money,
    number,
    one,
    required_table,
    table,
    text,
)
from ._spec import FUNCTIONS, SPECS, ArgSpec, FunctionSpec

MODES = {"graduated": Tiering.GRADUATED, "volume": Tiering.VOLUME}
DAY_COUNTS = {d.value: d for d in DayCount}
ROUNDINGS = {r.value: r for r in Rounding}
MEASURES = {"hours": "hours", "tickets": "tickets"}
PREVIEW_HEADER = ["Line", "Kind", "Description", "Quantity", "UnitPrice", "Amount"]


def _plan(plan: Any, plans: Any, tiers: Any = None, priced: bool = True) -> Plan:
    """``plan`` as a Plan: a name looked up in ``plans``/``tiers``, or a number = a flat rate per user.

    ``priced=False``: only MinUsers/MinFee are wanted, so a tiered plan needs no tiers.
    """
    v = one(plan, "plan")
    if v is None:
        raise ArgumentError("plan is blank")
    rows = table(plans, "plans")
    if isinstance(v, int | float) and not isinstance(v, bool):
        return fx.flat_plan(number(v, "plan"))
    name = text(v, "plan")
    if rows is None:
        try:
            return fx.flat_plan(number(name, "plan"))
        except ArgumentError:
            raise ArgumentError(f'plans is blank: needed to look up plan "{name}" (e.g. Plans[#All])') from None
    return fx.load_plans(rows, table(tiers, "tiers")).find(name, priced)


@excel_function
def SEATCHARGE(users: Any, plan: Any, plans: Any = None, tiers: Any = None, devices: Any = None) -> Any:
    n = count(users, "users")
    d = count(devices, "devices", 0)
    return money(seat_charge(_plan(plan, plans, tiers), n, d).total_cents)


def _tiers(tiers: Any, mode: Any) -> Plan:
    m = choice(mode, "mode", MODES, Tiering.GRADUATED)
    return fx.tier_plan(required_table(tiers, "tiers", "Tiers"), m)


@excel_function
def TIERPRICE(users: Any, tiers: Any, mode: Any = None) -> Any:
    n = count(users, "users")
    return float(per_user_price(_tiers(tiers, mode), n))


@excel_function
def TIERCHARGE(users: Any, tiers: Any, mode: Any = None) -> Any:
    n = count(users, "users")
    return money(seat_charge(_tiers(tiers, mode), n).seat_cents)


@excel_function
def BILLEDSEATS(users: Any, plan: Any, plans: Any) -> Any:
    n = count(users, "users")
    return seat_charge(_plan(plan, required_table(plans, "plans", "Plans"), priced=False), n).seats


@excel_function
def MINFEETOPUP(charge: Any, plan: Any, plans: Any) -> Any:
    cents = to_cents(number(charge, "charge"))
    return money(min_fee_topup(_plan(plan, required_table(plans, "plans", "Plans"), priced=False), cents))


def _handle(value: Any, name: str) -> str | None:
    """The handle text when ``value`` is a PERSEATBOOK/PERSEATUSAGE cell, else None."""
    if isinstance(value, str):
        if value.startswith(PREFIX):
            raise Upstream(value)
        if fx.is_handle(value):
            return value
    return None


def _unused(value: Any, name: str, why: str) -> None:
    """Refuse an argument the handle form has no use for."""
    given = table(value, name) is not None if isinstance(value, list | tuple) else one(value, name) is not None
    if given:
        raise ArgumentError(f"{name}: leave it out {why}")


@excel_function
def BILLABLEUSERS(roster: Any, client: Any, as_of: Any, usertypes: Any = None) -> Any:
    book = _handle(roster, "roster")
    name = text(client, "client")
    day = date(as_of, "as_of")
    if book is not None:
        _unused(usertypes, "usertypes", "with Book (it has the workbook's UserTypes)")
        return fx.held_book(book, "roster").billable_users(name, day)
    rows = required_table(roster, "roster", "Roster")
    return billable_users(fx.roster_book(rows, table(usertypes, "usertypes")), name, day)


@excel_function
def PRORATE(amount: Any, start: Any, end: Any, period_start: Any, day_count: Any = None, rounding: Any = None) -> Any:
    value = number(amount, "amount")
    first = date(start, "start", None)
    last = date(end, "end", None)
    within = date(period_start, "period_start")
    dc = choice(day_count, "day_count", DAY_COUNTS, DayCount.ACTUAL)
    rd = choice(rounding, "rounding", ROUNDINGS, Rounding.HALF_UP)
    return money(prorate(value, first, last, within, dc, rd))


@excel_function
def USAGEPERUSER(usage: Any, roster: Any, client: Any = None, period_start: Any = None, measure: Any = None,
                 usertypes: Any = None) -> Any:
    book = _handle(usage, "usage")
    if book is not None:  # USAGEPERUSER(Book, client, period_start, [measure])
        name = text(roster, "client")
        day = date(client, "period_start")
        what = choice(period_start, "measure", MEASURES, "hours")
        _unused(measure, "the fifth argument", "with Book: USAGEPERUSER(Book, client, period_start, [measure])")
        _unused(usertypes, "usertypes", "with Book (it has the workbook's UserTypes)")
        return float(fx.held_book(book, "usage").usage_per_user(name, month_of(day), what))
    usage_rows = required_table(usage, "usage", "Usage")
    roster_rows = required_table(roster, "roster", "Roster")
    name = text(client, "client")
    day = date(period_start, "period_start")
    what = choice(measure, "measure", MEASURES, "hours")
    book_ = fx.roster_book(roster_rows, table(usertypes, "usertypes"), usage_rows)
    return float(usage_per_user(book_, name, month_of(day), what))


@excel_function
def RECOMMENDPRICE(hours_per_user: Any, cost_per_hour: Any, target_margin: Any, other_cost_per_user: Any = None,
                   step: Any = None) -> Any:
    hours = number(hours_per_user, "hours_per_user")
    cost = number(cost_per_hour, "cost_per_hour")
    margin = number(target_margin, "target_margin", percent=True)
    other = number(other_cost_per_user, "other_cost_per_user", Decimal(0))
    rounding_step = number(step, "step", None)
    return float(recommend_price(hours, cost, margin, other, rounding_step))


@excel_function
def RECOMMENDPLAN(hours_per_user: Any, plans: Any, tiers: Any = None, users: Any = None,
                  current_plan: Any = None) -> Any:
    hours = number(hours_per_user, "hours_per_user")
    listed = fx.load_plans(required_table(plans, "plans", "Plans"), table(tiers, "tiers"))
    seats = count(users, "users", None)
    candidates = dict(listed.plans)
    current = text(current_plan, "current_plan", None)
    if current:  # only plans billed on the same Basis: a users client is never offered a kiosk plan
        own = listed.find(current, priced=False)
        candidates = {k: p for k, p in candidates.items() if p.basis is own.basis}
    if seats is None:
        return recommend_plan(candidates.values(), hours).name
    usable = [p for k, p in candidates.items() if k not in listed.without_tiers]
    return recommend_plan(usable, hours, seats, listed.charge).name


def _preview(inv: Invoice) -> list[list[Any]]:
    rows: list[list[Any]] = [list(PREVIEW_HEADER)]
    for k, ln in enumerate(inv.lines, start=1):
        rows.append([k, ln.kind, ln.description, float(ln.quantity), float(ln.unit_price), money(ln.amount_cents)])
    rows.append(["", "total", f"Total {inv.currency}", "", "", money(inv.total_cents)])
    return rows


@excel_function
def INVOICEPREVIEW(client: Any, settings: Any, plans: Any = None, tiers: Any = None, usertypes: Any = None,
                   clients: Any = None, roster: Any = None, devices: Any = None, addons: Any = None,
                   usage: Any = None) -> Any:
    name = text(client, "client")
    book = _handle(settings, "settings")
    if book is not None:  # INVOICEPREVIEW(client, Book)
        for arg, label in ((plans, "plans"), (tiers, "tiers"), (usertypes, "usertypes"), (clients, "clients"),
                           (roster, "roster"), (devices, "devices"), (addons, "addons"), (usage, "usage")):
            if table(arg, label) is not None:
                raise ArgumentError(f"{label}: leave the tables out with Book (it holds the whole workbook)")
        return _preview(fx.held_book(book, "settings").billed(name))
    tables = _tables(settings, plans, tiers, usertypes, clients, roster, devices, addons)
    tables["Usage"] = table(usage, "usage")
    return _preview(fx.invoice_for(fx.workbook_book(tables), name))


def _tables(settings: Any, plans: Any, tiers: Any, usertypes: Any, clients: Any, roster: Any, devices: Any,
            addons: Any) -> dict[str, Any]:
    """The workbook's tables as ranges, the required ones checked."""
    return {
        "Settings": required_table(settings, "settings", "Settings"),
        "Plans": required_table(plans, "plans", "Plans"),
        "Tiers": table(tiers, "tiers"),
        "UserTypes": table(usertypes, "usertypes"),
        "Clients": required_table(clients, "clients", "Clients"),
        "Roster": required_table(roster, "roster", "Roster"),
        "Devices": table(devices, "devices"),
        "AddOns": table(addons, "addons"),
    }


@excel_function
def PERSEATUSAGE(usage: Any) -> Any:
    with fx.gc_paused():
        return fx.usage_handle(required_table(usage, "usage", "Usage", skip=fx.USAGE_UNREAD))


@excel_function
def PERSEATBOOK(settings: Any, plans: Any, tiers: Any, usertypes: Any, clients: Any, roster: Any,
                devices: Any = None, addons: Any = None, usage: Any = None) -> Any:
    with fx.gc_paused():
        return _book(settings, plans, tiers, usertypes, clients, roster, devices, addons, usage)


def _book(settings: Any, plans: Any, tiers: Any, usertypes: Any, clients: Any, roster: Any, devices: Any,
          addons: Any, usage: Any) -> str:
    held = _handle(usage, "usage")
    tables = _tables(settings, plans, tiers, usertypes, clients, roster, devices, addons)
    return fx.priced_book(tables, held if held is not None else table(usage, "usage"))


@excel_function
def CLIENTCHARGE(book: Any, client: Any) -> Any:
    handle = _handle(book, "book")
    if handle is None:
        if one(book, "book") is None:
            raise ArgumentError("book is blank: give the PERSEATBOOK cell, e.g. Book")
        raise ArgumentError("book: give the PERSEATBOOK cell, e.g. Book")
    inv = fx.held_book(handle).invoice(text(client, "client"))
    return 0.0 if inv is None else money(inv.total_cents)


__all__ = [
    "BILLABLEUSERS",
    "BILLEDSEATS",
    "CLIENTCHARGE",
    "FUNCTIONS",
    "INVOICEPREVIEW",
    "MINFEETOPUP",
    "PERSEATBOOK",
    "PERSEATUSAGE",
    "PRORATE",
    "RECOMMENDPLAN",
    "RECOMMENDPRICE",
    "SEATCHARGE",
    "SPECS",
    "TIERCHARGE",
    "TIERPRICE",
    "USAGEPERUSER",
    "ArgSpec",
    "FunctionSpec",
]
