"""Where reports go: stdout, or a file written atomically (never half-written)."""

from __future__ import annotations

import enum
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

# Every JSON document golf-audit writes carries this; bump it when a document's shape changes.
SCHEMA_VERSION = "1.0"

# Progress and messages go to stderr; stdout carries only the report. soft_wrap: a message is
# one line however narrow the terminal (the terminal may fold it; we never insert newlines).
stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        # mkstemp creates 0600; a report is an ordinary file, so honour the umask instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def emit(text: str, output: str | os.PathLike | None) -> None:
    """Send a finished report to ``output`` (atomically) or to stdout."""
    if output is not None:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
        stderr_console.print(f"wrote {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def plain_text(items: list[Any], width: int) -> str:
    """Rich renderables (tables, strings with markup) as plain text for a report.

    No colour and no terminal control codes, whatever stdout is, so a report reads the same in
    a file, a pipe and a terminal; trailing spaces are stripped.
    """
    import io

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False)
    for item in items:
        console.print(item)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def to_jsonable(obj: Any) -> Any:
    """Recursively cast numpy/torch scalars, tuples, paths and dataclasses for json.dumps."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None  # JSON has no NaN/inf
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Heartbeat:
    """One progress line on stderr every ``interval`` seconds while a long step runs.

    ``tick()`` counts units of work (e.g. batches of windows); with a known ``total`` each
    line carries the fraction done and an ETA. A step shorter than ``interval`` prints
    nothing, so quick runs stay quiet. Lines, not a redrawn bar: they read the same in a
    terminal, a CI log and a file.
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "steps", interval: float = 30.0) -> None:
        import threading

        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0

    def tick(self, n: int = 1) -> None:
        self.done += n

    def line(self) -> str:
        import time

        elapsed = time.perf_counter() - self._start
        text = f"{self.label}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {_clock(elapsed)} elapsed"
        if self.total and 0 < self.done < self.total:
            text += f", ETA {_clock(elapsed * (self.total - self.done) / self.done)}"
        return text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            stderr_console.print(self.line(), markup=False)

    def __enter__(self) -> "Heartbeat":
        import time

        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
