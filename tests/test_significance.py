"""Significance under the README and leaderboard rules (scipy.stats), and the `significance` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import stats as st
from typer.testing import CliRunner

from golf_audit.cli import app
from golf_audit.errors import BadInput
from golf_audit.findings import Status
from golf_audit.stats import (MARGIN_NATS, compare, compare_folders, folder_warnings, sample_from_folder,
                              sample_from_values, seeds_needed, walk_tree)  # fmt: skip
from golf_audit.records import read_folder

RECORDS = Path(__file__).parent / "fixtures" / "records"
runner = CliRunner()


def test_reproduces_long_context_claim_from_parsed_seeds(shared_dir: Path) -> None:
    """README: one-sided one-sample t-test against 1.2243657 − 0.005 → t = 31.42, df = 2, p = 0.00051."""
    folder = shared_dir / "records" / "track_10min_16mb" / "2026-03-18_LongContextSeq2048"
    cand = sample_from_folder(folder)
    assert cand.n == 3 and cand.source == "logs"
    report = compare(cand, baseline_mean=1.2243657, rules=["readme"], margin_units="bpb")
    (test,) = report.tests
    assert test.test == "one-sample t-test" and test.df == 2
    assert abs(test.statistic) == pytest.approx(31.42, abs=0.005)
    assert test.pvalue == pytest.approx(0.00051, abs=0.000005)
    assert any("0.005 bpb" in w for w in report.warnings)  # the claim applied the margin in bpb


def test_margin_converted_with_candidate_ratio() -> None:
    cand = sample_from_values([1.100, 1.101, 1.102])
    cand.ratio = 0.5
    report = compare(cand, baseline_mean=1.2, rules=["readme"])
    assert report.tests[0].margin_bpb == pytest.approx(MARGIN_NATS * 0.5)
    assert report.tests[0].null_value == pytest.approx(1.2 - 0.0025)


def test_known_good_and_known_bad() -> None:
    base = sample_from_values([1.2000, 1.2010, 1.1990, 1.2005], "base")
    good = sample_from_values([1.1800, 1.1805, 1.1795, 1.1802], "good")
    good.ratio = 0.59
    report = compare(good, base)
    assert report.decision("readme") == "significant" and report.decision("leaderboard") == "significant"
    assert [t.test for t in report.tests] == ["one-sample t-test", "Welch two-sample t-test", "Welch two-sample t-test"]
    assert [t.decides for t in report.tests] == [False, True, True]  # Welch decides when baseline seeds exist
    # scipy is the reference: the Welch test on shifted values
    ref = st.ttest_ind([v + 0.005 * 0.59 for v in good.values.values()], list(base.values.values()), equal_var=False, alternative="less")
    assert report.tests[1].pvalue == pytest.approx(float(ref.pvalue)) and report.tests[1].df == pytest.approx(float(ref.df))
    bad = sample_from_values([1.1990, 1.2002, 1.1998, 1.2003], "bad")
    bad.ratio = 0.59
    report = compare(bad, base)
    assert report.decision("readme") == "not significant" and report.decision("leaderboard") == "not significant"
    assert {c.check_id: c.status for c in report.checks} == {"GA-SIG-001": Status.FAIL, "GA-SIG-002": Status.FAIL}


def test_leaderboard_rule_is_looser() -> None:
    base = sample_from_values([1.2000, 1.2010, 1.1990], "base")
    cand = sample_from_values([1.1990, 1.2000, 1.1985], "cand")
    cand.ratio = 0.59
    report = compare(cand, base)
    assert report.decision("leaderboard") == "significant" and report.decision("readme") == "not significant"
    board = next(t for t in report.tests if t.rule == "leaderboard")
    assert board.alpha == 0.25 and board.margin_bpb == 0


def test_small_n_warnings_and_cannot_test() -> None:
    base = sample_from_values([1.20, 1.21, 1.19], "base")
    cand = sample_from_values([1.10, 1.11, 1.09], "cand")
    cand.ratio = 0.59
    report = compare(cand, base)
    assert any("3-vs-3 permutation test cannot go below p = 0.05" in w for w in report.warnings)
    # The caveat applies (the README rule passes on the t-test alone): it is shown as evidence,
    # the statistical verdict stays a pass.
    assert report.checks[0].status == Status.PASS
    assert any("permutation" in e.message for e in report.checks[0].evidence)
    losing = compare(sample_from_values([1.30, 1.31, 1.29], "worse"), base)
    assert not any("permutation" in w for w in losing.warnings)  # only where it applies
    single = compare(sample_from_values([1.1]), baseline_mean=1.2, rules=["leaderboard"])
    assert single.decision("leaderboard") == "cannot test"
    # One run cannot show significance: the rule fails (GROUND_TRUTH METHOD), it is not an error.
    assert single.checks[1].status == Status.FAIL and "cannot be shown" in single.checks[1].summary
    flat = compare(sample_from_values([1.1, 1.1]), baseline_mean=1.2, rules=["leaderboard"])
    assert flat.checks[1].status == Status.ERROR  # two identical runs: no spread, cannot conclude


def test_readme_rule_needs_ratio() -> None:
    report = compare(sample_from_values([1.1, 1.11]), baseline_mean=1.2, rules=["readme"])
    assert report.tests == [] and report.decision("readme") == "not run"
    assert any("--ratio" in w for w in report.warnings)


def test_seeds_needed() -> None:
    assert seeds_needed(effect=-0.01, std=0.001, alpha=0.01) is None
    n = seeds_needed(effect=0.001, std=0.001, alpha=0.01)
    assert n is not None and math.sqrt(n) >= st.t.ppf(0.99, n - 1) and math.sqrt(n - 1) < st.t.ppf(0.99, n - 2)
    assert seeds_needed(0.001, 0.001, 0.01, power=0.8) > n


def test_compare_rejects_missing_inputs() -> None:
    with pytest.raises(BadInput):
        compare(sample_from_values([1.1, 1.2]))
    with pytest.raises(BadInput):
        sample_from_values([float("nan")])


def test_folder_warnings_best_k_of_n() -> None:
    warnings = folder_warnings(read_folder(RECORDS / "bad_seeds"))
    assert any("best-3-of-4" in w for w in warnings)
    assert any("more runs than reported" in w for w in warnings)
    assert folder_warnings(read_folder(RECORDS / "good_3seed")) == []


def test_compare_folders() -> None:
    report = compare_folders(RECORDS / "good_3seed", RECORDS / "bad_seeds")
    # seed 42's claim is backed by train_seed42.log (which prints seed 1337): three backing runs
    assert report.candidate.n == 3 and report.baseline.n == 3
    assert {c.check_id for c in report.checks} == {"GA-SIG-001", "GA-SIG-002"}


def test_walk_tree_orders_and_tests(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(RECORDS / "bad_seeds", tmp_path / "2026-03-01_Old")
    shutil.copytree(RECORDS / "good_3seed", tmp_path / "2026-03-05_New")
    # Order by PR number, not by the folder's date: "New" was opened first.
    rows = walk_tree(tmp_path, order={"2026-03-01_Old": 20, "2026-03-05_New": 10})
    assert [r.folder for r in rows] == ["2026-03-05_New", "2026-03-01_Old"]
    assert rows[0].readme == "first" and rows[1].leader == "2026-03-05_New" and rows[1].leader_pr == 10
    unknown = walk_tree(tmp_path)  # no git, no declaration, no order: said, never guessed
    assert all(r.order_unknown and r.readme == "order unknown" for r in unknown)


# ------------------------------------------------------------------ CLI


def test_cli_values_and_mean() -> None:
    args = ["significance", "--values", "1.2058,1.2062", "--values", "1.2072", "--baseline-mean", "1.2243657",
            "--margin-units", "bpb", "--rule", "readme"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "one-sample t-test" in result.output and "significant" in result.output


def test_cli_json_schema_and_exit_1() -> None:
    args = ["significance", "--values", "1.20,1.21,1.19", "--ratio", "0.59", "--baseline-values", "1.20,1.201,1.199", "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == "1.0" and doc["decisions"] == {"readme": "not significant", "leaderboard": "not significant"}
    test = doc["tests"][0]
    assert {"test", "alternative", "n", "mean", "std", "statistic", "df", "pvalue", "confidence_interval",
            "margin_nats", "margin_bpb", "decision"} <= set(test)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["significance"],  # no candidate
        ["significance", "--values", "1.1,1.2"],  # no baseline
        ["significance", "--values", "1.1,x", "--baseline-mean", "1.2"],
        ["significance", "--values", "1.1,1.2", "--baseline-mean", "1.2", "--baseline-values", "1.2,1.3"],
        ["significance", "/nonexistent", "--baseline-mean", "1.2"],
    ],
)
def test_cli_bad_input(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_cli_cannot_test_is_exit_2() -> None:
    result = runner.invoke(app, ["significance", "--values", "1.1", "--baseline-mean", "1.2", "--rule", "leaderboard"])
    assert result.exit_code == 2, result.output


def test_cli_folders_markdown() -> None:
    result = runner.invoke(app, ["significance", str(RECORDS / "good_3seed"), "--baseline", str(RECORDS / "bad_seeds"), "-f", "markdown"])
    assert result.exit_code in (0, 1), result.output
    assert "| Rule | Test |" in result.output


def test_cli_all_on_real_tree(shared_dir: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from records_truth import order_mapping

    tree = shared_dir / "records" / "track_10min_16mb"
    # Not a git checkout and no PR declared: the order is unknown, nothing is tested (exit 2).
    unknown = runner.invoke(app, ["significance", "--all", str(tree), "-f", "json"])
    assert unknown.exit_code == 2, unknown.output
    assert all(r["order_unknown"] for r in json.loads(unknown.stdout)["rows"])
    order = tmp_path / "order.json"
    order.write_text(json.dumps(order_mapping(shared_dir)))
    result = runner.invoke(app, ["significance", "--all", str(tree), "--order", str(order), "-f", "json"])
    assert result.exit_code == 1, result.output  # single-run records cannot show significance: a rule fails
    rows = json.loads(result.stdout)["rows"]
    assert len(rows) >= 35 and rows[0]["folder"] == "2026-03-17_NaiveBaseline" and rows[0]["pr"] == 0
    prs = [r["pr"] for r in rows]
    assert prs == sorted(prs)
    # Two folders of PR #39 are simultaneous: neither is the other's baseline.
    by_name = {r["folder"]: r for r in rows}
    assert by_name["2026-03-18_LowerLR"]["leader"] == "2026-03-17_NaiveBaseline"
    assert by_name["2026-03-19_10L_MixedPrecision"]["leader"] == "2026-03-17_NaiveBaseline"
