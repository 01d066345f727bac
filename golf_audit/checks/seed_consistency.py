"""GA-SEED-001: the seeds are what they claim to be.

Rationale: real submissions reported the best k of n seeds, shipped logs whose own seed line
differs from the claimed seed, or repeated a seed. Each of these inflates the evidence. The
records reader cross-checks submission.json, file names and each log's ``seed:`` line.

Example: ``train_seed42.log`` whose log prints ``seed:1337`` warns; two logs with seed 1337
warn.

Fix: ship one log per claimed seed, every seed run, and distinct seeds.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SEED-001",
    title="Seeds consistent (logs vs claims, no repeats)",
    severity=Severity.WARNING,
    rule=rules.SEEDS,
    remediation="Ship one log per claimed seed, report every seed run, use distinct seeds.",
    family="seeds",
    run=collect.from_records,
    doc=__doc__,
)
