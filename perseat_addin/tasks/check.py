"""Check workbook (SPEC §6) and ``perseat check``: every problem at once, else a summary of the workbook."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from perseat_addin.engine.corrections import BILLED, pending, read_billed
from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.engine.ledger import recorded_periods
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.imports.mappings import mapping_problems
from perseat_addin.model import Book
from perseat_addin.money import fmt_money
from perseat_addin.outputs.logo import read_logo
from perseat_addin.outputs.publish import output_dir
from perseat_addin.tasks.livebook import (
    PREFIX,
    ExcelBook,
    LiveBook,
    Outcome,
    capped,
    load_live,
    problems_text,
    warnings_text,
)
from perseat_addin.tasks.port import BookPort


def check_summary(book: Book, port: BookPort | None = None) -> dict[str, Any]:
    """What ``perseat check`` and Check workbook report for a valid workbook, with the corrections late roster
    changes owe to finalized months (listed before they are billed)."""
    run = invoice_run(book)
    why = run.user_reasons()
    billable = int(why.str.startswith("billable").sum()) if len(why) else 0
    corrections = pending(book, read_billed(port.rows(BILLED)), book.settings.period) if port is not None else []
    warnings = [w.as_dict() for w in book.warnings]
    inv_t = port.rows("Invoices") if port is not None else None
    if port is not None and port.rows(BILLED) is None and inv_t is not None and recorded_periods(inv_t):
        warnings.append(Problem(BILLED, None, None, "the workbook has no Billed table, so late roster changes to "
                                "finalized months cannot be corrected on the next invoice",
                                "add the Billed sheet and table from the template (perseat template --blank)",
                                "warning").as_dict())
    return {
        "ok": True, "period": str(book.settings.period), "clients": len(book.clients),
        "active_clients": sum(c.active for c in book.clients), "roster_rows": len(book.roster),
        "billable_users": billable, "plans": len(book.plans),
        "corrections": [{"client": c.client, "period": str(c.period), "description": c.line.description,
                         "amount": f"{c.line.amount:.2f}"} for c in corrections],
        "warnings": warnings,
    }


def corrections_text(info: dict[str, Any]) -> list[str]:
    """The pending corrections of :func:`check_summary`, one line each, for people."""
    if not info["corrections"]:
        return []
    return ["Pending corrections (late changes to finalized months, billed on each client's next invoice):",
            *[f"  {c['client']}: {c['description']}: {fmt_money(cents_of(c['amount']))}"
              for c in info["corrections"]]]


def validate(book: BookPort, load: Callable[[], Book]) -> tuple[Book | None, list[Problem]]:
    """The workbook as ``load`` validates it (None if it cannot) and every problem: the tables', the
    Mappings table's and the logo file's (Settings.LogoFile, which every invoice prints)."""
    mapping = mapping_problems(book.source().table("Mappings"))
    try:
        loaded = load()
    except InputProblems as exc:
        return None, [*exc.problems, *mapping]
    try:
        read_logo(loaded)
    except InputProblems as exc:
        mapping = [*mapping, *exc.problems]
    return loaded, mapping


def check_workbook(live: LiveBook) -> Outcome:
    """Validate every table (SPEC §3) and the tables the program writes to; report all problems at once."""
    live.status(f"{PREFIX}: checking the workbook…")
    port = ExcelBook(live)
    book, every = validate(port, lambda: load_live(live, port.tables))
    if book is None or every:
        n = len(every)
        return Outcome(problems_text(every, f"{n} problem{'s' if n != 1 else ''} in the workbook:"), ok=False)
    info = check_summary(book, port)
    lines = [f"No problems found: {info['clients']} clients ({info['active_clients']} active), "
             f"{info['billable_users']} billable users ({info['roster_rows']} roster rows), {info['plans']} plans; "
             f"billing period {book.settings.period.label()}."]
    try:
        folder = output_dir(live.fullname, book.settings.output_folder, book.settings.period)
        lines.append(f"Invoices will be written to {folder}.")
    except PerseatError as exc:
        lines.append(f"Before generating invoices: {exc}.")
    return Outcome("\n".join(lines + capped(corrections_text(info)) + warnings_text(book)))


def cents_of(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


__all__ = ["check_summary", "check_workbook", "corrections_text", "validate"]
