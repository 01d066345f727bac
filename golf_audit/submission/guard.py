"""Child side of the sandbox: drop root, apply the in-sandbox limits, record what the code tries.

Installed by the first line of ``child.main`` and, through the ``sitecustomize`` the sandbox
puts on ``PYTHONPATH``, in every Python process the submission starts. Configuration comes
from one environment variable (``GOLF_AUDIT_GUARD``, JSON) written by the parent.

Two jobs:

* **Limits that must be applied inside.** When the sandbox was started by root, the child
  starts as root with only CAP_SETUID/CAP_SETGID and drops to an unprivileged uid here, before
  any submission code runs: the kernel exempts root from RLIMIT_NPROC, so a fork bomb is only
  contained once the processes belong to an ordinary uid. RLIMIT_NPROC is set here too (set
  outside, it would count every process of an unprivileged caller, not only the sandbox's).
* **Attempts as evidence.** A Python audit hook (PEP 578, ``sys.addaudithook``; it cannot be
  removed once installed) sees network calls, file writes, process spawns, signals and
  package-manager imports. Each one made by the submission's code is written as one JSON line
  (kind, detail, file and line of the submission frame) to the evidence file, which the parent
  reads after the run. Network access and writes outside the writable roots are refused here
  as well as by the OS layer, so that the attempt fails the same way with or without the OS
  sandbox. The record is best effort by nature (the code runs in the same process and could
  tamper with it); the blocking does not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

ENV = "GOLF_AUDIT_GUARD"
MAX_RECORDS = 200  # distinct attempts written per process: a loop of attempts stays one line

_state: dict[str, Any] = {}
_SUBMISSION_PREFIX = "<golf-audit"  # code the child compiles from the script's own text

# Writes there are always harmless: device files and the process's own /proc entries.
_ALWAYS_WRITABLE = ("/dev/", "/proc/self/", "/proc/thread-self/")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_INSTALLERS = re.compile(r"(^|[\s/'\"])(pip3?(\.\d+)?|ensurepip|conda|mamba|uv|apt(-get)?|poetry|easy_install)"
                         r"(['\"]?[\s,]+['\"]?)(install|add|sync|-m\s+pip)\b|-m['\"]?[\s,]+['\"]?(pip|ensurepip)\b")
_NET_FAMILIES = {2, 10, 17}  # AF_INET, AF_INET6, AF_PACKET
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}
_LOOKUP_EVENTS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}
_CLIENT_EVENTS = {"urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect", "poplib.connect",
                  "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open", "webbrowser.open"}
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                 "pty.spawn", "os.startfile"}
_FS_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.chmod", "os.chown",
              "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move"}
_SIGNAL_EVENTS = {"os.kill", "os.killpg", "signal.pthread_kill"}
_WATCHED = frozenset({"socket.__new__", "open", "import", "ctypes.dlsym", *_NET_EVENTS, *_LOOKUP_EVENTS,
                      *_CLIENT_EVENTS, *_SPAWN_EVENTS, *_FS_EVENTS, *_SIGNAL_EVENTS})
_NATIVE_NAMES = {"socket", "connect", "bind", "sendto", "sendmsg", "execve", "execv", "fork", "vfork", "system",
                 "posix_spawn", "kill", "ptrace", "mount", "unshare", "setns"}
_PACKAGE_MODULES = {"pip", "ensurepip", "pip._internal", "conda", "setuptools.command.easy_install"}


class Refused(PermissionError):
    """What the guard raises for an attempt it refuses (an OSError, as the kernel's refusal is)."""


def install(main: bool = False) -> None:
    """Apply the limits and install the audit hook; a no-op when not run under golf-audit.

    ``main`` marks the protocol child, whose own startup (torch, the shims) is not the
    submission's doing: there only events with a submission frame on the stack are recorded.
    In any other Python process of the sandbox, everything is the submission's doing.
    """
    if _state.get("installed"):
        _state["main"] = _state["main"] or main
        return
    raw = os.environ.get(ENV)
    if not raw:
        return
    config = json.loads(raw)
    _drop_privileges(config)
    _apply_limits(config)
    code_dir = config.get("code_dir", "")
    _state.update(
        installed=True, main=main, records=0, seen=set(),
        code_dir=code_dir.rstrip("/") + "/" if code_dir else "\0",
        writable=tuple(p.rstrip("/") + "/" for p in config.get("writable", [])),
        fd=_open_evidence(config.get("evidence", "")),
        pid=os.getpid())
    sys.addaudithook(_hook)


def _drop_privileges(config: dict[str, Any]) -> None:
    uid = config.get("uid")
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(int(uid))
    os.setuid(int(uid))  # from root to an ordinary uid: every capability is cleared
    if os.geteuid() == 0 or os.getuid() == 0:
        raise SystemExit("golf-audit guard: could not drop root")


def _apply_limits(config: dict[str, Any]) -> None:
    import resource

    nproc = config.get("nproc")
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))


