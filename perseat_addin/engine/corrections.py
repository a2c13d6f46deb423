"""Late roster changes to recorded periods (SPEC §4 "Recorded documents and corrections").

When a period is recorded, the Billed table keeps what each invoice billed: per client, plan group and day,
the billable users and shared devices (run-length text such as ``1-9:12;10-30:11``), the recurring amount
billed for the group, and the rules it was priced with (the plan's rates and tiers, MinFee, the proration
settings) as JSON. A client's minimum top-up is a row with a blank Plan.

Before the next invoice, the roster as it stands is counted again for every recorded period; a group whose
days differ is priced again *with the recorded rules* (a later Rate change never reprices the past), and the
difference becomes one correction line per period and plan; the past MinFee still holds. Once that invoice is
recorded, new Billed rows say what the period has now been billed in total, so a later change is measured
against that, whatever order the changes arrive in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from perseat_addin.engine.daily import Context, IntArray
from perseat_addin.engine.invoicing import NOTHING_TO_BILL, Run, invoice_run
from perseat_addin.engine.pricing import day_weights
from perseat_addin.errors import PerseatError
from perseat_addin.model import (
    Basis,
    BillingTiming,
    Book,
    DayCount,
    DocKind,
    Invoice,
    Line,
    LineKind,
    Period,
    Plan,
    ProrationMode,
    Tiering,
)
from perseat_addin.money import MICROS_PER_CENT, ZERO_PPM, Cents, Micros, Rounding, cents_to_decimal, round_div
from perseat_addin.tables import RawTable, is_blank

BILLED = "Billed"
BILLED_COLUMNS = ("InvoiceNo", "Client", "Period", "Plan", "Users", "Devices", "Amount", "Rules")
SEAT_KINDS = (LineKind.SEATS, LineKind.SEAT_CHANGE, LineKind.DEVICES, LineKind.DEVICE_CHANGE)


@dataclass(frozen=True)
class Billed:
    """One Billed row: what a recorded invoice billed a client's plan group for one period."""

    invoice: str
    client: str
    period: Period
    plan: str  # blank: the client's minimum top-up
    users: tuple[int, ...]
    devices: tuple[int, ...]
    amount_cents: int
    rules_text: str

    @property
    def rules(self) -> Mapping[str, Any]:
        """The rules it was priced with (parsed when first needed: most rows are only compared)."""
        return _parse_rules(self.rules_text)


@lru_cache(maxsize=4096)
def _parse_rules(text: str) -> Mapping[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def _billed(invoice: str, client: str, period: Period, plan: str, users: tuple[int, ...],
            devices: tuple[int, ...], amount: int, rules: Mapping[str, Any]) -> Billed:
    return Billed(invoice, client, period, plan, users, devices, amount, json.dumps(dict(rules), sort_keys=True))


@dataclass(frozen=True)
class Correction:
    """A pending correction line for ``client``'s next invoice, and the Billed row it makes true."""

    client: str
    period: Period
    line: Line
    billed: Billed


def runs(days: Sequence[int]) -> str:
    """Daily counts as run-length text, 1-based days: ``[12]*9 + [11]*21`` → ``1-9:12;10-30:11`` (zeros left out)."""
    out: list[str] = []
    start = 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i] != days[start]:
            if days[start]:
                out.append(f"{start + 1}-{i}:{days[start]}" if i - start > 1 else f"{start + 1}:{days[start]}")
            start = i
    return ";".join(out)


def days_of(text: Any, n_days: int) -> tuple[int, ...]:
    """Inverse of :func:`runs`."""
    out = [0] * n_days
    for part in str(text or "").split(";"):
        if not part.strip():
            continue
        span, _, value = part.partition(":")
        lo, _, hi = span.partition("-")
        for d in range(int(lo) - 1, int(hi or lo)):
            if 0 <= d < n_days:
                out[d] = int(value)
    return tuple(out)


