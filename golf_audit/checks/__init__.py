"""Checks: one module per stable id; the module docstring is the check's documentation.

``registry.all_checks()`` lists them in report order; ``Check.evaluate(ctx)`` runs one on an
``AuditContext`` and never lets a crash read as a pass.
"""

from .base import AuditContext, AuditOptions, Check, NotApplicable, NotRun, Outcome
from .registry import CHECKS, UnknownCheck, all_checks, get_check, select

__all__ = [
    "AuditContext", "AuditOptions", "Check", "NotApplicable", "NotRun", "Outcome",
    "CHECKS", "UnknownCheck", "all_checks", "get_check", "select",
]
