"""`golf-audit pr N` end to end on a small challenge-like repository built in tmp (no network).

The upstream repository has a launch commit and PRs merged GitHub-style ("Merge pull request
#N from ..."); the PRs under review exist only as ``refs/pull/N/head`` (as on GitHub), so a
plain clone lacks them and the command must fetch them from ``origin``:

- #2 Mid (merged): the best record before #5;
- #5 Legal (open): a legal sliding-window script, better than Mid -> exit 0, baseline Mid;
- #9 Later (merged after #5 was opened): better than everything, so it must NOT be #5's
  baseline (a later PR number), but it is #12's;
- #12 Leaky (open): SLOT fitted on the scored positions -> exit 1, evidence linked to the line;
- #11 (open): touches no records folder -> exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit import gitrepo
from golf_audit.cli import app
from golf_audit.errors import BadInput

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"
TRACK = "records/track_10min_16mb"
GITHUB = "https://github.com/openai/parameter-golf"
runner = CliRunner()

GIT_ENV = {"GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com", "GIT_COMMITTER_NAME": "Fixture",
           "GIT_COMMITTER_EMAIL": "fixture@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
BPB_PER_NAT = 0.59219


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          env=dict(os.environ, **GIT_ENV))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def make_record(folder: Path, name: str, date: str, bpbs: list[float], script: bytes) -> None:
    """A records folder whose logs, submission.json and script agree with each other."""
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_bytes(script)
    model_bytes = 15_000_000
    total = model_bytes + len(script)
    seeds = [1337 + i for i in range(len(bpbs))]
    for seed, bpb in zip(seeds, bpbs):
        loss = bpb / BPB_PER_NAT
        (folder / f"train_seed{seed}.log").write_text(
            "model_params:17059912\nworld_size:8 grad_accum_steps:1\n"
            "train_batch_tokens:524288 train_seq_len:2048 iterations:20000 warmup_steps:20 max_wallclock_seconds:600.000\n"
            f"seed:{seed}\n"
            "step:0/20000 val_loss:6.9373 val_bpb:4.1086 train_time:0ms step_avg:0.02ms\n"
            f"step:11575/20000 val_loss:{loss:.4f} val_bpb:{bpb:.4f} train_time:590043ms step_avg:50.98ms\n"
            "stopping_early: wallclock_cap train_time:590043ms step:11575/20000\n"
            f"Code size: {len(script)} bytes\n"
            f"Serialized model int8+zlib: {model_bytes} bytes\n"
            f"Total submission size int8+zlib: {total} bytes\n"
            f"final_int8_zlib_roundtrip val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:1638ms\n"
            f"final_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n", encoding="utf-8")
    mean = sum(bpbs) / len(bpbs)
    (folder / "submission.json").write_text(json.dumps({
        "author": "Fixture Author", "github_id": "fixture", "name": name, "date": f"{date}T00:00:00Z",
        "val_bpb": round(mean, 8), "val_loss": round(mean / BPB_PER_NAT, 8), "bytes_total": total,
        "bytes_code": len(script), "seeds": seeds,
        "seed_results": {str(seed): {"val_bpb": round(bpb, 8), "val_loss": round(bpb / BPB_PER_NAT, 8),
                                     "artifact_bytes": total} for seed, bpb in zip(seeds, bpbs)}},
        indent=2), encoding="utf-8")
    (folder / "README.md").write_text(f"# {name}\n\nFixture record for golf-audit pr tests.\n", encoding="utf-8")


def open_pr(upstream: Path, number: int, branch: str, files: dict[str, Path | bytes] | None = None,
            record: tuple | None = None, merge: bool = False) -> str:
    """Commit a PR branch off main; merge it GitHub-style, or publish it as refs/pull/N/head only."""
    git(upstream, "checkout", "-q", "-b", branch, "main")
    if record is not None:
        make_record(upstream / TRACK / record[0], *record[1:])
    for path, content in (files or {}).items():
        (upstream / path).write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", f"{branch}: the PR's work")
    head = git(upstream, "rev-parse", "HEAD")
    git(upstream, "update-ref", f"refs/pull/{number}/head", head)
    git(upstream, "checkout", "-q", "main")
    if merge:
        git(upstream, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number} from fixture/{branch}")
    git(upstream, "branch", "-q", "-D", branch)  # like a fork's branch: only refs/pull/N/head remains
    return head


@pytest.fixture(scope="module")
def challenge(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pr")
    upstream = root / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    (upstream / "README.md").write_text("# parameter-golf (fixture)\n", encoding="utf-8")
    stub = b"print('a launch-era script')\n"
    make_record(upstream / TRACK / "2026-01-01_Baseline", "Baseline", "2026-01-01", [1.2244, 1.2246, 1.2243], stub)
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "Launch snapshot")
    open_pr(upstream, 2, "mid", record=("2026-01-03_Mid", "Mid", "2026-01-03", [1.2200, 1.2203, 1.2198], stub),
            merge=True)
    legal = open_pr(upstream, 5, "legal", record=("2026-01-05_Legal", "Legal", "2026-01-05", [1.2058, 1.2060, 1.2057],
                                                  (SCRIPTS / "sliding_legal.py").read_bytes()))
    open_pr(upstream, 9, "later", record=("2026-01-09_Later", "Later", "2026-01-09", [1.1000, 1.1002, 1.0999], stub),
            merge=True)
    open_pr(upstream, 11, "docs", files={"README.md": b"# parameter-golf (fixture)\n\nMore words.\n"})
    leaky = open_pr(upstream, 12, "leaky", record=("2026-01-12_Leaky", "Leaky", "2026-01-12", [1.0500, 1.0502, 1.0499],
                                                   (SCRIPTS / "slot_scored_mask.py").read_bytes()))
    clone = root / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True, capture_output=True,
                   env=dict(os.environ, **GIT_ENV))
    return {"root": root, "upstream": upstream, "clone": clone, "legal": legal, "leaky": leaky}


def run_pr(*args: str):
    result = runner.invoke(app, ["pr", *args], env={"COLUMNS": "80"})
    return result.exit_code, result.stdout, result.stderr


def test_legal_pr_is_fetched_and_passes_against_the_best_earlier_record(challenge):
    clone = challenge["clone"]
    assert gitrepo.resolve(clone, "refs/pull/5/head") is None  # a plain clone lacks PR refs
    status_before = git(clone, "status", "--porcelain")
    code, out, err = run_pr("5", "--repo", str(clone), "--no-dynamic")
    assert code == 0, (out, err)
    assert gitrepo.resolve(clone, "refs/pull/5/head") == challenge["legal"]  # fetched from origin
    assert "fetched refs/pull/5/head" in err
    assert out.startswith("## golf-audit: PR #5")
    assert f"adds `{TRACK}/2026-01-05_Legal`" in out
    # The baseline is #2 (the best record with an earlier PR number): not #9, better but later.
    assert f"baseline `{TRACK}/2026-01-03_Mid`: PR #2 (git)" in out and "2026-01-09_Later`:" not in out
    assert "vs baseline `records/track_10min_16mb/2026-01-03_Mid`" in out
    # The origin is a local path: evidence reads as repository paths, never as invented URLs.
    assert "https://" not in out
    assert f"`{TRACK}/2026-01-05_Legal/train_seed1337.log:" in out
    assert "GA-SIG-001" in out and "GA-STATIC-001" in out
    # The reviewer's clone is left as it was: working tree, index and branch.
    assert git(clone, "status", "--porcelain") == status_before
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_leaky_pr_fails_with_permalinks_into_the_pr_commit(challenge, tmp_path):
    clone = challenge["clone"]
    git(clone, "fetch", "-q", "origin", "+refs/pull/12/head:refs/pull/12/head")
    github = tmp_path / "github-clone"
    shutil.copytree(clone, github, symlinks=True)
    git(github, "remote", "set-url", "origin", GITHUB + ".git")  # present ref: no fetch, so no network
    sarif = tmp_path / "pr12.sarif"
    code, out, err = run_pr("12", "--repo", str(github), "--no-dynamic", "--sarif", str(sarif))
    assert code == 1, (out, err)
    sha = challenge["leaky"]
    assert f"[`{sha[:12]}`]({GITHUB}/commit/{sha})" in out
    # #9 is now earlier: it is the record #12 had to beat.
    assert f"baseline [`{TRACK}/2026-01-09_Later`]({GITHUB}/tree/" in out
    link = f"]({GITHUB}/blob/{sha}/{TRACK}/2026-01-12_Leaky/train_gpt.py#L"
    assert link in out, out
    failing = [line for line in out.splitlines() if line.startswith("| ✖")]
    assert any("GA-STATIC" in line for line in failing), failing
    doc = json.loads(sarif.read_text())
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for run in doc["runs"] for r in run["results"] for loc in r["locations"]}
    assert f"{TRACK}/2026-01-12_Leaky/train_gpt.py" in uris


def test_json_format_names_the_pr_and_baseline(challenge):
    code, out, err = run_pr("5", "--repo", str(challenge["clone"]), "--no-dynamic", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["pr"]["number"] == 5 and doc["pr"]["head"] == challenge["legal"] and doc["exit_code"] == 0
    folder = doc["folders"][0]
    assert folder["path"] == f"{TRACK}/2026-01-05_Legal" and folder["added"] is True
    assert folder["baseline"]["path"] == f"{TRACK}/2026-01-03_Mid" and folder["baseline"]["pr"] == 2
    assert folder["baseline"]["earlier_records"] == 2  # Baseline (launch) and Mid
    assert folder["report"]["folders"][0]["commit"] == challenge["legal"]


@pytest.mark.parametrize("args,needle", [
    (["11"], "PR #11 adds or changes no records/<track>/<folder>"),
    (["99"], "git fetch failed"),
    (["0"], "NUMBER must be >= 1"),
    (["5", "--base", "no-such-branch"], "--base: no-such-branch names no commit"),
    (["5", "--remote", "nowhere"], "there is no remote 'nowhere'"),
    (["5", "--python", "python3"], "--python needs the dynamic checks"),
])
def test_pr_bad_input_is_one_line_exit_2(challenge, args, needle):
    repo = challenge["clone"]
    if args[:1] == ["5"] and "--remote" in args:
        repo = challenge["root"] / "fresh-clone"
        if not repo.exists():
            subprocess.run(["git", "clone", "-q", str(challenge["upstream"]), str(repo)], check=True)
    code, out, err = run_pr(*args, "--repo", str(repo), "--no-dynamic")
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.startswith("golf-audit:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert out == ""


def test_not_a_git_repo(tmp_path):
    code, out, err = run_pr("5", "--repo", str(tmp_path))
    assert code == 2 and "not inside a git clone" in err and out == ""


@pytest.mark.slow
def test_leaky_pr_dynamic_checks_run_in_the_sandbox(challenge):
    """The full report: the PR's own eval functions flip-tested in the sandbox (minutes on CPU)."""
    code, out, err = run_pr("12", "--repo", str(challenge["clone"]))
    assert code == 1, (out, err)
    assert "dynamic checks run the PR's train_gpt.py in a sandbox" in err
    dynamic = [line for line in out.splitlines() if "GA-CAUSAL" in line and line.startswith("| ")]
    assert dynamic and any("✖" in line for line in dynamic), dynamic


