"""Hyperparameters of the seed stack, read from environment variables.

The names and defaults are exactly those the seed PR's ``train_gpt.py`` reads (see
``seed_state_dict.json``: ``env_defaults``), so a record's launch line configures this
reimplementation the same way. Attribute names are the lower-case variable names.

A preset (``PRESET=tiny``) swaps in a small configuration for CPU tests and demos; any
variable set explicitly in the environment still wins over the preset.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from dataclasses import dataclass, field
from typing import Mapping


@dataclass
class Hyperparameters:
    # --- data and run bookkeeping ---
    data_path: str = "./data/datasets/fineweb10B_sp1024"  # folder holding fineweb_{train,val}_*.bin
    tokenizer_path: str = "./data/tokenizers/fineweb_1024_bpe.model"  # SentencePiece model for byte LUTs
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # names the log file
    seed: int = 1337  # global RNG seed
    output_dir: str = "."  # where final_model.pt, final_model.int6.ptz and the log go (not a seed var)
    # --- schedule ---
    val_batch_size: int = 524_288  # tokens per validation batch (all ranks together)
    val_loss_every: int = 4000  # steps between validation passes (0: only at the end)
    train_log_every: int = 500  # steps between train-loss log lines
    iterations: int = 20000  # upper bound on steps; the wall-clock cap usually stops first
    warmdown_iters: int = 3500  # length of the linear warmdown, in steps' worth of time
    warmup_steps: int = 20  # compile-priming steps whose state is then restored
    train_batch_tokens: int = 786_432  # global tokens per optimizer step
    train_seq_len: int = 2048  # training context length
    eval_seq_len: int = 2048  # evaluation window length
    max_wallclock_seconds: float = 600.0  # training time cap (0 disables)
    # --- model shape ---
    qk_gain_init: float = 4.0  # initial per-head query gain
    vocab_size: int = 1024  # tokenizer vocabulary
    num_layers: int = 11  # transformer blocks
    num_kv_heads: int = 4  # key/value heads (GQA)
    model_dim: int = 512  # residual width
    num_heads: int = 8  # query heads
    mlp_mult: float = 3.0  # MLP hidden = mlp_mult * model_dim
    tie_embeddings: int = 1  # output head shares tok_emb
    rope_base: float = 10000.0  # RoPE base frequency
    logit_softcap: float = 30.0  # logits = c * tanh(z / c)
    # --- optimizer ---
    embed_lr: float = 0.6  # untied input embedding lr (unused when tied)
    head_lr: float = 0.008  # untied head lr (unused when tied)
    tied_embed_lr: float = 0.035  # AdamW lr of the tied embedding
    tied_embed_init_std: float = 0.005  # init std of the tied embedding
    matrix_lr: float = 0.025  # Muon lr for 2-D block matrices
    scalar_lr: float = 0.025  # AdamW lr for scalars, gates and small vectors
    muon_momentum: float = 0.99  # Muon momentum after warmup
    muon_backend_steps: int = 5  # Newton-Schulz iterations
    muon_momentum_warmup_start: float = 0.92  # Muon momentum at step 0
    muon_momentum_warmup_steps: int = 1500  # steps to ramp momentum to muon_momentum
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.95  # AdamW beta2
    adam_eps: float = 1e-8  # AdamW eps
    grad_clip_norm: float = 0.3  # global grad-norm clip (0 disables)
    eval_stride: int = 64  # sliding-window stride
    mtp_num_heads: int = 0  # multi-token-prediction heads (seed: off)
    mtp_loss_weight: float = 0.2  # weight of the MTP loss
    muon_beta2: float = 0.95  # read by the seed script; kept for fidelity
    swa_enabled: int = 1  # read by the seed script; the seed exports the EMA
    swa_every: int = 50  # SWA snapshot period
    muon_wd: float = 0.04  # decoupled weight decay for Muon params
    adam_wd: float = 0.04  # decoupled weight decay for AdamW params
    qat_enabled: int = 0  # int6 fake-quant from step 0
    bigram_vocab_size: int = 1024  # BigramHash buckets (last bucket = position 0)
    bigram_dim: int = 128  # BigramHash embedding width
    xsa_last_n: int = 11  # XSA on the last N layers
    rope_dims: int = 16  # rotated dims per head (partial RoPE)
    ln_scale: int = 1  # scale pre-norm outputs by 1/sqrt(layer+1)
    dtg_enabled: int = 0  # read by the seed script; off
    late_qat_threshold: float = 0.15  # enable QAT once lr scale drops below this
    ve_enabled: int = 1  # shared value embedding
    ve_dim: int = 128  # value-embedding width
    ve_layers: str = "9,10"  # layers that add the value embedding
    vrl_enabled: int = 1  # value residual learning (layers >= 1 mix in layer 0's v)
    slot_enabled: int = 1  # run SLOT at eval
    slot_steps: int = 16  # AdamW steps per SLOT batch
    slot_lr: float = 0.008  # SLOT peak lr
    slot_lr_min: float = 0.0008  # SLOT final lr (cosine)
    slot_batch_seqs: int = 32  # windows per SLOT batch
    # --- not seed variables: precision and deviations, each off (= the seed) by default ---
    grad_accum_steps: int = 0  # micro-batches per step and rank; 0 = the seed's 8 // world_size
    muon_ns_dtype: str = "auto"  # Newton-Schulz + update buffer: auto (bf16 on CUDA as the seed, fp32 on CPU) | bf16 | fp32
    ema_warmup: int = 0  # 1: EMA decay min(0.997, (1+s)/(10+s)) so short runs do not export their init (seed: 0.997 from step 0)

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def mlp_hidden(self) -> int:
        return int(self.mlp_mult * self.model_dim)

    @property
    def ve_layer_list(self) -> list[int]:
        return [int(x) for x in self.ve_layers.split(",") if x.strip()] if self.ve_enabled else []

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Hyperparameters":
        """Build from ``env`` (default ``os.environ``): preset first, explicit variables on top."""
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        preset_name = env.get("PRESET", "").strip().lower()
        if preset_name:
            if preset_name not in PRESETS:
                raise ValueError(f"unknown PRESET {preset_name!r}; choose from {sorted(PRESETS)}")
            values.update(PRESETS[preset_name])
        for f in dataclasses.fields(cls):
            if f.name.upper() in env:
                values[f.name.upper()] = env[f.name.upper()]
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> "Hyperparameters":
        """Build from upper- or lower-case names; unknown names raise ValueError."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        for key, raw in values.items():
            name = key.lower()
            if name not in known:
                raise ValueError(f"unknown hyperparameter {key!r}")
            kwargs[name] = _coerce(known[name], raw, key)
        return cls(**kwargs)

    def replace(self, **changes: object) -> "Hyperparameters":
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """The configuration as environment variables (upper-case names, string values)."""
        return {k.upper(): str(v) for k, v in dataclasses.asdict(self).items()}


