"""GA-STATIC-003: adaptation on validation tokens before they are scored ("pre-quant TTT").

Rationale: condition 3 allows adaptation only on tokens already scored. Training on the
validation stream (or on a chunk) before scoring it lets the model memorize its targets.

Example: a TTT loop that calls ``optimizer.step()`` on ``val_tokens`` and only afterwards runs
``eval_val``.

Fix: score first, then train on the scored chunk.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-003",
    title="No adaptation on validation tokens before scoring them",
    severity=Severity.CRITICAL,
    rule=rules.COND_3,
    remediation="Score each chunk under no-grad first, then train on it (score-first TTT).",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
