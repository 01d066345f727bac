"""GA-DOC-001: document k's scores do not depend on document k-1.

Rationale: an evaluation that claims document isolation (BOS-split varlen attention,
per-document TTT, a BOS-masked previous-token smear) must not carry state across a document
boundary. A future-token flip test cannot see such a dependence: it is on earlier tokens. The
cross-document flip test changes the last tokens of document k-1 (never the BOS that starts
document k) in the script's own eval, on a synthetic stream of BOS-led documents, and requires
every score of document k to stay bit-identical, except scores given after document k-1 was
scored (score-first adaptation on scored documents is allowed). A positive control (document
k-1's own last target moves) proves the change reached the eval. On a failure the audit names
the module where document k's activations first change. Scripts that read the stream as one
text make no such claim: not applicable. Runs only with ``--dynamic``.

Example: a SmearGate ``x[:, 1:] += g * x[:, :-1]`` without a BOS mask moves the score of the
next document's first position: fail.

Fix: zero every cross-position mix at BOS (``x[:, 1:] += g * x[:, :-1] * not_bos[:, 1:]``),
split attention at BOS, and reset per-document state at each document start.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-DOC-001",
    title="Document k's scores do not depend on document k-1",
    severity=Severity.CRITICAL,
    rule=rules.COND_1,
    remediation="Mask cross-position mixing at BOS and reset per-document state at each document start.",
    family="dynamic",
    run=collect.from_dynamic_check,
    doc=__doc__,
    dynamic=True,
)
