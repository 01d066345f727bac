"""GA-SIZE-003: logged sizes agree with the files in the folder.

Rationale: reviewers read the sizes in the logs; real submissions logged a code size that is
not the size of the committed script (the script changed after the run), or totals that are
not code + model. A disagreement means the logged total is not evidence for the cap.

Example: the log says ``Code size: 47716 bytes`` but ``train_gpt.py`` has 48,102 bytes.

Fix: re-run with the committed script, or commit the script that produced the logs.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SIZE-003",
    title="Logged sizes match the files",
    severity=Severity.WARNING,
    rule=rules.ARTIFACT_CAP,
    remediation="Commit the exact script that produced the logs, or re-run with the committed one.",
    family="size",
    run=collect.from_results(collect.artifact_checks),
    doc=__doc__,
)
