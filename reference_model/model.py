"""The seed PR's GPT, component by component (DOMAIN.md §5).

Input path:   tok_emb + BigramHash -> RMSNorm -> SmearGate  (kept as x0)
Trunk:        11 blocks in a U-Net: the first half stores activations, the second half adds
              them back with learned weights; every block re-mixes x0 in (resid_mix).
Attention:    q/k RMSNorm, partial RoPE, per-head QK gain, GQA, XSA, VRL, shared value embedding.
MLP:          down(leaky_relu(up(x), 0.5)^2).
Head:         tied embedding, logit softcap 30.

At the default configuration ``state_dict()`` has exactly the seed script's names and shapes,
so a seed checkpoint loads with ``strict=True``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Hyperparameters

INT6_MAX = 31


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def fake_quant_int6(w: torch.Tensor) -> torch.Tensor:
    """Straight-through int6 per-row quantization, used for late QAT."""
    scale = w.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1e-8) / INT6_MAX
    q = torch.clamp(torch.round(w / scale), -INT6_MAX, INT6_MAX) * scale
    return w + (q - w).detach()


class CastedLinear(nn.Linear):
    """Linear layer that keeps fp32 master weights and computes in the input's dtype.

    ``qat`` is flipped on by the training loop once the learning-rate scale drops below
    LATE_QAT_THRESHOLD; from then on the forward sees int6-rounded weights.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.qat = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quant_int6(self.weight) if (self.qat and self.training) else self.weight
        return F.linear(x, w.to(x.dtype))


class Rotary(nn.Module):
    """Partial RoPE: rotates the first ``dims`` of each head, leaves the rest untouched."""

    def __init__(self, head_dim: int, dims: int, base: float) -> None:
        super().__init__()
        assert dims % 2 == 0 and dims <= head_dim, "ROPE_DIMS must be even and <= head_dim"
        self.dims = dims
        inv_freq = 1.0 / (base ** (torch.arange(0, dims, 2, dtype=torch.float32) / dims))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, H, D)
        if self.dims == 0:
            return x
        t = torch.arange(x.size(1), device=x.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)  # (T, dims/2)
        cos = freqs.cos()[None, :, None, :].to(x.dtype)
        sin = freqs.sin()[None, :, None, :].to(x.dtype)
        rot, rest = x[..., : self.dims], x[..., self.dims :]
        x1, x2 = rot.chunk(2, dim=-1)
        rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return torch.cat((rotated, rest), dim=-1)


class BigramHash(nn.Module):
    """Hashed embedding of (previous token, token) pairs, projected to the model width."""

    def __init__(self, buckets: int, dim: int, model_dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.embed = nn.Embedding(buckets, dim)
        self.proj = CastedLinear(dim, model_dim)
        self.scale = nn.Parameter(torch.tensor(0.05))

    def bucket_ids(self, ids: torch.Tensor) -> torch.Tensor:
        prev = F.pad(ids[:, :-1], (1, 0))
        h = torch.bitwise_xor(36313 * ids, 27191 * prev) % (self.buckets - 1)
        h[:, 0] = self.buckets - 1  # position 0 has no predecessor: its own bucket
        return h

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(self.bucket_ids(ids))) * self.scale


