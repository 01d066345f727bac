"""The parent side of the sandbox: start the child, talk JSON lines to it, enforce limits, clean up.

The child (``python -m golf_audit.submission.child``) runs inside the OS sandbox described in
``sandbox.py`` (bubblewrap: no network, read-only filesystem except its work dir and a
private /tmp, its own pid namespace, process/memory/CPU limits). Where no sandbox can be
built the constructor raises ``SandboxUnavailable`` unless ``unsafe_no_sandbox`` was asked;
``isolation`` names the level it runs under, for the report.

Answers are parsed as JSON, never unpickled. The child's stderr goes to a file whose last
lines become evidence when it fails. ``attempts()`` lists what the code tried that the
sandbox refuses or watches (network, writes outside the work dir, spawned processes,
package installs, signals, processes still running at the end), recorded by the child-side
guard and by the OS layer. ``close()`` (also on timeout, crash, Ctrl-C and interpreter exit)
kills the whole process tree and removes every temporary file.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import BadInput
from . import sandbox
from .sandbox import SandboxUnavailable  # noqa: F401 - part of this module's API

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MEMORY_BYTES = 8 * 1024**3
MAX_EVIDENCE_BYTES = 1 << 20
# What the kernel (or Python, for RLIMIT_AS) prints when the sandbox refuses something: the
# refusals of processes the guard cannot see (shells, `python -I`), and the limits reached.
_OS_MESSAGES = (("Read-only file system", "write-outside", "refused by the sandbox"),
                ("Address family not supported by protocol", "network", "refused by the sandbox"),
                ("MemoryError", "limit", "memory limit reached"),
                ("Resource temporarily unavailable", "limit", "process limit reached"))

_open_children: "weakref.WeakSet[ChildProcess]" = weakref.WeakSet()


class ChildFailed(RuntimeError):
    """The child crashed, hung, or answered with an error; ``tail`` holds its last stderr lines."""

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


def _check_support_path(rel: str) -> str:
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or ".." in path.parts or str(path) == "train_gpt.py":
        raise BadInput(f"support file {rel!r}: must be a relative path inside the submission folder")
    return str(path)


class ChildProcess:
    """One sandboxed child session: ``request(setup)``, then ``request(obj)`` any number of times.

    ``support_files`` (relative path -> bytes) are placed beside ``train_gpt.py`` in the work
    dir, read-only, like the script itself. ``script`` is the script's path as the child sees it.
    ``module`` is the child program (a golf-audit module speaking JSON lines, e.g. the byte-table
    runner of ``golf_audit.bpb``); it must install the guard first, as ``child.main`` does.
    """

    def __init__(self, script_text: str, *, python: str | None = None, timeout_s: float = 120.0,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, extra_env: dict[str, str] | None = None,
                 cpu_seconds: int = 3600, support_files: dict[str, bytes] | None = None,
                 unsafe_no_sandbox: bool = False, module: str = "golf_audit.submission.child") -> None:
        self.timeout_s = timeout_s
        self.limits = sandbox.Limits(memory_bytes=memory_bytes, cpu_seconds=cpu_seconds)
        self._attempts: list[dict[str, Any]] | None = None
        self._closed = False
        self._exit_asked = False
        self._pidns: str | None = None
        self._init_pid: int | None = None
        self._survivors: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []  # what the runner itself saw (timeouts)
        self._buffer = b""
        files = {_check_support_path(k): bytes(v) for k, v in (support_files or {}).items()}
        # The submission's own text, to quote the line of each attempt in the report.
        self._sources = {"train_gpt.py": script_text.splitlines()}
        self._sources.update({k: v.decode("utf-8", "replace").splitlines() for k, v in files.items() if k.endswith(".py")})
        self.isolation = sandbox.LEVEL_NONE if unsafe_no_sandbox else sandbox.LEVEL_BWRAP
        binary = None
        if not unsafe_no_sandbox:
            reason = sandbox.unavailable_reason()
            if reason:
                raise SandboxUnavailable(reason)
            binary = sandbox.bwrap_path()
        interp = sandbox.interpreter(python)  # BadInput for a bad --python, before anything is created
        sandbox.sweep_stale()
        self.root = Path(tempfile.mkdtemp(prefix=f"{sandbox.STALE_PREFIX}{os.getpid()}-"))
        try:
            self._start(script_text, files, interp, binary, extra_env or {}, module)
        except BaseException:
            self._cleanup_files()
            raise
        _open_children.add(self)

    # --- start ---------------------------------------------------------------------------

    def _start(self, script_text: str, files: dict[str, bytes], interp: sandbox.Interpreter, binary: str | None,
               extra_env: dict[str, str], module: str) -> None:
        self.workdir = self.root / "work"
        evidence_dir = self.root / "evidence"
        for d in (self.workdir, evidence_dir, self.root / "boot"):
            d.mkdir()
        (self.workdir / "train_gpt.py").write_text(script_text, encoding="utf-8")
        for rel, data in files.items():
            dest = self.workdir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (self.root / "boot" / "sitecustomize.py").write_text(sandbox.SITECUSTOMIZE, encoding="utf-8")
        self.stderr_path = self.root / "child.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self._evidence_path = evidence_dir / "attempts.jsonl"
        sandboxed = binary is not None
        inside_work = sandbox.WORK if sandboxed else str(self.workdir)
        inside_evidence = f"{sandbox.EVIDENCE}/attempts.jsonl" if sandboxed else str(self._evidence_path)
        self.script = Path(inside_work) / "train_gpt.py"
        guard = sandbox.guard_config(sandboxed=sandboxed, workdir=inside_work, evidence=inside_evidence,
                                     limits=self.limits)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": inside_work, "TMPDIR": "/tmp" if sandboxed else inside_work,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8",
               "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "GOLF_AUDIT_GUARD": json.dumps(guard)}
        env["PYTHONPATH"] = f"{sandbox.TOOL}:{sandbox.BOOT}" if sandboxed else str(REPO_ROOT)
        env.update(extra_env)
        limits = self.limits
        if not sandboxed:
            argv = [interp.executable, "-m", module]
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         cwd=self.workdir, env=env, preexec_fn=limits.apply_outside,
                                         start_new_session=True, close_fds=True)
            self._info_r = -1
            return
        if os.geteuid() == 0:  # the code runs as SANDBOX_UID: it must be able to write its own dirs
            for d in (self.workdir, evidence_dir, *[p for p in self.workdir.rglob("*") if p.is_dir()]):
                os.chown(d, sandbox.SANDBOX_UID, sandbox.SANDBOX_UID)
        info_r, info_w = os.pipe()
        self._info_r = info_r  # closed by _read_info, or by _cleanup_files if the start fails
        program = sandbox.seccomp_program()
        seccomp_r = -1
        fds = [info_w]
        if program is not None:
            seccomp_r, seccomp_w = os.pipe()
            os.write(seccomp_w, program)  # a few hundred bytes: fits in the pipe buffer
            os.close(seccomp_w)
            fds.append(seccomp_r)
        argv = sandbox.command(binary, interp, self.root, sorted(files) + ["train_gpt.py"], limits, info_w,
                               seccomp_r if program is not None else None, module)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         env=env, preexec_fn=limits.apply_outside, start_new_session=True,
                                         pass_fds=fds, close_fds=True)
        finally:
            for fd in fds:
                os.close(fd)

    def _read_info(self, wait_s: float = 10.0) -> None:
        """bwrap's --info-fd JSON: the pid (outside) of the namespace's init and the pid namespace."""
        if self._info_r < 0:
            return
        data = b""
        info = None
        deadline = time.monotonic() + wait_s
        while info is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self._info_r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._info_r, 4096) if ready else b""
            if not chunk:
                break
            data += chunk
            try:
                info = json.loads(data)
            except ValueError:
                continue  # not all of it yet
        os.close(self._info_r)
        self._info_r = -1
        if not info:
            return
        self._init_pid = int(info.get("child-pid", 0)) or None
        if info.get("pid-namespace"):
            self._pidns = f"pid:[{info['pid-namespace']}]"

    # --- protocol --------------------------------------------------------------------------

    def tail(self, lines: int = 8) -> str:
        """The last lines the child wrote to stderr (its tracebacks and prints)."""
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(self.stderr_path) - 20000))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def request(self, obj: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one JSON line and wait for one JSON line back; ChildFailed on crash/hang/error."""
        if self._info_r >= 0:
            self._read_info()
        if self.proc.poll() is not None:
            raise ChildFailed(f"the child exited ({self._exit_reason()})", self.tail())
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc.wait()
            raise ChildFailed(f"the child exited ({self._exit_reason()})", self.tail()) from None
        answer = self._read_line(timeout_s or self.timeout_s)
        try:
            data = json.loads(answer)
        except ValueError:
            raise ChildFailed("the child sent something that is not JSON", self.tail()) from None
        if not isinstance(data, dict):
            raise ChildFailed("the child sent an unexpected answer", self.tail())
        if not data.get("ok"):
            if "MemoryError" in str(data.get("error")):
                self._events.append({"kind": "limit", "detail": f"memory limit reached ({self.limits.memory_bytes / 2**30:.1f} "
                                     f"GiB of address space): {data.get('error')}"[:300], "file": None, "line": None,
                                     "source": "os"})
            raise ChildFailed(str(data.get("error", "unknown error")), (data.get("trace") or "").strip() or self.tail())
        return data

    def _exit_reason(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {-code}"
        # bwrap reports the child's death by a signal as 128 + signal.
        if self.isolation == sandbox.LEVEL_BWRAP and code > 128:
            name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else str(code - 128)
            return f"killed by {name}" + (" (CPU time limit)" if name == "SIGXCPU" else "")
        return f"exit code {code}"

    def _read_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._events.append({"kind": "limit", "detail": f"timed out after {timeout_s:.0f} s: the sandbox was "
                                     "killed", "file": None, "line": None, "source": "os"})
                self.kill()
                raise ChildFailed(f"timed out after {timeout_s:.0f} s (the script hangs or is too slow)", self.tail())
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.proc.wait()
                    self._scan_namespace()
                    raise ChildFailed(f"the child died ({self._exit_reason()})", self.tail())
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    # --- evidence ----------------------------------------------------------------------------

    def _scan_namespace(self) -> None:
        """Note the processes still running in the sandbox besides its init and the child."""
        if self._pidns is None:
            return
        try:
            procs = sandbox.namespace_processes(self._pidns)
        except OSError:
            return
        extra = [p for p in procs if p["inner_pid"] > 2]
        if len(extra) > len(self._survivors):
            self._survivors = extra

    def attempts(self) -> list[dict[str, Any]]:
        """What the code tried: ``{"kind", "detail", "file", "line", "count", "source"}`` each.

        Kinds: network, write-outside, spawn, package-install, signal, native-call (from the
        child-side guard, with the submission's file and line), survivor (processes still
        running at the end, from the pid namespace) and the kernel's refusals seen in the
        child's stderr (source "os"). Complete once the child is closed.
        """
        if self._attempts is not None:
            return list(self._attempts)
        return self._collect()

    def _collect(self) -> list[dict[str, Any]]:
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}

        def add(entry: dict[str, Any]) -> None:
            key = (entry["kind"], entry["detail"], entry.get("file"), entry.get("line"))
            if key in merged:
                merged[key]["count"] += 1
            else:
                merged[key] = {**entry, "count": 1}

        try:
            with open(self._evidence_path, "rb") as fh:
                raw = fh.read(MAX_EVIDENCE_BYTES)
        except OSError:
            raw = b""
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and isinstance(item.get("kind"), str):
                line_no = item.get("line")
                add({"kind": item["kind"][:40], "detail": str(item.get("detail", ""))[:300],
                     "file": str(item["file"])[:200] if item.get("file") else None,
                     "line": line_no if isinstance(line_no, int) else None, "source": "guard"})
        if self._survivors:
            sample = "; ".join(p["command"] for p in self._survivors[:3])
            add({"kind": "survivor", "detail": f"{len(self._survivors)} process(es) still running in the sandbox when "
                 f"the audit ended, killed with it: {sample}", "file": None, "line": None, "source": "os"})
        for entry in merged.values():
            lines = self._sources.get(entry.get("file") or "")
            if lines and entry.get("line") and 0 < entry["line"] <= len(lines):
                entry["code"] = lines[entry["line"] - 1].strip()[:160]
        for event in self._events:
            add(event)
        for needle, kind, what in _OS_MESSAGES:
            hits = self._stderr_lines_with(needle)
            if hits:
                add({"kind": kind, "detail": f"{what} ({len(hits)} time(s)): {hits[0][:200]}",
                     "file": None, "line": None, "source": "os"})
        return list(merged.values())

    def _stderr_lines_with(self, needle: str) -> list[str]:
        try:
            with open(self.stderr_path, "rb") as fh:
                text = fh.read(MAX_EVIDENCE_BYTES).decode("utf-8", "replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if needle in line]

    # --- the end -----------------------------------------------------------------------------

    def kill(self) -> None:
        """Kill the sandbox and everything in it (its pid namespace goes with its init)."""
        self._scan_namespace()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._init_pid and self._pidns:
            try:
                if os.readlink(f"/proc/{self._init_pid}/ns/pid") == self._pidns:
                    os.kill(self._init_pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.proc.wait()
        if self._pidns:  # the kernel kills the rest of the namespace asynchronously: wait for it
            deadline = time.monotonic() + 10
            while sandbox.namespace_processes(self._pidns) and time.monotonic() < deadline:
                time.sleep(0.01)

    def ask_exit(self) -> None:
        """Ask the child to exit without waiting (several children then wind down together)."""
        if self._exit_asked or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write(b'{"op": "exit"}\n')
            self.proc.stdin.flush()
            self._exit_asked = True
        except (BrokenPipeError, OSError, ValueError):
            pass

    def close(self, graceful: bool = True) -> None:
        """Ask the child to exit (``graceful``), kill what is left, keep the evidence, remove every temp file.

        Ctrl-C is held off until the cleanup is done, so a second one cannot leave a sandbox behind.
        """
        if self._closed:
            return
        self._closed = True
        masked = _mask_sigint()
        try:
            if self._info_r >= 0:
                self._read_info(wait_s=1.0)
            self._scan_namespace()
            if graceful and self.proc.poll() is None:
                try:
                    self.ask_exit()
                    self.proc.wait(timeout=5)
                except (BrokenPipeError, subprocess.TimeoutExpired, OSError, ValueError):
                    pass
            self.kill()
            self._attempts = self._collect()
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self._cleanup_files()
            _open_children.discard(self)
            if masked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    @property
    def pid_namespace(self) -> str | None:
        """The sandbox's pid namespace ("pid:[inode]"), None without the OS sandbox."""
        if self._info_r >= 0:
            self._read_info()
        return self._pidns

    def _cleanup_files(self) -> None:
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        if getattr(self, "_info_r", -1) >= 0:
            os.close(self._info_r)
            self._info_r = -1
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(graceful=exc_type is None)  # interrupted or failed: no polite exit, kill at once


def _mask_sigint() -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@atexit.register
def _close_all() -> None:
    # A SystemExit or an unhandled exception elsewhere must not leave a sandbox behind.
    for child in list(_open_children):
        try:
            child.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def isolation_note(level: str) -> str:
    """The sentence a report prints about the isolation level."""
    return sandbox.describe(level)


__all__ = ["ChildFailed", "ChildProcess", "DEFAULT_MEMORY_BYTES", "REPO_ROOT", "SandboxUnavailable", "isolation_note"]
