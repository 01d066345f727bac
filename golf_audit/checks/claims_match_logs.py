"""GA-CLAIM-001: the claimed val_bpb is reproduced by the logs.

Rationale: the headline number in submission.json must be the last ``*_exact`` line of the
claimed evaluation mode in the logs (the mean over seeds when several are claimed). A claim
no log supports is not evidence.

Example: submission.json says ``val_bpb: 1.1190`` while the logs' last exact lines average
1.1232: warn.

Fix: copy the exact numbers from the logs into submission.json.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-CLAIM-001",
    title="Claimed val_bpb matches the logs",
    severity=Severity.ERROR,
    rule=rules.CLAIMS,
    remediation="Copy the exact per-seed numbers from the logs into submission.json.",
    family="claims",
    run=collect.from_records,
    doc=__doc__,
)
