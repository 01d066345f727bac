"""GA-BPB-004: with a transformed tokenizer, the folder's raw-byte sidecar builder is exact.

Rationale: a reversible text transform before tokenizing (CaseOps: TITLE/ALLCAPS/CAPNEXT/ESC
operators as private-use characters) is legal only when the bpb divides by the bytes of the
*raw* text, which the records take from a per-token sidecar built at data-prep time. The
folder's own sidecar builder (the function of the original and the transformed text in its
data-prep script) and its transform are extracted by ast and run in the OS sandbox on real
text (CPython's ``pydoc_data.topics`` in FineWeb-sized documents); the counts must sum to the
raw UTF-8 bytes of each document. The sidecar data itself is not in the folder: this checks
the code that builds it. Slow: runs only with ``--dynamic``.

Example: a builder that falls back to ``len(span.encode())`` when decoding a prefix that ends
on an operator fails, counts each operator piece as 3 bytes: "The cat sat" gives 14 bytes for
11: fail, with the bpb understatement it implies.

Fix: count each piece's original bytes with the transform's own inverse (operators 0), and
check the sum against the raw text.
"""

from ..bpb import RULE
from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-BPB-004",
    title="Raw-byte sidecar builder is exact",
    severity=Severity.ERROR,
    rule=RULE,
    remediation="Build the sidecar from each piece's original bytes (operators 0); check Σ = raw bytes per document.",
    family="bytes",
    run=collect.from_bpb("sidecar"),
    doc=__doc__,
    dynamic=True,
)
