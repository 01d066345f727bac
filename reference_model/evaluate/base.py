"""The evaluator interface: a model and a token stream in, scored NLLs out.

Indexing convention used everywhere in this package and in golf_audit:
  a stream of N tokens has N-1 *targets*; target index i is token ``tokens[i+1]``
  predicted from inputs ``tokens[: i+1]``.  Changing stream token t therefore changes
  target t-1 and input t.

Every evaluator:
  * takes its settings as a small dataclass (``Settings``), built from strings by the registry;
  * exposes ``score(model, tokens, luts, *, targets=None, logprob_positions=()) -> Scored``;
    ``targets`` (N-1 ids) replaces the targets while the inputs stay ``tokens[:-1]``
    (the target-flip test);
  * never mutates the model it is given (adaptive evaluators work on a deep copy);
  * is deterministic for a fixed ``seed`` setting: two runs give bit-identical NLLs on CPU.

Under ``record_events()`` every scoring is also kept as one event row (target index, start
of the window that scored it, NLL) in scoring order, duplicates included: the seed PR's own
bookkeeping, which the fidelity vectors are stated in.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np
import torch

from ..metric import LN2, ByteLUTs


@dataclass
class Scored:
    """What an evaluator returns.

    ``nll[i]``/``count[i]``: NLL (nats, float64) of target i and how many times it was scored
    (NaN / 0 where never scored; the last scoring's value where scored more than once).
    The sums count every scoring, duplicates included, exactly as the records do, and
    ``nll_sum`` is accumulated the way the seed accumulates it for that evaluator (e.g. fp32
    batch means times counts for ``standard``), so it can differ from a float64 sum of the
    per-target values in the last digits. ``events``: (target_index, window_start, nll)
    arrays, one row per scoring in scoring order, when recorded (``record_events()``).
    """

    nll: np.ndarray  # (N-1,) float64
    count: np.ndarray  # (N-1,) int64
    nll_sum: float
    tokens: int
    bytes: int
    logprobs: dict[int, np.ndarray] = field(default_factory=dict)  # target index -> (V,) float64
    info: dict[str, Any] = field(default_factory=dict)
    events: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def val_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def val_bpb(self) -> float:
        return self.nll_sum / LN2 / self.bytes if self.bytes else float("nan")

    @property
    def scored_mask(self) -> np.ndarray:
        return self.count > 0

    @property
    def duplicate_scorings(self) -> int:
        return int(np.clip(self.count - 1, 0, None).sum())


@dataclass(frozen=True)
class Window:
    """Targets [start, end) are fed to the model; targets [score_from, end) are scored."""

    start: int
    end: int
    score_from: int

    @property
    def length(self) -> int:
        return self.end - self.start


def enumerate_windows(num_targets: int, seq_len: int, stride: int, tail: str = "once") -> list[Window]:
    """Sliding windows over ``num_targets`` targets.

    ``tail="records"`` reproduces the records' enumeration: a window at every multiple of
    ``stride``; window 0 scores all its targets, every other window its last ``stride``
    (``s = 0 if ws == 0 else max(wlen - stride, 0)``), so tail windows re-score the final
    targets. ``tail="once"`` stops at the first window that reaches the end and scores each
    target exactly once, every scored target keeping at least ``seq_len - stride`` context.
    """
    if seq_len <= 0 or stride <= 0 or stride > seq_len:
        raise ValueError(f"need 0 < stride <= seq_len, got stride={stride} seq_len={seq_len}")
    if tail not in ("once", "records"):
        raise ValueError(f"tail must be 'once' or 'records', got {tail!r}")
    windows: list[Window] = []
    if tail == "records":
        for ws in range(0, num_targets, stride):
            end = min(ws + seq_len, num_targets)
            wlen = end - ws
            s = 0 if ws == 0 else max(wlen - stride, 0)
            windows.append(Window(ws, end, ws + s))
        return windows
    scored_until = 0
    ws = 0
    while scored_until < num_targets:
        end = min(ws + seq_len, num_targets)
        if end > scored_until:
            windows.append(Window(ws, end, scored_until))
            scored_until = end
        ws += stride
    return windows


_RECORD_EVENTS: contextvars.ContextVar[bool] = contextvars.ContextVar("record_events", default=False)


@contextlib.contextmanager
def record_events():
    """Within this block, evaluators keep every scoring as an event row (``Scored.events``)."""
    token = _RECORD_EVENTS.set(True)
    try:
        yield
    finally:
        _RECORD_EVENTS.reset(token)


class ScoreAccumulator:
    """Collects per-target NLLs and bytes from windows; finishes into a ``Scored``.

    Sums are float64 and, under torch.distributed, all-reduced across ranks like the
    training code's validation (each rank scores a disjoint subset of windows). Events are
    this rank's own.
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, luts: ByteLUTs,
                 logprob_positions: Iterable[int] = ()) -> None:
        n = targets.numel()
        self.inputs, self.targets, self.luts = inputs, targets, luts
        self.nll = np.full(n, np.nan, dtype=np.float64)
        self.count = np.zeros(n, dtype=np.int64)
        self.nll_sum = 0.0
        self.tokens = 0
        self.bytes = 0
        self.wanted = set(int(p) for p in logprob_positions)
        self.logprobs: dict[int, np.ndarray] = {}
        self.events: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = [] if _RECORD_EVENTS.get() else None
        self.once_last: Window | None = None
        self.once = [0.0, 0, 0]  # nll_sum, tokens, bytes of the scorings an exactly-once enumeration keeps

    def count_once(self, num_targets: int, seq_len: int, stride: int) -> None:
        """Also total the scorings that ``tail=once`` would make (``info["once"]``).

        The exactly-once windows are the records' windows up to the first one reaching the
        end, which scores from where its predecessor stopped; every later records window
        only re-scores. So dropping those scorings (by window start, which is rank
        independent) gives the exactly-once numbers from the same run: exactly, when a
        window's scores do not depend on its batch (sliding); for SLOT, whose batch shares
        the loss normalisation, they are the first scoring of each target in this run.
        """
        self.once_last = enumerate_windows(num_targets, seq_len, stride, "once")[-1]

    def add(self, positions: torch.Tensor, nll: torch.Tensor, logprob_rows: Callable[[list[int]], torch.Tensor] | None = None,
            *, window_start: torch.Tensor | None = None, total: float | None = None) -> None:
        """Record NLLs (any float dtype) for 1-D target ``positions``.

        ``logprob_rows(idx)`` returns full log-probability rows for the entries ``idx`` of
        ``positions``; it is only called for positions someone asked for. ``window_start``
        (per position) labels the events; ``total`` replaces the float64 sum of ``nll`` in
        ``nll_sum`` when an evaluator reproduces the seed's own accumulation.
        """
        pos = positions.detach().cpu().numpy().astype(np.int64)
        vals = nll.detach().double().cpu().numpy()
        self.nll[pos] = vals
        np.add.at(self.count, pos, 1)
        self.nll_sum += float(vals.sum()) if total is None else float(total)
        ws = None if window_start is None else window_start.detach().cpu().numpy().astype(np.int64)
        if self.events is not None:
            self.events.append((pos, np.full(pos.size, -1, dtype=np.int64) if ws is None else ws, vals))
        self.tokens += int(pos.size)
        t = torch.from_numpy(pos)
        nbytes = self.luts.target_bytes(self.inputs[t].cpu(), self.targets[t].cpu()).numpy()
        self.bytes += int(nbytes.sum())
        if self.once_last is not None:
            if ws is None:
                raise ValueError("count_once needs the window start of every scoring")
            last = self.once_last
            keep = (ws < last.start) | ((ws == last.start) & (pos >= last.score_from))
            self.once[0] += float(vals[keep].sum())
            self.once[1] += int(keep.sum())
            self.once[2] += int(nbytes[keep].sum())
        if self.wanted and logprob_rows is not None:
            idx = [k for k, p in enumerate(pos.tolist()) if p in self.wanted]
            if idx:
                rows = logprob_rows(idx).detach().double().cpu().numpy()
                for k, row in zip(idx, rows):
                    self.logprobs[int(pos[k])] = row

    def finish(self, **info: Any) -> Scored:
        sums = [self.nll_sum, self.tokens, self.bytes, *self.once]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            info["rank_totals"] = {"rank": torch.distributed.get_rank(), "nll_sum": self.nll_sum, "tokens": self.tokens,
                                   "bytes": self.bytes}  # this rank's share, before the all-reduce
            t = torch.tensor(sums, dtype=torch.float64)
            torch.distributed.all_reduce(t)
            sums = t.tolist()
        nll_sum, tokens, nbytes = float(sums[0]), int(sums[1]), int(sums[2])
        if self.once_last is not None:
            o_sum, o_tok, o_bytes = float(sums[3]), int(sums[4]), int(sums[5])
            info["once"] = {"val_loss": o_sum / o_tok if o_tok else float("nan"),
                            "val_bpb": o_sum / LN2 / o_bytes if o_bytes else float("nan"),
                            "tokens": o_tok, "bytes": o_bytes}
        events = None
        if self.events is not None:
            parts = self.events or [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))]
            events = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
        scored = Scored(self.nll, self.count, nll_sum, tokens, nbytes, self.logprobs, dict(info), events)
        scored.info.setdefault("duplicate_scorings", scored.duplicate_scorings)
        return scored