def plan_rules(plan: Plan, mode: ProrationMode, book: Book, min_fee: int = 0, addons: int = 0) -> dict[str, Any]:
    """The rules a group was priced with, as JSON-ready values."""
    st = book.settings
    return {"plan": plan.name, "rate": plan.rate_micros, "tiering": plan.tiering.value,
            "tiers": [[u, r, f] for (u, r), f in zip(plan.tiers, plan.tier_flat or [0] * len(plan.tiers),
                                                      strict=True)],
            "min_users": plan.min_users, "min_fee": plan.min_fee_micros, "basis": plan.basis.value,
            "device_rate": plan.device_rate_micros, "taxable": plan.taxable, "mode": mode.value,
            "day_count": st.day_count.value, "rounding": st.rounding.value, "snapshot_day": st.snapshot_day,
            "min_fee_cents": min_fee, "addons_cents": addons}


def rules_plan(rules: Mapping[str, Any]) -> Plan:
    """The plan a Billed row's rules describe."""
    tiers = tuple((None if u is None else int(u), int(r)) for u, r, _ in rules.get("tiers", []))
    flat = tuple(int(f) for _, _, f in rules.get("tiers", []))
    return Plan(str(rules["plan"]), Micros(int(rules["rate"])), Tiering(rules.get("tiering", "flat")),
                int(rules.get("min_users", 0)), Micros(int(rules.get("min_fee", 0))),
                Basis(rules.get("basis", "users")), Micros(int(rules.get("device_rate", 0))),
                taxable=bool(rules.get("taxable", True)), tiers=tiers, tier_flat=flat if any(flat) else ())


def read_billed(t: RawTable | None) -> list[Billed]:
    """The Billed table's rows, in table order (later rows supersede earlier ones)."""
    if t is None:
        return []
    out: list[Billed] = []
    periods: dict[Any, tuple[Period, int]] = {}
    for i, row in enumerate(t.rows):
        if is_blank(row):
            continue
        try:
            cell = t.get(row, "Period")
            if cell not in periods:
                p = Period.parse(Period.key(cell))
                periods[cell] = (p, p.days)
            period, n_days = periods[cell]
            rules = str(t.get(row, "Rules") or "{}")
            _parse_rules(rules)  # a damaged Rules cell is caught here
            amount = int((Decimal(str(t.get(row, "Amount") or 0)) * 100).to_integral_value())
        except (ValueError, ArithmeticError):
            raise PerseatError(f"{t.sheet} row {t.first_row + i}: the program's record of what was billed is "
                               "damaged (its Period, Amount or Rules cell was edited); restore the sheet from the "
                               "workbook's version history — corrections cannot be priced without it") from None
        out.append(Billed(str(t.get(row, "InvoiceNo") or ""), str(t.get(row, "Client") or "").strip(), period,
                          str(t.get(row, "Plan") or "").strip(), days_of(t.get(row, "Users"), n_days),
                          days_of(t.get(row, "Devices"), n_days), amount, rules))
    return out


def billed_row(t: RawTable, b: Billed) -> tuple[Any, ...]:
    """A Billed table row."""
    return t.make({"InvoiceNo": b.invoice, "Client": b.client, "Period": str(b.period), "Plan": b.plan,
                   "Users": runs(b.users), "Devices": runs(b.devices),
                   "Amount": float(cents_to_decimal(b.amount_cents)), "Rules": b.rules_text})


# --------------------------------------------------------------------------
# What a run bills, as Billed rows


def _group_days(book: Book, period: Period, clients: Sequence[str],
                ctx: Context | None = None) -> dict[tuple[str, str], tuple[IntArray, IntArray]]:
    """Users and devices of every (client, plan) group on each day of ``period``, lower-case keys (``ctx``: a
    context already built over those clients, reused across periods)."""
    if ctx is None:
        wanted = set(clients)
        chosen = [c for c in book.clients if c.name.lower() in wanted]
        if not chosen:
            return {}
        ctx = Context(book, period, chosen)
    s = ctx.series(period)
    g = ctx.groups
    names = [c.name.lower() for c in ctx.clients]
    plans = [p.name.lower() for p in ctx.plan_list]
    none = np.zeros(period.days, np.int64)
    out: dict[tuple[str, str], tuple[IntArray, IntArray]] = {}
    for k, (ci, pi, own) in enumerate(zip(g.client.tolist(), g.plan.tolist(), g.is_own.tolist(), strict=True)):
        out[(names[ci], plans[pi])] = (s.users[k], s.devices[k] if own else none)
    return out


