"""Train the seed stack: ``python -m reference_model.train`` or ``torchrun ... -m reference_model.train``.

The seed recipe (DOMAIN.md §5): Muon + AdamW, momentum warmup, grad clip, wall-clock cap with
a linear warmdown over the last WARMDOWN_ITERS steps' worth of time, EMA, late QAT, and
WARMUP_STEPS that only prime compilation before model and optimizer state are restored.
Then export to the int6+lzma container, reload it into a fresh model, and evaluate the
roundtrip (standard and sliding windows). Log lines follow the records' formats (§8).

Data: DATA_PATH empty (the tiny preset) -> the embedded pydoc corpus; otherwise the records'
layout ``DATA_PATH/fineweb_{train,val}_*.bin`` with TOKENIZER_PATH.
Hyperparameters come from the environment (``Hyperparameters.from_env``), e.g.
``PRESET=tiny MAX_WALLCLOCK_SECONDS=60 python -m reference_model.train``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn

from . import export
from .config import Hyperparameters
from .data import DistributedTokenLoader, default_tokenizer, embedded_streams, load_val_tokens, truncate_for_eval
from .distributed import compute_cleanup, compute_init
from .metric import build_luts, load_tokenizer
from .model import GPT, apply_seed_dtype_layout
from .optim import build_optimizers, muon_momentum_at, set_schedule

EMA_DECAY = 0.997


def lr_scale_at(hp: Hyperparameters, step: int, elapsed_ms: float) -> float:
    """The seed's schedule: flat, then linear warmdown to 0.

    With a wall-clock cap the warmdown covers the last WARMDOWN_ITERS steps' worth of time
    (estimated from the average step time so far); without one, the last WARMDOWN_ITERS steps.
    """
    if hp.warmdown_iters <= 0:
        return 1.0
    if hp.max_wallclock_seconds <= 0:
        start = max(hp.iterations - hp.warmdown_iters, 0)
        return max((hp.iterations - step) / max(hp.warmdown_iters, 1), 0.0) if start <= step < hp.iterations else 1.0
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = hp.warmdown_iters * step_ms
    remaining_ms = max(hp.max_wallclock_seconds * 1000.0 - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


class EMA:
    """fp32 exponential moving average of the state_dict, applied before export.

    The seed's: constant decay 0.997 from the initial weights (after the warmup restore),
    updated after every optimizer step. ``warmup`` (EMA_WARMUP=1, a deviation for short CPU
    runs such as the demo, off by default) uses min(0.997, (1+s)/(10+s)) instead, so that a
    run of a few hundred steps does not export mostly its random initialization.
    """

    def __init__(self, model: nn.Module, warmup: bool = False) -> None:
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
        self.warmup = warmup
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(EMA_DECAY, (1 + self.updates) / (10 + self.updates)) if self.warmup else EMA_DECAY
        for k, v in model.state_dict().items():
            self.shadow[k].mul_(decay).add_(v.detach().float(), alpha=1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def apply_to(self, model: nn.Module) -> None:
        sd = model.state_dict()
        model.load_state_dict({k: self.shadow[k].to(sd[k].dtype) for k in sd}, strict=True)


@dataclass
class LoopState:
    step: int = 0
    train_time_ms: float = 0.0
    stopped_early: bool = False
    qat_enabled_at: int | None = None
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)  # before clipping (nan when not clipped)
    ema: EMA | None = None  # the running average (train_steps keeps it for callers that compare it)


@dataclass
class StepResult:
    loss: torch.Tensor  # mean micro-batch loss of this rank (what the records log as train_loss)
    grad_norm: torch.Tensor | None  # total grad norm before clipping (None when GRAD_CLIP_NORM is 0)


def zero_grad(opts) -> None:
    for opt in opts:
        opt.zero_grad(set_to_none=True)


def train_step(model: nn.Module, train_model: nn.Module, opts, loader: DistributedTokenLoader, hp: Hyperparameters,
               grad_accum_steps: int, device: torch.device, lr_scale: float, momentum: float,
               autocast: bool = False) -> StepResult:
    """One optimizer step over TRAIN_BATCH_TOKENS tokens (all ranks, all micro-batches), as the seed's loop body.

    Each micro-batch backpropagates ``loss * (1 / grad_accum_steps)``; then Muon's momentum
    and every lr are set, gradients clipped over all parameters, every optimizer steps.
    """
    zero_grad(opts)
    total = torch.zeros((), device=device)
    grad_scale = 1.0 / grad_accum_steps
    for micro in range(grad_accum_steps):
        x, y = loader.next_batch(hp.train_batch_tokens, hp.train_seq_len, grad_accum_steps)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        sync = getattr(train_model, "no_sync", None)
        # DDP all-reduces gradients only on the last micro-batch.
        ctx = sync() if (sync is not None and micro < grad_accum_steps - 1) else contextlib.nullcontext()
        with ctx, torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = train_model(x, y)
            total += loss.detach()  # stays on device: no host sync per micro-batch
            (loss * grad_scale).backward()
    total /= grad_accum_steps
    set_schedule(opts, lr_scale, momentum)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip_norm) if hp.grad_clip_norm > 0 else None
    for opt in opts:
        opt.step()
    zero_grad(opts)
    return StepResult(total, norm)


def grad_accum_for(hp: Hyperparameters, world_size: int) -> int:
    """Micro-batches per rank: GRAD_ACCUM_STEPS, else the seed's 8 // world_size.

    The global batch stays TRAIN_BATCH_TOKENS either way, and micro-batches of equal size
    average to the same loss, so GRAD_ACCUM_STEPS changes only rounding (and speed: on CPU
    one large micro-batch is ~3x cheaper than eight small ones).
    """
    if hp.grad_accum_steps > 0:
        return hp.grad_accum_steps
    if hp.grad_accum_steps < 0 or 8 % world_size:
        raise ValueError(f"WORLD_SIZE={world_size} must divide 8 (the seed's grad accumulation); set GRAD_ACCUM_STEPS")
    return 8 // world_size


def late_qat_due(hp: Hyperparameters, scale: float, state: LoopState) -> bool:
    """The seed's switch: once, as soon as the lr scale drops below LATE_QAT_THRESHOLD."""
    return hp.late_qat_threshold > 0 and scale < hp.late_qat_threshold and state.qat_enabled_at is None


