"""Chronology: the PR that added each records folder, from git merge commits, declarations, --order."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from golf_audit.errors import BadInput
from golf_audit.records.chronology import (
    GIT, ORDER_FILE, README, SUBMISSION, PrNumber, folder_pr_number, git_pr_numbers, pr_from_subject,
    read_order_file,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def _add_folder(repo: Path, name: str, text: str = "x") -> None:
    folder = repo / "records" / "track_10min_16mb" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_gpt.py").write_text(f"print({text!r})\n")
    (folder / "submission.json").write_text(json.dumps({"val_bpb": 1.2}))


def _merge_pr(repo: Path, number: int, name: str, *, message: str | None = None) -> None:
    """A PR branch adding ``name``, merged into main with a merge commit (--no-ff)."""
    _git(repo, "checkout", "-q", "-b", f"pr{number}")
    _add_folder(repo, name)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", f"add {name}")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", f"pr{number}", "-m",
         message or f"Merge pull request #{number} from someone/pr{number}")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "pg"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _add_folder(repo, "2026-03-17_Launch")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "Launch snapshot")
    # Opened late (higher PR number) but its folder name has the earliest date: order is by PR.
    _merge_pr(repo, 42, "2026-03-25_Second")
    _merge_pr(repo, 7, "2026-03-20_First", message="Merge PR #7: first record")
    # A squash merge lands as one commit on main with "(#N)" at the end.
    _add_folder(repo, "2026-03-30_Squashed")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "Record: squashed thing (#99)")
    # A later PR touching an old folder does not change the folder's PR.
    _git(repo, "checkout", "-q", "-b", "fix")
    (repo / "records/track_10min_16mb/2026-03-25_Second/README.md").write_text("typo fix\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "readme")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", "fix", "-m", "Merge pull request #120 from x/fix")
    return repo


def test_subject_patterns() -> None:
    assert pr_from_subject("Merge pull request #1530 from a/b") == 1530
    assert pr_from_subject("Merge PR #12: thing") == 12
    assert pr_from_subject("Record: 10L (#39)") == 39
    assert pr_from_subject("Fix #39 in the middle of text") is None
    assert pr_from_subject("Launch snapshot") is None


def test_git_pr_numbers_from_merge_commits(repo: Path) -> None:
    numbers = git_pr_numbers(repo)
    track = (repo / "records" / "track_10min_16mb").resolve()
    got = {p.name: n.number for p, n in numbers.items() if p.parent == track}
    assert got == {"2026-03-17_Launch": 0, "2026-03-25_Second": 42, "2026-03-20_First": 7,
                   "2026-03-30_Squashed": 99}
    second = numbers[track / "2026-03-25_Second"]
    assert second.source == GIT and "Merge pull request #42" in second.evidence
    sha = _git(repo, "log", "--format=%H", "-1", "--grep", "#42").strip()
    assert second.evidence.startswith(sha[:12])


def test_folder_pr_number_prefers_git_over_declarations(repo: Path) -> None:
    folder = repo / "records" / "track_10min_16mb" / "2026-03-25_Second"
    (folder / "submission.json").write_text(json.dumps({"pr": 5}))  # uncommitted edit: git wins
    got = folder_pr_number(folder, order={"2026-03-25_Second": 3})
    assert got == PrNumber(42, GIT, got.evidence)


def test_untracked_folder_in_checkout_falls_back(repo: Path) -> None:
    folder = repo / "records" / "track_10min_16mb" / "2026-04-01_Untracked"
    folder.mkdir()
    assert folder_pr_number(folder) is None
    assert folder_pr_number(folder, order={"track_10min_16mb/2026-04-01_Untracked": 300}).number == 300


def test_declarations_outside_git(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "submission.json").write_text(json.dumps({"pr_number": "https://github.com/o/r/pull/77"}))
    got = folder_pr_number(a)
    assert (got.number, got.source) == (77, SUBMISSION)

    b = tmp_path / "b"
    b.mkdir()
    (b / "README.md").write_text("# Title\nBuilt on PR #549 by someone.\n\n**PR**: #1234\n")
    got = folder_pr_number(b)
    assert (got.number, got.source, got.evidence) == (1234, README, "b/README.md:4")

    c = tmp_path / "c"
    c.mkdir()
    (c / "README.md").write_text("Built on [PR #549](https://github.com/o/r/pull/549).\n")
    assert folder_pr_number(c) is None  # citing another PR is not a declaration
    got = folder_pr_number(c, order={"c": 600})
    assert (got.number, got.source) == (600, ORDER_FILE)


def test_read_order_file(tmp_path: Path) -> None:
    text = tmp_path / "order.txt"
    text.write_text("# PR folder\nlaunch 2026-03-17_NaiveBaseline\n39 2026-03-18_LowerLR\n"
                    "track_x/2026-04-10_VarLenAttn #1530\n")
    assert read_order_file(text) == {"2026-03-17_NaiveBaseline": 0, "2026-03-18_LowerLR": 39,
                                     "track_x/2026-04-10_VarLenAttn": 1530}
    js = tmp_path / "order.json"
    js.write_text(json.dumps({"a": 3, "b": "launch"}))
    assert read_order_file(js) == {"a": 3, "b": 0}
    bad = tmp_path / "bad.txt"
    bad.write_text("just-a-name\n")
    with pytest.raises(BadInput, match="bad.txt:1"):
        read_order_file(bad)