# ------------------------------------------------------------------------------ plumbing


@pytest.mark.parametrize("url,base", [
    ("https://github.com/openai/parameter-golf.git", GITHUB),
    ("https://github.com/openai/parameter-golf", GITHUB),
    ("https://token@github.com/openai/parameter-golf.git", GITHUB),
    ("git@github.com:openai/parameter-golf.git", GITHUB),
    ("ssh://git@github.com/openai/parameter-golf.git", GITHUB),
    ("https://gitlab.com/openai/parameter-golf.git", None),
    ("/srv/git/parameter-golf", None),
    (None, None),
])
def test_github_base(url, base):
    assert gitrepo.github_base(url) == base


def test_permalink():
    assert gitrepo.permalink(GITHUB, "abc", "records/t/f/train_gpt.py", 12) == \
        f"{GITHUB}/blob/abc/records/t/f/train_gpt.py#L12"
    assert gitrepo.permalink(GITHUB, "abc", "records/t/f/submission.json") == f"{GITHUB}/blob/abc/records/t/f/submission.json"


def test_export_refuses_paths_outside_the_folder(tmp_path):
    with pytest.raises(BadInput, match="outside the export folder"):
        gitrepo._safe_join(tmp_path, "../evil")


def test_changed_folders_ignore_deleted_ones_and_list_other_files(challenge):
    up = challenge["upstream"]
    base = git(up, "rev-parse", "main")
    folders, others = gitrepo.changed_records_folders(up, git(up, "merge-base", "main", "refs/pull/12/head"),
                                                       "refs/pull/12/head")
    assert [f.path for f in folders] == [f"{TRACK}/2026-01-12_Leaky"] and folders[0].added and others == []
    # The reverse diff deletes the folder: nothing to audit, and it is not reported as changed.
    folders, _ = gitrepo.changed_records_folders(up, "refs/pull/12/head", base)
    assert folders == []


