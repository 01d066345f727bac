"""The check interface: a stable id, its metadata, and one function from collected data to an outcome.

Checks follow a three-stage shape (collect raw data once, turn it into findings, evaluate):
``AuditContext.collect`` memoizes what the other libraries measure (records reader, artifact
audit, static analysis, …) so that several checks can share one parse; a check's
``run(ctx, check)`` turns that data into an ``Outcome`` (most checks use a ready-made runner
from ``checks.collect``, which picks the library result carrying the check's id);
``Check.evaluate`` stamps the check's metadata on it and makes sure nothing a check does can
turn into a pass by accident:

* ``NotRun`` raised by ``run`` (or a collector) → status ``not-run`` with the reason;
* ``NotApplicable`` → ``not-applicable``;
* a library's own ``BadInput``/``CannotConclude`` → ``error`` ("cannot conclude: …");
* any other exception → ``error`` ("the check crashed: …") with the exception as evidence.
Never ``pass``.
"""

from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import GolfAuditError, one_line
from ..findings import CheckResult, Evidence, Severity, Status


class NotRun(Exception):
    """The check was not attempted: an input or a library it needs is missing."""


class NotApplicable(Exception):
    """The check does not apply to this folder (e.g. no artifact file to inspect)."""


@dataclass
class AuditOptions:
    """What the caller asked for; checks read these, never CLI flags."""

    baseline: Path | None = None  # previous leader's folder, for the significance rules
    dynamic: bool = False  # run the child-process causality checks (slow)
    python: str | None = None  # interpreter for the dynamic checks' child (a script needing 3.12)
    unsafe_no_sandbox: bool = False  # run the child without the OS sandbox (explicitly asked)
    baseline_note: str = ""  # why there is no baseline (e.g. chronological order unknown), or how it was chosen


class AuditContext:
    """One folder under audit plus a cache of everything collected about it.

    ``collect(key, fn)`` runs ``fn(self)`` once; its value *or its exception* is cached so
    that every check depending on a broken collector reports the same error.
    """

    def __init__(self, folder: Path, options: AuditOptions | None = None) -> None:
        self.folder = Path(folder)
        self.options = options or AuditOptions()
        self._cache: dict[str, tuple[bool, Any]] = {}

    def collect(self, key: str, fn: Callable[["AuditContext"], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, fn(self))
            except Exception as exc:  # noqa: BLE001 - re-raised to every check that needs it
                self._cache[key] = (False, exc)
        ok, value = self._cache[key]
        if ok:
            return value
        raise value

    @property
    def script(self) -> Path | None:
        """The folder's training script: ``train_gpt.py``, else its only/largest ``train*.py``
        (``train_gpt_v5.py``, ``train_gpt_cuda_ternary.py``); None when it ships none."""
        from ..records.scripts import main_script

        return main_script(self.folder)


def need(module: str, issue: int) -> Any:
    """Import a library another part of golf-audit provides, or explain why the check can't run."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the library itself being absent is "not run"; a library that is present but
        # fails to import (a missing dependency of it, a bug) is an error of the check.
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        raise NotRun(f"needs {module} (issue {issue}), not in this build") from None


@dataclass
class Outcome:
    """What a check's ``run`` returns; ``Check.evaluate`` turns it into a ``CheckResult``."""

    status: Status
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def outcome_of(result: CheckResult) -> Outcome:
    """Re-use a ``CheckResult`` another library produced as this check's outcome."""
    return Outcome(result.status, result.summary, list(result.evidence), dict(result.data))


@dataclass(frozen=True)
class Check:
    """A registered check. ``doc`` is its module docstring: rationale, example, fix."""

    id: str
    title: str
    severity: Severity
    rule: str
    remediation: str
    family: str  # size, time, significance, seeds, claims, static, dynamic
    run: Callable[[AuditContext, "Check"], Outcome] = field(repr=False, compare=False)
    doc: str = ""
    dynamic: bool = False  # only runs when asked (slow, child process)

    def result(self, outcome: Outcome) -> CheckResult:
        return CheckResult(
            check_id=self.id,
            title=self.title,
            status=outcome.status,
            summary=outcome.summary,
            severity=self.severity,
            rule=self.rule,
            remediation=self.remediation,
            evidence=outcome.evidence,
            data=outcome.data,
        )

    def evaluate(self, ctx: AuditContext) -> CheckResult:
        """Run the check; a crash becomes ``error`` with the exception as evidence."""
        if self.dynamic and not ctx.options.dynamic:
            return self.result(Outcome(Status.NOT_RUN, "dynamic checks run only when asked (--dynamic)"))
        try:
            outcome = self.run(ctx, self)
        except NotRun as exc:
            outcome = Outcome(Status.NOT_RUN, one_line(exc), list(getattr(exc, "evidence", [])))
        except NotApplicable as exc:
            outcome = Outcome(Status.NOT_APPLICABLE, one_line(exc))
        except GolfAuditError as exc:  # a library's clean "bad input" / "cannot conclude"
            outcome = Outcome(Status.ERROR, f"cannot conclude: {one_line(exc)}", [Evidence(one_line(exc))])
        except Exception as exc:  # noqa: BLE001 - a crashing check is an error, never a pass
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
            outcome = Outcome(
                Status.ERROR,
                f"the check crashed: {type(exc).__name__}: {one_line(exc)}",
                [Evidence(f"{type(exc).__name__}{where}: {one_line(exc)}")],
            )
        return self.result(outcome)


def doc_of(module_doc: str | None) -> str:
    return (module_doc or "").strip()
