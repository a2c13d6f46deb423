"""The usage and pricing report (SPEC §9): ``perseat report`` and the ribbon's *Usage & pricing report*."""

from __future__ import annotations

from collections.abc import Callable

from perseat_addin.engine.report import TREND_MONTHS, Report, build_report
from perseat_addin.model import Book
from perseat_addin.outputs.report_sheet import report_layout
from perseat_addin.tasks.livebook import PREFIX, ExcelBook, LiveBook, Outcome
from perseat_addin.tasks.port import BookPort, validated


def measure(book: BookPort, period: str | None = None,
            progress: Callable[[int], None] | None = None) -> tuple[Book, Report]:
    """Validate the workbook and build the report for ``period`` (default: BillingPeriod)."""
    loaded, when = validated(book, period)
    return loaded, build_report(loaded, when, progress=progress)


def usage_report(live: LiveBook) -> Outcome:
    """Usage & pricing report (SPEC §9): the Report sheet with its table, advice and native charts."""
    live.status(f"{PREFIX}: reading the workbook…")
    port = ExcelBook(live)
    book, rep = measure(port, progress=port.progress("measuring usage", TREND_MONTHS, "months"))
    live.status(f"{PREFIX}: drawing the Report sheet…")
    live.put_sheet(report_layout(rep, book.settings.msp_name))
    outliers = [c for c in rep.clients if c.outlier]
    lines = [f"The Report sheet shows {rep.period.label()} for {len(rep.clients)} active clients, with charts of "
             "hours per user, revenue against hours, and the 12-month trend."]
    if outliers:
        lines.append("Far above the median of "
                     f"{rep.medians['hours_per_user']} support hours per user: "
                     + ", ".join(f"{c.client} ({float(c.period.hours_per_user or 0):.2f})" for c in outliers) + ".")
    counts = {k: sum(1 for c in rep.clients if c.recommendation is not None and c.recommendation.kind == k)
              for k in ("price", "plan", "minfee", "none")}
    lines.append(f"One recommendation per client, each covering its cost to serve at the target margin: "
                 f"{counts['price']} prices, {counts['plan']} plans, {counts['minfee']} minimum fees, "
                 f"{counts['none']} unchanged; {len(rep.cliffs)} volume-tier cliffs — each with its reason on the "
                 "sheet.")
    lines += rep.notes
    return Outcome("\n".join(lines))


__all__ = ["measure", "usage_report"]