def plan_amounts(lines: Sequence[Line]) -> dict[str, int]:
    """What ``lines`` bill each plan group (lower-case plan) in seats and devices, cents."""
    out: dict[str, int] = {}
    for ln in lines:
        if ln.kind in SEAT_KINDS and ln.plan:
            out[ln.plan.lower()] = out.get(ln.plan.lower(), 0) + ln.amount_cents
    return out


def billed_by(run: Run) -> list[Billed]:
    """What each invoice of ``run`` bills per client, plan group and day (and its minimum top-up)."""
    book, period = run.book, run.period
    advance = book.settings.billing_timing is BillingTiming.ADVANCE
    docs = [i for i in run.invoices if i.kind is DocKind.INVOICE or not i.corrects]
    # a client with nothing to bill this month was still billed: nothing (a late joiner is owed a correction)
    idle = {name.lower() for name, why in run.skipped if why == NOTHING_TO_BILL}
    docs += [Invoice("", c, period, period.first, period.first, book.settings.currency, ())
             for c in book.clients if c.name.lower() in idle]
    days = _group_days(book, period, [d.client.name.lower() for d in docs])
    out: list[Billed] = []
    for doc in docs:
        c = doc.client
        mode = c.proration_mode or book.settings.proration_mode
        amounts = plan_amounts(doc.lines)
        addons = sum(ln.amount_cents for ln in doc.lines if ln.kind == LineKind.ADDON)
        minimum = sum(ln.amount_cents for ln in doc.lines if ln.kind == LineKind.MINIMUM)
        own = book.plans.get(c.plan.lower())
        for (client, plan_key), (users, devices) in days.items():
            if client != c.name.lower() or plan_key not in book.plans:
                continue
            plan = book.plans[plan_key]
            u, d = users.tolist(), devices.tolist()
            if advance:  # billed ahead: the first day's count for the whole month
                u, d = [u[0]] * len(u), [d[0]] * len(d)
            out.append(_billed(doc.number, c.name, period, plan.name, tuple(u), tuple(d),
                              amounts.get(plan_key, 0), plan_rules(plan, mode, book)))
        if own is not None:
            out.append(_billed(doc.number, c.name, period, "", (), (), minimum,
                              plan_rules(own, mode, book, min_fee=_min_fee_cents(own, book), addons=addons)))
    if advance and docs:
        out += _settled_previous(run, docs)
    return out


def _settled_previous(run: Run, docs: Sequence[Invoice]) -> list[Billed]:
    """Billing in advance: the invoice for P also settles P−1 (its adjustment line), so P−1 has now been
    billed as it happened — the days and amounts of P−1 priced in arrears."""
    book, prev = run.book, run.period.prev()
    names = {d.client.name.lower(): d.number for d in docs}
    arrears = dataclasses.replace(book, settings=dataclasses.replace(book.settings,
                                                                     billing_timing=BillingTiming.ARREARS),
                                  clients=[c for c in book.clients if c.name.lower() in names],
                                  usage=book.usage.iloc[0:0], invoices=pd.DataFrame())
    days = _group_days(book, prev, list(names))
    out: list[Billed] = []
    for inv in invoice_run(arrears, prev).invoices:
        c = inv.client
        mode = c.proration_mode or book.settings.proration_mode
        amounts = plan_amounts(inv.lines)
        for (client, plan_key), (users, devices) in days.items():
            if client == c.name.lower() and plan_key in book.plans:
                plan = book.plans[plan_key]
                out.append(_billed(names[client], c.name, prev, plan.name, tuple(users.tolist()),
                                  tuple(devices.tolist()), amounts.get(plan_key, 0), plan_rules(plan, mode, book)))
        own = book.plans.get(c.plan.lower())
        if own is not None:
            minimum = sum(ln.amount_cents for ln in inv.lines if ln.kind == LineKind.MINIMUM)
            addons = sum(ln.amount_cents for ln in inv.lines if ln.kind == LineKind.ADDON)
            out.append(_billed(names[c.name.lower()], c.name, prev, "", (), (), minimum,
                              plan_rules(own, mode, book, min_fee=_min_fee_cents(own, book), addons=addons)))
    return out


