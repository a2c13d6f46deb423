"""The ``perseat`` command line (SPEC §7). Exit codes: 0 ok, 1 input problems, 2 usage error."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .errors import FinalizedError, InputProblems, PerseatError, Problem, WorkbookError
from .money import fmt_money
from .outputs import summary, write_outputs


@contextmanager
def _progress(total: int, desc: str, enabled: bool, unit: str = "client",
              min_total: int = 50) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on a terminal (stderr); silent otherwise."""
    if not enabled or total < min_total or not sys.stderr.isatty():
        yield lambda n: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
    try:
        yield bar.update
    finally:
        bar.close()


def _print_problems(problems: Sequence[Problem], as_json: bool, head: str) -> None:
    if as_json:
        print(json.dumps({"ok": False, "problems": [p.as_dict() for p in problems]}, indent=2))
        return
    print(head, file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)


def _period_arg(text: str | None) -> str | None:
    if text is None:
        return None
    from .model import Period

    try:
        Period.parse(text)
    except ValueError as exc:
        raise SystemExit(_usage_error(str(exc))) from None
    return text


def _usage_error(msg: str) -> int:
    print(f"perseat: error: {msg}", file=sys.stderr)
    return 2


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the workbook and report every problem at once."""
    from .actions import check_summary
    from .importers import mapping_problems
    from .load import load
    from .reader import Workbook

    book = load(args.workbook)
    problems = mapping_problems(Workbook(args.workbook).table("Mappings"))
    if problems:
        raise InputProblems(problems)
    info = check_summary(book)
    billable = info["billable_users"]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{args.workbook}: OK for {book.settings.period}: {info['active_clients']} active clients, "
              f"{len(book.roster)} roster rows, {billable} billable users, {len(book.plans)} plans.")
        for w in book.warnings:
            print(f"  warning: {w}")
    return 0


def cmd_invoice(args: argparse.Namespace) -> int:
    """Price the period and write invoices.xlsx, the accounting CSVs and (optionally) PDFs."""
    from .invoicing import invoice_run
    from .load import load
    from .model import Period
    from .writeback import record_invoices

    book = load(args.workbook, period=args.period)
    period = Period.parse(args.period) if args.period else book.settings.period
    show = not args.json
    with _progress(len(book.clients), "Pricing", show) as tick:
        run = invoice_run(book, period, progress=tick)
    if args.finalize:
        if not run.invoices:
            reasons = "; ".join(f"{c}: {r}" for c, r in run.skipped) or "no active clients"
            print(f"Nothing to finalize for {period}: {reasons}", file=sys.stderr)
            return 0
        run.invoices = [replace(i, status="Final") for i in run.invoices]
    out = Path(args.out) if args.out else _default_out(args.workbook, book.settings.output_folder, period)
    files = {i.number: (f"{i.file_stem}.pdf" if args.pdf else f"invoices.xlsx#{i.number}")
             for i in run.invoices}

    def finalize() -> None:
        record_invoices(args.workbook, run.invoices, period, final=True, files=files)

    with _progress(len(run.invoices), "Writing", show) as tick:
        written = write_outputs(run, out, pdf=args.pdf, progress=tick,
                                before_publish=finalize if args.finalize else None)
    if args.json:
        print(json.dumps(summary(run, written), indent=2, ensure_ascii=False))
        return 0
    width = max([len(i.client.name) for i in run.invoices] + [6])
    print(f"{len(run.invoices)} invoices for {period.label()} ({book.settings.currency})")
    for inv in run.invoices:
        print(f"  {inv.number:<12} {inv.client.name:<{width}} {inv.seats:>6} seats "
              f"{fmt_money(inv.total_cents):>14}")
    print(f"  {'Total':<12} {'':<{width}} {'':>12} {fmt_money(run.total_cents):>14}")
    for client, reason in run.skipped:
        print(f"  skipped {client}: {reason}")
    for w in book.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"Wrote {', '.join(written)} to {out}")
    if args.finalize:
        print(f"Finalized {period} in {args.workbook}: invoices recorded as Final, "
              f"BillingPeriod is now {period.next()}.")
    return 0


def _default_out(workbook: str, folder: str, period: Any) -> Path:
    from .actions import output_dir

    return output_dir(str(Path(workbook).resolve()), folder, period)


def cmd_import(args: argparse.Namespace) -> int:
    """Sync a vendor export into one client's Roster (dry run unless --apply)."""
    import datetime as dt

    from .importers import SOURCES, Mapping, detect_source, read_export
    from .schema import parse_date_text
    from .sync import sync
    from .usage_import import USAGE_SOURCES

    try:
        effective = parse_date_text(args.effective) if args.effective else dt.date.today()
    except ValueError as exc:
        return _usage_error(f"--effective: {exc}")
    if args.source.strip().lower() in USAGE_SOURCES:
        return _import_usage(args, args.source)
    source: str | Mapping = args.source
    if args.source.strip().lower() == "auto":
        source = detect_source(Path(args.file), [m for m in _mappings(args.workbook).values() if m.kind == "Roster"])
    elif args.source.strip().lower() not in SOURCES:
        found: Mapping = _mapping(args.workbook, args.source)
        if found.kind.lower() == "usage":
            return _import_usage(args, found)
        source = found
    imported = read_export(Path(args.file), source)
    result = sync(args.workbook, args.client, imported, effective, apply=args.apply)
    client, changes, report = result.client, result.changes, result.drift
    warnings = [p for p in imported.problems if p.severity != "error"]
    if args.json:
        print(json.dumps({"client": client, "client_reason": result.client_reason,
                          "effective": effective.isoformat(), "applied": args.apply,
                          "drift": report.as_dict(),
                          "users_in_import": len(imported.rows),
                          "changes": [{"action": c.action, "user": c.user, "field": c.field,
                                       "old": c.old, "new": c.new} for c in changes],
                          "warnings": [w.as_dict() for w in warnings]}, indent=2, ensure_ascii=False))
        return 0
    how = f" ({result.client_reason})" if result.client_reason else ""
    print(f"{len(imported.rows)} users in {Path(args.file).name} ({imported.source}) for {client}{how}, "
          f"effective {effective}:")
    for c in changes:
        print(f"  {c}")
    if not changes:
        print("  no changes: the Roster already matches")
    print(f"Drift: {report}")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if changes:
        print(f"Applied {len(changes)} changes to {args.workbook} (Roster and ChangeLog)." if args.apply
              else "Dry run: nothing written. Add --apply to write these changes.")
    return 0


