"""The OS sandbox of a submission's code: every probe must fail *and* be reported.

Each probe script tries something at import time (when the child executes the script) and
prints what happened to stderr; the test asserts the attempt failed (from outside: nothing
reached the listener, no file appeared, no process survived) and that ``attempts()`` lists
it with the script line where the guard could see it. Grouped into a few child runs to keep
the default suite fast (each start imports torch).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from golf_audit.errors import BadInput
from golf_audit.submission import guard, sandbox
from golf_audit.submission.runner import ChildFailed, ChildProcess, SandboxUnavailable

REPO = Path(__file__).resolve().parents[1]
SETUP = {"scoring": [], "tokens": list(range(4, 200)), "vocab": 256}  # the script runs as __main__; nothing scores


@pytest.fixture(scope="module", autouse=True)
def _needs_sandbox() -> None:
    reason = sandbox.unavailable_reason()
    if reason and os.environ.get("GOLF_AUDIT_REQUIRE_SANDBOX"):
        pytest.fail(f"CI requires the OS sandbox: {reason}")
    if reason:
        pytest.skip(reason)


def line_of(code: str, marker: str) -> int:
    """The 1-based line of ``code`` holding ``marker`` (the probe's own line)."""
    return next(i for i, text in enumerate(code.splitlines(), 1) if marker in text)


def run_probe(code: str, timeout_s: float = 60, **kwargs) -> tuple[ChildProcess, str, ChildFailed | None]:
    """Run ``code`` as a submission script; (closed child, its stderr, the setup failure)."""
    child = ChildProcess(code, timeout_s=timeout_s, **kwargs)
    with child:
        failure = None
        try:
            ready = child.request({"script": str(child.script), **SETUP}, timeout_s=timeout_s)
            if ready.get("entry_error"):  # the script raised: the child reports it, the audit goes on
                err = ready["entry_error"]
                failure = ChildFailed(f"the entry point stopped at line {err.get('line')}: {err.get('error')}",
                                      child.tail(lines=400))
        except ChildFailed as exc:
            failure = exc
        stderr = child.tail(lines=400)
    return child, stderr, failure


def sandbox_dirs() -> set[str]:
    return {p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"{sandbox.STALE_PREFIX}{os.getpid()}-*")}


def attempts_at(child: ChildProcess, kind: str, line: int | None = None) -> list[dict]:
    return [a for a in child.attempts() if a["kind"] == kind and (line is None or a.get("line") == line)]


@pytest.fixture()
def listeners():
    """A TCP listener and a UDP socket on the host's loopback: the sandbox must reach neither."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    tcp.settimeout(0.3)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.3)
    yield tcp, udp
    tcp.close()
    udp.close()


def _nothing_arrived(tcp: socket.socket, udp: socket.socket) -> None:
    with pytest.raises(socket.timeout):
        tcp.accept()
    with pytest.raises(socket.timeout):
        udp.recvfrom(16)


PROBE_HELPER = """\
def probe(name, fn):
    try:
        fn()
        print("PROBE", name, "SUCCEEDED", file=sys.stderr)
    except Exception as exc:
        print("PROBE", name, "refused:", type(exc).__name__, exc, file=sys.stderr)
