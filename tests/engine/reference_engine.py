"""The invoice engine as it was before its lines were built column by column: the oracle of
``test_engine_matches_reference``.

Kept verbatim from the per-client, per-group engine (Context, count_days, classify, _Pricer, invoice_run),
except that seat prices come from ``pricing.one_seat_price`` one count at a time. The helpers it shares
with the engine (descriptions of tiers, overage, usage hours, recorded invoices) did not change with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd

from perseat_addin.engine.daily import Groups, Series
from perseat_addin.engine.invoicing import (
    NOTHING_TO_BILL,
    Run,
    _contract_text,
    _day,
    _final_clients,
    _hours_by_client,
    _mode_of,
    _overage_line,
    _plural,
    _span,
    _tier_name,
)
from perseat_addin.engine.pricing import PlanTable, day_weights, one_seat_price
from perseat_addin.engine.seats import DayCounts, reasons
from perseat_addin.model import (
    RECURRING,
    AddOn,
    Basis,
    Billable,
    BillingTiming,
    Book,
    Client,
    DocKind,
    Invoice,
    Line,
    LineKind,
    Period,
    Plan,
    ProrationMode,
    Tiering,
    UserType,
    day_number,
)
from perseat_addin.money import (
    MICRO,
    MICROS_PER_CENT,
    PPM,
    Cents,
    Rounding,
    cents_to_decimal,
    fmt_rate,
    micros_to_decimal,
    round_div,
    round_div_array,
)


def _seat_line(plan: Plan, table: PlanTable, p_idx: int, seats: int, price: int) -> tuple[str, Decimal]:
    """Description head and unit price of ``seats`` billed seats of ``plan``."""
    if plan.tiering is Tiering.FLAT or seats == 0:
        return f"{_plural(seats, 'user')} × {fmt_rate(plan.rate_micros)} {plan.name}", \
            micros_to_decimal(plan.rate_micros if plan.tiering is Tiering.FLAT else 0)
    t = int(table.tier_index(np.array(p_idx), np.array(seats)))
    unit = (Decimal(price) / Decimal(seats) / MICRO).quantize(Decimal("0.0001")).normalize()
    if plan.tiering is Tiering.VOLUME:
        rate, fee = int(table.rate[p_idx, t]), int(table.flat[p_idx, t])
        head = f"{_plural(seats, 'user')} × {fmt_rate(rate)} {plan.name} (volume tier {_tier_name(table, p_idx, t)}"
        if fee:
            return f"{head}, + flat fee {fmt_rate(fee)})", unit
        return f"{head})", micros_to_decimal(rate)
    parts = []
    for j in range(t + 1):
        n = min(seats, int(table.upper[p_idx, j])) - int(table.lower[p_idx, j])
        parts.append(f"{n} × {fmt_rate(int(table.rate[p_idx, j]))}")
        if table.flat[p_idx, j]:
            parts.append(f"flat {fmt_rate(int(table.flat[p_idx, j]))}")
    return f"{_plural(seats, 'user')} {plan.name} ({' + '.join(parts)})", unit


IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _seat_prices(plans: list[Plan], plan: IntArray, seats: IntArray) -> IntArray:
    """Price of every (group, day) seat count, one at a time."""
    out = np.zeros(seats.shape, dtype=np.int64)
    for g in range(seats.shape[0]):
        for d in range(seats.shape[1]):
            out[g, d] = one_seat_price(plans[int(plan[g])], int(seats[g, d]))
    return out


def count_days(group: IntArray, key: IntArray, start: IntArray, end: IntArray,
               min_days: IntArray, first_day: int, days: int, n_groups: int) -> DayCounts:
    """Count rows active on each day; rows sharing ``key`` (≥ 0) are one person.

    ``start``/``end`` are inclusive day numbers; ``min_days`` is each row's
    MinActiveDays (a person counts only if active at least that many days of
    the period). A row with group < 0 is ignored.
    """
    n = len(group)
    last_day = first_day + days - 1
    a = np.maximum(start, first_day)
    b = np.minimum(end, last_day)
    active = (b >= a) & (group >= 0)
    span = np.where(active, b - a + 1, 0)
    dup = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(active & (key >= 0))
    if len(cand):
        ks = key[cand]
        _, inverse, counts = np.unique(ks, return_inverse=True, return_counts=True)
        dup[cand] = counts[inverse] > 1
    simple = active & ~dup & (span >= min_days)
    width = days + 1
    flat = np.bincount(group[simple] * width + (a[simple] - first_day), minlength=n_groups * width)
    flat -= np.bincount(group[simple] * width + (b[simple] - first_day + 1),
                        minlength=n_groups * width)
    any_day = np.bincount(group[simple], minlength=n_groups).astype(np.int64)
    counted = simple.copy()
    active_days = span.astype(np.int64)
    if dup.any():
        idx = np.flatnonzero(dup)
        ks = key[idx]
        for kval in np.unique(ks):
            rows = idx[ks == kval]
            rows = rows[np.lexsort((rows, start[rows]))]  # oldest first; a later row wins its days
            owner = np.full(days, -1, dtype=np.int64)
            for r in rows:
                owner[a[r] - first_day: b[r] - first_day + 1] = r
            total = int((owner >= 0).sum())
            latest = rows[-1]
            active_days[rows] = total
            if total < min_days[latest]:
                continue
            for r in rows:
                mask = owner == r
                if not mask.any():
                    continue
                counted[r] = True
                g = int(group[r])
                edges = np.diff(np.concatenate(([0], mask.astype(np.int64), [0])))
                for s in np.flatnonzero(edges == 1):
                    flat[g * width + s] += 1
                for e in np.flatnonzero(edges == -1):
                    flat[g * width + e] -= 1
            any_day[int(group[latest])] += 1
    daily = np.cumsum(flat.reshape(n_groups, width), axis=1)[:, :days]
    return DayCounts(daily.astype(np.int64), any_day, counted, active_days)


def _lookup(cats: pd.Series, table: dict[str, object], default: object) -> npt.NDArray[np.generic]:
    """Map a categorical through ``table`` by its categories (fast on a million rows)."""
    codes = cats.cat.codes.to_numpy()
    values = np.array([table.get(k, default) for k in cats.cat.categories] + [default])
    return values[np.where(codes < 0, len(values) - 1, codes)]


def classify(roster: pd.DataFrame, types: dict[str, UserType],
             client_ok: BoolArray) -> tuple[BoolArray, BoolArray, IntArray]:
    """Per roster row: (billable user candidate, device candidate, MinActiveDays)."""
    billable = _lookup(roster["type_key"], {k: str(t.billable) for k, t in types.items()}, "No")
    min_days = _lookup(roster["type_key"], {k: t.min_active_days for k, t in types.items()}, 0)
    enabled = _lookup(roster["status"], {"disabled": False}, True).astype(bool)
    ok = client_ok & enabled
    return ok & (billable == Billable.YES.value), ok & (billable == Billable.DEVICE.value), min_days.astype(np.int64)


def codes_to(cats: pd.Series, index: dict[str, int]) -> IntArray:
    """Row → index of its (lower-case categorical) key in ``index``, -1 when absent."""
    lut = np.array([index.get(k, -1) for k in cats.cat.categories] + [-1], dtype=np.int64)
    codes = cats.cat.codes.to_numpy()
    return lut[np.where(codes < 0, len(lut) - 1, codes)]


class Context:
    """The engine's Context before it was columnar (seat prices one count at a time)."""

    def __init__(self, book: Book, period: Period, clients: list[Client]):
        self.book = book
        self.period = period
        self.clients = clients
        self.plan_list: list[Plan] = list(book.plans.values())
        self.plan_idx = {k: i for i, k in enumerate(book.plans)}
        self.table = PlanTable.build(self.plan_list)
        self.client_idx = {c.name.lower(): i for i, c in enumerate(clients)}
        self._start = np.array([c.start for c in clients], dtype=np.int64)
        self._end = np.array([c.end for c in clients], dtype=np.int64)
        self._contracts: dict[str, tuple[IntArray, IntArray]] = {}
        self.rounding = book.settings.rounding
        roster = book.roster
        n_plans = max(len(self.plan_list), 1)
        ci = codes_to(roster["client_key"], self.client_idx)
        own_plan = np.array([self.plan_idx[c.plan.lower()] for c in clients], dtype=np.int64)
        pi = codes_to(roster["plan_key"], self.plan_idx)
        pi = np.where(pi < 0, own_plan[np.maximum(ci, 0)] if len(own_plan) else -1, pi)
        own_keys = np.arange(len(clients), dtype=np.int64) * n_plans + own_plan
        row_keys = np.where(ci >= 0, ci * n_plans + pi, -1)
        keys = np.unique(np.concatenate([own_keys, row_keys[row_keys >= 0]]))
        self.groups = Groups(
            client=keys // n_plans, plan=keys % n_plans,
            own=np.searchsorted(keys, own_keys), is_own=np.isin(keys, own_keys),
        )
        self.groups_per_client = np.bincount(self.groups.client, minlength=len(clients))
        lut = np.full(len(clients) * n_plans + 1, -1, dtype=np.int64)  # dense (client, plan) → group
        lut[keys] = np.arange(len(keys))
        self.row_group = lut[row_keys]  # row_keys of -1 hit the last slot, which stays -1
        self.row_client = ci
        self.user_key = np.where(ci >= 0, roster["dupkey"].to_numpy(np.int64), -1)
        self.client_ok = ci >= 0
        dev = book.devices
        self.dev_client = dev["client"].str.lower().map(self.client_idx).fillna(-1).to_numpy(np.int64)
        self.dev_key = pd.factorize(pd.Series(self.dev_client).astype("str") + "\x1f"
                                    + dev["device"].str.strip().str.lower().to_numpy())[0]

    def contract_days(self, period: Period) -> tuple[IntArray, IntArray]:
        """Each client's first and last day index inside its contract in ``period`` (last < first: none)."""
        key = str(period)
        if key not in self._contracts:
            first, n = day_number(period.first), period.days
            lo = np.clip(self._start - first, 0, n)
            hi = np.clip(self._end - first, -1, n - 1)
            self._contracts[key] = (lo, hi)
        return self._contracts[key]

    def contract_mask(self, period: Period) -> npt.NDArray[np.int64]:
        """(C, N) 1 on the days of ``period`` inside each client's contract (Clients Start/End), else 0."""
        lo, hi = self.contract_days(period)
        day = np.arange(period.days, dtype=np.int64)
        return ((day[None, :] >= lo[:, None]) & (day[None, :] <= hi[:, None])).astype(np.int64)

    def series(self, period: Period) -> Series:
        """Count and price every group on every day of ``period``."""
        book, g = self.book, self.groups
        first, n_days = day_number(period.first), period.days
        n_groups, n_clients = len(g.client), len(self.clients)
        roster = book.roster
        user_cand, dev_cand, min_days = classify(roster, book.user_types, self.client_ok)
        start = roster["start"].to_numpy(np.int64)
        end = roster["end"].to_numpy(np.int64)
        uc = count_days(np.where(user_cand, self.row_group, -1), self.user_key, start, end,
                        min_days, first, n_days, n_groups)
        # shared devices: Devices rows and Device-type users, in the client's own group
        own_of_row = np.where(self.row_client >= 0, g.own[np.maximum(self.row_client, 0)], -1)
        own_of_dev = np.where(self.dev_client >= 0, g.own[np.maximum(self.dev_client, 0)], -1)
        offset = int(self.dev_key.max()) + 1 if len(self.dev_key) else 0
        dc = count_days(
            np.concatenate([own_of_dev, np.where(dev_cand, own_of_row, -1)]),
            np.concatenate([self.dev_key, np.where(self.user_key >= 0, self.user_key + offset, -1)]),
            np.concatenate([book.devices["start"].to_numpy(np.int64), start]),
            np.concatenate([book.devices["end"].to_numpy(np.int64), end]),
            np.zeros(len(self.dev_key) + len(start), np.int64), first, n_days, n_groups)
        inside = self.contract_mask(period)  # (C, N): days inside each client's contract
        users = uc.daily * inside[g.client]
        client_users = np.zeros((n_clients, n_days), np.int64)
        np.add.at(client_users, g.client, users)
        any_inside: IntArray = inside.max(axis=1) if inside.size else np.zeros(n_clients, np.int64)
        client_any = np.bincount(g.client, weights=uc.any_day * any_inside[g.client],
                                 minlength=n_clients).astype(np.int64)
        t = self.table
        own_plan = g.plan[g.own]
        pad = np.maximum(t.min_users[own_plan][:, None] - client_users, 0) * inside
        pad_any = np.maximum(t.min_users[own_plan] - client_any, 0) * any_inside
        seats = users.copy()
        seats[g.own] += pad
        full = uc.any_day * any_inside[g.client]
        full[g.own] += pad_any
        greater = t.greater[g.plan] & g.is_own
        devices = dc.daily * inside[g.client]
        dev_any = dc.any_day * any_inside[g.client]
        seats = np.where(greater[:, None], np.maximum(seats, devices), seats)
        full = np.where(greater, np.maximum(full, dev_any), full)
        devices = np.where(greater[:, None], 0, devices)
        full_dev = np.where(greater, 0, dev_any)
        return Series(
            period=period, users=users, seats=seats,
            seat_price=_seat_prices(self.plan_list, g.plan, seats),
            devices=devices, device_price=devices * t.device_rate[g.plan][:, None],
            client_users=client_users, full_seats=full, full_devices=full_dev,
            client_users_any=client_any, user_counts=uc,
        )



