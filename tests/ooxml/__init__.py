"""An OOXML package validator for the tests: the ISO/IEC 29500 schemas plus the rules Excel enforces.

``validate(path_or_bytes)`` returns human-readable problems, empty when Excel would open the package
without a repair prompt as far as these checks can tell. ``sdk_validate(path_or_bytes)`` returns what
Microsoft's Open XML SDK validator finds (run under Node; ``sdk_unavailable()`` says why it cannot run).
README.md lists the checks.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from . import opc, sml, xsd
from .package import Package, read_source
from .sdk import sdk_unavailable, sdk_validate
from .text import decode_text, encode_text

__all__ = ["decode_text", "encode_text", "schemas_available", "sdk_unavailable", "sdk_validate", "validate"]


def schemas_available() -> bool:
    """Whether the XSD files are on this machine (without them only the non-schema rules run)."""
    return xsd.schema_dir() is not None


def validate(src: str | Path | bytes, *, name: str | None = None, schemas: bool = True) -> list[str]:
    """Problems in the SpreadsheetML package at ``src`` (a path, or the package's bytes).

    ``name`` is the file name to judge the extension by when ``src`` is bytes (``.xlsm`` must be
    macro-enabled). Messages starting with ``warning:`` are literal-looking ``_xHHHH_`` text.
    """
    data, display = read_source(src)
    display = name or display
    problems: list[str] = []

    def problem(part: str, message: str) -> None:
        problems.append(f"{part}: {message}")

    try:
        pkg = Package(data, display, problem)
    except zipfile.BadZipFile as exc:
        return [f"{display}: not a zip package ({exc})"]
    opc.check_parts(pkg)
    opc.check_relationships(pkg)
    opc.check_schemas(pkg, xsd.schema() if schemas else None)
    sml.check(pkg)
    return list(dict.fromkeys(problems))