class SmearGate(nn.Module):
    """x_t <- (1 - sigma(g)) * x_t + sigma(g) * x_{t-1}, one gate per dimension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        g = torch.sigmoid(self.gate).to(x.dtype)
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        return (1 - g) * x + g * prev


class ValueEmbedding(nn.Module):
    """One token embedding shared by the value-embedding layers, projected to the KV width."""

    def __init__(self, vocab: int, dim: int, kv_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = CastedLinear(dim, kv_dim)
        self.scale = nn.Parameter(torch.tensor(0.1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(ids)) * self.scale


class CausalSelfAttention(nn.Module):
    def __init__(self, hp: Hyperparameters, layer: int) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = hp.num_heads, hp.num_kv_heads, hp.head_dim
        assert hp.model_dim % hp.num_heads == 0 and hp.num_heads % hp.num_kv_heads == 0
        self.q_gain = nn.Parameter(torch.full((hp.num_heads,), hp.qk_gain_init))
        if hp.vrl_enabled and layer > 0:
            self.vrl_gate = nn.Parameter(torch.tensor(-1.5))
        else:
            self.vrl_gate = None
        self.c_q = CastedLinear(hp.model_dim, hp.model_dim)
        self.c_k = CastedLinear(hp.model_dim, hp.kv_dim)
        self.c_v = CastedLinear(hp.model_dim, hp.kv_dim)
        self.proj = CastedLinear(hp.model_dim, hp.model_dim)
        self.rotary = Rotary(hp.head_dim, hp.rope_dims, hp.rope_base)
        self.use_xsa = layer >= hp.num_layers - hp.xsa_last_n

    def forward(
        self, x: torch.Tensor, v_first: torch.Tensor | None, ve: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        q = self.c_q(x).view(B, T, self.num_heads, self.head_dim)
        k = self.c_k(x).view(B, T, self.num_kv_heads, self.head_dim)
        v = self.c_v(x).view(B, T, self.num_kv_heads, self.head_dim)
        raw_v = v
        if self.vrl_gate is not None and v_first is not None:
            g = torch.sigmoid(self.vrl_gate).to(v.dtype)
            v = (1 - g) * v + g * v_first
        if ve is not None:
            v = v + ve.view(B, T, self.num_kv_heads, self.head_dim)
        q = self.rotary(rms_norm(q)) * self.q_gain.to(q.dtype)[None, None, :, None]
        k = self.rotary(rms_norm(k))
        group = self.num_heads // self.num_kv_heads
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.repeat_interleave(group, dim=2).transpose(1, 2),
            v.repeat_interleave(group, dim=2).transpose(1, 2),
            is_causal=True,
        ).transpose(1, 2)  # (B, T, H, D)
        if self.use_xsa:
            # Exclusive self-attention: drop each head's component along its own value vector.
            yg = y.reshape(B, T, self.num_kv_heads, group, self.head_dim)
            vn = F.normalize(v, dim=-1).unsqueeze(3)  # (B, T, Hkv, 1, D)
            yg = yg - (yg * vn).sum(-1, keepdim=True) * vn
            y = yg.reshape(B, T, self.num_heads, self.head_dim)
        return self.proj(y.reshape(B, T, -1)), raw_v


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = CastedLinear(dim, hidden)
        self.proj = CastedLinear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.leaky_relu(self.fc(x), 0.5).square())


class Block(nn.Module):
    def __init__(self, hp: Hyperparameters, layer: int) -> None:
        super().__init__()
        self.attn_scale = nn.Parameter(torch.ones(hp.model_dim))
        self.mlp_scale = nn.Parameter(torch.ones(hp.model_dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(hp.model_dim), torch.zeros(hp.model_dim))))
        self.attn = CausalSelfAttention(hp, layer)
        self.mlp = MLP(hp.model_dim, hp.mlp_hidden)
        self.ln_factor = 1.0 / math.sqrt(layer + 1) if hp.ln_scale else 1.0

    def forward(self, x, x0, v_first, ve):
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        attn_out, raw_v = self.attn(rms_norm(x) * self.ln_factor, v_first, ve)
        x = x + self.attn_scale.to(x.dtype) * attn_out
        x = x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x) * self.ln_factor)
        return x, raw_v


class GPT(nn.Module):
    def __init__(self, hp: Hyperparameters) -> None:
        super().__init__()
        self.hp = hp
        self.num_encoder_layers = hp.num_layers // 2
        self.num_decoder_layers = hp.num_layers - self.num_encoder_layers
        num_skips = min(self.num_encoder_layers, self.num_decoder_layers)
        self.skip_weights = nn.Parameter(torch.ones(num_skips, hp.model_dim))
        self.tok_emb = nn.Embedding(hp.vocab_size, hp.model_dim)
        self.bigram = BigramHash(hp.bigram_vocab_size, hp.bigram_dim, hp.model_dim)
        self.smear = SmearGate(hp.model_dim)
        self.blocks = nn.ModuleList(Block(hp, i) for i in range(hp.num_layers))
        self.ve_layers = hp.ve_layer_list
        if self.ve_layers:
            self.ve_shared = ValueEmbedding(hp.vocab_size, hp.ve_dim, hp.kv_dim)
            self.ve_layer_scales = nn.ParameterList(nn.Parameter(torch.ones(1)) for _ in self.ve_layers)
        self.lm_head = None if hp.tie_embeddings else CastedLinear(hp.model_dim, hp.vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.tok_emb.weight, std=self.hp.tied_embed_init_std)
        for name, module in self.named_modules():
            if isinstance(module, CastedLinear):
                if name.endswith(".proj") and name.startswith("blocks."):
                    nn.init.zeros_(module.weight)  # residual outputs start silent
                else:
                    nn.init.orthogonal_(module.weight)
        nn.init.zeros_(self.bigram.embed.weight)
        if self.ve_layers:
            nn.init.normal_(self.ve_shared.embed.weight, std=self.hp.tied_embed_init_std)
        if self.lm_head is not None:
            nn.init.zeros_(self.lm_head.weight)

    def output_weight(self) -> torch.Tensor:
        """The (vocab, d) matrix the head multiplies by: tok_emb when tied."""
        return self.tok_emb.weight if self.lm_head is None else self.lm_head.weight

    def forward_hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, d) hidden states after the final RMSNorm."""
        x = self.tok_emb(ids) + self.bigram(ids)
        x = self.smear(rms_norm(x))
        x0 = x
        ve_all = self.ve_shared(ids) if self.ve_layers else None
        v_first = None
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            ve = None
            if ve_all is not None and i in self.ve_layers:
                ve = ve_all * self.ve_layer_scales[self.ve_layers.index(i)].to(ve_all.dtype)
            if i >= self.num_encoder_layers and skips:
                j = i - self.num_encoder_layers
                x = x + self.skip_weights[j].to(x.dtype) * skips.pop()
            x, raw_v = block(x, x0, v_first, ve)
            if i == 0:
                v_first = raw_v
            if i < self.num_encoder_layers:
                skips.append(x)
        return rms_norm(x)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Softcapped logits from hidden states: c * tanh(h W^T / c)."""
        c = self.hp.logit_softcap
        logits = F.linear(hidden, self.output_weight().to(hidden.dtype))
        return c * torch.tanh(logits / c) if c > 0 else logits

    def forward_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.compute_logits(self.forward_hidden(ids))

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats/token) of ``targets`` given ``ids``."""
        logits = self.forward_logits(ids).float()
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    def set_qat(self, enabled: bool) -> None:
        for m in self.modules():
            if isinstance(m, CastedLinear):
                m.qat = enabled
