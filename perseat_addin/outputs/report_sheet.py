"""The Report sheet and report.xlsx (SPEC §9): the table, the advice and three native charts, laid out once for
the file writer and for Excel; and the report as JSON-ready values.

User text (client and plan names, settings) is only ever a cell's text: a text cell starting with = + - @, tab
or CR is entered as text (an apostrophe for Excel, the Text number format in the file, SPEC §10). Charts take
client names from the client cells (categories and point labels are cell ranges); every series name is a fixed
word of ours, so no writer can take a client's name — "=1+1", or "+cmd|' /C calc'!A0", which XlsxWriter reads
as a reference because of its "!A0" — as a formula."""

from __future__ import annotations

import os
import textwrap
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import xlsxwriter

from perseat_addin.engine.report import ClientReport, Report, Usage, to_places
from perseat_addin.outputs.layout import NAVY, Cell, Chart, Series, SheetLayout, Style, typed
from perseat_addin.outputs.xlsx import write_layout


def _s(x: Fraction | Decimal | None, places: int = 2) -> str | None:
    if x is None:
        return None
    return str(to_places(x, places) if isinstance(x, Fraction) else x.quantize(Decimal(1).scaleb(-places)))


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


def _recommendation(c: ClientReport, cph: Fraction | None) -> dict[str, Any] | None:
    r = c.recommendation
    if r is None or c.recommended is None:
        return None
    return {"kind": r.kind, "value": r.value, "label": r.label, "reason": c.recommended.reason,
            "revenue_needed": _s(c.needed), "revenue": _s(c.terms_revenue), "margin": _s(c.terms_margin(cph), 4),
            "revenue_today": _s(Fraction(c.period.revenue_cents, 100)),
            "margin_today": _s(c.period.margin(cph), 4) if cph is not None else None,
            "users": r.users, "devices": r.devices}


