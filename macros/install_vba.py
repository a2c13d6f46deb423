"""Fallback for when Excel rejects the built VBA project: import the .bas sources through Excel itself.

Windows only (Excel's COM object model). Needs *File → Options → Trust Center →
Macro Settings → Trust access to the VBA project object model* once. Usage::

    python -m perseat_addin.macros.install_vba my_billing.xlsm

It opens the workbook in Excel, removes any old Perseat modules, imports the
modules from ``perseat_addin/macros/vba``, adds the reference to the xlwings
add-in, and saves.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .vbagen import VBA_DIR

XLWINGS_ADDIN = "xlwings"


def install(workbook: Path, vba_dir: Path = VBA_DIR) -> list[str]:
    """Import every .bas module into ``workbook`` through Excel; returns the module names."""
    import xlwings as xw  # only here: this runs in Excel on Windows

    book = xw.Book(str(workbook))
    project = book.api.VBProject
    names = []
    for bas in sorted(vba_dir.glob("*.bas")):
        name = bas.stem
        for comp in list(project.VBComponents):
            if comp.Name == name:
                project.VBComponents.Remove(comp)
        project.VBComponents.Import(str(bas))
        names.append(name)
    if not any(ref.Name == XLWINGS_ADDIN for ref in project.References):
        addin = next((a for a in book.app.api.AddIns if a.Name.lower() == "xlwings.xlam"), None)
        if addin is None:
            raise RuntimeError("the xlwings add-in is not installed: run 'xlwings addin install' first")
        project.References.AddFromFile(addin.FullName)
    book.save()
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m perseat_addin.macros.install_vba WORKBOOK``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(__doc__)
        return 2
    names = install(Path(args[0]).resolve())
    print(f"Imported {', '.join(names)} into {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
