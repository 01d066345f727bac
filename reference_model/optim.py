"""Optimizers of the seed recipe: Muon for 2-D block matrices, AdamW for everything else.

Parameter groups (DOMAIN.md §5), decided by what a tensor *is*, not only its shape:
  * Muon (MATRIX_LR, MUON_WD): every 2-D weight of a linear map inside the blocks
    (c_q, c_k, c_v, attn proj, MLP fc/proj) plus the projections of BigramHash and the
    shared value embedding. Orthogonalized updates suit these dense maps.
  * AdamW "embed" (TIED_EMBED_LR, ADAM_WD): the lookup tables tok_emb, bigram.embed and
    ve_shared.embed. Rows of a table are updated only when their id occurs, so
    orthogonalizing the whole table would be wrong; they share the embedding lr.
  * AdamW "scalar" (SCALAR_LR, ADAM_WD): gains, gates and mixing vectors: attn/mlp scales,
    resid_mix (2-D but a control tensor), q_gain, vrl gates, skip_weights, smear gate,
    bigram/ve scales, ve_layer_scales. Newton-Schulz would destroy their meaning.
  * An untied lm_head (not in the seed) gets HEAD_LR.

Muon is distributed-aware like the seed's: rank r orthogonalizes parameters i with
``i % world_size == r``, the updates are summed with one all_reduce, and every rank
applies all of them, so ranks stay identical without a second gradient all-reduce.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn

NS_COEFFS = (3.4445, -4.7750, 2.0315)
CONTROL_PATTERNS = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight", "smear",
                    "ve_layer_scales", "ve_shared.scale", "vrl_gate", "bigram.scale")
EMBED_NAMES = ("tok_emb.weight", "bigram.embed.weight", "ve_shared.embed.weight")


def zeropower_via_newtonschulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately orthogonalize ``g`` (quintic Newton-Schulz, the seed's coefficients).

    Runs in bf16 on CUDA as the seed does; on CPU in fp32, where bf16 matmuls are slow.
    """
    a, b, c = NS_COEFFS
    x = g.bfloat16() if g.is_cuda else g.float()
    x = x / (x.norm() + eps)
    transposed = x.size(0) > x.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, with Nesterov and decoupled weight decay."""

    def __init__(self, params, lr: float, momentum: float, backend_steps: int = 5,
                 nesterov: bool = True, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps,
                                      nesterov=nesterov, weight_decay=weight_decay))

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
            update_dtype = torch.bfloat16 if params[0].is_cuda else torch.float32
            flat = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=update_dtype)
            offset = 0
            for i, p in enumerate(params):
                if i % world_size == rank and p.grad is not None:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p.grad)
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(p.grad)
                    g = p.grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                    g = zeropower_via_newtonschulz5(g, steps=group["backend_steps"])
                    g = g * max(1.0, g.size(0) / g.size(1)) ** 0.5  # same RMS for tall matrices
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


def group_parameters(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Split named parameters into "muon", "embed", "scalar" and "head" (see module doc)."""
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {"muon": [], "embed": [], "scalar": [], "head": []}
    for name, p in model.named_parameters():
        if name in EMBED_NAMES:
            groups["embed"].append((name, p))
        elif name.startswith("lm_head"):
            groups["head"].append((name, p))
        elif p.ndim == 2 and not any(pat in name for pat in CONTROL_PATTERNS):
            groups["muon"].append((name, p))
        else:
            groups["scalar"].append((name, p))
    return groups


def build_optimizers(model: nn.Module, hp) -> list[torch.optim.Optimizer]:
    """The seed's optimizers: [AdamW embed(+head), Muon, AdamW scalar]; each group keeps ``base_lr``."""
    g = group_parameters(model)
    adam_kw = dict(betas=(hp.beta1, hp.beta2), eps=hp.adam_eps, weight_decay=hp.adam_wd)
    embed_groups = [{"params": [p for _, p in g["embed"]], "lr": hp.tied_embed_lr if hp.tie_embeddings else hp.embed_lr}]
    if g["head"]:
        embed_groups.append({"params": [p for _, p in g["head"]], "lr": hp.head_lr})
    opts: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(embed_groups, **adam_kw),
        Muon([p for _, p in g["muon"]], lr=hp.matrix_lr, momentum=hp.muon_momentum,
             backend_steps=hp.muon_backend_steps, weight_decay=hp.muon_wd),
        torch.optim.AdamW([{"params": [p for _, p in g["scalar"]], "lr": hp.scalar_lr}], **adam_kw),
    ]
    for opt in opts:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    return opts


def muon_momentum_at(step: int, hp) -> float:
    """Linear momentum warmup from MUON_MOMENTUM_WARMUP_START to MUON_MOMENTUM."""
    frac = min(step / hp.muon_momentum_warmup_steps, 1.0) if hp.muon_momentum_warmup_steps > 0 else 1.0
    return (1 - frac) * hp.muon_momentum_warmup_start + frac * hp.muon_momentum


def set_schedule(opts: list[torch.optim.Optimizer], lr_scale: float, momentum: float) -> None:
    """Scale every group's lr by ``lr_scale``; set Muon's momentum."""
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * lr_scale
            if isinstance(opt, Muon):
                group["momentum"] = momentum
