"""GA-DATA-001: validation tokens are not fed to calibration or training before they are scored.

Rationale: the artifact must not be fitted to the tokens it is scored on. GPTQ Hessians
collected from validation batches tune the quantized weights to those tokens before scoring
them, which breaks score-before-update (valerio-oai on PR #728: "calibrating on eval tokens
not yet scored … is disallowed"; self-generated calibration is fine). Found statically: the
calibration call sites of the training script and the loader or tensor each one reads
(``DistributedTokenLoader(args.val_files, …)``, ``val_tokens``), with the log line that confirms
it when the run prints one.

Example: ``calib_loader = DistributedTokenLoader(args.val_files, rank, world_size, device)``
then ``collect_hessians(hessian_model, calib_loader, …)`` fails.

Fix: calibrate on training data (inside the 600 s budget) or on self-generated text.
"""

from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-DATA-001",
    title="No validation tokens used before they are scored",
    severity=Severity.CRITICAL,
    rule="Challenge rule: no validation data in training or in the artifact before it is scored",
    remediation="Calibrate on training data inside the 600 s, or on self-generated text.",
    family="data",
    run=collect.from_results(collect.data_checks),
    doc=__doc__,
)
