"""The script under audit, run by its own entry point inside the child (never imported by the parent).

The child does not rebuild a submission's model or guess its eval arguments: it runs the
script's own ``if __name__ == "__main__":`` code at the tiny configuration, on synthetic data
(``fakedata``), under CPU shims. Every scoring function the parent found statically is wrapped
before the script runs (an ast pass inserts ``f = __ga_wrap__(f)`` after each ``def``), so
whatever builds the model (``GPT(h)``, a factory, ``deserialize(h, ...)``, ``train_model(h)``)
and however the arguments are packed (``ValidationData``, loaders, forward/TTT callables), the
wrapper sees the real call: it freezes a deep copy of the arguments (closures included, so a
``forward_ttt`` closure and the model argument stay one object), records the scoring events and
the returned metrics, and lets ``main`` continue.

A frozen call is replayed for every flip: a fresh copy of the frozen arguments, the audit
stream's tensors inside them overwritten with the flipped stream (found by content: any
integer tensor or array equal to a slice of the stream), the validation shard on disk
rewritten too (for evals that read it themselves), RNG states and the script's simple globals
restored. A *pipeline* run instead executes the whole entry point again on a flipped shard:
it sees adaptation that happens outside the scoring functions (pre-eval TTT, calibration on
validation data, a second scoring pass).

Line coverage of the scoring functions (which lines ran) is recorded with ``sys.settrace``
during the baseline entry run, so the parent can say which guarded branches never ran.
"""

from __future__ import annotations

import ast
import copy
import os
import random
import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import capture as cap
from . import fakedata

DATA_DIR = "ga_data"
VAL_SHARD = "fineweb_val_000000.bin"
SIDECAR_SHARD = "fineweb_val_bytes_000000.bin"
TRAIN_SHARDS = ("fineweb_train_000000.bin", "fineweb_train_000001.bin")
TRAIN_TOKENS = 1 << 16
MIN_STREAM_MATCH = 16  # integer tensors shorter than this are never taken for the stream


class EntryFailed(Exception):
    """The script's entry point raised; ``line`` is the script line where it happened."""

    def __init__(self, message: str, line: int | None, trace: str) -> None:
        super().__init__(message)
        self.line = line
        self.trace = trace


@dataclass
class CallRecord:
    """One outermost call of a scoring function made by the script's entry point."""

    index: int
    name: str
    def_line: int
    call_line: int | None  # where the script called it
    ordinal: int  # k-th call of this function
    frozen: Any = None  # (args, kwargs) deep copy, or None when it could not be copied
    stream_slots: dict[int, int] = field(default_factory=dict)  # id (in ``frozen``) of a stream tensor -> offset
    sidecar_slots: dict[int, int] = field(default_factory=dict)  # the same for byte-sidecar tensors
    copy_error: str = ""
    rng: tuple[Any, Any, Any] | None = None
    globals_snapshot: dict[str, Any] = field(default_factory=dict)
    calls: list[cap.Call] = field(default_factory=list)  # scoring events during the call
    returned: tuple[float | None, float | None] = (None, None)
    error: str = ""
    error_line: int | None = None
    threads: int = 1  # torch's intra-op threads when it ran (its replays use as many)
    seconds: float = 0.0
    adapted: bool = False  # the call changed the parameters of a model it was given (in-place adaptation)
    modules: list[tuple[Any, Any]] = field(default_factory=list)  # (live module, frozen copy) pairs


def script_line(exc: BaseException, script: str) -> int | None:
    """The innermost line of ``script`` in the exception's traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == script:
            line = frame.lineno
    return line


# ----------------------------------------------------------------------------- copying


def _copy_function(fn: types.FunctionType, memo: dict[int, Any]) -> types.FunctionType:
    """Functions are atomic for ``copy``; closures are not: their cells are copied with the memo."""
    if not fn.__closure__:
        return fn
    if id(fn) in memo:
        return memo[id(fn)]
    cells = tuple(types.CellType() for _ in fn.__closure__)
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, cells)
    new.__kwdefaults__ = copy.copy(fn.__kwdefaults__)
    new.__dict__.update(fn.__dict__)
    memo[id(fn)] = new
    for old, cell in zip(fn.__closure__, cells):
        try:
            cell.cell_contents = _safe_copy(old.cell_contents, memo)
        except ValueError:  # an empty cell (a name assigned later)
            pass
    return new


def _safe_copy(obj: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy`` that shares what cannot be copied (locks, pools, files) instead of failing."""
    try:
        return copy.deepcopy(obj, memo)
    except Exception:  # noqa: BLE001 - an uncopyable object is shared, and the null control decides
        memo[id(obj)] = obj
        return obj


