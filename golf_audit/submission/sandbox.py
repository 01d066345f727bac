"""The OS sandbox a submission's code runs in: bubblewrap, a seccomp filter and resource limits.

Why bubblewrap: it is the sandbox Flatpak runs every desktop application in, small, audited
and packaged by every distribution (Debian: ``bubblewrap``). It builds the sandbox from Linux
namespaces without a daemon, works unprivileged where user namespaces are enabled, and as
root. Everything the sandbox allows is below, in one place:

* ``POLICY``: new pid, network, ipc, uts and cgroup namespaces (no network at all: only a
  loopback nobody else is on; the code cannot see or signal any process outside), killed with
  the audit (``--die-with-parent``), its own session (no terminal injection), no capabilities.
* ``layout()``: the filesystem. An empty root with read-only binds of the system directories,
  a few files of ``/etc``, the interpreter's prefix and import path, and golf-audit's own
  package; a private ``/tmp`` and ``/dev/shm`` (tmpfs, size-capped); the work dir ``/work``
  (writable: the script and its support files are bound read-only inside it); the evidence
  dir. No home directory, no checkout, nothing else of the host. The root is remounted
  read-only once built.
* ``seccomp_program()``: sockets of the internet and packet families fail
  (``EAFNOSUPPORT``) in every process, so nothing can even bind or listen on the sandbox's
  loopback; no io_uring (it could open sockets past the filter), no new namespaces, mounts,
  ptrace, keyrings, bpf or perf events.
* ``Limits``: address space, CPU seconds, file size, and a process count. The process count
  needs an unprivileged uid: started by root, the sandbox keeps CAP_SETUID/CAP_SETGID only
  until the guard (``guard.py``, the child's first line) drops to ``SANDBOX_UID``.

A whole audit is one bubblewrap process: killing it (timeout, Ctrl-C, the end) kills the pid
namespace's init, and the kernel then kills every process in the namespace: no survivors.
Where bubblewrap is missing or cannot create namespaces, ``unavailable_reason()`` says why and
the runner refuses (fail closed) unless the caller asked for ``unsafe_no_sandbox``.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import BadInput

LEVEL_BWRAP = "bubblewrap"
LEVEL_NONE = "none"
LEVELS = {
    LEVEL_BWRAP: "bubblewrap: pid/net/ipc/uts namespaces, read-only filesystem except the work dir and a private "
                 "/tmp, seccomp (no internet sockets), process/memory/CPU limits",
    LEVEL_NONE: "none (--unsafe-no-sandbox): a temporary directory and memory/CPU limits only; the code could reach "
                "the network, write anywhere the user can and outlive the audit",
}

ENV_BWRAP = "GOLF_AUDIT_BWRAP"  # another bubblewrap binary (or a missing path, to test the fail-closed path)
SANDBOX_UID = 65534  # "nobody": the uid the code runs as when golf-audit itself runs as root
WORK = "/work"
TOOL = "/opt/golf-audit"
BOOT = "/opt/golf-audit-boot"
EVIDENCE = "/run/golf-audit"

POLICY: tuple[str, ...] = (
    "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--die-with-parent", "--new-session", "--cap-drop", "ALL",
    "--proc", "/proc", "--dev", "/dev",
)
# As root the child starts privileged only so that the guard can drop to SANDBOX_UID.
AS_ROOT: tuple[str, ...] = ("--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
AS_USER: tuple[str, ...] = ("--unshare-user", "--disable-userns")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf", "passwd",
             "group", "hosts", "os-release", "mime.types")
STALE_PREFIX = "golf-audit-sbx-"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox; every process in it inherits them."""

    memory_bytes: int  # RLIMIT_AS, per process
    cpu_seconds: int  # RLIMIT_CPU, per process
    processes: int = 256  # RLIMIT_NPROC (threads count): a fork bomb stops here
    file_bytes: int = 4 * 1024**3  # RLIMIT_FSIZE: the work dir is on the host's disk
    tmp_bytes: int = 1024**3  # size of the private /tmp and /dev/shm

    def apply_outside(self) -> None:
        """In the bwrap process before exec (``preexec_fn``): everything but the process count."""
        import resource

        for which, value in ((resource.RLIMIT_AS, self.memory_bytes), (resource.RLIMIT_CPU, self.cpu_seconds),
                             (resource.RLIMIT_FSIZE, self.file_bytes), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))


class SandboxUnavailable(BadInput):
    """No OS isolation is available here and the caller did not ask to run without it."""


def bwrap_path() -> str | None:
    """The bubblewrap binary to use (``GOLF_AUDIT_BWRAP`` overrides the PATH lookup)."""
    override = os.environ.get(ENV_BWRAP)
    if override:
        return override if os.access(override, os.X_OK) and not os.path.isdir(override) else None
    return shutil.which("bwrap")


