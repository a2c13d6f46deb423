"""The Excel layer as built into the template: VBA sources, ribbon, UDF wrappers, formula columns.

Excel itself cannot run here. What is checked is everything around it: the
generated VBA text is what the registries say, the VBA project inside the
committed template reads back (olevba) as exactly the committed .bas files, the
ribbon XML is well-formed and wired, every ribbon callback exists with the
IRibbonControl signature, every function has a wrapper with its arguments, and
LibreOffice opens, lists, recalculates and exports the template.
"""

from __future__ import annotations

import inspect
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from defusedxml import ElementTree
from lo import open_in_libreoffice
from oletools.olevba import VBA_Parser
from perseat_addin.macros import ACTIONS, vbagen
from perseat_addin.udfs import FUNCTIONS

from perseat_addin.excel.template import CLIENT_FORMULAS, build, vba_source_dir

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
VBA_DIR = ROOT / "macros" / "vba"
CUSTOM_UI_NS = "{http://schemas.microsoft.com/office/2006/01/customui}"
CUSTOM_UI_REL = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"


def code_lines(text: str) -> list[str]:
    """Module code for comparison: no Attribute lines, no trailing blanks, LF."""
    lines = text.replace("\r\n", "\n").split("\n")
    return [ln.rstrip() for ln in lines if ln.strip() and not ln.startswith("Attribute ")]


def test_committed_vba_sources_are_what_the_registries_generate() -> None:
    generated = vbagen.generated_files()
    committed = {p.name: p.read_bytes().decode("utf-8") for p in VBA_DIR.iterdir() if p.is_file()}
    assert set(committed) == set(generated), "run: python -m perseat_addin.macros.vbagen"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run python -m perseat_addin.macros.vbagen"


def test_vba_sources_ship_with_the_package() -> None:
    found = vba_source_dir()
    assert found is not None and (found / "xlwings_udfs.bas").exists()


def test_olevba_reads_exactly_the_committed_bas_sources_from_the_template() -> None:
    parser = VBA_Parser(str(TEMPLATE))
    try:
        assert parser.detect_vba_macros()
        modules = {Path(name).stem: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()
    sources = sorted(VBA_DIR.glob("*.bas")) + sorted(VBA_DIR.glob("*.cls"))
    for bas in sources:
        assert bas.stem in modules, f"{bas.stem} missing from the template's VBA project"
        assert code_lines(modules[bas.stem]) == code_lines(bas.read_text(encoding="utf-8")), bas.name
    assert set(modules) == {p.stem for p in sources}


def test_template_is_macro_enabled_with_ribbon_wired_by_a_package_relationship() -> None:
    with zipfile.ZipFile(TEMPLATE) as z:
        types = z.read("[Content_Types].xml").decode()
        rels = ElementTree.fromstring(z.read("_rels/.rels"))
        ui = z.read("customUI/customUI.xml")
        assert "xl/vbaProject.bin" in z.namelist()
    assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
    targets = {r.get("Target") for r in rels if r.get("Type") == CUSTOM_UI_REL}
    assert targets == {"customUI/customUI.xml"}
    root = ElementTree.fromstring(ui)
    assert root.tag == f"{CUSTOM_UI_NS}customUI"
    assert ui == (VBA_DIR / "customUI.xml").read_bytes()


def ribbon_buttons() -> list[dict[str, str]]:
    root = ElementTree.fromstring((VBA_DIR / "customUI.xml").read_bytes())
    return [dict(b.attrib) for b in root.iter(f"{CUSTOM_UI_NS}button")]


def test_every_ribbon_action_is_a_public_sub_with_the_iribboncontrol_signature() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in VBA_DIR.glob("*.bas"))
    buttons = ribbon_buttons()
    assert [b["onAction"] for b in buttons] == [a.vba_sub for a in ACTIONS]
    for b in buttons:
        sub = re.escape(b["onAction"])
        assert re.search(rf"^Public Sub {sub}\(control As IRibbonControl\)\s*$", code, re.M), b["onAction"]
        assert b["label"]