def install_copy_rules() -> None:
    copy._deepcopy_dispatch[types.FunctionType] = _copy_function  # type: ignore[attr-defined]
    copy._deepcopy_dispatch[types.ModuleType] = lambda m, memo: m  # type: ignore[attr-defined]


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, types.FunctionType):
        return [c.cell_contents for c in (obj.__closure__ or ()) if _cell_full(c)]
    if isinstance(obj, types.MethodType):
        return [obj.__self__]
    if isinstance(obj, torch.nn.Module):
        return list(obj._buffers.values()) + [v for k, v in vars(obj).items() if not k.startswith("_")]
    if isinstance(obj, (torch.Tensor, np.ndarray, str, bytes, int, float, bool, type, types.ModuleType)) or obj is None:
        return []
    d = getattr(obj, "__dict__", None)
    return list(d.values()) if isinstance(d, dict) else []


def _cell_full(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def find_arrays(root: Any, predicate: Callable[[Any], bool], limit: int = 20000) -> list[Any]:
    """Integer tensors/arrays reachable from ``root`` that satisfy ``predicate`` (breadth first)."""
    seen: set[int] = set()
    out: list[Any] = []
    todo = [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (torch.Tensor, np.ndarray)):
            if predicate(obj):
                out.append(obj)
            continue
        todo.extend(_children(obj))
    return out


class StreamIndex:
    """Finds where an integer array sits in the audit stream (every 4-gram is unique)."""

    def __init__(self, stream: np.ndarray) -> None:
        self.stream = np.asarray(stream, dtype=np.int64)
        self.index: dict[tuple[int, ...], int] = {}
        for i in range(self.stream.size - 3):
            self.index.setdefault(tuple(self.stream[i:i + 4].tolist()), i)

    def offset(self, values: np.ndarray) -> int | None:
        """Start of ``values`` in the stream when it is a contiguous slice of it, else None."""
        v = values.reshape(-1)
        if v.size < MIN_STREAM_MATCH:
            return None
        start = self.index.get(tuple(v[:4].tolist()))
        if start is None or start + v.size > self.stream.size:
            return None
        return start if np.array_equal(self.stream[start:start + v.size], v) else None


def find_modules(root: Any) -> list[torch.nn.Module]:
    """Top-level ``nn.Module`` objects reachable from ``root`` (not their submodules)."""
    seen: set[int] = set()
    out: list[torch.nn.Module] = []
    todo = [root]
    while todo and len(seen) < 20000:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            out.append(obj)
            continue
        todo.extend(_children(obj))
    return out


def _params_changed(live: torch.nn.Module, frozen: torch.nn.Module) -> bool:
    a, b = list(live.parameters()), list(frozen.parameters())
    if len(a) != len(b):
        return True
    with torch.no_grad():
        return any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(a, b))


def _as_numpy(t: Any) -> np.ndarray | None:
    if isinstance(t, torch.Tensor):
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
            return None
        return t.detach().reshape(-1).to(torch.int64).cpu().numpy()
    if isinstance(t, np.ndarray) and t.dtype.kind in "iu":
        return t.reshape(-1).astype(np.int64)
    return None


def _fill(t: Any, values: np.ndarray) -> None:
    if isinstance(t, torch.Tensor):
        with torch.no_grad():
            t.view(-1).copy_(torch.from_numpy(values).to(t.dtype))
    else:
        t.reshape(-1)[:] = values.astype(t.dtype)


# ----------------------------------------------------------------------------- the runtime