def _mode_flags() -> tuple[str, ...]:
    return AS_ROOT if os.geteuid() == 0 else AS_USER


def _system_binds() -> list[str]:
    """Read-only binds of the system dirs (symlinks kept as symlinks) and the needed /etc files."""
    flags: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            flags += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            flags += ["--ro-bind", path, path]
    for name in ETC_FILES:
        if os.path.lexists(f"/etc/{name}"):
            flags += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return flags


@functools.lru_cache(maxsize=4)
def _probe(binary: str, euid: int) -> str | None:
    """None when ``binary`` can build this sandbox here, else the reason it cannot (one line)."""
    true = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"
    argv = [binary, *POLICY, *_mode_flags(), *_system_binds(), "--remount-ro", "/", true]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} could not be started: {exc}"
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"{binary} cannot build the sandbox here: {last}"
    return None


def unavailable_reason() -> str | None:
    """Why no OS sandbox can run here (None when it can); the runner fails closed on it."""
    binary = bwrap_path()
    if binary is None:
        where = os.environ.get(ENV_BWRAP) or "PATH"
        return (f"no OS sandbox for the submission's code: bubblewrap (bwrap) not found in {where}; install it "
                f"(Debian/Ubuntu: apt-get install bubblewrap) or pass --unsafe-no-sandbox")
    reason = _probe(binary, os.geteuid())
    if reason:
        return (f"no OS sandbox for the submission's code: {reason} (user namespaces may be disabled); "
                f"pass --unsafe-no-sandbox to run it without one")
    return None


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter as the sandbox needs it: its real executable and the dirs it imports from."""

    executable: str
    paths: tuple[str, ...]  # prefixes and sys.path dirs to bind read-only (tool checkouts excluded)


_QUERY = ("import json, os, sys; print(json.dumps([os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, "
          "sys.exec_prefix, sys.base_exec_prefix, [p for p in sys.path if p and os.path.isdir(p)]]))")


@functools.lru_cache(maxsize=8)
def interpreter(python: str | None) -> Interpreter:
    """Ask ``python`` (default: this one) where it lives; BadInput when it is not a usable Python."""
    exe = python or sys.executable
    try:
        done = subprocess.run([exe, "-c", _QUERY], capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
        real, *prefixes, path = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        raise BadInput(f"--python {exe}: not a working Python interpreter ({type(exc).__name__})") from None
    dirs: list[str] = []
    for p in [*prefixes, *path]:
        p = os.path.realpath(p)
        under_prefix = any(p == q or p.startswith(q.rstrip("/") + "/") for q in prefixes)
        # An editable install puts a checkout on sys.path: never bind a checkout (the tool's
        # own package is bound on its own, read-only).
        if not under_prefix and (os.path.isdir(os.path.join(p, "golf_audit")) or os.path.isdir(os.path.join(p, ".git"))):
            continue
        if os.path.isdir(p) and not any(p == d or p.startswith(d.rstrip("/") + "/") for d in dirs):
            dirs = [d for d in dirs if not d.startswith(p.rstrip("/") + "/")] + [p]
    return Interpreter(real, tuple(dirs))


def layout(interp: Interpreter, root: Path, read_only: list[str], limits: Limits) -> list[str]:
    """The filesystem flags: system, interpreter, tool, private tmp, work dir, evidence."""
    package = Path(__file__).resolve().parents[1]  # golf_audit/
    binds = [(path, path) for path in interp.paths if not (path == "/usr" or path.startswith("/usr/"))]
    binds += [(str(package), f"{TOOL}/golf_audit"), (str(root / "boot"), BOOT)]
    # The child's byte tables and scored-set records come from the reference stack (installed beside).
    reference = package.parent / "reference_model"
    if reference.is_dir():
        binds.append((str(reference), f"{TOOL}/reference_model"))
    flags = _system_binds()
    made: set[str] = set()
    for source, dest in binds:
        flags += _parent_dirs(dest, made) + ["--ro-bind", source, dest]
    for target in ("/tmp", "/dev/shm"):
        flags += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", target]
    flags += _parent_dirs(EVIDENCE, made)
    flags += ["--bind", str(root / "work"), WORK, "--bind", str(root / "evidence"), EVIDENCE]
    for rel in read_only:
        flags += ["--ro-bind", str(root / "work" / rel), f"{WORK}/{rel}"]
    return flags + ["--remount-ro", "/", "--chdir", WORK]


def _parent_dirs(dest: str, made: set[str]) -> list[str]:
    """bwrap creates missing parents of a mount point as 0700: make them 0755, so the
    unprivileged uid can reach what is bound below them."""
    flags: list[str] = []
    parts = PurePosixPath(dest).parts[1:-1]
    for k in range(1, len(parts) + 1):
        parent = "/" + "/".join(parts[:k])
        if parent not in made:
            made.add(parent)
            flags += ["--perms", "0755", "--dir", parent]
    return flags


# --- seccomp: a classic BPF program, assembled here (bwrap loads it with --seccomp FD) -------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Syscall numbers (x86_64, aarch64). io_uring and clone3 share numbers across architectures.
_SYSCALLS = {
    "socket": (41, 198), "clone": (56, 220), "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "ptrace": (101, 117), "bpf": (321, 280),
    "perf_event_open": (298, 241), "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "clone3": (435, 435),
}
_DENIED = ("unshare", "setns", "mount", "umount2", "pivot_root", "ptrace", "bpf", "perf_event_open", "keyctl",
           "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register")
_EPERM, _ENOSYS, _EAFNOSUPPORT = 1, 38, 97
_CLONE_NEW_NAMESPACES = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_DENIED_FAMILIES = (2, 10, 17)  # AF_INET, AF_INET6, AF_PACKET
_RET_KILL, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_ABS, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter as bytes (struct sock_filter[]), or None on an architecture it does not know."""
    machine = machine or platform.machine()
    if machine not in _AUDIT_ARCH:
        return None
    col = 0 if machine == "x86_64" else 1
    nr = {name: numbers[col] for name, numbers in _SYSCALLS.items()}
    prog = [_insn(_LD_ABS, 4), _insn(_JEQ, _AUDIT_ARCH[machine], 1, 0), _insn(_RET, _RET_KILL),
            _insn(_LD_ABS, 0)]
    if machine == "x86_64":  # the x32 ABI has its own numbers: refuse it outright
        prog += [_insn(_JGE, 0x40000000, 0, 1), _insn(_RET, _RET_ERRNO | _ENOSYS)]
    for name in _DENIED:
        prog += [_insn(_JEQ, nr[name], 0, 1), _insn(_RET, _RET_ERRNO | _EPERM)]
    # clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall back to clone.
    prog += [_insn(_JEQ, nr["clone3"], 0, 1), _insn(_RET, _RET_ERRNO | _ENOSYS)]
    prog += [_insn(_JEQ, nr["socket"], 0, 6), _insn(_LD_ABS, 16)]
    prog += [_insn(_JEQ, _DENIED_FAMILIES[0], 2, 0), _insn(_JEQ, _DENIED_FAMILIES[1], 1, 0),
             _insn(_JEQ, _DENIED_FAMILIES[2], 0, 1), _insn(_RET, _RET_ERRNO | _EAFNOSUPPORT), _insn(_RET, _RET_ALLOW)]
    prog += [_insn(_JEQ, nr["clone"], 0, 4), _insn(_LD_ABS, 16), _insn(_JSET, _CLONE_NEW_NAMESPACES, 0, 1),
             _insn(_RET, _RET_ERRNO | _EPERM), _insn(_RET, _RET_ALLOW)]
    return b"".join(prog + [_insn(_RET, _RET_ALLOW)])


