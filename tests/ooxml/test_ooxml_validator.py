"""The validator itself: silent on packages made the way Excel makes them, and catching each rule when a
package is broken on purpose (zipfile + string edits on a good package)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ooxml import decode_text, encode_text, schemas_available, validate
from ooxml.controls import xlsxwriter_book
from ooxml.excel_save import CalculatedColumn, as_excel_saves
from ooxml.mce import preprocess
from ooxml.text import suspicious_escapes, text_length
from ooxml.xsd import UNDERSTOOD

needs_xsd = pytest.mark.skipif(not schemas_available(), reason="the ISO/IEC 29500 XSD files are not on this machine "
                                                                "(tests/ooxml/README.md)")
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
PLAIN_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


# --------------------------------------------------------------------------
# packages made the way Excel makes them


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return xlsxwriter_book(tmp_path_factory.mktemp("made") / "made.xlsx")


@pytest.fixture(scope="module")
def saved(made: bytes) -> bytes:
    """``made`` as Excel saves it (calcChain, Excel 365 markup, a user's calculated column as a shared block)."""
    return as_excel_saves(made, (CalculatedColumn("Sales", "Double", "Units"),), shared_from=2)


def test_a_package_made_like_excels_has_no_problems(made: bytes) -> None:
    assert validate(made, name="made.xlsx") == []


def test_the_same_as_excel_saves_it_has_no_problems(saved: bytes) -> None:
    assert validate(saved, name="saved.xlsx") == []
    assert "xl/calcChain.xml" in zipfile.ZipFile(io.BytesIO(saved)).namelist()
    sheet = part(saved, "xl/worksheets/sheet1.xml")
    assert 'mc:Ignorable="x14ac xr xr2 xr3"' in sheet and 't="shared"' in sheet


def test_calc_chain_may_list_the_cells_of_an_array_formula(made: bytes) -> None:
    """Excel lists every cell an array formula spans (array_formula01.xlsx: A1 a="1", A1, A2, A3)."""
    chain = ('<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             '<c r="I1" i="1" a="1"/><c r="I1"/><c r="I2"/><c r="I3"/><c r="D2"/></calcChain>')
    assert validate(with_calc_chain(made, chain), name="a.xlsx") == []


EXCEL_365_SHEET_HEAD = (
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x14ac xr xr2 xr3" '
    'xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" '
    'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main" '
    'xmlns:xr="http://schemas.microsoft.com/office/spreadsheetml/2014/revision" '
    'xmlns:xr2="http://schemas.microsoft.com/office/spreadsheetml/2015/revision2" '
    'xmlns:xr3="http://schemas.microsoft.com/office/spreadsheetml/2016/revision3" '
    'xr:uid="{00000000-0001-0000-0000-000000000000}">')


def test_markup_compatibility_is_processed_as_office_does(made: bytes) -> None:
    """x14ac/xr attributes dropped, an AlternateContent resolved to its Fallback, an extension kept as is."""
    def edit(xml: str) -> str:
        head, _, rest = xml.partition("<dimension")
        assert head.startswith("<?xml")
        rest = rest.replace('<row r="1" ', '<row r="1" x14ac:dyDescent="0.25" ', 1)
        rest = rest.replace(
            "<pageMargins",
            '<mc:AlternateContent><mc:Choice Requires="x14"><x14:unknownThing/></mc:Choice>'
            '<mc:Fallback><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            "</mc:Fallback></mc:AlternateContent><ignored",
            1)
        rest = rest.replace('<ignored left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>', "")
        rest = rest.replace(
            "</worksheet>",
            '<extLst><ext uri="{05C60535-1F16-4fd2-B633-F4F36F0B64E0}"><x14:sparklineGroups/></ext></extLst>'
            "</worksheet>")
        return head.split("<worksheet")[0] + EXCEL_365_SHEET_HEAD + "<dimension" + rest

    problems = validate(change(made, "xl/worksheets/sheet2.xml", edit), name="a.xlsx")
    assert problems == []


def test_preprocess_choice_fallback_and_must_understand() -> None:
    mc = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    sml = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    doc = etree.fromstring(
        f'<a xmlns="{sml}" xmlns:mc="{mc}" xmlns:u="urn:unknown" mc:Ignorable="u" u:x="1">'
        f'<mc:AlternateContent><mc:Choice Requires="u"><u:b/></mc:Choice>'
        f'<mc:Choice Requires=""><c/></mc:Choice><mc:Fallback><d/></mc:Fallback></mc:AlternateContent>'
        f'<u:e><f/></u:e></a>'.encode())
    seen: list[str] = []
    out = preprocess(doc, UNDERSTOOD, seen.append)
    assert [etree.QName(e).localname for e in out] == ["c"] and out.attrib == {} and seen == []
    must = etree.fromstring(f'<a xmlns="{sml}" xmlns:mc="{mc}" xmlns:u="urn:unknown" mc:MustUnderstand="u"/>'.encode())
    preprocess(must, UNDERSTOOD, seen.append)
    assert seen and "MustUnderstand" in seen[0]
    keep = etree.fromstring(f'<a xmlns="{sml}" xmlns:mc="{mc}" xmlns:u="urn:unknown" mc:Ignorable="u" '
                            f'mc:ProcessContent="u:e"><u:e><f/></u:e></a>'.encode())
    assert [etree.QName(e).localname for e in preprocess(keep, UNDERSTOOD, seen.append)] == ["f"]


# --------------------------------------------------------------------------
# the same package broken on purpose


def part(data: bytes, name: str) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(name).decode("utf-8")


def rebuild(data: bytes, edit: Callable[[dict[str, bytes]], None]) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(data))
    parts = {n: zin.read(n) for n in zin.namelist()}
    edit(parts)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in parts.items():
            z.writestr(n, b)
    return out.getvalue()


def change(data: bytes, name: str, fn: Callable[[str], str]) -> bytes:
    def edit(parts: dict[str, bytes]) -> None:
        before = parts[name].decode("utf-8")
        after = fn(before)
        assert after != before, f"the edit of {name} changed nothing"
        parts[name] = after.encode("utf-8")
    return rebuild(data, edit)


def replace(data: bytes, name: str, old: str, new: str, count: int = 1) -> bytes:
    def fn(xml: str) -> str:
        assert old in xml, f"{old!r} is not in {name}"
        return xml.replace(old, new, count)
    return change(data, name, fn)


def regex(data: bytes, name: str, pattern: str, new: str) -> bytes:
    return change(data, name, lambda xml: re.sub(pattern, new, xml, count=1))


def drop(data: bytes, name: str) -> bytes:
    def edit(parts: dict[str, bytes]) -> None:
        del parts[name]
    return rebuild(data, edit)


def rename_table(data: bytes, name: str) -> bytes:
    """The second table (Costs) renamed."""
    return replace(data, "xl/tables/table2.xml", 'name="Costs" displayName="Costs"',
                   f'name="{name}" displayName="{name}"')


def with_calc_chain(data: bytes, chain: str) -> bytes:
    def edit(parts: dict[str, bytes]) -> None:
        parts["xl/calcChain.xml"] = chain.encode()
        rels = parts["xl/_rels/workbook.xml.rels"].decode()
        parts["xl/_rels/workbook.xml.rels"] = rels.replace(
            "</Relationships>", '<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/'
                                '2006/relationships/calcChain" Target="calcChain.xml"/></Relationships>').encode()
        types = parts["[Content_Types].xml"].decode()
        parts["[Content_Types].xml"] = types.replace(
            "</Types>", '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-'
                        'officedocument.spreadsheetml.calcChain+xml"/></Types>').encode()
    return rebuild(data, edit)


def expect(data: bytes, *needles: str, name: str = "broken.xlsx") -> list[str]:
    problems = validate(data, name=name)
    for needle in needles:
        assert any(needle in p for p in problems), f"no problem mentions {needle!r}:\n" + "\n".join(problems)
    return problems


SHEET1, TABLE1, WB = "xl/worksheets/sheet1.xml", "xl/tables/table1.xml", "xl/workbook.xml"
TYPES, WB_RELS, SST = "[Content_Types].xml", "xl/_rels/workbook.xml.rels", "xl/sharedStrings.xml"

BROKEN: dict[str, tuple[Callable[[bytes], bytes], tuple[str, ...]]] = {
    "part without a content type": (
        lambda d: regex(d, TYPES, r'<Default Extension="rels"[^>]*/>', ""),
        ("_rels/.rels: has no content type", "xl/_rels/workbook.xml.rels: has no content type")),
    "Override for a missing part, part with the wrong type": (
        lambda d: replace(d, TYPES, '<Override PartName="/xl/tables/table2.xml" ', '<Override PartName="/xl/x.xml" '),
        ("names /xl/x.xml, which the package does not have",
         "xl/tables/table2.xml: has content type application/xml, but xl/worksheets/sheet1.xml relates to it as "
         "table")),
    "relationship to a missing part": (
        lambda d: replace(d, WB_RELS, 'Target="worksheets/sheet2.xml"', 'Target="worksheets/sheet9.xml"'),
        ("points to the missing part xl/worksheets/sheet9.xml",)),
    "two tables of one name (case ignored)": (
        lambda d: rename_table(d, "SALES"),
        ("table name 'sales' is also the name of the table",)),
    "table named like a defined name": (
        lambda d: rename_table(d, "rate"),
        ("table displayName 'rate' is also a defined name",)),
    "table name that is a cell reference": (
        lambda d: rename_table(d, "AB12"),
        ("not a valid Excel name",)),
    "two tables with one id": (
        lambda d: replace(d, "xl/tables/table2.xml", 'id="2"', 'id="1"'),
        ("table id 1 is also the id of the table",)),
    "header cell differs from its tableColumn": (
        lambda d: replace(d, TABLE1, 'name="Units"', 'name="Unit"'),
        ("header cell B1 holds 'Units' but the tableColumn is named 'Unit'",)),
    "two tableColumns of one name": (
        lambda d: replace(d, TABLE1, 'name="Units"', 'name="REGION"'),
        ("column name 'REGION' is used twice",)),
    "table ref bottom-right before top-left": (
        lambda d: replace(d, TABLE1, 'ref="A1:D5"', 'ref="D5:A1"'),
        ("ref 'D5:A1' is not a range",)),
    "table ref outside the grid": (
        lambda d: replace(d, TABLE1, 'ref="A1:D5"', 'ref="XFD1:XFG5"'),
        ("ref 'XFD1:XFG5' is not a range",)),
    "table ref past the last row": (
        lambda d: replace(d, TABLE1, 'ref="A1:D5"', 'ref="A1048574:D1048577"'),
        ("is not a range",)),
    "tables overlapping on one sheet": (
        lambda d: replace(replace(d, "xl/tables/table2.xml", 'ref="F1:G3"', 'ref="D1:E3"'),
                          "xl/tables/table2.xml", '<autoFilter ref="F1:G3"/>', '<autoFilter ref="D1:E3"/>'),
        ("overlap",)),
    "autoFilter not the table less its totals row": (
        lambda d: replace(d, TABLE1, '<autoFilter ref="A1:D4"/>', '<autoFilter ref="A1:D5"/>'),
        ("autoFilter ref 'A1:D5' is not the table's ref less its totals row (A1:D4)",)),
    "calculated column cell without its formula": (
        lambda d: regex(d, SHEET1, r'(<c r="D3"[^>]*>)<f>[^<]*</f>', r"\1"),
        ("calculated column 'Total' has no formula in 1 data cell(s): D3",)),
    "calcChain listing a cell without a formula": (
        lambda d: with_calc_chain(d, '<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                     '<c r="D2" i="1"/><c r="A2"/></calcChain>'),
        ("calcChain lists 1 cell(s) without a formula: Data!A2",)),
    "calcChain naming no sheet": (
        lambda d: with_calc_chain(d, '<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                     '<c r="D2" i="7"/></calcChain>'),
        ("names sheetId 7",)),
    "calcChain without its relationship": (
        lambda d: regex(with_calc_chain(d, '<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                                           '2006/main"><c r="D2" i="1"/></calcChain>'),
                        WB_RELS, r'<Relationship Id="rId99"[^>]*/>', ""),
        ("calcChain part without a relationship", "no relationship points to this part")),
    "calcChain without its content type": (
        lambda d: regex(with_calc_chain(d, '<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                                           '2006/main"><c r="D2" i="1"/></calcChain>'),
                        TYPES, r'<Override PartName="/xl/calcChain.xml"[^>]*/>', ""),
        ("calcChain part has content type application/xml",)),
    "shared formula without its master": (
        lambda d: regex(d, SHEET1, r'<f>(Sales\[\[#This Row\],\[Units\]\][^<]*)</f>', '<f t="shared" si="4"/>'),
        ("uses shared formula 4, which has no master",)),
    "shared formula outside its master's ref": (
        lambda d: regex(regex(d, SHEET1, r'<f>(Sales[^<]*)</f>', r'<f t="shared" ref="D2:D2" si="0">\1</f>'),
                        SHEET1, r'<f>(Sales[^<]*)</f>', '<f t="shared" si="0"/>'),
        ("lies outside its ref D2:D2",)),
    "shared string over 32,767 characters": (
        lambda d: replace(d, SST, "<t>South</t>", "<t>" + "x" * 32_768 + "</t>"),
        ("holds 32,768 characters",)),
    "inline string over 32,767 characters": (
        lambda d: regex(d, SHEET1, r'<c r="A3" t="s"><v>\d+</v></c>',
                        '<c r="A3" t="inlineStr"><is><t>' + "y" * 40_000 + "</t></is></c>"),
        ("holds 40,000 characters",)),
    "literal _xHHHH_ not escaped": (
        lambda d: replace(d, SST, "<t>South</t>", "<t>Ann_x0041_Lee</t>"),
        ("warning: shared string", "stores _x0041_, which Excel reads as 'A'")),
    "two sheets of one name (case ignored)": (
        lambda d: replace(d, WB, 'name="Notes"', 'name="DATA"'),
        ("sheet name 'DATA' is used twice",)),
    "sheet name over 31 characters": (
        lambda d: replace(d, WB, 'name="Notes"', 'name="' + "N" * 32 + '"'),
        ("is longer than 31 characters",)),
    "sheet name with a forbidden character": (
        lambda d: replace(d, WB, 'name="Notes"', 'name="No/tes"'),
        ("holds /",)),
    "macro-enabled package with the plain content type": (
        lambda d: d,
        (f"it is an .xlsm file, so the workbook's content type must be {MACRO_MAIN}",)),
    "xlsx with the macro-enabled content type": (
        lambda d: replace(d, TYPES, PLAIN_MAIN, MACRO_MAIN),
        ("Excel refuses to open it",)),
    "VBA project in a workbook with the plain content type": (
        lambda d: rebuild(d, lambda p: p.update({"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"})),
        ("it holds a VBA project",)),
    "cells out of order in a row": (
        lambda d: regex(d, SHEET1, r'(<c r="A2"[^>]*>.*?</c>)(<c r="B2"[^>]*>.*?</c>)', r"\2\1"),
        ("cell A2 comes after column B of row 2",)),
    "rows out of order": (
        lambda d: replace(replace(d, SHEET1, '<row r="2"', '<row r="9"'), SHEET1, 'r="A2"', 'r="A9"'),
        ("row 3 comes after row 9",)),
    "cell outside its row": (
        lambda d: replace(d, SHEET1, 'r="B2"', 'r="B3"'),
        ("cell B3 sits in row 2",)),
    "dimension not a range": (
        lambda d: regex(d, SHEET1, r'<dimension ref="[^"]*"/>', '<dimension ref="A0:B2"/>'),
        ("<dimension ref='A0:B2'> is not a range",)),
    "shared string index past the end": (
        lambda d: regex(d, SHEET1, r'(<c r="A2" t="s"><v>)\d+(</v>)', r"\g<1>999\2"),
        ("names shared string '999'",)),
    "style index past cellXfs": (
        lambda d: replace(d, SHEET1, '<c r="B2"', '<c r="B2" s="77"'),
        ("has style s=77",)),
    "overlapping merged ranges": (
        lambda d: replace(d, "xl/worksheets/sheet2.xml", '<mergeCell ref="D4:E5"/>',
                          '<mergeCell ref="D4:E5"/><mergeCell ref="E5:F6"/>'),
        ("merged ranges D4:E5 and E5:F6 overlap",)),
    "r:id naming no relationship": (
        lambda d: replace(d, SHEET1, '<drawing r:id="rId1"/>', '<drawing r:id="rId42"/>'),
        ("<drawing r:id='rId42'> names no relationship",)),
    "not well-formed XML": (
        lambda d: replace(d, "xl/tables/table3.xml", "</table>", "</tabel>"),
        ("xl/tables/table3.xml: not well-formed XML",)),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_catches_its_break(made: bytes, case: str) -> None:
    brk, needles = BROKEN[case]
    name = "broken.xlsm" if "macro-enabled package" in case else "broken.xlsx"
    expect(brk(made), *needles, name=name)


@needs_xsd
@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: replace(d, SHEET1, "<sheetData>", "<sheetData><bogus/>"), "Element '{http://schemas.openxmlformats"
                                                                         ".org/spreadsheetml/2006/main}bogus'"),
    (lambda d: replace(d, SHEET1, '<c r="B2"', '<c r="B2" t="q"'), "attribute 't'"),
    (lambda d: replace(d, TABLE1, 'totalsRowCount="1"', 'totalsRowCount="-1"'), "totalsRowCount"),
    (lambda d: replace(d, TYPES, "<Default ", "<Defualt ", 1), "Defualt"),
    (lambda d: replace(d, WB_RELS, "<Relationship ", '<Relationship Bogus="1" ', 1), "Bogus"),
    (lambda d: replace(d, "xl/charts/chart1.xml", "<c:plotArea>", "<c:plotArea><c:nope/>"), "nope"),
])
def test_the_schemas_catch_invalid_markup(made: bytes, edit: Callable[[bytes], bytes], needle: str) -> None:
    expect(edit(made), "schema:", needle)


def test_escaped_literal_is_not_a_warning(made: bytes) -> None:
    assert validate(replace(made, SST, "<t>South</t>", "<t>Ann_x005F_x0041_Lee</t>"), name="a.xlsx") == []
    assert validate(replace(made, SST, "<t>South</t>", "<t>line_x000D_break</t>"), name="a.xlsx") == []


def test_the_excel_saved_copy_catches_a_dropped_calculated_formula(saved: bytes) -> None:
    broken = regex(saved, SHEET1, r'(<c r="E4"[^>]*>)<f t="shared" si="\d+"/>', r"\1")
    expect(broken, "calculated column 'Double' has no formula in 1 data cell(s): E4", "calcChain lists 1 cell(s)")


def test_not_a_zip() -> None:
    assert validate(b"PK\x03\x04 not really", name="x.xlsx") == ["x.xlsx: not a zip package (File is not a zip file)"]


def test_missing_content_types_and_workbook(made: bytes) -> None:
    expect(drop(made, TYPES), "[Content_Types].xml: missing")
    expect(regex(made, "_rels/.rels", r'<Relationship [^>]*officeDocument"[^>]*/>', ""), "no officeDocument")


# --------------------------------------------------------------------------
# Excel's _xHHHH_ text escapes


def test_decode_text() -> None:
    assert decode_text("Ann_x0041_Lee") == "AnnALee"
    assert decode_text("Ann_x005F_x0041_Lee") == "Ann_x0041_Lee"
    assert decode_text("a_x000D__x000a_b") == "a\r\nb"
    assert decode_text("_xD83D__xDE00_") == "\U0001F600"
    assert decode_text("_x41_ and _xZZZZ_") == "_x41_ and _xZZZZ_"
    assert encode_text("Ann_x0041_Lee") == "Ann_x005F_x0041_Lee"
    assert encode_text("a\x01b\rc") == "a_x0001_b_x000D_c"
    assert suspicious_escapes("Ann_x0041_Lee _x000D_ _x005F_x0042_") == ["_x0041_"]
    assert text_length("_x0041_") == 1 and text_length("\U0001F600") == 2


ESCAPE_ALPHABET = ["_", "x", "0", "4", "1", "A", "F", "a", "\x01", "\r", "\n", "é", "\U0001F600"]


@given(st.text(alphabet=st.sampled_from(ESCAPE_ALPHABET), max_size=40))
def test_escape_round_trip(s: str) -> None:
    assert decode_text(encode_text(s)) == s
    assert suspicious_escapes(encode_text(s)) == []
