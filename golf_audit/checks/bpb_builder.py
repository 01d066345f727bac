"""GA-BPB-003: the byte tables the script's own code builds are exact (run in the sandbox).

Rationale: most scripts build their per-token byte tables at run time from the tokenizer. The
builder (the function looping over ``is_byte``/``id_to_piece``, or the loader choosing
between a table file and the tokenizer) is extracted from the script by ast with what it
needs — not the whole training script — and run in the OS sandbox on the folder's tokenizer
and on golf-audit's probe tokenizer (SentencePiece with byte pieces, control, user-defined and
unknown pieces, and padding ids), so its logic is checked even where the folder's tokenizer is
not at hand. Each table is compared token by token with the canonical bytes (see GA-BPB-001)
and on a real text (CPython's ``pydoc_data.topics``): the bytes it counts against the
canonical count, the bpb inflation, and the tokens decoded back by the tokenizer's own
detokenizer. Slow: runs only with ``--dynamic``.

Example: a builder that keeps ``len(piece.encode())`` for a ``▁``-prefixed piece and also sets
``has_leading_space`` counts every word-initial space twice: fail, leading-space double count,
with the bytes it adds on the text.

Fix: strip the ``▁`` before measuring the piece, count byte pieces as 1 and control/unknown/
unused ids as 0 (boundaries).
"""

from ..bpb import RULE
from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-BPB-003",
    title="Script-built byte tables are exact",
    severity=Severity.CRITICAL,
    rule=RULE,
    remediation="Build the table with the canonical rule; prove it with golf-audit bpb-proof.",
    family="bytes",
    run=collect.from_bpb("builder"),
    doc=__doc__,
    dynamic=True,
)