"""

NETWORK_PROBE = PROBE_HELPER + """\
import os, socket, subprocess, sys
probe("tcp-direct", lambda: socket.socket().connect(("127.0.0.1", TCP)))  # tcp-direct
probe("raw-socket", lambda: __import__("_socket").socket(2, 1).connect(("127.0.0.1", TCP)))  # raw-socket
probe("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP)))  # udp
probe("bind", lambda: socket.socket().bind(("127.0.0.1", 0)))  # bind
code = "import socket; s = socket.create_connection(('127.0.0.1', TCP))"
rc = subprocess.run([sys.executable, "-c", code]).returncode  # tcp-subprocess
print("PROBE tcp-subprocess rc", rc, file=sys.stderr)
rc = subprocess.run([sys.executable, "-I", "-c", code]).returncode  # tcp-isolated
print("PROBE tcp-isolated rc", rc, file=sys.stderr)
lst = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()"
rc = subprocess.run([sys.executable, "-I", "-c", lst]).returncode  # listen-isolated
print("PROBE listen-isolated rc", rc, file=sys.stderr)
rc = os.system("bash -c 'echo hi > /dev/tcp/127.0.0.1/TCP'")  # tcp-os-system
print("PROBE tcp-os-system rc", rc, file=sys.stderr)
"""


def test_network_is_refused_and_reported_from_python_subprocesses_and_shells(listeners) -> None:
    tcp, udp = listeners
    code = NETWORK_PROBE.replace("TCP", str(tcp.getsockname()[1])).replace("UDP", str(udp.getsockname()[1]))
    child, stderr, _ = run_probe(code)
    _nothing_arrived(tcp, udp)
    assert "SUCCEEDED" not in stderr
    for name in ("tcp-direct", "raw-socket", "udp", "bind"):
        assert f"PROBE {name} refused:" in stderr, stderr
        assert attempts_at(child, "network", line_of(code, f"# {name}")), (name, child.attempts())
    for name in ("tcp-subprocess", "tcp-isolated", "listen-isolated", "tcp-os-system"):
        rc_line = next(t for t in stderr.splitlines() if t.startswith(f"PROBE {name} rc"))
        assert not rc_line.endswith(" 0"), rc_line  # the process failed
        assert attempts_at(child, "spawn", line_of(code, f"# {name}")), (name, child.attempts())
    # The guard of the subprocess Python saw its connect; the OS refused the isolated one and bash.
    assert any(a["file"] == "<subprocess>" for a in attempts_at(child, "network"))
    os_refusals = [a for a in attempts_at(child, "network") if a["source"] == "os"]
    assert os_refusals and "Address family not supported" in os_refusals[0]["detail"]
    assert child.isolation == sandbox.LEVEL_BWRAP


FILES_PROBE = PROBE_HELPER + """\
import os, signal, subprocess, sys, time
probe("tool", lambda: open(TOOL_FILE, "w").write("x"))  # write-tool
probe("site", lambda: open(SITE_FILE, "a").write("import os"))  # write-site
probe("etc", lambda: os.rename("/etc/hosts", "/etc/hosts.bak"))  # rename-etc
open("inside.txt", "w").write("ok")  # the work dir is writable
open("/tmp/scratch", "w").write("ok")  # so is the private /tmp
rc = subprocess.run(["sh", "-c", "echo x > " + SITE_FILE]).returncode  # write-subprocess
print("PROBE write-subprocess rc", rc, file=sys.stderr)
try:
    import brotli_ga_probe
except ImportError:
    rc = subprocess.call([sys.executable, "-m", "pip", "install", "--retries", "0", "brotli_ga_probe"])  # pip
    print("PROBE pip rc", rc, file=sys.stderr)
probe("kill-parent", lambda: os.kill(os.getppid(), signal.SIGKILL))  # kill-parent
if os.fork() == 0:  # daemon
    os.setsid()
    os.execv("/bin/sh", ["sh", "-c", "sleep 300 # MARKER"])
time.sleep(0.3)
"""


def test_writes_outside_package_installs_signals_and_daemons_fail_and_are_reported() -> None:
    marker = f"ga-probe-{os.getpid()}-{time.time_ns()}"
    tool_file = REPO / "golf_audit" / f"{marker}.py"
    site_file = Path(sandbox.interpreter(None).paths[0]) / f"{marker}.pth"
    code = (FILES_PROBE.replace("TOOL_FILE", repr(f"{sandbox.TOOL}/golf_audit/{marker}.py"))
            .replace("SITE_FILE", repr(str(site_file))).replace("MARKER", marker))
    child, stderr, failure = run_probe(code)
    assert not tool_file.exists() and not site_file.exists()
    assert "SUCCEEDED" not in stderr
    for name, tag in (("tool", "write-tool"), ("site", "write-site"), ("etc", "rename-etc")):
        assert f"PROBE {name} refused:" in stderr, stderr
        assert attempts_at(child, "write-outside", line_of(code, f"# {tag}")), (name, child.attempts())
    assert not any("inside.txt" in a["detail"] or "/tmp/scratch" in a["detail"] for a in child.attempts())
    assert not stderr.count("PROBE write-subprocess rc 0")
    assert attempts_at(child, "spawn", line_of(code, "# write-subprocess"))
    assert any("Read-only file system" in a["detail"] for a in attempts_at(child, "write-outside"))
    assert "PROBE pip rc 0" not in stderr and "PROBE pip rc" in stderr
    pip = attempts_at(child, "package-install", line_of(code, "# pip"))
    assert pip and "pip install" in pip[0]["detail"] and pip[0]["code"].startswith("rc = subprocess.call(")
    assert attempts_at(child, "signal", line_of(code, "# kill-parent"))  # and here we still are
    assert attempts_at(child, "spawn", line_of(code, "# daemon"))
    survivor = attempts_at(child, "survivor")
    assert survivor and marker in survivor[0]["detail"]
    assert failure is None  # the script itself ran to its end: every attempt was refused, none crashed it
    assert not _host_processes_with(marker)


def _host_processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_a_fork_bomb_is_contained_and_killed_with_the_sandbox() -> None:
    code = "import os, time\nwhile True:\n    try:\n        os.fork()  # bomb\n    except OSError:\n        time.sleep(0.02)\n"
    before = sandbox_dirs()
    child = ChildProcess(code, timeout_s=60)
    with child:
        namespace = child.pid_namespace
        with pytest.raises(ChildFailed, match="timed out"):
            child.request({"script": str(child.script), **SETUP}, timeout_s=10)
    assert namespace and not sandbox.namespace_processes(namespace)  # nothing left
    survivors = attempts_at(child, "survivor")
    count = int(survivors[0]["detail"].split()[0])
    assert 0 < count < sandbox.Limits(1, 1).processes  # the process limit held
    assert attempts_at(child, "spawn", 4)
    assert any("process limit" in a["detail"] or "timed out" in a["detail"] for a in attempts_at(child, "limit"))
    assert sandbox_dirs() == before


def test_a_memory_hog_hits_the_memory_limit_and_is_an_error_with_the_last_lines() -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(128 << 20))  # hog\n"
    child, _, failure = run_probe(code, memory_bytes=2 * 1024**3)
    assert failure is not None and "MemoryError" in str(failure) and "hog" in failure.tail
    assert any("memory limit" in a["detail"] for a in attempts_at(child, "limit"))


def test_an_infinite_loop_at_import_times_out_and_leaves_nothing_behind() -> None:
    before = sandbox_dirs()
    child = ChildProcess("while True:\n    pass\n", timeout_s=60)
    with child:
        namespace = child.pid_namespace
        root = child.root
        with pytest.raises(ChildFailed, match="timed out after 3 s"):
            child.request({"script": str(child.script), **SETUP}, timeout_s=3)
    assert not root.exists() and sandbox_dirs() == before
    assert not sandbox.namespace_processes(namespace)
    assert any("timed out" in a["detail"] for a in attempts_at(child, "limit"))


CTRL_C = """\
import sys
sys.path.insert(0, REPO)
from golf_audit.submission.runner import ChildProcess
child = ChildProcess("import time\\nwhile True:\\n    time.sleep(0.1)\\n", timeout_s=120)
with child:
    print(child.root, child.pid_namespace, flush=True)
    child.request({"script": str(child.script), "build": "", "targets": []}, timeout_s=120)
"""


def test_ctrl_c_kills_the_sandbox_and_removes_its_files() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C.replace("REPO", repr(str(REPO)))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    root, namespace = proc.stdout.readline().split()
    deadline = time.monotonic() + 60
    while len(sandbox.namespace_processes(namespace)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # bwrap's init and the child are up
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert not Path(root).exists()
    assert not sandbox.namespace_processes(namespace)


def test_no_sandbox_fails_closed_unless_unsafe_is_asked(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(sandbox.ENV_BWRAP, str(tmp_path / "no-bwrap"))
    before = sandbox_dirs()
    with pytest.raises(SandboxUnavailable, match="--unsafe-no-sandbox"):
        ChildProcess("x = 1\n")
    assert issubclass(SandboxUnavailable, BadInput) and sandbox_dirs() == before
    code = "open('/proc/self/../ga_not_here', 'w')  # outside\n"
    child, _, failure = run_probe(code, unsafe_no_sandbox=True)
    assert child.isolation == sandbox.LEVEL_NONE and failure is not None
    assert attempts_at(child, "write-outside", 1)  # the guard still records (and refuses) without the OS layer


def test_a_bad_python_is_bad_input_and_leaves_nothing() -> None:
    before = sandbox_dirs()
    with pytest.raises(BadInput, match="not a working Python"):
        ChildProcess("x = 1\n", python="/nonexistent/python3")
    assert sandbox_dirs() == before


def test_support_files_are_beside_the_script_and_read_only() -> None:
    code = ("import helper, sys\nprint('HELPER', helper.VALUE, file=sys.stderr)\n"
            "try:\n    open('helper.py', 'a').write('x')\nexcept OSError as exc:\n    print('RO', type(exc).__name__, file=sys.stderr)\n")
    _, stderr, _ = run_probe(code, support_files={"helper.py": b"VALUE = 42\n"})
    assert "HELPER 42" in stderr and "RO " in stderr
    with pytest.raises(BadInput):
        ChildProcess("x = 1\n", support_files={"../evil.py": b""})


# --- no child needed ---------------------------------------------------------------------------


def test_the_policy_isolates_every_namespace_but_the_user_one_and_is_one_list() -> None:
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session", "--cap-drop"):
        assert flag in sandbox.POLICY
    interp = sandbox.interpreter(None)
    flags = sandbox.layout(interp, Path("/x"), ["train_gpt.py"], sandbox.Limits(1 << 30, 10))
    binds = [flags[i + 2] for i, f in enumerate(flags) if f in ("--bind", "--ro-bind")]
    writable = [flags[i + 2] for i, f in enumerate(flags) if f == "--bind"]
    assert sorted(writable) == sorted([sandbox.WORK, sandbox.EVIDENCE])
    assert "/home" not in binds and "/root" not in binds and str(REPO) not in binds
    assert f"{sandbox.TOOL}/golf_audit" in binds and flags[-4:-2] == ["--remount-ro", "/"]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_seccomp_program_checks_the_architecture_first(machine: str) -> None:
    import struct

    prog = sandbox.seccomp_program(machine)
    insns = [struct.unpack("=HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    assert insns[0] == (0x20, 0, 0, 4)  # load the arch
    assert insns[2] == (0x06, 0, 0, 0x80000000)  # kill on a foreign one
    assert insns[-1] == (0x06, 0, 0, 0x7FFF0000)
    assert all(jt + k < len(insns) and jf + k < len(insns) for k, (_, jt, jf, _) in enumerate(insns))
    assert sandbox.seccomp_program("sparc") is None


def test_the_guard_classifies_attempts(tmp_path, monkeypatch) -> None:
    evidence = tmp_path / "e.jsonl"
    monkeypatch.setattr(guard, "_state", {"installed": True, "main": False, "records": 0, "seen": set(),
                                          "code_dir": str(tmp_path) + "/", "writable": (str(tmp_path) + "/",),
                                          "fd": os.open(evidence, os.O_WRONLY | os.O_CREAT), "pid": 0})
    assert guard._classify("open", ("/etc/passwd", "r", 0)) is None
    assert guard._classify("open", ("/etc/passwd", "w", 0))
    assert guard._classify("open", (str(tmp_path / "ok"), "w", 0)) is None
    assert guard._classify("socket.__new__", (None, 2, 1, 0))
    assert guard._classify("socket.__new__", (None, 1, 1, 0)) is None  # AF_UNIX is fine
    assert guard._classify("subprocess.Popen", (None, ["python3", "-m", "pip", "install", "x"], None, None)) is None
    assert guard._classify("os.system", (b"pip3 install torch",)) is None
    os.close(guard._state["fd"])
    kinds = [json.loads(line)["kind"] for line in evidence.read_text().splitlines()]
    assert kinds == ["write-outside", "network", "package-install", "package-install"]
    for command in ("uv pip install x", "python -m ensurepip", "apt-get install curl", "conda install numpy"):
        assert guard._INSTALLERS.search(command), command
    for command in ("pipx", "python train.py --install-dir x", "echo pipeline"):
        assert not guard._INSTALLERS.search(command), command


def test_the_report_states_isolation_and_lists_attempts() -> None:
    from golf_audit.submission.audit import SubmissionAudit
    from golf_audit.findings import Status

    audit = SubmissionAudit("t.py", Status.PASS, "", "dynamic", [], [], isolation=sandbox.LEVEL_BWRAP,
                            attempts=[{"kind": "network", "detail": "socket(family=2, type=1)", "file": "train_gpt.py",
                                       "line": 3, "code": "s = socket.socket()", "count": 1, "source": "guard"}])
    (subject,) = sandbox.report_subjects(audit)
    assert subject.result.status is Status.PASS and subject.result.summary.startswith("warning: the code tried to use")
    assert "train_gpt.py:3 (`s = socket.socket()`)" in subject.result.summary
    assert sandbox.isolation_text(sandbox.LEVEL_NONE).startswith("isolation: none (--unsafe-no-sandbox)")
    assert textwrap.dedent(sandbox.isolation_text("")) == "isolation: no code of the submission was run"


UNPRIVILEGED = """\
import sys
sys.path.insert(0, REPO)
from golf_audit.submission.runner import ChildFailed, ChildProcess
with ChildProcess("x = 1\\n", python=sys.executable) as child:
    try:
        child.request({"script": str(child.script), "build": "", "targets": []})
    except ChildFailed as exc:
        print("ANSWER", exc)
    print("LEVEL", child.isolation, child.pid_namespace is not None)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists() or not Path("/usr/bin/python3").exists(),
                    reason="needs root (to become an ordinary user), setpriv and a system python3")
