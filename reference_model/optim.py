"""Optimizers of the seed recipe: Muon for 2-D block matrices, AdamW for everything else.

Parameter groups, built exactly as the seed builds them (same members, same order):
  * AdamW "tok" (one group per table, TIED_EMBED_LR, ADAM_WD, fused): tok_emb, bigram.embed,
    ve_shared.embed. Rows of a table are updated only when their id occurs, so
    orthogonalizing the whole table would be wrong.
  * Muon (MATRIX_LR, MUON_WD): every 2-D block parameter that is not a control tensor (c_q,
    c_k, c_v, attn proj, MLP fc/proj), then bigram.proj and ve_shared.proj.
  * AdamW "scalar" (SCALAR_LR, ADAM_WD, fused): every other block parameter (attn/mlp scales,
    resid_mix, q_gain, vrl gates, DTG gates), then skip_weights, smear.gate, bigram.scale,
    ve_shared.scale, ve_layer_scales. Newton-Schulz would destroy their meaning.
  * An untied lm_head gets its own Adam (HEAD_LR, no weight decay), second in the list.

Muon is distributed-aware like the seed's: rank r orthogonalizes parameters i with
``i % world_size == r`` into one flat update buffer, the buffer is summed with one
all_reduce, and every rank applies all of it, so ranks stay identical without a second
gradient all-reduce. The seed runs Newton-Schulz and that buffer in bf16 on every device;
``ns_dtype`` chooses (``ns_dtype_for``: the seed's bf16 on CUDA, fp32 on CPU by default,
where bf16 matmuls are slow and the fidelity vector is stated in fp32).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from .model import CONTROL_PATTERNS

NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def ns_dtype_for(choice: str, device: torch.device) -> torch.dtype:
    """MUON_NS_DTYPE: ``auto`` (bf16 on CUDA as the seed, fp32 elsewhere), ``bf16`` or ``fp32``."""
    if choice == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if choice not in NS_DTYPES:
        raise ValueError(f"MUON_NS_DTYPE={choice!r} must be auto, bf16 or fp32")
    return NS_DTYPES[choice]


def zeropower_via_newtonschulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7,
                                dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Approximately orthogonalize ``g`` (quintic Newton-Schulz), in ``dtype``.

    The seed's arithmetic, operation for operation: ``B = b A + (c A) A`` (Python evaluates
    ``c * A @ A`` left to right), the transposed iteration for tall matrices.
    """
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + eps)
    transposed = g.size(0) > g.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        B = b * A + (c * A) @ A
        x = a * x + B @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, with Nesterov and decoupled weight decay."""

    def __init__(self, params, lr: float, momentum: float, backend_steps: int = 5,
                 nesterov: bool = True, weight_decay: float = 0.0, ns_dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps,
                                      nesterov=nesterov, weight_decay=weight_decay))
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim signature
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
            flat = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=self.ns_dtype)
            offset = 0
            for i, p in enumerate(params):
                if i % world_size == rank and p.grad is not None:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p.grad)
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(p.grad)
                    g = p.grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                    g = zeropower_via_newtonschulz5(g, steps=group["backend_steps"], dtype=self.ns_dtype)
                    g = g * max(1, g.size(0) / g.size(1)) ** 0.5  # same RMS for tall matrices
                    flat[offset : offset + p.numel()] = g.reshape(-1)
                offset += p.numel()
            if distributed:
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for p in params:
                if wd > 0:
                    p.mul_(1 - lr * wd)
                p.add_(flat[offset : offset + p.numel()].view_as(p).to(p.dtype), alpha=-lr)
                offset += p.numel()


def _is_control(name: str) -> bool:
    return any(pat in name for pat in CONTROL_PATTERNS)


def group_parameters(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Named parameters in the seed's groups ("tok", "muon", "scalar", "head"), in its order."""
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {"tok": [], "muon": [], "scalar": [], "head": []}
    for name, p in model.blocks.named_parameters(prefix="blocks"):
        groups["muon" if p.ndim == 2 and not _is_control(name) else "scalar"].append((name, p))
    if model.skip_weights.numel() > 0:
        groups["scalar"].append(("skip_weights", model.skip_weights))
    groups["scalar"].append(("smear.gate", model.smear.gate))
    groups["tok"].append(("tok_emb.weight", model.tok_emb.weight))
    if model.bigram is not None:
        groups["scalar"].append(("bigram.scale", model.bigram.scale))
        groups["tok"].append(("bigram.embed.weight", model.bigram.embed.weight))
        if model.bigram.proj is not None:
            groups["muon"].append(("bigram.proj.weight", model.bigram.proj.weight))
    if model.ve_shared is not None:
        groups["tok"].append(("ve_shared.embed.weight", model.ve_shared.embed.weight))
        if model.ve_shared.proj is not None:
            groups["muon"].append(("ve_shared.proj.weight", model.ve_shared.proj.weight))
        groups["scalar"].append(("ve_shared.scale", model.ve_shared.scale))
        groups["scalar"].extend((f"ve_layer_scales.{i}", s) for i, s in enumerate(model.ve_layer_scales))
    if model.lm_head is not None:
        groups["head"].append(("lm_head.weight", model.lm_head.weight))
    return groups


