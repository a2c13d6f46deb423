"""Microsoft's Open XML SDK validator (``OpenXmlValidator``, file format version Microsoft 365), run under
Node from the npm package ``@ooxml-tools/validate`` (the SDK compiled to WebAssembly).

The package is installed by ``.ci/run`` (``npm ci`` in ``tests/ooxml/node/``, from the committed
package-lock.json; ``node_modules/`` is ignored by git). One Node process, started on first use and kept
for the test process, validates every package: start-up and the SDK's warm-up are paid once.

``sdk_validate(path_or_bytes)`` returns the SDK's messages as ``part: sdk Id: description (at xpath)``,
less the messages the SDK also gives on packages made the way Excel makes them (``KNOWN_MESSAGES``,
README.md). Without Node or the package it raises ``SdkUnavailable``; ``sdk_unavailable()`` tells why
beforehand, and ``sdk_required()`` whether this run must have it (``PERSEAT_REQUIRE_OOXML_SDK=1``, set by
``.ci/run``).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
RUNNER = NODE_DIR / "validate.mjs"
PACKAGE = NODE_DIR / "node_modules" / "@ooxml-tools" / "validate" / "package.json"
VERSION = "Microsoft365"
"""The SDK's ``FileFormatVersions`` to validate against: the Excel that opens the product's files."""
FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xltx": "xlsx", ".xltm": "xlsx", ".xlam": "xlsx"}
REQUIRE_ENV = "PERSEAT_REQUIRE_OOXML_SDK"
START_SECONDS = 120.0  # Node start-up and the WebAssembly runtime's
FILE_SECONDS = 300.0  # one package (the first one also pays the SDK's warm-up, about 5 s)
MAX_PER_PART = 20


class SdkUnavailable(RuntimeError):
    """Node or the npm package is not on this machine."""


_CHART = "http://schemas.openxmlformats.org/drawingml/2006/chart:"


@dataclass(frozen=True)
class Known:
    """A message the SDK also gives on packages made the way Excel makes them (README.md, "Open XML SDK").

    Each field is a regular expression the whole value must match; ``along`` is one the description of
    another message at the same part and path must match too (the pair is Excel's markup, one alone is not).
    """

    id: str
    part: str  # no leading slash
    xpath: str
    description: str
    why: str
    along: str = ""

    def matches(self, error: dict[str, Any], errors: list[dict[str, Any]]) -> bool:
        if not (error.get("id") == self.id and re.fullmatch(self.part, _part(error))
                and re.fullmatch(self.xpath, str(error.get("xpath", "")))
                and re.fullmatch(self.description, str(error.get("description", "")), re.DOTALL)):
            return False
        return not self.along or any(
            _part(e) == _part(error) and e.get("xpath") == error.get("xpath")
            and re.fullmatch(self.along, str(e.get("description", "")), re.DOTALL) for e in errors)


KNOWN_MESSAGES: tuple[Known, ...] = (
    Known(
        "Sch_UnexpectedElementContentExpectingComplex", r"xl/charts/chart\d+\.xml",
        r"/c:chartSpace\[1\]/c:chart\[1\]/c:plotArea\[1\]/c:stockChart\[\d+\]",
        re.escape("The element has unexpected child element '") + re.escape(_CHART)
        + r"(axId|hiLowLines|upDownBars|dropLines|dLbls)"
        + re.escape(f"'. List of possible elements expected: <{_CHART}ser>."),
        "a stock chart with fewer than 3 series: the schema asks for 3 or 4; Excel saves and opens one "
        "with 2, and with 1 on a secondary axis (Excel-made chart_stock02.xlsx; XlsxWriter writes the same)"),
    Known(
        "Sem_AttributeValueDataTypeDetailed", r"xl/worksheets/sheet\d+\.xml", r"/x:worksheet\[1\]/x:rowBreaks\[1\]",
        r"The attribute '(count|manualBreakCount)' has invalid value '1023'\. The MaxInclusive constraint "
        r"failed\. The value must be less than or equal to 1022\.",
        "1,023 manual row breaks: the SDK allows 1,022; Excel saves 1,023 (Excel-made page_breaks03.xlsx; "
        "XlsxWriter caps page breaks at that number)"),
    Known(
        "Sch_UndeclaredAttribute", r"xl/charts/chart\d+\.xml",
        r"/c:chartSpace\[1\]/c:chart\[1\]/c:extLst\[1\]/c:ext\[\d+\]",
        re.escape("The 'uri' attribute is not declared."),
        "a chart's 'show #N/A as an empty cell' (c16r3:dataDisplayOptions16 in the chart's extension list, "
        "Excel 2016 and later): the SDK 3.0 reads that extension with a wrong schema (Excel-made "
        "chart_blank07.xlsx; XlsxWriter's show_na_as_empty_cell writes the same)",
        along=r"The element has invalid child element 'http://schemas\.microsoft\.com/office/drawing/2017/03/chart:"
              r"dataDisplayOptions16'\..*"),
    Known(
        "Sch_InvalidElementContentExpectingComplex", r"xl/charts/chart\d+\.xml",
        r"/c:chartSpace\[1\]/c:chart\[1\]/c:extLst\[1\]/c:ext\[\d+\]",
        re.escape("The element has invalid child element 'http://schemas.microsoft.com/office/drawing/2017/03/chart:"
                  "dataDisplayOptions16'. List of possible elements expected: "
                  "<http://schemas.microsoft.com/office/drawing/2017/03/chart:dispNaAsBlank>."),
        "the same c16r3:dataDisplayOptions16 extension, its content"),
)
"""Messages left out of ``sdk_validate``: each seen on a file Excel saved and on the same package made by
XlsxWriter (tests/ooxml/controls.py makes them; test_sdk_validator.py checks each is still seen)."""


def sdk_required() -> bool:
    """Whether this run must validate with the SDK (CI): then a missing SDK is a failure, not a skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def sdk_unavailable() -> str | None:
    """Why the SDK cannot run here (None when it can): no ``node``, or the npm package not installed."""
    if shutil.which("node") is None:
        return "`node` is not on PATH (Debian: apt-get install nodejs npm; then .ci/run's npm ci step)"
    if not PACKAGE.is_file():
        return (f"the npm package @ooxml-tools/validate is not installed in {NODE_DIR} "
                f"(run: npm ci --prefix {NODE_DIR.relative_to(HERE.parents[1])}, as .ci/run does)")
    return None


def need_sdk() -> None:
    """For a test: skip it when the SDK cannot run here, or fail it when this run must have the SDK (CI)."""
    import pytest

    reason = sdk_unavailable()
    if reason is None:
        return
    message = f"Microsoft's Open XML SDK validator cannot run: {reason}"
    if sdk_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: this run must validate with it; .ci/run installs it)", pytrace=False)
    pytest.skip(message)


