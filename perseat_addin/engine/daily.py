"""Every plan group's users, seats and prices on every day of a period: the columnar part of invoicing.

Roster rows become per-(client, plan) groups; for each day of the period the groups' billable users,
billed seats (MinUsers, Basis) and tier prices are computed as arrays, so a million rows price in well
under a second. :mod:`.invoicing` turns these arrays into the lines a client reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from perseat_addin.engine.pricing import PlanTable
from perseat_addin.engine.seats import DayCounts, classify, count_days
from perseat_addin.model import Book, Client, Period, Plan, day_number

IntArray = npt.NDArray[np.int64]


@dataclass
class Groups:
    """Plan groups: (client, plan) pairs. Own group g of client c is own[c]."""

    client: IntArray
    plan: IntArray
    own: IntArray
    is_own: npt.NDArray[np.bool_]


@dataclass
class Series:
    """Everything priced for one period, per group (G) and day (N)."""

    period: Period
    users: IntArray  # (G, N) billable users before MinUsers
    seats: IntArray  # (G, N) billed seats
    seat_price: IntArray  # (G, N) micros
    devices: IntArray  # (G, N) shared devices billed separately (0 under Basis=greater)
    device_price: IntArray  # (G, N) micros
    client_users: IntArray  # (C, N) billable users of each client
    full_seats: IntArray  # (G,) seats under ProrationMode full
    full_devices: IntArray  # (G,)
    client_users_any: IntArray  # (C,)
    user_counts: DayCounts
    shared_devices: IntArray | None = None  # (G, N) shared devices (Devices rows, Device-type users), any Basis


def codes_to(keys: pd.Index, index: dict[str, int]) -> IntArray:
    """Each (lower-case) key's index in ``index``, -1 when absent."""
    return np.array([index.get(k, -1) for k in keys.tolist()], dtype=np.int64)


class Context:
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
        own_plan = np.array([self.plan_idx[c.plan.lower()] for c in clients], dtype=np.int64)
        own_keys = np.arange(len(clients), dtype=np.int64) * n_plans + own_plan
        # every (Client category, plan or blank) pair, blank first in each: a row's pair is
        # (client code + 1) × (plans + 1) + its Plan's index + 1, so each row is looked up once
        ccat = np.concatenate([[-1], codes_to(roster["client_key"].cat.categories, self.client_idx)])
        pcat = np.concatenate([[0], codes_to(roster["plan_key"].cat.categories, self.plan_idx) + 1])
        width = n_plans + 1
        pair_client = np.repeat(ccat, width)
        pair_plan = np.tile(np.arange(-1, n_plans), len(ccat))
        pair_plan = np.where(pair_plan < 0, own_plan[np.maximum(pair_client, 0)] if len(own_plan) else -1, pair_plan)
        pair_key = np.where(pair_client >= 0, pair_client * n_plans + pair_plan, -1)
        pair = np.add(roster["client_key"].cat.codes.to_numpy(), 1, dtype=np.int64) * width
        pair += pcat[roster["plan_key"].cat.codes.to_numpy() + 1]
        used = np.zeros(len(pair_key), dtype=bool)
        used[pair] = True
        present = np.zeros(len(clients) * n_plans + 1, dtype=bool)  # dense (client, plan) keys in use
        present[pair_key[used]] = True  # pairs of no known client mark the last slot, cleared next
        present[-1] = False
        present[own_keys] = True
        keys = np.flatnonzero(present)
        own_flag = np.zeros(len(present), dtype=bool)
        own_flag[own_keys] = True
        self.groups = Groups(
            client=keys // n_plans, plan=keys % n_plans,
            own=np.searchsorted(keys, own_keys), is_own=own_flag[keys],
        )
        self.groups_per_client = np.bincount(self.groups.client, minlength=len(clients))
        self.client_first_group = np.searchsorted(self.groups.client, np.arange(len(clients)))
        lut = np.full(len(clients) * n_plans + 1, -1, dtype=np.int64)  # dense (client, plan) → group
        lut[keys] = np.arange(len(keys))
        self.row_group = lut[pair_key][pair]  # pair keys of -1 hit the last slot, which stays -1
        ci = pair_client[pair]
        self.row_client = ci
        self.user_key = np.where(ci >= 0, roster["dupkey"].to_numpy(np.int64), -1)
        self.client_ok = ci >= 0
        dev = book.devices
        self.dev_client = np.array([self.client_idx.get(k, -1) for k in dev["client"].str.lower().tolist()],
                                   dtype=np.int64)
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
        # shared devices: Devices rows and Device-type users (the few rows that are), in the client's own group
        dev_rows = np.flatnonzero(dev_cand)  # only rows of known clients
        own_of_dev = np.where(self.dev_client >= 0, g.own[np.maximum(self.dev_client, 0)], -1)
        offset = int(self.dev_key.max()) + 1 if len(self.dev_key) else 0
        row_key = self.user_key[dev_rows]
        dc = count_days(
            np.concatenate([own_of_dev, g.own[self.row_client[dev_rows]]]),
            np.concatenate([self.dev_key, np.where(row_key >= 0, row_key + offset, -1)]),
            np.concatenate([book.devices["start"].to_numpy(np.int64), start[dev_rows]]),
            np.concatenate([book.devices["end"].to_numpy(np.int64), end[dev_rows]]),
            np.zeros(len(self.dev_key) + len(dev_rows), np.int64), first, n_days, n_groups)
        inside = self.contract_mask(period)  # (C, N): days inside each client's contract
        users = uc.daily * inside[g.client]
        # groups are sorted by client and every client has its own group: sum each client's run of rows
        client_users = np.add.reduceat(users, self.client_first_group, axis=0) if n_clients else \
            np.zeros((0, n_days), np.int64)
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
        devices = shared = dc.daily * inside[g.client]
        dev_any = dc.any_day * any_inside[g.client]
        seats = np.where(greater[:, None], np.maximum(seats, devices), seats)
        full = np.where(greater, np.maximum(full, dev_any), full)
        devices = np.where(greater[:, None], 0, devices)
        full_dev = np.where(greater, 0, dev_any)
        return Series(
            period=period, users=users, seats=seats,
            seat_price=t.seat_price(g.plan, seats),
            devices=devices, device_price=devices * t.device_rate[g.plan][:, None],
            client_users=client_users, full_seats=full, full_devices=full_dev,
            client_users_any=client_any, user_counts=uc, shared_devices=shared,
        )


# --------------------------------------------------------------------------
# Descriptions

def daily_users(book: Book, period: Period) -> dict[str, IntArray]:
    """Billable users of every client (lower-case name) on each day of ``period``, as invoices count them."""
    ctx = Context(book, period, book.clients)
    users = ctx.series(period).client_users
    return {name: users[ci] for name, ci in ctx.client_idx.items()}


__all__ = ["Context", "Groups", "IntArray", "Series", "codes_to", "daily_users"]
