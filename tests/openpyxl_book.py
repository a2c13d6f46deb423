"""Open and save a workbook with openpyxl, keeping its VBA project and ribbon (tests only)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook as OpenpyxlWorkbook

from perseat_addin.errors import PerseatError
from perseat_addin.workbook.package import MACRO_MAIN, atomic_write, macro_enable


def open_workbook(data: bytes, path: str | Path) -> OpenpyxlWorkbook:
    """Load a workbook for rewriting, keeping its VBA project when it has one."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        content_types = z.read("[Content_Types].xml")
    keep_vba = Path(path).suffix.lower() in (".xlsm", ".xltm") or MACRO_MAIN.encode() in content_types
    return load_workbook(io.BytesIO(data), keep_vba=keep_vba, keep_links=True, rich_text=True)


def save_workbook(wb: OpenpyxlWorkbook, path: str | Path, original: bytes) -> None:
    """Save ``wb`` over ``path`` atomically, keeping what ``original`` had: the macro-enabled content
    type, the VBA project and the ribbon (refuses to save if either would be dropped)."""
    path = Path(path)
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        content_types = z.read("[Content_Types].xml")
        parts_before = set(z.namelist())
    buf = io.BytesIO()
    try:
        wb.save(buf)
    finally:
        close_workbook(wb)
    atomic_write(path, _restore_package(buf.getvalue(), content_types, parts_before))


def close_workbook(wb: OpenpyxlWorkbook) -> None:
    """Release the in-memory copy openpyxl keeps of a workbook's VBA parts (keep_vba)."""
    archive = getattr(wb, "vba_archive", None)
    if archive is not None:
        archive.close()


def _restore_package(data: bytes, content_types: bytes, parts_before: set[str]) -> bytes:
    """Keep the macro-enabled content type and check the ribbon and VBA parts survived."""
    macro = MACRO_MAIN.encode() in content_types
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        names = set(src.namelist())
        types_now = src.read("[Content_Types].xml")
    for needed in ("xl/vbaProject.bin", "customUI/customUI.xml"):
        if needed in parts_before and needed not in names:
            raise PerseatError(f"saving would drop {needed} from the workbook; nothing was written")
    if not macro:
        return data
    if MACRO_MAIN.encode() in types_now:
        return data
    return macro_enable(data)


def set_settings(path: str | Path, values: dict[str, object]) -> None:
    """Type ``values`` into the Value column of the Settings rows they name, as a user would, and save."""
    original = Path(path).read_bytes()
    wb = open_workbook(original, path)
    ws = wb["Settings"]
    rows = {str(r[0].value).strip().lower(): r[1] for r in ws.iter_rows(min_row=2, max_col=2) if r[0].value}
    for name, value in values.items():
        rows[name.lower()].value = value
    save_workbook(wb, path, original)
