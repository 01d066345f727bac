"""The seed PR's GPT, component by component (DOMAIN.md §5).

Input path:   tok_emb + BigramHash -> RMSNorm -> SmearGate  (kept as x0)
Trunk:        blocks in a U-Net: the first half stores activations, the second half adds
              them back with learned weights; every block re-mixes x0 in (resid_mix).
Attention:    q/k RMSNorm, partial RoPE (NTK-scaled base beyond 1024 positions), per-head QK
              gain, GQA, shared value embedding then VRL on the values, XSA on the output.
MLP:          down(leaky_relu(up(x), 0.5)^2).
Head:         final RMSNorm, tied embedding, logit softcap 30.

Fidelity: with the seed's weights this module reproduces the seed's forward bit for bit in
fp32 (``tests/test_fidelity.py`` holds it to the vectors in ``../shared/fidelity``), and
``GPT(hp)`` after ``torch.manual_seed(s)`` draws the same initial weights as the seed script,
because modules are built and initialised in the seed's order (construction draws of
``nn.Linear``/``nn.Embedding`` included). At the default configuration ``state_dict()`` has
the seed's names, shapes and order, so a seed checkpoint loads with ``strict=True`` and an
export of our state_dict is byte-identical to the seed's.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Hyperparameters

# The seed's Rotary is always built with train_seq_len=1024, whatever TRAIN_SEQ_LEN says: any
# sequence longer than this (the seed trains and evaluates at 2048) gets an NTK-scaled base.
ROPE_TRAIN_SEQ_LEN = 1024
QAT_LEVELS = 31  # late-QAT fake quant: scale = row amax / 31 (floored at 1/31), values in [-32, 31]
ORTHO_MIN_DIM = 64  # Linears with both dims >= this start orthogonal; smaller ones keep their draw
# The tables that stay bf16 when the seed casts the model for CUDA (its "bf16 master weights").
BF16_TABLES = ("tok_emb.weight", "bigram.embed.weight", "ve_shared.embed.weight")
# Parameters the seed keeps in fp32 besides every tensor of ndim < 2 (its control patterns).
CONTROL_PATTERNS = ("attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
                    "skip_weight", "skip_weights", "smear", "dtg_gate", "ve_layer_scales", "ve_shared.scale")


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def fake_quant(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Late-QAT weights in ``dtype``: int6-rounded forward, straight-through backward.

    The seed's arithmetic: per-row scale ``amax / 31`` floored at 1/31, ``round(w / scale)``
    clamped to [-32, 31], and the forward value ``w + (w_q - w).detach()`` (which is not
    always bit-equal to ``w_q``).
    """
    wd = w.to(dtype)
    with torch.no_grad():
        w32 = w.float()
        scale = (w32.abs().amax(dim=1) / QAT_LEVELS).clamp_min(1.0 / QAT_LEVELS)
        w_q = (torch.clamp(torch.round(w32 / scale[:, None]), -QAT_LEVELS - 1, QAT_LEVELS) * scale[:, None]).to(dtype)
    return wd + (w_q - wd).detach()


class CastedLinear(nn.Linear):
    """A bias-free Linear that computes in the input's dtype (fp32 master weights on CUDA).

    ``qat`` is switched on by the training loop once the lr scale drops below
    LATE_QAT_THRESHOLD; it only acts in training mode, as in the seed.
    """

    def __init__(self, in_features: int, out_features: int, zero_init: bool = False) -> None:
        super().__init__(in_features, out_features, bias=False)  # draws kaiming-uniform, as the seed
        self.zero_init = zero_init
        self.qat = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.qat and self.training and self.weight.ndim == 2:
            return F.linear(x, fake_quant(self.weight, x.dtype))
        return F.linear(x, self.weight.to(x.dtype))


def rope_inv_freq(base: float, dims: int, seq_len: int, device: torch.device | None = None) -> torch.Tensor:
    """Inverse frequencies for a sequence of ``seq_len`` positions, in fp32.

    Up to ROPE_TRAIN_SEQ_LEN positions: ``base``; beyond it the NTK-scaled base
    ``base * (seq_len / 1024) ** (dims / (dims - 2))`` (22,081.79 for 2048 positions, dims 16).
    """
    exponents = torch.arange(0, dims, 2, dtype=torch.float32, device=device) / dims
    if seq_len > ROPE_TRAIN_SEQ_LEN:
        base = base * ((seq_len / ROPE_TRAIN_SEQ_LEN) ** (dims / (dims - 2)))
    return 1.0 / (base ** exponents)