def train_steps(model: nn.Module, hp: Hyperparameters, tokens: torch.Tensor | str, *, steps: int,
                log: Callable[[str], None] = lambda s: None, apply_ema: bool = True) -> LoopState:
    """Train ``model`` in place for ``steps`` steps on a stream or shard pattern (one process).

    The seed's loop without wall clock, logging or evaluation: Muon + AdamW, momentum warmup,
    clip, step-based warmdown, late QAT, EMA applied at the end (unless ``apply_ema`` is
    false: then ``state.ema`` holds it). Used by the demo and by the fidelity test of three
    training steps.
    """
    hp = hp.replace(iterations=steps, max_wallclock_seconds=0.0)
    device = next(model.parameters()).device
    model.train()
    opts = build_optimizers(model, hp)
    loader = DistributedTokenLoader(tokens)
    accum = grad_accum_for(hp, 1)
    ema = EMA(model, warmup=bool(hp.ema_warmup))
    state = LoopState()
    t0 = time.perf_counter()
    for step in range(steps):
        scale = lr_scale_at(hp, step, 0.0)
        if late_qat_due(hp, scale, state):
            model.set_qat(True)
            state.qat_enabled_at = step
        res = train_step(model, model, opts, loader, hp, accum, device, scale, muon_momentum_at(step, hp))
        ema.update(model)
        state.losses.append(float(res.loss))
        state.grad_norms.append(float(res.grad_norm) if res.grad_norm is not None else float("nan"))
        state.step = step + 1
        if hp.train_log_every > 0 and (step + 1) % hp.train_log_every == 0:
            log(f"step:{step + 1}/{steps} train_loss:{state.losses[-1]:.4f} train_time:{(time.perf_counter() - t0) * 1000:.0f}ms")
    model.set_qat(False)
    state.ema = ema
    if apply_ema:
        ema.apply_to(model)
    state.train_time_ms = (time.perf_counter() - t0) * 1000
    return state


# ----------------------------------------------------------------------------- entry point


