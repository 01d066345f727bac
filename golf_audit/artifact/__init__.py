"""The artifact audit (byte cap, uncounted code, log-vs-file sizes, container) and the time limits."""

from .audit import CAP_BYTES, ArtifactReport, SeedBytes, audit_artifact, collect
from .container import ArtifactFile, TensorBytes, find_artifacts, inspect_artifact
from .timing import EVAL_LIMIT_S, TRAIN_LIMIT_S, SeedTimes, TimeReport, audit_time_limits

__all__ = [
    "CAP_BYTES", "EVAL_LIMIT_S", "TRAIN_LIMIT_S", "ArtifactFile", "ArtifactReport", "SeedBytes", "SeedTimes",
    "TensorBytes", "TimeReport", "audit_artifact", "audit_time_limits", "collect", "find_artifacts", "inspect_artifact",
]  # fmt: skip