class ScriptRuntime:
    """Runs the script's entry point, records its scoring calls, and replays them on new streams."""

    def __init__(self, script: str, source: str, scoring: list[str], tokens: np.ndarray, vocab: int,
                 seed: int, row_len: int, coverage: bool = True, inline: list[dict[str, Any]] | None = None) -> None:
        self.inline = inline or []
        self.script = script
        self.source = source
        self.scoring = set(scoring)
        self.vocab = vocab
        self.seed = seed
        self.row_len = row_len
        self.luts = fakedata.canonical_luts(vocab)
        self.data = Path(DATA_DIR).resolve()
        self.tokens = np.asarray(tokens, dtype=np.int64)
        self.index = StreamIndex(self.tokens)
        self.sidecar = fakedata.token_bytes(self.tokens, self.luts)
        self.scoring_lines: dict[str, tuple[int, int]] = {}
        self.code = self._instrumented(source)
        self.records: list[CallRecord] = []
        self.ns: dict[str, Any] = {}
        self.depth = 0
        self.freeze = True
        self.active_capture: cap.CrossEntropyCapture | None = None
        self.coverage: dict[str, set[int]] = {}
        self.want_coverage = coverage
        self.originals: dict[str, Callable[..., Any]] = {}
        self.entry_error: EntryFailed | None = None
        self.entry_seconds = 0.0
        # (seconds, threads): from that long after start on, scoring calls run on more threads (the
        # parent stops the twin child then, freeing its core); each call keeps its own count on replay
        self.thread_plan: tuple[float, int] | None = None
        self._born = time.perf_counter()
        self.resumed = ""
        self.resume: dict[str, str] = {}
        self._write_data(self.tokens, first=True)

    # --- data -------------------------------------------------------------------------------

    def _write_data(self, tokens: np.ndarray, first: bool = False) -> None:
        fakedata.write_shard(self.data / VAL_SHARD, tokens)
        fakedata.write_shard(self.data / SIDECAR_SHARD, fakedata.token_bytes(tokens, self.luts))
        if first:
            train = fakedata.documents(self.vocab, TRAIN_TOKENS, self.seed + 7)
            for name in TRAIN_SHARDS:
                fakedata.write_shard(self.data / name, train)

    def data_file(self, pattern: str) -> list[str] | None:
        """What a glob of the script's data files returns: our shards (None: not a data pattern)."""
        name = os.path.basename(str(pattern)).lower()
        if not name.endswith(".bin") and "*" not in name:
            return None
        if "val" in name:
            return [str(self.data / (SIDECAR_SHARD if "byte" in name else VAL_SHARD))]
        if "train" in name:
            return [str(self.data / n) for n in TRAIN_SHARDS]
        return None

    # --- instrumentation ------------------------------------------------------------------

    def _instrumented(self, source: str) -> types.CodeType:
        """The module with ``f = __ga_wrap__(f, 'f', line)`` after every scoring ``def``."""
        from .inline import InlineBlock, rewrite

        tree = ast.parse(source)
        if self.inline:
            blocks = [InlineBlock(**b) for b in self.inline]
            rewrite(tree, blocks)
            for b in blocks:
                self.scoring_lines[b.label] = (b.line, b.line)
        body: list[ast.stmt] = []
        for node in tree.body:
            body.append(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in self.scoring:
                self.scoring_lines[node.name] = (node.lineno, node.end_lineno or node.lineno)
                wrap = ast.parse(f"{node.name} = __ga_wrap__({node.name}, {node.name!r}, {node.lineno})").body[0]
                for n in ast.walk(wrap):
                    n.lineno, n.col_offset = node.end_lineno or node.lineno, 0  # type: ignore[attr-defined]
                    n.end_lineno, n.end_col_offset = n.lineno, 0  # type: ignore[attr-defined]
                body.append(wrap)
        tree.body = body
        return compile(tree, self.script, "exec")

    def _wrap(self, fn: Callable[..., Any], name: str, line: int) -> Callable[..., Any]:
        runtime = self
        self.originals[name] = fn

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if runtime.depth > 0:
                return fn(*args, **kwargs)
            return runtime._record(fn, name, line, args, kwargs)

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        wrapper.__name__ = getattr(fn, "__name__", name)
        return wrapper

    def _record(self, fn: Callable[..., Any], name: str, line: int, args: tuple, kwargs: dict) -> Any:
        frame = sys._getframe(2)
        call_line = frame.f_lineno if frame.f_code.co_filename == self.script else None
        ordinal = sum(1 for r in self.records if r.name == name)
        rec = CallRecord(len(self.records), name, line, call_line, ordinal)
        self._follow_thread_plan()
        rec.threads = torch.get_num_threads()
        self.records.append(rec)
        if self.freeze:
            self._freeze(rec, fn, args, kwargs)
        started = time.perf_counter()
        self.depth += 1
        capture = cap.CrossEntropyCapture(self.row_len, self.producer_files())
        try:
            with capture:
                result = fn(*args, **kwargs)
        except BaseException as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            rec.error_line = script_line(exc, self.script)
            raise
        finally:
            if self.depth == 1:
                self._follow_thread_plan()  # a switch due during the call, now that it is over
            self.depth -= 1
            rec.calls = capture.calls
            rec.seconds = time.perf_counter() - started
        rec.returned = returned_metrics(result)
        rec.adapted = any(_params_changed(live, frozen) for live, frozen in rec.modules)
        rec.modules = []  # the live modules belong to the script
        return result

    def _freeze(self, rec: CallRecord, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        rec.rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        rec.globals_snapshot = self._globals_snapshot()
        memo: dict[int, Any] = {}
        try:
            # the function too: an inline block's closure over main's locals is part of the call
            rec.frozen = copy.deepcopy((fn, args, kwargs), memo)
        except Exception as exc:  # noqa: BLE001 - reported as the reason the call cannot be replayed
            rec.copy_error = f"{type(exc).__name__}: {exc}"
            rec.frozen = None
            return
        live = {id(m): m for m in find_modules((fn, args, kwargs))}
        rec.modules = [(m, memo[k]) for k, m in live.items() if k in memo and memo[k] is not m]
        for arr in find_arrays(rec.frozen, lambda a: _as_numpy(a) is not None):
            values = _as_numpy(arr)
            offset = self.index.offset(values)
            if offset is not None:
                rec.stream_slots[id(arr)] = offset
            elif values.size >= MIN_STREAM_MATCH:
                for o in (1, 0):  # a sidecar slice aligned with the targets (from 1) or the stream
                    if np.array_equal(values, self.sidecar[o:o + values.size]):
                        rec.sidecar_slots[id(arr)] = o
                        break

    def _globals_snapshot(self) -> dict[str, Any]:
        """The script's plain-data globals (``BOS_ID = None``, caches), to restore before a replay."""
        out = {}
        for k, v in self.ns.items():
            if k.startswith("__") or isinstance(v, (types.ModuleType, types.FunctionType, type)):
                continue
            if isinstance(v, (int, float, str, bool, type(None), tuple, list, dict, set, np.ndarray, torch.Tensor)):
                try:
                    out[k] = copy.deepcopy(v)
                except Exception:  # noqa: BLE001
                    out[k] = v
        return out

    def producer_files(self) -> set[str]:
        """The script and the modules beside it: where hand-made per-token scores come from."""
        folder = os.path.dirname(os.path.abspath(self.script))
        return {self.script} | {os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py")}

    # --- the entry point -------------------------------------------------------------------

    def reseed(self) -> None:
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)

    def run_entry(self, freeze: bool = True, resume: dict[str, str] | None = None) -> None:
        """Execute the whole script as ``__main__`` (its own main runs); the error, if any, is kept.

        ``resume``: when the run stops with an error, the script's own eval-only mode (an env var
        the README's later step sets, e.g. ``TTT_EVAL_ONLY=1``) runs the entry point again on the
        files the first run saved, as the submission's second step does; its calls are appended.
        """
        self._run_once(freeze, keep=False)
        for name, value in (resume or {}).items():
            if self.entry_error is None:
                break
            first = self.entry_error
            os.environ[name] = value
            try:
                self._run_once(freeze, keep=True)
            finally:
                del os.environ[name]
            if self.entry_error is None:
                self.resumed = f"{name}={value} after the first run stopped at line {first.line}: {first}"
            else:
                self.entry_error = first

    def _run_once(self, freeze: bool, keep: bool) -> None:
        if not keep:
            self.records = []
            self.resumed = ""
        self.freeze = freeze
        self.ns = {"__name__": "__main__", "__file__": self.script, "__builtins__": __builtins__,
                   "__ga_wrap__": self._wrap}
        sys.argv = [self.script]
        self.reseed()
        tracer = _Coverage(self.script, self.scoring_lines) if (freeze and self.want_coverage) else None
        started = time.perf_counter()
        self.entry_error = None
        try:
            if tracer:
                tracer.start()
            exec(self.code, self.ns)  # noqa: S102 - sandboxed child; running the script is the point
        except SystemExit as exc:
            if exc.code not in (None, 0):
                self.entry_error = EntryFailed(f"SystemExit({exc.code})", script_line(exc, self.script),
                                               _trace(exc))
        except BaseException as exc:  # noqa: BLE001 - any failure of the script is evidence
            self.entry_error = EntryFailed(f"{type(exc).__name__}: {exc}", script_line(exc, self.script), _trace(exc))
            # The traceback goes to the child's stderr: its last lines are the report's evidence.
            sys.stderr.write(f"golf-audit: the script's entry point raised:\n{self.entry_error.trace}\n")
        finally:
            if tracer:
                tracer.stop()
                for k, v in tracer.lines.items():
                    self.coverage.setdefault(k, set()).update(v)
            self.entry_seconds += time.perf_counter() - started

    def plan_threads(self, at_s: float, threads: int) -> None:
        """From ``at_s`` after start on, run on ``threads`` (never inside a scoring call: see below).

        A SIGALRM handler (it runs in the main thread, where torch's thread count lives) switches
        between scoring calls, or marks the switch for the end of the call it lands in.
        """
        import signal

        self.thread_plan = (at_s, threads)
        try:
            signal.signal(signal.SIGALRM, lambda *_: self._follow_thread_plan() if self.depth == 0 else None)
            signal.setitimer(signal.ITIMER_REAL, max(0.01, at_s - (time.perf_counter() - self._born)))
        except (ValueError, OSError):  # no timer here: the switch happens at the next scoring call
            pass

    def _follow_thread_plan(self) -> None:
        """Switch to the plan's thread count once its time has come (only between scoring calls)."""
        if self.thread_plan is not None and time.perf_counter() - self._born >= self.thread_plan[0]:
            torch.set_num_threads(int(self.thread_plan[1]))
            self.thread_plan = None

    # --- replays -------------------------------------------------------------------------

    def replay(self, rec: CallRecord, tokens: np.ndarray) -> tuple[list[cap.Call], tuple[float | None, float | None]]:
        """Run one frozen call again on ``tokens``; returns its scoring events and metrics."""
        if rec.frozen is None:
            raise RuntimeError(f"the arguments of {rec.name} could not be copied ({rec.copy_error})")
        tokens = np.asarray(tokens, dtype=np.int64)
        memo: dict[int, Any] = {}
        fn, args, kwargs = copy.deepcopy(rec.frozen, memo)
        side = fakedata.token_bytes(tokens, self.luts)
        for slots, values in ((rec.stream_slots, tokens), (rec.sidecar_slots, side)):
            for tid, offset in slots.items():
                live = memo.get(tid)
                if live is not None:
                    _fill(live, values[offset:offset + _numel(live)])
        self._write_data(tokens)
        self.ns.update(copy.deepcopy(rec.globals_snapshot))
        torch.set_num_threads(rec.threads)  # as when it was recorded: float sums follow the thread count
        random.setstate(rec.rng[0])
        np.random.set_state(rec.rng[1])
        torch.set_rng_state(rec.rng[2])
        capture = cap.CrossEntropyCapture(self.row_len, self.producer_files())
        self.depth += 1
        try:
            with capture:
                result = fn(*args, **kwargs)
        finally:
            self.depth -= 1
            self._write_data(self.tokens)
        return capture.calls, returned_metrics(result)

    def pipeline(self, tokens: np.ndarray) -> list[CallRecord]:
        """The whole entry point again on a validation shard holding ``tokens``."""
        saved = (self.records, self.ns, self.entry_error, self.resumed, self.entry_seconds)
        if self.records:  # every pipeline run on the threads the entry run ended with (replays may have changed them)
            torch.set_num_threads(self.records[-1].threads)
        self._write_data(np.asarray(tokens, dtype=np.int64))
        try:
            self.entry_error = None
            self.run_entry(freeze=False, resume=self.resume)
            records, error = self.records, self.entry_error
        finally:
            self.records, self.ns, self.entry_error, self.resumed, self.entry_seconds = saved
            self._write_data(self.tokens)
        if error is not None:
            raise error
        return records


def _numel(t: Any) -> int:
    return int(t.numel()) if isinstance(t, torch.Tensor) else int(t.size)


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])[-2000:]