def _min_fee_cents(plan: Plan, book: Book) -> int:
    return round_div(plan.min_fee_micros, MICROS_PER_CENT, book.settings.rounding)


# --------------------------------------------------------------------------
# Pending corrections


def _segments(delta: Sequence[int], period: Period, noun: str, denom: int) -> list[str]:
    out: list[str] = []
    start = 0
    for i in range(1, len(delta) + 1):
        if i == len(delta) or delta[i] != delta[start]:
            n = delta[start]
            if n:
                first = period.first + dt.timedelta(days=start)
                span = f"{first:%b} {first.day}" + (f"–{i}" if i - start > 1 else "")
                word = noun if abs(n) == 1 else noun + "s"
                out.append(f"{'+' if n > 0 else '−'}{abs(n)} {word} {span} ({i - start}/{denom} days)")
            start = i
    return out


def pending(book: Book, billed: Sequence[Billed], period: Period) -> list[Correction]:
    """Corrections for every recorded period before ``period`` (in advance billing, before the previous one,
    which the regular adjustment line settles) whose roster now differs from what was billed."""
    latest: dict[tuple[str, str, str], Billed] = {}
    for b in billed:
        latest[(b.client.lower(), str(b.period), b.plan.lower())] = b
    advance = book.settings.billing_timing is BillingTiming.ADVANCE
    cutoff = str(period.prev()) if advance else str(period)
    out: list[Correction] = []
    active = {c.name.lower(): c for c in book.clients}
    periods = sorted({p for _, p, _ in latest if p < cutoff})
    if not periods:
        return out
    ctx = Context(book, period, book.clients)  # built once; counted again for each recorded month
    for key in periods:
        x = Period.parse(key)
        recorded = {(c, p): b for (c, pk, p), b in latest.items() if pk == key}
        by_client: dict[str, list[tuple[str, Billed]]] = {}
        for (c, p), b in recorded.items():
            by_client.setdefault(c, []).append((p, b))
        now_days = _group_days(book, x, [], ctx)
        now_by_client: dict[str, list[str]] = {}
        for c, p in now_days:
            now_by_client.setdefault(c, []).append(p)
        changed = []
        for c in sorted(set(by_client) & set(active)):
            groups = {p: b for p, b in by_client[c] if p}
            differs = any(_differs(now_days.get((c, p)), b) for p, b in groups.items())
            joined = any(p not in groups and now_days[(c, p)][0].any() for p in now_by_client.get(c, ()))
            # ProrationMode full bills the users active on any day: a leaver replaced by a joiner keeps every
            # day's count and still changes the price, so such a month is always priced again (and gets a
            # line only when the money differs)
            full = any(b.rules.get("mode") == ProrationMode.FULL.value for _, b in by_client[c])
            if differs or joined or full:
                changed.append(c)
        if changed:
            out += _corrections(book, x, changed, recorded, now_days)
    return out


def _differs(now: tuple[IntArray, IntArray] | None, b: Billed) -> bool:
    """Whether a group's days as the roster stands differ from what was billed."""
    if now is None:
        return any(b.users) or any(b.devices)
    return tuple(now[0].tolist()) != b.users or tuple(now[1].tolist()) != b.devices


