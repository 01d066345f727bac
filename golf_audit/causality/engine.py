"""The flip-test engine: does an evaluator's score of a token depend on that token or later ones?

The engine only needs an ``NllSource``: something that turns a token stream (and optionally
replacement targets) into per-target NLLs, and where it can, full log-probability rows. It
does not know whether the NLLs come from our reference evaluators or a submission's own
script, so the same tests apply to both.

Tests, in order (DOMAIN.md §4):

* **null control** - the unflipped stream twice; any difference beyond the tolerance means
  the source is nondeterministic and the audit cannot conclude (``error``, never ``fail``).
* **stream flip** - stream token t (target t-1, input t) is replaced and the WHOLE stream is
  re-scored; every target scored before t-1 must keep its NLL, and the row that scores
  target t-1 must not move. Re-running only nearby windows would miss exactly the leaks this
  test exists for (a batch-shared delta, a model update, a second pass).
* **target flip** - only target i changes, inputs fixed. Targets before i must keep their
  NLL (later ones may move legitimately, e.g. after score-first TTT trained on target i).
  The row at i gives the *self-prediction advantage*: how much better the true token is
  predicted when the evaluator saw it than when it saw a random wrong one.
* **distribution** - the log-probability row used to score target i must be identical when
  target i (or anything later) changes: it catches a self-leak that NLLs alone cannot.
* **normalization** - every row's probabilities sum to 1 (the flips' rows and NORM_ROWS more),
  and each row is the distribution that was scored: a target's score is the row's -log p of
  it. Where it is not (a tilt or a mixer after the softmax the rows come from), the rows' Σp
  says nothing about the score, and the result says so (``rows_unscored``): never "rows sum to 1".

Which channel leaked is named from where the change landed: *target channel* when the score
of the flipped target itself (or another target scored in the same unit, e.g. the same
window) depended on it; *context channel* when a target scored by a different, earlier unit
moved (a window's adaptation read tokens other windows score).
"""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from reference_model.evaluate import Scored

from ..findings import Status
from .pool import Done, default_workers, worker_pool
from .results import (DEFAULT_FLIPS, DEFAULT_NORM_TOLERANCE, DEFAULT_TOLERANCE, AuditOptions, CausalityResult,
                      DistributionOutcome, Example, FlipTestOutcome, NllSource, NormalizationOutcome, SelfPrediction)

__all__ = ["DEFAULT_FLIPS", "DEFAULT_NORM_TOLERANCE", "DEFAULT_TOLERANCE", "AuditOptions", "CausalityResult",
           "DistributionOutcome", "Example", "FlipTestOutcome", "NllSource", "NormalizationOutcome", "SelfPrediction",
           "audit_source", "audit_sources", "choose_flips", "default_workers", "run_flip", "worker_pool",
           "wrong_tokens"]

NORM_ROWS = 64  # rows the normalization test reads besides the flips' (targets scored once, evenly spread)
# a score and its row's -log p(target) are rebuilt from the same float32 logits: they agree far
# closer than this; a tilt or a mixture moves a score by far more
SCORE_ROW_TOLERANCE = 1e-3


# ----------------------------------------------------------------------------- flip choice


def choose_flips(scored: np.ndarray, count: int, seed: int, boundaries: Sequence[int] = ()) -> list[int]:
    """Target indices to flip: boundary cases that are scored, then seeded random scored ones.

    The first and last scored targets are always included (first window, stream end).
    """
    candidates = np.flatnonzero(scored)
    if candidates.size == 0:
        return []
    chosen: list[int] = []
    for b in [int(candidates[0]), *boundaries, int(candidates[-1])]:
        if 0 <= b < scored.size and scored[b] and b not in chosen:
            chosen.append(int(b))
    chosen = chosen[:count] if count < len(chosen) else chosen
    rest = np.setdiff1d(candidates, np.array(chosen, dtype=np.int64))
    need = min(count - len(chosen), rest.size)
    if need > 0:
        rng = np.random.default_rng(seed)
        chosen.extend(int(x) for x in rng.choice(rest, size=need, replace=False))
    return sorted(chosen)


