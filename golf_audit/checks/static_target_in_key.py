"""GA-STATIC-004: a table or cache read with a key computed from the predicted token.

Rationale: condition 2 requires a full distribution over the vocabulary, fixed before the
realized token is known. A count table, n-gram cache or hash bucket looked up with a key that
includes the target (``full_counts[o][hash(ctx, y)]``, ``counts.get(target)``) yields a number
for the realized target only: blended into its probability it reweights the correct token
without renormalizing the rest (the maintainers' ruling on the n-gram PRs). The check follows
the target through assignments and through helpers that return a key built from it, reads
attribute tables and nested subscripts (``self.full_counts[o][k]``), ignores a table's own
update (``counts[y] = counts.get(y, 0) + 1``), tables the script normalizes over the
vocabulary (an add-one or softmax table read at the target is a proper distribution), and
code the scoring functions never reach (training-time loss weights). Each finding names the
line of the lookup itself.

Example: ``full_c = self.full_counts[oi][full_key]`` with ``full_key = hash(ctx) ^ (y * prime)``.

Fix: score the target from a full distribution: key tables on context tokens only, and mix
whole rows in probability space (renormalized) before reading the target's probability.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-004",
    title="No table read with a key built from the predicted token",
    severity=Severity.CRITICAL,
    rule=rules.COND_2,
    remediation="Key tables on context tokens only and mix whole normalized rows before reading the target.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
