"""A reviewer's unit of work: audit the records folder(s) one pull request adds or changes.

``audit_pr`` takes a clone of the challenge repository and a PR number, and:

1. resolves ``refs/pull/N/head`` (fetching it from the remote when the clone lacks it);
2. diffs it against its merge base with the main branch for the ``records/<track>/<folder>``
   folders it adds or changes;
3. picks each folder's baseline chronologically: among the main branch's folders of the same
   track whose PR number (``records.chronology``) is below the candidate's, the one with the
   best (lowest) per-seed mean val_bpb: the record the PR had to beat when it was submitted;
4. exports those folders from git's object store into a scratch folder (the clone's working
   tree is never touched) and runs the full report on each (static, artifact, significance,
   and the sandboxed dynamic checks unless disabled);
5. renders one Markdown comment whose evidence links into the PR's commit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__, gitrepo
from .errors import EXIT_BAD_INPUT, EXIT_PASS, EXIT_VIOLATION, BadInput, GolfAuditError, one_line
from .findings import Evidence, Severity
from .output import SCHEMA_VERSION

# Baseline folders are read for their per-seed values only (submission.json, logs, README):
# their code, model artifacts and shards are not needed and can be large.
BASELINE_MAX_FILE_BYTES = 4_000_000


def _baseline_file(path: str, size: int) -> bool:
    from .records.folder import LOG_SUFFIXES

    name = path.rsplit("/", 1)[-1].lower()
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    wanted = suffix in LOG_SUFFIXES or suffix == ".json" or name.startswith("readme")
    return wanted and size <= BASELINE_MAX_FILE_BYTES


@dataclass
class Baseline:
    """The record a PR folder must beat, and how it was chosen."""

    path: str  # repo path on the main branch
    pr: int
    pr_source: str  # "git", "readme", ... (records.chronology.PrNumber.source)
    mean: float
    n: int
    earlier: int  # earlier folders of the track with per-seed values (the candidates)
    skipped: list[str] = field(default_factory=list)  # "folder: why" (order unknown, unreadable, no values)
    local: Path | None = None  # the exported copy the report reads


@dataclass
class PrFolder:
    """One records folder of the PR and its audit."""

    changed: gitrepo.ChangedFolder
    number: int  # the PR number it is ordered by (this PR, or the one that first added it)
    baseline: Baseline | None
    report: Any  # golf_audit.report.AuditReport
    local: Path  # the exported copy that was audited
    files: frozenset[str] = frozenset()  # its files, relative to the folder (what evidence may link to)


@dataclass
class PrAudit:
    number: int
    head: str
    base: str  # the main branch's name
    base_sha: str
    merge_base: str
    fetched: bool
    remote_url: str | None
    link_base: str | None  # https://github.com/<owner>/<repo> when the remote is on GitHub
    folders: list[PrFolder]
    other_files: list[str]
    command: str = ""

    def exit_code(self) -> int:
        codes = [f.report.exit_code() for f in self.folders]
        if EXIT_VIOLATION in codes:
            return EXIT_VIOLATION
        return EXIT_BAD_INPUT if EXIT_BAD_INPUT in codes or not codes else EXIT_PASS

    def link(self, path: str, line: int | None = None) -> str | None:
        return gitrepo.permalink(self.link_base, self.head, path, line) if self.link_base else None


def audit_pr(repo: str | Path, number: int, workdir: Path, *, remote: str = "origin", base: str | None = None,
             dynamic: bool = True, python: str | None = None, checks: list | None = None,
             fail_on: Severity = Severity.ERROR, command: str = "",
             progress: Callable[[str], None] | None = None) -> PrAudit:
    """Audit PR ``number`` of the clone at ``repo``; see the module docstring for the steps.

    The folders are exported under ``workdir`` (the caller's scratch folder, kept until the
    audit is rendered: renderers look at the files).
    """
    say = progress or (lambda _msg: None)
    if number < 1:
        raise BadInput(f"PR number must be >= 1, got {number}")
    root = gitrepo.repo_root(Path(repo))
    base_name = base or gitrepo.default_base(root, remote)
    base_sha = gitrepo.resolve(root, base_name)
    if base_sha is None:
        raise BadInput(f"--base: {base_name} names no commit in {root}")
    head, how = gitrepo.pr_head(root, number, remote)
    landing = gitrepo.landing_commit(root, base_sha, number)
    if head is None:
        if landing is None:
            raise BadInput(f"PR #{number}: {how}")
        # A merged PR needs no ref: its merge commit's second parent is its head (a squash: the commit).
        head = gitrepo.resolve(root, f"{landing}^2") or landing
        how = f"merge commit {landing[:12]} on {base_name}"
    fetched = how.startswith("fetched")
    say(f"PR #{number}: head {head[:12]} ({how})")
    fork_point = gitrepo.merge_base(root, base_sha, head)
    if landing is not None and (fork_point == head or head == landing):
        # Already merged: the PR's changes are what its landing commit brought to the branch.
        fork_point = gitrepo.resolve(root, f"{landing}^1") or fork_point
        say(f"PR #{number} is merged ({landing[:12]}): diffed against the branch before it")
    changed, others = gitrepo.changed_records_folders(root, fork_point, head)
    if not changed:
        raise BadInput(f"PR #{number} adds or changes no records/<track>/<folder> "
                       f"({len(others)} other file(s) changed since {base_name})")
    say(f"PR #{number}: {len(changed)} records folder(s): {', '.join(c.path for c in changed)}")
    url = gitrepo.remote_url(root, remote)
    audit = PrAudit(number, head, base_name, base_sha, fork_point, fetched, url, gitrepo.github_base(url), [], others,
                    command)
    for folder in changed:
        audit.folders.append(_audit_folder(root, audit, folder, Path(workdir), dynamic=dynamic, python=python,
                                           checks=checks, fail_on=fail_on, say=say))
    return audit


def _audit_folder(root: Path, audit: PrAudit, folder: gitrepo.ChangedFolder, scratch: Path, *, dynamic: bool,
                  python: str | None, checks: list | None, fail_on: Severity, say: Callable[[str], None]) -> PrFolder:
    from .records.chronology import git_pr_numbers
    from .report import audit_single

    numbers = git_pr_numbers(root, rev=audit.base_sha)
    own = numbers.get(root / folder.path)
    # A folder already on main keeps its place in the chronology; a new one is this PR's.
    order = own.number if own is not None and not folder.added else audit.number
    local_root = scratch / "pr"
    exported = gitrepo.tree_files(root, audit.head, folder.path)
    gitrepo.export(root, exported, local_root)
    local = local_root / folder.path
    files = frozenset(f.path[len(folder.path) + 1:] for f in exported)
    baseline = choose_baseline(root, audit.base_sha, folder.track, order, exclude={folder.path},
                               dest=scratch / "base", numbers=numbers)
    if baseline is None:
        say(f"{folder.path}: no earlier record with per-seed values in {folder.track}: significance not tested")
    else:
        say(f"{folder.path}: baseline {baseline.path} (PR #{baseline.pr}, mean {baseline.mean:.8f}, "
            f"best of {baseline.earlier} earlier)")
    if dynamic:
        say(f"{folder.path}: dynamic checks run the PR's train_gpt.py in a sandbox (minutes on CPU)")
    try:
        report = audit_single(local, baseline=baseline.local if baseline else None, dynamic=dynamic, python=python,
                              checks=checks, fail_on=fail_on, command=audit.command)
    except GolfAuditError as exc:  # name the folder as the reviewer knows it, not our scratch copy
        raise type(exc)(one_line(exc).replace(str(local), folder.path)) from None
    for folder_audit in report.folders:
        folder_audit.commit = audit.head  # the exported copy is no checkout; the PR's commit is its version
        folder_audit.baseline = baseline.path if baseline else None
    return PrFolder(folder, order, baseline, report, local, files)


def choose_baseline(root: Path, rev: str, track: str, before: int, *, exclude: set[str], dest: Path,
                    numbers: dict | None = None) -> Baseline | None:
    """The best (lowest mean) record of ``track`` at ``rev`` whose PR number is below ``before``.

    Order comes from ``records.chronology``: git merge commits first, else what the folder
    declares about itself. Folders whose order is unknown, that cannot be read, or that have
    no per-seed values are skipped and listed, never guessed.
    """
    from .records.chronology import declared_pr_number, git_pr_numbers
    from .stats import sample_from_folder

    numbers = git_pr_numbers(root, rev=rev) if numbers is None else numbers
    files = gitrepo.tree_files(root, rev, track)
    by_folder: dict[str, list[gitrepo.TreeFile]] = {}
    for f in files:
        parts = f.path.split("/")
        if len(parts) > gitrepo.FOLDER_DEPTH:
            by_folder.setdefault("/".join(parts[: gitrepo.FOLDER_DEPTH]), []).append(f)
    best: Baseline | None = None
    earlier, skipped = 0, []
    for path, folder_files in sorted(by_folder.items()):
        if path in exclude:
            continue
        name = path.rsplit("/", 1)[-1]
        gitrepo.export(root, [f for f in folder_files if _baseline_file(f.path, f.size)], dest)
        local = dest / path
        pr = numbers.get(root / path) or declared_pr_number(local)
        if pr is None:
            skipped.append(f"{name}: PR number unknown")
            continue
        if pr.number >= before:
            continue
        try:
            sample = sample_from_folder(local)
        except GolfAuditError as exc:
            skipped.append(f"{name}: {one_line(exc, 120)}")
            continue
        if sample.n == 0:
            skipped.append(f"{name}: no per-seed val_bpb")
            continue
        earlier += 1
        if best is None or sample.mean < best.mean:
            best = Baseline(path, pr.number, pr.source, sample.mean, sample.n, 0, local=local)
    if best is not None:
        best.earlier, best.skipped = earlier, skipped
    return best


# ------------------------------------------------------------------------------ rendering


def _linker(audit: PrAudit, folder: PrFolder) -> Callable[[Any, Evidence], str | None]:
    """Evidence naming a file of the folder -> a permalink into the PR's commit."""

    def link(_folder_audit: Any, ev: Evidence) -> str | None:
        if not ev.file or not audit.link_base:
            return None
        rel = Path(ev.file)
        if rel.is_absolute():
            try:
                rel = rel.relative_to(folder.local)
            except ValueError:
                return None
        if rel.as_posix() not in folder.files:
            return None  # not a file of the PR's folder (e.g. the baseline's): no link to invent
        return audit.link(f"{folder.changed.path}/{rel.as_posix()}", ev.line)

    return link


