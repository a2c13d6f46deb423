"""The package's layers: who may import whom, no import cycle, no xlwings and no I/O in the engine.

Every import counts, at module level or inside a function. The layers, lowest first:

- the vocabulary at the root: ``errors``, ``money``, ``model``, ``cells``, ``tables``, ``version``;
- ``workbook/`` (read, validate and edit the file) and ``imports/`` (vendor exports), side by side;
- ``engine/`` (the billing rules; may use ``imports.roster`` for the imported-user records) and
  ``sources/`` (the services' APIs over HTTP: users fetched into the imports' records), side by side;
- ``outputs/`` (produced files) and ``excel/`` (functions, template, VBA project), side by side;
- ``tasks/`` (one module per button or command, over the workbook port);
- ``cli`` and ``udfs/``; then ``macros/`` (its VBA generator reads the function registry) and the
  package's ``__init__`` at the top.

A module may import its own unit and anything lower, never higher or sideways.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"perseat_addin": ROOT / "perseat_addin", "perseat_addin.udfs": ROOT / "udfs",
                "perseat_addin.macros": ROOT / "macros"}

VOCABULARY = ("errors", "money", "model", "cells", "tables", "version")
RANK = {**dict.fromkeys(VOCABULARY, 0), "workbook": 1, "imports": 1, "engine": 2, "sources": 2, "outputs": 3,
        "excel": 3,
        "tasks": 4, "cli": 5, "udfs": 5, "macros": 6, "__init__": 6}
ENGINE_MAY_IMPORT = {*VOCABULARY, "imports.roster"}
IO_MODULES = {"os", "io", "pathlib", "shutil", "tempfile", "subprocess", "socket", "zipfile", "csv", "sqlite3",
              "urllib", "http", "requests", "xml", "lxml", "defusedxml", "openpyxl", "xlsxwriter", "python_calamine",
              "xlwings", "tqdm", "concurrent", "threading", "multiprocessing", "pickle", "shelve", "glob"}


def modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name relative to ``perseat_addin``."""
    out = {}
    for pkg, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((*pkg.split(".")[1:], *parts))
            out[name or "__init__"] = path
    return out


MODULES = modules()


