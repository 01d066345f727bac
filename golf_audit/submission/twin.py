"""A second sandboxed child for the flip replays: the flips of one scoring function run on two cores.

The child runs the submission single-threaded, so on a machine with two cores one of them idles
through the replays, which are most of an audit's time. A *twin* child runs the same entry point
on the same stream with the same seed, concurrently with the first; it is used only when it made
the same scoring calls and scores the unflipped stream bit for bit like the first child (anything
else — another order of calls, a nondeterministic score, a crash — and the audit runs on one child,
as before). The engine's flip chunks then go to whichever child is free; a twin that dies mid-way
hands its chunk back to the first child, so its crash never becomes a verdict.

``GOLF_AUDIT_REPLAY_WORKERS=1`` switches the twin off (it is off by itself on a one-core machine).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .runner import ChildFailed, ChildProcess


def replay_workers() -> int:
    """Children the flip replays may use: 2 on a machine with two cores or more, unless switched off."""
    from ..causality.pool import default_workers  # (torch is imported only where replays run)

    raw = os.environ.get("GOLF_AUDIT_REPLAY_WORKERS", "").strip()
    if raw.isdigit():
        return max(1, min(2, int(raw)))
    return 2 if default_workers() >= 2 else 1


class Background:
    """``fn()`` in a daemon thread; ``result(wait_s)`` is its value, or None when it failed or is late.

    Whatever the twin does wrong (crashes, hangs, is closed under it) makes it unused, never an error.
    """

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except Exception:  # noqa: BLE001 - see the class docstring
            self._value = None

    def result(self, wait_s: float) -> Any:
        self._thread.join(wait_s)
        return None if self._thread.is_alive() else self._value


class Setup(Background):
    """The twin's entry run, started while the first child runs its own.

    An entry run still going after ``give_up_s`` stops the twin: both runs share the memory
    bandwidth, and a long entry run is slowed by its twin more than the twin's share of the
    replays saves (a temperature search on training tokens, say). ``gave_up`` then says so.
    """

    def __init__(self, twin: ChildProcess, setup: dict[str, Any], timeout_s: float,
                 give_up_s: float | None = None) -> None:
        self.twin = twin
        self.gave_up = False
        super().__init__(lambda: twin.request(setup, timeout_s=timeout_s))
        self._timer: threading.Timer | None = None
        if give_up_s is not None:
            self._timer = threading.Timer(give_up_s, self._give_up)
            self._timer.daemon = True
            self._timer.start()

    def _give_up(self) -> None:
        if self._thread.is_alive():
            self.gave_up = True
            try:
                self.twin.kill()
            except Exception:  # noqa: BLE001 - see Background
                pass

    def result(self, wait_s: float) -> Any:
        value = super().result(wait_s)
        if self._timer is not None and not self._thread.is_alive():
            self._timer.cancel()
        return value

    def twin_if_same(self, ready: dict[str, Any], wait_s: float) -> ChildProcess | None:
        """The twin, when its entry run made the same scoring calls as the first child's (``ready``)."""
        mine = self.result(wait_s)
        if mine is None or self.twin.proc.poll() is not None:
            return None
        return self.twin if _signature(mine) == _signature(ready) else None


def _signature(ready: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c.get("name"), c.get("id"), bool(c.get("replayable")), str(c.get("rule")), c.get("error"))
            for c in ready.get("calls", [])] + [("entry_error", str(ready.get("entry_error")))]


def same_scores(a: Any, b: Any) -> bool:
    """Two runs of the unflipped stream agree bit for bit (what lets their flips be compared)."""
    return bool(np.array_equal(a.nll, b.nll, equal_nan=True) and np.array_equal(a.count, b.count))