def command(binary: str, interp: Interpreter, root: Path, read_only: list[str], limits: Limits,
            info_fd: int, seccomp_fd: int | None, module: str = "golf_audit.submission.child") -> list[str]:
    """The bwrap command line that runs the child (``python -m MODULE``, a golf-audit module)."""
    argv = [binary, *POLICY, *_mode_flags(), *layout(interp, root, read_only, limits), "--info-fd", str(info_fd)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv + ["--", interp.executable, "-m", module]


def guard_config(*, sandboxed: bool, workdir: str, evidence: str, limits: Limits) -> dict[str, Any]:
    """What the child-side guard reads from its environment (see guard.py)."""
    writable = [workdir, os.path.dirname(evidence)] + (["/tmp"] if sandboxed else [])
    config: dict[str, Any] = {"code_dir": workdir, "evidence": evidence, "writable": writable}
    if sandboxed:
        config["nproc"] = limits.processes
        if os.geteuid() == 0:
            config["uid"] = SANDBOX_UID
    return config


SITECUSTOMIZE = (
    "# Installed by golf-audit's sandbox: every Python the submission starts records its attempts too.\n"
    "try:\n    from golf_audit.submission import guard\n    guard.install()\n"
    "except Exception:\n    pass\n"
)


def namespace_processes(pidns: str) -> list[dict[str, Any]]:
    """Processes now alive in the pid namespace ``pidns`` ("pid:[inode]"): host pid, pid inside, command.

    Zombies are left out: they are dead already (the namespace's init, once killed, waits for its
    reaper outside the sandbox, for a second or more on some hosts).
    """
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/pid") != pidns:
                continue
            status = Path(f"/proc/{entry.name}/status").read_text()
            state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "?")
            if state in ("Z", "X"):  # dead, waiting for a reaper outside: it runs nothing and holds no memory
                continue
            inner = next(int(line.split()[-1]) for line in status.splitlines() if line.startswith("NSpid:"))
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            if not cmd.strip():  # a fork that did not exec: its name is all there is
                cmd = next((line.split(None, 1)[-1] for line in status.splitlines() if line.startswith("Name:")), "?")
        except (OSError, StopIteration, ValueError):
            continue
        found.append({"pid": int(entry.name), "inner_pid": inner, "command": cmd.strip()[:200]})
    return found


