"""Microsoft's Open XML SDK validator as the tests use it: silent on the control packages (made like Excel's,
tests/ooxml/controls.py) once its documented filters are applied, each filter still needed by a control,
and catching what is broken on purpose (the filters hide nothing else)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ooxml import validate
from ooxml.controls import QUIRKS, feature_book, xlsxwriter_book
from ooxml.excel_save import CalculatedColumn, as_excel_saves
from ooxml.sdk import KNOWN_MESSAGES, need_sdk, raw_messages, sdk_validate

pytestmark = pytest.mark.usefixtures("sdk")


@pytest.fixture(scope="module")
def sdk() -> None:
    need_sdk()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-controls")


@pytest.fixture(scope="module")
def made(folder: Path) -> bytes:
    return xlsxwriter_book(folder / "made.xlsx")


@pytest.fixture(scope="module")
def features(folder: Path) -> bytes:
    return feature_book(folder / "features.xlsx")


@pytest.fixture(scope="module")
def quirks(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for n, (name, build) in enumerate(QUIRKS.items()):
        path = folder / f"quirk{n}.xlsx"
        build(path)
        out[name] = path
    return out


def test_silent_on_a_package_made_like_excels(made: bytes) -> None:
    assert raw_messages(made, name="made.xlsx") == []


def test_silent_on_the_same_as_excel_saves_it(made: bytes) -> None:
    saved = as_excel_saves(made, (CalculatedColumn("Sales", "Double", "Units"),), shared_from=2)
    assert raw_messages(saved, name="saved.xlsx") == []


def test_silent_on_tables_charts_validation_names_and_more(features: bytes) -> None:
    assert validate(features, name="features.xlsx") == []
    assert raw_messages(features, name="features.xlsx") == []
    saved = as_excel_saves(features, (CalculatedColumn("Sales", "Double", "Units"),))
    assert raw_messages(saved, name="features.xlsx") == []


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_what_excel_writes_against_the_sdk_is_filtered(quirks: dict[str, Path], quirk: str) -> None:
    path = quirks[quirk]
    assert validate(path) == []
    assert raw_messages(path), f"the SDK no longer reports the {quirk}: its filter can go (README.md)"
    assert sdk_validate(path) == []


def test_every_filter_is_needed_by_a_control(quirks: dict[str, Path]) -> None:
    errors = {name: raw_messages(path) for name, path in quirks.items()}
    unused = [k.why for k in KNOWN_MESSAGES if not any(k.matches(e, errs) for errs in errors.values() for e in errs)]
    assert not unused, f"filters no control needs: {unused}"


# --------------------------------------------------------------------------
# broken on purpose


def edited(data: bytes, name: str, old: str, new: str) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == name:
                text = body.decode("utf-8")
                assert old in text, f"{old!r} is not in {name}"
                body = text.replace(old, new, 1).encode("utf-8")
            z.writestr(info.filename, body)
    return out.getvalue()


BROKEN: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "an unknown element": (lambda d: edited(d, "xl/worksheets/sheet1.xml", "<sheetData>", "<bogus/><sheetData>"),
                           "xl/worksheets/sheet1.xml: sdk Sch_InvalidElementContentExpectingComplex:"),
    "an undeclared attribute": (lambda d: edited(d, "xl/workbook.xml", "<sheets>", '<sheets foo="1">'),
                                "xl/workbook.xml: sdk Sch_UndeclaredAttribute: The 'foo' attribute is not declared."),
    "a bad attribute value": (lambda d: edited(d, "xl/tables/table1.xml", 'totalsRowCount="1"', 'totalsRowCount="x"'),
                              "xl/tables/table1.xml: sdk Sch_AttributeValueDataTypeDetailed:"),
    "a style index out of range": (lambda d: edited(d, "xl/worksheets/sheet1.xml", '<c r="A1" ', '<c r="A1" s="99" '),
                                   "xl/worksheets/sheet1.xml: sdk Sem_MissingIndexedElement:"),
    "a stock chart element the filter does not cover": (
        lambda d: edited(d, "xl/charts/chart1.xml", "<c:hiLowLines/>", "<c:bogus/><c:hiLowLines/>"),
        "xl/charts/chart1.xml: sdk Sch_InvalidElementContentExpectingComplex: The element has invalid child "
        "element 'http://schemas.openxmlformats.org/drawingml/2006/chart:bogus'."),
    "1,024 row breaks": (lambda d: edited(d, "xl/worksheets/sheet1.xml", 'count="1023" manualBreakCount="1023"',
                                          'count="1024" manualBreakCount="1024"'),
                         "xl/worksheets/sheet1.xml: sdk Sem_AttributeValueDataTypeDetailed: The attribute 'count'"),
}
BROKEN_SOURCE = {"a stock chart element the filter does not cover": "stock chart of fewer than 3 series",
                 "1,024 row breaks": "1,023 row breaks"}


@pytest.mark.parametrize("case", list(BROKEN))
def test_reports_what_is_broken(made: bytes, quirks: dict[str, Path], case: str) -> None:
    edit, expected = BROKEN[case]
    source = quirks[BROKEN_SOURCE[case]].read_bytes() if case in BROKEN_SOURCE else made
    problems = sdk_validate(edit(source), name="broken.xlsx")
    assert any(p.startswith(expected) for p in problems), problems


def test_a_package_the_sdk_cannot_open_is_one_problem() -> None:
    problems = sdk_validate(b"not a zip", name="broken.xlsx")
    assert len(problems) == 1 and problems[0].startswith("(package): sdk Package: the SDK could not open"), problems


def test_many_problems_in_one_part_are_capped(made: bytes) -> None:
    broken = edited(made, "xl/workbook.xml", "<sheets>", "<sheets " + " ".join(f'a{i}="1"' for i in range(30)) + ">")
    problems = [p for p in sdk_validate(broken, name="broken.xlsx") if p.startswith("xl/workbook.xml")]
    assert len(problems) == 21 and problems[-1] == "xl/workbook.xml: sdk: … and 10 more", problems
