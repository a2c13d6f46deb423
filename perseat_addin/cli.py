"""The ``perseat`` command line (SPEC §7). Exit codes: 0 ok, 1 input problems, 2 usage error."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perseat_addin.errors import (
    FinalizedError,
    InputProblems,
    PerseatError,
    Problem,
    UsageError,
    WorkbookError,
    os_error_text,
)
from perseat_addin.version import __version__

if TYPE_CHECKING:
    from perseat_addin.engine.invoicing import Run
    from perseat_addin.tasks.filebook import FileBook
    from perseat_addin.tasks.send import Earlier, Mail

# Each command imports what it needs when it runs: ``perseat --help`` stays instant, and ``perseat invoice``
# does not pay for the template builder, the report or the importers (start-up time).


@contextmanager
def _progress(total: int, desc: str, enabled: bool, unit: str = "client",
              min_total: int = 50) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on a terminal (stderr); silent otherwise."""
    if not enabled or total < min_total or not sys.stderr.isatty():
        yield lambda n: None
        return
    from tqdm import tqdm  # lazy: only long runs draw a bar, and --json runs never do (start-up time)

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
    from perseat_addin.model import Period

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
    from perseat_addin.tasks.check import check_summary, corrections_text, validate
    from perseat_addin.workbook.load import load_source

    wb = _open(args)
    book, problems = validate(wb, lambda: load_source(wb.source(), name=args.workbook))
    if book is None or problems:
        raise InputProblems(problems)
    info = check_summary(book, wb)
    billable = info["billable_users"]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{args.workbook}: OK for {book.settings.period}: {info['active_clients']} active clients, "
              f"{len(book.roster)} roster rows, {billable} billable users, {len(book.plans)} plans.")
        for line in corrections_text(info):
            print(f"  {line}")
        for w in info["warnings"]:
            print(f"  warning: {Problem(**w)}")
    return 0


def cmd_invoice(args: argparse.Namespace) -> int:
    """Price the period and write invoices.xlsx, the accounting CSVs and (optionally) PDFs."""
    import datetime as dt
    from dataclasses import replace

    from perseat_addin.tables import BOOK_TABLES
    from perseat_addin.tasks.filebook import open_ahead

    # the workbook is checked and its tables read on another thread while the engine is imported here
    opening = open_ahead(args.workbook, "invoice --finalize" if args.finalize else None, BOOK_TABLES)
    from perseat_addin.money import fmt_money
    from perseat_addin.outputs.publish import summary, write_outputs
    from perseat_addin.outputs.xlsx import has_printable_sheets
    from perseat_addin.tasks import invoice
    from perseat_addin.tasks.port import validated

    wb = opening()
    args.opened.append(wb)
    show = not args.json
    book, period = validated(wb, args.period)
    if args.finalize:
        why = invoice.finalize_refusal(wb, book, period)
        early = None if args.early else invoice.early_text(book, period, dt.date.today())
        if why or early:
            hint = "; wait until then, or add --early to finalize now" if early and not why else ""
            raise PerseatError(f"{why or early}{hint}. Nothing was written.")
    run = invoice.recorded_run(wb, book, period)
    reissued = run is not None
    wb.release()  # the priced book is all the run needs from here: the raw cells go
    corrections: list[Any] = []
    if run is None:
        with _progress(len(book.clients), "Pricing", show) as tick:
            run, corrections = invoice.priced(wb, book, period, progress=tick)
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
        invoice.record(wb, run.invoices, period, final=True, files=files,
                       billed=invoice.billed_edit(wb, run, corrections, create=True))

    sheets = len(run.invoices) if has_printable_sheets(run) else 0  # the bar counts printable sheets drawn
    with _progress(sheets, "Writing", show) as tick:
        written = write_outputs(run, out, pdf=args.pdf, progress=tick, inputs=[Path(args.workbook)],
                                before_publish=finalize if args.finalize else None, rollback=wb.rollback)
    if args.json:
        print(json.dumps(summary(run, written), indent=2, ensure_ascii=False))
        return 0
    width = max([len(i.client.name) for i in run.invoices] + [6])
    if reissued:
        print(f"{len(run.invoices)} recorded documents of {period.label()} ({book.settings.currency}), re-issued "
              "exactly as recorded; the workbook was not changed")
    else:
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
    note = sheets_note(run, out, args.pdf)
    if note:
        print(note)
    if args.finalize:
        print(f"Finalized {period} in {args.workbook}: invoices recorded as Final, "
              f"BillingPeriod is now {period.next()}.")
    return 0


def sheets_note(run: Run, out: Path, pdf: bool) -> str | None:
    """What to tell the user when invoices.xlsx leaves out the printable per-invoice sheets (a large run), and
    where the per-invoice documents are; None when it has them."""
    from perseat_addin.outputs.xlsx import PRINTABLE_SHEETS, has_printable_sheets

    if has_printable_sheets(run):
        return None
    n = len(run.invoices)
    where = (f"the per-invoice documents are the {n:,} PDFs in {out}" if pdf else
             "for one PDF per invoice run this command again with --pdf (or use Generate invoices in Excel)")
    return (f"invoices.xlsx holds all {n:,} invoices on its Register and Lines sheets, without a printable sheet "
            f"per invoice (those are written for runs of up to {PRINTABLE_SHEETS:,} invoices); {where}.")


