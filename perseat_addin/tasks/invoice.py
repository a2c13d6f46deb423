"""Invoicing (SPEC §5–7): price the period, record the invoices in the workbook's ledger tables, publish.

One task for ``perseat invoice [--finalize]`` and the ribbon's *Generate invoices* and
*Finalize period*, over the :class:`~perseat_addin.tasks.port.BookPort`: :func:`~perseat_addin.tasks.port.validated`
validates, :func:`ledger_edits` plans the Invoices/InvoiceLines (and, when
final, Settings) edits by the ledger rules of :mod:`perseat_addin.engine.ledger`, and the
port writes them. The ribbon adds the invoice sheets and Excel's PDFs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from perseat_addin.engine.corrections import (
    BILLED,
    BILLED_COLUMNS,
    Correction,
    billed_by,
    billed_row,
    pending,
    read_billed,
)
from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.engine.ledger import (
    advanced_settings,
    draft_differences,
    finalize_edit,
    period_documents,
    record_edits,
    recorded_documents,
    recorded_periods,
    replace_rows,
    replaced_drafts,
    settings_edit,
)
from perseat_addin.errors import PerseatError
from perseat_addin.model import BillingTiming, Book, Invoice, Line, Period
from perseat_addin.money import fmt_money
from perseat_addin.outputs.layout import InvoiceDocuments, invoice_sheet_names, needs_user_list, user_list_name
from perseat_addin.outputs.logo import read_logo
from perseat_addin.outputs.publish import check_destination, file_ref, output_dir, workbook_folder, write_outputs
from perseat_addin.tables import RawTable, TableEdit, is_blank
from perseat_addin.tasks.livebook import (
    MAX_LINES,
    PREFIX,
    WRITTEN_TABLES,
    ExcelBook,
    LiveBook,
    LiveTables,
    Outcome,
    Progress,
    capped,
    load_live,
    warnings_text,
)
from perseat_addin.tasks.port import BookPort, require


def ledger_edits(book: BookPort, invoices: Sequence[Invoice], period: Period, *, final: bool,
                 files: dict[str, str] | None = None) -> list[TableEdit]:
    """Replace ``period``'s Draft invoices with ``invoices``; with ``final`` record them Final and
    advance NextInvoiceNumber and BillingPeriod (Final rows are never rewritten)."""
    inv_t, line_t = (require(book, name, " to write to") for name in ("Invoices", "InvoiceLines"))
    edits = list(record_edits(inv_t, line_t, invoices, period, final=final, files=files))
    if final:
        settings_t = require(book, "Settings", " to write to")
        edits.append(settings_edit(settings_t, advanced_settings(settings_t, [i.number for i in invoices], period)))
    return edits


def recorded_run(book: BookPort, loaded: Book, period: Period) -> Run | None:
    """``period``'s recorded documents, exactly as recorded, as a run to publish again (SPEC §4
    "Re-export"); None when the period has none. Client details (address, e-mail) are today's."""
    inv_t = book.rows("Invoices")
    numbers = period_documents(inv_t, period) if inv_t is not None else []
    if inv_t is None or not numbers:
        return None
    lines_t = require(book, "InvoiceLines")
    docs = recorded_documents(inv_t, lines_t, numbers, {c.name.lower(): c for c in loaded.clients},
                              loaded.settings.currency)
    fresh = invoice_run(replace(loaded, invoices=pd.DataFrame()), period)  # users.csv: today's reasons
    billed = {d.client.name.lower() for d in docs}
    return replace(fresh, invoices=docs, skipped=[(c, r) for c, r in fresh.skipped if c.lower() not in billed])


def settled_through(loaded: Book, period: Period) -> dt.date:
    """The last day ``period``'s invoice bills as it happened: the period's last day in arrears, the
    previous period's last day in advance (its adjustment line)."""
    return period.last if loaded.settings.billing_timing is BillingTiming.ARREARS else period.prev().last


def finalize_refusal(book: BookPort, loaded: Book, period: Period) -> str | None:
    """Why ``period`` cannot be finalized at all (already finalized, or finalizing it would skip a month);
    None when it can."""
    inv_t = book.rows("Invoices")
    done = recorded_periods(inv_t) if inv_t is not None else []
    if str(period) in done:
        numbers = period_documents(inv_t, period) if inv_t is not None else []
        shown = f" ({numbers[0]} … {numbers[-1]})" if len(numbers) > 1 else f" ({numbers[0]})" if numbers else ""
        return (f"{period.label()} is already finalized{shown}; nothing was changed. Recorded documents are never "
                f"replaced: run perseat invoice --period {period} (without --finalize) to re-issue them")
    if done:
        due = Period.parse(done[-1]).next()
        if str(period) > str(due):
            return (f"finalizing {period.label()} would skip {due.label()} (the last finalized period is "
                    f"{done[-1]}); finalize {due} first")
    elif str(period) > str(loaded.settings.period):
        return (f"finalizing {period.label()} would skip BillingPeriod {loaded.settings.period} "
                f"({loaded.settings.period.label()}); finalize that first")
    return None


