"""Drive LibreOffice headless through Python-UNO (Debian's /usr/bin/python3), for tests.

One script opens a workbook hidden, reads its VBA libraries, recalculates and,
when asked, types values into cells and reports which cells LibreOffice finds
invalid under their data validation, and exports it to PDF; it prints JSON and
always shuts LibreOffice down.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-uno works only with the system interpreter

UNO_SCRIPT = r'''
import json, os, signal, socket, subprocess, sys, time
import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def a1(col, row):
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return "%s%d" % (letters, row + 1)


def validity(doc, probe):
    """Read the validation of cells, type text into cells, then ask Calc which cells hold invalid data."""
    out = {"validations": {}, "invalid": {}, "names": {}}
    for sheet, ref in probe.get("read", []):
        v = doc.Sheets.getByName(sheet).getCellRangeByName(ref).getPropertyValue("Validation")
        out["validations"]["%s!%s" % (sheet, ref)] = {
            "type": v.Type.value, "formula1": v.getFormula1(), "alert": v.ErrorAlertStyle.value,
            "show_error": bool(v.ShowErrorMessage), "ignore_blank": bool(v.IgnoreBlankCells),
            "title": v.ErrorTitle, "message": v.ErrorMessage}
    for sheet, ref, text in probe.get("type", []):
        doc.Sheets.getByName(sheet).getCellRangeByName(ref).setString(text)
    doc.calculateAll()
    for sheet in probe.get("check", []):
        ws = doc.Sheets.getByName(sheet)
        ws.showInvalid()  # the Detective circles every cell whose value its validation refuses
        page = ws.DrawPage
        marked = []
        for i in range(page.Count):
            address = page.getByIndex(i).Anchor.getCellAddress()
            marked.append(a1(address.Column, address.Row))
        out["invalid"][sheet] = sorted(marked)
    names = doc.NamedRanges
    out["names"] = {n: names.getByName(n).getContent() for n in names.getElementNames()}
    return out


soffice, path, workdir, pdf, probe = sys.argv[1:6]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
accept = "socket,host=127.0.0.1,port=%d;urp;" % port
profile = uno.systemPathToFileUrl(os.path.join(workdir, "profile"))
proc = subprocess.Popen([soffice, "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
                         "--accept=" + accept, "-env:UserInstallation=" + profile],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
desktop = None
try:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            ctx = resolver.resolve("uno:" + accept + "StarOffice.ComponentContext")
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.5)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0,
                                       (prop("Hidden", True), prop("MacroExecutionMode", 0)))
    libraries = doc.BasicLibraries
    result = {"libraries": {}, "sheets": list(doc.Sheets.getElementNames())}
    for name in libraries.getElementNames():
        libraries.loadLibrary(name)
        library = libraries.getByName(name)
        result["libraries"][name] = {module: library.getByName(module) for module in library.getElementNames()}
    doc.calculateAll()
    if probe:
        result["probe"] = validity(doc, json.loads(probe))
    if pdf:
        doc.storeToURL(uno.systemPathToFileUrl(pdf), (prop("FilterName", "calc_pdf_Export"),))
    doc.close(True)
    print(json.dumps(result))
finally:
    try:
        if desktop is not None:
            desktop.terminate()
    except Exception:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
'''


def open_in_libreoffice(book: Path, workdir: Path, pdf: Path | None = None,
                        probe: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open ``book`` in LibreOffice: its VBA libraries ({library: {module: code}}) and sheet names.

    ``probe`` checks data validation: ``read`` [(sheet, "F2"), ...] gives ``probe.validations`` (type,
    formula1, alert style, messages) of those cells; ``type`` [(sheet, "F2", text), ...] puts text in cells;
    ``check`` [sheet, ...] gives ``probe.invalid``: {sheet: cells whose value their validation refuses};
    ``probe.names`` holds the defined names. Skips the test when LibreOffice or Python-UNO is missing.
    """
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not on PATH")
    if not os.access(SYSTEM_PYTHON, os.X_OK) or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} cannot import uno (Debian package python3-uno): cannot drive LibreOffice")
    script = workdir / "lo_uno.py"
    script.write_text(UNO_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen([SYSTEM_PYTHON, str(script), SOFFICE, str(book), str(workdir), str(pdf or ""),
                             json.dumps(probe) if probe else ""],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"LibreOffice did not answer in time: {err}")
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
