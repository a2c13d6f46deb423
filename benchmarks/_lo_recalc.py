"""Load an .xlsx into a running headless LibreOffice, recalculate it, report JSON.

Helper for ``spreadsheet_way.py``.  It must run under Debian's ``/usr/bin/python3``
(the interpreter that has ``python3-uno``), not the project's Python.

It connects over a URP socket to a ``soffice`` the caller already started,
loads the workbook hidden (with "recalculate on load" forced to *never*, so the
load time does not include a recalculation), times ``calculateAll()`` separately,
reads the computed per-client figures back from the ``Clients`` sheet, reads the
peak resident memory (``VmHWM``) of the ``soffice.bin`` process, closes the
document, optionally terminates LibreOffice, and prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException


def _prop(name: str, value: Any) -> PropertyValue:
    """Build a UNO ``PropertyValue``."""
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def connect(port: int, timeout: float) -> Any:
    """Return the remote component context, retrying until ``timeout`` seconds."""
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    url = f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resolver.resolve(url)
        except NoConnectException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def set_never_recalc_on_load(ctx: Any) -> None:
    """Set Calc's OOXML/ODF "recalculation on file load" option to *never* (1)."""
    provider = ctx.ServiceManager.createInstanceWithContext("com.sun.star.configuration.ConfigurationProvider", ctx)
    access = provider.createInstanceWithArguments(
        "com.sun.star.configuration.ConfigurationUpdateAccess",
        (_prop("nodepath", "/org.openoffice.Office.Calc/Formula/Load"),),
    )
    access.setPropertyValue("OOXMLRecalcMode", 1)
    access.setPropertyValue("ODFRecalcMode", 1)
    access.commitChanges()


def _children(pid: int) -> list[int]:
    """Return the direct child pids of ``pid`` (scans ``/proc``)."""
    kids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Field 4 (ppid) comes after the parenthesised command name.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


def find_soffice_bin(root_pid: int) -> int | None:
    """Return the pid of the ``soffice.bin`` process at or below ``root_pid``."""
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/comm", encoding="ascii") as fh:
                if fh.read().strip() == "soffice.bin":
                    return pid
        except OSError:
            continue
        stack.extend(_children(pid))
    return None


def proc_memory_kib(pid: int) -> dict[str, int]:
    """Return ``VmHWM`` and ``VmRSS`` (KiB) of ``pid`` from ``/proc/PID/status``."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0])
    return out


def run(path: str, port: int, root_pid: int, clients: int, terminate: bool) -> dict[str, Any]:
    """Load, recalculate and read back ``path``; return the measurements."""
    ctx = connect(port, 60.0)
    smgr = ctx.ServiceManager
    desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    set_never_recalc_on_load(ctx)

    url = uno.systemPathToFileUrl(os.path.abspath(path))
    t0 = time.perf_counter()
    doc = desktop.loadComponentFromURL(url, "_blank", 0, (_prop("Hidden", True),))
    load_s = time.perf_counter() - t0
    if doc is None:
        raise RuntimeError(f"LibreOffice could not load {path}")

    t1 = time.perf_counter()
    doc.calculateAll()
    recalc_s = time.perf_counter() - t1

    sheet = doc.Sheets.getByName("Clients")
    last = clients + 1
    rows = sheet.getCellRangeByName(f"A2:F{last}").getDataArray()
    total_cell = sheet.getCellRangeByName(f"F{last + 1}").getValue()

    bin_pid = find_soffice_bin(root_pid)
    mem = proc_memory_kib(bin_pid) if bin_pid is not None else {}
    version = _lo_version(ctx)

    doc.close(True)
    if terminate:
        # The bridge may die together with the process while answering.
        with contextlib.suppress(Exception):
            desktop.terminate()

    return {
        "load_s": load_s,
        "recalc_s": recalc_s,
        "client_names": [str(r[0]) for r in rows],
        "billable_users": [float(r[3]) for r in rows],
        "monthly_charge": [float(r[5]) for r in rows],
        "sheet_total": float(total_cell),
        "soffice_bin_pid": bin_pid,
        "vm_hwm_kib": mem.get("VmHWM"),
        "vm_rss_kib": mem.get("VmRSS"),
        "lo_version": version,
    }


def _lo_version(ctx: Any) -> str:
    """Return the LibreOffice product version string (best effort)."""
    try:
        provider = ctx.ServiceManager.createInstanceWithContext("com.sun.star.configuration.ConfigurationProvider", ctx)
        access = provider.createInstanceWithArguments(
            "com.sun.star.configuration.ConfigurationAccess",
            (_prop("nodepath", "/org.openoffice.Setup/Product"),),
        )
        return str(access.getByName("ooSetupVersionAboutBox"))
    except Exception:  # informational only
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("file")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="pid of the launched soffice")
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--terminate", action="store_true", help="terminate LibreOffice after")
    args = ap.parse_args(argv)
    result = run(args.file, args.port, args.pid, args.clients, args.terminate)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
