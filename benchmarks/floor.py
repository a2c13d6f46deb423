"""The floor of a command on this machine: reading every cell of its workbook, and writing its output bytes.

``read_floor`` reads every cell of every sheet with each reader installed here (fastexcel into Arrow,
polars' calamine engine when polars is installed, python-calamine into Python lists) and keeps the
fastest; ``write_floor`` writes the same number of bytes a command writes (its output files' total
size) to files in a folder. A command's time over the sum of the two is its distance from the floor.

``process_floor`` is the same work done the way a command does it, as a process of its own: Python starts,
imports the fastest reader, reads every cell of the file and writes the bytes (best of ``repeat``). A
command pays that start-up too, so its time over this floor is the distance a faster program could close;
the in-process floor leaves the start-up out and is the stricter of the two.
Run (from the project folder): python -m benchmarks.floor WORKBOOK [--outputs DIR | --write-bytes N]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20


def _fastexcel(data: bytes) -> int:
    """Every sheet into Arrow through fastexcel; the number of cells read."""
    import fastexcel

    logging.getLogger("fastexcel").setLevel(logging.ERROR)  # its notes about blank columns, as the reader does
    reader = fastexcel.read_excel(data)
    cells = 0
    for name in reader.sheet_names:
        batch = reader.load_sheet(name, header_row=None, eager=True)
        cells += batch.num_rows * batch.num_columns
    return cells


def _polars(data: bytes) -> int:
    """Every sheet through polars' calamine engine."""
    import polars as pl

    frames = pl.read_excel(io.BytesIO(data), sheet_id=0, engine="calamine", has_header=False)
    return sum(f.height * f.width for f in frames.values())


def _calamine(data: bytes) -> int:
    """Every sheet into Python lists through python-calamine."""
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    cells = 0
    for name in wb.sheet_names:
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        cells += sum(len(r) for r in rows)
    return cells


READERS: dict[str, Callable[[bytes], int]] = {"fastexcel": _fastexcel, "polars": _polars,
                                              "python-calamine": _calamine}


def _best(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return times, result


def read_floor(workbook: str | Path, repeat: int = 3) -> dict[str, Any]:
    """Seconds (best of ``repeat``) to read every cell of every sheet with the fastest reader installed."""
    t0 = time.perf_counter()
    data = Path(workbook).read_bytes()
    t_file = time.perf_counter() - t0
    by: dict[str, Any] = {}
    for name, read in READERS.items():
        try:
            times, cells = _best(lambda read=read: read(data), repeat)  # type: ignore[misc]
        except ImportError:
            by[name] = {"installed": False}
            continue
        by[name] = {"seconds_best": round(min(times), 3), "seconds_all": [round(t, 3) for t in times],
                    "cells": cells}
    fastest = min((n for n in by if "seconds_best" in by[n]), key=lambda n: by[n]["seconds_best"])
    return {"workbook": str(workbook), "bytes": len(data), "reader": fastest,
            "seconds": round(by[fastest]["seconds_best"] + t_file, 3), "file_read_s": round(t_file, 3),
            "readers": by}


def _write(where: Path, nbytes: int, files: int, block: bytes) -> None:
    """``nbytes`` bytes of ``block`` over ``files`` files in ``where``, each closed."""
    per = -(-nbytes // max(files, 1))
    left = nbytes
    for k in range(max(files, 1)):
        size = min(per, left)
        left -= size
        with open(where / f"floor-{k}.bin", "wb") as f:
            while size > 0:
                f.write(block[:min(size, _BLOCK)])
                size -= _BLOCK


def write_floor(nbytes: int, folder: str | Path | None = None, files: int = 1, repeat: int = 3) -> dict[str, Any]:
    """Seconds (best of ``repeat``) to write ``nbytes`` bytes, split over ``files`` files, into ``folder``
    (a temporary folder when None) and close them."""
    block = os.urandom(_BLOCK)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        times, _ = _best(lambda: _write(Path(tmp), nbytes, files, block), repeat)
    return {"bytes": nbytes, "files": files, "seconds": round(min(times), 3),
            "seconds_all": [round(t, 3) for t in times]}


def process_floor(workbook: str | Path, reader: str, nbytes: int = 0, files: int = 1,
                  repeat: int = 3) -> dict[str, Any]:
    """Seconds (best of ``repeat``) of a process that starts Python, imports ``reader``, reads every cell of
    ``workbook`` and writes ``nbytes`` bytes over ``files`` files: the floor of a command run as a process."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmarks.floor", str(Path(workbook).resolve()), "--once", reader,
               "--write-bytes", str(nbytes), "--files", str(files), "--into", tmp]
        for _ in range(repeat):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if done.returncode:  # (the readers' own notes on stderr are kept out of a run that succeeds)
                raise SystemExit(f"the floor process failed (exit {done.returncode}): {done.stderr.strip()}")
    return {"reader": reader, "bytes_written": nbytes, "seconds": round(min(times), 3),
            "seconds_all": [round(t, 3) for t in times]}


def output_size(folder: str | Path) -> tuple[int, int]:
    """Total bytes and number of files under ``folder``."""
    sizes = [p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()]
    return sum(sizes), len(sizes)


def floor(workbook: str | Path, out_bytes: int = 0, out_files: int = 1, repeat: int = 3) -> dict[str, Any]:
    """The read floor of ``workbook`` plus the write floor of ``out_bytes`` bytes: the command's floor; and the
    same work as a process of its own (``process_floor``)."""
    read = read_floor(workbook, repeat)
    write = write_floor(out_bytes, files=out_files, repeat=repeat) if out_bytes else {"bytes": 0, "seconds": 0.0}
    process = process_floor(workbook, read["reader"], out_bytes, out_files, repeat)
    return {"benchmark": "floor", "read": read, "write": write, "process": process,
            "floor_seconds": round(read["seconds"] + write["seconds"], 3),
            "process_floor_seconds": process["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workbook")
    ap.add_argument("--outputs", metavar="DIR", help="a folder of a command's outputs: write as many bytes")
    ap.add_argument("--write-bytes", type=int, default=0, metavar="N")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--once", metavar="READER", choices=READERS, help=argparse.SUPPRESS)
    ap.add_argument("--files", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--into", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.once:  # one run of process_floor: read every cell with this reader, write the bytes, exit
        READERS[args.once](Path(args.workbook).read_bytes())
        if args.write_bytes:
            _write(Path(args.into or "."), args.write_bytes, args.files, os.urandom(_BLOCK))
        return
    nbytes, files = args.write_bytes, 1
    if args.outputs:
        nbytes, files = output_size(args.outputs)
    print(json.dumps(floor(args.workbook, nbytes, files, args.repeat)))


if __name__ == "__main__":
    main()