def _mappings(workbook: str, kind: str = "Roster") -> dict[str, Any]:
    """The workbook's saved column mappings (InputProblems if its Mappings table has any)."""
    from .importers import saved_mappings
    from .reader import Workbook

    raw = Workbook(workbook).table("Mappings")
    mappings, problems = saved_mappings(raw, kind)
    if problems:
        raise InputProblems(problems)
    if kind == "Roster":
        usage, problems = saved_mappings(raw, "Usage")
        if problems:
            raise InputProblems(problems)
        mappings = {**usage, **mappings}
    return mappings


def _import_usage(args: argparse.Namespace, source: Any) -> int:
    """PSA time entries or tickets → rows appended to the Usage table (dry run unless --apply)."""
    from .load import load_source
    from .reader import Workbook
    from .usage_import import add_usage, known_tickets, read_usage, usage_totals

    reader = Workbook(args.workbook)  # read once: validation, known tickets and the write share it
    book = load_source(reader, name=args.workbook)
    imported = read_usage(Path(args.file), source, [c.name for c in book.clients],
                          known_tickets=known_tickets(reader))
    result = add_usage(args.workbook, imported, apply=args.apply, reader=reader)
    warnings = [p for p in imported.problems if p.severity != "error"]
    errors = [p for p in imported.problems if p.severity == "error"]
    totals = usage_totals(result.added)
    if args.json:
        print(json.dumps({"source": imported.source, "applied": result.applied, "rows_read": len(imported.rows),
                          "rows_new": len(result.added), "rows_already_there": result.already,
                          "by_client": {c: {"rows": n, "tickets": t, "hours": str(h)} for c, (n, t, h) in
                                        totals.items()},
                          "unknown_companies": imported.unknown,
                          "problems": [p.as_dict() for p in imported.problems]}, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(imported.rows)} usage rows in {Path(args.file).name} ({imported.source}); {len(result.added)} new, "
          f"{result.already} already in the Usage table:")
    for c, (n, t, h) in sorted(totals.items()):
        print(f"  {c:<30.30} {n:>6} rows {t:>5} tickets {h:>9.2f} h")
    for p in [*errors, *warnings]:
        print(f"{p.severity}: {p}", file=sys.stderr)
    if result.added:
        print(f"Added {len(result.added)} rows to the Usage table of {args.workbook}." if result.applied
              else "Dry run: nothing written. Add --apply to add these rows.")
    return 0


def _mapping(workbook: str, name: str) -> Any:
    """The column mapping called ``name`` in the workbook's Mappings table."""
    from .importers import SOURCES

    mappings = _mappings(workbook)
    found = mappings.get(name.strip().lower())
    if found is None:
        from .usage_import import USAGE_SOURCES

        known = [*SOURCES, *USAGE_SOURCES, *(m.name for m in mappings.values())]
        raise InputProblems([Problem("Mappings", None, "Source", f'no importer or saved mapping called "{name}"',
                                     f"use one of: {', '.join(known)}; or add rows for {name} to the Mappings "
                                     "table (Source, Field, Column)")])
    return found


