"""Saved column mappings (the workbook's Mappings table): an export no built-in importer knows, mapped field by
field into Roster or Usage, and the problems of the table's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perseat_addin.cells import cell_text
from perseat_addin.errors import Problem
from perseat_addin.imports.exportfile import norm
from perseat_addin.imports.names import SOURCES
from perseat_addin.model import ImportKind
from perseat_addin.tables import RawTable

MAPPED_FIELDS: dict[str, str] = {
    "UserID": "user_id", "Name": "name", "FirstName": "first", "LastName": "last", "Email": "email",
    "Type": "type", "Status": "status", "Licensed": "licenses", "Blocked": "blocked", "Created": "created",
    "Company": "company",
}
"""Roster fields a saved column mapping (the workbook's Mappings table) can fill, and what they mean."""

USAGE_FIELDS: dict[str, str] = {
    "Client": "company", "UserID": "user", "Date": "date", "Tickets": "tickets", "Hours": "hours",
    "Ticket": "ticket", "Ref": "ref", "Billable": "billable",
}
"""Usage fields a saved mapping (Import = Usage) can fill: Client and Date are required; Billable takes Yes/No or
a PSA's words (Billable, Do Not Bill, No Charge)."""

FIELDS_BY_KIND = {ImportKind.ROSTER: MAPPED_FIELDS, ImportKind.USAGE: USAGE_FIELDS}
REQUIRED_BY_KIND = {ImportKind.ROSTER: ("UserID",), ImportKind.USAGE: ("Client", "Date")}


@dataclass(frozen=True)
class Mapping:
    """A saved column mapping for an export no built-in importer knows: field → the export's header."""

    name: str  # as the user calls the source ("HR system"); also the Roster Source
    columns: dict[str, str]  # MAPPED_FIELDS key ("UserID") → header in the export
    kind: ImportKind = ImportKind.ROSTER

    def aliases(self) -> dict[str, tuple[str, ...]]:
        fields = FIELDS_BY_KIND[self.kind]
        return {fields[f]: (h,) for f, h in self.columns.items()}


def saved_mappings(raw: RawTable | None,
                   kind: ImportKind = ImportKind.ROSTER) -> tuple[dict[str, Mapping], list[Problem]]:
    """The column mappings of the workbook's Mappings table (Source, Import, Field, Column) for ``kind``
    imports, by lower-case source name, and the problems found in the table's rows."""
    out: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    editable: dict[str, int] = {}
    problems: list[Problem] = []
    if raw is None:
        return {}, []
    cols = {norm(h): j for j, h in enumerate(raw.headers)}
    missing = [h for h in ("Source", "Field", "Column") if norm(h) not in cols]
    if missing:
        return {}, [Problem(raw.sheet, raw.first_row - 1, None,
                            f"the Mappings table lacks column(s) {', '.join(missing)}",
                            "give it the headers Source, Import, Field, Column (see the template)")]

    def cell(row: Sequence[Any], h: str) -> str:
        j = cols.get(norm(h))
        return cell_text(row[j]) if j is not None and j < len(row) else ""

    fields = {norm(f): f for f in FIELDS_BY_KIND[kind]}
    required = REQUIRED_BY_KIND[kind]
    for i, row in enumerate(raw.rows):
        excel_row = raw.first_row + i
        source, field_name, column = cell(row, "Source"), cell(row, "Field"), cell(row, "Column")
        if not (source or field_name or column):
            continue
        if (cell(row, "Import") or ImportKind.ROSTER.value).lower() != kind.value.lower():
            continue

        def where(h: str) -> str:
            j = cols.get(norm(h))
            return f"{h} ({raw.column_letter(j)})" if j is not None else h

        if not source:
            problems.append(Problem(raw.sheet, excel_row, where("Source"), "Source is blank",
                                    "name the export this mapping reads, e.g. HR system"))
            continue
        if source.lower() in SOURCES:
            problems.append(Problem(raw.sheet, excel_row, where("Source"),
                                    f"{source!r} is a built-in importer and needs no mapping",
                                    "give the mapping another name, or delete the row"))
            continue
        f = fields.get(norm(field_name))
        if f is None:
            problems.append(Problem(raw.sheet, excel_row, where("Field"),
                                    f"{field_name!r} is not a field a {kind.value.lower()} mapping can fill",
                                    f"use one of: {', '.join(FIELDS_BY_KIND[kind])}"))
            continue
        if not column:
            problems.append(Problem(raw.sheet, excel_row, where("Column"), "Column is blank",
                                    "type the export's column header that holds " + f))
            continue
        key = source.lower()
        names.setdefault(key, source)
        editable.setdefault(key, excel_row)
        mine = out.setdefault(key, {})
        if f in mine:
            problems.append(Problem(raw.sheet, excel_row, where("Field"),
                                    f"{source} maps {f} twice ({mine[f]!r} and {column!r})",
                                    "keep one row per field"))
            continue
        mine[f] = column
    for key, cols_ in out.items():
        for need in required:
            if need not in cols_:
                problems.append(Problem(raw.sheet, editable[key], _where_source(raw, cols),
                                        f"the {names[key]} mapping has no {need} row",
                                        f"add a row: Field {need}, Column = the export's column that holds it"))
    return {k: Mapping(names[k], v, kind) for k, v in out.items() if all(n in v for n in required)}, problems


def _where_source(raw: RawTable, cols: dict[str, int]) -> str:
    j = cols.get("source")
    return f"Source ({raw.column_letter(j)})" if j is not None else "Source"


def mapping_problems(raw: RawTable | None) -> list[Problem]:
    """Every problem in the Mappings table (roster and usage mappings)."""
    return [p for kind in ImportKind for p in saved_mappings(raw, kind)[1]]


__all__ = ["FIELDS_BY_KIND", "MAPPED_FIELDS", "REQUIRED_BY_KIND", "SOURCES", "USAGE_FIELDS", "Mapping",
           "mapping_problems", "saved_mappings"]