def _corrections(book: Book, x: Period, clients: list[str], recorded: Mapping[tuple[str, str], Billed],
                 now_days: Mapping[tuple[str, str], tuple[IntArray, IntArray]]) -> list[Correction]:
    """Price ``clients`` for period ``x`` as the roster stands, with the rules recorded for ``x``."""
    any_rules = next(iter(recorded.values())).rules
    plans = dict(book.plans)
    for (_, p), rec in recorded.items():
        if p:
            plans[p] = rules_plan(rec.rules)
    st = dataclasses.replace(book.settings, billing_timing=BillingTiming.ARREARS,
                             day_count=DayCount(any_rules.get("day_count", book.settings.day_count.value)),
                             rounding=Rounding(any_rules.get("rounding", book.settings.rounding.value)))
    chosen = []
    for c in book.clients:
        key = c.name.lower()
        if key not in clients:
            continue
        mins = recorded.get((key, ""))
        mode = ProrationMode(mins.rules["mode"]) if mins else c.proration_mode
        own = str(mins.rules["plan"]) if mins and str(mins.rules["plan"]).lower() in plans else c.plan
        chosen.append(dataclasses.replace(c, plan=own, proration_mode=mode, active=True, discount_ppm=ZERO_PPM))
    keep = book.roster["client_key"].isin(clients) if "client_key" in book.roster else \
        book.roster["client"].str.lower().isin(clients)
    dev_keep = book.devices["client"].str.lower().isin(clients)
    mini = dataclasses.replace(book, settings=st, plans=plans, clients=chosen, roster=book.roster[keep],
                               devices=book.devices[dev_keep],
                               addons=[a for a in book.addons if a.client.lower() in clients and not a.once],
                               usage=book.usage.iloc[0:0],
                               invoices=pd.DataFrame())
    run = invoice_run(mini, x)
    by_client = {i.client.name.lower(): i for i in run.invoices}
    _, _, denom = day_weights(x.days, st.day_count)
    out: list[Correction] = []
    for c in chosen:
        key = c.name.lower()
        doc = by_client.get(key)
        amounts = plan_amounts(doc.lines if doc else ())
        groups = {p for (cc, p) in recorded if cc == key and p} | {p for (cc, p) in now_days if cc == key}
        total_now = 0
        for p in sorted(groups):
            b = recorded.get((key, p))
            users, devices = now_days.get((key, p), (np.zeros(x.days, np.int64), np.zeros(x.days, np.int64)))
            now = amounts.get(p, 0)
            total_now += now
            was = b.amount_cents if b else 0
            if now == was:  # the days may differ, the money does not: nothing to bill
                continue
            u, d = tuple(users.tolist()), tuple(devices.tolist())
            group_plan = plans.get(p)
            name = group_plan.name if group_plan else p
            mode = c.proration_mode or st.proration_mode
            rules = b.rules if b else (plan_rules(group_plan, mode, book) if group_plan else {})
            new = _billed("", c.name, x, name, u, d, now, rules)
            bu = b.users if b else (0,) * x.days
            bd = b.devices if b else (0,) * x.days
            what = _segments([a - z for a, z in zip(u, bu, strict=True)], x, "user", denom)
            what += _segments([a - z for a, z in zip(d, bd, strict=True)], x, "shared device", denom)
            text = f"Correction for {x.label()}: {name} " + ("; ".join(what) or "repriced")
            diff = now - was
            out.append(Correction(c.name, x, Line(LineKind.CORRECTION, text, Decimal(1), cents_to_decimal(diff),
                                                  Cents(diff), group_plan.taxable if group_plan else True, name), new))
        mins = recorded.get((key, ""))
        if mins is None:
            continue
        # per-user add-ons follow the users: billed again for the month as the roster now stands
        addons_was = int(mins.rules.get("addons_cents", 0))
        addons_now = sum(ln.amount_cents for ln in doc.lines if ln.kind == LineKind.ADDON) if doc else 0
        rules = {**mins.rules, "addons_cents": addons_now}
        taxable = bool(mins.rules.get("taxable", True))
        if addons_now != addons_was:
            diff = addons_now - addons_was
            out.append(Correction(c.name, x, Line(
                LineKind.CORRECTION, f"Correction for {x.label()}: add-ons for the users as they now stand",
                Decimal(1), cents_to_decimal(diff), Cents(diff), taxable),
                _billed("", c.name, x, "", (), (), mins.amount_cents, rules)))
        fee = int(mins.rules.get("min_fee_cents", 0))
        top_now = max(0, fee - total_now - addons_now) if fee else 0
        if top_now != mins.amount_cents:
            diff = top_now - mins.amount_cents
            out.append(Correction(c.name, x, Line(
                LineKind.CORRECTION, f"Correction for {x.label()}: minimum monthly fee adjustment", Decimal(1),
                cents_to_decimal(diff), Cents(diff), taxable), _billed("", c.name, x, "", (), (), top_now, rules)))
    return out


__all__ = ["BILLED", "BILLED_COLUMNS", "Billed", "Correction", "billed_by", "billed_row", "days_of", "pending",
           "plan_rules", "read_billed", "rules_plan", "runs"]
