"""perseat-addin: per-user (per-seat) billing for managed service providers.

The engine is pure Python (numpy/pandas); Excel functions and ribbon macros
are thin wrappers over it, and so is the ``perseat`` command line.
"""

from perseat_addin.engine.invoicing import Run, invoice_run
from perseat_addin.errors import InputProblems, PerseatError, Problem, WorkbookError
from perseat_addin.model import Invoice, Line
from perseat_addin.version import __version__
from perseat_addin.workbook.load import load

__all__ = ["InputProblems", "Invoice", "Line", "PerseatError", "Problem", "Run", "WorkbookError",
           "__version__", "invoice_run", "load"]