def cmd_credit(args: argparse.Namespace) -> int:
    """Issue and record a credit note against a recorded invoice, and write its documents."""
    from perseat_addin.engine.invoicing import Run
    from perseat_addin.money import fmt_money
    from perseat_addin.outputs.publish import summary, write_outputs
    from perseat_addin.tasks import credit

    try:
        amount = credit.amount_cents(args.amount) if args.amount is not None else None
    except ValueError as exc:
        return _usage_error(f"--amount: {exc}")
    wb = _open(args, "credit")
    loaded, note, edits = credit.plan_credit(wb, args.invoice, args.reason, lines=args.line or (), amount=amount)
    wb.release()
    run = Run(loaded, note.period, [note], [])
    out = Path(args.out) if args.out else \
        _default_out(args.workbook, loaded.settings.output_folder, note.period) / note.file_stem
    written = write_outputs(run, out, pdf=args.pdf, before_publish=lambda: wb.write(edits), credits_only=True,
                            inputs=[Path(args.workbook)], rollback=wb.rollback)
    if args.json:
        print(json.dumps(summary(run, written), indent=2, ensure_ascii=False))
        return 0
    print(f"Credit note {note.number} for {note.client.name}: {fmt_money(-note.total_cents)} "
          f"{loaded.settings.currency} credited on {note.corrects} ({note.reason})")
    for ln in note.lines:
        print(f"  {ln.description:<70} {fmt_money(ln.amount_cents):>12}")
    print(f"Recorded in {args.workbook} (Status Final); NextInvoiceNumber is now "
          f"{loaded.settings.next_invoice_number + 1}. Wrote {', '.join(written)} to {out}")
    return 0


def _default_out(workbook: str, folder: str, period: Any) -> Path:
    from perseat_addin.outputs.publish import output_dir

    return output_dir(str(Path(workbook).resolve()), folder, period)