def test_a_merged_pr_is_audited_as_it_landed(challenge):
    # #2 is merged: its changes are what its merge commit brought; nothing came before it but the launch.
    code, out, err = run_pr("2", "--repo", str(challenge["clone"]), "--no-dynamic", "--format", "json")
    assert code in (0, 1), err
    assert "is merged" in err
    folder = json.loads(out)["folders"][0]
    assert folder["path"] == f"{TRACK}/2026-01-03_Mid" and folder["added"] is True
    assert folder["baseline"]["path"] == f"{TRACK}/2026-01-01_Baseline" and folder["baseline"]["pr"] == 0


# ------------------------------------------------------------------------------ the real records


@pytest.fixture(scope="module")
def real_challenge(shared_dir, tmp_path_factory) -> dict:
    """The real track_10min_16mb history replayed: each folder lands in a "Merge pull request #N"
    commit in PR order (the launch snapshot first; no refs/pull/* for them, so `pr` must find
    merged PRs by their merge commits), and labelled PR #1217 is published as refs/pull/1217/head only."""
    truth = json.loads((shared_dir / "records" / "GROUND_TRUTH.json").read_text())["rows"]
    rows = [r for r in truth if r["track"] == "track_10min_16mb"]
    upstream = tmp_path_factory.mktemp("real") / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    by_pr: dict[int, list[str]] = {}
    for r in rows:
        by_pr.setdefault(r["pr_number"] or 0, []).append(r["folder"])
    src = shared_dir / "records" / "track_10min_16mb"
    for number in sorted(by_pr):
        if number:
            git(upstream, "checkout", "-q", "-b", f"pr{number}", "main")
        for folder in by_pr[number]:
            shutil.copytree(src / folder, upstream / TRACK / folder)
        git(upstream, "add", "-A")
        git(upstream, "commit", "-q", "-m", "Launch snapshot" if not number else f"PR {number}")
        if number:
            git(upstream, "checkout", "-q", "main")
            git(upstream, "merge", "-q", "--no-ff", f"pr{number}", "-m", f"Merge pull request #{number} from x/pr{number}")
            git(upstream, "branch", "-q", "-D", f"pr{number}")
    labelled = shared_dir / "prs" / "pr1217"
    git(upstream, "checkout", "-q", "-b", "pr1217", "main")
    shutil.copytree(labelled / "records", upstream / "records", dirs_exist_ok=True)
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "SLOT with a shared delta")
    git(upstream, "update-ref", "refs/pull/1217/head", "HEAD")
    git(upstream, "checkout", "-q", "main")
    return {"repo": upstream, "rows": rows}


