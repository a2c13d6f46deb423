"""Drive LibreOffice headless through Python-UNO (Debian's /usr/bin/python3), for tests.

One script opens a workbook hidden, reads its VBA libraries, recalculates and,
when asked, exports it to PDF; it prints JSON and always shuts LibreOffice down.
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


soffice, path, workdir, pdf = sys.argv[1:5]
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


def open_in_libreoffice(book: Path, workdir: Path, pdf: Path | None = None) -> dict[str, Any]:
    """Open ``book`` in LibreOffice: its VBA libraries ({library: {module: code}}) and sheet names.

    Skips the test when LibreOffice or Python-UNO is missing.
    """
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not on PATH")
    if not os.access(SYSTEM_PYTHON, os.X_OK) or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} cannot import uno (Debian package python3-uno): cannot drive LibreOffice")
    script = workdir / "lo_uno.py"
    script.write_text(UNO_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen([SYSTEM_PYTHON, str(script), SOFFICE, str(book), str(workdir), str(pdf or "")],
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