class RunLog:
    """Rank 0 writes each line to stdout and to OUTPUT_DIR/<RUN_ID>.txt; other ranks stay quiet."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file = open(path, "a", encoding="utf-8") if path is not None else None

    def __call__(self, line: str = "", console: bool = True) -> None:
        if self.file is None:
            return
        if console:
            print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (out.stdout.strip() or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def imported_source_files() -> list[Path]:
    """Every reference_model source file loaded in this process (the code that ran)."""
    root = Path(__file__).resolve().parent
    files = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and f.endswith(".py") and Path(f).resolve().is_relative_to(root):
            files.add(Path(f).resolve())
    return sorted(files)


def load_data(hp: Hyperparameters):
    """(train source, val tokens, tokenizer): in-memory embedded corpus or the records' shards."""
    if not hp.data_path:
        sp = load_tokenizer(hp.tokenizer_path) if hp.tokenizer_path else default_tokenizer(hp.vocab_size)
        train, val, sp = embedded_streams(sp)
        return train, truncate_for_eval(val, hp.train_seq_len), sp
    sp = load_tokenizer(hp.tokenizer_path)
    val = load_val_tokens(os.path.join(hp.data_path, "fineweb_val_*.bin"), hp.train_seq_len)
    return os.path.join(hp.data_path, "fineweb_train_*.bin"), val, sp


def evaluate_scored(model: nn.Module, name: str, val_tokens: torch.Tensor, luts, settings: dict):
    """A registered evaluator's ``Scored`` (model in eval mode meanwhile); sums all-reduced across ranks."""
    from .evaluate import get_evaluator

    was_training = model.training
    model.eval()
    scored = get_evaluator(name, settings).score(model, val_tokens, luts)
    model.train(was_training)
    return scored


def evaluate(model: nn.Module, name: str, val_tokens: torch.Tensor, luts, settings: dict) -> tuple[float, float]:
    """(val_loss, val_bpb) from a registered evaluator."""
    scored = evaluate_scored(model, name, val_tokens, luts, settings)
    return scored.val_loss, scored.val_bpb