def _plain_locations(audit: PrAudit, folder: PrFolder) -> None:
    """Without a GitHub remote, evidence reads as repository paths (``records/…/train_gpt.py:12``)."""
    for folder_audit in folder.report.folders:
        for result in folder_audit.results:
            for ev in result.evidence:
                if ev.file and not Path(ev.file).is_absolute():
                    ev.file = f"{folder.changed.path}/{ev.file}"


def render_markdown(audit: PrAudit) -> str:
    from .render import markdown

    head = f"[`{audit.head[:12]}`]({audit.link_base}/commit/{audit.head})" if audit.link_base else f"`{audit.head[:12]}`"
    lines = [f"## golf-audit: PR #{audit.number}", "",
             f"Head {head} · diffed against `{audit.base}` at merge base `{audit.merge_base[:12]}` · "
             f"{len(audit.folders)} records folder(s)", ""]
    for folder in audit.folders:
        kind = "adds" if folder.changed.added else "changes"
        if folder.baseline:
            b = folder.baseline
            base_link = (f"[`{b.path}`]({audit.link_base}/tree/{audit.base_sha}/{b.path})" if audit.link_base
                         else f"`{b.path}`")
            why = (f"baseline {base_link}: PR #{b.pr} ({b.pr_source}), mean val_bpb {b.mean:.8f} over {b.n} seeds, "
                   f"the best of {b.earlier} earlier record(s) of the track")
            if b.skipped:
                why += f"; {len(b.skipped)} folder(s) skipped ({'; '.join(b.skipped[:3])}{'; …' if len(b.skipped) > 3 else ''})"
        else:
            why = "no earlier record of the track with per-seed values: significance not tested"
        lines.append(f"- PR #{audit.number} {kind} `{folder.changed.path}` (ordered as PR #{folder.number}); {why}")
    if audit.other_files:
        shown = ", ".join(f"`{p}`" for p in audit.other_files[:5])
        lines.append(f"- Also changes {len(audit.other_files)} file(s) outside records folders: {shown}"
                     + (" …" if len(audit.other_files) > 5 else ""))
    lines.append("")
    for folder in audit.folders:
        if audit.link_base:
            body = markdown.render(folder.report, link=_linker(audit, folder))
        else:
            _plain_locations(audit, folder)
            body = markdown.render(folder.report)
        lines += [body.rstrip("\n"), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_json(audit: PrAudit) -> dict[str, Any]:
    from .render.json import to_json_dict

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "golf-audit", "version": __version__},
        "command": audit.command,
        "pr": {"number": audit.number, "head": audit.head, "base": audit.base, "base_commit": audit.base_sha,
               "merge_base": audit.merge_base, "fetched": audit.fetched, "remote": audit.remote_url},
        "exit_code": audit.exit_code(),
        "other_files": audit.other_files,
        "folders": [{
            "path": f.changed.path,
            "added": f.changed.added,
            "ordered_as_pr": f.number,
            "baseline": None if f.baseline is None else {
                "path": f.baseline.path, "pr": f.baseline.pr, "pr_source": f.baseline.pr_source,
                "mean_val_bpb": f.baseline.mean, "seeds": f.baseline.n, "earlier_records": f.baseline.earlier,
                "skipped": f.baseline.skipped},
            "report": to_json_dict(f.report),
        } for f in audit.folders],
    }


def render_json(audit: PrAudit) -> str:
    return json.dumps(to_json(audit), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_sarif(audit: PrAudit) -> str:
    """One SARIF document for every folder, paths relative to the repository (for code scanning)."""
    from .render import sarif

    runs = []
    for folder in audit.folders:
        doc = json.loads(sarif.render(folder.report))
        for run in doc["runs"]:
            for result in run["results"]:
                for loc in result["locations"]:
                    art = loc["physicalLocation"]["artifactLocation"]
                    art["uri"] = _repo_uri(folder, art["uri"])
            runs.append(run)
    doc = {"$schema": sarif.SARIF_SCHEMA, "version": "2.1.0", "runs": runs}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _repo_uri(folder: PrFolder, uri: str) -> str:
    # The renderer writes paths relative to the working directory; code scanning wants repo paths.
    absolute = Path(os.path.normpath(Path.cwd() / uri))
    try:
        return f"{folder.changed.path}/{absolute.relative_to(folder.local).as_posix()}"
    except ValueError:
        return uri
