"""Reading a package's tables cell by cell as stored (text undecoded, formulas as written), for tests."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from . import sml
from .package import Package, read_source
from .text import col_letters, parse_range


@dataclass(frozen=True)
class StoredCell:
    ref: str
    text: str | None  # stored text of a text cell (shared, inline or a formula's string result)
    value: str | None  # the <v> as written
    formula: str | None  # the formula, a shared formula's taken from its master; None without <f>


@dataclass(frozen=True)
class StoredTable:
    name: str
    sheet: str
    ref: str
    columns: list[str]
    calculated: dict[str, str]  # column name -> calculatedColumnFormula
    rows: list[dict[str, StoredCell | None]]  # data rows (header and totals row left out)


def read_tables(src: str | Path | bytes) -> dict[str, StoredTable]:
    """Every table of the workbook by displayName; raises AssertionError if the package is unreadable."""
    data, name = read_source(src)
    problems: list[str] = []
    pkg = Package(data, name, lambda part, msg: problems.append(f"{part}: {msg}"))
    wb = sml.load_workbook(pkg)
    assert wb is not None, problems
    out: dict[str, StoredTable] = {}
    for sheet in wb.sheets:
        sml.read_cells(wb, sheet)
        masters = {c.f.get("si"): c.f.text for c in sheet.cells.values()
                   if c.f is not None and c.f.get("t") == "shared" and c.f.get("ref")}
        for rel in pkg.rels(sheet.part):
            if rel.type != sml.RT + "table" or rel.part is None:
                continue
            part = pkg.find(rel.part)
            root = pkg.processed(part) if part else None
            if root is None:
                continue
            box = parse_range(root.get("ref") or "")
            assert box is not None, root.get("ref")
            r0, c0, r1, _ = box
            header = int(root.get("headerRowCount") or 1)
            totals = int(root.get("totalsRowCount") or 0)
            cols = root.findall(f"{sml.M}tableColumns/{sml.M}tableColumn")
            names = [c.get("name") or "" for c in cols]
            calculated = {c.get("name") or "": c.findtext(f"{sml.M}calculatedColumnFormula") or "" for c in cols
                          if c.find(f"{sml.M}calculatedColumnFormula") is not None}
            rows = []
            for r in range(r0 + header, r1 - totals + 1):
                row: dict[str, StoredCell | None] = {}
                for i, col_name in enumerate(names):
                    cell = sheet.cells.get((r, c0 + i))
                    if cell is None:
                        row[col_name] = None
                        continue
                    f = cell.f
                    formula = None
                    if f is not None:
                        formula = masters.get(f.get("si")) if f.get("t") == "shared" and not f.get("ref") else f.text
                        formula = formula or ""
                    row[col_name] = StoredCell(f"{col_letters(c0 + i)}{r}", sml.cell_text(wb, cell), cell.v, formula)
                rows.append(row)
            display = root.get("displayName") or ""
            out[display] = StoredTable(display, sheet.name, root.get("ref") or "", names, calculated, rows)
    return out


def part_names(src: str | Path | bytes) -> set[str]:
    data, _ = read_source(src)
    return set(zipfile.ZipFile(io.BytesIO(data)).namelist())


def xml_part(src: str | Path | bytes, part: str) -> etree._Element:
    data, _ = read_source(src)
    return etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read(part))