def _check_predecessor(real_challenge: dict, number: int, checks: tuple[str, ...] = ()) -> None:
    extra = [a for c in checks for a in ("--check", c)]
    code, out, err = run_pr(str(number), "--repo", str(real_challenge["repo"]), "--no-dynamic", "--format", "json",
                            *extra)
    assert code in (0, 1, 2) and out, err  # the verdict is the checks' business; the baseline is ours
    folders = {f["path"].rsplit("/", 1)[-1]: f for f in json.loads(out)["folders"]}
    expected = {r["folder"]: r["predecessor"] for r in real_challenge["rows"] if r["pr_number"] == number}
    assert set(folders) == set(expected)
    for name, predecessor in expected.items():
        got = folders[name]["baseline"]
        assert got["path"] == f"{TRACK}/{predecessor['folder']}", (name, got, predecessor)
        assert got["pr"] == (predecessor["pr"] or 0)
        assert got["mean_val_bpb"] == pytest.approx(predecessor["mean_val_bpb"], abs=1e-8)


@pytest.mark.parametrize("number", [65, 1530])  # two folders in one PR; a late record
def test_real_merged_prs_get_the_ground_truth_predecessor(real_challenge, number):
    """The baseline `pr` picks is GROUND_TRUTH's predecessor: the best earlier record by PR number."""
    _check_predecessor(real_challenge, number)