def _fused(params: list[nn.Parameter]) -> dict[str, Any]:
    """``fused=True`` as the seed, where torch has the fused kernel for these tensors."""
    ok = all(p.device.type in ("cuda", "cpu") and p.dtype in (torch.float32, torch.bfloat16, torch.float16) for p in params)
    return {"fused": True} if ok else {}


def build_optimizers(model: nn.Module, hp, ns_dtype: torch.dtype | None = None) -> list[torch.optim.Optimizer]:
    """The seed's optimizers: [AdamW tok, (Adam head,) Muon, AdamW scalar]; groups keep ``base_lr``."""
    g = group_parameters(model)
    device = model.tok_emb.weight.device
    ns = ns_dtype if ns_dtype is not None else ns_dtype_for(getattr(hp, "muon_ns_dtype", "auto"), device)
    token_lr = hp.tied_embed_lr if hp.tie_embeddings else hp.embed_lr
    tok = [p for _, p in g["tok"]]
    scalar = [p for _, p in g["scalar"]]
    betas = (hp.beta1, hp.beta2)
    opts: list[torch.optim.Optimizer] = [
        torch.optim.AdamW([{"params": [p], "lr": token_lr} for p in tok], betas=betas, eps=hp.adam_eps,
                          weight_decay=hp.adam_wd, **_fused(tok)),
        Muon([p for _, p in g["muon"]], lr=hp.matrix_lr, momentum=hp.muon_momentum,
             backend_steps=hp.muon_backend_steps, weight_decay=hp.muon_wd, ns_dtype=ns),
        torch.optim.AdamW([{"params": scalar, "lr": hp.scalar_lr}], betas=betas, eps=hp.adam_eps,
                          weight_decay=hp.adam_wd, **_fused(scalar)),
    ]
    if g["head"]:
        head = [p for _, p in g["head"]]
        opts.insert(1, torch.optim.Adam([{"params": head, "lr": hp.head_lr}], betas=betas, eps=hp.adam_eps, **_fused(head)))
    for opt in opts:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    return opts


def muon_momentum_at(step: int, hp) -> float:
    """Linear momentum warmup from MUON_MOMENTUM_WARMUP_START to MUON_MOMENTUM."""
    frac = min(step / hp.muon_momentum_warmup_steps, 1.0) if hp.muon_momentum_warmup_steps > 0 else 1.0
    return (1 - frac) * hp.muon_momentum_warmup_start + frac * hp.muon_momentum


def set_schedule(opts: list[torch.optim.Optimizer], lr_scale: float, momentum: float) -> None:
    """Set Muon's momentum, then every group's lr to ``base_lr * lr_scale`` (the seed's order)."""
    for opt in opts:
        if isinstance(opt, Muon):
            for group in opt.param_groups:
                group["momentum"] = momentum
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * lr_scale
