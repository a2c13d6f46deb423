"""The benchmarks' floor (benchmarks/floor.py): what it reads and writes, in process and as a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.floor import READERS, floor, output_size

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "workbook_template.xlsm"


def test_every_installed_reader_reads_every_cell_of_the_template() -> None:
    counts = set()
    for read in READERS.values():
        try:
            counts.add(read(TEMPLATE.read_bytes()))
        except ImportError:
            continue
    assert len(counts) == 1 and counts.pop() > 100  # each reader counts the same cells


def test_the_floor_as_a_process_writes_the_bytes_over_the_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "benchmarks.floor", str(TEMPLATE), "--once", "fastexcel",
                    "--write-bytes", "3000001", "--files", "3", "--into", str(tmp_path)], check=True, cwd=ROOT)
    assert output_size(tmp_path) == (3_000_001, 3)


def test_the_floor_names_both_floors() -> None:
    measured = floor(TEMPLATE, out_bytes=1000, out_files=2, repeat=1)
    assert measured["read"]["reader"] == measured["process"]["reader"]
    assert measured["process"]["bytes_written"] == 1000
    # a process starts Python and imports its reader before it reads: never under the in-process read
    assert measured["process_floor_seconds"] > measured["read"]["seconds"] > 0
