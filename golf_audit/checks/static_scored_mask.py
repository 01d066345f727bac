"""GA-STATIC-001: an eval-time optimizer fed by a loss masked to the scored positions.

Rationale: fitting eval-time parameters (SLOT delta, logit bias, LoRA) with a loss over the
positions that are then scored lets each target leak into its own prediction (conditions 1
and 3). The ast check follows the mask from its definition to the loss an optimizer steps on.

Example: ``loss = (nll * scored_mask).sum() / scored_mask.sum(); loss.backward(); opt.step()``
followed by scoring the same positions.

Fix: fit only on the context positions ``[0, s)`` of each window.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-001",
    title="No optimizer fitted on the scored positions",
    severity=Severity.CRITICAL,
    rule=rules.COND_1,
    remediation="Fit eval-time parameters on context positions only, never on the targets being scored.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
