"""Check workbook (SPEC §6) and ``perseat check``: every problem at once, else a summary of the workbook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perseat_addin.engine.invoicing import invoice_run
from perseat_addin.errors import InputProblems, PerseatError, Problem
from perseat_addin.imports.mappings import mapping_problems
from perseat_addin.model import Book
from perseat_addin.outputs.publish import output_dir
from perseat_addin.tasks.livebook import PREFIX, ExcelBook, LiveBook, Outcome, load_live, problems_text, warnings_text
from perseat_addin.tasks.port import BookPort


def check_summary(book: Book) -> dict[str, Any]:
    """What ``perseat check`` and Check workbook report for a valid workbook."""
    run = invoice_run(book)
    why = run.user_reasons()
    billable = int(why.str.startswith("billable").sum()) if len(why) else 0
    return {
        "ok": True, "period": str(book.settings.period), "clients": len(book.clients),
        "active_clients": sum(c.active for c in book.clients), "roster_rows": len(book.roster),
        "billable_users": billable, "plans": len(book.plans),
        "warnings": [w.as_dict() for w in book.warnings],
    }


def validate(book: BookPort, load: Callable[[], Book]) -> tuple[Book | None, list[Problem]]:
    """The workbook as ``load`` validates it (None if it cannot) and every problem: the tables' and
    the Mappings table's."""
    mapping = mapping_problems(book.source().table("Mappings"))
    try:
        loaded = load()
    except InputProblems as exc:
        return None, [*exc.problems, *mapping]
    return loaded, mapping


def check_workbook(live: LiveBook) -> Outcome:
    """Validate every table (SPEC §3) and the tables the program writes to; report all problems at once."""
    live.status(f"{PREFIX}: checking the workbook…")
    port = ExcelBook(live)
    book, every = validate(port, lambda: load_live(live, port.tables))
    if book is None or every:
        n = len(every)
        return Outcome(problems_text(every, f"{n} problem{'s' if n != 1 else ''} in the workbook:"), ok=False)
    info = check_summary(book)
    lines = [f"No problems found: {info['clients']} clients ({info['active_clients']} active), "
             f"{info['billable_users']} billable users ({info['roster_rows']} roster rows), {info['plans']} plans; "
             f"billing period {book.settings.period.label()}."]
    try:
        folder = output_dir(live.fullname, book.settings.output_folder, book.settings.period)
        lines.append(f"Invoices will be written to {folder}.")
    except PerseatError as exc:
        lines.append(f"Before generating invoices: {exc}.")
    return Outcome("\n".join(lines + warnings_text(book)))


__all__ = ["check_summary", "check_workbook", "validate"]