def cmd_report(args: argparse.Namespace) -> int:
    """Usage and pricing report: report.xlsx (with charts) and a summary, or --json."""
    from .load import load
    from .model import Period
    from .report import TREND_MONTHS, build_report, report_dict, write_report

    book = load(args.workbook, period=args.period)
    period = Period.parse(args.period) if args.period else book.settings.period
    big = len(book.roster) + len(book.usage) >= 20_000
    with _progress(TREND_MONTHS, "Reporting", not args.json and big, unit="month", min_total=1) as tick:
        rep = build_report(book, period, progress=tick)
    out = Path(args.out) if args.out else _default_out(args.workbook, book.settings.output_folder, period)
    path = write_report(rep, out / "report.xlsx", book.settings.msp_name)
    if args.json:
        print(json.dumps({**report_dict(rep), "file": str(path)}, indent=2, ensure_ascii=False))
        return 0
    print(f"Usage and pricing, {period.label()} ({len(rep.clients)} active clients; medians: "
          f"{rep.medians['hours_per_user']} hours/user, {rep.medians['revenue_per_user']} revenue/user)")
    for c in rep.clients:
        u = c.period
        hpu = "-" if u.hours_per_user is None else f"{float(u.hours_per_user):.2f}"
        rpu = "-" if u.revenue_per_user is None else f"{float(u.revenue_per_user):,.2f}"
        rec = f"price {c.price:,.2f}" if c.price is not None else ""
        rec += f"{', ' if rec else ''}plan {c.plan_advice}" if c.plan_advice else ""
        flag = "  OUTLIER" if c.outlier else ""
        print(f"  {c.client:<28.28} {hpu:>6} h/user {rpu:>10}/user  → {rec}{flag}")
    for note in rep.notes:
        print(f"note: {note}")
    for cliff in rep.cliffs:
        print(f"  cliff: {cliff.reason}")
    print(f"Wrote {path}")
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    """Write the sample workbook."""
    from .template import build

    path = build(args.out)
    print(f"Wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate for tests and docs)."""
    p = argparse.ArgumentParser(prog="perseat", description="Per-user billing for managed service providers.")
    p.add_argument("--version", action="version", version=f"perseat {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inv = sub.add_parser("invoice", help="generate the period's invoices from a workbook")
    inv.add_argument("workbook")
    inv.add_argument("--period", help="billing month YYYY-MM (default: Settings BillingPeriod)")
    inv.add_argument("--out", help="output folder (default: OutputFolder/PERIOD beside the workbook)")
    inv.add_argument("--pdf", action="store_true", help="also write one PDF per invoice (needs LibreOffice)")
    inv.add_argument("--finalize", action="store_true",
                     help="record the invoices as Final in the workbook and advance the period")
    inv.add_argument("--json", action="store_true", help="print a machine-readable summary")
    inv.set_defaults(func=cmd_invoice)
    chk = sub.add_parser("check", help="validate a workbook and list every problem")
    chk.add_argument("workbook")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_check)
    imp = sub.add_parser("import", help="sync a Microsoft 365 or PSA user export into a client's Roster, or add "
                         "PSA time entries and tickets to Usage")
    imp.add_argument("source", metavar="SOURCE",
                     help="users: m365, connectwise, autotask, halopsa, or auto (recognised from the headers); "
                          "usage: connectwise-time, autotask-time, autotask-tickets, halopsa-tickets; or the "
                          "Source name of a column mapping saved in the workbook's Mappings table")
    imp.add_argument("file")
    imp.add_argument("--workbook", required=True)
    imp.add_argument("--client", help="the client (as in Clients) the export belongs to (default: the "
                     "export's company column, or its users' e-mail domains on the Roster)")
    imp.add_argument("--effective", help="date the changes take effect (default: today)")
    imp.add_argument("--apply", action="store_true", help="write the changes (default: dry run)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_import)
    rep = sub.add_parser("report", help="usage and pricing report: report.xlsx with charts")
    rep.add_argument("workbook")
    rep.add_argument("--period", help="billing month YYYY-MM (default: Settings BillingPeriod)")
    rep.add_argument("--out", help="output folder (default: OutputFolder/PERIOD beside the workbook)")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)
    tpl = sub.add_parser("template", help="write the sample workbook_template.xlsm")
    tpl.add_argument("--out", default="workbook_template.xlsm")
    tpl.set_defaults(func=cmd_template)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perseat`` console script."""
    # A run builds hundreds of thousands of small objects (rows, cells, XML elements) and few
    # reference cycles; collecting less often saves ~10% of a large import or invoice run.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1000)
    try:
        return _run(argv)
    finally:
        gc.set_threshold(*thresholds)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "period", None):
        _period_arg(args.period)
    as_json = getattr(args, "json", False)
    try:
        return int(args.func(args))
    except InputProblems as exc:
        _print_problems(exc.problems, as_json, str(exc).splitlines()[0])
        return 1
    except (WorkbookError, FinalizedError, PerseatError) as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc)}, indent=2))
        else:
            print(f"perseat: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except PermissionError as exc:
        print(f"perseat: cannot write {exc.filename}: is it open in Excel? Close it and try again.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
