"""GA-STATIC-009: a per-position prediction that exists only for some classes of the realized token.

Rationale: condition 2 requires the distribution that scores position i to be fixed before token
i is known. An online expert (an n-gram, a word-start or within-word model) that writes its hint
for position i only when token i itself is of some class (starts a word, is not a boundary) makes
*whether* position i is tilted, and by which hint, depend on the realized token: the tilted
probabilities of the other tokens are never a distribution the scorer committed to (the
maintainers' ruling on the word-start / within-word gates of the n-gram tilt PRs). The check reads
every loop over a token sequence (``for i, tok in enumerate(seq)``, ``for i in range(n)`` with
``tok = seq[i]``): a store ``out[i] = value`` whose value comes from the state, made *before* the
loop adds token i to that state (so ``out[i]`` predicts token i), under a test that reads token i
(directly or through names computed from it, including an earlier ``if <test>: continue``). A
loop that adds token i first and then writes ``out[i]`` is a prediction for token i+1 and is not
flagged. The finding names the line of the test. It runs on the script and on every local Python
module it imports.

Example: ``is_word_start = starts_new_word[tok]`` then ``if is_word_start: hint[i] = best[ctx]``,
with ``counts[(ctx, tok)] += 1`` after it.

Fix: decide whether a hint applies at position i, and which, from the context before i alone
(e.g. predict the class of the next token too, or tilt every position).
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-009",
    title="No per-position prediction gated on the realized token",
    severity=Severity.CRITICAL,
    rule=rules.COND_2,
    remediation="Decide whether (and which) hint applies at a position from the context alone, before the token "
                "there is known.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
