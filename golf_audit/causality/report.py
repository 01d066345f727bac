"""A causality audit report: the results of one run, its verdict and exit code, and its JSON schema.

The JSON layout is written down below as TypedDicts (``CausalityReportJSON``) and checked by
``validate`` in the tests, so consumers can rely on it. Bump ``SCHEMA_VERSION`` on any
incompatible change.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import subprocess
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, TypedDict

from .. import __version__
from ..errors import EXIT_BAD_INPUT, EXIT_PASS, EXIT_VIOLATION
from ..findings import Status
from ..output import to_jsonable
from .engine import CausalityResult
from .zoo import Expected

from ..output import SCHEMA_VERSION


# ----------------------------------------------------------------------------- schema


class ExampleJSON(TypedDict):
    flip: int  # target index whose token was changed
    position: int  # target index whose NLL moved
    delta: Optional[float]  # nats; null when the position stopped (or started) being scored
    wrong_token: int
    true_token: int


class FlipTestJSON(TypedDict):
    flips: int
    flips_with_leak: int
    positions_affected: int
    max_abs_delta: Optional[float]
    example: Optional[ExampleJSON]
    later_positions_moved: int
    same_unit_affected: int
    other_unit_affected: int


class DistributionJSON(TypedDict):
    checked: int
    changed: int
    max_abs_delta: Optional[float]
    example_flip: Optional[int]


class NormalizationJSON(TypedDict):
    rows_checked: int
    rows_off: int
    max_abs_mass_error: Optional[float]
    worst_mass: Optional[float]
    rows_unscored: int  # rows whose -log p(target) is not the score there
    unscored_example: Optional[list[float]]  # [target, score, -log p(target) of the row]


class SelfPredictionJSON(TypedDict):
    mean: float
    minimum: float
    maximum: float
    samples: int


class ResultJSON(TypedDict):
    label: str
    evaluator: str
    settings: dict[str, str]
    expected: Optional[str]  # zoo runs: "pass", "fail", "fail (normalization)"
    matches_expected: Optional[bool]
    subject: str
    status: Literal["pass", "fail", "error", "warn", "not-run", "not-applicable"]  # the last three: script mode
    summary: str
    failed_tests: list[str]
    channels: list[str]
    tolerance: float
    norm_tolerance: float
    seed: int
    flips_requested: int
    flip_positions: list[int]
    stream_tokens: int
    scored_targets: int
    null_max_abs_delta: Optional[float]
    stream_flip: FlipTestJSON
    target_flip: FlipTestJSON
    distribution: Optional[DistributionJSON]
    normalization: Optional[NormalizationJSON]
    self_prediction: Optional[SelfPredictionJSON]
    val_bpb: Optional[float]
    val_loss: Optional[float]
    runs: int
    seconds: float
    error: Optional[str]


class ToolJSON(TypedDict):
    name: str
    version: str
    git: Optional[str]
    python: str
    torch: str
    created: str


class CausalityReportJSON(TypedDict):
    schema_version: str
    tool: ToolJSON
    mode: Literal["zoo", "evaluator", "script"]
    model: str
    stream: str
    stream_tokens: int
    geometry: dict[str, str]
    flips: int
    seed: int
    tolerance: float
    norm_tolerance: float
    workers: int
    verdict: Literal["pass", "fail", "error"]
    exit_code: int
    summary: str
    wall_seconds: float
    results: list[ResultJSON]


# ----------------------------------------------------------------------------- report


@dataclass
class AuditedSubject:
    """One audited source plus what the zoo expects of it (None outside the zoo)."""

    label: str
    evaluator: str
    settings: dict[str, str]
    result: CausalityResult
    expected: Expected | None = None

    @property
    def matches_expected(self) -> bool | None:
        if self.expected is None:
            return None
        return self.expected.matches(self.result.status, self.result.failed_tests)


@dataclass
class CausalityReport:
    mode: str  # "zoo" | "evaluator" | "script"
    model: str  # what was audited, in words
    stream: str
    stream_tokens: int
    geometry: dict[str, str]
    flips: int
    seed: int
    tolerance: float
    norm_tolerance: float
    workers: int
    subjects: list[AuditedSubject] = field(default_factory=list)
    wall_seconds: float = 0.0
    # script mode: the failing concerns in words ("not normalized: …"), set by the submission audit
    concern_text: str = ""
    # script mode: the submission audit's verdict and headline, by concern (a diagnostic eval that
    # could not be audited beside a reported score that passed stays shown, and is not decisive)
    decided: Status | None = None
    decided_text: str = ""

    @property
    def verdict(self) -> Status:
        """Zoo: pass when every verdict is the expected one. Otherwise: the worst status."""
        statuses = [s.result.status for s in self.subjects]
        if self.mode == "script" and Status.FAIL in statuses:  # a static leak fails even if the dynamic run errored
            return Status.FAIL
        if self.mode == "script" and self.decided is not None:
            return self.decided
        if self.mode == "script":  # warnings, not-exercised and not-applicable subjects are shown, not decisive
            statuses = [s for s in statuses if s in (Status.PASS, Status.FAIL, Status.ERROR)]
        if Status.ERROR in statuses or not statuses:
            return Status.ERROR
        if self.mode == "zoo":
            return Status.PASS if all(s.matches_expected for s in self.subjects) else Status.FAIL
        return Status.FAIL if Status.FAIL in statuses else Status.PASS

    def exit_code(self) -> int:
        return {Status.PASS: EXIT_PASS, Status.FAIL: EXIT_VIOLATION}.get(self.verdict, EXIT_BAD_INPUT)

    def summary(self) -> str:
        n = len(self.subjects)
        if self.mode == "zoo":
            ok = sum(1 for s in self.subjects if s.matches_expected)
            errors = [s.label for s in self.subjects if s.result.status is Status.ERROR]
            text = f"{ok}/{n} evaluators got their expected verdict"
            if errors:
                text += f"; cannot conclude on {', '.join(errors)}"
            elif ok < n:
                text += f"; unexpected: {', '.join(s.label for s in self.subjects if not s.matches_expected)}"
            return text
        fails = [s.label for s in self.subjects if s.result.status is Status.FAIL]
        if self.verdict is Status.ERROR:
            errors = [s.result.summary.removeprefix("cannot conclude: ") for s in self.subjects
                      if s.result.status is Status.ERROR]
            return "cannot conclude: " + "; ".join(errors) if errors else self.decided_text or "cannot conclude"
        if fails and self.concern_text:
            return self.concern_text
        if self.decided is Status.PASS and self.decided_text:
            return self.decided_text
        return f"not causal: {', '.join(fails)}" if fails else f"{n} evaluator{'s' * (n != 1)} causal"

    def to_json(self) -> CausalityReportJSON:
        results: list[ResultJSON] = []
        for s in self.subjects:
            body = to_jsonable(dataclasses.asdict(s.result))
            results.append(typing.cast(ResultJSON, {
                "label": s.label, "evaluator": s.evaluator, "settings": dict(s.settings),
                "expected": s.expected.describe() if s.expected else None,
                "matches_expected": s.matches_expected, **body}))
        return {
            "schema_version": SCHEMA_VERSION, "tool": tool_info(), "mode": typing.cast(Any, self.mode),
            "model": self.model, "stream": self.stream, "stream_tokens": self.stream_tokens,
            "geometry": dict(self.geometry), "flips": self.flips, "seed": self.seed, "tolerance": self.tolerance,
            "norm_tolerance": self.norm_tolerance, "workers": self.workers,
            "verdict": typing.cast(Any, self.verdict.value), "exit_code": self.exit_code(), "summary": self.summary(),
            "wall_seconds": round(self.wall_seconds, 3), "results": results,
        }


def tool_info() -> ToolJSON:
    import torch

    return {"name": "golf-audit", "version": __version__, "git": _git_hash(), "python": platform.python_version(),
            "torch": torch.__version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# ----------------------------------------------------------------------------- validation


def validate(obj: Any, schema: Any = CausalityReportJSON, path: str = "$") -> list[str]:
    """Problems with ``obj`` against a TypedDict schema (empty list: valid). Extra keys are errors."""
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if schema is Any:
        return []
    if typing.is_typeddict(schema):
        if not isinstance(obj, dict):
            return [f"{path}: expected object, got {type(obj).__name__}"]
        hints = typing.get_type_hints(schema)
        problems = [f"{path}: missing key {k!r}" for k in hints if k not in obj]
        problems += [f"{path}: unexpected key {k!r}" for k in obj if k not in hints]
        for k, sub in hints.items():
            if k in obj:
                problems += validate(obj[k], sub, f"{path}.{k}")
        return problems
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        for alt in args:
            if not validate(obj, alt, path):
                return []
        return [f"{path}: {obj!r} matches none of {args}"]
    if origin is Literal:
        return [] if obj in args else [f"{path}: {obj!r} not one of {args}"]
    if origin is list:
        if not isinstance(obj, list):
            return [f"{path}: expected list"]
        return [p for i, v in enumerate(obj) for p in validate(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(obj, dict):
            return [f"{path}: expected object"]
        return [p for k, v in obj.items() for p in validate(v, args[1], f"{path}.{k}")]
    if schema is type(None):
        return [] if obj is None else [f"{path}: expected null"]
    if schema is float:
        ok = isinstance(obj, (int, float)) and not isinstance(obj, bool)
        return [] if ok else [f"{path}: expected number, got {obj!r}"]
    if isinstance(schema, type):
        ok = isinstance(obj, schema) and not (schema is int and isinstance(obj, bool))
        return [] if ok else [f"{path}: expected {schema.__name__}, got {type(obj).__name__}"]
    return [f"{path}: unsupported schema {schema!r}"]