def early_text(loaded: Book, period: Period, today: dt.date) -> str | None:
    """When ``period`` has not yet been lived through (finalizing now would bill days that have not
    happened): what to tell the user; None when it has."""
    last = settled_through(loaded, period)
    if today > last:
        return None
    what = period.label() if last == period.last else f"{period.label()}'s adjustment for {last:%B}"
    return (f"{what} runs until {last:%b} {last.day}, {last.year}: finalizing before that day has passed would "
            "bill days that have not happened yet")


def priced(book: BookPort, loaded: Book, period: Period,
           progress: Callable[[int], None] | None = None) -> tuple[Run, list[Correction]]:
    """``period`` priced, with the corrections late roster changes owe to recorded periods on each client's
    invoice (SPEC §4); the corrections returned are those the run bills."""
    found = pending(loaded, read_billed(book.rows(BILLED)), period)
    by_client: dict[str, list[Line]] = {}
    for c in found:
        by_client.setdefault(c.client.lower(), []).append(c.line)
    run = invoice_run(loaded, period, progress=progress, corrections=by_client)
    billed = {i.client.name.lower() for i in run.invoices}
    return run, [c for c in found if c.client.lower() in billed]


def billed_edit(book: BookPort, run: Run, corrections: Sequence[Correction], *,
                create: bool = False) -> list[TableEdit]:
    """The Billed rows recording what ``run``'s invoices bill (and what each correction makes true). A
    workbook without the Billed table gets one when ``create`` (the file on disk); otherwise none is written
    (then late changes cannot be corrected: ``perseat check`` says so)."""
    t = existing = book.rows(BILLED)
    if t is None and create:
        t = RawTable(BILLED, BILLED, BILLED_COLUMNS, ((None,) * len(BILLED_COLUMNS),))
    if t is None:
        return []
    number = {i.client.name.lower(): i.number for i in run.invoices}
    rows = [*billed_by(run), *(replace(c.billed, invoice=number[c.client.lower()]) for c in corrections)]
    last = max((i for i, r in enumerate(t.rows) if not is_blank(r)), default=-1)
    if not rows:
        return []
    edit = replace_rows(t, (), [], [billed_row(t, b) for b in rows], last)
    return [replace(edit, create=BILLED_COLUMNS) if existing is None else edit]


def record(book: BookPort, invoices: Sequence[Invoice], period: Period, *, final: bool,
           files: dict[str, str] | None = None, billed: Sequence[TableEdit] = ()) -> None:
    """Write :func:`ledger_edits` and, when final, the Billed rows (all or nothing)."""
    book.write([*ledger_edits(book, invoices, period, final=final, files=files), *(billed if final else ())])


def _invoice_list(invoices: Sequence[Invoice]) -> list[str]:
    return [f"  {i.number}  {i.client.name}: {fmt_money(i.total_cents)}" for i in invoices]