class ChildExecutor:
    """An engine executor: flip chunks run on whichever source's child is free.

    ``sources[0]`` is the first child's source; the engine's baselines run on it inline (the
    sources' per-run state — scoring units and times — comes from the same child). Threads only
    wait on pipes, so the GIL is not in the way.
    """

    def __init__(self, sources: list[Any], chunk_fn: Callable[..., Any], row_tolerance: float = 0.0) -> None:
        self.sources = list(sources)
        self._max_workers = len(self.sources)
        self._chunk_fn = chunk_fn
        self._row_tolerance = row_tolerance
        self.rechecked = 0  # twin chunks that saw a change and were run again in the first child
        self._free: queue.Queue[Any] = queue.Queue()
        for s in self.sources:
            self._free.put(s)
        self._threads = ThreadPoolExecutor(len(self.sources), thread_name_prefix="golf-audit-replay")
        self._locks = {id(src): threading.Lock() for src in self.sources}
        self.lost_twin = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if fn is not self._chunk_fn:
            from ..causality.pool import Done

            return Done(fn, *args)
        return self._threads.submit(self._job, fn, args[1:])

    def _run_on(self, src: Any, fn: Callable[..., Any], rest: tuple[Any, ...]) -> Any:
        with self._locks[id(src)]:  # one request at a time per child
            return fn(src, *rest)

    def _job(self, fn: Callable[..., Any], rest: tuple[Any, ...]) -> Any:
        first = self.sources[0]
        src = self._free.get()
        try:
            out = self._run_on(src, fn, rest)
        except Exception as exc:  # noqa: BLE001 - the first child's failure is the engine's to report
            if src is first or not isinstance(exc, (ChildFailed, OSError, ValueError)):
                self._free.put(src)
                raise
            self.lost_twin = True  # the twin is not given back: its chunk, and every later one, run in the first
            return self._run_on(first, fn, rest)
        self._free.put(src)
        if src is not first and self._moved(out):
            # Only the first child's word counts for a change: two processes agree bit for bit on
            # the unflipped stream, but nothing proves they stay so (float sums may follow memory
            # layout), so what the twin saw moving is run again in the first child.
            self.rechecked += 1
            return self._run_on(first, fn, rest)
        return out

    def _moved(self, out: Any) -> bool:
        records = out[0] if isinstance(out, tuple) and out else []
        return any(r.stream_pos or (r.stream_row_delta is not None and r.stream_row_delta > self._row_tolerance)
                   for r in records)

    def __enter__(self) -> "ChildExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)


class TwinSource:
    """A source whose ``run_many`` shares its streams with a twin child's source.

    ``run`` is the first child's. ``run_many`` first has the twin score the unflipped stream of
    the last plain ``run`` (while the first child starts on the streams); the twin takes every
    other stream only when that score is bit-identical, and whatever it did not deliver is run
    on the first child. A twin's result that shows a change is run again in the first child
    (``recheck``/``confirm``), so a verdict never rests on the twin.
    """

    def __init__(self, primary: Any, twin: Any | None, verified: bool = False) -> None:
        self.primary = primary
        self.twin = twin
        self.verified = verified  # the twin already scored this call's unflipped stream alike (the flip test)
        self._base: tuple[Any, Any] | None = None
        self._from_twin: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.primary, name)

    def run(self, tokens: Any, **kwargs: Any) -> Any:
        out = self.primary.run(tokens, **kwargs)
        if not kwargs:
            self._base = (tokens, out)
        return out

    def run_many(self, streams: list[Any]) -> list[Any]:
        results: list[Any] = [None] * len(streams)
        if self.twin is None or self._base is None or len(streams) < 2:
            return [self.primary.run(s) for s in streams]
        base_tokens, base = self._base

        def twin_side() -> None:
            try:
                if not self.verified and not same_scores(base, self.twin.run(base_tokens)):
                    return
                for k in range(1, len(streams), 2):
                    results[k] = self.twin.run(streams[k])
                    self._from_twin.add(id(results[k]))
            except Exception:  # noqa: BLE001 - whatever the twin did not deliver runs in the first child
                return

        thread = threading.Thread(target=twin_side, daemon=True)
        thread.start()
        for k in range(0, len(streams), 2):
            results[k] = self.primary.run(streams[k])
        thread.join()
        return [r if r is not None else self.primary.run(s) for r, s in zip(results, streams)]

    def recheck(self, result: Any) -> bool:
        """``result`` came from the twin: a change in it is counted only once the first child sees it."""
        return id(result) in self._from_twin

    def confirm(self, stream: Any) -> Any:
        """The first child's score of ``stream`` (for a twin's result that showed a change)."""
        return self.primary.run(stream)
