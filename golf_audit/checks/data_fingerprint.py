"""GA-DATA-002: the data the run used is the canonical split (fingerprints in the logs).

Rationale: scores are only comparable on the official validation set, and a custom split can
put validation documents into training. The logs print fingerprints of the data preparation:
``val_loader:shards pattern=…fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632`` and
``train_loader:dataset:fineweb10B_sp1024 train_shards:80``. For sp1024 the canonical
validation set has 62,021,632 target tokens (a run truncates it to whole sequences: 62,013,440
at seq_len 16,384 is the same split); the canonical training set has 80 shards.

Example: ``tokens:63779840`` (the launch-day data release) warns: another validation split;
``train_shards:195`` warns: a custom training set.

Fix: prepare the data with the challenge's own script, unchanged; for a custom training set,
show that it excludes the validation documents.
"""

from ..findings import Severity
from . import collect
from .base import Check

CHECK = Check(
    id="GA-DATA-002",
    title="Data split matches the canonical one",
    severity=Severity.WARNING,
    rule="Challenge rule: no validation data in training or in the artifact before it is scored",
    remediation="Use the challenge's data preparation unchanged.",
    family="data",
    run=collect.from_results(collect.data_checks),
    doc=__doc__,
)
