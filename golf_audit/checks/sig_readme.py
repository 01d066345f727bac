"""GA-SIG-001: the README significance rule (≥ 0.005 nats at p < 0.01).

Rationale: the challenge README asks a new record to beat the SOTA by at least 0.005 nats,
shown over seeds at p < 0.01. The margin is converted to bpb with the candidate's own
bpb/loss ratio (0.005 nats ≈ 0.00295 bpb on sp1024), then a one-sided one-sample t-test of
the candidate's seeds against (baseline mean − margin) is run, plus a one-sided Welch test
when the baseline's seeds are known. Needs ``--baseline``.

Example: 3 seeds at 1.2064 ± 0.0007 bpb vs a baseline of 1.2244: t = 31.4, p = 0.0005, pass.

Fix: run more seeds, or improve the score until the margin is met at p < 0.01.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SIG-001",
    title="README rule: ≥ 0.005 nats at p < 0.01",
    severity=Severity.WARNING,
    rule=rules.SIG_README,
    remediation="Run more seeds or improve the score until the 0.005-nat margin holds at p < 0.01.",
    family="significance",
    run=collect.from_significance("readme"),
    doc=__doc__,
)