def imports_of(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported name, line) for every import in the file; package-relative names for our own modules."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if name != "__init__" else []
    base_parts = here if is_pkg else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = base_parts[:len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                mod = ".".join(["perseat_addin", *up, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            yield mod, node.lineno
            for a in node.names:  # ``from perseat_addin.engine import invoicing`` imports a module
                yield f"{mod}.{a.name}", node.lineno


def own(target: str) -> str | None:
    """The package module ``target`` names (longest match), relative to ``perseat_addin``; None if foreign."""
    if target != "perseat_addin" and not target.startswith("perseat_addin."):
        return None
    rel = target.removeprefix("perseat_addin").removeprefix(".") or "__init__"
    while rel not in MODULES and "." in rel:
        rel = rel.rsplit(".", 1)[0]
    return rel if rel in MODULES else None


def graph() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        edges = out.setdefault(name, {})
        for target, line in imports_of(name, path):
            mod = own(target)
            if mod is not None and mod != name and not (mod == "__init__" and target != "perseat_addin"):
                edges.setdefault(mod, line)
    return out


def unit(module: str) -> str:
    """The layer unit of a module: its folder, or itself at the root."""
    return module.split(".")[0]


def test_every_module_has_a_layer() -> None:
    assert {unit(m) for m in MODULES} <= set(RANK), sorted({unit(m) for m in MODULES} - set(RANK))


def test_imports_run_down_only() -> None:
    wrong = []
    for a, targets in graph().items():
        for b, line in targets.items():
            ua, ub = unit(a), unit(b)
            if ua == ub and ua not in VOCABULARY:
                continue
            if RANK[ub] < RANK[ua] or (ua in VOCABULARY and ub in VOCABULARY):
                continue
            wrong.append(f"{MODULES[a]}:{line} imports {b} ({ub} is not below {ua})")
    assert not wrong, "\n".join(wrong)


def test_the_engine_imports_only_the_vocabulary() -> None:
    wrong = [f"{MODULES[a]}:{line} imports {b}"
             for a, targets in graph().items() if unit(a) == "engine"
             for b, line in targets.items() if unit(b) != "engine" and b not in ENGINE_MAY_IMPORT]
    assert not wrong, "\n".join(wrong)


def test_workbook_and_imports_stay_below_the_rules() -> None:
    wrong = [f"{MODULES[a]}:{line} imports {b}"
             for a, targets in graph().items() if unit(a) in ("workbook", "imports")
             for b, line in targets.items() if unit(b) in ("engine", "outputs", "tasks", "excel")]
    assert not wrong, "\n".join(wrong)


def test_sources_fetch_and_map_only() -> None:
    """A live source turns an API into imported users: it never reads the workbook, bills or writes files."""
    wrong = [f"{MODULES[a]}:{line} imports {b}"
             for a, targets in graph().items() if unit(a) == "sources"
             for b, line in targets.items() if unit(b) in ("workbook", "engine", "outputs", "tasks", "excel")]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in g.get(m, {}):
            if state.get(n) == 1:
                cycles.append(" → ".join([*stack[stack.index(n):], n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_no_xlwings_inside_the_package() -> None:
    wrong = [f"{path}:{line}" for name, path in MODULES.items()
             if unit(name) not in ("udfs", "macros")
             for target, line in imports_of(name, path) if target.split(".")[0] == "xlwings"]
    assert not wrong, "\n".join(wrong)


def test_the_engine_does_no_io() -> None:
    wrong = []
    for name, path in MODULES.items():
        if unit(name) != "engine":
            continue
        for target, line in imports_of(name, path):
            if target.split(".")[0] in IO_MODULES:
                wrong.append(f"{path}:{line} imports {target}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("open", "input"):
                wrong.append(f"{path}:{node.lineno} calls {node.func.id}()")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("source", "rule"), [
    ("from perseat_addin.tasks.invoice import generate_invoices\n", test_imports_run_down_only),
    ("def f():\n    from perseat_addin.outputs import xlsx\n", test_the_engine_imports_only_the_vocabulary),
    ("import xlwings as xw\n", test_no_xlwings_inside_the_package),
    ("from pathlib import Path\n", test_the_engine_does_no_io),
    ("from perseat_addin.engine.invoicing import invoice_run\n", test_workbook_and_imports_stay_below_the_rules),
    ("from perseat_addin.workbook.load import load_source\n", test_sources_fetch_and_map_only),
])
def test_a_forbidden_import_fails(source: str, rule: object, tmp_path: Path) -> None:
    """Each rule catches a module that breaks it (checked on a copy of the module list)."""
    victim = {test_workbook_and_imports_stay_below_the_rules: "imports.usage",
              test_sources_fetch_and_map_only: "sources.graph"}.get(rule, "engine.seats")  # type: ignore[call-overload]
    fake = tmp_path / "seats.py"
    fake.write_text(MODULES[victim].read_text(encoding="utf-8") + "\n" + source, encoding="utf-8")
    saved = MODULES[victim]
    MODULES[victim] = fake
    try:
        with pytest.raises(AssertionError):
            rule()  # type: ignore[operator]
    finally:
        MODULES[victim] = saved


def test_a_cycle_fails(tmp_path: Path) -> None:
    fake = tmp_path / "money.py"
    fake.write_text(MODULES["money"].read_text(encoding="utf-8") + "\nfrom perseat_addin import model\n",
                    encoding="utf-8")
    saved = MODULES["money"]
    MODULES["money"] = fake
    try:
        with pytest.raises(AssertionError):
            test_no_import_cycle()
    finally:
        MODULES["money"] = saved
