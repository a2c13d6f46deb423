"""perseat-addin: per-user (per-seat) billing for managed service providers.

The engine is pure Python (numpy/pandas); Excel functions and ribbon macros
are thin wrappers over it, and so is the ``perseat`` command line.
"""

from .errors import InputProblems, PerseatError, Problem, WorkbookError
from .invoicing import Invoice, Line, Run, invoice_run
from .load import load

__version__ = "0.1.0"

__all__ = ["InputProblems", "Invoice", "Line", "PerseatError", "Problem", "Run", "WorkbookError",
           "__version__", "invoice_run", "load"]
