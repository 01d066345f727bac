"""`golf-audit report`: orchestration, exit codes and the failure policy, through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit.checks import Check, Outcome
from golf_audit.cli import app
from golf_audit.findings import CheckResult, Severity, Status
from golf_audit.render.json import validate
from golf_audit.report import audit_folder, audit_tree, exit_code, find_folders

TREE = Path(__file__).parent / "fixtures" / "report" / "tree"
TRACK = TREE / "track_10min_16mb"
runner = CliRunner()


def fixed(status: Status, severity: Severity = Severity.ERROR, check_id: str = "GA-TEST-001") -> Check:
    return Check(id=check_id, title="t", severity=severity, rule="r", remediation="fix", family="test",
                 run=lambda ctx, check: Outcome(status, status.value))


def crashing() -> Check:
    def run(ctx, check):
        return {}["missing"]

    return Check(id="GA-TEST-002", title="crash", severity=Severity.ERROR, rule="r", remediation="f", family="test", run=run)


@pytest.mark.parametrize("statuses, fail_on, code", [
    ([Status.PASS, Status.NOT_RUN], Severity.ERROR, 0),
    ([Status.PASS, (Status.FAIL, Severity.WARNING)], Severity.ERROR, 0),
    ([Status.PASS, (Status.FAIL, Severity.WARNING)], Severity.WARNING, 1),
    ([Status.PASS, Status.FAIL], Severity.ERROR, 1),
    ([Status.PASS, Status.ERROR], Severity.ERROR, 2),
    ([Status.FAIL, Status.ERROR], Severity.ERROR, 1),
    ([Status.NOT_RUN, Status.NOT_RUN], Severity.ERROR, 2),
    ([Status.NOT_RUN, Status.NOT_APPLICABLE], Severity.ERROR, 2),
    ([Status.WARN, Status.NOT_APPLICABLE], Severity.ERROR, 0),
])
def test_exit_code_policy(statuses, fail_on, code) -> None:
    results = []
    for s in statuses:
        status, sev = s if isinstance(s, tuple) else (s, Severity.ERROR)
        results.append(CheckResult("GA-X-001", "x", status, "", sev))
    assert exit_code(results, fail_on) == code


def test_crashing_check_is_error_not_pass() -> None:
    audit = audit_folder(TRACK / "2026-01-01_Baseline", checks=[fixed(Status.PASS), crashing()])
    crash = audit.result("GA-TEST-002")
    assert crash.status is Status.ERROR and "KeyError" in crash.summary
    assert audit.verdict is Status.ERROR


def test_find_folders_is_chronological_with_leaders() -> None:
    found = [(f.path.name, f.baseline.name if f.baseline else None) for f in find_folders(TREE)]
    assert found == [("2026-01-01_Baseline", None), ("2026-01-05_Better", "2026-01-01_Baseline"),
                     ("2026-01-09_OverCap", "2026-01-05_Better")]


def test_tree_uses_previous_leader_as_baseline() -> None:
    seen = {}

    def probe(ctx, check):
        seen[ctx.folder.name] = ctx.options.baseline
        return Outcome(Status.PASS, "")

    check = Check(id="GA-TEST-003", title="p", severity=Severity.INFO, rule="r", remediation="f", family="test", run=probe)
    report = audit_tree(TREE, checks=[check])
    assert seen["2026-01-01_Baseline"] is None
    assert seen["2026-01-05_Better"].name == "2026-01-01_Baseline"
    assert seen["2026-01-09_OverCap"].name == "2026-01-05_Better"
    assert [f.baseline for f in report.folders] == [None, "2026-01-01_Baseline", "2026-01-05_Better"]


def test_cli_failing_folder_exit_1_and_id_in_both_outputs() -> None:
    # The real artifact audit on a fixture whose logs print a total over the cap.
    folder = str(TRACK / "2026-01-09_OverCap")
    md = runner.invoke(app, ["report", folder, "--format", "markdown"])
    assert md.exit_code == 1, md.output
    assert "| ✖ | `GA-SIZE-001` |" in md.stdout
    js = runner.invoke(app, ["report", folder, "--format", "json"])
    assert js.exit_code == 1, js.output
    doc = json.loads(js.stdout)
    validate(doc)
    failing = [r["id"] for r in doc["folders"][0]["results"] if r["status"] == "fail"]
    assert failing == ["GA-SIZE-001"] and doc["exit_code"] == 1
    evidence = doc["folders"][0]["results"][0]["evidence"][0]
    assert (evidence["file"], evidence["line"], evidence["value"], evidence["threshold"]) == (
        "train_seed1337.log", 14, 16003211, 16000000)


def test_cli_good_folder_exit_0() -> None:
    out = runner.invoke(app, ["report", str(TRACK / "2026-01-05_Better"), "--format", "json"])
    assert out.exit_code == 0, out.output
    statuses = {r["id"]: r["status"] for r in json.loads(out.stdout)["folders"][0]["results"]}
    assert statuses["GA-SIZE-001"] == "pass" and statuses["GA-SIZE-002"] == "pass"
    assert statuses["GA-TIME-002"] == "pass"


def test_cli_fail_on_critical_only() -> None:
    out = runner.invoke(app, ["report", str(TRACK / "2026-01-09_OverCap"), "--fail-on", "critical", "--check", "GA-SIZE-001"])
    assert out.exit_code == 1, out.output


def test_cli_crashing_collector_is_error_exit_2(monkeypatch) -> None:
    import golf_audit.artifact

    def broken(folder):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(golf_audit.artifact, "audit_artifact", broken)
    out = runner.invoke(app, ["report", str(TRACK / "2026-01-01_Baseline"), "--check", "GA-SIZE-001", "--format", "json"])
    assert out.exit_code == 2, out.output
    result = json.loads(out.stdout)["folders"][0]["results"][0]
    assert result["status"] == "error" and "parser exploded" in result["summary"]


@pytest.mark.parametrize("args, message", [
    (["report", "/no/such/folder"], "no such folder"),
    (["report", str(TREE)], "not a records folder"),
    (["report", str(TRACK / "2026-01-01_Baseline"), "--check", "GA-NOPE-001"], "unknown check"),
    (["report", str(TRACK / "2026-01-01_Baseline"), "--baseline", "/no/such/base"], "no such folder"),
    (["report", str(TRACK / "2026-01-01_Baseline" / "submission.json")], "not a folder"),
])
def test_cli_bad_input_exit_2_one_line(args, message) -> None:
    out = runner.invoke(app, args)
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output
    assert out.stdout == ""


def test_cli_unreadable_folder_is_exit_2_not_pass(tmp_path) -> None:
    folder = tmp_path / "garbage"
    folder.mkdir()
    (folder / "submission.json").write_bytes(b"\xff\xfe{not json")
    (folder / "train_seed1.log").write_bytes(bytes(range(256)) * 8)
    out = runner.invoke(app, ["report", str(folder), "--format", "json"])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    results = json.loads(out.stdout)["folders"][0]["results"]
    assert all(r["status"] in ("not-run", "not-applicable") for r in results if r["id"] != "GA-FILES-001")
    assert next(r for r in results if r["id"] == "GA-FILES-001")["status"] == "error"  # damaged files


def test_cli_output_file_and_sarif(tmp_path) -> None:
    target = tmp_path / "r.sarif"
    out = runner.invoke(app, ["report", str(TRACK / "2026-01-05_Better"), "--format", "sarif", "--output", str(target)])
    assert out.exit_code in (0, 1, 2), out.output
    assert out.stdout == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"


def test_github_action_example_posts_markdown() -> None:
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).resolve().parents[1] / "examples" / "github-action.yml"
    doc = yaml.safe_load(path.read_text())
    steps = doc["jobs"]["audit"]["steps"]
    script = next(s["run"] for s in steps if s.get("id") == "audit")
    assert "golf-audit pr " in script and "--output report.md" in script  # the PR comment comes from `golf-audit pr`
    assert any("createComment" in s.get("with", {}).get("script", "") for s in steps)


@pytest.mark.slow
def test_cli_dynamic_leaky_script_fails_with_ids_in_both_outputs(tmp_path) -> None:
    # The submission auditor's scored-mask SLOT fixture, shipped as a PR folder's train_gpt.py.
    folder = tmp_path / "2026-05-01_ScoredMaskSLOT"
    folder.mkdir()
    scripts = Path(__file__).parent / "fixtures" / "scripts"
    (folder / "train_gpt.py").write_bytes((scripts / "slot_scored_mask.py").read_bytes())
    (folder / "submission.json").write_text('{"name": "scored-mask SLOT", "val_bpb": 0.95}\n')
    md_path, json_path = tmp_path / "r.md", tmp_path / "r.json"
    md = runner.invoke(app, ["report", str(folder), "--dynamic", "--format", "markdown", "--output", str(md_path)])
    assert md.exit_code == 1, md.output
    text = md_path.read_text()
    assert "| ✖ | `GA-CAUSAL-001` |" in text and "| ✖ | `GA-STATIC-001` |" in text
    js = runner.invoke(app, ["report", str(folder), "--dynamic", "--format", "json", "--output", str(json_path),
                             "--check", "GA-CAUSAL-001", "--check", "GA-STATIC-001"])
    assert js.exit_code == 1, js.output
    doc = json.loads(json_path.read_text())
    validate(doc)
    assert {r["id"]: r["status"] for r in doc["folders"][0]["results"]} == {"GA-STATIC-001": "fail", "GA-CAUSAL-001": "fail"}


def test_tree_audit_in_worker_processes_equals_the_in_process_audit(monkeypatch) -> None:
    """Folders are independent: the fork pool gives the same report, folder order included."""
    from golf_audit.render import render

    def audited(workers: str) -> dict:
        monkeypatch.setenv("GOLF_AUDIT_TREE_WORKERS", workers)
        data = json.loads(render(audit_tree(TREE), "json"))
        data.get("tool", {}).pop("date", None)
        data.pop("date", None)
        return data

    one, two = audited("1"), audited("2")
    assert [f["folder"] for f in two["folders"]] == [f["folder"] for f in one["folders"]]
    assert two == one
