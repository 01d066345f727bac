"""Chronology of record folders: which PR added each folder, and so which records came before it.

Significance is judged against the best record *submitted before* the candidate (DOMAIN.md §5),
so the order that matters is the PR number, not the folder's date prefix (folders are named by
their authors, and a PR opened in March can be merged in May). Sources, most trusted first:

1. **git**: in a checkout of the challenge repository, walk the first-parent chain of the branch
   (main) and take the commit that first added a file of the folder; its subject names the PR
   ("Merge pull request #N from …", "Merge PR #N: …", or a squash commit's trailing "(#N)").
   The root (launch snapshot) commit has no PR and counts as PR 0: it came first.
2. **readme** / **submission.json**: an explicit self-declaration only (a ``"pr": N`` field, a
   ``PR: #N`` line, or a ``…/pull/N`` link on such a line). READMEs cite many *other* PRs
   ("built on PR #549"), so a bare mention is never taken.
3. **order-file**: the reviewer's ``--order FILE`` mapping (folder name or track/folder -> N).

When none applies the order is unknown and callers must say so instead of guessing.

Example::

    >>> folder_pr_number(Path("records/track_10min_16mb/2026-04-10_VarLenAttn"))
    PrNumber(number=1530, source='git', evidence='3f2c…: Merge pull request #1530 from …')
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput

GIT, README, SUBMISSION, ORDER_FILE = "git", "readme", "submission.json", "order-file"

# Subjects main's history uses for a PR landing (GitHub merge button, other tools, squash merges).
_SUBJECT_PR = (
    re.compile(r"^Merge pull request #(\d+)\b"),
    re.compile(r"^Merge PR #(\d+)\b"),
    re.compile(r"\(#(\d+)\)\s*$"),
)
# A README line that declares the folder's own PR: "PR: #123", "**PR**: 123", "Pull request: …/pull/123".
_README_PR = re.compile(
    r"^\s*[-*]?\s*\**\s*(?:PR|Pull request)(?:\s*(?:number|#))?\s*\**\s*[:=]\s*\**\s*"
    r"(?:#|\S*/pull/)?(\d+)\b",
    re.I,
)
_JSON_KEYS = ("pr", "pr_number", "pull_request", "pull_request_number", "github_pr")
_COMMENT = re.compile(r"(^|\s)#(?!\d).*$")  # "# note", but not "#1530"
_URL_PR = re.compile(r"(?:^#?|/pull/)(\d+)/?$")


@dataclass(frozen=True)
class PrNumber:
    """The PR that added a folder, with where that was read."""

    number: int  # 0 for the launch snapshot (no PR; first of all)
    source: str  # "git" (merge commit), "readme", "submission.json", "order-file"
    evidence: str  # commit sha + subject / path:line / order file entry

    @property
    def label(self) -> str:
        return "launch" if self.number == 0 else f"#{self.number}"


def pr_from_subject(subject: str) -> int | None:
    """The PR number a commit subject names, or None."""
    for pattern in _SUBJECT_PR:
        m = pattern.search(subject.strip())
        if m:
            return int(m.group(1))
    return None


def _git(root: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=120, errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def git_root(path: Path) -> Path | None:
    """The top of the git checkout holding ``path`` (None outside a checkout or without git)."""
    start = path if path.is_dir() else path.parent
    return _git_root(str(Path(start).resolve()))


@functools.lru_cache(maxsize=256)
def _git_root(start: str) -> Path | None:
    # Cached: a tree of 50 folders asks once per folder, always with the same answer.
    out = _git(Path(start), "rev-parse", "--show-toplevel").strip()
    return Path(out).resolve() if out else None


def git_head(root: Path, rev: str = "HEAD") -> str | None:
    out = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    return out or None


def git_pr_numbers(repo_root: Path, *, rev: str = "HEAD") -> dict[Path, PrNumber]:
    """Every directory of the checkout -> the PR whose landing commit first added a file under it.

    Only the first-parent chain of ``rev`` counts (the branch's own history: a merge commit's
    diff against its first parent is everything the PR brought). Files deleted before ``rev`` do
    not count. Directories whose earliest file came in a commit naming no PR (a direct push
    other than the root commit) are left out: their order is unknown from git.
    """
    root = Path(repo_root).resolve()
    head = git_head(root, rev)
    if head is None:
        return {}
    return dict(_git_pr_numbers(root, head))


@functools.lru_cache(maxsize=8)
def _git_pr_numbers(root: Path, head: str) -> tuple[tuple[Path, PrNumber], ...]:
    present = set(_git(root, "ls-tree", "-r", "--name-only", "-z", head).split("\0")) - {""}
    log = _git(root, "log", "--first-parent", "--diff-merges=first-parent", "--diff-filter=A",
               "--no-renames", "--name-only", "-z", "--format=%x1e%H%x1f%P%x1f%s", head)
    # file -> (position on the chain, oldest = 0; PR of that commit or None); the latest add wins
    # (a file deleted and added again exists at HEAD because of its last add).
    entries = [e for e in log.split("\x1e") if e.strip("\0\n")]
    added: dict[str, tuple[int, PrNumber | None]] = {}
    for position, entry in enumerate(reversed(entries)):
        header, _, files = entry.partition("\n")
        sha, parents, subject = (header.strip("\0\n").split("\x1f") + ["", ""])[:3]
        number = pr_from_subject(subject)
        if number is None and not parents.strip():
            number = 0  # the root commit: the launch snapshot came before every PR
        pr = None if number is None else PrNumber(number, GIT, f"{sha[:12]}: {subject.strip()[:120]}")
        for name in files.strip("\0\n").split("\0"):
            name = name.strip("\n")
            if name in present:
                added[name] = (position, pr)
    first: dict[str, tuple[int, PrNumber | None]] = {}
    for name, value in added.items():
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key not in first or value[0] < first[key][0]:
                first[key] = value
    return tuple((root / key, pr) for key, (_, pr) in sorted(first.items()) if pr is not None)


def declared_pr_number(folder: Path) -> PrNumber | None:
    """An explicit PR number the folder declares about itself (submission.json, then README)."""
    sub = folder / "submission.json"
    if sub.is_file():
        try:
            data = json.loads(sub.read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in _JSON_KEYS:
                value = data.get(key)
                number = _as_pr(value)
                if number is not None:
                    return PrNumber(number, SUBMISSION, f"{folder.name}/submission.json: \"{key}\": {value!r}")
    for readme in sorted(folder.glob("[Rr][Ee][Aa][Dd][Mm][Ee]*")):
        try:
            lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for i, line in enumerate(lines, 1):
            m = _README_PR.match(line)
            if m:
                return PrNumber(int(m.group(1)), README, f"{folder.name}/{readme.name}:{i}")
    return None


def _as_pr(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        m = _URL_PR.search(value.strip())
        return int(m.group(1)) if m else None
    return None


def read_order_file(path: Path) -> dict[str, int]:
    """The ``--order FILE`` mapping: JSON ``{"folder": N}`` or lines ``N folder`` / ``folder N``.

    Keys are folder names or ``track/folder`` paths; ``launch`` (or 0) marks the launch snapshot.
    Blank lines and ``#`` comments are ignored. A line that is neither form is bad input.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--order {path}: cannot read ({exc.__class__.__name__})") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"--order {path}: invalid JSON ({exc})") from None
        out = {}
        for key, value in data.items():
            number = 0 if value in ("launch", 0) else _as_pr(value)
            if number is None:
                raise BadInput(f"--order {path}: {key!r} has no PR number ({value!r})")
            out[str(key)] = number
        return out
    out: dict[str, int] = {}
    for i, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise BadInput(f"--order {path}:{i}: expected 'N folder', got {raw.strip()!r}")
        a, b = parts
        for number_text, name in ((a, b), (b, a)):
            number_text = number_text.lstrip("#")
            if number_text == "launch":
                out[name] = 0
                break
            if number_text.isdigit():
                out[name] = int(number_text)
                break
        else:
            raise BadInput(f"--order {path}:{i}: no PR number in {raw.strip()!r}")
    return out


def _order_lookup(folder: Path, order: dict[str, int]) -> PrNumber | None:
    # Most specific key first: track/folder, then the bare folder name.
    for key in (f"{folder.parent.name}/{folder.name}", folder.name):
        if key in order:
            return PrNumber(order[key], ORDER_FILE, f"--order: {key} {order[key]}")
    return None


def folder_pr_number(folder: Path, *, order: dict[str, int] | None = None) -> PrNumber | None:
    """The PR that added ``folder``: git, else README/submission.json, else ``order``, else None."""
    folder = Path(folder).resolve()
    root = git_root(folder)
    if root is not None:
        found = git_pr_numbers(root).get(folder)
        if found is not None:
            return found
    declared = declared_pr_number(folder)
    if declared is not None:
        return declared
    if order:
        return _order_lookup(folder, order)
    return None
