"""`golf-audit report`: run every registered check on a records folder or a whole tree.

Scorecard shape: ``checks.collect`` gathers raw data from the other libraries (once per
folder), each check turns it into a finding, and this module evaluates the findings into a
verdict and an exit code. Rendering lives in ``golf_audit.render``.

Exit codes: 0 no failure; 1 a check failed at or above ``fail_on`` severity; 2 bad input, or
no failure but a check at or above ``fail_on`` errored or no check ran at all (the audit cannot conclude, and an
error never reads as a pass).
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import __version__
from .checks import AuditContext, AuditOptions, Check, all_checks, collect
from .errors import EXIT_BAD_INPUT, EXIT_PASS, EXIT_VIOLATION, BadInput
from .findings import STATUS_ORDER, CheckResult, Severity, Status, worst


# Families shown as the leaderboard's verdict columns.
ARTIFACT_IDS = ("GA-SIZE-001", "GA-SIZE-002", "GA-SIZE-003", "GA-SIZE-004")
TIME_IDS = ("GA-TIME-001", "GA-TIME-002")
LEADER_SIG_ID = "GA-SIG-002"


@dataclass
class FolderAudit:
    """Every check's result on one records folder."""

    folder: Path
    name: str  # how the folder is shown (relative to the audited tree)
    results: list[CheckResult]
    claimed_bpb: float | None = None
    commit: str | None = None  # last git commit touching the folder, when it is in a repo
    baseline: str | None = None  # the folder significance was tested against
    pr: int | None = None  # the PR that added the folder (0 launch; None unknown)
    pr_source: str = ""
    baseline_note: str = ""
    permalink: str | None = None  # https://github.com/<owner>/<repo>/blob/<commit>/<folder path>, in a checkout

    @property
    def verdict(self) -> Status:
        return worst([r.status for r in self.results])

    def counts(self) -> dict[str, int]:
        return count_statuses(self.results)

    def result(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.check_id == check_id), None)

    def family_verdict(self, ids: tuple[str, ...]) -> Status:
        """Worst concluded status among ``ids``; ``not-run`` only when none of them concluded."""
        statuses = [r.status for r in self.results if r.check_id in ids]
        concluded = [s for s in statuses if s not in (Status.NOT_RUN, Status.NOT_APPLICABLE)]
        return worst(concluded or statuses)

    def worst_finding(self) -> CheckResult | None:
        """The most serious fail/error/warn: worst status first, then highest severity."""
        bad = [r for r in self.results if r.status in (Status.FAIL, Status.ERROR, Status.WARN)]
        if not bad:
            return None
        return min(bad, key=lambda r: (STATUS_ORDER.index(r.status), -r.severity.rank))


@dataclass
class AuditReport:
    """One run of ``golf-audit report``: a single folder, or every folder of a tree."""

    subject: str
    recursive: bool
    folders: list[FolderAudit]
    fail_on: Severity = Severity.ERROR
    dynamic: bool = False
    command: str = ""
    tool_version: str = __version__
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    environment: dict[str, str] = field(default_factory=lambda: environment())

    @property
    def results(self) -> list[CheckResult]:
        return [r for f in self.folders for r in f.results]

    def counts(self) -> dict[str, int]:
        return count_statuses(self.results)

    def exit_code(self) -> int:
        return exit_code(self.results, self.fail_on)


# How counts are listed: the outcomes a reader must act on first.
COUNT_ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.NOT_RUN, Status.NOT_APPLICABLE]


def count_statuses(results: list[CheckResult]) -> dict[str, int]:
    out = {s.value: 0 for s in COUNT_ORDER}
    for r in results:
        out[r.status.value] += 1
    return out


INPUT_ONLY_IDS = frozenset({"GA-FILES-001"})