class _Coverage:
    """Line coverage of the scoring functions' bodies (and what they call in the script)."""

    def __init__(self, script: str, spans: dict[str, tuple[int, int]]) -> None:
        self.script = script
        self.spans = spans
        self.lines: dict[str, set[int]] = {name: set() for name in spans}
        self._prev = None

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            ln = frame.f_lineno
            for name, (a, b) in self.spans.items():
                if a <= ln <= b:
                    self.lines[name].add(ln)
        return self._local

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self.script:
            return None
        ln = frame.f_code.co_firstlineno
        if any(a <= ln <= b for a, b in self.spans.values()):
            return self._local
        return None

    def start(self) -> None:
        self._prev = sys.gettrace()
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(self._prev)


def returned_metrics(value: Any) -> tuple[float | None, float | None]:
    """(val_loss, val_bpb) from what an eval function returned (tuple, dict or a lone bpb)."""
    def num(x: Any) -> float | None:
        try:
            v = float(x)
        except (TypeError, ValueError, RuntimeError):
            return None
        return v

    if isinstance(value, dict):
        loss = next((num(v) for k, v in value.items() if "loss" in str(k)), None)
        bpb = next((num(v) for k, v in value.items() if "bpb" in str(k)), None)
        return loss, bpb
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return num(value[0]), num(value[1])
    return None, num(value)