def cmd_import(args: argparse.Namespace) -> int:
    """Sync a vendor export into one client's Roster (dry run unless --apply)."""
    import datetime as dt

    from perseat_addin.cells import parse_date_text
    from perseat_addin.imports.names import SOURCES, USAGE_SOURCES
    from perseat_addin.tables import BOOK_TABLES
    from perseat_addin.tasks.filebook import open_ahead

    try:
        effective = parse_date_text(args.effective) if args.effective else dt.date.today()
    except ValueError as exc:
        return _usage_error(f"--effective: {exc}")
    if not dt.date(1900, 1, 1) <= effective <= dt.date(9998, 12, 31):
        return _usage_error(f"--effective: {effective} is outside the years 1900–9998 a billing workbook can hold")
    key = args.source.strip().lower()
    built_in = key in SOURCES  # a built-in roster importer: the export can be read before the workbook is open
    roster_writes = ["Roster", "ChangeLog"]  # what a roster import writes (a usage import: Usage)
    writes = roster_writes if built_in else ["Usage"] if key in USAGE_SOURCES else []
    # the workbook is checked and read, and the sheets the import writes parsed, on other threads while the
    # importers are imported and the export read here
    opening = open_ahead(args.workbook, "import --apply" if args.apply else None, BOOK_TABLES,
                         writes if args.apply else ())
    from perseat_addin.imports.roster import ImportResult, read_export
    from perseat_addin.tasks import import_roster

    imported: ImportResult | None = None
    early: Exception | None = None  # said after any problem with the workbook, as when read in turn
    if built_in:
        try:
            imported = read_export(Path(args.file), key)
        except Exception as exc:
            early = exc
    wb = opening()
    args.opened.append(wb)
    if early is not None:
        raise early
    source = import_roster.source_of(wb, args.source, Path(args.file))
    if import_roster.is_usage(source):
        return _import_usage(args, wb, source)
    if args.apply:
        wb.prepare(roster_writes)  # (a saved mapping or a recognised export: not started yet)
    if imported is None:
        imported = read_export(Path(args.file), source)
    client, why = import_roster.find_client(wb, imported, args.client)
    if client is None:
        raise InputProblems([Problem(imported.file or "import", None, None,
                                     f"cannot tell which client this export is for ({why})",
                                     "name the client: --client NAME (as in Clients)")])
    planned = import_roster.plan(wb, imported, client, why, effective)
    danger = import_roster.hazards(wb, planned)
    blocking = danger.refused + ([] if args.force else
                                 [t for t in danger.needs_force if danger.mismatch or args.apply])
    if blocking:
        raise InputProblems([Problem(imported.file or args.file, None, None, t) for t in blocking])
    if args.apply:
        import_roster.apply(wb, planned)
    changes, report, warnings = planned.changes, planned.drift, planned.warnings
    if args.json:
        print(json.dumps({"client": client, "client_reason": planned.client_reason,
                          "effective": effective.isoformat(), "applied": args.apply,
                          "drift": report.as_dict(),
                          "users_in_import": len(imported.rows),
                          "cautions": danger.needs_force,
                          "changes": [{"action": c.action, "user": c.user, "field": c.field,
                                       "old": c.old, "new": c.new, **({"why": c.why} if c.why else {})}
                                      for c in changes],
                          "warnings": [w.as_dict() for w in warnings]}, indent=2, ensure_ascii=False))
        return 0
    how = f" ({planned.client_reason})" if planned.client_reason else ""
    print(f"{len(imported.rows)} users in {Path(args.file).name} ({imported.source}) for {client}{how}, "
          f"effective {effective}:")
    for c in changes:
        print(f"  {c}")
    if not changes:
        print("  no changes: the Roster already matches")
    print(f"Drift: {report}")
    for t in danger.needs_force:
        print(f"warning: {t}", file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if changes:
        print(f"Applied {len(changes)} changes to {args.workbook} (Roster and ChangeLog)." if args.apply
              else "Dry run: nothing written. Add --apply to write these changes.")
    return 0


def _import_usage(args: argparse.Namespace, wb: Any, source: Any) -> int:
    """PSA time entries or tickets → rows appended to the Usage table (dry run unless --apply)."""
    from perseat_addin.imports.usage import usage_totals
    from perseat_addin.tasks import import_usage

    imported = import_usage.read(wb, Path(args.file), source)
    planned = import_usage.plan(wb, imported)
    applied = args.apply and bool(planned.added)
    if applied:
        import_usage.apply(wb, planned)
    warnings = [p for p in imported.problems if p.severity != "error"]
    errors = [p for p in imported.problems if p.severity == "error"]
    totals = usage_totals(planned.added)
    apart_rows, apart_hours = import_usage.non_billable(planned)
    if args.json:
        print(json.dumps({"source": imported.source, "applied": applied, "rows_read": len(imported.rows),
                          "rows_new": len(planned.added), "rows_already_there": planned.already,
                          "by_client": {c: {"rows": n, "tickets": t, "hours": str(h)} for c, (n, t, h) in
                                        totals.items()},
                          "rows_not_billable": apart_rows, "hours_not_billable_by_client": apart_hours,
                          "unknown_companies": imported.unknown,
                          "problems": [p.as_dict() for p in imported.problems]}, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(imported.rows)} usage rows in {Path(args.file).name} ({imported.source}); {len(planned.added)} new, "
          f"{planned.already} already in the Usage table:")
    for line in import_usage.preview(planned):
        print(f"  {line}")
    for p in [*errors, *warnings]:
        print(f"{p.severity}: {p}", file=sys.stderr)
    if planned.added:
        print(f"Added {len(planned.added)} rows to the Usage table of {args.workbook}." if applied
              else "Dry run: nothing written. Add --apply to add these rows.")
    return 0


def _live_source(name: str) -> Any:
    """The client of live source ``name`` (credentials read now); a UsageError for an unknown one."""
    from perseat_addin.tasks.sync_source import SOURCES, open_source

    if name.strip().lower() not in SOURCES:
        raise UsageError(f'no live source called "{name}": use one of {", ".join(SOURCES)}')
    return open_source(name)


def _effective(text: str | None) -> Any:
    """The --effective date (default today); a UsageError when it is not one."""
    import datetime as dt

    from perseat_addin.cells import parse_date_text

    try:
        effective = parse_date_text(text) if text else dt.date.today()
    except ValueError as exc:
        raise UsageError(f"--effective: {exc}") from None
    if not dt.date(1900, 1, 1) <= effective <= dt.date(9998, 12, 31):
        raise UsageError(f"--effective: {effective} is outside the years 1900–9998 a billing workbook can hold")
    return effective


def cmd_sync(args: argparse.Namespace) -> int:
    """Sync each client's users from a live source into its Roster, and a PSA's time entries of the period into
    Usage (dry run unless --apply)."""
    from perseat_addin.model import Period
    from perseat_addin.tasks import sync_source

    if not args.client and not args.all:
        return _usage_error("name the client to sync with --client NAME, or sync every client with --all")
    effective = _effective(args.effective)
    wb = _open(args, "sync --apply" if args.apply else None)
    with _live_source(args.source) as source:
        todo, skipped = sync_source.targets(wb, source.key_column, args.client, args.all)
        if not todo:
            raise PerseatError(f"no client has a {source.key_column} in Clients; type each client's "
                               f"{source.key_column} there, then sync again")
        show = not args.json
        fetched: dict[str, int] = {}

        def pages(t: sync_source.Target) -> Callable[[int], None]:
            if show:
                print(f"{t.client}: reading {source.label} ({source.key_column} {t.key})…", file=sys.stderr,
                      flush=True)
            fetched[t.client] = 0

            def tick(n: int) -> None:
                fetched[t.client] += n
            return tick

        period = Period.parse(args.period) if args.period else None
        with _progress(len(todo), "Syncing", show, min_total=2) as bar:
            results = sync_source.plan_all(wb, source, todo, effective, apply=args.apply, force=args.force,
                                           period=period, progress=pages, done=lambda r: bar(1))
    usage_label = getattr(source, "usage_label", "")
    written = sync_source.apply_all(wb, results, source.label, usage_source=usage_label) if args.apply else 0
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"source": args.source, "effective": effective.isoformat(), "applied": bool(args.apply),
                          "changes_written": written, "skipped_clients": skipped,
                          "clients": [_sync_dict(r) for r in results]}, indent=2, ensure_ascii=False))
        return 1 if failed else 0
    for r in results:
        if r.plan is None or r.error:
            continue
        lines, notes = sync_source.client_preview(r, source.label, source.key_column, effective)
        for line in lines:
            print(line)
        for note in notes:
            print(note, file=sys.stderr)
    for r in failed:
        print(f"perseat: {sync_source.failure_line(r)}", file=sys.stderr)
    ok = [r for r in results if r.ok]
    changes = sync_source.change_count(results)
    done = f"{len(ok)} of {len(results)} clients synced"
    if skipped and args.all:
        done += f"; {len(skipped)} without a {source.key_column} or Inactive left out ({', '.join(skipped[:5])}" \
                f"{', …' if len(skipped) > 5 else ''})"
    if args.apply:
        what = "Roster, Usage and ChangeLog" if usage_label else "Roster and ChangeLog"
        print(f"{done}: applied {written} changes to {args.workbook} ({what}).")
    else:
        print(f"{done}: {changes} changes. Dry run: nothing written. Add --apply to write them." if changes
              else f"{done}: nothing to change.")
    return 1 if failed else 0


