"""GA-STATIC-004: an n-gram or cache key that includes the predicted token.

Rationale: a hashed n-gram cache whose key includes the target being predicted looks the
answer up (condition 1).

Example: ``key = hash((x[t-1], x[t], y[t]))`` used to boost the probability of ``y[t]``.

Fix: key the cache on context tokens ``x[..t]`` only.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-004",
    title="No cache key that includes the predicted token",
    severity=Severity.CRITICAL,
    rule=rules.COND_1,
    remediation="Key n-gram caches on context tokens only.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
