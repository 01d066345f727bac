"""GA-STATIC-003: adaptation on validation tokens before they are scored ("pre-quant TTT").

Rationale: condition 3 allows adaptation only on tokens already scored. Training on the
validation stream (or on a chunk) before scoring it lets the model memorize its targets;
filling an n-gram table from the whole stream before rescoring it (a two-pass eval) does the
same. The check follows the back-propagated loss to its data (validation data, through the
names' last bindings), calls of script functions that train on validation data, and tables
filled from it; it reports the line of the offending call. Adaptation that is thrown away
before scoring is not a leak and is shown as evidence instead: a throw-away LoRA deleted
(``del wl, wo``) or a model restored (``load_state_dict``) before the scoring call, a probe
built and trained inside a diagnostic function and never returned. Per-window deltas rebuilt
in the eval loop are left to GA-STATIC-001/002 and the flip tests. A finding inside a branch
the submitted run switches off (its flag off in the logs, README command or defaults) is a
warning.

Example: ``ttt_adapt(args, base_model, val_tokens)`` in ``main`` before ``eval_val_sliding``.

Fix: score first, then train on the scored chunk.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-003",
    title="No adaptation on validation tokens before scoring them",
    severity=Severity.CRITICAL,
    rule=rules.COND_3,
    remediation="Score each chunk under no-grad first, then train on it (score-first TTT).",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
