"""Causal CPU stand-ins for the state-space-model libraries some records import (child side only).

``mamba_ssm`` (Mamba, Mamba2, Mamba3 and its SISO kernel), ``fla`` (gated delta rule, causal
conv1d) and ``einops.rearrange`` have CUDA kernels and no CPU path. The audit does not test
those kernels (library code, not the submission's eval): it needs the model around them to run
and stay causal. Each stand-in keeps the library's constructor, attributes and call signature
and computes a plain causal recurrence over time (a decaying outer-product state read by a
query), so every output position depends only on earlier inputs, as the real kernels' do. The
numbers are not the library's: the audit compares a script's scores with themselves, never with
a GPU run.
"""

from __future__ import annotations

import math
import re
import sys
import types
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- einops


def rearrange(tensor: torch.Tensor, pattern: str, **sizes: int) -> torch.Tensor:
    """``einops.rearrange`` for splits, merges and permutations of named axes."""
    left, right = (side.strip() for side in pattern.split("->"))

    def groups(side: str) -> list[list[str]]:
        return [g.split() if g.startswith("(") is False else g[1:-1].split()
                for g in re.findall(r"\([^)]*\)|\S+", side)]

    lhs, rhs = groups(left), groups(right)
    dims: dict[str, int] = dict(sizes)
    for group, size in zip(lhs, tensor.shape):
        known = math.prod(dims[n] for n in group if n in dims)
        unknown = [n for n in group if n not in dims]
        if len(unknown) == 1:
            dims[unknown[0]] = size // max(known, 1)
        elif not unknown and known != size:
            raise ValueError(f"rearrange: {group} does not match size {size}")
    flat = [n for g in lhs for n in g]
    x = tensor.reshape([dims[n] for n in flat])
    order = [flat.index(n) for g in rhs for n in g]
    x = x.permute(order)
    return x.reshape([math.prod(dims[n] for n in g) for g in rhs])


def repeat(tensor: torch.Tensor, pattern: str, **sizes: int) -> torch.Tensor:
    left, right = (side.strip() for side in pattern.split("->"))
    new = [n for n in right.split() if n not in left.split()]
    x = tensor
    for n in new:
        x = x.unsqueeze(right.split().index(n)).expand(*[sizes[n] if k == right.split().index(n) else -1
                                                          for k in range(x.dim())])
    return x.contiguous()


# ----------------------------------------------------------------------------- the causal scan


