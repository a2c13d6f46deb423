"""perseat-addin: per-user (per-seat) billing for managed service providers.

The engine is pure Python (numpy/pandas); Excel functions and ribbon macros
are thin wrappers over it, and so is the ``perseat`` command line.

Importing the package is cheap: the engine and the workbook loader (and with them pandas) are imported the
first time one of their names is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from perseat_addin.errors import InputProblems, PerseatError, Problem, WorkbookError
from perseat_addin.version import __version__

if TYPE_CHECKING:
    from perseat_addin.engine.invoicing import Run, invoice_run
    from perseat_addin.model import Invoice, Line
    from perseat_addin.workbook.load import load

__all__ = ["InputProblems", "Invoice", "Line", "PerseatError", "Problem", "Run", "WorkbookError",
           "__version__", "invoice_run", "load"]

_LAZY = {"Run": "perseat_addin.engine.invoicing", "invoice_run": "perseat_addin.engine.invoicing",
         "Invoice": "perseat_addin.model", "Line": "perseat_addin.model", "load": "perseat_addin.workbook.load"}


def __getattr__(name: str) -> Any:
    """The engine's names, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perseat_addin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
