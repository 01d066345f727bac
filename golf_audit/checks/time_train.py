"""GA-TIME-001: training stays within 600 s.

Rationale: training is capped at 600 s of wall clock on 8×H100 SXM. The logs' final
``train_time`` (or ``stopping_early: wallclock_cap train_time:…ms``) is compared with the cap
for every seed.

Example: ``stopping_early: wallclock_cap train_time:600043ms`` passes (the cap check
happens between steps); a final ``train_time:641200ms`` fails.

Fix: set ``MAX_WALLCLOCK_SECONDS=600`` and make the script stop on it.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-TIME-001",
    title="Training ≤ 600 s",
    severity=Severity.ERROR,
    rule=rules.TRAIN_TIME,
    remediation="Cap training with MAX_WALLCLOCK_SECONDS=600 and stop on it.",
    family="time",
    run=collect.from_results(collect.time_checks),
    doc=__doc__,
)
