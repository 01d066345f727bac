"""GA-STATIC-002: one eval-time delta or bias shared by all windows of a batch.

Rationale: a parameter shared by a batch of consecutive windows is fitted on the context of
later windows, which holds targets scored by earlier windows of the same batch: not causal
even with a context mask (the "causal SLOT" variant).

Example: ``delta = torch.zeros(1, 1, d_model, requires_grad=True)`` optimized over a
``[32, T]`` batch.

Fix: allocate the parameter per window, ``[B, 1, d]``.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-002",
    title="No delta/bias shared across the windows of a batch",
    severity=Severity.CRITICAL,
    rule=rules.COND_1,
    remediation="Give every window its own eval-time parameters ([B, 1, d]), not one shared by the batch.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