class Rotary(nn.Module):
    """Partial RoPE on the first ``dims`` of each head (all of it when ROPE_DIMS is 0).

    Pairs are (i, i + dims/2), rotated as ``(x1 cos + x2 sin, -x1 sin + x2 cos)``: the seed's
    sign convention. The base depends on the length of the (padded) tensor, see
    ``rope_inv_freq``. cos/sin are computed in fp32 and cast to the activations' dtype.
    """

    def __init__(self, head_dim: int, dims: int, base: float) -> None:
        super().__init__()
        self.dims = dims if dims > 0 else head_dim
        if self.dims % 2 or self.dims > head_dim:
            raise ValueError(f"ROPE_DIMS={dims} must be even and at most head_dim={head_dim}")
        self.base = base
        self._cache: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def cos_sin(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cache
        if c is not None and c[0] == seq_len and c[1] == device:
            return c[2], c[3]
        t = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = torch.outer(t, rope_inv_freq(self.base, self.dims, seq_len, device))
        cos, sin = freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]
        # Inference tensors cannot be saved for backward later; under torch.compile the graph
        # computes (and folds) them itself, and a module-attribute cache would only add guards.
        if not torch.is_inference_mode_enabled() and not torch.compiler.is_compiling():
            self._cache = (seq_len, device, cos, sin)
        return cos, sin

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, H, D)
        cos, sin = self.cos_sin(x.size(1), x.device)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        half = self.dims // 2
        x1, x2 = x[..., :half], x[..., half : self.dims]
        rotated = torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)
        if self.dims == x.size(-1):
            return rotated
        return torch.cat((rotated, x[..., self.dims :]), dim=-1)