def generate_invoices(live: LiveBook) -> Outcome:
    """Draft the BillingPeriod's invoices: Invoices/InvoiceLines rows (replacing the period's drafts,
    never Final rows), one invoice sheet per client, PDFs (Excel's export) and the accounting CSVs.

    Everything that can refuse (problems in the tables, a Final invoice in the way, a reused number,
    no room below a table, no folder to write to) does so before the workbook is touched."""
    live.status(f"{PREFIX}: reading the workbook…")
    port = ExcelBook(live)
    tables = port.tables
    book = load_live(live, tables)
    period = book.settings.period
    out_dir = output_dir(live.fullname, book.settings.output_folder, period)
    recorded = recorded_run(port, book, period)
    if recorded is not None:
        return _reissue(live, tables, recorded, out_dir)
    run, _ = priced(port, book, period, Progress(live, "pricing", sum(c.active for c in book.clients), "clients"))
    inv_t = require(port, "Invoices")
    pdfs = {i.number: f"{i.file_stem}.pdf" for i in run.invoices}
    old = [inv_t.rows[i] for i in replaced_drafts(inv_t, period)]
    edits = ledger_edits(port, run.invoices, period, final=False,
                         files={n: file_ref(out_dir / f, live.fullname) for n, f in pdfs.items()})
    names, stale = invoice_sheets(live, tables, run, [str(inv_t.get(r, "InvoiceNo") or "") for r in old])
    stale_pdfs = _stale_files(old, inv_t, live.fullname, out_dir, set(pdfs.values()))
    if not run.invoices:
        port.write(edits)
        for sheet in stale:
            live.delete_sheet(sheet)
        reasons = [f"  {c}: {r}" for c, r in run.skipped] or ["  no active clients"]
        removed = f"\n\nRemoved {len(old)} earlier draft(s) of this period." if old else ""
        return Outcome("\n".join([f"No invoices for {period.label()}:", *capped(reasons)]) + removed)
    port.check(edits)
    written = write_invoices(live, run, names, stale, pdfs, out_dir, lambda: port.write(edits))
    for f in stale_pdfs:
        f.unlink(missing_ok=True)
    n = len(run.invoices)
    lines = [f"{n} draft invoice{'s' if n != 1 else ''} for {period.label()}, total {book.settings.currency} "
             f"{fmt_money(run.total_cents)}:", *capped(_invoice_list(run.invoices))]
    if run.skipped:
        lines += ["", "Not invoiced: " + "; ".join(f"{c} ({r})" for c, r in run.skipped[:MAX_LINES]) + "."]
    first, last = names[run.invoices[0].number], names[run.invoices[-1].number]
    sheets = f"Invoice sheets {first} … {last} are" if n > 1 else f"Invoice sheet {first} is"
    lines += ["", f"{sheets} in this workbook; the PDFs and {', '.join(sorted(written))} are in {out_dir}.",
              "Review them, then press Finalize period."]
    return Outcome("\n".join(lines + warnings_text(book)))


def _reissue(live: LiveBook, tables: LiveTables, run: Run, out_dir: Path) -> Outcome:
    """A finalized BillingPeriod: its recorded documents drawn and exported again, exactly as recorded;
    the ledger tables are not touched."""
    names, stale = invoice_sheets(live, tables, run, [])
    pdfs = {i.number: f"{i.file_stem}.pdf" for i in run.invoices}
    written = write_invoices(live, run, names, stale, pdfs, out_dir, lambda: None)
    n = len(run.invoices)
    return Outcome("\n".join([
        f"{run.period.label()} is already finalized: its {n} recorded document{'s' if n != 1 else ''} were drawn "
        "again exactly as recorded (nothing in Invoices or InvoiceLines changed):",
        *capped(_invoice_list(run.invoices)), "",
        f"The PDFs and {', '.join(sorted(written))} are in {out_dir}. A late change is billed as a correction "
        "on the next invoice; a mistake is corrected with a credit note."]))


