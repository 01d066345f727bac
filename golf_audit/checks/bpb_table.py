"""GA-BPB-001: a byte table the folder ships matches its tokenizer.

Rationale: bpb divides by the bytes the scored tokens stand for. A submission that ships its
own per-token byte table (a ``.npz`` with ``base_bytes``, ``has_leading_space``,
``is_boundary_token``) puts the denominator in a data file no code review reads. Each entry is
compared with the canonical bytes of its token: byte pieces 1; control, unknown and unused ids
0; other pieces the UTF-8 length of the piece without a leading ``▁`` (plus one space byte
unless the previous token is a boundary); operator pieces of a text transform (CaseOps,
TokenMonster capcode) 0. Every disagreement is named by its bug class (byte-token size,
leading-space double count, missing ``▁``, unused ids, transformed bytes). The tokenizer is the
one the folder ships (SentencePiece ``.model`` or TokenMonster ``.vocab``).

Example: the Scylla record (PR #1184) shipped ``candidate.meta.npz`` counting its 27
byte-fallback tokens as 3 bytes each (``len('\\ufffd'.encode())``) instead of 1: fail, byte-token
size. The community audit measured +4.13 % bytes on the validation set; the record was removed.

Fix: build the table from the tokenizer at run time with the canonical rule, or regenerate
the file from it; prove it with ``golf-audit bpb-proof``.
"""

from ..bpb import RULE
from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-BPB-001",
    title="Shipped byte table matches the tokenizer",
    severity=Severity.CRITICAL,
    rule=RULE,
    remediation="Derive the per-token bytes from the tokenizer with the canonical rule; prove it with golf-audit bpb-proof.",
    family="bytes",
    run=collect.from_bpb("shipped"),
    doc=__doc__,
)
