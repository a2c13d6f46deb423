"""The ISO/IEC 29500 transitional schemas, found on disk and compiled once per process.

The schema files are not part of the repository (README.md says why and where they come from). They
are looked for, in order, in ``$OOXML_XSD_DIR``, in ``tests/ooxml/xsd/`` and in ``ooxml-xsd/`` of the
``shared`` folder beside the repository. Without them the validator still applies every other rule.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Schema file (relative to the schema folder) for each namespace whose parts are validated.
SCHEMA_FILES: dict[str, str] = {
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main": "sml.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/main": "dml-main.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/chart": "dml-chart.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/chartDrawing": "dml-chartDrawing.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing": "dml-spreadsheetDrawing.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/picture": "dml-picture.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/diagram": "dml-diagram.xsd",
    "http://schemas.openxmlformats.org/drawingml/2006/lockedCanvas": "dml-lockedCanvas.xsd",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships": "shared-relationshipReference.xsd",
    "http://schemas.openxmlformats.org/officeDocument/2006/sharedTypes": "shared-commonSimpleTypes.xsd",
    "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties":
        "shared-documentPropertiesExtended.xsd",
    "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties": "shared-documentPropertiesCustom.xsd",
    "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes": "shared-documentPropertiesVariantTypes.xsd",
    "http://schemas.openxmlformats.org/package/2006/content-types": "opc-xsd/opc-contentTypes.xsd",
    "http://schemas.openxmlformats.org/package/2006/relationships": "opc-xsd/opc-relationships.xsd",
}

UNDERSTOOD: frozenset[str] = frozenset(SCHEMA_FILES)
"""Namespaces a consumer of these schemas understands (for Markup Compatibility processing)."""


def schema_dir() -> Path | None:
    """The folder holding ``sml.xsd`` and the rest, or None when the schemas are not on this machine."""
    candidates = [os.environ.get("OOXML_XSD_DIR", ""), str(HERE / "xsd"), str(REPO.parent / "shared" / "ooxml-xsd")]
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in SCHEMA_FILES.values()):
            return Path(c)
    return None


@functools.cache
def _compiled(folder: str) -> etree.XMLSchema:
    imports = "".join(f'<xsd:import namespace="{ns}" schemaLocation="{loc}"/>' for ns, loc in SCHEMA_FILES.items())
    wrapper = (f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x-ooxml-check">'
               f"{imports}</xsd:schema>")
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    root = etree.fromstring(wrapper.encode(), parser, base_url=str(Path(folder) / "all.xsd"))
    return etree.XMLSchema(root)


def schema() -> etree.XMLSchema | None:
    """Every schema above compiled into one (cached for the process), or None without the schema files."""
    folder = schema_dir()
    return None if folder is None else _compiled(str(folder))