def _coerce(f: dataclasses.Field, raw: object, key: str) -> object:
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str}[str(f.type)]
    if isinstance(raw, kind) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    try:
        if kind is int:
            return int(float(text.replace("_", ""))) if "." in text or "e" in text.lower() else int(text.replace("_", ""))
        if kind is float:
            return float(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a valid {kind.__name__}") from None
    return text


# A small configuration that keeps every component of the seed stack switched on
# (BigramHash, SmearGate, U-Net skips, XSA, VRL, value embedding) but trains in
# seconds on one CPU core. Used by tests, the demo and the causality audit.
TINY: dict[str, str] = {
    "NUM_LAYERS": "4",
    "MODEL_DIM": "64",
    "NUM_HEADS": "4",
    "NUM_KV_HEADS": "2",
    "MLP_MULT": "3.0",
    "VOCAB_SIZE": "512",
    "BIGRAM_VOCAB_SIZE": "256",
    "BIGRAM_DIM": "32",
    "VE_DIM": "16",  # != the KV width (32), so the value embedding keeps its projection as in the seed
    "VE_LAYERS": "2,3",
    "XSA_LAST_N": "4",
    "ROPE_DIMS": "4",
    "TRAIN_SEQ_LEN": "128",
    "EVAL_SEQ_LEN": "128",
    "EVAL_STRIDE": "16",
    "TRAIN_BATCH_TOKENS": "4096",
    "VAL_BATCH_SIZE": "16384",
    "ITERATIONS": "300",
    "WARMDOWN_ITERS": "100",
    "WARMUP_STEPS": "2",
    "TRAIN_LOG_EVERY": "50",
    "VAL_LOSS_EVERY": "0",
    "MUON_MOMENTUM_WARMUP_STEPS": "50",
    "MAX_WALLCLOCK_SECONDS": "60",
    "DATA_PATH": "",
    "TOKENIZER_PATH": "",
}

PRESETS: dict[str, dict[str, str]] = {"tiny": TINY, "seed": {}}