def _change_index(diff: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Nonzero changes of a (G, N−1) day-to-day difference: (group, day index, start offset per group)."""
    g, d = np.nonzero(diff)
    starts = np.searchsorted(g, np.arange(diff.shape[0] + 1))
    return g, d + 1, starts


class _Pricer:
    """Builds the recurring lines (seats, devices, add-ons) of one period for each client."""

    def __init__(self, ctx: Context, s: Series, prefix: str = ""):
        self.ctx, self.s, self.prefix = ctx, s, prefix
        st = ctx.book.settings
        self.remaining, self.weights, self.denom = day_weights(s.period.days, st.day_count)
        r = self.remaining
        self.seat_changes = _change_index(np.diff(s.seat_price, axis=1))
        self.dev_changes = _change_index(np.diff(s.device_price, axis=1))
        g, d, _ = self.seat_changes
        dp = s.seat_price[g, d] - s.seat_price[g, d - 1]
        self.seat_change_cents = round_div_array(dp * r[d], self.denom * MICROS_PER_CENT, ctx.rounding)
        g2, d2, _ = self.dev_changes
        dd = s.device_price[g2, d2] - s.device_price[g2, d2 - 1]
        self.dev_change_cents = round_div_array(dd * r[d2], self.denom * MICROS_PER_CENT, ctx.rounding)
        snap = st.snapshot_day
        self.snap_idx = s.period.days - 1 if snap is None else min(snap, s.period.days) - 1
        # plain Python values for the per-client loop (numpy scalars are slow one at a time)
        first = s.period.first
        self.day_label = [_day(first + dt.timedelta(days=i)) for i in range(s.period.days)]
        self.days_label = [f"{int(x)}/{self.denom} days" for x in r]
        self.span = _span(s.period)
        self.seat_text: dict[tuple[int, int, int], tuple[str, Decimal]] = {}
        self.seats0 = s.seats[:, 0].tolist()
        self.seats_last = s.seats[:, -1].tolist()
        self.price0 = s.seat_price[:, 0].tolist()
        self.users0 = s.client_users[:, 0].tolist()
        self.is_own = ctx.groups.is_own.tolist()
        self.group_plan = ctx.groups.plan.tolist()
        self.group_client = ctx.groups.client.tolist()
        self.contracts = ctx.contract_mask(s.period)
        lo, hi = ctx.contract_days(s.period)
        self.contract_lo, self.contract_hi = lo.tolist(), hi.tolist()
        self.seat_rows = self._change_rows(self.seat_changes, s.seats, s.seat_price, self.seat_change_cents)
        self.dev_rows = self._change_rows(self.dev_changes, s.devices, s.device_price, self.dev_change_cents)

    @staticmethod
    def _change_rows(changes: tuple[IntArray, IntArray, IntArray], count: IntArray, price: IntArray,
                     cents: IntArray) -> tuple[list[int], list[tuple[int, int, int, int]]]:
        g, d, starts = changes
        delta = (count[g, d] - count[g, d - 1]).tolist()
        dprice = (price[g, d] - price[g, d - 1]).tolist()
        return starts.tolist(), list(zip(d.tolist(), delta, dprice, cents.tolist(), strict=True))

    def contract_share(self, c: int) -> tuple[int, int]:
        """The part of the month client ``c``'s contract covers, as (r, D) with the workbook's DayCount:
        (D, D) for a whole month, (0, D) for none."""
        lo, hi = self.contract_lo[c], self.contract_hi[c]
        if hi < lo:
            return 0, self.denom
        if lo == 0 and hi == len(self.remaining) - 1:
            return self.denom, self.denom
        after = int(self.remaining[hi + 1]) if hi + 1 < len(self.remaining) else 0
        return int(self.remaining[lo]) - after, self.denom

    def cents(self, micros: int) -> Cents:
        return Cents(round_div(micros, MICROS_PER_CENT, self.ctx.rounding))

    def padding_note(self, g: int, mode: ProrationMode, base_only: bool, seats: int, plan: Plan) -> str:
        """Why billed seats exceed users: MinUsers, or shared devices under Basis=greater."""
        s = self.s
        c = self.group_client[g]
        if mode is ProrationMode.FULL and not base_only:
            users = int(s.client_users_any[c])
        elif base_only or mode is ProrationMode.DAILY:
            users = self.users0[c]
        else:
            day = self.snap_idx if mode is ProrationMode.SNAPSHOT else int(np.argmax(s.seats[g]))
            users = int(s.client_users[c, day])
        if users >= seats:
            return ""
        if plan.basis is Basis.GREATER and seats > max(users, plan.min_users):
            return f" (greater of {_plural(users, 'user')} and {_plural(seats, 'shared device')})"
        return f" (minimum {plan.min_users}; {_plural(users, 'user')})"

    def group_lines(self, g: int, mode: ProrationMode, base_only: bool) -> list[Line]:
        """Seat and device lines of group ``g``; ``base_only`` charges day 1 for the month."""
        ctx, s = self.ctx, self.s
        p_idx = self.group_plan[g]
        plan = ctx.plan_list[p_idx]
        period = s.period
        out: list[Line] = []
        daily = base_only or mode is ProrationMode.DAILY
        if daily:
            seats0, price0 = self.seats0[g], self.price0[g]
            when = self.span
        else:
            if mode is ProrationMode.SNAPSHOT:
                day = self.snap_idx
                seats0, price0 = int(s.seats[g, day]), int(s.seat_price[g, day])
                when = f"as of {self.day_label[day]}"
            elif mode is ProrationMode.PEAK:
                day = int(np.argmax(s.seats[g]))
                seats0, price0 = int(s.seats[g, day]), int(s.seat_price[g, day])
                when = f"peak on {self.day_label[day]}"
            else:
                seats0 = int(s.full_seats[g])
                price0 = one_seat_price(plan, seats0)
                when = f"everyone active in {period.first:%b}"
        cache_key = (p_idx, seats0, price0)
        if cache_key not in self.seat_text:
            self.seat_text[cache_key] = _seat_line(plan, ctx.table, p_idx, seats0, price0)
        head, unit = self.seat_text[cache_key]
        if plan.basis is Basis.GREATER:
            head = head.replace(_plural(seats0, "user"), _plural(seats0, "seat"), 1)
        if self.is_own[g] and seats0:
            head += self.padding_note(g, mode, base_only, seats0, plan)
        if seats0 or price0:
            out.append(Line(LineKind.SEATS, f"{self.prefix}{head}, {when}", Decimal(seats0), unit,
                            self.cents(price0), plan.taxable, plan.name))
        if mode is ProrationMode.DAILY and not base_only:
            starts, rows = self.seat_rows
            for d, delta, dprice, cents in rows[starts[g]:starts[g + 1]]:
                who = _plural(abs(delta), "user") if delta else "price change"
                sign = "+" if delta > 0 else "−" if delta < 0 else ""
                text = f"{self.prefix}{plan.name} {sign}{who} from {self.day_label[d]}, {self.days_label[d]}"
                unit_d = (Decimal(dprice) / delta / MICRO) if delta else Decimal(dprice) / MICRO
                out.append(Line(LineKind.SEAT_CHANGE, text, Decimal(delta or 1), unit_d, Cents(cents), plan.taxable,
                                plan.name))
        # shared devices billed separately
        rate = plan.device_rate_micros
        if rate and self.is_own[g]:
            if daily:
                n0 = int(s.devices[g, 0])
            elif mode is ProrationMode.SNAPSHOT:
                n0 = int(s.devices[g, self.snap_idx])
            elif mode is ProrationMode.PEAK:
                n0 = int(s.devices[g].max())
            else:
                n0 = int(s.full_devices[g])
            if n0:
                out.append(Line(LineKind.DEVICES, f"{self.prefix}{_plural(n0, 'shared device')} × "
                                f"{fmt_rate(rate)}, {when}", Decimal(n0), micros_to_decimal(rate),
                                self.cents(n0 * rate), plan.taxable, plan.name))
            if mode is ProrationMode.DAILY and not base_only:
                starts, rows = self.dev_rows
                for d, delta, _, cents in rows[starts[g]:starts[g + 1]]:
                    sign = "+" if delta > 0 else "−"
                    out.append(Line(LineKind.DEVICE_CHANGE,
                                    f"{self.prefix}Devices {sign}{_plural(abs(delta), 'shared device')} from "
                                    f"{self.day_label[d]}, {self.days_label[d]}",
                                    Decimal(delta), micros_to_decimal(rate), Cents(cents), plan.taxable,
                                    plan.name))
        return out

    def one_time_line(self, a: AddOn, c: int) -> Line | None:
        """A Frequency ``once`` add-on: in full on the invoice of the period containing its Start."""
        s = self.s
        first = day_number(s.period.first)
        day = a.start - first
        if not 0 <= day < s.period.days or not self.contracts[c][day]:
            return None
        users = int(s.client_users[c, day]) if a.per_user else 1
        micro2 = a.quantity_micros * a.unit_price_micros * users
        cents = round_div(micro2, MICRO * MICRO // 100, self.ctx.rounding)
        qty = micros_to_decimal(a.quantity_micros) * users
        desc = a.description
        if a.per_user:
            desc += f": {_plural(users, 'user')} on {self.day_label[day]} × {fmt_rate(a.unit_price_micros)}"
        elif qty != 1:
            desc += f": {qty.normalize():f} × {fmt_rate(a.unit_price_micros)}"
        return Line(LineKind.ONE_TIME, f"{self.prefix}{desc}, one-time ({self.day_label[day]})", qty,
                    micros_to_decimal(a.unit_price_micros), Cents(cents), a.taxable)

    def addon_line(self, a: AddOn, c: int, mode: ProrationMode, base_only: bool) -> Line | None:
        """The add-on's line for the period (None when it is not active in it)."""
        s = self.s
        first = day_number(s.period.first)
        n_days = s.period.days
        lo, hi = max(a.start, first) - first, min(a.end, first + n_days - 1) - first
        lo, hi = max(lo, self.contract_lo[c]), min(hi, self.contract_hi[c])
        if hi < lo:
            return None
        active = np.zeros(n_days, dtype=bool)
        active[lo:hi + 1] = True
        per_unit = a.quantity_micros * a.unit_price_micros  # micro·micro
        users = s.client_users[c] if a.per_user else np.ones(n_days, np.int64)
        values = [per_unit * int(u) if on else 0 for u, on in zip(users, active, strict=True)]
        scale = MICRO * MICRO // 100  # micro·micro per cent
        if base_only:
            num, den, qty_users = values[0], 1, int(users[0])
        elif mode is ProrationMode.DAILY:
            num = sum(v * int(w) for v, w in zip(values, self.weights, strict=True))
            den, qty_users = self.denom, int(users[lo])
        elif mode is ProrationMode.SNAPSHOT:
            num, den, qty_users = values[self.snap_idx], 1, int(users[self.snap_idx])
        elif mode is ProrationMode.PEAK:
            day = int(np.argmax(values))
            num, den, qty_users = values[day], 1, int(users[day])
        else:
            qty_users = int(s.client_users_any[c]) if a.per_user else 1
            num, den = per_unit * qty_users, 1
        if num == 0 and base_only:
            return None
        cents = round_div(num, den * scale, self.ctx.rounding)
        qty = micros_to_decimal(a.quantity_micros)
        unit = micros_to_decimal(a.unit_price_micros)
        desc = a.description
        if a.per_user:
            times = "" if qty == 1 else f"{qty.normalize():f} × "
            desc += f": {times}{_plural(qty_users, 'user')} × {fmt_rate(a.unit_price_micros)}"
            qty = qty * qty_users
        elif qty != 1:
            desc += f": {qty.normalize():f} × {fmt_rate(a.unit_price_micros)}"
        if not base_only and mode is ProrationMode.DAILY and (lo > 0 or hi < n_days - 1
                                                             or len(set(values)) > 1):
            days = f"{_day(s.period.first + dt.timedelta(days=lo))}–{hi + 1}"
            desc += f", {days}, prorated daily"
        else:
            desc += f", {_span(s.period)}"
        return Line(LineKind.ADDON, f"{self.prefix}{desc}", qty, unit, Cents(cents), a.taxable)




def invoice_run(book: Book, period: Period | None = None,
                progress: Callable[[int], None] | None = None,
                corrections: Mapping[str, Sequence[Line]] | None = None) -> Run:
    """Price every active client of ``book`` for ``period`` (default: BillingPeriod); ``corrections`` (by
    lower-case client name) are late changes to recorded periods, added to that client's invoice after its
    own charges (they never count toward this month's MinFee)."""
    st = book.settings
    period = period or st.period
    final = _final_clients(book, period)
    clients = [c for c in book.clients if c.active and c.name.lower() not in final]
    skipped = [(c.name, "inactive") for c in book.clients if not c.active]
    skipped += [(c.name, f"already {final[c.name.lower()]}") for c in book.clients
                if c.active and c.name.lower() in final]
    if not clients:
        return Run(book, period, [], skipped)
    ctx = Context(book, period, clients)
    advance = st.billing_timing is BillingTiming.ADVANCE
    cur = ctx.series(period)
    pricer = _Pricer(ctx, cur)
    prev_pricer = None
    if advance:
        prev = period.prev()
        prev_pricer = _Pricer(ctx, ctx.series(prev), prefix=f"{prev.first:%b} adjustment: ")
    usage_period = period.prev() if advance else period
    hours = _hours_by_client(book, ctx, usage_period)
    usage_users = (prev_pricer.s if prev_pricer else cur).client_users
    addons_by_client: dict[int, list[AddOn]] = {}
    for a in book.addons:
        ci = ctx.client_idx.get(a.client.lower())
        if ci is not None:
            addons_by_client.setdefault(ci, []).append(a)
    groups_by_client: dict[int, list[int]] = {}
    for gi, ci in enumerate(ctx.groups.client):
        groups_by_client.setdefault(int(ci), []).append(gi)
    issue = period.first if advance else period.next().first
    number = st.next_invoice_number
    invoices: list[Invoice] = []
    for ci, client in enumerate(clients):
        if pricer.contract_hi[ci] < pricer.contract_lo[ci] and (
                prev_pricer is None or prev_pricer.contract_hi[ci] < prev_pricer.contract_lo[ci]):
            skipped.append((client.name, f"outside its contract ({_contract_text(client)})"))
            if progress:
                progress(1)
            continue
        mode = _mode_of(client, book)
        lines: list[Line] = []
        gs = sorted(groups_by_client.get(ci, []), key=lambda g: (not ctx.groups.is_own[g], g))
        for g in gs:
            lines += pricer.group_lines(g, mode, base_only=advance)
        client_addons = addons_by_client.get(ci, ())
        recurring_addons = [a for a in client_addons if not a.once] if client_addons else []
        for a in client_addons:
            ln = pricer.one_time_line(a, ci) if a.once else pricer.addon_line(a, ci, mode, base_only=advance)
            if ln is not None:
                lines.append(ln)
        plan = ctx.plan_list[int(ctx.groups.plan[ctx.groups.own[ci]])]
        if prev_pricer is not None:
            lines += _adjustment_lines(prev_pricer, gs, recurring_addons, ci, mode, plan)
        ov = _overage_line(plan, hours.get(ci, 0), usage_users[ci], usage_period, ctx.rounding)
        if ov is not None:
            lines.append(ov)
        min_fee = 0
        if plan.min_fee_micros:
            recurring = sum(ln.amount_cents for ln in lines if ln.kind in RECURRING)
            share = pricer.contract_share(ci)
            min_fee = round_div(plan.min_fee_micros * share[0], MICROS_PER_CENT * share[1], ctx.rounding)
        if min_fee > 0 and recurring < min_fee:
            part = "" if share[0] == share[1] else f" ({share[0]}/{share[1]} days of contract)"
            lines.append(Line(LineKind.MINIMUM, f"Minimum monthly fee adjustment{part}", Decimal(1),
                              cents_to_decimal(min_fee - recurring), Cents(min_fee - recurring),
                              plan.taxable))
        lines = [ln for ln in lines if ln.amount_cents or ln.kind in (LineKind.SEATS, LineKind.ADDON)]
        lines += (corrections or {}).get(client.name.lower(), ())
        if not lines or all(ln.amount_cents == 0 for ln in lines):
            skipped.append((client.name, NOTHING_TO_BILL))
            if progress:
                progress(1)
            continue
        lines += _discount_and_tax(lines, client, st.default_tax_ppm, ctx.rounding)
        terms = st.payment_terms_days if client.payment_terms_days is None else client.payment_terms_days
        doc = Invoice(
            number=f"{st.invoice_prefix}{number}", client=client, period=period,
            issue_date=issue, due_date=issue + dt.timedelta(days=terms),
            currency=st.currency, lines=tuple(lines),
            seats=sum(pricer.seats_last[g] for g in gs),
        )
        if doc.total_cents < 0:  # never an invoice with a negative total: a credit note (SPEC §4)
            doc = replace(doc, number=f"{st.credit_prefix}{number}", due_date=issue, kind=DocKind.CREDIT,
                          reason=f"the charges for {period.label()} came to less than nothing")
        invoices.append(doc)
        number += 1
        if progress:
            progress(1)

    def _why() -> pd.Series:
        all_ok = ctx.client_ok
        dev_rows = classify(book.roster, book.user_types, all_ok)[1]
        uc = cur.user_counts
        return reasons(book.roster, book.user_types, uc.counted, dev_rows, uc.active_days,
                       day_number(period.first), period.days, all_ok)

    return Run(book, period, invoices, skipped, _why)


def _adjustment_lines(p: _Pricer, groups: list[int], addons: list[AddOn], ci: int,
                      mode: ProrationMode, plan: Plan) -> list[Line]:
    """Previous period as priced by ProrationMode, minus what was billed in advance.

    Both sides include the previous month's MinFee top-up, so a client under its
    minimum in both is not charged twice for it.
    """
    out: list[Line] = []
    actual = billed = 0
    for g in groups:
        full = p.group_lines(g, mode, base_only=False)
        base = p.group_lines(g, mode, base_only=True)
        actual += sum(ln.amount_cents for ln in full)
        billed += sum(ln.amount_cents for ln in base)
        if mode is ProrationMode.DAILY:
            changes = (LineKind.SEAT_CHANGE, LineKind.DEVICE_CHANGE)
            out += [replace(ln, kind=LineKind.ADJUSTMENT) for ln in full if ln.kind in changes]
            continue
        diff = sum(ln.amount_cents for ln in full) - sum(ln.amount_cents for ln in base)
        if diff:
            out.append(Line(LineKind.ADJUSTMENT, f"{full[0].description} vs. billed in advance"
                            if full else f"{p.prefix}seats", Decimal(1), cents_to_decimal(diff),
                            Cents(diff), full[0].taxable if full else True))
    for a in addons:
        full_a = p.addon_line(a, ci, mode, base_only=False)
        base_a = p.addon_line(a, ci, mode, base_only=True)
        diff = (full_a.amount_cents if full_a else 0) - (base_a.amount_cents if base_a else 0)
        actual += full_a.amount_cents if full_a else 0
        billed += base_a.amount_cents if base_a else 0
        if diff and full_a is not None:
            out.append(Line(LineKind.ADJUSTMENT, f"{full_a.description} vs. billed in advance",
                            Decimal(1), cents_to_decimal(diff), Cents(diff), a.taxable))
    min_fee = p.cents(plan.min_fee_micros)
    if min_fee:
        offset = (max(actual, min_fee) - max(billed, min_fee)) - (actual - billed)
        if offset:
            out.append(Line(LineKind.ADJUSTMENT, f"{p.prefix}difference covered by the minimum monthly fee",
                            Decimal(1), cents_to_decimal(offset), Cents(offset), plan.taxable))
    return out



def _discount_and_tax(lines: list[Line], client: Client, default_tax_ppm: int,
                      rounding: Rounding) -> list[Line]:
    out: list[Line] = []
    subtotal = sum(ln.amount_cents for ln in lines)
    taxable = sum(ln.amount_cents for ln in lines if ln.taxable)
    pct = client.discount_ppm
    if pct and subtotal:
        disc = round_div(-pct * subtotal, PPM, rounding)  # a credit, rounded like any other line
        out.append(Line(LineKind.DISCOUNT, f"Discount {Decimal(pct) / 10000:.4g}%", Decimal(1),
                        cents_to_decimal(disc), Cents(disc), False))
    rate = default_tax_ppm if client.tax_ppm is None else client.tax_ppm
    if rate and taxable:
        base_num = taxable * (PPM - pct)  # cents × ppm
        tax = round_div(rate * base_num, PPM * PPM, rounding)
        base = Decimal(base_num) / PPM / 100
        out.append(Line(LineKind.TAX, f"Tax {Decimal(rate) / 10000:.4g}% on {base:,.2f}", Decimal(1),
                        cents_to_decimal(tax), Cents(tax), False))
    return out
