"""GA-STATIC-007: environment hyperparameters defined but never used.

Rationale: the README's command line sets env vars reviewers trust; a declared but unused
hyperparameter (e.g. ``SLOT_ENABLED`` that no code reads) means the command does not
describe what runs.

Example: ``slot_steps = int(os.environ.get("SLOT_STEPS", 16))`` with no use of ``slot_steps``.

Fix: delete the unused hyperparameter, or use it.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-007",
    title="Every env hyperparameter is used",
    severity=Severity.WARNING,
    rule=rules.HYGIENE,
    remediation="Remove hyperparameters the script declares but never reads, or wire them in.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
