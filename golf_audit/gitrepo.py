"""Git plumbing for ``golf-audit pr``: PR refs, the records folders a PR touches, exporting a
tree, and permalinks into the repository.

Everything goes through the ``git`` command (plumbing commands only; the clone's working
tree, index and branches are never touched: a PR's files are read from the object store and
written under a folder of ours). Any git failure is one ``BadInput`` line.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BadInput, one_line

RECORDS = "records"
# A records folder is records/<track>/<folder>: the layout of the challenge repository.
FOLDER_DEPTH = 3


def git(repo: Path, *args: str, stdin: bytes | None = None, check: bool = True, timeout: float = 300) -> bytes:
    """Run ``git -C repo args``; its stdout. A failure is BadInput naming the git command."""
    cmd = ["git", "-C", str(repo), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout,
                              env=_quiet_env())
    except FileNotFoundError:
        raise BadInput("git is not installed (golf-audit pr needs it)") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"git {args[0]} timed out after {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BadInput(f"git {args[0]} failed: {one_line(err[-1] if err else f'exit {proc.returncode}', 160)}")
    return proc.stdout


def _quiet_env() -> dict[str, str]:
    import os

    # Never prompt for credentials or open an editor: a reviewer's CI has no terminal.
    return dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_EDITOR="true", LC_ALL="C")


def text(repo: Path, *args: str, check: bool = True) -> str:
    return git(repo, *args, check=check).decode("utf-8", "replace").strip()


def repo_root(path: Path) -> Path:
    """The top of the git checkout holding ``path``."""
    if not Path(path).is_dir():
        raise BadInput(f"--repo: {path}: no such folder")
    top = text(Path(path), "rev-parse", "--show-toplevel", check=False)
    if not top:
        raise BadInput(f"--repo: {path}: not inside a git clone of the challenge repository")
    return Path(top).resolve()


def resolve(repo: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None when it names none."""
    out = text(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return out if re.fullmatch(r"[0-9a-f]{40,64}", out) else None


def pr_ref(number: int) -> str:
    return f"refs/pull/{number}/head"


def pr_head(repo: Path, number: int, remote: str) -> tuple[str | None, str]:
    """(commit or None, how): the PR's head, from the clone or fetched from ``remote``.

    None (with why in ``how``) when the clone lacks the ref and it cannot be fetched: the
    caller may still find a merged PR through its merge commit.
    """
    ref = pr_ref(number)
    sha = resolve(repo, ref)
    if sha is not None:
        return sha, f"{ref} (in the clone)"
    if not remote_url(repo, remote):
        return None, f"{ref} is not in the clone and there is no remote {remote!r} to fetch it from"
    try:
        git(repo, "fetch", "--quiet", "--no-tags", remote, f"+{ref}:{ref}")
    except BadInput as exc:
        return None, str(exc)
    sha = resolve(repo, ref)
    return (sha, f"fetched {ref} from {remote}") if sha else (None, f"fetched {ref} from {remote}: no commit")


def default_base(repo: Path, remote: str) -> str:
    """The main branch to diff against: the remote's HEAD, else main / master (remote, then local)."""
    head = text(repo, "symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD", check=False)
    candidates = [head] if head else []
    candidates += [f"refs/remotes/{remote}/main", f"refs/remotes/{remote}/master", "refs/heads/main", "refs/heads/master"]
    for rev in candidates:
        if resolve(repo, rev):
            return rev.removeprefix("refs/remotes/").removeprefix("refs/heads/")
    raise BadInput(f"no main branch found ({remote}/HEAD, main, master): pass --base")


def merge_base(repo: Path, a: str, b: str) -> str:
    out = text(repo, "merge-base", a, b, check=False)
    if not out:
        raise BadInput(f"{a} and {b[:12]} share no history (is --base the challenge's main branch?)")
    return out.splitlines()[0]


def landing_commit(repo: Path, base: str, number: int) -> str | None:
    """The commit on ``base``'s first-parent chain that landed PR ``number`` (its subject names it)."""
    from .records.chronology import pr_from_subject

    log = text(repo, "log", "--first-parent", "--format=%H%x1f%s", base)
    for line in log.splitlines():
        sha, _, subject = line.partition("\x1f")
        if pr_from_subject(subject) == number:
            return sha
    return None


@dataclass(frozen=True)
class ChangedFolder:
    """A records folder a PR touches: its repo path and whether the PR adds it."""

    path: str  # records/<track>/<folder>
    added: bool  # absent at the merge base
    files: tuple[str, ...]  # the PR's changed files inside it (repo paths)

    @property
    def track(self) -> str:
        return str(PurePosixPath(self.path).parent)


def changed_records_folders(repo: Path, base: str, head: str) -> tuple[list[ChangedFolder], list[str]]:
    """(folders, other files): the records folders ``head`` adds or changes since ``base``.

    A folder the PR only deletes is left out (there is nothing to audit); files outside
    ``records/<track>/<folder>/`` are returned apart, for the comment to mention.
    """
    out = git(repo, "diff", "--name-status", "--no-renames", "-z", base, head)
    fields = [f for f in out.decode("utf-8", "replace").split("\0") if f]
    by_folder: dict[str, list[str]] = {}
    others: list[str] = []
    for _status, name in zip(fields[0::2], fields[1::2]):
        parts = PurePosixPath(name).parts
        if parts[0] != RECORDS or len(parts) <= FOLDER_DEPTH:
            others.append(name)
            continue
        folder = "/".join(parts[:FOLDER_DEPTH])
        by_folder.setdefault(folder, []).append(name)
    folders = []
    for folder, files in sorted(by_folder.items()):
        if not tree_files(repo, head, folder):
            continue  # deleted by the PR
        folders.append(ChangedFolder(folder, not tree_files(repo, base, folder), tuple(sorted(files))))
    return folders, others


@dataclass(frozen=True)
class TreeFile:
    path: str  # repo path
    blob: str
    size: int


def tree_files(repo: Path, rev: str, prefix: str) -> list[TreeFile]:
    """Regular files under ``prefix`` at ``rev`` (symlinks and submodules are not files to audit)."""
    out = git(repo, "ls-tree", "-r", "-l", "-z", rev, "--", prefix)
    files = []
    for entry in out.decode("utf-8", "replace").split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, blob, size = meta.split()
        if kind == "blob" and mode in ("100644", "100755"):
            files.append(TreeFile(path, blob, int(size)))
    return files


def export(repo: Path, files: list[TreeFile], dest: Path) -> list[Path]:
    """Write ``files`` (from ``tree_files``) under ``dest`` at their repo paths; the paths written."""
    if not files:
        return []
    batch = git(repo, "cat-file", "--batch", stdin="".join(f"{f.blob}\n" for f in files).encode())
    written, pos = [], 0
    for f in files:
        header_end = batch.index(b"\n", pos)
        header = batch[pos:header_end].split()
        size = int(header[2])
        body = batch[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        target = _safe_join(dest, f.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written.append(target)
    return written


def _safe_join(dest: Path, repo_path: str) -> Path:
    parts = PurePosixPath(repo_path).parts
    if not parts or PurePosixPath(repo_path).is_absolute() or ".." in parts:
        raise BadInput(f"refusing a path outside the export folder: {repo_path!r}")
    return dest.joinpath(*parts)


def remote_url(repo: Path, remote: str) -> str | None:
    return text(repo, "remote", "get-url", remote, check=False) or None


_GITHUB = (
    re.compile(r"^https?://(?:[^@/]+@)?github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$"),
    re.compile(r"^(?:ssh://)?git@github\.com[:/]([^/]+)/([^/]+?)(?:\.git)?/?$"),
)


def github_base(url: str | None) -> str | None:
    """``https://github.com/<owner>/<repo>`` for a GitHub remote URL (https or ssh), else None."""
    for pattern in _GITHUB:
        m = pattern.match((url or "").strip())
        if m:
            return f"https://github.com/{m.group(1)}/{m.group(2)}"
    return None


def permalink(base: str, sha: str, path: str, line: int | None = None) -> str:
    """A link to ``path`` (and ``line``) at commit ``sha`` that stays valid when the branch moves."""
    return f"{base}/blob/{sha}/{path}" + (f"#L{line}" if line else "")