class BigramHash(nn.Module):
    """Hashed embedding of (previous token, token) pairs, projected to the model width.

    Bucket ``(36313 t_i XOR 27191 t_{i-1}) mod (buckets - 1)`` in int32 arithmetic, as the
    seed computes it; position 0 has no predecessor and gets the last bucket.
    """

    def __init__(self, buckets: int, dim: int, model_dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.embed = nn.Embedding(buckets, dim)
        nn.init.zeros_(self.embed.weight)
        # No projection when the table already has the model width (the seed's rule).
        self.proj = CastedLinear(dim, model_dim) if dim != model_dim else None
        if self.proj is not None:
            nn.init.zeros_(self.proj.weight)
        self.scale = nn.Parameter(torch.tensor(0.05, dtype=torch.float32))

    def bucket_ids(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.to(torch.int32)
        mod = self.buckets - 1
        out = torch.empty_like(t)
        out[..., 0] = mod
        out[..., 1:] = torch.bitwise_xor(36313 * t[..., 1:], 27191 * t[..., :-1]) % mod
        return out.long()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.bucket_ids(ids))
        if self.proj is not None:
            h = self.proj(h)
        return h * self.scale.to(h.dtype)


class SmearGate(nn.Module):
    """x_t <- (1 - sigma(g)) * x_t + sigma(g) * x_{t-1}, one gate per dimension (init 0)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        g = torch.sigmoid(self.gate.to(x.dtype))[None, None, :]
        prev = torch.cat((torch.zeros_like(x[:, :1]), x[:, :-1]), dim=1)
        return (1 - g) * x + g * prev


class ValueEmbedding(nn.Module):
    """One token table (init N(0, 0.01)) shared by the value-embedding layers, projected to the KV width."""

    def __init__(self, vocab: int, dim: int, kv_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embed.weight, std=0.01)
        self.proj = CastedLinear(dim, kv_dim) if dim != kv_dim else None
        if self.proj is not None:
            nn.init.zeros_(self.proj.weight)
        self.scale = nn.Parameter(torch.tensor(0.1, dtype=torch.float32))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        if self.proj is not None:
            h = self.proj(h)
        return h * self.scale.to(h.dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, hp: Hyperparameters, layer: int) -> None:
        super().__init__()
        if hp.model_dim % hp.num_heads or hp.num_heads % hp.num_kv_heads:
            raise ValueError("MODEL_DIM must divide by NUM_HEADS and NUM_HEADS by NUM_KV_HEADS")
        self.num_heads, self.num_kv_heads, self.head_dim = hp.num_heads, hp.num_kv_heads, hp.head_dim
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for RoPE")
        # Construction order = the seed's: it fixes which random draws each weight gets.
        self.c_q = CastedLinear(hp.model_dim, hp.model_dim)
        self.c_k = CastedLinear(hp.model_dim, hp.kv_dim)
        self.c_v = CastedLinear(hp.model_dim, hp.kv_dim)
        self.proj = CastedLinear(hp.model_dim, hp.model_dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((hp.num_heads,), hp.qk_gain_init, dtype=torch.float32))
        self.vrl_gate = nn.Parameter(torch.tensor(-1.5, dtype=torch.float32)) if (hp.vrl_enabled and layer > 0) else None
        self.rotary = Rotary(hp.head_dim, hp.rope_dims, hp.rope_base)
        self.use_xsa = layer >= hp.num_layers - hp.xsa_last_n

    def forward(self, x: torch.Tensor, v_first: torch.Tensor | None, ve: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, raw values c_v(x)); the raw values of layer 0 are every later layer's ``v_first``."""
        B, T, C = x.shape
        q = self.c_q(x).reshape(B, T, self.num_heads, self.head_dim)
        k = self.c_k(x).reshape(B, T, self.num_kv_heads, self.head_dim)
        raw_v = self.c_v(x)
        v = raw_v
        if ve is not None:  # the value embedding is added first ...
            v = v + ve
        if self.vrl_gate is not None and v_first is not None:  # ... then mixed with layer 0's raw values
            g = torch.sigmoid(self.vrl_gate.to(v.dtype))
            v = (1 - g) * v + g * v_first
        v = v.reshape(B, T, self.num_kv_heads, self.head_dim)
        q = self.rotary(rms_norm(q))
        k = self.rotary(rms_norm(k))
        q = q * self.q_gain.to(q.dtype)[None, None, :, None]
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
            vn = F.normalize(v, dim=-1).unsqueeze(-2)  # (B, T, Hkv, 1, D)
            y = (yg - (yg * vn).sum(dim=-1, keepdim=True) * vn).reshape(B, T, self.num_heads, self.head_dim)
        return self.proj(y.reshape(B, T, C)), raw_v


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = CastedLinear(dim, hidden)
        self.proj = CastedLinear(hidden, dim, zero_init=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.leaky_relu(self.fc(x), negative_slope=0.5).square())


class Block(nn.Module):
    def __init__(self, hp: Hyperparameters, layer: int) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(hp, layer)
        self.mlp = MLP(hp.model_dim, hp.mlp_hidden)
        self.attn_scale = nn.Parameter(torch.ones(hp.model_dim, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(hp.model_dim, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(hp.model_dim), torch.zeros(hp.model_dim))).float())
        self.ln_factor = 1.0 / math.sqrt(layer + 1) if hp.ln_scale else 1.0
        if hp.dtg_enabled:  # per-token gate on the block's update (seed option, off by default)
            self.dtg_gate = nn.Linear(hp.model_dim, 1, bias=True)
            nn.init.zeros_(self.dtg_gate.weight)
            nn.init.constant_(self.dtg_gate.bias, 2.0)
        else:
            self.dtg_gate = None

    def forward(self, x: torch.Tensor, x0: torch.Tensor, v_first: torch.Tensor | None, ve: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        mix = self.resid_mix.to(x.dtype)
        x_in = mix[0][None, None, :] * x + mix[1][None, None, :] * x0
        attn_out, raw_v = self.attn(rms_norm(x_in) * self.ln_factor, v_first, ve)
        x_out = x_in + self.attn_scale.to(x_in.dtype)[None, None, :] * attn_out
        x_out = x_out + self.mlp_scale.to(x_out.dtype)[None, None, :] * self.mlp(rms_norm(x_out) * self.ln_factor)
        if self.dtg_gate is not None:
            gate = torch.sigmoid(self.dtg_gate(x_in.detach()))
            x_out = x_in + gate * (x_out - x_in)
        return x_out, raw_v


class GPT(nn.Module):
    def __init__(self, hp: Hyperparameters) -> None:
        super().__init__()
        if hp.logit_softcap <= 0:
            raise ValueError(f"LOGIT_SOFTCAP must be positive, got {hp.logit_softcap}")
        if hp.mtp_num_heads > 0:
            raise ValueError("MTP_NUM_HEADS > 0 is not implemented by the reference stack (the seed runs 0)")
        self.hp = hp
        # Built in the seed's order: the constructors' random draws depend on it.
        self.tok_emb = nn.Embedding(hp.vocab_size, hp.model_dim)
        self.bigram = BigramHash(hp.bigram_vocab_size, hp.bigram_dim, hp.model_dim) if hp.bigram_vocab_size > 0 else None
        self.smear = SmearGate(hp.model_dim)
        self.num_encoder_layers = hp.num_layers // 2
        self.num_decoder_layers = hp.num_layers - self.num_encoder_layers
        num_skips = min(self.num_encoder_layers, self.num_decoder_layers)
        self.skip_weights = nn.Parameter(torch.ones(num_skips, hp.model_dim, dtype=torch.float32))
        self.blocks = nn.ModuleList(Block(hp, i) for i in range(hp.num_layers))
        self.ve_layers = hp.ve_layer_list
        if self.ve_layers:
            self.ve_shared = ValueEmbedding(hp.vocab_size, hp.ve_dim, hp.kv_dim)
            self.ve_layer_scales = nn.ParameterList(nn.Parameter(torch.ones(1, dtype=torch.float32)) for _ in self.ve_layers)
        else:
            self.ve_shared = None
        self.lm_head = None if hp.tie_embeddings else CastedLinear(hp.model_dim, hp.vocab_size, zero_init=True)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """The seed's init: tied tok_emb N(0, TIED_EMBED_INIT_STD); then, module by module,
        zero-init Linears to zero, every Linear with both dims >= 64 orthogonal, and those of
        them named ``*.proj`` (bigram.proj, ve_shared.proj) scaled by 1/sqrt(2 num_layers)."""
        if self.hp.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=self.hp.tied_embed_init_std)
        scale = 1.0 / math.sqrt(2 * self.hp.num_layers)
        for name, module in self.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            if getattr(module, "zero_init", False):
                nn.init.zeros_(module.weight)
            elif module.weight.ndim == 2 and min(module.weight.shape) >= ORTHO_MIN_DIM:
                nn.init.orthogonal_(module.weight, gain=1.0)
                if ".proj." in name or name.endswith(".proj"):
                    module.weight.mul_(scale)

    def output_weight(self) -> torch.Tensor:
        """The (vocab, d) matrix the head multiplies by: tok_emb when tied."""
        return self.tok_emb.weight if self.lm_head is None else self.lm_head.weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """x0: token embedding (+ BigramHash), RMSNorm, SmearGate."""
        x = self.tok_emb(ids)
        if self.bigram is not None:
            x = x + self.bigram(ids)
        return self.smear(rms_norm(x))

    def forward_hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, d) hidden states after the final RMSNorm."""
        x = x0 = self.embed(ids)
        ve_base = self.ve_shared(ids) if self.ve_shared is not None else None
        v_first: torch.Tensor | None = None
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if i >= self.num_encoder_layers and skips:
                j = i - self.num_encoder_layers
                x = x + self.skip_weights[j].to(x.dtype)[None, None, :] * skips.pop()
            ve = None
            if ve_base is not None and i in self.ve_layers:
                ve = ve_base * self.ve_layer_scales[self.ve_layers.index(i)].to(ve_base.dtype)
            x, raw_v = block(x, x0, v_first, ve)
            if i == 0:
                v_first = raw_v
            if i < self.num_encoder_layers:
                skips.append(x)
        return rms_norm(x)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Softcapped logits from hidden states: c * tanh(h W^T / c)."""
        c = self.hp.logit_softcap
        if self.lm_head is None:
            z = F.linear(hidden, self.tok_emb.weight)
        else:
            z = self.lm_head(hidden)
        return c * torch.tanh(z / c)

    def forward_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.compute_logits(self.forward_hidden(ids))

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats/token) of ``targets`` given ``ids`` (fp32 logits)."""
        h = self.forward_hidden(ids)
        logits = self.compute_logits(h.reshape(-1, h.size(-1)))
        return F.cross_entropy(logits.float(), targets.reshape(-1), reduction="mean")

    def set_qat(self, enabled: bool) -> None:
        for m in self.modules():
            if isinstance(m, CastedLinear):
                m.qat = enabled


def apply_seed_dtype_layout(model: GPT) -> GPT:
    """The seed's CUDA precision layout, in place: the model cast to bf16, then every
    CastedLinear and every parameter of ndim < 2 or matching CONTROL_PATTERNS back to fp32.
    What stays bf16 are the embedding tables (BF16_TABLES): bf16 master weights, trained in bf16."""
    model.bfloat16()
    for module in model.modules():
        if isinstance(module, CastedLinear):
            module.float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if (p.ndim < 2 or any(pat in name for pat in CONTROL_PATTERNS)) and p.dtype != torch.float32:
                p.data = p.data.float()
    return model
