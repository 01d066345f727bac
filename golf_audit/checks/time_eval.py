"""GA-TIME-002: evaluation stays within its separate 600 s.

Rationale: evaluation (roundtrip, sliding window, TTT, SLOT) has its own 600 s budget. The
eval times the logs print are summed per seed and compared with the cap.

Example: sliding window 95 s + SLOT 540 s = 635 s fails.

Fix: reduce eval-time adaptation (fewer SLOT/TTT steps, larger stride) until it fits.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-TIME-002",
    title="Evaluation ≤ 600 s",
    severity=Severity.ERROR,
    rule=rules.EVAL_TIME,
    remediation="Make the evaluation (including TTT/SLOT) fit in 600 s.",
    family="time",
    run=collect.from_results(collect.time_checks),
    doc=__doc__,
)
