"""GA-STATIC-006: network imports or downloads.

Rationale: training and evaluation run without network access; fetched data or weights are
not counted in the artifact.

Example: ``import requests`` or ``urllib.request.urlopen(...)`` in ``train_gpt.py``.

Fix: remove the network access; ship what is needed inside the 16 MB.
"""

from ..findings import Severity
from . import collect, rules
from .base import Check


CHECK = Check(
    id="GA-STATIC-006",
    title="No network access",
    severity=Severity.WARNING,
    rule=rules.NO_NETWORK,
    remediation="Remove network imports and downloads; ship everything in the artifact.",
    family="static",
    run=collect.from_static,
    doc=__doc__,
)
