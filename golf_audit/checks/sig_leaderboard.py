"""GA-SIG-002: the leaderboard significance rule (Welch, p < 0.25, no margin).

Rationale: late in the challenge the maintainers ranked entries with a looser rule: a
one-sided Welch t-test of the candidate's per-seed val_bpb against the previous leader's,
with no margin, at p < 0.25. Needs ``--baseline`` (in ``--recursive`` mode the previous
leader of the tree is used).

Example: candidate 1.0611 ± 0.0004 (3 seeds) vs leader 1.0614 ± 0.0005 (3 seeds): p ≈ 0.2,
pass.

Fix: run more seeds (the std shrinks) or improve the score.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SIG-002",
    title="Leaderboard rule: Welch p < 0.25 vs previous leader",
    severity=Severity.ERROR,
    rule=rules.SIG_LEADERBOARD,
    remediation="Run more seeds or improve the score until Welch p < 0.25 against the leader.",
    family="significance",
    run=collect.from_significance("leaderboard"),
    doc=__doc__,
)
