"""GA-BPB-002: the bpb divides by the bytes of the scored text, not a constant or transformed bytes.

Rationale: bpb = Σ NLL / ln 2 / Σ bytes of the scored targets. Two shortcuts decide rulings:
a fixed bytes-per-token constant (the denominator no longer depends on the text scored), and,
with a text transform applied before tokenizing (CaseOps: case operators as private-use
characters), dividing by the bytes of the transformed pieces instead of the raw bytes, which
the maintainers require from a raw-byte sidecar. Read by ast: a bpb assignment dividing by a
name bound once to a number (other than ln 2), and, with a transform, a function computing a
bpb from a per-token table with no sidecar in sight (helpers that receive the byte count are
judged through their callers). A script that needs a newer Python to parse: not-run.

Example: ``BYTES_PER_TOKEN = 2.7523; raw_bpb = raw_val_loss / math.log(2) / BYTES_PER_TOKEN``
(PR #2009): fail. A CaseOps mixer whose ``cond_bpb = total_mix_nll / total_canonical_bytes /
LOG2`` sums transformed-piece bytes (PR #2138, 164,594,398 bytes instead of the sidecar's
151,074,309): fail. The merged CaseOps records, which take ``val_bytes`` from the sidecar when
``CASEOPS_ENABLED=1``: pass.

Fix: count the bytes of every scored target (the canonical per-token rule, or the raw-byte
sidecar with a transformed tokenizer) and divide by their sum.
"""

from ..bpb import RULE
from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-BPB-002",
    title="BPB denominator is the text's byte count",
    severity=Severity.CRITICAL,
    rule=RULE,
    remediation="Divide by the sum of the scored targets' bytes; with a transformed tokenizer, by the raw-byte sidecar.",
    family="bytes",
    run=collect.from_bpb("denominator"),
    doc=__doc__,
)
