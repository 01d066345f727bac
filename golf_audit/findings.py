"""The vocabulary every check and audit reports in: statuses, severities, evidence, results.

A result is never "pass" because a check could not run: ``error`` (it crashed or could not
conclude), ``not-run`` (it was not attempted, e.g. needs an input that was not given) and
``not-applicable`` (it does not apply to this folder) are distinct outcomes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    NOT_RUN = "not-run"
    NOT_APPLICABLE = "not-applicable"

    @property
    def symbol(self) -> str:
        return {"pass": "✔", "fail": "✖", "warn": "⚠", "error": "‼", "not-run": "–", "not-applicable": "·"}[self.value]


# Worst first: used to combine statuses into one verdict.
STATUS_ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.NOT_RUN, Status.PASS, Status.NOT_APPLICABLE]


def worst(statuses: list[Status]) -> Status:
    """The most severe status among ``statuses`` (``not-run`` for an empty list)."""
    if not statuses:
        return Status.NOT_RUN
    return min(statuses, key=STATUS_ORDER.index)


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ["info", "warning", "error", "critical"].index(self.value)


@dataclass
class Evidence:
    """One piece of evidence behind a result: where, what was measured, against what."""

    message: str
    file: str | None = None
    line: int | None = None
    value: Any = None  # the measured value (with ``unit``)
    threshold: Any = None  # the limit it was compared with
    unit: str | None = None
    snippet: str | None = None


@dataclass
class CheckResult:
    """The outcome of one check on one subject (a folder, a script, an evaluator)."""

    check_id: str  # stable id, e.g. "GA-SIZE-001"
    title: str
    status: Status
    summary: str  # one sentence, plain words
    severity: Severity = Severity.ERROR
    rule: str = ""  # which challenge rule or validity condition
    remediation: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable measurements