def test_every_ribbon_callback_runs_an_existing_python_macro() -> None:
    import perseat_addin.macros as macros

    code = (VBA_DIR / "PerseatRibbon.bas").read_text(encoding="utf-8")
    for a in ACTIONS:
        if a.file_prompt:  # asks for the file first, then hands its path over as a Python string
            sub = code[code.index(f"Public Sub {a.vba_sub}("):]
            sub = sub[: sub.index("End Sub")]
            assert "Application.GetOpenFilename(" in sub and "If VarType(chosen) = vbBoolean Then Exit Sub" in sub
            assert f'm.{a.macro}(" & PerseatPyText(CStr(chosen)) & ")"' in sub
        else:
            assert f"m.{a.macro}()" in code
        assert callable(getattr(macros, a.macro))


def test_every_function_has_a_wrapper_with_matching_arguments() -> None:
    import perseat_addin.udfs as udfs

    code = (VBA_DIR / "xlwings_udfs.bas").read_text(encoding="utf-8")
    wrappers = {m.group(1): m.group(2) for m in re.finditer(r"^Function (\w+)\(([^)]*)\)", code, re.M)}
    assert set(wrappers) == {f.name for f in FUNCTIONS}
    for f in FUNCTIONS:
        py_args = list(inspect.signature(getattr(udfs, f.name)).parameters)
        vba_args = [a.replace("Optional ", "").strip() for a in wrappers[f.name].split(",") if a.strip()]
        assert vba_args == py_args, f.name
        optional = [a.strip().startswith("Optional") for a in wrappers[f.name].split(",") if a.strip()]
        assert optional == [a.optional for a in f.args], f.name
        assert f'XLPy.CallUDF("perseat_addin.udfs", "{f.name}"' in code


def test_function_wizard_help_is_registered_for_every_function_when_the_workbook_opens() -> None:
    code = (VBA_DIR / "PerseatSetup.bas").read_text(encoding="utf-8")
    assert re.search(r"^Public Sub RegisterFunctions\(\)", code, re.M)
    opener = (VBA_DIR / "ThisWorkbook.cls").read_text(encoding="utf-8")
    assert re.search(r"^Private Sub Workbook_Open\(\)\s+PerseatSetup\.RegisterFunctions\s+"
                     r"PerseatSetup\.RefreshHandles\s+End Sub", opener, re.M)


def test_the_handle_cells_are_recomputed_when_the_workbook_opens() -> None:
    """A handle saved with the workbook names nothing in a new Python session: UsageBook and Book are marked
    dirty and recalculated on opening, so no per-client cell reads an old one."""
    code = (VBA_DIR / "PerseatSetup.bas").read_text(encoding="utf-8")
    sub = code[code.index("Public Sub RefreshHandles()"):]
    sub = sub[: sub.index("End Sub")]
    assert sub.index('Names("UsageBook").RefersToRange.Dirty') < sub.index('Names("Book").RefersToRange.Dirty')
    assert "Application.Calculate" in sub
    for f in FUNCTIONS:
        assert f'Macro:="{f.name}"' in code
        assert 0 < len(f.description) <= 255
        assert all(0 < len(a.help) <= 255 for a in f.args), f.name


def test_template_build_is_reproducible_part_by_part(tmp_path: Path) -> None:
    fresh = build(tmp_path / "fresh.xlsm")
    with zipfile.ZipFile(TEMPLATE) as a, zipfile.ZipFile(fresh) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            assert a.read(name) == b.read(name), f"{name} differs: rebuild with perseat template"


def test_clients_table_has_the_formula_columns() -> None:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(TEMPLATE.read_bytes()), keep_vba=True)
    ws = wb["Clients"]
    headers = [c.value for c in ws[1]]
    for header, formula in CLIENT_FORMULAS.items():
        col = headers.index(header) + 1
        cell = ws.cell(2, col).value
        text = cell.text if hasattr(cell, "text") else str(cell)
        name = formula.split("(")[0].lstrip("=")
        assert name in text, (header, text)


# --------------------------------------------------------------------------
# LibreOffice: open, list the VBA modules, recalculate, export to PDF

def test_libreoffice_opens_lists_recalculates_and_exports_the_template(tmp_path: Path) -> None:
    pdf = tmp_path / "template.pdf"
    result = open_in_libreoffice(TEMPLATE, tmp_path, pdf)
    modules = {m for library in result["libraries"].values() for m in library}
    for source in [*VBA_DIR.glob("*.bas"), *VBA_DIR.glob("*.cls")]:
        assert source.stem in modules
    assert "Clients" in result["sheets"]
    assert pdf.exists() and pdf.stat().st_size > 10_000
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
                       check=True, timeout=120)
        assert list(tmp_path.glob("p*.png"))
