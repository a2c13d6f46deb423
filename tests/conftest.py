"""Scenario builders: a workbook (or an in-memory Book) from compact tables written in the test.

In the spirit of beancount's ``@load_doc``: a test states only what matters to
its scenario and the builder fills in the rest::

    run = bill(plans=[{"Plan": "Std", "Rate": 10}],
               roster=[{"UserID": "ann"}, {"UserID": "bob", "Start": "2026-11-15"}])

Defaults: Settings BillingPeriod 2026-11 and NextInvoiceNumber 1; one plan
``Std`` at 10.00 per user; one client ``Acme`` on the first plan; the
template's default UserTypes; Roster rows of type Employee for the only
client. Rows are dicts keyed by the SPEC §3 column names; a value of the form
``YYYY-MM-DD`` in a date column is written as a real Excel date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.excel.template import SheetSpec, write_workbook
from perseat_addin.model import (
    DEFAULT_USER_TYPES,
    FOREVER,
    SINCE_EVER,
    AddOn,
    Book,
    Client,
    Invoice,
    Period,
    Plan,
    Settings,
    UserType,
    day_number,
)
from perseat_addin.workbook.load import load, prepare_roster
from perseat_addin.workbook.schema import REQUIRED_TABLES

HEADERS: dict[str, tuple[str, ...]] = {
    "Settings": ("Setting", "Value"),
    "Plans": ("Plan", "Rate", "Tiering", "MinUsers", "MinFee", "Basis", "DeviceRate", "IncludedHours",
              "OverageRate", "Taxable", "Description"),
    "Tiers": ("Plan", "UpTo", "Rate", "FlatFee"),
    "UserTypes": ("Type", "Billable", "MinActiveDays", "Definition"),
    "Clients": ("Client", "Plan", "Status", "BillingContact", "BillingEmail", "Address", "PONumber",
                "DiscountPct", "TaxRate", "ProrationMode", "PaymentTermsDays", "Start", "End"),
    "Roster": ("Client", "UserID", "Name", "Email", "Type", "Plan", "Start", "End", "Status", "Source",
               "Notes"),
    "Devices": ("Client", "DeviceID", "Name", "Kind", "Start", "End"),
    "AddOns": ("Client", "Description", "Quantity", "UnitPrice", "PerUser", "Start", "End", "Taxable", "Frequency"),
    "Usage": ("Client", "UserID", "Date", "Tickets", "Hours", "Billable"),
    "Invoices": ("InvoiceNo", "Client", "Period", "IssueDate", "DueDate", "Subtotal", "Discount", "Tax",
                 "Total", "Status", "File"),
}
DATE_COLUMNS = {"Start", "End", "Date", "IssueDate", "DueDate"}
DEFAULT_SETTINGS: dict[str, Any] = {"BillingPeriod": "2026-11", "NextInvoiceNumber": 1}
DEFAULT_PLANS: list[dict[str, Any]] = [{"Plan": "Std", "Rate": 10}]
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Rows = Iterable[Mapping[str, Any]]


def _cell(column: str, value: Any) -> Any:
    if column in DATE_COLUMNS and isinstance(value, str) and _ISO.match(value):
        return dt.date.fromisoformat(value)
    return value


def _rows(table: str, rows: Rows, defaults: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Table rows in HEADERS order; missing columns are blank cells."""
    headers = HEADERS[table]
    out = []
    for r in rows:
        row = {**(defaults or {}), **r}
        unknown = set(row) - set(headers)
        if unknown:
            raise KeyError(f"{table} has no column(s) {sorted(unknown)}")
        out.append(tuple(_cell(h, row.get(h)) for h in headers))
    return out


def workbook_sheets(*, settings: Mapping[str, Any] | None = None, plans: Rows | None = None,
                    tiers: Rows = (), user_types: Rows | None = None, clients: Rows | None = None,
                    roster: Rows = (), devices: Rows = (), addons: Rows = (), usage: Rows = (),
                    invoices: Rows = ()) -> list[SheetSpec]:
    """The SheetSpecs of a scenario, defaults filled in (see the module docstring)."""
    plans = list(DEFAULT_PLANS if plans is None else plans)
    clients = list([{"Client": "Acme", "Plan": plans[0]["Plan"]}] if clients is None else clients)
    only = clients[0]["Client"] if len(clients) == 1 else None
    per_client = {"Client": only} if only else {}
    types = ([{"Type": t.name, "Billable": t.billable, "MinActiveDays": t.min_active_days,
               "Definition": t.definition} for t in DEFAULT_USER_TYPES]
             if user_types is None else list(user_types))
    st = {**DEFAULT_SETTINGS, **(settings or {})}
    specs = [
        SheetSpec("Settings", HEADERS["Settings"], [(k, v) for k, v in st.items() if v is not None]),
        SheetSpec("Plans", HEADERS["Plans"], _rows("Plans", plans)),
        SheetSpec("Tiers", HEADERS["Tiers"], _rows("Tiers", tiers)),
        SheetSpec("UserTypes", HEADERS["UserTypes"], _rows("UserTypes", types)),
        SheetSpec("Clients", HEADERS["Clients"], _rows("Clients", clients)),
        SheetSpec("Roster", HEADERS["Roster"], _rows("Roster", roster, {**per_client, "Type": "Employee"})),
        SheetSpec("Devices", HEADERS["Devices"], _rows("Devices", devices, per_client)),
        SheetSpec("AddOns", HEADERS["AddOns"], _rows("AddOns", addons, per_client)),
        SheetSpec("Usage", HEADERS["Usage"], _rows("Usage", usage, per_client)),
        SheetSpec("Invoices", HEADERS["Invoices"], _rows("Invoices", invoices)),
    ]
    # optional tables with no rows are left out (loading is twice as fast; absent = empty per SPEC §3)
    return [sp for sp in specs if sp.rows or sp.name in REQUIRED_TABLES]