def _merged_prs() -> list:
    """Every merged PR of the track (collected only where ../shared is present)."""
    from conftest import SHARED

    truth = SHARED / "records" / "GROUND_TRUTH.json"
    if not truth.is_file():
        return []
    rows = json.loads(truth.read_text())["rows"]
    numbers = sorted({r["pr_number"] for r in rows if r["track"] == "track_10min_16mb" and r["pr_number"]})
    # The records reader's per-seed values differ from GROUND_TRUTH's for these folders; the rule
    # that picks the baseline is not at fault (strict: a fixed reader makes these pass, and fail here).
    reader = {162: "MLP3x_QAT_Int6_SlidingWindow's 3 seeds are in its README table only; the reader sees 1 (log)",
              1736: "PR1626_CaseOps_Taper: the reader finds 2 of its 3 seeds",
              1851: "SparseGate_QuantGate_Loop45…: the reader's per-seed values give mean 1.06349486, not 1.0633495"}
    return [pytest.param(n, marks=pytest.mark.xfail(reason=reader[n], strict=True)) if n in reader else n
            for n in numbers]


@pytest.mark.slow
@pytest.mark.parametrize("number", _merged_prs())
def test_real_every_merged_pr_gets_its_predecessor(real_challenge, number):
    _check_predecessor(real_challenge, number, checks=("GA-SIG-002",))


def test_real_open_pr_is_audited_against_the_record_it_had_to_beat(real_challenge):
    """Labelled PR #1217 ("context-only" SLOT): fetched from refs/pull, baseline #1204, evidence by repo path."""
    code, out, err = run_pr("1217", "--repo", str(real_challenge["repo"]), "--no-dynamic")
    assert code == 1, (out, err)  # labelled causal=fail: one SLOT delta shared by the windows of a batch
    assert "PR #1217 adds `records/track_10min_16mb/2026-04-01_MuonEqR_ContextSLOT_QKGain5`" in out
    assert "baseline `records/track_10min_16mb/2026-03-31_ParallelResiduals_MiniDepthRecurrence`: PR #1204" in out
    assert "| ✖ | `GA-STATIC-002` |" in out
    # Eval time counts the claimed metric's eval (188.5 s), not a longer diagnostic pass: no time fail.
    assert "| ✖ | `GA-TIME-002` |" not in out
    assert "`records/track_10min_16mb/2026-04-01_MuonEqR_ContextSLOT_QKGain5/train_seed" in out