def _sync_dict(r: Any) -> dict[str, Any]:
    """One client's sync result for --json."""
    out: dict[str, Any] = {"client": r.client, "key": r.key, "ok": r.ok, "error": r.error}
    if r.plan is not None:
        out.update({"users_in_source": len(r.plan.imported.rows), "drift": r.plan.drift.as_dict(),
                    "changes": [{"action": c.action, "user": c.user, "field": c.field, "old": c.old, "new": c.new,
                                 **({"why": c.why} if c.why else {})} for c in r.plan.changes],
                    "cautions": r.hazards.needs_force if r.hazards else [],
                    "warnings": [w.as_dict() for w in r.plan.warnings]})
    if r.usage is not None:
        out["usage"] = {"entries": len(r.usage.imported.rows), "new": len(r.usage.added),
                        "already_there": r.usage.already,
                        "by_client": {c: {"rows": n, "tickets": t, "hours": str(h)}
                                      for c, (n, t, h) in r.usage.imported.totals().items()},
                        "hours_not_billable": {c: str(h) for c, (_, h) in r.usage.imported.non_billable().items()}}
    return out


def cmd_connect(args: argparse.Namespace) -> int:
    """Test a live source's credentials, per tenant, and say in words what works."""
    from perseat_addin.tasks import sync_source

    if args.source.strip().lower() == "connectwise":
        return _connect_connectwise(args)
    with _live_source(args.source) as source:
        who = getattr(source, "identity", None) or f"client id {source.config.client_id}"
        print(f"{source.label}: credentials found ({who}; the secret is not shown).")
        if args.tenant:
            todo = [sync_source.Target(args.tenant, args.tenant)]
        elif args.workbook:
            wb = _open(args)
            todo, _ = sync_source.targets(wb, source.key_column, args.client, args.client is None)
        else:
            print(f"Name --workbook WB to test every client's {source.key_column}, or --tenant ID to test one "
                  "tenant.")
            return 0
        if not todo:
            raise PerseatError(f"no client has a {source.key_column} in Clients; type each client's "
                               f"{source.key_column} there, or test one with --tenant ID")
        bad = 0
        for t in todo:
            name = t.client if t.client == t.key else f"{t.client} ({source.key_column} {t.key})"
            print(f"{name}:")
            checks = source.check(t.key)
            for c in checks:
                print(f"  {c}")
            bad += any(c.ok is False for c in checks)
    if bad:
        print(f"perseat: {bad} of {len(todo)} tenant{'s' * (len(todo) != 1)} cannot be synced yet; see FAILED above.",
              file=sys.stderr)
    return 1 if bad else 0


def _connect_connectwise(args: argparse.Namespace) -> int:
    """``perseat connect connectwise``: the site, the keys, each permission; with a workbook, each client's records."""
    from perseat_addin.cells import plain_text

    with _live_source("connectwise") as cw:
        c = cw.config
        where = c.api_url or f"site {c.site}"
        print(f"{cw.label}: credentials found ({where}, company id {c.company}, public key {c.public_key}, clientId "
              f"{c.client_id}; the private key is not shown).")
        checks = cw.check()
        for x in checks:
            print(f"  {x}")
        bad = any(x.ok is False for x in checks)
        if bad or not args.workbook:
            if not bad:
                print("Name --workbook WB to check each client's PSACompanyID and PSAAgreementID.")
            return 1 if bad else 0
        wb = _open(args)
        clients = wb.rows("Clients")
        if clients is None or clients.col("PSACompanyID") is None:
            raise PerseatError("the Clients table has no PSACompanyID column: add it and type each client's "
                               "ConnectWise company RecID")
        failed = tried = 0
        for row in clients.rows:
            name = plain_text(clients.get(row, "Client"))
            company = plain_text(clients.get(row, "PSACompanyID")).removesuffix(".0")
            if not name or not company or (args.client and name.lower() != args.client.strip().lower()):
                continue
            agreement = plain_text(clients.get(row, "PSAAgreementID")).removesuffix(".0") \
                if clients.col("PSAAgreementID") is not None else ""
            tried += 1
            print(f"{name} (PSACompanyID {company}" + (f", PSAAgreementID {agreement}" if agreement else "") + "):")
            got = cw.check(company, agreement or None)[len(checks):]
            for x in got:
                print(f"  {x}")
            failed += any(x.ok is False for x in got)
        if not tried:
            raise PerseatError("no client has a PSACompanyID in Clients; type each client's ConnectWise company "
                               "RecID there")
    if failed:
        print(f"perseat: {failed} of {tried} client{'s' * (tried != 1)} cannot be synced or pushed yet; see FAILED "
              "above.", file=sys.stderr)
    return 1 if failed else 0


