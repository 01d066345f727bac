"""The parent side of the sandbox: start the child, talk JSON lines to it, enforce limits.

Limits: a temporary working directory, a minimal environment, an address-space cap
(RLIMIT_AS), a CPU-time cap, a wall-clock timeout per request, its own process group (so a
hang is killed with everything it started). The child's answers are parsed as JSON, never
unpickled. Its stderr goes to a file whose last lines become evidence when it fails.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MEMORY_BYTES = 8 * 1024**3


class ChildFailed(RuntimeError):
    """The child crashed, hung, or answered with an error; ``tail`` holds its last stderr lines."""

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


def _limits(memory_bytes: int, cpu_seconds: int) -> Any:
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


class ChildProcess:
    """One sandboxed child session: ``start(setup)``, then ``request(obj)`` any number of times."""

    def __init__(self, script_text: str, *, python: str | None = None, timeout_s: float = 120.0,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, extra_env: dict[str, str] | None = None,
                 cpu_seconds: int = 3600, support_files: dict[str, bytes] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="golf-audit-child-"))
        self.script = self.workdir / "train_gpt.py"
        self.script.write_text(script_text, encoding="utf-8")
        for rel, data in (support_files or {}).items():  # helper modules beside the script
            dest = self.workdir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        self.timeout_s = timeout_s
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), "TMPDIR": str(self.workdir),
               "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8",
               "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
        env.update(extra_env or {})
        self.stderr_path = self.workdir / "child.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "golf_audit.submission.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=self.workdir, env=env,
            preexec_fn=_limits(memory_bytes, cpu_seconds), close_fds=True)
        self._buffer = b""

    def tail(self, lines: int = 8) -> str:
        """The last lines the child wrote to stderr (its tracebacks and prints)."""
        try:
            text = self.stderr_path.read_bytes()[-20000:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def request(self, obj: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one JSON line and wait for one JSON line back; ChildFailed on crash/hang/error."""
        if self.proc.poll() is not None:
            raise ChildFailed(f"the child exited (code {self.proc.returncode})", self.tail())
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise ChildFailed(f"the child exited (code {self.proc.wait()})", self.tail()) from None
        answer = self._read_line(timeout_s or self.timeout_s)
        try:
            data = json.loads(answer)
        except ValueError:
            raise ChildFailed("the child sent something that is not JSON", self.tail()) from None
        if not isinstance(data, dict):
            raise ChildFailed("the child sent an unexpected answer", self.tail())
        if not data.get("ok"):
            raise ChildFailed(str(data.get("error", "unknown error")), (data.get("trace") or "").strip() or self.tail())
        return data

    def _read_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise ChildFailed(f"timed out after {timeout_s:.0f} s (the script hangs or is too slow)", self.tail())
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.proc.wait()
                    reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                    raise ChildFailed(f"the child died ({reason})", self.tail())
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self) -> None:
        """Ask the child to exit, kill it if it does not, and remove the working directory."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                pass
        self.kill()
        self._stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