def _open_evidence(path: str) -> int:
    if not path:
        return -1
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return -1


def _submission_frame() -> tuple[str | None, int | None, bool]:
    """(file relative to the work dir, line, found) of the innermost frame of submission code."""
    code_dir = _state["code_dir"]
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(code_dir):
            return name[len(code_dir):], frame.f_lineno, True
        if name.startswith(_SUBMISSION_PREFIX):
            return name, None, True
        frame = frame.f_back
    return None, None, False


def _record(kind: str, detail: str) -> None:
    file, line, found = _submission_frame()
    if _state["main"] and not found:
        return  # the child's own startup and the shims: not the submission
    if not found:
        file = "<subprocess>"
    key = (kind, detail, file, line)
    if key in _state["seen"] or _state["records"] >= MAX_RECORDS or _state["fd"] < 0:
        return
    _state["seen"].add(key)
    _state["records"] += 1
    entry = {"kind": kind, "detail": detail[:300], "file": file, "line": line, "pid": os.getpid()}
    try:
        os.write(_state["fd"], (json.dumps(entry) + "\n").encode())
    except OSError:
        pass


def _writable(path: Any) -> bool:
    if isinstance(path, int):
        return True  # an fd already open
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        path = os.fspath(path)
    full = os.path.normpath(os.path.join(os.getcwd(), path)) + "/"
    return full.startswith(_state["writable"]) or full.startswith(_ALWAYS_WRITABLE)


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _command(args: Any) -> str:
    if isinstance(args, (list, tuple)):
        return " ".join(os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args)
    return os.fsdecode(args) if isinstance(args, bytes) else str(args)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCHED or _state.get("busy"):
        return
    _state["busy"] = True
    try:
        refusal = _classify(event, args)
    except Exception:  # noqa: BLE001 - the guard must never break the code it watches
        refusal = None
    finally:
        _state["busy"] = False
    if refusal:
        raise Refused(refusal)


def _classify(event: str, args: tuple[Any, ...]) -> str | None:
    """Record the attempt ``event`` stands for; the message to refuse it with, if refused."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        if _writes(mode, flags) and not _writable(path):
            _record("write-outside", f"open({path!r}, {mode or flags!r})")
            return f"golf-audit sandbox: writing {path!r} is not allowed (outside the work dir)"
        return None
    if event in _FS_EVENTS:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        outside = [p for p in paths if not _writable(p)]
        if outside:
            _record("write-outside", f"{event}({', '.join(repr(p) for p in paths)})")
            return f"golf-audit sandbox: changing {outside[0]!r} is not allowed (outside the work dir)"
        return None
    if event == "socket.__new__":
        family = args[1] if len(args) > 1 else None
        if family in _NET_FAMILIES:
            _record("network", f"socket(family={int(family)}, type={args[2] if len(args) > 2 else '?'})")
            return "golf-audit sandbox: network access is not allowed"
        return None
    if event in _NET_EVENTS:
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple):
            _record("network", f"{event.split('.')[1]}({address!r})")
            return "golf-audit sandbox: network access is not allowed"
        return None
    if event in _LOOKUP_EVENTS or event in _CLIENT_EVENTS:
        _record("network", f"{event}({', '.join(repr(a) for a in args[:2])})")
        return "golf-audit sandbox: network access is not allowed" if event in _CLIENT_EVENTS else None
    if event in _SPAWN_EVENTS:
        if event in ("os.fork", "os.forkpty"):
            _record("spawn", f"{event}()")
            return None
        command = _command(args[1] if event in ("subprocess.Popen", "os.exec", "os.posix_spawn") and len(args) > 1
                           else args[2] if event == "os.spawn" and len(args) > 2 else args[0] if args else "")
        _record("package-install" if _INSTALLERS.search(command) else "spawn", f"{event}: {command}")
        return None
    if event in _SIGNAL_EVENTS:
        _record("signal", f"{event}({', '.join(str(a) for a in args[:2])})")
        return None
    if event == "import":
        if args and args[0] in _PACKAGE_MODULES:
            _record("package-install", f"import {args[0]}")
        return None
    if event == "ctypes.dlsym":
        name = args[1] if len(args) > 1 else None
        if isinstance(name, (str, bytes)) and os.fsdecode(name) in _NATIVE_NAMES:
            _record("native-call", f"ctypes: {os.fsdecode(name)}()")
        return None
    return None
