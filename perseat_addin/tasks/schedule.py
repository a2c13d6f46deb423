"""Schedule A of the contract (SPEC §6, §7, §11): ``perseat schedule`` and the ribbon's *Price sheet & contract
schedule*."""

from __future__ import annotations

import shutil
from pathlib import Path

from perseat_addin.engine.schedule import Schedule, build_schedule
from perseat_addin.errors import PerseatError
from perseat_addin.model import Book
from perseat_addin.outputs.documents import SCHEDULE_SHEET, safe_stem, schedule_layout, write_document
from perseat_addin.outputs.publish import prepare_folder, workbook_folder
from perseat_addin.tasks.livebook import PREFIX, ExcelBook, LiveBook, Outcome
from perseat_addin.tasks.port import BookPort, validated


def make_schedules(book: BookPort, client: str | None = None, every_client: bool = False) -> tuple[Book,
                                                                                              list[Schedule]]:
    """The workbook validated, and Schedule A for ``client``, or for the price list as a whole (and, with
    ``every_client``, one more for each active client)."""
    loaded, _ = validated(book)
    if client:
        return loaded, [build_schedule(loaded, client)]
    out = [build_schedule(loaded)]
    if every_client:
        out += [build_schedule(loaded, c.name) for c in loaded.clients if c.active]
    return loaded, out


def schedule_folder(workbook: str, output_folder: str) -> Path:
    """``OutputFolder/contracts`` beside the workbook (OutputFolder may be a full path)."""
    f = Path(output_folder or "invoices").expanduser()
    return (f if f.is_absolute() else workbook_folder(workbook) / f) / "contracts"


def schedule_stem(s: Schedule) -> str:
    """``Schedule A - Acme Dental Group`` or ``Schedule A - Price list``."""
    return safe_stem(f"Schedule A - {s.client or 'Price list'}")


def write_schedules(schedules: list[Schedule], out_dir: Path, pdf: bool = True) -> list[Path]:
    """Each schedule's .xlsx (and PDF) in ``out_dir``; a folder made for them is removed again when they fail."""
    created = prepare_folder(out_dir)
    written: list[Path] = []
    try:
        for s in schedules:
            written += write_document(schedule_layout(s), out_dir, schedule_stem(s), s.title, pdf)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return written


def selected_client(live: LiveBook, port: ExcelBook) -> str | None:
    """The client of the selected Clients row, or None when the selection is elsewhere."""
    at = live.selected_row()
    t = port.rows("Clients")
    ref = live.table(t.name) if t is not None else None
    if at is None or t is None or ref is None or at[0].lower() != ref.sheet.lower():
        return None
    i = at[1] - ref.header_row - 1
    if not 0 <= i < len(t.rows):
        return None
    name = str(t.get(t.rows[i], "Client") or "").strip()
    return name or None


def price_sheet(live: LiveBook) -> Outcome:
    """Price sheet & contract schedule: Schedule A for the selected Clients row, or (asked) the price list and
    every active client; drawn on the Schedule A sheet and exported as PDFs to OutputFolder/contracts."""
    port = ExcelBook(live)
    client = selected_client(live, port)
    every = False
    if client is None:
        every = live.confirm("No client row is selected in the Clients table. Write Schedule A for the price list "
                             "and for every active client?", f"{PREFIX}: Price sheet & contract schedule")
        if not every:
            return Outcome("Select a client's row in the Clients table and press Price sheet & contract schedule "
                           "again, or answer Yes to write them all.", ok=False)
    live.status(f"{PREFIX}: reading the workbook…")
    book, schedules = make_schedules(port, client, every)
    out_dir = schedule_folder(live.fullname, book.settings.output_folder)
    prepare_folder(out_dir)
    names = []
    for s in schedules:
        live.status(f"{PREFIX}: Schedule A for {s.client or 'the price list'}…")
        live.put_sheet(schedule_layout(s, SCHEDULE_SHEET))
        target = out_dir / f"{schedule_stem(s)}.pdf"
        live.export_pdf([SCHEDULE_SHEET], target)
        if not target.is_file():
            raise PerseatError(f"Excel did not export {target.name}; check that {out_dir} can be written to")
        names.append(target.name)
    shown = schedules[-1].client or "the price list"
    return Outcome(f"Wrote {len(names)} Schedule A PDF{'s' if len(names) != 1 else ''} to {out_dir}: "
                   + ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
                   + f". The Schedule A sheet shows {shown}.")


__all__ = ["make_schedules", "price_sheet", "schedule_folder", "schedule_stem", "selected_client",
           "write_schedules"]