def report_dict(rep: Report) -> dict[str, Any]:
    """The report as JSON-ready data: decimals as strings; one recommendation per client, then observations."""
    cph = rep.cost_per_hour
    return {
        "period": str(rep.period), "currency": rep.currency,
        "settings": {"labor_cost_per_hour": _s(rep.cost_per_hour), "target_margin": _s(rep.target_margin, 4),
                     "price_step": _s(rep.price_step)},
        "medians": {k: None if v is None else str(v) for k, v in rep.medians.items()},
        "clients": [{"client": c.client, "plan": c.plan, "period": usage_dict(c.period, cph),
                     "trailing_3_months": usage_dict(c.trailing, cph),
                     "robust_z": None if c.robust_z is None else round(c.robust_z, 2), "outlier": c.outlier,
                     "recommendation": _recommendation(c, cph),
                     "recommended_price": _s(c.price), "recommended_plan": c.plan_advice,
                     "recommended_min_fee": _s(c.min_fee), "price_floor": _s(c.floor),
                     "observations": [{"kind": a.kind, "value": a.value, "reason": a.reason}
                                      for a in c.observations]}
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


# The printed table (SPEC §9): two pages of related columns, each starting with the client, at 9 pt and 100 %
# (never shrunk): "Usage" then "Money & advice". Widths are Excel character widths; LibreOffice prints a column
# of width w about 7w + 5 points wide (Excel a quarter less), so each group is kept within 720 of the 734 points
# that A4 and Letter landscape print between 0.4" side margins, the last column of each taking what is left.
USAGE_COLUMNS: tuple[tuple[str, float, str | None], ...] = (
    ("Client", 18, None), ("Plan", 9, None), ("Users", 6, "0.00"), ("Tickets", 6, "0"), ("Hours", 6, "0.00"),
    ("Non-billable hours", 6, "0.00"), ("Tickets / user", 8, "0.00"), ("Hours / user", 6, "0.00"),
    ("Hours / user (3 mo)", 6, "0.00"), ("Median hours / user", 6, "0.00_)"), ("Observations", 0, None),
)
MONEY_COLUMNS: tuple[tuple[str, float, str | None], ...] = (
    ("Client", 14, None), ("Revenue", 8, "#,##0.00"), ("Revenue / user", 7, "#,##0.00"),
    ("Revenue / hour", 7, "#,##0.00"), ("Cost to serve", 8, "#,##0.00"), ("Margin", 5, "0%"),
    ("Margin (3 mo)", 5, "0%"), ("Revenue needed", 8, "#,##0.00"), ("Revenue at terms", 8, "#,##0.00"),
    ("Margin at terms", 5, "0%_)"), ("Recommendation", 0, None),
)
PRINT_WIDTH_PX = 720
"""Each column group's printed width (LibreOffice points: 7 per character of width, plus 5)."""

BODY_PT = 9.0
LINE_PT = 12.0  # a 9 pt line of wrapped text
CHAR_PX = 5.9  # a 9 pt character, in width units: Carlito averages ~4.4 pt; Excel prints columns a quarter narrower


def _px(width: float) -> int:
    return int(width * 7 + 5)


def _widths(columns: tuple[tuple[str, float, str | None], ...]) -> list[float]:
    """The group's widths, the last column taking the rest of the printed width."""
    fixed = [w for _, w, _ in columns[:-1]]
    rest = PRINT_WIDTH_PX - sum(_px(w) for w in fixed)
    return [*fixed, max((rest - 5) // 7, 10)]


def _lines(text: str, width: float) -> int:
    """Lines ``text`` wraps to at 9 pt in a column ``width`` characters wide (LibreOffice does not fit rows)."""
    per_line = max(int((_px(width) - 6) / CHAR_PX), 8)
    if len(text) <= per_line and "\t" not in text:  # one line (a tab may widen to eight)
        return 1
    return max(len(textwrap.wrap(text, per_line, break_long_words=True)) or 1, 1)


TREND_COLUMNS = ("Month", "Users", "Tickets", "Hours", "Non-billable hours", "Hours / user", "Revenue",
                 "Revenue / user", "Revenue source")

REPORT_COLUMNS = (*USAGE_COLUMNS, *MONEY_COLUMNS)
"""Every column of the client table, left to right."""

RULE = ("One recommendation per client: none when the month's revenue covers its cost to serve ÷ (1 − target "
        "margin); else the cheapest plan of the same Basis that covers it, else a minimum fee (small clients) or a "
        "per-user price on its plan, rounded up to the price step. A price floor is what the hours alone need per "
        "user: never a reason to lower a price.")


def report_layout(rep: Report, msp: str = "", name: str = REPORT_SHEET) -> Any:
    """The report as a :class:`~.layout.SheetLayout`: charts and trend first, then the client table in two
    printed pages of columns with its heading row repeated on every page."""
    cells: list[Cell] = []
    head = Style(bold=True, color="#FFFFFF", fill=NAVY, wrap=True, valign="top", size=BODY_PT)
    bold = Style(bold=True, size=BODY_PT)
    small = Style(size=BODY_PT, color="#555555")
    wrap = Style(wrap=True, valign="top", size=BODY_PT)
    cols = len(REPORT_COLUMNS)
    widths = [*_widths(USAGE_COLUMNS), *_widths(MONEY_COLUMNS)]
    formats = [Style(number_format=fmt, valign="top", size=BODY_PT) for _, _, fmt in REPORT_COLUMNS]
    heights: dict[int, float] = {}

    def put(row: int, col: int, value: Any, style: Style | None = None, to: tuple[int, int] | None = None) -> None:
        if value is None:
            return
        style = style or Style()
        if isinstance(value, str) and value.startswith(FORMULA_START):
            style = replace(style, number_format=TEXT)  # a name such as "=1+1" stays text, even when retyped
        cells.append(Cell(row, col, typed(value), style, to))

    cph = rep.cost_per_hour
    put(1, 1, f"Usage & pricing report — {rep.period.label()}", Style(bold=True, size=16, color=NAVY))
    heights[1] = 24
    facts = [msp] if msp else []
    if cph is not None:
        facts.append(f"labour {to_places(cph):,.2f}/h")
    if rep.target_margin is not None:
        facts.append(f"target margin {to_places(rep.target_margin * 100, 0)}%")
    if rep.price_step is not None:
        facts.append(f"price step {to_places(rep.price_step):,.2f}")
    facts.append(f"currency {rep.currency}; 3 mo = {rep.period.prev().prev().label()} to {rep.period.label()}")
    put(2, 1, " · ".join(facts), small)
    put(3, 1, RULE, Style(wrap=True, valign="top", size=BODY_PT), to=(3, len(USAGE_COLUMNS)))
    heights[3] = LINE_PT * _lines(RULE, sum(widths[:len(USAGE_COLUMNS)]) + 4) + 3
    row = 4
    for note in rep.notes:
        put(row, 1, note, Style(color="#C00000", size=BODY_PT))
        row += 1
    for cl in rep.cliffs:
        put(row, 1, f"Volume cliff — {cl.reason}", Style(wrap=True, valign="top", size=BODY_PT),
            to=(row, len(USAGE_COLUMNS)))
        heights[row] = LINE_PT * _lines(cl.reason, sum(widths[:len(USAGE_COLUMNS)]) + 4) + 3
        row += 1
    chart_top = row + 1
    trend_title = chart_top + 22  # the two client charts (320 px ≈ 16 rows of 15 pt) and some air
    put(trend_title, 1, "Portfolio trend", Style(bold=True, size=12, color=NAVY))
    trend_head = trend_title + 1
    for j, title in enumerate(TREND_COLUMNS, start=1):
        put(trend_head, j, title, head)
    heights[trend_head] = LINE_PT * 3 + 3
    tcol = {title: j for j, title in enumerate(TREND_COLUMNS, start=1)}
    num = {f: Style(number_format=f, size=BODY_PT) for f in ("0.00", "0", "#,##0.00")}
    for k, m in enumerate(rep.trend):
        r = trend_head + 1 + k
        users = m.users
        hours = Fraction(m.hours_centi, 100)
        put(r, tcol["Month"], f"{m.period.first:%b %Y}", Style(size=BODY_PT))
        put(r, tcol["Users"], _f(users), num["0.00"])
        put(r, tcol["Tickets"], _f(m.tickets), num["0"])
        put(r, tcol["Hours"], _f(hours), num["0.00"])
        put(r, tcol["Non-billable hours"], _f(Fraction(m.non_billable_centi, 100)), num["0.00"])
        put(r, tcol["Hours / user"], _f(hours / users) if users else None, num["0.00"])
        put(r, tcol["Revenue"], _f(Fraction(m.revenue_cents, 100)), num["#,##0.00"])
        put(r, tcol["Revenue / user"], _f(Fraction(m.revenue_cents, 100) / users) if users else None,
            num["#,##0.00"])
        put(r, tcol["Revenue source"], "recorded invoices" if m.recorded else "priced from the roster", small)
    trend_last = trend_head + len(rep.trend)
    trend_chart = trend_last + 2
    top = trend_chart + 20  # the trend chart (300 px ≈ 15 rows) and some air
    # the client table: "Usage" columns, then "Money & advice" (a new printed page), each from the client
    for j, (title, _, _) in enumerate(REPORT_COLUMNS, start=1):
        put(top, j, title, head)
    heights[top] = LINE_PT * 3 + 3
    med_hpu = rep.medians.get("hours_per_user")
    first = top + 1
    col = {title: j for j, (title, _, _) in enumerate(USAGE_COLUMNS, start=1)}
    mcol = {title: len(USAGE_COLUMNS) + j for j, (title, _, _) in enumerate(MONEY_COLUMNS, start=1)}
    for i, c in enumerate(rep.clients):
        r = first + i
        u, t = c.period, c.trailing
        rec = c.recommended
        seen = "; ".join(a.label or a.reason for a in c.observations)
        why = "" if rec is None or c.recommendation is None else \
            ": ".join(x for x in (rec.label, c.recommendation.working) if x)
        values: list[Any] = [
            c.client, c.plan, _f(u.users), _f(u.tickets), _f(u.hours), _f(u.non_billable_hours),
            _f(u.tickets_per_user), _f(u.hours_per_user), _f(t.hours_per_user), _f(med_hpu), seen or None,
            c.client, _f(Fraction(u.revenue_cents, 100)), _f(u.revenue_per_user), _f(u.hourly_rate),
            _f(u.cost(cph)) if cph is not None else None, _f(u.margin(cph), 4) if cph is not None else None,
            _f(t.margin(cph), 4) if cph is not None else None, _f(c.needed), _f(c.terms_revenue),
            _f(c.terms_margin(cph), 4), why or None]
        for j, v in enumerate(values, start=1):
            style = formats[j - 1]
            if j in (col["Client"], col["Plan"], col["Observations"], mcol["Client"], mcol["Recommendation"]):
                style = wrap
            put(r, j, v, style)
        texts = [(c.client, widths[0]), (c.plan, widths[1]), (seen, widths[col["Observations"] - 1]),
                 (c.client, widths[mcol["Client"] - 1]), (why, widths[mcol["Recommendation"] - 1])]
        heights[r] = LINE_PT * max(_lines(text, w) for text, w in texts) + 3
    last = first + len(rep.clients) - 1
    mrow = last + 1
    put(mrow, 1, "Portfolio median", bold)
    put(mrow, mcol["Client"], "Portfolio median", bold)
    for key, j in (("users", col["Users"]), ("tickets_per_user", col["Tickets / user"]),
                   ("hours_per_user", col["Hours / user"]), ("revenue_per_user", mcol["Revenue / user"]),
                   ("margin", mcol["Margin"]), ("hourly_rate", mcol["Revenue / hour"])):
        put(mrow, j, _f(rep.medians.get(key), 4), Style(bold=True, number_format=REPORT_COLUMNS[j - 1][2],
                                                       size=BODY_PT))
    charts: list[Chart] = []
    half, at = _half(widths[:len(USAGE_COLUMNS)])
    if rep.clients:
        names = (first, 1, last, 1)
        hpu = col["Hours / user"]
        charts.append(Chart(
            "column", "Support hours per user by client", (chart_top, 1),
            (Series("Hours / user", names, (first, hpu, last, hpu), color="#2E75B6"),
             Series("Portfolio median", names, (first, col["Median hours / user"], last, col["Median hours / user"]),
                    kind="line", color="#C00000")),
            y_title="hours per user", size=(at - 15, 320), y_format="0.0"))
        charts.append(Chart(
            "scatter", "Revenue per user against hours per user", (chart_top, half),
            (Series("Clients", (first, hpu, last, hpu),
                    (first, mcol["Revenue / user"], last, mcol["Revenue / user"]), labels=names, color="#2E75B6"),),
            x_title="support hours per user", y_title=f"revenue per user ({rep.currency})",
            size=(PRINT_WIDTH_PX - at - 10, 320),
            y_format="#,##0"))
    if rep.trend:
        months = (trend_head + 1, 1, trend_last, 1)
        charts.append(Chart(
            "line", "12-month trend: hours and revenue per user", (trend_chart, 1),
            (Series("Hours / user", months, (trend_head + 1, tcol["Hours / user"], trend_last, tcol["Hours / user"]),
                    color="#2E75B6"),
             Series("Revenue / user", months,
                    (trend_head + 1, tcol["Revenue / user"], trend_last, tcol["Revenue / user"]), secondary=True,
                    color="#70AD47")),
            y_title="hours per user", y2_title=f"revenue per user ({rep.currency})", size=(PRINT_WIDTH_PX - 10, 300),
            y_format="0.0"))
    return SheetLayout(name=name, cells=tuple(cells), widths=tuple(enumerate(widths, start=1)),
                       heights=tuple(sorted(heights.items())), print_area=(1, 1, mrow, cols), landscape=True,
                       fit_width=0, margins=(0.4, 0.4, 0.5, 0.6), gridlines=False, charts=tuple(charts),
                       footer_left=msp.replace("&", "&&"), footer_right="page &P of &N",
                       repeat_rows=(top, top), row_breaks=(trend_title, top),
                       column_breaks=(len(USAGE_COLUMNS) + 1,))


def _half(widths: list[float]) -> tuple[int, int]:
    """The first column that starts past the middle of the printed width, and where it starts: the second chart
    goes there (a chart is stretched with the columns it spans, so sizes are in the columns' units)."""
    x = 0
    for j, w in enumerate(widths, start=1):
        if x >= PRINT_WIDTH_PX * 9 // 20:
            return j, x
        x += _px(w)
    return len(widths), x


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