def exit_code(results: list[CheckResult], fail_on: Severity = Severity.ERROR) -> int:
    """0 no failure; 1 a failure at/above ``fail_on``; 2 no failure but an error at/above it, or nothing ran."""
    gated = [r for r in results if r.severity.rank >= fail_on.rank]
    if any(r.status is Status.FAIL for r in gated):
        return EXIT_VIOLATION
    if any(r.status is Status.ERROR for r in gated):
        return EXIT_BAD_INPUT
    concluded = (Status.PASS, Status.FAIL, Status.WARN, Status.ERROR)
    # GA-FILES-001 only says what could not be read; on its own it concludes nothing.
    if results and not any(r.status in concluded for r in results if r.check_id not in INPUT_ONLY_IDS):
        return EXIT_BAD_INPUT  # nothing was checked: no conclusion, and certainly not a pass
    return EXIT_PASS


def environment() -> dict[str, str]:
    """What produced the report: Python, platform and the versions that matter."""
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for dist in ("torch", "numpy", "scipy"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "absent"
    return env


def git_commit(folder: Path) -> str | None:
    """The last commit touching ``folder`` when it lives in a git checkout, else None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "log", "-1", "--format=%H", "--", "."],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def is_records_folder(path: Path) -> bool:
    """A records folder ships a submission JSON or a train log directly inside it (a tree does not)."""
    from .records.folder import find_logs, find_submission_json

    if not path.is_dir():
        return False
    return find_submission_json(path)[0] is not None or any(p.parent == path for p in find_logs(path))


def check_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.exists():
        raise BadInput(f"{path}: no such folder")
    if not path.is_dir():
        raise BadInput(f"{path}: not a folder")
    return path


def audit_folder(
    folder: str | Path,
    options: AuditOptions | None = None,
    checks: list[Check] | None = None,
    name: str | None = None,
) -> FolderAudit:
    """Run ``checks`` (default: all registered) on one records folder."""
    path = check_folder(folder)
    if not is_records_folder(path):
        raise BadInput(f"{path}: not a records folder (no submission.json and no train log); use --recursive for a tree")
    ctx = AuditContext(path, options or AuditOptions())
    from . import astmemo

    with astmemo.scope():  # the checks read the same scripts' trees: walk each subtree once per folder
        results = [check.evaluate(ctx) for check in (checks if checks is not None else all_checks())]
    baseline = ctx.options.baseline
    commit = git_commit(path)
    return FolderAudit(
        folder=path,
        name=name or path.name,
        results=results,
        claimed_bpb=collect.claimed_bpb(ctx),
        commit=commit,
        baseline=baseline.name if baseline else None,
        permalink=permalink(path, commit) if commit else None,
    )


def permalink(folder: Path, commit: str) -> str | None:
    """The GitHub URL of ``folder`` at ``commit`` when its checkout's origin is on GitHub."""
    import re

    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
        url = subprocess.run(["git", "-C", str(folder), "remote", "get-url", "origin"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?$", url)
    if not m or not top:
        return None
    try:
        rel = folder.resolve().relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        return None
    return f"https://github.com/{m.group(1)}/blob/{commit}/{rel}"


@dataclass
class TreeFolder:
    """A folder of a tree walk: its baseline (the best earlier record of its track) and order."""

    path: Path
    baseline: Path | None
    pr: int | None
    pr_source: str
    note: str  # why there is no baseline, or which PR the baseline is


def find_folders(tree: Path, order: dict[str, int] | None = None) -> list[TreeFolder]:
    """Every records folder under ``tree`` with the record it must beat, chronological per track.

    Order and baselines come from the significance library's tree walk (one rule for both
    commands): PR order (``records.chronology``), each folder against the best record of its
    track with a smaller PR number. Folders whose order is unknown come last, with no baseline.
    """
    from .records import list_record_folders
    from .stats import walk_tree

    out: list[TreeFolder] = []
    tracks = list(dict.fromkeys(p.parent for p in list_record_folders(tree)))
    for track in tracks:
        for row in walk_tree(track, order=order):
            if row.order_unknown:
                note = ("chronological order unknown: no git history, no PR number in README/submission.json, "
                        "not in --order FILE")
            elif row.leader is None:
                note = "first record of its track: nothing to beat"
            else:
                note = f"baseline: {row.leader} (PR {row.leader_pr if row.leader_pr else 'launch'}), the best record before PR {row.pr}"
            out.append(TreeFolder(track / row.folder, track / row.leader if row.leader else None, row.pr, row.pr_source, note))
    return out


def tree_workers(folders: int) -> int:
    """Processes for a tree's static audit: the CPU cores, at most 4, and 1 for a small tree.

    ``GOLF_AUDIT_TREE_WORKERS`` overrides it (1 audits in this process).
    """
    import os

    env = os.environ.get("GOLF_AUDIT_TREE_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return 1 if folders < 8 else max(1, min(4, os.cpu_count() or 1))


_FORKED_JOBS: list[tuple[Path, AuditOptions, list[Check] | None, str]] = []


def _audit_job(job: tuple[Path, AuditOptions, list[Check] | None, str]) -> FolderAudit:
    path, options, checks, name = job
    return audit_folder(path, options, checks, name=name)


def _audit_forked(index: int) -> FolderAudit:
    return _audit_job(_FORKED_JOBS[index])  # inherited through fork: checks hold closures, never pickled


def _audit_all(jobs: list[tuple[Path, AuditOptions, list[Check] | None, str]], workers: int) -> list[FolderAudit]:
    """Every folder's audit, in order; folders are independent, so a fork pool shares the work.

    The folders are only read (no dynamic checks: those run one sandbox at a time). The jobs
    reach the workers through fork (by index), the results come back pickled; a folder whose
    audit raises propagates the same error as in-process.
    """
    import multiprocessing

    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_audit_job(j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor

    _FORKED_JOBS[:] = jobs
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_audit_forked, range(len(jobs)), chunksize=1))
    finally:
        _FORKED_JOBS.clear()


def audit_tree(
    tree: str | Path,
    *,
    dynamic: bool = False,
    checks: list[Check] | None = None,
    fail_on: Severity = Severity.ERROR,
    command: str = "",
    unsafe_no_sandbox: bool = False,
    order: dict[str, int] | None = None,
) -> AuditReport:
    """Audit every folder of a records tree, each against the best earlier record of its track.

    The baseline (the best per-seed mean among the records of the track with a smaller PR
    number, as ``golf-audit significance --all`` walks it) is the baseline of the significance
    checks; where the order is unknown the significance checks say so (not-run).
    """
    root = check_folder(tree)
    folders = find_folders(root, order)
    if not folders:
        raise BadInput(f"{root}: no records folders under it (folders with a submission.json or train logs)")
    jobs = [(f.path, AuditOptions(baseline=f.baseline, dynamic=dynamic, baseline_note=f.note,
                                  unsafe_no_sandbox=unsafe_no_sandbox), checks, str(f.path.relative_to(root)))
            for f in folders]
    audits = _audit_all(jobs, workers=1 if dynamic else tree_workers(len(jobs)))
    for f, audit in zip(folders, audits):
        audit.pr, audit.pr_source, audit.baseline_note = f.pr, f.pr_source, f.note
    return AuditReport(subject=str(tree), recursive=True, folders=audits, fail_on=fail_on,
                       dynamic=dynamic, command=command)


def audit_single(
    folder: str | Path,
    *,
    baseline: str | Path | None = None,
    dynamic: bool = False,
    python: str | None = None,
    checks: list[Check] | None = None,
    fail_on: Severity = Severity.ERROR,
    command: str = "",
    unsafe_no_sandbox: bool = False,
) -> AuditReport:
    """Audit one PR folder (optionally against a baseline folder)."""
    base = check_folder(baseline) if baseline is not None else None
    audit = audit_folder(folder, AuditOptions(baseline=base, dynamic=dynamic, python=python,
                                                    unsafe_no_sandbox=unsafe_no_sandbox), checks)
    return AuditReport(subject=str(folder), recursive=False, folders=[audit], fail_on=fail_on,
                       dynamic=dynamic, command=command)
