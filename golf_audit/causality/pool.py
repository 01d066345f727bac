"""Worker processes for the flips: a fork pool (or inline execution) behind one interface."""

from __future__ import annotations

import os

import torch


class Done:
    """An already-run job, so serial and pooled execution share one code path."""

    def __init__(self, fn, *args) -> None:
        try:
            self._value, self._exc = fn(*args), None
        except Exception as exc:  # noqa: BLE001 - re-raised by result(), like a Future
            self._value, self._exc = None, exc

    def result(self):
        if self._exc is not None:
            raise self._exc
        return self._value


class worker_pool:
    """Context manager: a process pool of ``workers`` (None when 1: run inline).

    Workers are forked (cheap: the model is already in memory) and run torch on one thread
    each, which also keeps OpenMP from deadlocking after the fork.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self.pool = None

    def __enter__(self):
        if self.workers == 1:
            return None
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                        initializer=torch.set_num_threads, initargs=(1,))
        return self.pool

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    """One worker per available CPU core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
