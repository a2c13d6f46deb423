"""Package-level checks: content types, relationships, reachability, and schema validation of each part."""

from __future__ import annotations

from lxml import etree

from . import xsd
from .package import CONTENT_TYPES, Package, rels_part, source_of

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_R_ATTRS = ("id", "embed", "link", "pict", "href", "dm", "lo", "qs", "cs")
MAX_SCHEMA_MESSAGES = 20
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

# Root element each content type must have, for the types these checks know.
_SML = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PREFIX = "application/vnd.openxmlformats-officedocument."
EXPECTED_ROOT: dict[str, str] = {
    _PREFIX + "spreadsheetml.sheet.main+xml": _SML + "workbook",
    _PREFIX + "spreadsheetml.template.main+xml": _SML + "workbook",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": _SML + "workbook",
    "application/vnd.ms-excel.template.macroEnabled.main+xml": _SML + "workbook",
    "application/vnd.ms-excel.addin.macroEnabled.main+xml": _SML + "workbook",
    _PREFIX + "spreadsheetml.worksheet+xml": _SML + "worksheet",
    _PREFIX + "spreadsheetml.chartsheet+xml": _SML + "chartsheet",
    _PREFIX + "spreadsheetml.table+xml": _SML + "table",
    _PREFIX + "spreadsheetml.styles+xml": _SML + "styleSheet",
    _PREFIX + "spreadsheetml.sharedStrings+xml": _SML + "sst",
    _PREFIX + "spreadsheetml.calcChain+xml": _SML + "calcChain",
    _PREFIX + "spreadsheetml.comments+xml": _SML + "comments",
    _PREFIX + "drawing+xml": "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}wsDr",
    _PREFIX + "drawingml.chart+xml": "{http://schemas.openxmlformats.org/drawingml/2006/chart}chartSpace",
    _PREFIX + "theme+xml": "{http://schemas.openxmlformats.org/drawingml/2006/main}theme",
    _PREFIX + "extended-properties+xml":
        "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}Properties",
    "application/vnd.openxmlformats-package.core-properties+xml":
        "{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}coreProperties",
    "application/vnd.openxmlformats-package.relationships+xml":
        "{http://schemas.openxmlformats.org/package/2006/relationships}Relationships",
}

# Content type the target of each relationship type must have.
_RT = R + "/"
REL_CONTENT_TYPE: dict[str, tuple[str, ...]] = {
    _RT + "worksheet": (_PREFIX + "spreadsheetml.worksheet+xml",),
    _RT + "chartsheet": (_PREFIX + "spreadsheetml.chartsheet+xml",),
    _RT + "sharedStrings": (_PREFIX + "spreadsheetml.sharedStrings+xml",),
    _RT + "styles": (_PREFIX + "spreadsheetml.styles+xml",),
    _RT + "calcChain": (_PREFIX + "spreadsheetml.calcChain+xml",),
    _RT + "table": (_PREFIX + "spreadsheetml.table+xml",),
    _RT + "theme": (_PREFIX + "theme+xml",),
    _RT + "drawing": (_PREFIX + "drawing+xml",),
    _RT + "chart": (_PREFIX + "drawingml.chart+xml",),
    _RT + "comments": (_PREFIX + "spreadsheetml.comments+xml",),
    "http://schemas.microsoft.com/office/2006/relationships/vbaProject": ("application/vnd.ms-office.vbaProject",),
}


def check_parts(pkg: Package) -> None:
    """Every part has a content type, every Override names a part, every .rels belongs to a part."""
    for part in pkg.parts:
        if part == CONTENT_TYPES:
            continue
        if not pkg.content_type(part):
            pkg.problem(part, "has no content type (no Default for its extension, no Override)")
        if part.endswith(".rels"):
            source = source_of(part)
            if source is None:
                pkg.problem(part, "is a .rels part outside a _rels folder")
            elif source and pkg.find(source) is None:
                pkg.problem(part, f"holds the relationships of {source}, which the package does not have")
    for name in pkg.overrides:
        if pkg.find(name.lstrip("/")) is None:
            pkg.problem(CONTENT_TYPES, f"an Override names {name}, which the package does not have")


