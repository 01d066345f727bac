"""What the user points the CLI at: checked values and paths, a model checkpoint, a token stream.

The checks (``existing``, ``number``, ``evaluator_settings``, ...) refuse a bad value with
one ``BadInput`` line naming the option, before anything slow starts; they import nothing heavy,
so commands that never touch a model (``report``, ``significance``) use them too.

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

import dataclasses
import difflib
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import BadInput, one_line

if TYPE_CHECKING:  # torch loads only when a model or a stream is actually read
    import torch

    from reference_model import GPT, Hyperparameters
    from reference_model.evaluate import Evaluator
    from reference_model.metric import ByteLUTs


# ------------------------------------------------------------------------------ values and paths


FILE, FOLDER, ANY = "file", "folder", "file or folder"


def existing(path: str | Path | None, option: str, kind: str = FILE) -> Path | None:
    """``path`` when it exists as ``kind`` (FILE, FOLDER or ANY); None stays None (not given)."""
    if path is None:
        return None
    if isinstance(path, str) and not path.strip():
        raise BadInput(f"{option}: empty path")
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{option}: {path}: {'no such folder' if kind == FOLDER else 'not found'}")
    if kind == FILE and path.is_dir():
        raise BadInput(f"{option}: {path}: is a directory, expected a file")
    if kind == FOLDER and not path.is_dir():
        raise BadInput(f"{option}: {path}: not a folder (a file)")
    if not os.access(path, os.R_OK):
        raise BadInput(f"{option}: {path}: not readable")
    return path


def output_file(path: str | Path | None, option: str = "--output") -> Path | None:
    """A path a report can be written to: not a folder, not inside a file."""
    if path is None:
        return None
    if isinstance(path, str) and not path.strip():
        raise BadInput(f"{option}: empty path")
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{option}: {path}: is a directory, expected a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadInput(f"{option}: {parent} is a file, so {path} cannot be created")
            break
    return path


def interpreter(python: str | None, option: str = "--python") -> str | None:
    """A Python interpreter given by path or by name on PATH."""
    if python is None:
        return None
    if not python.strip():
        raise BadInput(f"{option}: empty interpreter name")
    found = shutil.which(python)
    if found is None:
        if Path(python).is_dir():
            raise BadInput(f"{option}: {python} is a directory, expected a Python interpreter")
        raise BadInput(f"{option}: no such interpreter: {python}")
    return python


def number(value: Any, option: str, *, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None, below: float | None = None) -> Any:
    """``value`` when it is a finite number in range (None stays None); the bounds say why not."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"{option} must be a finite number, got {value}")
    bounds = [(minimum, lambda v, b: v >= b, ">="), (above, lambda v, b: v > b, ">"),
              (maximum, lambda v, b: v <= b, "<="), (below, lambda v, b: v < b, "<")]
    for bound, ok, word in bounds:
        if bound is not None and not ok(value, bound):
            raise BadInput(f"{option} must be {word} {bound:g}, got {value:g}")
    return value


def non_empty(values: list[str] | None, option: str) -> list[str] | None:
    """Repeatable text options: every value must say something."""
    for value in values or []:
        if not value.strip():
            raise BadInput(f"{option}: empty value")
    return values


# ------------------------------------------------------------------------------ evaluator settings


@dataclass(frozen=True)
class Bounds:
    """Where a numeric setting is meaningful: [low, high], either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_0, AT_LEAST_1, ABOVE_0 = Bounds(0), Bounds(1), Bounds(0, low_open=True)
UNIT, UNIT_OPEN = Bounds(0, 1), Bounds(0, 1, high_open=True)
# Every numeric evaluator setting by name (a name means the same in every evaluator). A
# negative learning rate, a momentum >= 1 or a NaN is accepted by the arithmetic and silently
# yields nonsense; here it is refused. Unlisted numeric settings must still be finite.
SETTING_BOUNDS: dict[str, Bounds] = {
    "lr": AT_LEAST_0, "lr_min": AT_LEAST_0, "eps": ABOVE_0, "wd": AT_LEAST_0, "steps": AT_LEAST_0,
    "betas": UNIT_OPEN, "momentum": UNIT_OPEN, "grad_clip": AT_LEAST_0, "epochs": AT_LEAST_1,
    "batch": AT_LEAST_1, "seq_len": AT_LEAST_0, "stride": AT_LEAST_0, "chunk": AT_LEAST_1,
    "freeze_blocks": AT_LEAST_0, "seed": AT_LEAST_0, "order": AT_LEAST_1, "buckets": AT_LEAST_1,
    "weight": UNIT, "boost": AT_LEAST_0,
}


def evaluator_settings(name: str, settings: Mapping[str, str], option: str = "--set") -> "Evaluator":
    """The evaluator ``name`` built from ``option`` strings, every value checked: one line when bad."""
    from reference_model.evaluate import REGISTRY, get_evaluator

    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else f" (known: {', '.join(sorted(REGISTRY))})"
        raise BadInput(f"unknown evaluator {name!r}{hint}")
    fields = [f.name for f in dataclasses.fields(REGISTRY[name].Settings)]
    for key in settings:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=2)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"known: {', '.join(fields)}"
            raise BadInput(f"{option} {key}: {name} has no such setting; {hint}")
    try:
        evaluator = get_evaluator(name, dict(settings))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadInput(f"{option}: {one_line(exc)}") from None
    for f in dataclasses.fields(evaluator.settings):
        value = getattr(evaluator.settings, f.name)
        if value == f.default:
            continue  # the evaluator's own default means what it documents (e.g. standard batch=0: the seed's rule)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            bounds = SETTING_BOUNDS.get(f.name)
            if not math.isfinite(item):
                raise BadInput(f"{option} {f.name}={settings.get(f.name, item)}: must be a finite number")
            if bounds is not None and not bounds.admits(item):
                raise BadInput(f"{option} {f.name}={settings.get(f.name, item)}: must be {bounds.describe()}")
    return evaluator


# ------------------------------------------------------------------------------ model and stream


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
    from reference_model import Hyperparameters

    try:
        return Hyperparameters.from_env(env)
    except ValueError as exc:
        raise BadInput(f"model shape from the environment: {one_line(exc)}") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state_dict (weights_only), from a .pt or a .ptz."""
    import torch

    path = existing(path, "--checkpoint")
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
    from reference_model import GPT

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
    from reference_model.metric import build_luts, load_tokenizer

    existing(tokens, "--tokens")
    if tokenizer is None:
        raise BadInput("--tokens needs --tokenizer (the SentencePiece .model that defines the bytes)")
    sp = tokenizer
    if isinstance(tokenizer, (str, Path)):
        existing(tokenizer, "--tokenizer")
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
    from reference_model.metric import build_luts

    existing(checkpoint, "--checkpoint")
    existing(tokens, "--tokens")
    existing(tokenizer, "--tokenizer")
    if tokenizer is not None and tokens is None:
        raise BadInput("--tokenizer needs --tokens (the demo stream is read with the demo's own tokenizer)")
    if max_tokens is not None and max_tokens < 2:
        raise BadInput(f"--max-tokens must be >= 2, got {max_tokens}")
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
        stream = stream[:max_tokens]
    return EvalInputs(model, hp, stream.long(), luts, "demo" if checkpoint is None else str(checkpoint), tokens_source)