def wrong_tokens(true_tokens: Sequence[int], vocab_size: int, seed: int) -> list[int]:
    """A random token different from each true token (seeded, one per flip)."""
    rng = np.random.default_rng(seed + 1_000_003)
    out = []
    for y in true_tokens:
        w = int(rng.integers(0, vocab_size - 1))
        out.append(w + 1 if w >= y else w)  # uniform over the other vocab_size-1 ids
    return out


# ----------------------------------------------------------------------------- comparisons


def _moved(base: Scored, new: Scored, upto: int, tol: float,
           times: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positions, deltas) among targets < ``upto`` whose scoring moved beyond ``tol``.

    A target scored in one run but not the other counts as moved (delta NaN). With ``times``
    (when each target was scored, from the source's ``scoring_times``), a target scored strictly
    *after* target ``upto`` may depend on it: adaptation on already-scored tokens (documents
    evaluated out of stream order by a score-first TTT) is not a leak.
    """
    b, n = base.nll[:upto], new.nll[:upto]
    bs, ns = base.count[:upto] > 0, new.count[:upto] > 0
    delta = n - b
    moved = (bs & ns & (np.abs(delta) > tol)) | (bs != ns)
    if times is not None and 0 <= upto < times.size and times[upto] >= 0:
        moved &= times[:upto] <= times[upto]
    pos = np.flatnonzero(moved)
    return pos, delta[pos]


def _row_delta(a: np.ndarray, b: np.ndarray) -> float:
    """max |Δ log p| between two rows; mismatched infinities count as infinite."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    if np.any(fa != fb) or np.any((~fa) & (a != b)):
        return math.inf
    if not fa.any():
        return 0.0
    return float(np.max(np.abs(a[fa] - b[fa])))


@dataclass
class FlipRecord:
    """What one flip (stream + target) measured; built in a worker, merged in the parent."""

    flip: int
    true_token: int
    wrong_token: int
    stream_pos: list[int]
    stream_delta: list[float]
    target_pos: list[int]
    target_delta: list[float]
    target_later_moved: int
    stream_row_delta: float | None
    target_row_delta: float | None
    self_prediction: float | None


def run_flip(source: NllSource, tokens: torch.Tensor, base: Scored, flip: int, wrong: int, tol: float) -> FlipRecord:
    """Stream flip and target flip of target ``flip`` (stream index flip+1) to token ``wrong``."""
    true = int(tokens[flip + 1])
    want = [flip] if base.logprobs else []
    streamed = tokens.clone()
    streamed[flip + 1] = wrong
    s = source.run(streamed, logprob_positions=want)
    times = getattr(source, "scoring_times", None)
    order = times(base.nll.size) if times is not None else None
    s_pos, s_delta = _moved(base, s, flip, tol, None if order is None else np.asarray(order))
    if not getattr(source, "supports_target_flip", True):
        # A submission's own script reads inputs and targets from one stream: no target-only flip.
        base_row, s_row = base.logprobs.get(flip), s.logprobs.get(flip)
        s_rd = _row_delta(base_row, s_row) if base_row is not None and s_row is not None else None
        return FlipRecord(flip, true, wrong, s_pos.tolist(), s_delta.tolist(), [], [], 0, s_rd, None, None)

    targets = tokens[1:].clone()
    targets[flip] = wrong
    t = source.run(tokens, targets=targets, logprob_positions=want)
    t_pos, t_delta = _moved(base, t, flip, tol)
    later = t.nll[flip + 1:] - base.nll[flip + 1:]
    later_moved = int(np.sum(np.abs(np.nan_to_num(later, nan=0.0)) > tol))

    base_row = base.logprobs.get(flip)
    s_row, t_row = s.logprobs.get(flip), t.logprobs.get(flip)
    s_rd = _row_delta(base_row, s_row) if base_row is not None and s_row is not None else None
    t_rd = _row_delta(base_row, t_row) if base_row is not None and t_row is not None else None
    adv = float(-t_row[true] - -base_row[true]) if base_row is not None and t_row is not None else None
    return FlipRecord(flip, true, wrong, s_pos.tolist(), s_delta.tolist(), t_pos.tolist(), t_delta.tolist(),
                      later_moved, s_rd, t_rd, adv)


# ----------------------------------------------------------------------------- orchestration


def _units(source: NllSource, num_targets: int) -> np.ndarray | None:
    """Scoring unit (e.g. window id) of every target, when the source can say."""
    fn = getattr(source, "scoring_units", None)
    return None if fn is None else np.asarray(fn(num_targets))


def _boundaries(source: NllSource, num_targets: int, options: AuditOptions) -> list[int]:
    if options.boundaries is not None:
        return [int(b) for b in options.boundaries]
    fn = getattr(source, "boundary_targets", None)
    return [] if fn is None else [int(b) for b in fn(num_targets)]


def _run_chunk(source: NllSource, tokens: torch.Tensor, base: Scored, flips: list[int], wrongs: list[int],
               tol: float) -> tuple[list[FlipRecord], float]:
    torch.set_num_threads(1)
    t0 = time.process_time()
    # Every flip is a full re-run; a source may skip recomputing batches whose inputs are
    # bit-identical to an earlier run of this series. The null control ran without that, so a
    # nondeterministic source is still caught before any reuse.
    reuse = getattr(source, "reuse_unchanged_work", None)
    with reuse() if reuse is not None else contextlib.nullcontext():
        records = [run_flip(source, tokens, base, f, w, tol) for f, w in zip(flips, wrongs)]
    return records, time.process_time() - t0


def _baseline(source: NllSource, tokens: torch.Tensor, options: AuditOptions) -> dict[str, Any]:
    """Two unflipped runs (the null control) and the flip choice.

    The second run also returns the rows at the flipped targets: the reference rows for the
    distribution test and the sample for the normalization test.
    """
    torch.set_num_threads(1)
    t0 = time.process_time()
    first = source.run(tokens)
    scored = first.count > 0
    # A source may keep flips off its control ids (a script's BOS starts a document): a target
    # that is one is never flipped (that would merge two documents), and no flip writes one.
    low = int(getattr(source, "first_flip_token", 0))
    flippable = scored.copy()
    if low > 0:
        ids = tokens.reshape(-1)[1:1 + scored.size].numpy()
        flippable[:ids.size] &= ids >= low
    flips = choose_flips(flippable, options.flips, options.seed, _boundaries(source, scored.size, options))
    full = source.run(tokens, logprob_positions=sorted(set(flips) | set(_row_sample(first.count))))
    wrongs = [low + w for w in wrong_tokens([int(tokens[f + 1]) - low for f in flips], int(source.vocab_size) - low,
                                            options.seed)]
    return {"first": first, "base": full, "flips": flips, "wrongs": wrongs, "seconds": time.process_time() - t0}


def _row_sample(count: np.ndarray, size: int = NORM_ROWS) -> list[int]:
    """Targets scored once, evenly spread: the rows the normalization test reads besides the flips'."""
    once = np.flatnonzero(np.asarray(count) == 1)
    if once.size <= size:
        return once.tolist()
    return once[np.linspace(0, once.size - 1, size).round().astype(int)].tolist()


def _slim(base: Scored, flips: Sequence[int]) -> Scored:
    """The baseline with only the rows a chunk of flips needs (less to send to a worker)."""
    rows = {f: base.logprobs[f] for f in flips if f in base.logprobs}
    return Scored(base.nll, base.count, base.nll_sum, base.tokens, base.bytes, rows, {})


def _error(source_name: str, message: str, options: AuditOptions, started: float, tokens: torch.Tensor) -> CausalityResult:
    return CausalityResult(source_name, Status.ERROR, f"cannot conclude: {message}", tolerance=options.tolerance,
                           norm_tolerance=options.norm_tolerance, seed=options.seed, flips_requested=options.flips,
                           stream_tokens=int(tokens.numel()), seconds=time.perf_counter() - started, error=message)


class _RunCounter:
    """Evaluator runs done out of the planned total, reported to ``on_runs(done, total)``."""

    def __init__(self, on_runs, total: int) -> None:
        self.on_runs, self.done, self.total = on_runs, 0, total

    def add(self, runs: int) -> None:
        self.done += runs
        if self.on_runs is not None:
            self.on_runs(self.done, self.total)

    def replan(self, planned: int, actual: int) -> None:
        self.total += actual - planned
        self.add(0)


def audit_sources(sources: Sequence[NllSource], tokens: torch.Tensor, options: AuditOptions | None = None, *,
                  executor: Executor | None = None, progress=None, on_runs=None) -> list[CausalityResult]:
    """Audit several sources on one stream, sharing one pool of workers.

    Baselines run first (one job per source), then every source's flips are split into
    chunks and submitted together so no worker idles while one slow source finishes.
    ``progress(message)`` is called with short status lines (for stderr); ``on_runs(done,
    total)`` whenever a job's evaluator runs are done (for a progress bar with an ETA).
    """
    options = options or AuditOptions()
    tokens = tokens.reshape(-1).long().cpu()
    say = progress or (lambda _msg: None)
    started = {i: time.perf_counter() for i in range(len(sources))}
    counter = _RunCounter(on_runs, len(sources) * (2 + 2 * options.flips))

    def submit(fn, *args):
        if executor is None:
            return Done(fn, *args)
        return executor.submit(fn, *args)

    # Runs are counted as results are collected (in submission order, which is about the order
    # the pool finishes them): on this thread only, so the count is never ahead of the results.
    base_jobs = [submit(_baseline, src, tokens, options) for src in sources]
    plans: dict[int, dict[str, Any]] = {}
    results: dict[int, CausalityResult] = {}
    workers = max(1, getattr(executor, "_max_workers", 1))
    for i, (src, job) in enumerate(zip(sources, base_jobs)):
        try:
            baseline = job.result()
            counter.add(2)
        except Exception as exc:  # noqa: BLE001 - a crashing source is a verdict, not a crash of ours
            counter.replan(2 + 2 * options.flips, 0)
            results[i] = _error(src.name, f"the source failed on the unflipped stream: {type(exc).__name__}: {exc}",
                                options, started[i], tokens)
            continue
        plan = _plan(src, tokens, baseline, options)
        if isinstance(plan, CausalityResult):
            counter.replan(2 * options.flips, 0)
            results[i] = plan
            continue
        counter.replan(2 * options.flips, 2 * len(plan["flips"]))
        chunk = max(1, math.ceil(len(plan["flips"]) / (workers * 2)))
        plan["jobs"] = [
            submit(_run_chunk, src, tokens, _slim(plan["base"], plan["flips"][k:k + chunk]), plan["flips"][k:k + chunk],
                   plan["wrongs"][k:k + chunk], options.tolerance)
            for k in range(0, len(plan["flips"]), chunk)
        ]
        plans[i] = plan
    for i, plan in plans.items():
        src = sources[i]
        try:
            done = []
            for job in plan["jobs"]:
                done.append(job.result())
                counter.add(2 * len(done[-1][0]))
            records = [r for chunk_records, _ in done for r in chunk_records]
            plan["seconds"] += sum(sec for _, sec in done)
        except Exception as exc:  # noqa: BLE001
            results[i] = _error(src.name, f"the source failed on a flipped stream: {type(exc).__name__}: {exc}",
                                options, started[i], tokens)
            continue
        results[i] = _verdict(src, tokens, plan, records, options)
        say(f"{src.name}: {results[i].status.value} ({results[i].seconds:.1f} s)")
    return [results[i] for i in range(len(sources))]


def audit_source(source: NllSource, tokens: torch.Tensor, *, flips: int = DEFAULT_FLIPS, seed: int = 0,
                 tolerance: float = DEFAULT_TOLERANCE, norm_tolerance: float = DEFAULT_NORM_TOLERANCE,
                 boundaries: Sequence[int] | None = None, workers: int = 1,
                 row_tolerance: float | None = None, executor: Executor | None = None) -> CausalityResult:
    """Audit one source. ``workers > 1`` runs the flips in that many processes; an ``executor``
    (``submit(fn, *args)``) runs them wherever it likes (a submission's twin children)."""
    options = AuditOptions(flips, seed, tolerance, norm_tolerance, boundaries, row_tolerance)
    if executor is not None:
        return audit_sources([source], tokens, options, executor=executor)[0]
    with worker_pool(workers) as pool:
        return audit_sources([source], tokens, options, executor=pool)[0]


def _plan(src: NllSource, tokens: torch.Tensor, baseline: dict[str, Any], options: AuditOptions):
    """Null control; a CausalityResult when the audit must stop here, else the plan."""
    started = time.perf_counter()
    first, base = baseline["first"], baseline["base"]
    scored = base.count > 0
    if not scored.any():
        return _error(src.name, "the source scored no targets on the audit stream", options, started, tokens)
    null_pos, _ = _moved(first, base, first.nll.size, options.tolerance)
    both = scored & (first.count > 0)
    null_max = float(np.max(np.abs(first.nll[both] - base.nll[both]))) if both.any() else 0.0
    if null_pos.size:
        res = _error(src.name, f"nondeterministic: two unflipped runs differ at {null_pos.size} targets "
                     f"(max |ΔNLL| {null_max:.3g} > tolerance {options.tolerance:g})", options, started, tokens)
        res.null_max_abs_delta = null_max
        return res
    return {**baseline, "null_max": null_max}


def _merge(outcome: FlipTestOutcome, rec: FlipRecord, pos: list[int], delta: list[float], units: np.ndarray | None) -> None:
    outcome.flips += 1
    if not pos:
        return
    outcome.flips_with_leak += 1
    outcome.positions_affected += len(pos)
    mags = [math.inf if d != d else abs(d) for d in delta]  # NaN: scored set changed
    k = int(np.argmax(mags))
    if mags[k] > outcome.max_abs_delta or outcome.example is None:
        outcome.max_abs_delta = max(outcome.max_abs_delta, mags[k])
        outcome.example = Example(rec.flip, pos[k], float(delta[k]), rec.wrong_token, rec.true_token)
    if units is not None:
        same = sum(1 for p in pos if units[p] == units[rec.flip])
        outcome.same_unit_affected += same
        outcome.other_unit_affected += len(pos) - same


def _verdict(src: NllSource, tokens: torch.Tensor, plan: dict[str, Any], records: list[FlipRecord],
             options: AuditOptions) -> CausalityResult:
    base: Scored = plan["base"]
    units = _units(src, base.nll.size)
    res = CausalityResult(src.name, Status.PASS, "", tolerance=options.tolerance, norm_tolerance=options.norm_tolerance,
                          seed=options.seed, flips_requested=options.flips, flip_positions=list(plan["flips"]),
                          stream_tokens=int(tokens.numel()), scored_targets=int((base.count > 0).sum()),
                          null_max_abs_delta=plan["null_max"], val_bpb=float(base.val_bpb), val_loss=float(base.val_loss),
                          runs=2 + 2 * len(records))
    has_rows = bool(base.logprobs)
    if has_rows:
        res.distribution = DistributionOutcome()
        res.normalization = _normalization(base, options.norm_tolerance, tokens)
    advantages = []
    for rec in records:
        _merge(res.stream_flip, rec, rec.stream_pos, rec.stream_delta, units)
        if getattr(src, "supports_target_flip", True):
            _merge(res.target_flip, rec, rec.target_pos, rec.target_delta, units)
        res.target_flip.later_positions_moved += rec.target_later_moved
        if res.distribution is not None:
            for rd in (rec.stream_row_delta, rec.target_row_delta):
                if rd is None:
                    continue
                res.distribution.checked += 1
                if rd > (options.tolerance if options.row_tolerance is None else options.row_tolerance):
                    res.distribution.changed += 1
                    if rd > res.distribution.max_abs_delta or res.distribution.example_flip is None:
                        res.distribution.example_flip = rec.flip
                    res.distribution.max_abs_delta = max(res.distribution.max_abs_delta, rd)
        if rec.self_prediction is not None:
            advantages.append(rec.self_prediction)
    if advantages:
        a = np.asarray(advantages)
        res.self_prediction = SelfPrediction(float(a.mean()), float(a.min()), float(a.max()), int(a.size))

    if res.stream_flip.flips_with_leak:
        res.failed_tests.append("stream-flip")
    if res.target_flip.flips_with_leak:
        res.failed_tests.append("target-flip")
    if res.distribution is not None and res.distribution.changed:
        res.failed_tests.append("distribution")
    if res.normalization is not None and res.normalization.rows_off:
        res.failed_tests.append("normalization")
    res.channels = _channels(res, units is not None)
    res.status = Status.FAIL if res.failed_tests else Status.PASS
    res.summary = _summary(res)
    res.seconds = plan["seconds"]
    return res


def _normalization(base: Scored, tol: float, tokens: torch.Tensor | None = None) -> NormalizationOutcome:
    """Σp of every row; with ``tokens``, also whether each row is the scored distribution: the
    score of a target scored once must be the row's -log p(target) (to SCORE_ROW_TOLERANCE)."""
    out = NormalizationOutcome()
    ids = None if tokens is None else tokens.reshape(-1).numpy()
    for pos, row in sorted(base.logprobs.items()):
        mass = float(np.exp(row).sum())
        err = abs(mass - 1.0)
        out.rows_checked += 1
        if not err <= tol:  # NaN mass is off too
            out.rows_off += 1
        if out.worst_mass is None or not err <= out.max_abs_mass_error:
            out.max_abs_mass_error, out.worst_mass = err, mass
        if ids is None or pos + 1 >= ids.size or base.count[pos] != 1:
            continue
        target = int(ids[pos + 1])
        score, own = float(base.nll[pos]), float(-row[target]) if 0 <= target < row.size else math.nan
        if not abs(score - own) <= SCORE_ROW_TOLERANCE:
            out.rows_unscored += 1
            if out.unscored_example is None:
                out.unscored_example = (int(pos), score, own)
    return out


def _channels(res: CausalityResult, have_units: bool) -> list[str]:
    """Name the leak: target channel (a unit read a target it scores) and/or context channel."""
    target = bool(res.distribution and res.distribution.changed)
    target |= bool(res.self_prediction and res.self_prediction.mean > res.tolerance)
    context = False
    for outcome in (res.stream_flip, res.target_flip):
        if have_units:
            target |= outcome.same_unit_affected > 0
            context |= outcome.other_unit_affected > 0
        else:
            context |= outcome.positions_affected > 0
    return [name for name, found in (("target", target), ("context", context)) if found]


def _rows_note(norm: NormalizationOutcome | None) -> str:
    if norm is None:
        return ""
    if norm.shown:
        return ", rows sum to 1"
    where = ""
    if norm.unscored_example is not None:
        t, score, own = norm.unscored_example
        where = f"; e.g. target {t}: score {score:.4g} nats, row {own:.4g}"
    return f"; Σp = 1, but {norm.unscored_text()}{where}: Σp of the scored distribution is not shown"


def _summary(res: CausalityResult) -> str:
    if res.status is Status.PASS:
        return (f"causal: {res.stream_flip.flips} flips left every earlier score unchanged "
                f"(tolerance {res.tolerance:g} nats)" + _rows_note(res.normalization))
    parts = []
    ex = res.stream_flip.example or res.target_flip.example
    if res.stream_flip.flips_with_leak or res.target_flip.flips_with_leak:
        worst = max(res.stream_flip.max_abs_delta, res.target_flip.max_abs_delta)
        parts.append(f"flipping a token changed earlier scores in "
                     f"{max(res.stream_flip.flips_with_leak, res.target_flip.flips_with_leak)}/{res.stream_flip.flips} flips "
                     f"(max |ΔNLL| {worst:.3g} nats" + (f"; e.g. flip {ex.flip} → target {ex.position}, Δ {ex.delta:+.3g}"
                                                         if ex else "") + ")")
    if res.distribution is not None and res.distribution.changed:
        parts.append(f"the row scoring a target moved when that target changed ({res.distribution.changed}/"
                     f"{res.distribution.checked} rows)")
    if res.normalization is not None and res.normalization.rows_off:
        parts.append(f"{res.normalization.rows_off}/{res.normalization.rows_checked} rows do not sum to 1 "
                     f"(worst Σp = {res.normalization.worst_mass:.4g})")
    channel = " and ".join(res.channels)
    return "; ".join(parts) + (f" [{channel} channel]" if channel else "")