def invoice_sheets(live: LiveBook, tables: LiveTables, run: Run,
                    old_numbers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Sheet name of each new invoice (and of each user list page, keyed ``user_list_name(number)``), and the
    sheets of replaced drafts that no new invoice reuses."""
    data = {ref.sheet.lower() for ref in tables.refs.values()}
    names = invoice_sheet_names([i.number for i in run.invoices])
    lists = [user_list_name(i.number) for i in run.invoices if needs_user_list(i, run)]
    names |= invoice_sheet_names(lists, taken=names.values())
    clash = sorted(n for n in names.values() if n.lower() in data)
    if clash:
        raise PerseatError(f"invoice sheet {clash[0]} would replace a data sheet; change InvoicePrefix in Settings")
    new = {n.lower() for n in names.values()}
    existing = {s.lower(): s for s in live.sheet_names()}
    old = invoice_sheet_names(old_numbers)
    old_sheets = [*old.values(), *invoice_sheet_names([user_list_name(n) for n in old_numbers],
                                                       taken=old.values()).values()]
    stale = [existing[s.lower()] for s in old_sheets if s.lower() in existing and s.lower() not in new | data]
    return names, stale


def write_invoices(live: LiveBook, run: Run, names: dict[str, str], stale: Sequence[str], pdfs: dict[str, str],
                    out_dir: Path, record: Callable[[], None], credits_only: bool = False) -> dict[str, str]:
    """Invoice sheets, their PDFs (staged beside the outputs), the CSVs; ``record`` edits the tables once
    every file is complete, and only then are the files moved into place."""
    docs = InvoiceDocuments(run, read_logo(run.book))  # a bad LogoFile refuses before anything is drawn
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".perseat-pdf-", dir=out_dir))
    published = False
    sheets: dict[str, list[str]] = {}
    try:
        tick = Progress(live, "writing invoice sheets", len(run.invoices))
        for inv in run.invoices:
            layouts = docs.sheets(inv, names[inv.number], names.get(user_list_name(inv.number), ""))
            for layout in layouts:
                live.put_sheet(layout)
            sheets[inv.number] = [layout.name for layout in layouts]
            tick()
        for sheet in stale:
            live.delete_sheet(sheet)
        tick = Progress(live, "exporting PDFs", len(run.invoices))
        for inv in run.invoices:
            target = staging / pdfs[inv.number]
            live.export_pdf(sheets[inv.number], target)
            if not target.is_file():
                raise PerseatError(f"Excel did not export {target.name}; check that {out_dir} can be written to")
            tick()
        live.status(f"{PREFIX}: writing the accounting files…")
        inputs = [Path(live.fullname)]  # an output never replaces the workbook
        for name in pdfs.values():
            check_destination(out_dir, name, inputs)
        written = write_outputs(run, out_dir, before_publish=record, credits_only=credits_only, inputs=inputs)
        published = True
        for name in pdfs.values():
            os.replace(staging / name, out_dir / name)
        return written
    except BaseException:
        if created and not published:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stale_files(old: Sequence[Sequence[Any]], inv_t: RawTable, fullname: str, out_dir: Path,
                 keep: set[str]) -> list[Path]:
    """PDFs of replaced drafts that the new run does not rewrite (only inside the output folder)."""
    out = []
    for row in old:
        ref = str(inv_t.get(row, "File") or "").strip()
        if not ref.lower().endswith(".pdf"):
            continue
        path = Path(ref) if os.path.isabs(ref) else workbook_folder(fullname) / ref
        path = path.resolve()
        if path.parent == out_dir and path.name not in keep:
            out.append(path)
    return out


def finalize_period(live: LiveBook) -> Outcome:
    """Mark the BillingPeriod's drafts Final (if they are still what the workbook gives), advance
    NextInvoiceNumber and BillingPeriod, and save the workbook."""
    live.status(f"{PREFIX}: reading the workbook…")
    port = ExcelBook(live)
    book = load_live(live, port.tables)
    period = book.settings.period
    why = finalize_refusal(port, book, period)
    if why:
        return Outcome(f"Nothing was finalized: {why}.", ok=False)
    early = early_text(book, period, dt.date.today())
    if early and not live.confirm(f"{early}.\n\nFinalize {period.label()} now anyway?",
                                  f"{PREFIX}: Finalize period"):
        return Outcome(f"Nothing was finalized. Press Finalize period again after {period.label()} ends.",
                       ok=False)
    inv_t, lines_t, settings_t = (port.tables.rows[k] for k in WRITTEN_TABLES)
    assert inv_t is not None and lines_t is not None and settings_t is not None  # _load
    edit, numbers = finalize_edit(inv_t, period)
    if not numbers:
        finals = sum(1 for r in inv_t.rows if str(inv_t.get(r, "Status") or "").strip().lower() == "final"
                     and Period.key(inv_t.get(r, "Period")) == str(period))
        already = f" {finals} invoice(s) of {period.label()} are already Final." if finals else ""
        return Outcome(f"There are no draft invoices for {period.label()} to finalize.{already}\n\n"
                       "Press Generate invoices first, review the drafts, then Finalize period.", ok=False)
    run, corrections = priced(port, book, period,
                              Progress(live, "re-checking", sum(c.active for c in book.clients), "clients"))
    diffs = draft_differences(inv_t, lines_t, run.invoices, period)
    if diffs:
        return Outcome("\n".join([f"The drafts for {period.label()} no longer match the workbook; nothing was "
                                  "finalized.", "", *capped([f"• {d}" for d in diffs]), "",
                                  "Press Generate invoices to refresh the drafts, review them, then Finalize "
                                  "period."]), ok=False)
    changes = advanced_settings(settings_t, numbers, period)
    port.write([edit, settings_edit(settings_t, changes), *billed_edit(port, run, corrections, create=True)])
    live.status(f"{PREFIX}: saving the workbook…")
    try:
        live.save()
    except Exception as exc:  # Excel's own save failed (read-only copy, file locked, disk full)
        return Outcome(f"The invoices of {period.label()} are marked Final in the open workbook, but it could not "
                       f"be saved ({exc}). Save it now (File ▸ Save As if it is read-only) so the Final invoices "
                       "and the new BillingPeriod are kept.", ok=False)
    lines = [f"Finalized {len(numbers)} invoice{'s' if len(numbers) != 1 else ''} for {period.label()}: "
             f"{numbers[0]} … {numbers[-1]}." if len(numbers) > 1 else
             f"Finalized invoice {numbers[0]} for {period.label()}."]
    lines += [f"{k} is now {v}." for k, v in changes.items()]
    lines += ["The workbook was saved. Final invoices are never changed again: a correction is a new credit "
              "invoice."]
    return Outcome("\n".join(lines))