def _progress(total: int, enabled: bool):
    """A rich progress bar on stderr when it is a TTY (never in logs or pipes)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    bar.start()
    bar.add_task("train", total=total, info="")
    return bar


def main(env: dict[str, str] | None = None) -> dict[str, float]:
    """Run the recipe; returns the final metrics (rank 0 also writes the log and artifacts)."""
    hp = Hyperparameters.from_env(env)
    ddp, rank, local_rank, world_size, device = compute_init(os.environ.get("TRAIN_DEVICE") or None)
    try:
        return _run(hp, ddp, rank, world_size, device)
    finally:
        compute_cleanup()


def _run(hp: Hyperparameters, ddp: bool, rank: int, world_size: int, device: torch.device) -> dict[str, float]:
    from .evaluate import REGISTRY  # noqa: F401 - imported up front so its files count as code

    cuda = device.type == "cuda"
    grad_accum_steps = grad_accum_for(hp, world_size)
    out_dir = Path(hp.output_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(out_dir / f"{hp.run_id}.txt" if rank == 0 else None)
    torch.manual_seed(hp.seed)
    if cuda:
        torch.cuda.manual_seed(hp.seed)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Self-describing header: what ran, where.
    dev_name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine())
    log(f"reference_model.train (golf-audit seed stack) code_version:{git_revision()}")
    log(f"python:{platform.python_version()} torch:{torch.__version__} device:{device.type} ({dev_name}) "
        f"world_size:{world_size} grad_accum_steps:{grad_accum_steps} backend:{dist.get_backend() if ddp else 'none'}")
    log("hyperparameters: " + " ".join(f"{k}={v}" for k, v in sorted(hp.as_env().items())))
    log(f"seed:{hp.seed}")  # the records' own seed line, which auditors cross-check against claims

    train_source, val_tokens, sp = load_data(hp)
    if sp.get_piece_size() > hp.vocab_size:
        raise ValueError(f"tokenizer has {sp.get_piece_size()} pieces but VOCAB_SIZE={hp.vocab_size}")
    luts = build_luts(sp, hp.vocab_size)
    log(f"val_tokens:{val_tokens.numel()} data:{hp.data_path or 'embedded pydoc_data.topics corpus'}")

    base_model = GPT(hp).to(device)
    if cuda:  # the seed's precision layout: bf16 embedding tables, fp32 everything else
        apply_seed_dtype_layout(base_model)
    log(f"model_params:{sum(p.numel() for p in base_model.parameters())}")
    train_model: nn.Module = torch.compile(base_model, dynamic=False) if cuda else base_model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[device.index] if cuda else None, broadcast_buffers=False)
    opts = build_optimizers(base_model, hp)
    # The seed's eval_val batch: VAL_BATCH_SIZE // (world_size * grad_accum_steps) // seq_len sequences.
    std_settings = {"seq_len": hp.train_seq_len,
                    "batch": max(1, hp.val_batch_size // (world_size * grad_accum_steps) // hp.train_seq_len)}

    def step_fn(loader, scale: float, momentum: float) -> StepResult:
        return train_step(base_model, train_model, opts, loader, hp, grad_accum_steps, device, scale, momentum, autocast=cuda)

    # Warmup steps only prime compilation / allocator; the state is then restored so the
    # timed run starts from the same weights, optimizer state and data as without them.
    if hp.warmup_steps > 0:
        saved_model = copy.deepcopy(base_model.state_dict())
        saved_opts = [copy.deepcopy(o.state_dict()) for o in opts]
        warm_loader = DistributedTokenLoader(train_source, rank, world_size)
        for i in range(hp.warmup_steps):
            step_fn(warm_loader, 1.0, muon_momentum_at(0, hp))
            log(f"warmup_step:{i + 1}/{hp.warmup_steps}")
        base_model.load_state_dict(saved_model)
        for o, st in zip(opts, saved_opts):
            o.load_state_dict(st)
        for o in opts:
            o.zero_grad(set_to_none=True)
    loader = DistributedTokenLoader(train_source, rank, world_size)
    ema = EMA(base_model, warmup=bool(hp.ema_warmup))
    cap_ms = hp.max_wallclock_seconds * 1000.0 if hp.max_wallclock_seconds > 0 else None
    bar = _progress(hp.iterations, rank == 0)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    state = LoopState()
    stop_after: int | None = None
    last_val = (float("nan"), float("nan"))
    sync()
    t0 = time.perf_counter()
    step = 0
    while True:
        last_step = step == hp.iterations or (stop_after is not None and step >= stop_after)
        if last_step or (hp.val_loss_every > 0 and step % hp.val_loss_every == 0):
            sync()
            state.train_time_ms += 1000 * (time.perf_counter() - t0)
            last_val = evaluate(base_model, "standard", val_tokens, luts, std_settings)
            log(f"step:{step}/{hp.iterations} val_loss:{last_val[0]:.4f} val_bpb:{last_val[1]:.4f} "
                f"train_time:{state.train_time_ms:.0f}ms step_avg:{state.train_time_ms / max(step, 1):.2f}ms")
            sync()
            t0 = time.perf_counter()
        if last_step:
            if stop_after is not None and step < hp.iterations:
                state.stopped_early = True
                log(f"stopping_early: wallclock_cap train_time:{state.train_time_ms:.0f}ms step:{step}/{hp.iterations}")
            break
        elapsed_ms = state.train_time_ms + 1000 * (time.perf_counter() - t0)
        scale = lr_scale_at(hp, step, elapsed_ms)
        if late_qat_due(hp, scale, state):
            base_model.set_qat(True)
            state.qat_enabled_at = step
            log(f"late_qat:enabled step:{step} scale:{scale:.4f}")
        loss = float(step_fn(loader, scale, muon_momentum_at(step, hp)).loss)
        if ddp:  # log the loss of the whole global batch, not just rank 0's share
            t = torch.tensor([loss], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            loss = float(t) / world_size
        ema.update(base_model)
        state.losses.append(loss)
        step += 1
        approx_ms = state.train_time_ms + 1000 * (time.perf_counter() - t0)
        if hp.train_log_every > 0 and (step <= 10 or step % hp.train_log_every == 0 or stop_after is not None):
            log(f"step:{step}/{hp.iterations} train_loss:{loss:.4f} train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms")
        if bar is not None:
            bar.update(bar.task_ids[0], completed=step, info=f"loss {loss:.3f}")
        reached = cap_ms is not None and approx_ms >= cap_ms
        if ddp and cap_ms is not None:  # every rank must stop at the same step
            flag = torch.tensor(int(reached), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            reached = bool(flag.item())
        if stop_after is None and reached:
            stop_after = step
    if bar is not None:
        bar.stop()
    state.step = step
    log(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB" if cuda else "peak memory allocated: n/a (cpu)")

    # Export: EMA weights, plain checkpoint and the int6+lzma container.
    base_model.set_qat(False)
    ema.apply_to(base_model)
    ema_val = evaluate(base_model, "standard", val_tokens, luts, std_settings)
    log(f"post_ema val_loss:{ema_val[0]:.4f} val_bpb:{ema_val[1]:.4f}")
    code_files = imported_source_files()
    code_bytes = sum(f.stat().st_size for f in code_files)
    pt_path, ptz_path = out_dir / "final_model.pt", out_dir / "final_model.int6.ptz"
    if rank == 0:
        sd = {k: v.detach().cpu() for k, v in base_model.state_dict().items()}
        torch.save(sd, pt_path)
        blob = export.pack(sd)
        ptz_path.write_bytes(blob)
        log(f"Serialized model: {pt_path.stat().st_size} bytes")
        log("Code files: " + " ".join(f"{f.relative_to(Path(__file__).resolve().parent.parent)}:{f.stat().st_size}" for f in code_files))
        log(f"Code size: {code_bytes} bytes")
        log(f"Serialized model int6+lzma: {len(blob)} bytes")
        log(f"Total submission size int6+lzma: {code_bytes + len(blob)} bytes")
    if ddp:
        dist.barrier()

    # Roundtrip: what the official numbers are computed from (in the seed's precision layout).
    eval_model = GPT(hp).to(device)
    if cuda:
        apply_seed_dtype_layout(eval_model)
    export.load_into(eval_model, ptz_path.read_bytes()).eval()
    metrics: dict[str, float] = {"steps": float(state.step), "train_time_ms": state.train_time_ms, "val_bpb": last_val[1]}
    t_eval = time.perf_counter()
    rt = evaluate_scored(eval_model, "standard", val_tokens, luts, std_settings)
    log(f"final_int6_roundtrip val_loss:{rt.val_loss:.4f} val_bpb:{rt.val_bpb:.4f} eval_time:{1000 * (time.perf_counter() - t_eval):.0f}ms")
    log(f"final_int6_roundtrip_exact val_loss:{rt.val_loss:.8f} val_bpb:{rt.val_bpb:.8f}")
    metrics.update(roundtrip_val_loss=rt.val_loss, roundtrip_val_bpb=rt.val_bpb)
    geometry = {"seq_len": hp.eval_seq_len, "stride": hp.eval_stride}
    finals = [("sliding_window", "sliding", {**geometry, "batch": 32})]
    if hp.slot_enabled:
        finals.append(("slot", "slot", {**geometry, "batch": hp.slot_batch_seqs, "steps": hp.slot_steps,
                                        "lr": hp.slot_lr, "lr_min": hp.slot_lr_min}))
    for label, name, settings in finals:
        t_eval = time.perf_counter()
        sc = evaluate_scored(eval_model, name, val_tokens, luts, settings)
        ms = 1000 * (time.perf_counter() - t_eval)
        once = sc.info["once"]
        # The exactly-once line first, so that the last *_exact line stays the seed's number.
        log(f"exactly_once_int6_{label}_exact val_loss:{once['val_loss']:.8f} val_bpb:{once['val_bpb']:.8f} "
            f"scored:{once['tokens']} (each target once; not the seed's enumeration)")
        log(f"final_int6_{label} val_loss:{sc.val_loss:.4f} val_bpb:{sc.val_bpb:.4f} stride:{hp.eval_stride} eval_time:{ms:.0f}ms")
        log(f"final_int6_{label}_exact val_loss:{sc.val_loss:.8f} val_bpb:{sc.val_bpb:.8f}")
        log(f"windows:{label} final_int6_{label}* use the seed's windows: {sc.tokens} scorings of {sc.tokens - sc.duplicate_scorings} "
            f"targets ({sc.duplicate_scorings} tail re-scorings, counted as the seed counts them); exactly_once_* count each once")
        metrics.update({f"{name}_val_loss": sc.val_loss, f"{name}_val_bpb": sc.val_bpb,
                        f"{name}_once_val_loss": once["val_loss"], f"{name}_once_val_bpb": once["val_bpb"]})
    log.close()
    return metrics


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as exc:  # bad configuration or data: one line, not a traceback
        print(f"reference_model.train: error: {exc}", file=sys.stderr)
        sys.exit(2)
