"""GA-SIZE-004: a shipped model artifact loads safely and matches its declared format.

Rationale: the compressed model counted in the cap must be the model that is evaluated. An
artifact (``*.ptz``/``*.pt``) in the folder is decompressed and loaded with
``torch.load(weights_only=True)``; its tensors must match the declared container format
(int6/int8 per-row quantized matrices with fp16 scales, fp16 passthrough tensors).

Example: a ``final_model.int6.ptz`` that is truncated, or whose ``.q`` tensor has no
``.scale`` partner, fails.

Fix: ship the artifact exactly as the training run wrote it.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-SIZE-004",
    title="Model artifact loads and matches its format",
    severity=Severity.ERROR,
    rule=rules.ARTIFACT_CAP,
    remediation="Ship the artifact exactly as the run wrote it (lzma of torch.save({'w', 'm'})).",
    family="size",
    run=collect.from_results(collect.artifact_checks),
    doc=__doc__,
)
