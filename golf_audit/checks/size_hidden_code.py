"""GA-SIZE-002: every file the script loads at run time is counted as code.

Rationale: the artifact counts *all* code. Scripts that ``exec`` or import sibling files
(helper modules, C++/CUDA kernels), or self-extracting wrappers whose decoded code loads
more files, must count those bytes too. Found by static analysis of ``train_gpt.py``; the
script is never run.

Example: ``exec(open("helpers.py").read())`` while the log's ``Code size`` equals the size of
``train_gpt.py`` alone: helpers.py is uncounted code.

Fix: inline the helper into ``train_gpt.py``, or add its bytes to the logged code size.
"""

from ..findings import Severity
from . import collect, rules
from .base import AuditContext, Check, NotRun, Outcome


def _run(ctx: AuditContext, check: Check) -> Outcome:
    if ctx.script is None:
        raise NotRun("the folder ships no training script (train*.py) to analyse")
    return collect.from_results(collect.artifact_checks)(ctx, check)


CHECK = Check(
    id="GA-SIZE-002",
    title="No uncounted code loaded at run time",
    severity=Severity.ERROR,
    rule=rules.ARTIFACT_CAP,
    remediation="Inline every file the script loads, or count its bytes in the code size.",
    family="size",
    run=_run,
    doc=__doc__,
)
