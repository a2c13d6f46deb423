"""The Report sheet and report.xlsx (SPEC §9): the table, the advice and three native charts, laid out once for
the file writer and for Excel; and the report as JSON-ready values.

User text (client and plan names, settings) is only ever a cell's text: a text cell starting with = + - @, tab
or CR is entered as text (an apostrophe for Excel, the Text number format in the file, SPEC §10). Charts take
client names from the client cells (categories and point labels are cell ranges); every series name is a fixed
word of ours, so no writer can take a client's name — "=1+1", or "+cmd|' /C calc'!A0", which XlsxWriter reads
as a reference because of its "!A0" — as a formula."""

from __future__ import annotations

import os
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import xlsxwriter

from perseat_addin.engine.report import REPORT_COLUMNS, Report, Usage, to_places
from perseat_addin.outputs.layout import NAVY, Cell, Chart, Series, SheetLayout, Style, typed
from perseat_addin.outputs.xlsx import write_layout


def _s(x: Fraction | Decimal | None, places: int = 2) -> str | None:
    if x is None:
        return None
    return str(to_places(x, places)) if isinstance(x, Fraction) else str(x)


def usage_dict(u: Usage, cph: Fraction | None) -> dict[str, Any]:
    """One client's figures; ``hours`` counts every hour worked, of which ``non_billable_hours`` are not billable
    to the client (cost yes, revenue and overage no)."""
    return {"months": u.months, "users": _s(u.users), "tickets": _s(u.tickets), "hours": _s(u.hours),
            "billable_hours": _s(u.billable_hours), "non_billable_hours": _s(u.non_billable_hours),
            "tickets_per_user": _s(u.tickets_per_user), "hours_per_user": _s(u.hours_per_user),
            "revenue": _s(Fraction(u.revenue_cents, 100)), "revenue_recorded": u.recorded,
            "revenue_per_user": _s(u.revenue_per_user),
            "cost": _s(u.cost(cph)) if cph is not None else None,
            "margin": _s(u.margin(cph), 4) if cph is not None else None, "hourly_rate": _s(u.hourly_rate)}


def report_dict(rep: Report) -> dict[str, Any]:
    """The report as JSON-ready data: decimals as strings."""
    return {
        "period": str(rep.period), "currency": rep.currency,
        "settings": {"labor_cost_per_hour": _s(rep.cost_per_hour), "target_margin": _s(rep.target_margin, 4),
                     "price_step": _s(rep.price_step)},
        "medians": {k: None if v is None else str(v) for k, v in rep.medians.items()},
        "clients": [{"client": c.client, "plan": c.plan, "period": usage_dict(c.period, rep.cost_per_hour),
                     "trailing_3_months": usage_dict(c.trailing, rep.cost_per_hour),
                     "robust_z": None if c.robust_z is None else round(c.robust_z, 2), "outlier": c.outlier,
                     "recommended_price": _s(c.price), "recommended_plan": c.plan_advice,
                     "recommended_min_fee": _s(c.min_fee),
                     "advice": [{"kind": a.kind, "value": a.value, "reason": a.reason} for a in c.advice]}
                    for c in rep.clients],
        "cliffs": [{"plan": c.plan, "seats": c.seats, "charge": str(c.charge), "next_charge": str(c.next_charge),
                    "from_seats": c.from_seats, "clients": list(c.clients), "reason": c.reason}
                   for c in rep.cliffs],
        "trend": [{"period": str(t.period), "users": _s(t.users), "tickets": _s(t.tickets),
                   "hours": _s(Fraction(t.hours_centi, 100)),
                   "non_billable_hours": _s(Fraction(t.non_billable_centi, 100)),
                   "revenue": _s(Fraction(t.revenue_cents, 100)),
                   "revenue_recorded": t.recorded} for t in rep.trend],
        "notes": rep.notes,
    }