def causal_scan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, decay: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``S_t = decay_t * S_{t-1} + v_t k_t^T``; ``y_t = S_t q_t``. q, k: [B,T,H,N]; v: [B,T,H,P]; decay: [B,T,H] in (0, 1].

    Computed in matrix form (a decayed causal linear attention), ``y_t = sum_{s<=t} w_ts (k_s . q_t) v_s``
    with ``w_ts = prod_{s<r<=t} decay_r``: the same numbers as the loop, without a Python step per position.
    """
    t = k.shape[1]
    cum = torch.cumsum(torch.log(decay.clamp_min(1e-30)), dim=1).transpose(1, 2)  # [B,H,T]
    diff = cum[..., :, None] - cum[..., None, :]
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    w = torch.where(mask, torch.exp(diff.clamp(max=0.0)), torch.zeros((), dtype=diff.dtype))
    scores = torch.einsum("bthn,bshn->bhts", q, k) * w
    y = torch.einsum("bhts,bshp->bthp", scores, v)
    tail = torch.exp(cum[..., -1:] - cum)  # [B,H,T] weight of each step in the final state
    final = torch.einsum("bhs,bshp,bshn->bhpn", tail, v, k)
    if state is not None:
        from_start = torch.exp(cum).transpose(1, 2)  # [B,T,H]
        y = y + from_start[..., None] * torch.einsum("bhpn,bthn->bthp", state, q)
        final = final + torch.exp(cum[..., -1])[..., None, None] * state
    return y, final


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """[B,T,G,N] with G groups shared by h heads -> [B,T,h,N]."""
    g = x.shape[2]
    return x.repeat_interleave(max(1, h // g), dim=2) if g != h else x


# ----------------------------------------------------------------------------- mamba_ssm


class Mamba2(nn.Module):
    """``mamba_ssm.Mamba2`` stand-in: in_proj, causal depthwise conv, a selective causal scan, out_proj."""

    def __init__(self, d_model: int, d_state: int = 128, d_conv: int = 4, expand: int = 2, headdim: int = 64,
                 ngroups: int = 1, **kwargs: Any) -> None:
        super().__init__()
        self.d_model, self.d_state, self.expand = d_model, d_state, expand
        self.d_inner = int(expand * d_model)
        self.headdim = min(headdim, self.d_inner)
        self.nheads = max(1, self.d_inner // self.headdim)
        self.ngroups = ngroups
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * ngroups * d_state + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.A_log = nn.Parameter(torch.zeros(self.nheads))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        b, t, _ = x.shape
        z, u, bb, cc, dt = torch.split(self.in_proj(x), [self.d_inner, self.d_inner, self.ngroups * self.d_state,
                                                         self.ngroups * self.d_state, self.nheads], dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :t].transpose(1, 2))
        dt = F.softplus(dt + self.dt_bias)
        decay = torch.exp(-dt * torch.exp(self.A_log))
        k = _heads(bb.reshape(b, t, self.ngroups, self.d_state), self.nheads) * dt[..., None]
        q = _heads(cc.reshape(b, t, self.ngroups, self.d_state), self.nheads)
        v = u.reshape(b, t, self.nheads, self.headdim)
        y, _ = causal_scan(q, k, v, decay)
        y = y + self.D[None, None, :, None] * v
        return self.out_proj(y.reshape(b, t, self.d_inner) * F.silu(z))


Mamba = Mamba2


class Mamba3(nn.Module):
    """``mamba_ssm.modules.mamba3.Mamba3`` stand-in with the attributes scripts read around the kernel."""

    def __init__(self, d_model: int, d_state: int = 64, expand: float = 2, headdim: int = 64, chunk_size: int = 64,
                 ngroups: int = 1, rope_fraction: float = 0.5, is_outproj_norm: bool = False, is_mimo: bool = False,
                 mimo_rank: int = 1, **kwargs: Any) -> None:
        super().__init__()
        self.d_model, self.d_state, self.chunk_size = d_model, d_state, chunk_size
        self.d_inner = int(expand * d_model)
        self.headdim = min(headdim, self.d_inner)
        self.nheads = max(1, self.d_inner // self.headdim)
        self.num_bc_heads, self.mimo_rank, self.is_mimo = ngroups, mimo_rank if is_mimo else 1, is_mimo
        self.num_rope_angles = max(1, int(d_state * rope_fraction) // 2)
        self.is_outproj_norm, self.A_floor = is_outproj_norm, 1e-4
        width = 2 * self.d_inner + 2 * d_state * ngroups * self.mimo_rank + 3 * self.nheads + self.num_rope_angles
        self.in_proj = nn.Linear(d_model, width, bias=False)
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.B_norm = nn.RMSNorm(d_state)
        self.C_norm = nn.RMSNorm(d_state)
        self.B_bias = nn.Parameter(torch.zeros(self.nheads, 1, d_state))
        self.C_bias = nn.Parameter(torch.zeros(self.nheads, 1, d_state))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.outproj_rmsnorm = nn.RMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)


def mamba3_siso_combined(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, ADT: torch.Tensor, DT: torch.Tensor,
                         Trap: torch.Tensor, Q_bias: torch.Tensor | None = None, K_bias: torch.Tensor | None = None,
                         Angles: torch.Tensor | None = None, D: torch.Tensor | None = None,
                         Z: torch.Tensor | None = None, chunk_size: int = 64, Input_States: Any = None,
                         return_final_states: bool = False) -> Any:
    """The Mamba-3 SISO kernel's signature on the causal scan: Q, K [B,L,G,N]; V [B,L,H,P]; ADT, DT, Trap [B,H,L]."""
    b, t, h, p = V.shape
    q = _heads(Q, h) + (Q_bias.reshape(1, 1, h, -1) if Q_bias is not None else 0)
    k = _heads(K, h) + (K_bias.reshape(1, 1, h, -1) if K_bias is not None else 0)
    decay = torch.exp(ADT).transpose(1, 2)
    k = k * (DT * torch.sigmoid(Trap)).transpose(1, 2)[..., None]
    state = Input_States[1] if isinstance(Input_States, (tuple, list)) and len(Input_States) > 1 else None
    y, final = causal_scan(q.float(), k.float(), V.float(), decay.float(), state)
    if D is not None:
        y = y + D.reshape(1, 1, h, 1) * V
    if Z is not None:
        y = y * F.silu(Z)
    y = y.to(V.dtype)
    if return_final_states:
        zero = V.new_zeros(b, h)
        return y, zero, final, k[:, -1], V[:, -1]
    return y


