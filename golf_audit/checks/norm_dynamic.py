"""GA-NORM-001: the scored distribution sums to 1.

Rationale: validity condition 2 requires a full normalized distribution over the vocabulary
before scoring. Boosts added after the softmax without renormalizing (seen with n-gram
caches: rows summing to ≈ 277) make the NLL meaningless. Checked on log-prob rows captured
from the script's eval functions; runs only with ``--dynamic``.

Example: a row with Σp = 1.37 fails.

Fix: mix distributions in probability space and renormalize before taking the log.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-NORM-001",
    title="Scored distributions normalized (Σp = 1)",
    severity=Severity.CRITICAL,
    rule=rules.COND_2,
    remediation="Renormalize the mixed distribution before scoring.",
    family="dynamic",
    run=collect.from_dynamic("normalization"),
    doc=__doc__,
    dynamic=True,
)