def cmd_push(args: argparse.Namespace) -> int:
    """Write each client's billed seats of a recorded period into the PSA of Settings.PSA (dry run unless --apply)."""
    from perseat_addin.tasks import push

    wb = _open(args, "push --apply" if args.apply else None)
    psa = push.psa_of(wb)
    period = push.recorded_period(wb, args.period)
    todo, skipped = push.targets(wb, period, args.client, by_company=psa == "halopsa")
    with _live_source(psa) as writer:
        items = push.read_current(writer, todo)
        written = push.write(wb, writer, items) if args.apply else 0
    failed = [i for i in items if i.error is not None]
    if args.json:
        print(json.dumps({"psa": psa, "period": str(period), "applied": bool(args.apply), "writes": written,
                          "skipped": skipped,
                          "items": [{"client": i.target.client, "plan": i.target.plan, "seats": i.target.seats,
                                     "record": i.record.id if i.record else None,
                                     "old": i.record.quantity if i.record else None,
                                     "new": i.written.quantity if i.written else None,
                                     "error": i.error} for i in items]}, indent=2, ensure_ascii=False))
        return 1 if failed else 0
    label = writer.label
    print(f"Billed seats of {period} → {label}:")
    for i in items:
        if i.error is None:
            print(f"  {i}")
    for text in skipped:
        print(f"  left out: {text}")
    for i in failed:
        print(f"perseat: {i}; nothing was written for it.", file=sys.stderr)
    pending = [i for i in items if i.changes or i.written is not None]
    if args.apply:
        print(f"Wrote {written} quantit{'y' if written == 1 else 'ies'} to {label}, each read back; {written} "
              f"ChangeLog row{'s' * (written != 1)} added to {args.workbook}." if written else
              f"Nothing to write: {label} already holds the billed seats.")
    else:
        print(f"Dry run: {len(pending)} quantit{'y' if len(pending) == 1 else 'ies'} would change. Add --apply to "
              "write them." if pending else f"Nothing to write: {label} already holds the billed seats.")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Usage and pricing report: report.xlsx (with charts) and a summary, or --json."""
    import shutil

    from perseat_addin.tasks.filebook import open_ahead

    # the workbook is checked on another thread while the engine is imported here
    opening = open_ahead(args.workbook)
    from perseat_addin.engine.report import TREND_MONTHS, build_report
    from perseat_addin.outputs.publish import check_destination, prepare_folder
    from perseat_addin.outputs.report_sheet import report_dict, write_report
    from perseat_addin.tasks.port import validated

    wb = opening()
    args.opened.append(wb)
    book, period = validated(wb, args.period)
    wb.release()  # the validated book is all the report needs: the raw cells go
    big = len(book.roster) + len(book.usage) >= 20_000
    with _progress(TREND_MONTHS, "Reporting", not args.json and big, unit="month", min_total=1) as tick:
        rep = build_report(book, period, progress=tick)
    out = Path(args.out) if args.out else _default_out(args.workbook, book.settings.output_folder, period)
    created = prepare_folder(out)
    try:
        path = write_report(rep, check_destination(out, "report.xlsx", [Path(args.workbook)]), book.settings.msp_name)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if args.json:
        print(json.dumps({**report_dict(rep), "file": str(path)}, indent=2, ensure_ascii=False))
        return 0
    print(f"Usage and pricing, {period.label()} ({len(rep.clients)} active clients; medians: "
          f"{rep.medians['hours_per_user']} hours/user, {rep.medians['revenue_per_user']} revenue/user)")
    for c in rep.clients:
        u = c.period
        hpu = "-" if u.hours_per_user is None else f"{float(u.hours_per_user):.2f}"
        rpu = "-" if u.revenue_per_user is None else f"{float(u.revenue_per_user):,.2f}"
        rec = c.recommendation.label if c.recommendation is not None else ""
        flag = "  OUTLIER" if c.outlier else ""
        print(f"  {c.client:<28.28} {hpu:>6} h/user {rpu:>10}/user  → {rec}{flag}")
    for note in rep.notes:
        print(f"note: {note}")
    for cliff in rep.cliffs:
        print(f"  cliff: {cliff.reason}")
    print(f"Wrote {path}")
    return 0


def _count(text: str) -> int:
    """A --users/--devices value: a whole number, 0 or more (a usage error otherwise)."""
    try:
        n = int(text.replace(",", "").strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 12)") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative; give 0 or more")
    return n


def cmd_quote(args: argparse.Namespace) -> int:
    """A prospect's monthly and annual cost for N users on one plan or every plan: a PDF (and .xlsx), or --json."""
    import datetime as dt

    from perseat_addin.outputs.documents import quote_dict
    from perseat_addin.tasks.quote import make_quote, quote_folder, write_quote

    book, q = make_quote(_open(args), args.users, args.devices, args.plan, args.prospect or "")
    today = dt.date.today()
    out = Path(args.out) if args.out else quote_folder(str(Path(args.workbook).resolve()),
                                                       book.settings.output_folder)
    files = write_quote(book, q, out, today)
    if args.json:
        print(json.dumps({"ok": True, **quote_dict(q), "files": [str(f) for f in files]}, indent=2,
                         ensure_ascii=False))
        return 0
    from perseat_addin.money import fmt_money

    devices = f" and {q.devices} shared devices" if q.devices else ""
    print(f"Quote{' for ' + q.prospect if q.prospect else ''}: {q.users} users{devices}, in {q.currency}")
    for r in q.rows:
        mark = "*" if r.plan.name == q.cheapest and len(q.rows) > 1 else " "
        tax = f"  tax {fmt_money(r.tax_cents):>10}" if q.tax_ppm else ""
        print(f" {mark} {r.plan.name:<20.20} {fmt_money(r.monthly_cents):>12}/month{tax}"
              f"  {fmt_money(r.annual_with_tax_cents):>13}/year  {r.note}")
    for f in files:
        print(f"Wrote {f}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Schedule A (billable users and prices) for a client or the price list: a PDF and an .xlsx."""
    from perseat_addin.tasks.schedule import make_schedules, schedule_folder, write_schedules

    book, schedules = make_schedules(_open(args), args.client)
    out = Path(args.out) if args.out else schedule_folder(str(Path(args.workbook).resolve()),
                                                          book.settings.output_folder)
    for f in write_schedules(schedules, out):
        print(f"Wrote {f}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """E-mail the period's recorded documents: .eml drafts in a folder, or through SMTP with --smtp."""
    import datetime as dt
    import tempfile
    from dataclasses import replace

    from perseat_addin.outputs.mail import eml_name
    from perseat_addin.outputs.pdf import invoice_pdfs
    from perseat_addin.tasks import send

    if args.again and not args.smtp:
        return _usage_error("--again goes with --smtp (drafting .eml files again needs no confirmation)")
    if args.out and args.smtp:
        return _usage_error("--out names the folder for .eml drafts; with --smtp nothing is written there: leave "
                            "out one of them")
    config = None
    if args.smtp:
        from perseat_addin.outputs.smtp import smtp_config

        config = smtp_config(os.environ)  # a missing variable stops here, before the workbook is read
    wb = _open(args, "send")
    plan = send.plan_send(wb, args.period)
    todo = list(plan.mails)
    if not todo:
        print(f"{plan.period.label()} has no recorded documents to e-mail.")
        return 0
    if args.smtp and not args.again:
        todo = _confirm_again(todo, send.earlier_sends(wb, todo))
        if not todo:
            print("Nothing was sent.")
            return 0
    stamp = dt.datetime.now().replace(microsecond=0)
    wb.release()
    with tempfile.TemporaryDirectory(prefix="perseat-send-") as tmp:
        names = invoice_pdfs(replace(plan.run, invoices=[m.doc for m in todo]), Path(tmp))
        pdfs = {m.doc.number: Path(tmp) / n for m, n in zip(todo, names, strict=True)}
        msgs = send.messages(plan, todo, pdfs, draft=not args.smtp, when=stamp)
    if config is None:
        out = Path(args.out) if args.out else \
            _default_out(args.workbook, plan.book.settings.output_folder, plan.period) / send.MAIL_FOLDER
        send.write_drafts(todo, msgs, out, lambda: wb.write(send.log_edit(wb, todo, send.EML, stamp)),
                          [Path(args.workbook)], rollback=wb.rollback)
        print(f"{len(todo)} e-mail draft{'s' * (len(todo) != 1)} for {plan.period.label()} in {out}:")
        for m in todo:
            print(f"  {eml_name(m.doc)}  →  {m.to_text}")
        print(f"Open each .eml in your mail program (Outlook, Apple Mail, Thunderbird) and send it. Logged in "
              f"ChangeLog of {args.workbook}; the Invoices rows are not changed (mark them Sent yourself).")
        return 0
    from perseat_addin.outputs.smtp import send_all

    done: list[Mail] = []
    try:
        send_all(config, msgs, lambda i: done.append(todo[i]))
    except PerseatError as exc:
        wb.write(send.log_edit(wb, done, send.SMTP, stamp))  # what the server accepted is logged
        if not done:
            raise PerseatError(f"{exc}; nothing was sent") from None
        left = todo[len(done)]
        raise PerseatError(f"{exc}. {len(done)} of {len(todo)} e-mails were sent before that "
                           f"({', '.join(m.doc.number for m in done)}) and are logged in ChangeLog; {left.doc.number} "
                           "and the rest were not sent: run perseat send --smtp again on a terminal and answer n "
                           "for those already sent") from None
    wb.write(send.log_edit(wb, done, send.SMTP, stamp))
    print(f"Sent {len(done)} e-mail{'s' * (len(done) != 1)} for {plan.period.label()} through {config}:")
    for m in done:
        print(f"  {m.doc.number}  {m.doc.client.name}  →  {m.to_text}")
    print(f"Logged in ChangeLog of {args.workbook}; the Invoices rows are not changed (mark them Sent yourself).")
    return 0


def _confirm_again(todo: list[Mail], earlier: dict[str, list[Earlier]]) -> list[Mail]:
    """The mails to send: on a terminal, each already e-mailed one only after a y; elsewhere none refused."""
    if not earlier:
        return todo
    if not sys.stdin.isatty():
        said = "; ".join(str(e[-1]) for e in earlier.values())
        raise PerseatError(f"{said}. Nothing was sent: add --again to send them again")
    out = []
    for m in todo:
        before = earlier.get(m.doc.number.lower())
        if before:
            try:
                answer = input(f"{before[-1]}; send again? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                continue
        out.append(m)
    return out


def cmd_template(args: argparse.Namespace) -> int:
    """Write the sample workbook (or a blank one); never over an existing file unless --force."""
    from perseat_addin.excel.template import build

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} already exists; nothing was written. Add --force to replace it, or choose another "
              "name with --out", file=sys.stderr)
        return 1
    if out.is_dir():
        print(f"error: {out} is a folder; give a file name such as {out / 'billing.xlsm'}", file=sys.stderr)
        return 1
    path = build(out, blank=args.blank)
    print(f"Wrote {path}" + (" (blank: no sample clients, roster, devices, add-ons or usage)" if args.blank else ""))
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
    inv.add_argument("--early", action="store_true",
                     help="with --finalize: finalize a period that has not ended yet")
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
                          "usage: connectwise-time, autotask-time, autotask-tickets, halopsa-tickets, halopsa-time; "
                          "or the Source name of a column mapping saved in the workbook's Mappings table")
    imp.add_argument("file")
    imp.add_argument("--workbook", required=True)
    imp.add_argument("--client", help="the client (as in Clients) the export belongs to (default: the "
                     "export's company column, or its users' e-mail domains on the Roster)")
    imp.add_argument("--effective", help="date the changes take effect (default: today)")
    imp.add_argument("--apply", action="store_true", help="write the changes (default: dry run)")
    imp.add_argument("--force", action="store_true",
                     help="apply an import that ends more than half of the client's users, or whose e-mail "
                          "domains match none of the client's Roster")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_import)
    syn = sub.add_parser("sync", help="sync each client's users from a live source (graph: Microsoft 365; "
                         "connectwise, autotask, halopsa: the PSA's contacts, and time into Usage) into its Roster")
    syn.add_argument("source", metavar="SOURCE", help="the live source: graph, connectwise, autotask, halopsa")
    syn.add_argument("--workbook", required=True)
    who = syn.add_mutually_exclusive_group()
    who.add_argument("--client", help="the client (as in Clients) to sync")
    who.add_argument("--all", action="store_true",
                     help="every active client with a TenantID (graph) or PSACompanyID (a PSA), each on its own")
    syn.add_argument("--effective", help="date the changes take effect (default: today)")
    syn.add_argument("--period", help="a PSA's time entries of this month YYYY-MM go to Usage (default: Settings "
                     "BillingPeriod)")
    syn.add_argument("--apply", action="store_true", help="write the changes (default: dry run)")
    syn.add_argument("--force", action="store_true",
                     help="apply a sync that ends more than half of a client's users, or whose e-mail domains match "
                          "none of the client's Roster")
    syn.add_argument("--json", action="store_true")
    syn.set_defaults(func=cmd_sync)
    con = sub.add_parser("connect", help="test a live source's credentials and permissions, tenant by tenant")
    con.add_argument("source", metavar="SOURCE", help="the live source: graph, connectwise, autotask, halopsa")
    con.add_argument("--workbook", help="test the record of every client with a TenantID (graph) or PSACompanyID "
                     "(a PSA; and PSAAgreementID for connectwise) in this workbook")
    con.add_argument("--client", help="with --workbook: only this client")
    con.add_argument("--tenant", help="test this tenant id or domain, or PSA company id (no workbook needed)")
    con.set_defaults(func=cmd_connect)
    pus = sub.add_parser("push", help="write each client's billed seats of a recorded period into the PSA named in "
                         "Settings (connectwise: the agreement addition's quantity)")
    pus.add_argument("--workbook", required=True)
    pus.add_argument("--period", help="the recorded month YYYY-MM (default: the latest recorded)")
    pus.add_argument("--client", help="only this client (as in Clients)")
    pus.add_argument("--apply", action="store_true", help="write the quantities (default: dry run)")
    pus.add_argument("--json", action="store_true")
    pus.set_defaults(func=cmd_push)
    rep = sub.add_parser("report", help="usage and pricing report: report.xlsx with charts")
    rep.add_argument("workbook")
    rep.add_argument("--period", help="billing month YYYY-MM (default: Settings BillingPeriod)")
    rep.add_argument("--out", help="output folder (default: OutputFolder/PERIOD beside the workbook)")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)
    cr = sub.add_parser("credit", help="issue a credit note against a recorded invoice (recorded at once)")
    cr.add_argument("workbook")
    cr.add_argument("invoice", metavar="INVOICENO", help="the recorded invoice to credit, e.g. HV-1003")
    what = cr.add_mutually_exclusive_group()
    what.add_argument("--amount", help="credit this amount before tax (default: the whole invoice)")
    what.add_argument("--line", type=int, nargs="+", action="extend", metavar="N",
                      help="credit these lines (the Line numbers in InvoiceLines), with their share of discount "
                           "and tax")
    cr.add_argument("--reason", required=True, help="why: printed on the credit note")
    cr.add_argument("--out", help="output folder (default: OutputFolder/PERIOD/<credit note> beside the workbook)")
    cr.add_argument("--pdf", action="store_true", help="also write the credit note's PDF (needs LibreOffice)")
    cr.add_argument("--json", action="store_true", help="print a machine-readable summary")
    cr.set_defaults(func=cmd_credit)
    quo = sub.add_parser("quote", help="a prospect's monthly and annual cost for N users on one plan or every plan "
                         "(PDF, or --json)")
    quo.add_argument("workbook")
    quo.add_argument("--users", type=_count, required=True, metavar="N", help="billable users to quote")
    quo.add_argument("--plan", help="only this plan (default: every plan side by side)")
    quo.add_argument("--devices", type=_count, default=0, metavar="N", help="shared devices (default 0)")
    quo.add_argument("--prospect", help="the prospect's name, printed on the quote")
    quo.add_argument("--out", help="output folder (default: OutputFolder/quotes beside the workbook)")
    quo.add_argument("--json", action="store_true", help="print the figures as JSON")
    quo.set_defaults(func=cmd_quote)
    sch = sub.add_parser("schedule", help="Schedule A of the contract: who is a billable user and the prices "
                         "(PDF and .xlsx)")
    sch.add_argument("workbook")
    sch.add_argument("--client", help="the client (as in Clients); default: the whole price list")
    sch.add_argument("--out", help="output folder (default: OutputFolder/contracts beside the workbook)")
    sch.set_defaults(func=cmd_schedule)
    snd = sub.add_parser("send", help="e-mail each recorded invoice of a period to its client's BillingEmail with "
                         "its PDF: .eml drafts, or through an SMTP server with --smtp",
                         description="One e-mail per recorded document (Final, Sent, Paid…; never a Draft) of the "
                         "period to the client's BillingEmail, from MSPName <MSPEmail>, with Subject and body from "
                         "EmailSubject and EmailBody and the document's PDF attached (made with LibreOffice). Each "
                         "is logged in ChangeLog; the Invoices rows are not changed. The period defaults to the "
                         "latest one with recorded invoices: once a period is finalized, BillingPeriod has moved "
                         "on to the next month. --smtp reads the server from PERSEAT_SMTP_HOST, PERSEAT_SMTP_PORT "
                         "(587), PERSEAT_SMTP_USER, PERSEAT_SMTP_PASSWORD (or the OS keyring), PERSEAT_SMTP_SSL=1 "
                         "(implicit TLS, port 465) and PERSEAT_SMTP_CAFILE (a private CA); the server must offer "
                         "STARTTLS.")
    snd.add_argument("workbook")
    snd.add_argument("--period", help="the recorded month YYYY-MM (default: the latest recorded one)")
    snd.add_argument("--out", help="folder for the .eml drafts (default: OutputFolder/PERIOD/mail beside the "
                     "workbook)")
    snd.add_argument("--smtp", action="store_true", help="send through the SMTP server named by the PERSEAT_SMTP_* "
                     "environment variables instead of writing drafts")
    snd.add_argument("--again", action="store_true", help="with --smtp: also send the invoices ChangeLog shows "
                     "as already e-mailed, without asking")
    snd.set_defaults(func=cmd_send)
    tpl = sub.add_parser("template", help="write the sample workbook_template.xlsm")
    tpl.add_argument("--out", default="workbook_template.xlsm")
    tpl.add_argument("--blank", action="store_true",
                     help="leave out the sample clients, roster, devices, add-ons and usage")
    tpl.add_argument("--force", action="store_true", help="replace the file if it exists")
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


