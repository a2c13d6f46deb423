"""Invoices for a period: seats, devices, add-ons, overage, minimums, discount and tax.

The heavy part (every roster row, every day) is columnar and lives in
:mod:`.daily`; this module turns its priced arrays into lines a client
understands, each of a :class:`~perseat_addin.model.LineKind` whose docstring
names the function here that computes it. Every line is rounded to cents once,
here; an invoice total is the exact sum of its lines.

Seat and device lines are built for every plan group at once (``_Pricer.group_lines``):
their amounts as arrays, their words once per distinct line (a large book has a few
thousand distinct lines among tens of thousands); the per-client loop only adds the
rare lines (add-ons, overage, minimums, adjustments) and makes the invoices.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from perseat_addin.engine.daily import Context, IntArray, Series
from perseat_addin.engine.pricing import PlanTable, day_weights
from perseat_addin.engine.seats import classify, reasons
from perseat_addin.model import (
    FOREVER,
    RECURRING,
    SINCE_EVER,
    AddOn,
    Basis,
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
    UserChange,
    day_number,
    fitted,
    from_day_number,
)
from perseat_addin.money import (
    MICRO,
    MICROS_PER_CENT,
    PPM,
    Cents,
    Rounding,
    cents_to_decimal,
    factor_for_micros,
    fmt_rate,
    micros_to_decimal,
    round_div,
    round_div_array,
)


@dataclass
class Run:
    """The result of pricing one period."""

    book: Book
    period: Period
    invoices: list[Invoice]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _reasons: Callable[[], pd.Series] | None = None
    _moves: Callable[[], dict[str, tuple[UserChange, ...]]] | None = None
    _moved: dict[str, tuple[UserChange, ...]] | None = None

    def user_reasons(self) -> pd.Series:
        """Why each Roster row is or is not billed (aligned with ``book.roster``)."""
        if self._reasons is None:
            return pd.Series(["not billed: no active client to invoice in this period"] * len(self.book.roster),
                             dtype="str")
        return self._reasons()

    @property
    def total_cents(self) -> int:
        return sum(i.total_cents for i in self.invoices)

    def user_changes(self, invoice: Invoice) -> tuple[UserChange, ...]:
        """The users who joined or left ``invoice``'s client in the month its seat changes bill (this period in
        arrears, the one before in advance), by plan and day, joiners first: the attached user list. Empty for
        a document re-issued as recorded."""
        if self._moved is None:
            self._moved = self._moves() if self._moves is not None else {}
        if invoice.kind is not DocKind.INVOICE or invoice.period != self.period:
            return ()
        return self._moved.get(invoice.client.name.lower(), ())


def _day(d: dt.date) -> str:
    return f"{d:%b} {d.day}"


def _span(period: Period) -> str:
    return f"{period.first:%b} 1–{period.days}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if abs(n) == 1 else f"{n} {word}s"


def _tier_name(table: PlanTable, p: int, t: int) -> str:
    lo = int(table.lower[p, t]) + 1
    up = int(table.upper[p, t])
    return f"{lo}+" if up >= np.iinfo(np.int64).max // 4 else f"{lo}–{up}"


def _tier_span(table: PlanTable, p: int, t: int, top: int) -> str:
    """The seats of tier ``t`` a count of ``top`` reaches: ``'1–5'``, ``'6–9'``, ``'6'``."""
    lo, up = int(table.lower[p, t]) + 1, min(top, int(table.upper[p, t]))
    return f"{lo}" if lo == up else f"{lo}–{up}"


# --------------------------------------------------------------------------
# Per-client assembly


_MODES = (ProrationMode.DAILY, ProrationMode.SNAPSHOT, ProrationMode.PEAK, ProrationMode.FULL)
"""Proration modes by their code in the per-group arrays (0 = daily)."""


def _distinct(*cols: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct rows of equal-length integer columns: (a row of each distinct row, each row's distinct id), in
    order of first appearance; found by hashing (``pandas.factorize``), column by column, without sorting."""
    n = len(cols[0])
    key, size = np.zeros(n, dtype=np.int64), 1
    for col in cols:
        codes, values = pd.factorize(col)
        if size * len(values) >= 2**62:  # renumber densely so the key never overflows
            key = pd.factorize(key)[0].astype(np.int64)
            size = int(key.max()) + 1
        key, size = key * len(values) + codes, size * len(values)
    key, values = pd.factorize(key)
    first = np.empty(len(values), dtype=np.int64)
    first[key[::-1]] = np.arange(n - 1, -1, -1)  # the last write wins: each id's first row
    return first, key.astype(np.int64)


def _objects(make: Callable[..., object], cols: Sequence[IntArray], extra: Sequence[IntArray] = ()
             ) -> npt.NDArray[np.object_]:
    """``make(*row, *extra_row)`` for each row of ``cols``, called once per distinct row of ``cols`` (lines are
    values: equal rows share one); ``extra`` are columns that ``cols`` determine."""
    out = np.empty(len(cols[0]), dtype=object)
    if not len(out):
        return out
    first, key = _distinct(*cols)
    rows = [c[first].tolist() for c in (*cols, *extra)]
    made = np.empty(len(first), dtype=object)
    made[:] = [make(*args) for args in zip(*rows, strict=True)]
    out[:] = made[key]
    return out