def check_relationships(pkg: Package) -> set[str]:
    """Internal targets exist and have the right content type; returns the parts reached from the package."""
    reached: set[str] = set()
    todo = [""]
    while todo:
        source = todo.pop()
        for r in pkg.rels(source):
            if r.external or r.part is None:
                continue
            found = pkg.find(r.part)
            where = source or "the package"
            if found is None:
                pkg.problem(_rels_name(pkg, source), f"relationship {r.id} of {where} points to the missing part "
                                                    f"{r.part}")
                continue
            expected = REL_CONTENT_TYPE.get(r.type)
            ct = pkg.content_type(found)
            if expected and ct and ct not in expected:
                pkg.problem(found, f"has content type {ct}, but {where} relates to it as {r.type.rsplit('/', 1)[-1]} "
                                   f"(expected {' or '.join(expected)})")
            if found not in reached:
                reached.add(found)
                todo.append(found)
    for part in pkg.parts:
        if part == CONTENT_TYPES or part.endswith(".rels") or part in reached:
            continue
        pkg.problem(part, "no relationship points to this part (an orphan Excel would ignore or repair)")
    return reached


def _rels_name(pkg: Package, source: str) -> str:
    return pkg.find(rels_part(source)) or rels_part(source)


def check_relationship_ids(pkg: Package, part: str, root: etree._Element) -> None:
    """Every r:id (r:embed, r:link, …) in a part names one of that part's relationships."""
    ids = {r.id for r in pkg.rels(part)}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in _R_ATTRS:
            value = el.get(f"{{{R}}}{attr}")
            if value is not None and value and value not in ids:
                pkg.problem(part, f"<{etree.QName(el).localname} r:{attr}={value!r}> names no relationship of "
                                  "this part")


def check_schemas(pkg: Package, schema: etree.XMLSchema | None) -> None:
    """Each XML part well-formed, with the root its content type calls for, and valid against the schemas."""
    for part in pkg.parts:
        if not pkg.is_xml(part):
            continue
        root = pkg.processed(part)
        if root is None:
            continue
        ct = pkg.content_type(part) or ""
        expected = EXPECTED_ROOT.get(ct)
        if part.endswith(".rels"):
            expected = EXPECTED_ROOT["application/vnd.openxmlformats-package.relationships+xml"]
        if root.tag.startswith("{http://purl.oclc.org/ooxml/"):
            continue  # Strict OOXML: reported once for the workbook
        if expected and root.tag != expected:
            pkg.problem(part, f"root element {root.tag} does not fit its content type {ct} (expected {expected})")
            continue
        check_relationship_ids(pkg, part, root)
        ns = etree.QName(root).namespace or ""
        if schema is None or ns not in xsd.UNDERSTOOD:
            continue  # e.g. customUI, core properties (Dublin Core schemas are not local), Excel's own parts
        for el in root.iter():
            # xml:space may stand on any element (XML 1.0 §2.10); the schemas leave it out of simple-typed
            # elements such as <t>, and the Open XML SDK does not hold it against a part either.
            if isinstance(el.tag, str) and XML_SPACE in el.attrib:
                del el.attrib[XML_SPACE]
        _excel_order(root)
        if not schema.validate(root):
            errors = [e for e in schema.error_log if not _known_deviation(e.path, e.message)]
            for e in errors[:MAX_SCHEMA_MESSAGES]:
                pkg.problem(part, f"schema: {e.path}: {e.message}")
            if len(errors) > MAX_SCHEMA_MESSAGES:
                pkg.problem(part, f"schema: … and {len(errors) - MAX_SCHEMA_MESSAGES} more")


_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"


def _excel_order(root: etree._Element) -> None:
    """Put back in schema order what Excel itself writes out of it.

    Excel 2016 and later write a chart's ``c:extLst`` before ``c:showDLblsOverMax`` (the schema
    wants it last); files Excel saved are like that, and Excel reads both orders.
    """
    if root.tag != f"{_C}chartSpace":
        return
    for chart in root.iter(f"{_C}chart"):
        ext, over = chart.find(f"{_C}extLst"), chart.find(f"{_C}showDLblsOverMax")
        if ext is not None and over is not None and chart.index(ext) < chart.index(over):
            chart.remove(ext)
            chart.append(ext)


def _known_deviation(path: str | None, message: str) -> bool:
    """Schema messages on markup Excel writes and reads although the schema does not allow it.

    A stock chart: the schema asks for 3 or 4 series; Excel saves (and opens) one with fewer
    (XlsxWriter's Excel-made chart_stock02.xlsx has a stock chart of 2 series and one of 1).
    """
    return bool(path and "c:stockChart" in path and "Expected is ( {http://schemas.openxmlformats.org/"
                "drawingml/2006/chart}ser )" in message)