def test_an_ordinary_user_gets_the_same_sandbox_through_a_user_namespace(tmp_path) -> None:
    # The system Python has no torch: the child answers its setup with that import error, which
    # is enough to show that bubblewrap started it unprivileged and the protocol works.
    if not os.access(REPO, os.R_OK | os.X_OK) or any(not os.access(p, os.X_OK) for p in REPO.parents):
        pytest.skip("the checkout is not readable by an ordinary user")
    tmp_path.chmod(0o777)
    done = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                           "-c", UNPRIVILEGED.replace("REPO", repr(str(REPO)))], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)})
    assert "LEVEL bubblewrap True" in done.stdout, done.stderr
    assert "ANSWER setup:" in done.stdout
    assert not list(tmp_path.glob(f"{sandbox.STALE_PREFIX}*"))


KILLED = """\
import sys
sys.path.insert(0, REPO)
from golf_audit.submission.runner import ChildProcess
child = ChildProcess("import time\\nwhile True:\\n    time.sleep(0.1)\\n", timeout_s=120)
print(child.root, child.pid_namespace, flush=True)
child.request({"script": str(child.script), "build": "", "targets": []}, timeout_s=120)
"""


def test_a_killed_audit_takes_its_sandbox_along_and_the_next_one_sweeps_its_files() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED.replace("REPO", repr(str(REPO)))], stdout=subprocess.PIPE,
                            env=env, text=True)
    root, namespace = proc.stdout.readline().split()
    time.sleep(1.0)
    proc.kill()  # SIGKILL: no cleanup code runs in the parent
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while sandbox.namespace_processes(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandbox.namespace_processes(namespace)  # --die-with-parent: the kernel took it all
    assert Path(root).exists()  # nobody could clean up ...
    sandbox.sweep_stale()
    assert not Path(root).exists()  # ... until the next audit starts


def test_the_causality_report_lists_what_the_script_tried_whatever_the_verdict(tmp_path) -> None:
    from typer.testing import CliRunner

    from golf_audit.cli import app

    lines = (REPO / "tests" / "fixtures" / "scripts" / "sliding_legal.py").read_text().splitlines()
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), 0)
    # (socket.socket, not create_connection: the child's CPU shims replace the latter before the
    # script runs, which refuses the call before the guard can see it.)
    lines[at:at] = ["import socket", "try:", "    socket.socket().connect(('127.0.0.1', 9))  # phone home",
                    "except OSError:", "    pass"]
    script = tmp_path / "train_gpt.py"
    script.write_text("\n".join(lines) + "\n")
    probe_line = at + 3
    result = CliRunner().invoke(app, ["causality", str(script), "--function", "eval_val_sliding", "--flips", "2",
                                      "--format", "json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["verdict"] == "pass", result.output
    assert "isolation: bubblewrap" in report["model"]
    (tried,) = [r for r in report["results"] if r["evaluator"] == "sandbox"]
    assert tried["label"] == "sandbox: network" and f"train_gpt.py:{probe_line}" in tried["summary"]
    assert tried["summary"].startswith("warning: the code tried to use the network")