@dataclass
class _GroupLines:
    """Every group's seat and device lines, ordered client by client (own group first, then the others in
    group order) and, within a group, seats, seat changes, devices, device changes."""

    lines: list[Line]
    cents: IntArray  # per line
    group_start: IntArray  # (G,) first line of each group, and group_end its end
    group_end: IntArray
    client_start: IntArray  # (C+1,) each client's lines
    kept: list[Line]  # the lines an invoice shows (not zero, except seat lines)
    kept_start: IntArray  # (C+1,)
    total: list[int]  # per client: sum of its lines, cents
    taxable: list[int]  # per client: sum of its taxable lines
    nonzero: list[int]  # per client: how many lines are not zero

    def of_group(self, g: int) -> list[Line]:
        return self.lines[int(self.group_start[g]):int(self.group_end[g])]


NAMED_AT_MOST = 10
"""A seat-change line names up to this many users; more are on the attached user list."""


def _named(names: Sequence[str], joined: Sequence[bool], delta: int) -> str:
    """`` (Ann Lee, Bo Chen)`` for the users a seat change is about; `` (joined: …; left: …)`` when both
    happened that day; `` (12 users, listed on the attached user list)`` for more than ten."""
    if len(names) > NAMED_AT_MOST:
        return f" ({len(names)} users, listed on the attached user list)"
    if (all(joined) and delta > 0) or (not any(joined) and delta < 0):
        return f" ({', '.join(names)})"
    came = [n for n, j in zip(names, joined, strict=True) if j]
    went = [n for n, j in zip(names, joined, strict=True) if not j]
    both = [f"joined: {', '.join(came)}" if came else "", f"left: {', '.join(went)}" if went else ""]
    return f" ({'; '.join(x for x in both if x)})"


def _lines(kind: LineKind, description: Sequence[str], quantity: Sequence[Decimal], unit_price: Sequence[Decimal],
           amount_cents: Sequence[int], taxable: Sequence[bool], plan: Sequence[str]) -> list[Line]:
    """``Line(kind, description[i], quantity[i], …)`` for each i, its fields set in one go rather than through
    ``Line.__init__`` (whose frozen-dataclass setters cost more than the rest of a line): a large roster has tens
    of thousands of seat-change lines, each with its own words. The values must be what ``Line`` holds: a
    ``str``, ``Decimal``s, an ``int`` of cents, a ``bool``, a ``str``."""
    out: list[Line] = []
    new, append = object.__new__, out.append
    for d, q, u, c, t, p in zip(description, quantity, unit_price, amount_cents, taxable, plan, strict=True):
        line: Line = new(Line)
        f = line.__dict__  # one store a field (faster than a dict built and merged)
        f["kind"], f["description"], f["quantity"], f["unit_price"] = kind, d, q, u
        f["amount_cents"], f["taxable"], f["plan"] = c, t, p
        append(line)
    return out


