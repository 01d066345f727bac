"""Loading what the user points the CLI at: a model checkpoint and a token stream.

Everything here treats its input as untrusted: ``torch.load(..., weights_only=True)``, and
any problem (missing, corrupt, truncated, wrong shape, vocab mismatch) is one ``BadInput``
line naming the file. With no checkpoint / no tokens, the tiny demo model and the embedded
corpus stand in (``reference_model.demo.load_demo``).

A checkpoint is a seed-format ``.pt`` state_dict (optionally wrapped as ``{"model": ...}``
or saved from a ``torch.compile``d module) or a ``.ptz`` export. The model's shape comes from
the same environment variables as training (``Hyperparameters.from_env``: PRESET,
NUM_LAYERS, MODEL_DIM, VOCAB_SIZE, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from reference_model import GPT, Hyperparameters
from reference_model.metric import ByteLUTs, build_luts, load_tokenizer

from .errors import BadInput, one_line


@dataclass
class EvalInputs:
    model: GPT  # eval mode
    hp: Hyperparameters
    tokens: torch.Tensor  # 1-D int64 stream
    luts: ByteLUTs
    model_source: str  # "demo" or the checkpoint path
    tokens_source: str  # "demo" or the tokens path


def _demo():
    from reference_model.demo import load_demo

    return load_demo()


def hyperparameters_from_env(env: Mapping[str, str] | None = None) -> Hyperparameters:
    try:
        return Hyperparameters.from_env(env)
    except ValueError as exc:
        raise BadInput(f"model shape from the environment: {one_line(exc)}") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state_dict (weights_only), from a .pt or a .ptz."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"checkpoint not found: {path}")
    if path.suffix == ".ptz":
        try:
            from reference_model.export import unpack
        except ImportError:
            raise BadInput(f"{path}: .ptz support (reference_model.export) is not available") from None
        try:
            state = unpack(path.read_bytes())
        except Exception as exc:  # lzma/pickle/format errors all mean the same thing here
            raise BadInput(f"{path}: not a readable .ptz export ({one_line(exc, 160)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError... for corrupt files
            raise BadInput(f"{path}: not a readable torch checkpoint ({one_line(exc, 160)})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"{path}: expected a state_dict (name -> tensor), got {type(state).__name__}")
    return {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state.items()}


def describe_mismatch(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> str | None:
    """One line saying how ``got`` differs from ``expected`` (None when names and shapes agree)."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [k for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} shape mismatch(es), e.g. {k} is {list(got[k].shape)}, model expects {list(expected[k].shape)}")
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    return "; ".join(parts)


def load_model(checkpoint: str | Path | None, env: Mapping[str, str] | None = None) -> tuple[GPT, Hyperparameters]:
    """(model in eval mode, hyperparameters); no checkpoint -> the demo model."""
    if checkpoint is None:
        demo = _demo()
        return demo.model, demo.hp
    hp = hyperparameters_from_env(env)
    state = read_state_dict(checkpoint)
    model = GPT(hp)
    problem = describe_mismatch(model.state_dict(), state)
    if problem:
        raise BadInput(f"{checkpoint}: does not fit the model shape set by the environment "
                       f"(PRESET, NUM_LAYERS, MODEL_DIM, VOCAB_SIZE, ...): {problem}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval(), hp


def load_stream(tokens: str | Path, tokenizer: str | Path | Any | None, vocab_size: int) -> tuple[torch.Tensor, ByteLUTs]:
    """(1-D int64 stream, byte LUTs) from a shard or a UTF-8 text file and a SentencePiece model."""
    from reference_model.data import load_tokens

    if tokenizer is None:
        raise BadInput("--tokens needs --tokenizer (the SentencePiece .model that defines the bytes)")
    sp = tokenizer
    if isinstance(tokenizer, (str, Path)):
        try:
            sp = load_tokenizer(tokenizer)
        except (OSError, ValueError) as exc:
            raise BadInput(one_line(exc)) from None
    if sp.get_piece_size() > vocab_size:
        raise BadInput(f"tokenizer has {sp.get_piece_size()} pieces but the model's vocab is {vocab_size}")
    try:
        stream = load_tokens(tokens, sp)
    except (OSError, ValueError) as exc:
        raise BadInput(one_line(exc)) from None
    check_stream(stream, vocab_size, tokens)
    return stream, build_luts(sp, vocab_size)


def check_stream(stream: torch.Tensor, vocab_size: int, source: Any) -> None:
    if stream.numel() < 2:
        raise BadInput(f"{source}: needs at least 2 tokens, got {stream.numel()}")
    top = int(stream.max())
    if top >= vocab_size:
        raise BadInput(f"{source}: token id {top} is outside the model's vocab of {vocab_size}")


def load_eval_inputs(checkpoint: str | Path | None = None, tokens: str | Path | None = None,
                     tokenizer: str | Path | None = None, max_tokens: int | None = None,
                     env: Mapping[str, str] | None = None) -> EvalInputs:
    """Model + stream + LUTs for an evaluation, with the demo standing in for what is absent."""
    model, hp = load_model(checkpoint, env)
    if tokens is None:
        demo = _demo()
        if hp.vocab_size < demo.hp.vocab_size:
            raise BadInput(f"the demo stream needs a vocab of {demo.hp.vocab_size}; this model has {hp.vocab_size}: pass --tokens")
        stream, luts, tokens_source = demo.val_tokens, build_luts(demo.tokenizer, hp.vocab_size), "demo"
    else:
        if tokenizer is None and checkpoint is None:
            tokenizer = _demo().tokenizer  # the demo model's own tokenizer
        elif tokenizer is None and hp.tokenizer_path and Path(hp.tokenizer_path).is_file():
            tokenizer = hp.tokenizer_path  # TOKENIZER_PATH, as the training script reads it
        stream, luts = load_stream(tokens, tokenizer, hp.vocab_size)
        tokens_source = str(tokens)
    if max_tokens is not None:
        if max_tokens < 2:
            raise BadInput(f"--max-tokens must be >= 2, got {max_tokens}")
        stream = stream[:max_tokens]
    return EvalInputs(model, hp, stream.long(), luts, "demo" if checkpoint is None else str(checkpoint), tokens_source)
