"""GA-STATIC-005: validation data read during training.

Rationale: training on (or tuning against) the validation split is not allowed.

Example: ``fineweb_val_*.bin`` loaded inside the training loop's data loader.

Fix: read validation shards only in the evaluation code path.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-005",
    title="No validation data read during training",
    severity=Severity.CRITICAL,
    rule=rules.NO_VAL_IN_TRAIN,
    remediation="Read validation shards only in the evaluation code path.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