REPORT_SHEET = "Report"

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""How text that a spreadsheet could take for a formula starts (OWASP CSV injection)."""

TEXT = "@"
"""The Text number format: what is typed into the cell stays text."""


def _f(x: Fraction | Decimal | None, places: int = 2) -> float | None:
    if x is None:
        return None
    return float(to_places(x, places)) if isinstance(x, Fraction) else float(x)


def report_layout(rep: Report, msp: str = "", name: str = REPORT_SHEET) -> Any:
    """The report as a :class:`~.layout.SheetLayout` with three native charts."""
    cells: list[Cell] = []
    head = Style(bold=True, color="#FFFFFF", fill=NAVY, wrap=True, valign="top")
    bold = Style(bold=True)
    small = Style(size=9, color="#555555")
    wrap = Style(wrap=True, valign="top", size=9)
    formats = {col: Style(number_format=fmt) if fmt else Style() for col, _, fmt in REPORT_COLUMNS}

    heights: list[tuple[int, float]] = [(5, 45)]

    def put(row: int, col: int, value: Any, style: Style | None = None, to: tuple[int, int] | None = None) -> None:
        if value is None:
            return
        style = style or Style()
        if isinstance(value, str) and value.startswith(FORMULA_START):
            style = replace(style, number_format=TEXT)  # a name such as "=1+1" stays text, even when retyped
        cells.append(Cell(row, col, typed(value), style, to))

    cph = rep.cost_per_hour
    put(1, 1, f"Usage & pricing report — {rep.period.label()}", Style(bold=True, size=16, color=NAVY))
    facts = [msp] if msp else []
    if cph is not None:
        facts.append(f"labour {to_places(cph):,.2f}/h")
    if rep.target_margin is not None:
        facts.append(f"target margin {to_places(rep.target_margin * 100, 0)}%")
    if rep.price_step is not None:
        facts.append(f"price step {to_places(rep.price_step):,.2f}")
    facts.append(f"currency {rep.currency}; 3 mo = {rep.period.prev().prev().label()} to {rep.period.label()}")
    put(2, 1, " · ".join(facts), small)
    for note in rep.notes:
        put(3, 1, note, Style(color="#C00000"))
    top = 5
    for j, (title, _, _) in enumerate(REPORT_COLUMNS, start=1):
        put(top, j, title, head)
    med_hpu = rep.medians.get("hours_per_user")
    first = top + 1
    for i, c in enumerate(rep.clients):
        r = first + i
        u, t = c.period, c.trailing
        values: list[Any] = [
            c.client, c.plan, _f(u.users), _f(u.tickets), _f(u.hours), _f(u.non_billable_hours),
            _f(u.tickets_per_user),
            _f(u.hours_per_user), _f(Fraction(u.revenue_cents, 100)), _f(u.revenue_per_user),
            _f(u.cost(cph)) if cph is not None else None,
            _f(u.margin(cph), 4) if cph is not None else None, _f(u.hourly_rate), _f(t.hours_per_user),
            _f(t.margin(cph), 4) if cph is not None else None, _f(med_hpu), "yes" if c.outlier else "",
            _f(c.price), c.plan_advice, _f(c.min_fee)]
        for j, ((title, _, _), v) in enumerate(zip(REPORT_COLUMNS, values, strict=True), start=1):
            style = formats[title]
            if title == "Outlier" and v:
                style = Style(bold=True, color="#C00000")
            put(r, j, v, style)
    last = first + len(rep.clients) - 1
    mrow = last + 1
    put(mrow, 1, "Portfolio median", bold)
    for key, title in (("users", "Users"), ("tickets_per_user", "Tickets / user"),
                       ("hours_per_user", "Hours / user"), ("revenue_per_user", "Revenue / user"),
                       ("margin", "Margin"), ("hourly_rate", "Revenue / hour")):
        j = [c[0] for c in REPORT_COLUMNS].index(title) + 1
        put(mrow, j, _f(rep.medians.get(key), 4), Style(bold=True, number_format=REPORT_COLUMNS[j - 1][2]))
    chart_top = mrow + 2
    row = chart_top + 22 if rep.clients else mrow + 2
    put(row, 1, "Portfolio trend", Style(bold=True, size=12, color=NAVY))
    row += 1
    trend_head = row
    for j, title in enumerate(TREND_COLUMNS, start=1):
        put(row, j, title, head)
    tcol = {title: j for j, title in enumerate(TREND_COLUMNS, start=1)}
    for k, m in enumerate(rep.trend):
        r = trend_head + 1 + k
        users = m.users
        hours = Fraction(m.hours_centi, 100)
        put(r, tcol["Month"], f"{m.period.first:%b %Y}")
        put(r, tcol["Users"], _f(users), Style(number_format="0.00"))
        put(r, tcol["Tickets"], _f(m.tickets), Style(number_format="0"))
        put(r, tcol["Hours"], _f(hours), Style(number_format="0.00"))
        put(r, tcol["Non-billable hours"], _f(Fraction(m.non_billable_centi, 100)), Style(number_format="0.00"))
        put(r, tcol["Hours / user"], _f(hours / users) if users else None, Style(number_format="0.00"))
        put(r, tcol["Revenue"], _f(Fraction(m.revenue_cents, 100)), Style(number_format="#,##0.00"))
        put(r, tcol["Revenue / user"], _f(Fraction(m.revenue_cents, 100) / users) if users else None,
            Style(number_format="#,##0.00"))
        put(r, tcol["Revenue source"], "recorded invoices" if m.recorded else "priced from the roster", small)
    trend_last = trend_head + len(rep.trend)
    row = max(trend_last, trend_head + 21) + 2
    put(row, 1, "Recommendations", Style(bold=True, size=12, color=NAVY))
    row += 1
    n_cols = len(REPORT_COLUMNS)
    for j, title in enumerate(("Client", "Kind", "Recommendation"), start=1):
        put(row, j, title, head)
    put(row, 4, "Why", head, to=(row, n_cols))
    row += 1
    kinds = {"outlier": "Outlier", "price": "Price", "plan": "Plan", "minfee": "Minimum fee"}
    rows = [(a.client, kinds.get(a.kind, a.kind), a.value, a.reason) for a in rep.advice]
    rows += [(cl.plan, "Volume cliff", f"{cl.seats} → {cl.seats + 1} seats", cl.reason) for cl in rep.cliffs]
    for who, kind, value, reason in rows:
        put(row, 1, who, wrap)
        put(row, 2, kind, wrap)
        put(row, 3, value, wrap)
        put(row, 4, reason, wrap, to=(row, n_cols))
        if len(reason) > 170:
            heights.append((row, 24))
        row += 1
    end_row = row
    col = {title: j for j, (title, _, _) in enumerate(REPORT_COLUMNS, start=1)}
    charts: list[Chart] = []
    if rep.clients:
        names = (first, 1, last, 1)
        charts.append(Chart(
            "column", "Support hours per user by client", (chart_top, 1),
            (Series("Hours / user", names, (first, col["Hours / user"], last, col["Hours / user"]), color="#2E75B6"),
             Series("Portfolio median", names, (first, col["Median hours / user"], last, col["Median hours / user"]),
                    kind="line", color="#C00000")),
            y_title="hours per user", size=(620, 320), y_format="0.0"))
        charts.append(Chart(
            "scatter", "Revenue per user against hours per user", (chart_top, 9),
            (Series("Clients", (first, col["Hours / user"], last, col["Hours / user"]),
                    (first, col["Revenue / user"], last, col["Revenue / user"]), labels=names, color="#2E75B6"),),
            x_title="support hours per user", y_title=f"revenue per user ({rep.currency})", size=(620, 320),
            y_format="#,##0"))
    if rep.trend:
        months = (trend_head + 1, 1, trend_last, 1)
        charts.append(Chart(
            "line", "12-month trend: hours and revenue per user", (trend_head - 1, len(TREND_COLUMNS) + 2),
            (Series("Hours / user", months, (trend_head + 1, tcol["Hours / user"], trend_last, tcol["Hours / user"]),
                    color="#2E75B6"),
             Series("Revenue / user", months,
                    (trend_head + 1, tcol["Revenue / user"], trend_last, tcol["Revenue / user"]), secondary=True,
                    color="#70AD47")),
            y_title="hours per user", y2_title=f"revenue per user ({rep.currency})", size=(620, 300),
            y_format="0.0"))
    last_row = end_row
    widths = tuple((j, w) for j, (_, w, _) in enumerate(REPORT_COLUMNS, start=1))
    return SheetLayout(name=name, cells=tuple(cells), widths=widths, heights=tuple(heights),
                       print_area=(1, 1, last_row, len(REPORT_COLUMNS)), landscape=True, fit_width=1,
                       gridlines=False, charts=tuple(charts), freeze=(top, 1),
                       footer_left=msp.replace("&", "&&"), footer_right="page &P of &N")


TREND_COLUMNS = ("Month", "Users", "Tickets", "Hours", "Non-billable hours", "Hours / user", "Revenue",
                 "Revenue / user", "Revenue source")


def write_report(rep: Report, path: str | Path, msp: str = "") -> Path:
    """``report.xlsx``: the Report sheet with its charts, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_numbers": False, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    try:
        write_layout(wb, report_layout(rep, msp), {})
        wb.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