def split_stream(tokens: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for a stream; ``targets`` overrides tokens[1:] (target-flip test)."""
    tokens = tokens.reshape(-1).long()
    inputs = tokens[:-1]
    tgt = tokens[1:] if targets is None else targets.reshape(-1).long()
    if tgt.numel() != inputs.numel():
        raise ValueError(f"targets must have {inputs.numel()} entries, got {tgt.numel()}")
    return inputs, tgt


# ----------------------------------------------------------------------------- registry


class Evaluator:
    """Base class: subclasses set ``name``, ``Settings`` and implement ``score``."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type] = object
    summary: ClassVar[str] = ""

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        raise NotImplementedError

    def describe(self) -> str:
        changed = {f.name: getattr(self.settings, f.name) for f in dataclasses.fields(self.settings)}
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")"


REGISTRY: dict[str, type[Evaluator]] = {}


def register(cls: type[Evaluator]) -> type[Evaluator]:
    REGISTRY[cls.name] = cls
    return cls


class UnknownEvaluator(KeyError, ValueError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_evaluator(name: str, settings: dict[str, Any] | None = None) -> Evaluator:
    """Instantiate a registered evaluator from string (or typed) settings."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownEvaluator(f"unknown evaluator {name!r}{hint} (known: {', '.join(sorted(REGISTRY))})")
    cls = REGISTRY[name]
    return cls(parse_settings(cls.Settings, settings or {}))


def parse_settings(settings_cls: type, values: dict[str, Any]) -> Any:
    """Build a settings dataclass from strings; unknown keys get a 'did you mean'."""
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=2)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown setting {key!r} for {settings_cls.__name__}{hint} (known: {', '.join(fields)})")
        kwargs[key] = coerce_setting(fields[key], raw)
    return settings_cls(**kwargs)


def coerce_setting(f: dataclasses.Field, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    text = raw.strip()
    try:
        if typ == "bool":
            low = text.lower()
            if low in ("1", "true", "on", "yes"):
                return True
            if low in ("0", "false", "off", "no"):
                return False
            raise ValueError
        if typ == "int":
            return int(text.replace("_", ""))
        if typ == "float":
            return float(text)
        if typ.startswith("tuple"):
            return tuple(float(x) for x in text.strip("()").split(","))
    except ValueError:
        raise ValueError(f"setting {f.name}={raw!r} is not a valid {typ}") from None
    return text