def _objects_of(values: Sequence[object]) -> npt.NDArray[np.object_]:
    """``values`` as a numpy array of objects (to take from by index)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _text(values: Sequence[str]) -> pa.Array:
    return pa.array(values, pa.large_string())


def _roster_text(column: pd.Series, rows: IntArray) -> pa.Array:
    """A Roster text column's cells at ``rows``, trimmed, blank when empty (as large strings)."""
    taken = column.take(rows)
    if isinstance(taken.dtype, pd.StringDtype) and taken.dtype.storage == "pyarrow":
        text = pa.array(taken)
        text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        return pc.utf8_trim_whitespace(text.cast(pa.large_string())).fill_null("")
    return _text(taken.fillna("").astype(str).str.strip().tolist())


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while tens of thousands of objects are made that hold no reference
    cycle (an invoice run's lines; the cells of a big Excel range): its passes over every new object would cost
    more than making them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Moves:
    """Roster rows that joined or left a group during a period, sorted by (group, day): joiners first."""

    rows: IntArray
    group: IntArray
    day: IntArray  # the first day billed (joined) or no longer billed (left), as an index into the period
    joined: npt.NDArray[np.bool_]
    key: IntArray  # group × (days + 1) + day, ascending
    names: pa.Array  # the Roster's Name, else its UserID (large strings)
    users: pa.Array


class _Pricer:
    """Builds the recurring lines (seats, devices, add-ons) of one period for each client."""

    def __init__(self, ctx: Context, s: Series, modes: Sequence[ProrationMode], prefix: str = ""):
        self.ctx, self.s, self.prefix = ctx, s, prefix
        st = ctx.book.settings
        self.remaining, self.weights, self.denom = day_weights(s.period.days, st.day_count)
        self.weight_list: list[int] = [int(w) for w in self.weights]
        self._users_of: dict[int, list[int]] = {}
        snap = st.snapshot_day
        self.snap_idx = s.period.days - 1 if snap is None else min(snap, s.period.days) - 1
        first = s.period.first
        self.day_label = [_day(first + dt.timedelta(days=i)) for i in range(s.period.days)]
        self.days_label = [f"{int(x)}/{self.denom} days" for x in self.remaining]
        self.span = _span(s.period)
        self.rates = [{r for _, r in p.tier_table()} for p in ctx.plan_list]
        code = {m: i for i, m in enumerate(_MODES)}
        self.mode_code = np.array([code[m] for m in modes], dtype=np.int64)
        self.contracts = ctx.contract_mask(s.period)
        lo, hi = ctx.contract_days(s.period)
        self.contract_lo, self.contract_hi = lo.tolist(), hi.tolist()
        self._built: dict[bool, _GroupLines] = {}
        self._moves: _Moves | None = None

    def users_of(self, c: int) -> list[int]:
        """Client ``c``'s billable users on each day of the period, as Python integers (made once)."""
        got = self._users_of.get(c)
        if got is None:
            got = self._users_of[c] = self.s.client_users[c].tolist()
        return got

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

    def min_fees(self, fee_micros: IntArray) -> list[int]:
        """Each client's MinFee in cents for the part of the month its contract covers (``contract_share``)."""
        lo, hi = self.ctx.contract_days(self.s.period)
        r, n = self.remaining, len(self.remaining)
        after = np.where(hi + 1 < n, r[np.clip(hi + 1, 0, n - 1)], 0)
        share = np.where(hi < lo, 0, np.where((lo == 0) & (hi == n - 1), self.denom,
                                              r[np.clip(lo, 0, n - 1)] - after))
        fees: list[int] = round_div_array(fee_micros * share, MICROS_PER_CENT * self.denom, self.ctx.rounding).tolist()
        return fees

    def cents(self, micros: int) -> Cents:
        return Cents(round_div(micros, MICROS_PER_CENT, self.ctx.rounding))

    def padding_note(self, p_idx: int, users: int, seats: int) -> str:
        """Why billed seats exceed users: MinUsers, or shared devices under Basis=greater."""
        plan = self.ctx.plan_list[p_idx]
        if users >= seats:
            return ""
        if plan.basis is Basis.GREATER and seats > max(users, plan.min_users):
            return f" (greater of {_plural(users, 'user')} and {_plural(seats, 'shared device')})"
        return f" (minimum {plan.min_users}; {_plural(users, 'user')})"

    def when(self, code: int) -> str:
        """The words for when a group's seats are counted: a day index (peak), or N, N+1, N+2 for the whole
        period, the snapshot day and everyone active."""
        n = len(self.day_label)
        if code < n:
            return f"peak on {self.day_label[code]}"
        if code == n:
            return self.span
        if code == n + 1:
            return f"as of {self.day_label[self.snap_idx]}"
        return f"everyone active in {self.s.period.first:%b}"

    def seat_lines(self, p_idx: int, seats0: int, price0: int, users: int, when: int) -> tuple[Line, ...]:
        """The seat lines of a group of plan ``p_idx`` (``users`` ≥ 0 adds the padding note): one line, or for a
        graduated plan one per tier reached, and a tier's flat fee on a line of its own (as for a volume tier
        with a fee); together they bill ``price0`` rounded once, each multiplying out."""
        plan, t = self.ctx.plan_list[p_idx], self.ctx.table
        noun = "seat" if plan.basis is Basis.GREATER else "user"
        note = self.padding_note(p_idx, users, seats0) if users >= 0 else ""
        when_text = self.when(when)
        parts: list[tuple[str, int, int]] = []  # (description, quantity, unit micros)
        if plan.tiering is Tiering.FLAT or seats0 == 0:
            rate = plan.rate_micros if plan.tiering is Tiering.FLAT else 0
            parts.append((f"{_plural(seats0, noun)} × {fmt_rate(plan.rate_micros)} {plan.name}{note}", seats0, rate))
        else:
            tier = int(t.tier_index(np.array(p_idx), np.array(seats0)))
            if plan.tiering is Tiering.VOLUME:
                rate, fee = int(t.rate[p_idx, tier]), int(t.flat[p_idx, tier])
                name = _tier_name(t, p_idx, tier)
                parts.append((f"{_plural(seats0, noun)} × {fmt_rate(rate)} {plan.name} (volume tier {name}){note}",
                              seats0, rate))
                if fee:
                    parts.append((f"{plan.name} volume tier {name} flat fee", 1, fee))
            else:
                for j in range(tier + 1):
                    n = min(seats0, int(t.upper[p_idx, j])) - int(t.lower[p_idx, j])
                    rate = int(t.rate[p_idx, j])
                    parts.append((f"{plan.name} {noun}s {_tier_span(t, p_idx, j, seats0)}: {n} × {fmt_rate(rate)}"
                                  f"{note if j == 0 else ''}", n, rate))
                    if t.flat[p_idx, j]:
                        parts.append((f"{plan.name} tier {_tier_name(t, p_idx, j)} flat fee", 1, int(t.flat[p_idx, j])))
        out: list[Line] = []
        done = cum = 0  # micros and cents billed by the lines so far: each line the rounded running total's step
        for text, qty, unit in parts:
            cum += qty * unit
            cents = self.cents(cum) - done if len(parts) > 1 else self.cents(price0)
            done += cents
            out.append(fitted(Line(LineKind.SEATS, f"{self.prefix}{text}, {when_text}", Decimal(qty),
                                   micros_to_decimal(unit), Cents(cents), plan.taxable, plan.name)))
        return tuple(out)

    def change_words(self, p_idx: int, d: int, delta: int, old: int, dp: int) -> tuple[str, str]:
        """A seat change's words, before and after where the users it is about are named (``name_users``)."""
        plan = self.ctx.plan_list[p_idx]
        count = _plural(abs(delta), "user") if delta else "price change"
        sign = "+" if delta > 0 else "−" if delta < 0 else ""
        tail = f", {self.days_label[d]}"
        if not self.per_user(p_idx, delta, dp):
            tail += f", monthly price {fmt_rate(old)} → {fmt_rate(old + dp)}"
        return f"{self.prefix}{plan.name} {sign}{count} from {self.day_label[d]}", tail

    def per_user(self, p_idx: int, delta: int, dp: int) -> bool:
        """Whether a change of ``delta`` seats changing the monthly price by ``dp`` is priced per user at one of
        the plan's rates (else its unit price is the monthly price difference, its quantity the part of the
        month)."""
        return bool(delta) and dp % delta == 0 and dp // delta in self.rates[p_idx]

    @staticmethod
    def quantity(cents: int, unit: int, delta: int) -> Decimal:
        """A seat change's quantity: ``delta`` users at the plan's rate for r/D of the month in user-months (e.g.
        +2 users for 16/30 days: 1.0666 × 95.00), or, when the tier price changes, the part of the month at the
        monthly price difference (``unit``, micros); ``delta`` itself when there is no unit price."""
        qty = factor_for_micros(cents, unit)
        return Decimal(delta or 1) if qty is None else qty

    def device_line(self, p_idx: int, n0: int, when: int) -> Line:
        plan = self.ctx.plan_list[p_idx]
        rate = plan.device_rate_micros
        return fitted(Line(LineKind.DEVICES, f"{self.prefix}{_plural(n0, 'shared device')} × {fmt_rate(rate)}, "
                           f"{self.when(when)}", Decimal(n0), micros_to_decimal(rate), self.cents(n0 * rate),
                           plan.taxable, plan.name))

    def device_change_line(self, p_idx: int, d: int, delta: int, cents: int) -> Line:
        """A change in shared devices on day ``d``: its quantity the device-months, at DeviceRate."""
        plan = self.ctx.plan_list[p_idx]
        sign = "+" if delta > 0 else "−"
        return fitted(Line(LineKind.DEVICE_CHANGE,
                           f"{self.prefix}Devices {sign}{_plural(abs(delta), 'shared device')} from "
                           f"{self.day_label[d]}, {self.days_label[d]}",
                           Decimal(delta), micros_to_decimal(plan.device_rate_micros), Cents(cents), plan.taxable,
                           plan.name))

    def changes(self, count: IntArray, price: IntArray, groups: npt.NDArray[np.bool_]) -> tuple[IntArray, ...]:
        """Day-to-day price changes of the chosen groups: (group, day index, count change, price before,
        price change, cents charged for the rest of the period)."""
        g, d = np.nonzero((np.diff(price, axis=1) != 0) & groups[:, None])
        d = d + 1
        old = price[g, d - 1]
        dp = price[g, d] - old
        cents = round_div_array(dp * self.remaining[d], self.denom * MICROS_PER_CENT, self.ctx.rounding)
        return g, d, count[g, d] - count[g, d - 1], old, dp, cents

    def moves(self) -> _Moves:
        """The users who joined or left a group during the period (only the rows that did, found columnar)."""
        if self._moves is None:
            ctx, s = self.ctx, self.s
            roster = ctx.book.roster
            first, n = day_number(s.period.first), s.period.days
            uc = s.user_counts
            part = np.flatnonzero(uc.counted & (uc.active_days < n))  # billed, but not every day
            part = part[ctx.row_group[part] >= 0]
            came = roster["start"].to_numpy(np.int64)[part] - first  # the first day billed
            went = roster["end"].to_numpy(np.int64)[part] + 1 - first  # the first day no longer billed
            j, lv = (came >= 1) & (came < n), (went >= 1) & (went < n)
            rows = np.concatenate([part[j], part[lv]])
            day = np.concatenate([came[j], went[lv]])
            joined = np.arange(len(rows)) < int(j.sum())
            group = ctx.row_group[rows]
            inside = self.contracts[ctx.groups.client[group], day] * self.contracts[ctx.groups.client[group], day - 1]
            keep = inside.astype(bool)
            rows, day, joined, group = rows[keep], day[keep], joined[keep], group[keep]
            key = group * (n + 1) + day
            order = np.lexsort((rows, ~joined, key))  # by group and day, joiners first, in roster order
            rows, day, joined, group, key = rows[order], day[order], joined[order], group[order], key[order]
            user, name = (_roster_text(roster[c], rows) for c in ("user", "name"))
            self._moves = _Moves(rows, group, day, joined, key, pc.if_else(pc.equal(name, ""), user, name), user)
        return self._moves

    def seat_change_lines(self, g: IntArray, d: IntArray, delta: IntArray, old: IntArray, dp: IntArray,
                          cents: IntArray) -> npt.NDArray[np.object_]:
        """The seat-change lines of groups ``g`` on days ``d``, the joiners and leavers named on theirs: ``from
        Nov 15 (Ann Lee, Bo Chen), 16/30 days``. Words, unit price and quantity are worked out once per distinct
        change (a quantity once per amount and unit price), the names joined as arrays of text, and each line
        made once with its own words."""
        out = np.empty(len(g), dtype=object)
        if not len(g):
            return out
        p = self.ctx.groups.plan[g]
        first, key = _distinct(p, d, delta, dp, old)
        cols = [c[first].tolist() for c in (p, d, delta, dp, old)]
        words = [self.change_words(pi, di, n, o, x) for pi, di, n, x, o in zip(*cols, strict=True)]
        unit = np.array([x // n if self.per_user(pi, n, x) else x for pi, _, n, x, _ in zip(*cols, strict=True)],
                        dtype=np.int64)[key]
        pair, which = _distinct(cents, unit, np.where(unit == 0, delta, 0))  # solved once per amount and unit
        qty = _objects_of([self.quantity(c, u, n) for c, u, n in
                           zip(cents[pair].tolist(), unit[pair].tolist(), delta[pair].tolist(), strict=True)])
        unit_d = _objects_of([micros_to_decimal(u) for u in unit[pair].tolist()])
        plans = [self.ctx.plan_list[pi] for pi in cols[0]]
        m = self.moves()
        at = g * (self.s.period.days + 1) + d
        lo = np.searchsorted(m.key, at, "left")
        hi = np.searchsorted(m.key, at, "right")
        count = hi - lo
        run = np.concatenate([[0], np.cumsum(m.joined, dtype=np.int64)])
        came = run[hi] - run[lo]
        plain = ((came == count) & (delta > 0)) | ((came == 0) & (delta < 0))  # only joiners, or only leavers
        plain &= count <= NAMED_AT_MOST
        ends = np.cumsum(count)
        at_move = np.arange(int(ends[-1])) + np.repeat(lo - (ends - count), count)  # each line's users in turn
        listed = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], ends]), pa.int64()), m.names.take(at_move))
        nothing = _large("")
        who = pc.binary_join_element_wise(_large(" ("), pc.binary_join(listed, _large(", ")), _large(")"), nothing)
        who = pc.if_else(pa.array(count > 0), who, nothing)
        odd = np.flatnonzero((count > 0) & ~plain)  # both kinds, or more than ten: in words of their own
        if len(odd):
            who = pc.replace_with_mask(who, pa.array(np.isin(np.arange(len(g)), odd)), _text(
                [_named(m.names.slice(a, b - a).to_pylist(), m.joined[a:b].tolist(), x) for a, b, x in
                 zip(lo[odd].tolist(), hi[odd].tolist(), delta[odd].tolist(), strict=True)]))
        k = pa.array(key)
        text = pc.binary_join_element_wise(_text([w[0] for w in words]).take(k), who,
                                           _text([w[1] for w in words]).take(k), nothing)
        out[:] = _lines(LineKind.SEAT_CHANGE, text.to_pylist(), qty[which].tolist(), unit_d[which].tolist(),
                        cents.tolist(), _objects_of([pl.taxable for pl in plans])[key].tolist(),
                        _objects_of([pl.name for pl in plans])[key].tolist())
        return out

    def group_lines(self, base_only: bool) -> _GroupLines:
        """Seat and device lines of every group (``base_only``: day 1 charged for the month, as billed in
        advance), built column by column; each distinct line is put into words once."""
        if base_only not in self._built:
            with gc_paused():
                self._built[base_only] = self._group_lines(base_only)
        return self._built[base_only]

    def _group_lines(self, base_only: bool) -> _GroupLines:
        """:meth:`group_lines`, built."""
        ctx, s = self.ctx, self.s
        grp, t = ctx.groups, ctx.table
        n_groups, n_days = len(grp.client), s.period.days
        rng = np.arange(n_groups)
        client, plan, own = grp.client, grp.plan, grp.is_own
        mode = np.zeros(n_groups, np.int64) if base_only else self.mode_code[client]
        snap = self.snap_idx
        peak = np.argmax(s.seats, axis=1) if (mode == 2).any() else np.zeros(n_groups, np.int64)
        day = np.select([mode == 1, mode == 2], [snap, peak], 0)
        full = mode == 3
        seats0 = np.where(full, s.full_seats, s.seats[rng, day])
        price0 = s.seat_price[rng, day]
        if full.any():
            price0 = np.where(full, t.seat_price(plan, s.full_seats), price0)
        when = np.select([mode == 1, mode == 2, full], [n_days + 1, peak, n_days + 2], n_days)
        users = np.where(full, s.client_users_any[client], s.client_users[client, day])
        users = np.where(own & (seats0 != 0), users, -1)  # -1: no padding note
        dev0 = s.devices[rng, day]
        if (mode == 2).any():
            dev0 = np.where(mode == 2, s.devices.max(axis=1, initial=0), dev0)
        dev0 = np.where(full, s.full_devices, dev0)
        rate = t.device_rate[plan]
        daily = (mode == 0) & (not base_only)
        parts: list[tuple[npt.NDArray[np.object_], IntArray, int, IntArray, IntArray]] = []
        # (lines, group, section, day, cents) of each kind of line, in the order a group lists them
        g = np.flatnonzero((seats0 != 0) | (price0 != 0))
        made = _objects(self.seat_lines, [plan[g], seats0[g], price0[g], users[g], when[g]])
        sizes = np.fromiter((len(x) for x in made), np.int64, len(made))  # graduated: a line per tier reached
        seat_objs = np.empty(int(sizes.sum()), dtype=object)
        seat_objs[:] = [ln for x in made for ln in x]
        nth = np.arange(len(seat_objs)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        parts.append((seat_objs, np.repeat(g, sizes), 0, nth,
                      np.fromiter((ln.amount_cents for ln in seat_objs), np.int64, len(seat_objs))))
        g, d, delta, old, dp, cents = self.changes(s.seats, s.seat_price, daily)
        flat = np.array([p.tiering is Tiering.FLAT for p in ctx.plan_list], dtype=bool)[plan[g]]
        old = np.where(flat, 0, old)  # a flat plan's change is per user: its words never show the price before
        objs = self.seat_change_lines(g, d, delta, old, dp, cents)
        parts.append((objs, g, 1, d, cents))
        g = np.flatnonzero(own & (rate != 0) & (dev0 != 0))
        parts.append((_objects(self.device_line, [plan[g], dev0[g], when[g]]), g, 2, np.zeros(len(g), np.int64),
                      round_div_array(dev0[g] * rate[g], MICROS_PER_CENT, ctx.rounding)))
        g, d, delta, _, _, cents = self.changes(s.devices, s.device_price, daily & own & (rate != 0))
        parts.append((_objects(self.device_change_line, [plan[g], d, delta], [cents]), g, 3, d, cents))
        # client by client: own group first, then the others by group
        ranked = np.lexsort((rng, ~own, client))
        rank = np.empty(n_groups, np.int64)
        rank[ranked] = rng
        line_g = np.concatenate([x[1] for x in parts])
        order = np.lexsort((np.concatenate([x[3] for x in parts]),
                            np.concatenate([np.full(len(x[1]), x[2]) for x in parts]), rank[line_g]))
        lines = np.concatenate([x[0] for x in parts])[order]
        cents_all = np.concatenate([x[4] for x in parts])[order]
        line_g = line_g[order]
        bounds = np.searchsorted(rank[line_g], np.arange(n_groups + 1))
        line_c = client[line_g]
        n_clients = len(ctx.clients)
        is_seats = np.concatenate([np.full(len(x[1]), x[2] == 0) for x in parts])[order]
        keep = (cents_all != 0) | is_seats
        taxable = np.array([p.taxable for p in ctx.plan_list], dtype=bool)[plan[line_g]]

        client_start = np.searchsorted(line_c, np.arange(n_clients + 1))

        def per_client(values: IntArray) -> list[int]:
            """Each client's sum of ``values`` (one per line), in exact integers."""
            run = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
            sums: list[int] = (run[client_start[1:]] - run[client_start[:-1]]).tolist()
            return sums

        built = _GroupLines(
            lines=lines.tolist(), cents=cents_all,
            group_start=bounds[rank], group_end=bounds[rank + 1],
            client_start=client_start,
            kept=lines[keep].tolist(), kept_start=np.searchsorted(line_c[keep], np.arange(n_clients + 1)),
            total=per_client(cents_all), taxable=per_client(np.where(taxable, cents_all, 0)),
            nonzero=per_client((cents_all != 0).astype(np.int64)),
        )
        return built

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
        return fitted(Line(LineKind.ONE_TIME, f"{self.prefix}{desc}, one-time ({self.day_label[day]})", qty,
                           micros_to_decimal(a.unit_price_micros), Cents(cents), a.taxable))

    def addon_line(self, a: AddOn, c: int, mode: ProrationMode, base_only: bool) -> Line | None:
        """The add-on's line for the period (None when it is not active in it)."""
        s = self.s
        first = day_number(s.period.first)
        n_days = s.period.days
        lo, hi = max(a.start, first) - first, min(a.end, first + n_days - 1) - first
        lo, hi = max(lo, self.contract_lo[c]), min(hi, self.contract_hi[c])
        if hi < lo:
            return None
        per_unit = a.quantity_micros * a.unit_price_micros  # micro·micro
        users = self.users_of(c) if a.per_user else [1] * n_days
        # what each day of the period would bill (Python integers: exact at any size)
        values = [0] * lo + [per_unit * u for u in users[lo:hi + 1]] + [0] * (n_days - 1 - hi)
        scale = MICRO * MICRO // 100  # micro·micro per cent
        if base_only:
            num, den, qty_users = values[0], 1, int(users[0])
        elif mode is ProrationMode.DAILY:
            num = sum(v * w for v, w in zip(values, self.weight_list, strict=True))
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
        return fitted(Line(LineKind.ADDON, f"{self.prefix}{desc}", qty, unit, Cents(cents), a.taxable))




NOTHING_TO_BILL = "no billable users or charges"
"""Why a client got no invoice for a month it was a client in (its users, if any, bill nothing)."""


def _contract_text(client: Client) -> str:
    parts = []
    if client.start != SINCE_EVER:
        parts.append(f"from {from_day_number(client.start).isoformat()}")
    if client.end != FOREVER:
        parts.append(f"until {from_day_number(client.end).isoformat()}")
    return " ".join(parts)


def _mode_of(client: Client, book: Book) -> ProrationMode:
    return client.proration_mode or book.settings.proration_mode


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
    modes = [_mode_of(c, book) for c in clients]
    cur = ctx.series(period)
    pricer = _Pricer(ctx, cur, modes)
    prev_pricer = None
    if advance:
        prev = period.prev()
        prev_pricer = _Pricer(ctx, ctx.series(prev), modes, prefix=f"{prev.first:%b} adjustment: ")
    usage_period = period.prev() if advance else period
    hours = _hours_by_client(book, ctx, usage_period)
    usage_users = (prev_pricer.s if prev_pricer else cur).client_users
    addons_by_client: dict[int, list[AddOn]] = {}
    for a in book.addons:
        ci = ctx.client_idx.get(a.client.lower())
        if ci is not None:
            addons_by_client.setdefault(ci, []).append(a)
    built = pricer.group_lines(base_only=advance)
    groups = ctx.groups
    ranked = np.lexsort((np.arange(len(groups.client)), ~groups.is_own, groups.client)).tolist()
    first_group = np.concatenate([ctx.client_first_group, [len(groups.client)]]).tolist()
    seats_last = np.add.reduceat(cur.seats[:, -1], ctx.client_first_group).tolist()
    own_plan = [ctx.plan_list[p] for p in groups.plan[groups.own].tolist()]
    min_fees = pricer.min_fees(ctx.table.min_fee[groups.plan[groups.own]])
    kept, kept_start = built.kept, built.kept_start.tolist()
    line_total, line_taxable, line_nonzero = built.total, built.taxable, built.nonzero
    lo, hi = pricer.contract_lo, pricer.contract_hi
    prev_lo, prev_hi = (prev_pricer.contract_lo, prev_pricer.contract_hi) if prev_pricer else (lo, hi)
    issue = period.first if advance else period.next().first
    due_of: dict[int, dt.date] = {}
    number = st.next_invoice_number
    invoices: list[Invoice] = []
    corrections = corrections or {}
    for ci, client in enumerate(clients):
        if hi[ci] < lo[ci] and prev_hi[ci] < prev_lo[ci]:
            skipped.append((client.name, f"outside its contract ({_contract_text(client)})"))
            if progress:
                progress(1)
            continue
        mode = modes[ci]
        plan = own_plan[ci]
        tail: list[Line] = []  # the client's lines after its seats and devices, before the zero ones are dropped
        client_addons = addons_by_client.get(ci, ())
        for a in client_addons:
            ln = pricer.one_time_line(a, ci) if a.once else pricer.addon_line(a, ci, mode, base_only=advance)
            if ln is not None:
                tail.append(ln)
        if prev_pricer is not None:
            gs = ranked[first_group[ci]:first_group[ci + 1]]
            tail += _adjustment_lines(prev_pricer, gs, [a for a in client_addons if not a.once], ci, mode, plan)
        if ci in hours:
            ov = _overage_line(plan, hours[ci], usage_users[ci], usage_period, ctx.rounding)
            if ov is not None:
                tail.append(ov)
        min_fee = min_fees[ci]
        if min_fee > 0:
            recurring = line_total[ci] + sum(ln.amount_cents for ln in tail if ln.kind in RECURRING)
            if recurring < min_fee:
                share = pricer.contract_share(ci)
                part = "" if share[0] == share[1] else f" ({share[0]}/{share[1]} days of contract)"
                tail.append(Line(LineKind.MINIMUM, f"Minimum monthly fee adjustment{part}", Decimal(1),
                                 cents_to_decimal(min_fee - recurring), Cents(min_fee - recurring),
                                 plan.taxable))
        late = corrections.get(client.name.lower(), ()) if corrections else ()
        lines = kept[kept_start[ci]:kept_start[ci + 1]]
        subtotal, taxable, nonzero = line_total[ci], line_taxable[ci], line_nonzero[ci]
        if tail or late:
            tail = [ln for ln in tail if ln.amount_cents or ln.kind in (LineKind.SEATS, LineKind.ADDON)]
            tail += [fitted(ln) for ln in late]
            lines += tail
            subtotal += sum(ln.amount_cents for ln in tail)
            taxable += sum(ln.amount_cents for ln in tail if ln.taxable)
            nonzero += sum(1 for ln in tail if ln.amount_cents)
        if not nonzero:
            skipped.append((client.name, NOTHING_TO_BILL))
            if progress:
                progress(1)
            continue
        total = subtotal
        if client.discount_ppm or client.tax_ppm or (client.tax_ppm is None and st.default_tax_ppm):
            more = discount_and_tax(subtotal, taxable, client, st.default_tax_ppm, ctx.rounding)
            lines += more
            total += sum(ln.amount_cents for ln in more)
        terms = st.payment_terms_days if client.payment_terms_days is None else client.payment_terms_days
        if terms not in due_of:
            due_of[terms] = issue + dt.timedelta(days=terms)
        doc = Invoice(
            number=f"{st.invoice_prefix}{number}", client=client, period=period,
            issue_date=issue, due_date=due_of[terms],
            currency=st.currency, lines=tuple(lines),
            seats=seats_last[ci],
        )
        if total < 0:  # never an invoice with a negative total: a credit note (SPEC §4)
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

    mover = prev_pricer or pricer

    def _changes() -> dict[str, tuple[UserChange, ...]]:
        m = mover.moves()
        first = mover.s.period.first
        out: dict[str, list[UserChange]] = {}
        plans = [ctx.plan_list[p].name for p in groups.plan[m.group].tolist()]
        whose = [clients[c].name.lower() for c in groups.client[m.group].tolist()]
        for c, name, user, plan_name, d, j in zip(whose, m.names.to_pylist(), m.users.to_pylist(), plans,
                                                   m.day.tolist(),
                                                   m.joined.tolist(), strict=True):
            out.setdefault(c, []).append(UserChange(name, user, plan_name,
                                                    first + dt.timedelta(days=d if j else d - 1), j))
        return {c: tuple(v) for c, v in out.items()}

    return Run(book, period, invoices, skipped, _why, _changes)


def _adjustment_lines(p: _Pricer, groups: list[int], addons: list[AddOn], ci: int,
                      mode: ProrationMode, plan: Plan) -> list[Line]:
    """Previous period as priced by ProrationMode, minus what was billed in advance.

    Both sides include the previous month's MinFee top-up, so a client under its
    minimum in both is not charged twice for it.
    """
    out: list[Line] = []
    actual = billed = 0
    full_lines, base_lines = p.group_lines(base_only=False), p.group_lines(base_only=True)
    for g in groups:
        full = full_lines.of_group(g)
        base = base_lines.of_group(g)
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


def _hours_by_client(book: Book, ctx: Context, period: Period) -> dict[int, int]:
    """Client index → centi-hours of ``period`` that count toward overage: only time billable to the client
    (SPEC §8: time the PSA marks not billable is work done, never overage)."""
    u = book.usage
    if u.empty:
        return {}
    first = day_number(period.first)
    inside = (u["date"] >= first) & (u["date"] < first + period.days)
    if "billable" in u:
        inside &= u["billable"].astype(bool)
    # each distinct client text is looked up once (a month of usage holds a thousand names in 80,000 rows)
    col = u["client"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, names = col.cat.codes.to_numpy(), col.cat.categories
    else:
        codes, names = pd.factorize(col)
    lookup = np.array([ctx.client_idx.get(n.lower(), -1) if isinstance(n, str) else -1 for n in names] + [-1],
                      dtype=np.int64)
    ci = lookup[codes]  # (a missing name's code is -1: the last entry)
    keep = inside.to_numpy() & (ci >= 0)
    who = ci[keep]
    if not len(who):
        return {}
    hours = np.zeros(int(who.max()) + 1, np.int64)
    np.add.at(hours, who, u["hours_centi"].to_numpy(dtype=np.int64)[keep])  # whole centi-hours: exact
    return {int(k): int(hours[k]) for k in np.unique(who)}


def _overage_line(plan: Plan, hours_centi: int, users: IntArray, period: Period,
                  rounding: Rounding) -> Line | None:
    """Hours above IncludedHours × average billable users, at OverageRate."""
    if plan.included_hours_centi is None or not plan.overage_rate_micros or not hours_centi:
        return None
    n = len(users)
    user_days = int(users.sum())
    excess_num = hours_centi * n - plan.included_hours_centi * user_days  # centi-hours × n
    if excess_num <= 0:
        return None
    cents = round_div(excess_num * plan.overage_rate_micros, n * 100 * MICROS_PER_CENT, rounding)
    avg = Decimal(user_days) / n
    included = Decimal(plan.included_hours_centi) / 100 * avg
    excess = Decimal(excess_num) / n / 100
    return fitted(Line(LineKind.OVERAGE,
                f"Support hours above plan, {period.first:%b}: {Decimal(hours_centi) / 100:.2f} h used, "
                f"{included:.2f} h included ({Decimal(plan.included_hours_centi) / 100:.2f} h × "
                f"{avg:.1f} avg users)",
                excess.quantize(Decimal("0.01")), micros_to_decimal(plan.overage_rate_micros),
                Cents(cents), plan.taxable))


def discount_and_tax(subtotal: int, taxable: int, client: Client, default_tax_ppm: int,
                      rounding: Rounding) -> list[Line]:
    """The discount and tax lines of an invoice whose other lines add up to ``subtotal`` cents, ``taxable`` of
    them taxable."""
    out: list[Line] = []
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


def _final_clients(book: Book, period: Period) -> dict[str, str]:
    """Clients whose invoice for ``period`` is already recorded (any Status but Draft) → why, with its number."""
    inv = book.invoices
    if inv.empty or "Status" not in inv or "Period" not in inv or "Client" not in inv:
        return {}
    out: dict[str, str] = {}
    for c, p, s, n in zip(inv["Client"], inv["Period"], inv["Status"],
                          inv.get("InvoiceNo", [""] * len(inv)), strict=True):
        status = "" if s is None or (isinstance(s, float) and s != s) else str(s).strip()
        if status.lower() != "draft" and Period.key(p) == str(period) and str(c).strip():
            out[str(c).strip().lower()] = f"{status.lower() or 'recorded'}: {n}"
    return out


__all__ = ["NOTHING_TO_BILL", "Run", "discount_and_tax", "gc_paused", "invoice_run"]
