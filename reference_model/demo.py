"""A tiny seed-stack model trained briefly on the embedded corpus, for demos and tests.

``load_demo()`` is what the rest of golf-audit codes against: it returns a trained TINY
model in eval mode (fp32, CPU), its hyperparameters, the held-out validation stream, the
training stream, the byte LUTs and the tokenizer. The first call trains (well under a
minute on one core) and caches the state_dict; later calls load it from the cache.

The model and its training are the seed stack's (``model.py``, ``optim.py``,
``train.train_steps``) at the TINY size with two named deviations, both documented in the
README: EMA_WARMUP=1 (a 120-step run with the seed's constant 0.997 EMA would export ~70 %
of its random initialization) and GRAD_ACCUM_STEPS=1 (one micro-batch instead of eight:
the same mean loss up to rounding, ~3x cheaper on CPU). The cache key hashes the source of
every module that builds or trains the model, so a change there never reuses a stale model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import TINY, Hyperparameters
from .data import cache_root, corpus_documents, corpus_fingerprint, embedded_streams, truncate_for_eval
from .metric import ByteLUTs, build_luts
from .model import GPT

DEMO_STEPS = 120  # optimizer steps of the demo run (TINY batch: 4096 tokens per step)
DEMO_RECIPE = "seed-recipe-v2"  # bump to invalidate caches for reasons the source hash cannot see
DEMO_DEVIATIONS = {"ema_warmup": 1, "grad_accum_steps": 1}  # see the module docstring
# Modules whose source decides the demo model's weights: hashed into the cache key.
RECIPE_SOURCES = ("config.py", "data.py", "demo.py", "model.py", "optim.py", "train.py")


@dataclass
class DemoSetup:
    model: GPT  # eval() mode, fp32, CPU, trained briefly on the embedded corpus
    hp: Hyperparameters  # the TINY preset
    val_tokens: torch.Tensor  # 1-D int64 validation stream (held-out pydoc topics), starts with BOS
    train_tokens: torch.Tensor  # 1-D int64 training stream
    luts: ByteLUTs  # byte LUTs of the tokenizer
    tokenizer: Any  # sentencepiece processor


def tiny_hp(**overrides: Any) -> Hyperparameters:
    """The TINY preset (independent of the environment), vocab matching the demo tokenizer."""
    hp = Hyperparameters.from_mapping(TINY).replace(run_id="demo")
    return hp.replace(**overrides) if overrides else hp


def recipe_fingerprint() -> str:
    """sha256 over the source of the modules that build and train the demo model."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for name in RECIPE_SOURCES:
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _cache_key(hp: Hyperparameters, steps: int, seed: int, tokenizer_bytes: bytes) -> str:
    cfg = {k: v for k, v in hp.as_env().items() if k != "RUN_ID"}
    payload = json.dumps({"cfg": cfg, "steps": steps, "seed": seed, "recipe": DEMO_RECIPE, "source": recipe_fingerprint(),
                          "corpus": corpus_fingerprint(corpus_documents()),
                          "tok": hashlib.sha256(tokenizer_bytes).hexdigest()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_demo_model(hp: Hyperparameters, train_tokens: torch.Tensor, *, steps: int, seed: int) -> GPT:
    """Train a fresh TINY model for ``steps`` optimizer steps on ``train_tokens`` (CPU, fp32)."""
    from .train import train_steps

    # One thread: the weights then do not depend on the machine's core count (reductions split
    # across threads sum in other orders), and a busy machine cannot stall a thread pool.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = GPT(hp)
        train_steps(model, hp, train_tokens, steps=steps, log=_log)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def load_demo(*, cache_dir: str | Path | None = None, seed: int = 0, steps: int | None = None) -> DemoSetup:
    """The demo setup; trains and caches the model on first use (progress on stderr)."""
    steps = DEMO_STEPS if steps is None else steps
    hp = tiny_hp(seed=seed, **DEMO_DEVIATIONS)
    train_tokens, val_tokens, sp = embedded_streams(vocab_size=hp.vocab_size, cache_dir=cache_dir)
    val_tokens = truncate_for_eval(val_tokens, hp.eval_seq_len)
    luts = build_luts(sp, hp.vocab_size)
    key = _cache_key(hp, steps, seed, sp.serialized_model_proto())
    path = cache_root(cache_dir) / f"demo_model_{key}.pt"
    model = _load_cached(hp, path)
    if model is None:
        # Parallel workers (e.g. causality flips) starting together: one trains, the rest wait.
        with _exclusive(path.with_suffix(".lock")):
            model = _load_cached(hp, path)
            if model is None:
                t0 = time.perf_counter()
                _log(f"training the demo model ({steps} steps, seed {seed}); cached afterwards in {path.parent}")
                model = train_demo_model(hp, train_tokens, steps=steps, seed=seed)
                _log(f"trained in {time.perf_counter() - t0:.1f}s")
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
                os.close(fd)
                torch.save(model.state_dict(), tmp)
                os.replace(tmp, path)
    return DemoSetup(model.eval(), hp, val_tokens, train_tokens, luts, sp)


def _load_cached(hp: Hyperparameters, path: Path) -> GPT | None:
    if not path.is_file():
        return None
    model = GPT(hp)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # a damaged cache entry is rebuilt, not fatal
        _log(f"ignoring unreadable cache {path.name}: {str(exc).splitlines()[0][:100]}")
        return None
    return model


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """An advisory inter-process lock (POSIX flock); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent first calls just train twice
        yield
        return
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
