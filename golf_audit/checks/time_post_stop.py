"""GA-TIME-003: no training data is read after the training loop's wall-clock stop.

Rationale: the 600 s training budget covers every access to training data. GPTQ calibration
that collects Hessians from training shards *after* the loop stopped at 600 s is eval-time
training data (valerio-oai on PR #606: 3.6 s of calibration after the full 600 s, illegal).
Many accepted records stop their loop early (``gptq_reserve_seconds``: 600 s − reserve) and
calibrate in the reserve; a few overran the reserve by a few seconds and were accepted.

Rule: calibration on training data after a loop that used the full 600 s (no reserve) fails;
with a reserve, loop + calibration ≤ 600 s passes and > 600 s warns (the overrun is shown);
self-generated calibration data (autoregressive samples of the model) passes at any time.
The calibration's data source is read from the script (``records.dataflow``), its duration
from the log (``GPTQ:collected 67 Hessians in 12.8s``, ``gptq:calibrated 68 layers in 3.6s``).

Example: ``stopping_early: wallclock_cap train_time:600042ms`` then
``gptq:calibrated 68 layers in 3.6s`` with ``gptq_calibrate(base_model, args.train_files, …)``
fails; ``gptq:reserving 13s, effective=587000ms`` … ``GPTQ:collected 67 Hessians in 12.6s``
passes (599.8 s).

Fix: reserve the calibration time inside the 600 s (stop the loop at 600 − reserve seconds), or
calibrate on self-generated text.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check

CHECK = Check(
    id="GA-TIME-003",
    title="No training data read after the training stop",
    severity=Severity.ERROR,
    rule=rules.TRAIN_TIME,
    remediation="Reserve calibration time inside the 600 s, or calibrate on self-generated data.",
    family="time",
    run=collect.from_results(collect.time_checks),
    doc=__doc__,
)
