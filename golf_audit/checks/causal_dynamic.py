"""GA-CAUSAL-001: the script's own eval functions pass the flip test.

Rationale: validity conditions 1, 3 and 4 say a position's distribution may depend only on
earlier tokens, adaptation may use only scored tokens, and nothing is rescored. The flip
test runs the submission's own ``eval_val*`` functions on CPU at a tiny configuration in a
sandboxed child process, flips one token (stream flip and target flip) and requires every
earlier scored NLL to stay bit-identical. Slow: runs only with ``--dynamic``.

Example: SLOT with the optimizer's mask over the scored positions changes the NLL of every
other scored position when one target flips: fail (target channel).

Fix: fit eval-time parameters only on context (already-scored) positions, per window.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-CAUSAL-001",
    title="Eval functions causal under the flip test",
    severity=Severity.CRITICAL,
    rule=rules.COND_1,
    remediation="Adapt only on already-scored tokens, one window at a time; never on the scored targets.",
    family="dynamic",
    run=collect.from_dynamic("causality"),
    doc=__doc__,
    dynamic=True,
)
