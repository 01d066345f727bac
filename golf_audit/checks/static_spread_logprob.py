"""GA-STATIC-008: a realized token's log-probability spread evenly over its bytes.

Rationale: condition 2 requires, at every scored position, a full distribution over the scoring
alphabet fixed before the realized symbol is known. A byte-level mixer that takes the model's
log-probability of the realized token, divides it by that token's byte length (each byte gets
``lp / len``, typically through ``np.repeat(lp, lens)``) and exponentiates it into a per-byte
probability has a number for the realized byte only: the model never said how likely any other
next byte was, so mixing it (linearly, with a PPM or n-gram byte probability) is not a
normalized next-byte distribution (the maintainers' ruling on the byte-PPM mixer PRs). The
check follows the data flow inside each function: a division whose numerator comes from a
log-probability/NLL and whose denominator is the per-token byte length of the targets (a
byte/length table indexed by the target, not a total reduced by ``sum``), whose result reaches
an ``exp``. Ordinary bits-per-byte arithmetic (``loss_sum / byte_count``, ``nll / ln 2 / bytes``)
divides totals and is never exponentiated. The finding names the line of the division.

Example: ``nlp = rep_lp / rep_len`` with ``rep_len = np.repeat(piece_lens[tgt], piece_lens[tgt])``,
then ``p = lam * np.exp(nlp) + (1 - lam) * np.exp(ppm_lp)``.

Fix: mix a full next-byte distribution (the model's token distribution marginalized over the
byte prefixes it allows), fixed before the target byte is known, or score tokens, not bytes.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-008",
    title="No token log-probability spread over its bytes into a per-byte probability",
    severity=Severity.CRITICAL,
    rule=rules.COND_2,
    remediation="Mix a full next-byte distribution fixed before the target is known, not the realized token's "
                "log-probability divided by its byte length.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