# ----------------------------------------------------------------------------- fla


def chunk_gated_delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
                           initial_state: torch.Tensor | None = None, output_final_state: bool = False,
                           use_qk_l2norm_in_kernel: bool = False, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """Gated delta rule, recurrent form: ``S = e^g S; S += beta (v - S k) k^T``; ``o = S q``. [B,T,H,D] layout."""
    if use_qk_l2norm_in_kernel:
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    b, t, h, dk = k.shape
    s = initial_state if initial_state is not None else q.new_zeros(b, h, v.shape[-1], dk)
    out = []
    for i in range(t):
        s = torch.exp(g[:, i])[..., None, None] * s
        pred = torch.einsum("bhpn,bhn->bhp", s, k[:, i])
        s = s + beta[:, i, :, None, None] * (v[:, i] - pred)[..., None] * k[:, i, :, None, :]
        out.append(torch.einsum("bhpn,bhn->bhp", s, q[:, i] * dk ** -0.5))
    return torch.stack(out, dim=1), (s if output_final_state else None)


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str | None = None, **kwargs: Any) -> torch.Tensor:
    """Depthwise causal convolution over time, [B,T,C] with weight [C,W]."""
    width = weight.shape[-1]
    y = F.conv1d(F.pad(x.transpose(1, 2), (width - 1, 0)), weight.unsqueeze(1), bias, groups=weight.shape[0])
    y = y.transpose(1, 2)
    return F.silu(y) if activation in ("silu", "swish") else y


# ----------------------------------------------------------------------------- install


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__path__ = []  # type: ignore[attr-defined]
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, mod)
    return mod


def install() -> None:
    """Register the stand-ins as modules, unless the real libraries are importable."""
    try:
        import mamba_ssm  # noqa: F401
    except Exception:  # noqa: BLE001
        _module("mamba_ssm", Mamba=Mamba, Mamba2=Mamba2)
        _module("mamba_ssm.modules")
        _module("mamba_ssm.modules.mamba2", Mamba2=Mamba2)
        _module("mamba_ssm.modules.mamba3", Mamba3=Mamba3)
        for sub in ("ops", "ops.triton", "ops.triton.mamba3"):
            _module(f"mamba_ssm.{sub}")
        _module("mamba_ssm.ops.triton.mamba3.mamba3_siso_combined", mamba3_siso_combined=mamba3_siso_combined)
    try:
        import fla  # noqa: F401
    except Exception:  # noqa: BLE001
        _module("fla")
        _module("fla.ops")
        _module("fla.ops.gated_delta_rule", chunk_gated_delta_rule=chunk_gated_delta_rule,
                fused_recurrent_gated_delta_rule=chunk_gated_delta_rule)
        _module("fla.modules")
        _module("fla.modules.convolution", causal_conv1d=causal_conv1d)
    try:
        import einops  # noqa: F401
    except Exception:  # noqa: BLE001
        _module("einops", rearrange=rearrange, repeat=repeat)