def _part(error: dict[str, Any]) -> str:
    return str(error.get("part") or "").lstrip("/")


def _message(error: dict[str, Any]) -> str:
    where = f" (at {error['xpath']})" if error.get("xpath") else ""
    return f"{_part(error) or '(package)'}: sdk {error.get('id')}: {error.get('description')}{where}"


class _Runner:
    """The one Node process: a JSON request per line in, a JSON answer per line out."""

    def __init__(self) -> None:
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - kept open while Node runs
        node = shutil.which("node") or "node"
        self.proc = subprocess.Popen([node, str(RUNNER)], cwd=NODE_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.fileno()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.out, selectors.EVENT_READ)
        self.buffer = b""
        if self._read(START_SECONDS) != {"ready": True}:
            raise RuntimeError("the SDK runner did not start")

    def _read(self, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise TimeoutError(f"the Open XML SDK gave no answer in {seconds:.0f} s")
            if self.selector.select(left):
                chunk = os.read(self.out, 1 << 16)
                if not chunk:
                    self.close()
                    self.stderr.seek(0)
                    raise RuntimeError("the Open XML SDK runner stopped: "
                                       + self.stderr.read().decode("utf-8", "replace")[-2000:])
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, path: Path, fmt: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"path": str(path.resolve()), "format": fmt, "version": VERSION}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._read(FILE_SECONDS)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.selector.close()
        self.stderr.close()


_runner: _Runner | None = None
_lock = threading.Lock()


def _close() -> None:
    if _runner is not None and _runner.alive():
        _runner.close()


atexit.register(_close)


def raw_messages(src: str | Path | bytes, *, name: str | None = None) -> list[dict[str, Any]]:
    """Every message the SDK gives on the package, unfiltered (``id``, ``description``, ``part``, ``xpath``).

    A package the SDK cannot open at all gives one message with the id ``Package``.
    """
    global _runner
    reason = sdk_unavailable()
    if reason is not None:
        raise SdkUnavailable(reason)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(src, bytes):
            path = Path(tmp) / (name or "package.xlsx")
            path.write_bytes(src)
        else:
            path = Path(src)
        fmt = FORMATS.get(Path(name or path.name).suffix.lower(), "xlsx")
        with _lock:
            if _runner is None or not _runner.alive():
                _runner = _Runner()
            answer = _runner.ask(path, fmt)
    if "failure" in answer:
        return [{"id": "Package", "description": f"the SDK could not open the package: {answer['failure']}",
                 "part": "", "xpath": ""}]
    errors: list[dict[str, Any]] = answer["errors"]
    return errors


def sdk_validate(src: str | Path | bytes, *, name: str | None = None) -> list[str]:
    """The Open XML SDK's messages on the package at ``src`` (a path, or bytes with ``name``), less
    ``KNOWN_MESSAGES``, at most ``MAX_PER_PART`` a part: empty when Microsoft's validator finds nothing in
    it that Excel would not write as well."""
    errors = raw_messages(src, name=name)
    kept = [e for e in errors if not any(k.matches(e, errors) for k in KNOWN_MESSAGES)]
    messages: list[str] = []
    counts: dict[str, int] = {}
    for e in kept:
        counts[_part(e)] = counts.get(_part(e), 0) + 1
        if counts[_part(e)] <= MAX_PER_PART:
            messages.append(_message(e))
    messages += [f"{part or '(package)'}: sdk: … and {n - MAX_PER_PART} more" for part, n in counts.items()
                 if n > MAX_PER_PART]
    return list(dict.fromkeys(messages))
