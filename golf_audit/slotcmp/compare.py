"""How much of a SLOT gain is leakage: sliding vs SLOT with the scored mask vs SLOT with the context mask.

SLOT fits a small vector (and a logit bias) per window at eval time. The seed PR fits it on
the very positions it then scores (``mask=scored``), so each target helps predict itself.
Restricting the fit to the window's context, tokens already scored by earlier windows
(``mask=context``, one delta per window), is causal. On one model and one stream:

    gain(variant) = bpb(sliding) - bpb(variant)
    leak          = bpb(context, window) - bpb(scored, window)      (bpb and nats/token)

Every variant also gets a causality verdict from the flip-test engine on a small flip sample
(the zoo's short audit stream and geometry, the same SLOT settings otherwise), with its
self-prediction advantage. ``sweep`` repeats the comparison over SLOT steps or lr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from reference_model.evaluate import get_evaluator
from reference_model.metric import ByteLUTs

from ..causality.engine import AuditOptions
from ..causality.run import audit_stream, run_subjects
from ..causality.report import CausalityReport
from ..causality.zoo import Expected, ZooMember, with_geometry
from ..errors import BadInput, CannotConclude, one_line
from ..findings import Status

from ..output import SCHEMA_VERSION
LABELS = {"scored_window": "SLOT(scored, window)", "context_window": "SLOT(context, window)",
          "context_batch": "SLOT(context, batch)"}
VARIANTS: dict[str, dict[str, str]] = {
    "scored_window": {"mask": "scored", "delta": "window"},
    "context_window": {"mask": "context", "delta": "window"},
    "context_batch": {"mask": "context", "delta": "batch"},
}
EXPECTED = {"scored_window": Status.FAIL, "context_window": Status.PASS, "context_batch": Status.FAIL}
SWEEPABLE = ("steps", "lr")
# Settings that define a variant or the window geometry, not the shared SLOT hyperparameters.
GEOMETRY_KEYS = ("seq_len", "stride", "tail")


@dataclass
class VariantResult:
    key: str  # scored_window | context_window | context_batch
    label: str
    settings: dict[str, str]
    val_bpb: float
    val_loss: float
    gain_bpb: float  # bpb(sliding) - bpb(this)
    gain_nats: float  # val_loss(sliding) - val_loss(this)
    causality: str | None = None  # pass | fail | error (None: not audited)
    expected_causality: str | None = None
    failed_tests: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    self_prediction: float | None = None  # nats
    causality_summary: str = ""
    seconds: float = 0.0


@dataclass
class SweepRow:
    parameter: str  # steps | lr
    value: str
    sliding_bpb: float
    bpb: dict[str, float]  # variant key -> bpb
    val_loss: dict[str, float]
    leak_bpb: float
    leak_nats: float


@dataclass
class SlotComparison:
    model: str
    stream: str
    stream_tokens: int
    settings: dict[str, str]  # shared SLOT settings as given (--set)
    sliding_bpb: float
    sliding_loss: float
    variants: list[VariantResult]
    leak_bpb: float
    leak_nats: float
    audit_flips: int
    audit_tokens: int
    sweep: list[SweepRow] = field(default_factory=list)
    seconds: float = 0.0

    def variant(self, key: str) -> VariantResult | None:
        return next((v for v in self.variants if v.key == key), None)

    @property
    def leak_share(self) -> float | None:
        """Fraction of the scored-mask gain that disappears under the context mask."""
        scored = self.variant("scored_window")
        return self.leak_bpb / scored.gain_bpb if scored and scored.gain_bpb > 0 else None

    def finding(self) -> str:
        """One sentence in plain words, for readers who do not know SLOT."""
        scored, context = self.variant("scored_window"), self.variant("context_window")
        share = self.leak_share
        text = (f"SLOT as the seed PR runs it (fitted on the tokens it scores) improves bpb by {scored.gain_bpb:.4f} "
                f"over plain sliding-window evaluation, but fitted only on tokens that were already scored it improves "
                f"by {context.gain_bpb:.4f}, so {self.leak_bpb:.4f} bpb ({self.leak_nats:.4f} nats/token")
        text += f", {100 * share:.0f}% of the gain)" if share is not None else ")"
        text += " comes from letting each token help predict itself"
        if scored.causality == "fail" and context.causality == "pass":
            text += ", and the flip test confirms the first is not causal while the second is."
        else:
            text += "."
        return text

    def exit_code(self) -> int:
        """0: measured; 1: the causal variant (context, window) failed its flip test; 2: an audit errored."""
        if any(v.causality == "error" for v in self.variants):
            return 2
        context = self.variant("context_window")
        return 1 if context is not None and context.causality == "fail" else 0


def _slot_settings(shared: dict[str, str], variant: str, **override: str) -> dict[str, str]:
    out = dict(shared)
    out.update(VARIANTS[variant])
    out.update(override)
    return out


def _sliding_settings(shared: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in shared.items() if k in GEOMETRY_KEYS}


def _score(name: str, settings: dict[str, str], model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs):
    try:
        evaluator = get_evaluator(name, settings)
    except (KeyError, ValueError, TypeError) as exc:
        raise BadInput(one_line(exc)) from None
    return evaluator.score(model, tokens, luts)


def validate_settings(shared: dict[str, str]) -> None:
    """Reject settings that would change what is being compared (mask/delta) or do not exist."""
    for key in ("mask", "delta"):
        if key in shared:
            raise BadInput(f"--set {key}=… is not allowed: slot-compare runs every mask/delta variant itself")
    for variant in VARIANTS:
        try:
            get_evaluator("slot", _slot_settings(shared, variant))
        except (KeyError, ValueError, TypeError) as exc:
            raise BadInput(one_line(exc)) from None


def parse_sweep(text: str | None) -> tuple[str, list[str]] | None:
    """``"steps=1,2,4"`` -> ("steps", ["1", "2", "4"])."""
    if not text:
        return None
    key, sep, values = text.partition("=")
    key = key.strip()
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or key not in SWEEPABLE or not items:
        raise BadInput(f"--sweep expects {'|'.join(SWEEPABLE)}=v1,v2,…, got {text!r}")
    for v in items:
        try:
            number = float(v)
        except ValueError:
            raise BadInput(f"--sweep value {v!r} is not a number") from None
        if number < 0 or (key == "steps" and not number.is_integer()):
            raise BadInput(f"--sweep {key} values must be non-negative{' integers' if key == 'steps' else ''}, got {v!r}")
    return key, items


def compare(model: torch.nn.Module, luts: ByteLUTs, tokens: torch.Tensor, shared: dict[str, str], *,
            include_batch: bool = True, flips: int = 8, seed: int = 0, workers: int = 1,
            audit_tokens: torch.Tensor | None = None, sweep: tuple[str, Sequence[str]] | None = None,
            model_name: str = "demo", stream_name: str = "demo",
            progress: Callable[[str], None] | None = None) -> SlotComparison:
    """Run sliding and the SLOT variants on ``tokens``; audit each variant; optionally sweep."""
    say = progress or (lambda _m: None)
    validate_settings(shared)
    t0 = time.perf_counter()
    keys = [k for k in VARIANTS if include_batch or k != "context_batch"]
    sliding = _score("sliding", _sliding_settings(shared), model, tokens, luts)
    say(f"sliding: bpb {sliding.val_bpb:.4f}")
    variants = []
    for key in keys:
        t = time.perf_counter()
        scored = _score("slot", _slot_settings(shared, key), model, tokens, luts)
        variants.append(VariantResult(key, LABELS[key], _slot_settings(shared, key), scored.val_bpb, scored.val_loss,
                                      sliding.val_bpb - scored.val_bpb, sliding.val_loss - scored.val_loss,
                                      expected_causality=EXPECTED[key].value, seconds=time.perf_counter() - t))
        say(f"{LABELS[key]}: bpb {scored.val_bpb:.4f}")
    audit_tokens = audit_tokens if audit_tokens is not None else audit_stream(tokens)
    if flips > 0:
        _audit(variants, model, luts, audit_tokens, shared, flips, seed, workers, say)
    by = {v.key: v for v in variants}
    result = SlotComparison(model_name, stream_name, int(tokens.numel()), dict(shared), sliding.val_bpb,
                            sliding.val_loss, variants,
                            by["context_window"].val_bpb - by["scored_window"].val_bpb,
                            by["context_window"].val_loss - by["scored_window"].val_loss,
                            flips, int(audit_tokens.numel()))
    if sweep is not None:
        result.sweep = run_sweep(model, luts, tokens, shared, sweep, keys, sliding.val_bpb, say)
    result.seconds = time.perf_counter() - t0
    return result


def _audit(variants: list[VariantResult], model: torch.nn.Module, luts: ByteLUTs, tokens: torch.Tensor,
           shared: dict[str, str], flips: int, seed: int, workers: int, say: Callable[[str], None]) -> None:
    """Flip-test every variant on the short audit stream (audit geometry unless --set overrides it)."""
    options = AuditOptions(flips=flips, seed=seed)
    report = CausalityReport("evaluator", "", "", int(tokens.numel()), {}, flips, seed, options.tolerance,
                             options.norm_tolerance, workers)
    entries = []
    for v in variants:
        settings = with_geometry("slot", _slot_settings(shared, v.key))
        entries.append((ZooMember(v.label, "slot", settings, Expected(EXPECTED[v.key])), settings))
    say(f"flip-testing {len(entries)} variants ({flips} flips each, {tokens.numel()} tokens)")
    run_subjects(report, entries, model, luts, tokens, options, workers)
    for v, subject in zip(variants, report.subjects):
        r = subject.result
        v.causality = r.status.value
        v.failed_tests, v.channels = list(r.failed_tests), list(r.channels)
        v.self_prediction = r.self_prediction.mean if r.self_prediction else None
        v.causality_summary = r.summary


def run_sweep(model: torch.nn.Module, luts: ByteLUTs, tokens: torch.Tensor, shared: dict[str, str],
              sweep: tuple[str, Sequence[str]], keys: Sequence[str], sliding_bpb: float,
              say: Callable[[str], None]) -> list[SweepRow]:
    """bpb of every variant at each value of one SLOT setting (steps or lr)."""
    parameter, values = sweep
    rows = []
    for value in values:
        bpb, loss = {}, {}
        for key in keys:
            scored = _score("slot", _slot_settings(shared, key, **{parameter: value}), model, tokens, luts)
            bpb[key], loss[key] = scored.val_bpb, scored.val_loss
        rows.append(SweepRow(parameter, value, sliding_bpb, bpb, loss, bpb["context_window"] - bpb["scored_window"],
                             loss["context_window"] - loss["scored_window"]))
        say(f"sweep {parameter}={value}: scored {bpb['scored_window']:.4f}, context {bpb['context_window']:.4f}")
    return rows


def check_finite(result: SlotComparison) -> None:
    values = [result.sliding_bpb] + [v.val_bpb for v in result.variants]
    if not all(v == v and abs(v) != float("inf") for v in values):
        raise CannotConclude("a run produced a non-finite bpb (NaN or inf); no comparison is possible")


def to_json(result: SlotComparison) -> dict[str, Any]:
    from dataclasses import asdict

    from ..causality.report import tool_info
    from ..output import to_jsonable

    body = to_jsonable(asdict(result))
    return {"schema_version": SCHEMA_VERSION, "tool": tool_info(), "finding": result.finding(),
            "leak_share": result.leak_share, "exit_code": result.exit_code(), **body}
