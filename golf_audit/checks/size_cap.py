"""GA-SIZE-001: the artifact fits in 16,000,000 bytes.

Rationale: the challenge counts code bytes plus compressed model bytes, in decimal bytes
(16 MB = 16,000,000, not 16 MiB). Real leaderboard entries have logged totals above the cap.
The check fails when any seed's logged total, or the total recomputed from the files, exceeds
the cap.

Example: a log line ``Total submission size int6+lzma: 16004211 bytes`` fails (4,211 bytes over).

Fix: shrink the model (lower-bit quantization, fewer parameters) or the code (minify, drop
dead code) until every seed's total is ≤ 16,000,000 bytes, and re-run.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SIZE-001",
    title="Artifact ≤ 16,000,000 bytes",
    severity=Severity.CRITICAL,
    rule=rules.ARTIFACT_CAP,
    remediation="Shrink the model or the code until every seed's total is ≤ 16,000,000 bytes.",
    family="size",
    run=collect.from_results(collect.artifact_checks),
    doc=__doc__,
)