def sweep_stale(tmp: str | None = None) -> None:
    """Remove sandbox roots left by an audit that was killed outright (SIGKILL: no cleanup ran)."""
    base = Path(tmp or os.environ.get("TMPDIR") or "/tmp")
    try:
        entries = list(base.glob(f"{STALE_PREFIX}*"))
    except OSError:
        return
    for entry in entries:
        try:
            owner = int(entry.name[len(STALE_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if owner == os.getpid():
            continue
        try:
            os.kill(owner, 0)
            continue  # its audit is still running
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue


def describe(level: str) -> str:
    """One line for reports: what the isolation level means."""
    return LEVELS.get(level, level)


# --- attempts in reports ------------------------------------------------------------------------

ATTEMPT_KINDS = {
    "network": "tried to use the network",
    "write-outside": "tried to write outside its work dir",
    "package-install": "tried to install packages",
    "spawn": "started processes",
    "signal": "sent signals",
    "native-call": "looked up system calls through ctypes",
    "survivor": "left processes running at the end of the audit",
    "limit": "hit a sandbox limit",
}


def where(attempt: dict[str, Any]) -> str:
    """``file:line (`code`)`` of an attempt, or who saw it when no submission line is known."""
    if attempt.get("line"):
        code = f" (`{attempt['code']}`)" if attempt.get("code") else ""
        return f"{attempt.get('file')}:{attempt['line']}{code}"
    if attempt.get("file"):
        return str(attempt["file"])
    return "seen by the OS layer"


def attempt_lines(attempts: list[dict[str, Any]], per_kind: int = 4) -> list[tuple[str, str]]:
    """(kind, sentence) per attempt kind, in a fixed order: what a report prints."""
    lines = []
    for kind, words in ATTEMPT_KINDS.items():
        items = [a for a in attempts if a.get("kind") == kind]
        if not items:
            continue
        shown = "; ".join(f"{a['detail']} at {where(a)}" for a in items[:per_kind])
        more = f"; and {len(items) - per_kind} more" if len(items) > per_kind else ""
        lines.append((kind, f"the code {words}: {shown}{more}"))
    return lines


def isolation_text(level: str) -> str:
    """The isolation sentence of a report ("" level: no child was started)."""
    return f"isolation: {describe(level)}" if level else "isolation: no code of the submission was run"


def report_subjects(audit: Any) -> list[Any]:
    """Subjects of the causality report for the attempts of a ``SubmissionAudit``.

    They are warnings whatever the flip tests say (the sandbox refused or contained what was
    tried; the reviewer decides what it means): status pass with a "warning:" summary, as
    static warnings are.
    """
    from ..causality.report import AuditedSubject
    from ..causality.results import CausalityResult
    from ..findings import Status

    subjects = []
    for kind, sentence in attempt_lines(audit.attempts):
        count = sum(int(a.get("count", 1)) for a in audit.attempts if a.get("kind") == kind)
        result = CausalityResult(f"sandbox {kind}", Status.PASS, f"warning: {sentence}", tolerance=audit.tolerance,
                                 stream_tokens=audit.stream_tokens)
        subjects.append(AuditedSubject(f"sandbox: {kind}", "sandbox", {"attempts": str(count),
                                                                        "isolation": audit.isolation}, result))
    return subjects


def attempt_evidence(attempts: list[dict[str, Any]], script: str) -> list[Any]:
    """The attempts as ``Evidence`` of the report's dynamic checks (file and line where known)."""
    from ..findings import Evidence

    out = []
    for a in attempts:
        file = script if a.get("file") == "train_gpt.py" else a.get("file") if a.get("line") else None
        out.append(Evidence(f"sandbox: the code {ATTEMPT_KINDS.get(a['kind'], a['kind'])}: {a['detail']}",
                            file=file, line=a.get("line"), snippet=a.get("code")))
    return out