def _open(args: argparse.Namespace, writing: str | None = None) -> FileBook:
    """The command's workbook; ``writing`` names the change when the command will write it (the workbook's
    lock is then held from before reading until the command ends)."""
    from perseat_addin.tasks.filebook import FileBook

    wb = FileBook(args.workbook, writing)
    args.opened.append(wb)
    return wb


def _missing(args: argparse.Namespace) -> str | None:
    """The first input file named on the command line that does not exist (a usage error)."""
    for flag, value in (("WORKBOOK", getattr(args, "workbook", None)), ("FILE", getattr(args, "file", None))):
        if value is not None and args.command != "template" and not os.path.lexists(value):
            return f"{flag} {value}: no such file"
    return None


def _os_failure(args: argparse.Namespace, exc: OSError) -> int:
    """An operating-system failure (disk full, permission, a folder in the way) in words, naming the file."""
    name = exc.filename or getattr(args, "out", None) or getattr(args, "workbook", None)
    where = f"{name}: " if name else ""
    print(f"perseat: {where}{os_error_text(exc)}; nothing more was written.", file=sys.stderr)
    return 1


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "period", None):
        _period_arg(args.period)
    as_json = getattr(args, "json", False)
    missing = _missing(args)
    if missing:
        if as_json:
            print(json.dumps({"ok": False, "error": missing}, indent=2))
        return _usage_error(missing)
    args.opened = []
    try:
        return int(args.func(args))
    except UsageError as exc:
        return _usage_error(str(exc))
    except InputProblems as exc:
        head = str(exc).splitlines()[0]
        export = getattr(args, "file", None)
        in_export = export is not None and any(p.sheet in (export, Path(export).name) for p in exc.problems)
        if in_export:
            head = head.replace("in the workbook", f"in {export}")
        elif getattr(args, "workbook", None):
            head = head.replace("in the workbook", f"in the workbook {args.workbook}")
        _print_problems(exc.problems, as_json, head)
        return 1
    except (WorkbookError, FinalizedError, PerseatError) as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc)}, indent=2))
        else:
            print(f"perseat: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except OSError as exc:
        return _os_failure(args, exc)
    except MemoryError:
        print("perseat: out of memory — the workbook or export is larger than this computer can hold; nothing "
              "was written. Split it, or run on a machine with more memory.", file=sys.stderr)
        return 1
    except Exception as exc:  # a file failure wrapped by a library (XlsxWriter's FileCreateError), or a fault
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
        if inner is not None:
            return _os_failure(args, inner)
        if os.environ.get("PERSEAT_DEBUG"):
            raise
        print(f"perseat: unexpected error ({type(exc).__name__}: {exc}); nothing more was written. Please report "
              "it with the command you ran (PERSEAT_DEBUG=1 shows where it happened).", file=sys.stderr)
        return 1
    finally:
        for wb in args.opened:
            wb.close()


if __name__ == "__main__":
    raise SystemExit(main())
