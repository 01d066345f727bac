"""Training loop of the seed recipe (DOMAIN.md §5); entry point comes later in this file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from .config import Hyperparameters
from .data import DistributedTokenLoader
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
    """fp32 exponential moving average of the weights, applied before export.

    Decay is min(0.997, (1+s)/(10+s)): equal to the seed's 0.997 from step ~3,300 on (the
    seed run's 6,574-step export is unchanged to ~5e-5 relative weight), while short CPU runs
    are not dominated by their random initialization.
    """

    def __init__(self, model: nn.Module) -> None:
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(EMA_DECAY, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            self.shadow[k].mul_(decay).add_(v.detach().float(), alpha=1 - decay)
        self.updates += 1

    @torch.no_grad()
    def apply_to(self, model: nn.Module) -> None:
        sd = model.state_dict()
        model.load_state_dict({k: self.shadow[k].to(sd[k].dtype) for k in sd})


@dataclass
class LoopState:
    step: int = 0
    train_time_ms: float = 0.0
    stopped_early: bool = False
    qat_enabled_at: int | None = None
    losses: list[float] = field(default_factory=list)


def train_step(model: nn.Module, train_model: nn.Module, opts, loader: DistributedTokenLoader, hp: Hyperparameters,
               grad_accum_steps: int, device: torch.device, lr_scale: float, momentum: float,
               autocast: bool = False) -> float:
    """One optimizer step over TRAIN_BATCH_TOKENS tokens (all ranks, all micro-batches).

    Returns the mean micro-batch loss of this rank (what the records log as train_loss).
    """
    total = 0.0
    for micro in range(grad_accum_steps):
        x, y = loader.next_batch(hp.train_batch_tokens, hp.train_seq_len, grad_accum_steps)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        sync = getattr(train_model, "no_sync", None)
        # DDP all-reduces gradients only on the last micro-batch.
        ctx = sync() if (sync is not None and micro < grad_accum_steps - 1) else _nullcontext()
        with ctx, torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = train_model(x, y)
            (loss / grad_accum_steps).backward()
        total += float(loss.detach())
    set_schedule(opts, lr_scale, momentum)
    if hp.grad_clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip_norm)
    for opt in opts:
        opt.step()
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    return total / grad_accum_steps


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def train_steps(model: nn.Module, hp: Hyperparameters, tokens: torch.Tensor, *, steps: int,
                log: Callable[[str], None] = lambda s: None, grad_accum_steps: int = 1) -> LoopState:
    """Train ``model`` in place for ``steps`` steps on an in-memory stream (CPU, one process).

    The full recipe (Muon + AdamW, momentum warmup, clip, step-based warmdown, late QAT,
    EMA applied at the end) without wall clock, logging or evaluation. Used by the demo.
    """
    hp = hp.replace(iterations=steps, max_wallclock_seconds=0.0)
    device = next(model.parameters()).device
    model.train()
    opts = build_optimizers(model, hp)
    loader = DistributedTokenLoader(tokens)
    ema = EMA(model)
    state = LoopState()
    t0 = time.perf_counter()
    for step in range(steps):
        scale = lr_scale_at(hp, step, 0.0)
        if hp.late_qat_threshold > 0 and scale < hp.late_qat_threshold and state.qat_enabled_at is None:
            model.set_qat(True)
            state.qat_enabled_at = step
        loss = train_step(model, model, opts, loader, hp, grad_accum_steps, device, scale, muon_momentum_at(step, hp))
        ema.update(model)
        state.losses.append(loss)
        state.step = step + 1
        if hp.train_log_every > 0 and (step + 1) % hp.train_log_every == 0:
            log(f"step:{step + 1}/{steps} train_loss:{loss:.4f} train_time:{(time.perf_counter() - t0) * 1000:.0f}ms")
    model.set_qat(False)
    ema.apply_to(model)
    state.train_time_ms = (time.perf_counter() - t0) * 1000
    return state
