"""GA-COVER-001: the reported score covers every validation target exactly once.

Rationale: the leaderboard score is over the full validation set, each token scored once. PRs
scored a 3M-token subset, 20 random minibatches, or one rank's share and reported it as the
full set. The audit runs the script's own eval on a synthetic stream and reads, from the
scored set the capture reconstructed (the one that reproduces the function's own returned
loss), how many times each target was scored: gaps and re-scored targets are counted. A
stride-64 sliding loop re-scores the final positions from every window ending at the last
token: those tail duplicates are reported with their count and are not a violation. Static
support, which decides when no scoring call could be captured: validation windows drawn at
random offsets, and a fixed bytes-per-token denominator. Runs only with ``--dynamic``.

Example: ``for _ in range(20): x, y = get_batch(data_dir, "val", ...)`` with random offsets and
``BYTES_PER_TOKEN = 2.7523``: fail, 1,400 of 1,536 targets never scored.

Fix: iterate over the whole validation stream in order, sum loss, tokens and bytes over every
rank, and divide by the bytes of what was scored.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-COVER-001",
    title="Reported score covers every validation target exactly once",
    severity=Severity.CRITICAL,
    rule=rules.COND_4,
    remediation="Score every validation target exactly once (all ranks summed), with its own byte count.",
    family="dynamic",
    run=collect.from_dynamic_check,
    doc=__doc__,
    dynamic=True,
)
