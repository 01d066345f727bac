"""GA-FILES-001: the folder's submission files parse.

Rationale: every other records check reads submission.json and the train logs. A log that is
not UTF-8, is truncated or is not a train log at all, or a submission.json with missing or
mistyped keys, would otherwise just shrink the evidence silently: a check with fewer logs can
still pass. This check lists everything the reader skipped or could not find.

Example: ``train.log`` holding binary bytes, or ``"val_bpb": "abc"`` in submission.json, warns
with one evidence line each.

Fix: ship a complete submission.json and the unmodified train log of every seed.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check

CHECK = Check(
    id="GA-FILES-001",
    title="Submission files parse (nothing skipped)",
    severity=Severity.ERROR,
    rule=rules.CLAIMS,
    remediation="Ship a complete submission.json and the unmodified UTF-8 train log of every seed.",
    family="claims",
    run=collect.from_records,
    doc=__doc__,
)
