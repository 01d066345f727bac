"""What a causality audit produces: the verdict and evidence per source, and the audit options.

Kept apart from the engine so that readers of results (renderers, the submission runner)
do not depend on how the tests are run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

from ..findings import Status

if TYPE_CHECKING:  # annotations only: reading the defaults below must not load torch
    import torch

    from reference_model.evaluate import Scored


# Legal evaluators are bit-identical on CPU, so anything above float64 round-off of a
# summed NLL counts as a dependence. Stated in every report.
DEFAULT_TOLERANCE = 1e-9
# Rows come from fp32 softmaxes: their mass may differ from 1 by ~V * 2^-24.
DEFAULT_NORM_TOLERANCE = 1e-4
DEFAULT_FLIPS = 64


@runtime_checkable
class NllSource(Protocol):
    """Anything that scores a token stream. ``run`` must be deterministic and side-effect free."""

    name: str
    vocab_size: int

    def run(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
            logprob_positions: Sequence[int] = ()) -> Scored: ...


@dataclass
class Example:
    """One concrete dependence: flipping target ``flip`` moved target ``position`` by ``delta``."""

    flip: int  # target index whose token was changed
    position: int  # target index whose score moved
    delta: float  # NLL(flipped run) - NLL(baseline), nats
    wrong_token: int
    true_token: int


@dataclass
class FlipTestOutcome:
    """Aggregate of one kind of flip over every flip tried."""

    flips: int = 0
    flips_with_leak: int = 0
    positions_affected: int = 0  # (flip, earlier position) pairs that moved beyond tolerance
    max_abs_delta: float = 0.0
    example: Example | None = None
    later_positions_moved: int = 0  # allowed for the target flip (e.g. score-first TTT)
    same_unit_affected: int = 0
    other_unit_affected: int = 0


@dataclass
class DistributionOutcome:
    checked: int = 0  # rows compared (two per flip: stream and target flip)
    changed: int = 0
    max_abs_delta: float = 0.0  # max |Δ log p| over the vocabulary
    example_flip: int | None = None


@dataclass
class NormalizationOutcome:
    rows_checked: int = 0
    rows_off: int = 0
    max_abs_mass_error: float = 0.0  # max |Σ p - 1|
    worst_mass: float | None = None
    # rows whose -log p(target) is not the score at that target (a tilt or mixer applied after the
    # softmax the rows come from): their Σp says nothing about the distribution that was scored
    rows_unscored: int = 0
    unscored_example: tuple[int, float, float] | None = None  # (target, score, -log p(target) of the row)

    @property
    def shown(self) -> bool:
        """Whether the rows are the scored distribution, so that their Σp is the score's."""
        return self.rows_unscored == 0

    def unscored_text(self) -> str:
        """Why the rows' Σp is not the score's (one wording for the result, GA-DYN and the concern)."""
        return (f"the rows are not what was scored: at {self.rows_unscored}/{self.rows_checked} rows the score is not "
                "the row's -log p(target) (a tilt or mixer after the softmax)")


@dataclass
class SelfPrediction:
    """NLL(true | evaluator saw a wrong target) - NLL(true | it saw the true target), nats."""

    mean: float
    minimum: float
    maximum: float
    samples: int


@dataclass
class CausalityResult:
    """The verdict on one source, with the evidence behind it."""

    subject: str
    status: Status
    summary: str
    failed_tests: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # "target" and/or "context"
    tolerance: float = DEFAULT_TOLERANCE
    norm_tolerance: float = DEFAULT_NORM_TOLERANCE
    seed: int = 0
    flips_requested: int = 0
    flip_positions: list[int] = field(default_factory=list)
    stream_tokens: int = 0
    scored_targets: int = 0
    null_max_abs_delta: float | None = None
    stream_flip: FlipTestOutcome = field(default_factory=FlipTestOutcome)
    target_flip: FlipTestOutcome = field(default_factory=FlipTestOutcome)
    distribution: DistributionOutcome | None = None  # None: the source gives no rows
    normalization: NormalizationOutcome | None = None
    self_prediction: SelfPrediction | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    runs: int = 0
    seconds: float = 0.0  # CPU seconds spent in this source's runs (all workers)
    error: str | None = None


@dataclass
class AuditOptions:
    flips: int = DEFAULT_FLIPS
    seed: int = 0
    tolerance: float = DEFAULT_TOLERANCE
    norm_tolerance: float = DEFAULT_NORM_TOLERANCE
    boundaries: Sequence[int] | None = None  # target indices always flipped (None: ask the source)
    # the distribution test's tolerance on a whole log-prob row (None: ``tolerance``); see ROW_FP32_TOLERANCE
    row_tolerance: float | None = None