@pytest.fixture
def book(tmp_path: Path) -> Callable[..., Book]:
    """Factory: write the scenario's workbook with ``write_workbook`` and return ``load(path)``.

    Keyword arguments are the tables of :func:`workbook_sheets`; ``period``
    ('YYYY-MM') is passed to ``load``.
    """
    counter = iter(range(10**6))

    def make(*, period: str | None = None, **tables: Any) -> Book:
        path = tmp_path / f"scenario{next(counter)}.xlsx"
        write_workbook(path, workbook_sheets(**tables))
        return load(path, period)

    return make


@pytest.fixture
def bill(book: Callable[..., Book]) -> Callable[..., Run]:
    """Factory: the scenario's workbook priced with ``invoice_run``."""

    def make(**tables: Any) -> Run:
        return invoice_run(book(**tables))

    return make


# --------------------------------------------------------------------------
# In-memory Books (property tests: no xlsx per example)


def _day(d: dt.date | int | None, blank: int) -> int:
    if d is None:
        return blank
    return d if isinstance(d, int) else day_number(d)


def memory_book(*, settings: Settings | None = None, plans: Sequence[Plan], clients: Sequence[Client],
                roster: Iterable[Mapping[str, Any]] = (), devices: Iterable[Mapping[str, Any]] = (),
                addons: Sequence[AddOn] = (), usage: Iterable[Mapping[str, Any]] = (),
                user_types: Sequence[UserType] = DEFAULT_USER_TYPES) -> Book:
    """A Book shaped exactly like ``load``'s, built from model values (no validation).

    Roster rows: client, user, type (default Employee), plan (''), start/end
    (date, day number or None), status ('active'|'disabled'). Devices rows:
    client, device, start, end. Usage rows: client, date, hours (Decimal-able), billable (default True).
    """
    st = settings or Settings(period=Period(2026, 11), next_invoice_number=1)
    ros = list(roster)
    n = len(ros)
    rdf = prepare_roster(pd.DataFrame({
        "row": np.arange(2, n + 2, dtype=np.int64),
        "client": pd.Series([r["client"] for r in ros], dtype="str"),
        "user": pd.Series([r["user"] for r in ros], dtype="str"),
        "name": pd.Series([r.get("name", "") for r in ros], dtype="str"),
        "type": pd.Series([r.get("type", "Employee") for r in ros], dtype="str"),
        "plan": pd.Series([r.get("plan", "") for r in ros], dtype="str"),
        "start": np.array([_day(r.get("start"), SINCE_EVER) for r in ros], dtype=np.int64),
        "end": np.array([_day(r.get("end"), FOREVER) for r in ros], dtype=np.int64),
        "status": pd.Series([r.get("status", "active") for r in ros], dtype="str"),
    }))
    dev = list(devices)
    ddf = pd.DataFrame({
        "row": np.arange(2, len(dev) + 2, dtype=np.int64),
        "client": pd.Series([d["client"] for d in dev], dtype="str"),
        "device": pd.Series([d["device"] for d in dev], dtype="str"),
        "start": np.array([_day(d.get("start"), SINCE_EVER) for d in dev], dtype=np.int64),
        "end": np.array([_day(d.get("end"), FOREVER) for d in dev], dtype=np.int64),
    })
    us = list(usage)
    udf = pd.DataFrame({
        "client": pd.Series([u["client"] for u in us], dtype="str"),
        "user": pd.Series([u.get("user", "") for u in us], dtype="str"),
        "date": np.array([_day(u["date"], SINCE_EVER) for u in us], dtype=np.int64),
        "hours_centi": np.array([int(Decimal(str(u.get("hours", 0))) * 100) for u in us], dtype=np.int64),
        "tickets": np.array([float(u.get("tickets", 0)) for u in us], dtype=np.float64),
        "billable": np.array([bool(u.get("billable", True)) for u in us], dtype=bool),
    })
    return Book(
        path="<memory>", settings=st, plans={p.name.lower(): p for p in plans},
        user_types={t.name.lower(): t for t in user_types}, clients=list(clients),
        roster=rdf, devices=ddf, addons=list(addons), usage=udf, invoices=pd.DataFrame(),
    )


@pytest.fixture(scope="session")
def mem_book() -> Callable[..., Book]:
    """:func:`memory_book` as a fixture (session-scoped, so hypothesis tests may use it)."""
    return memory_book


# --------------------------------------------------------------------------
# Shared helpers for reading invoices in tests (import them: ``from conftest import users, only``)


def users(n: int, prefix: str = "user", **fields: Any) -> list[dict[str, Any]]:
    """``n`` Roster rows ``user1@x`` … sharing ``fields``."""
    return [{"UserID": f"{prefix}{i}@x", **fields} for i in range(1, n + 1)]


def only(run: Run) -> Invoice:
    """The run's one invoice (fails naming every invoice when there are more)."""
    assert len(run.invoices) == 1, [(i.client.name, i.total_cents) for i in run.invoices]
    return run.invoices[0]


def described(inv: Invoice, kind: str) -> list[str]:
    """Descriptions of the invoice's lines of ``kind``."""
    return [ln.description for ln in inv.lines if ln.kind == kind]
