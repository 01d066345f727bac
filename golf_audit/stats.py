"""Seed significance under the challenge's two rules, computed with scipy.stats only.

* README rule (for a new record): the improvement is ≥ 0.005 **nats** at p < 0.01. The margin is
  converted to bpb with the *candidate's own* bpb/nats ratio (tokenizers differ, so nats are the
  comparable unit). Tests, one-sided (H1: the candidate is lower):
  - one-sample t-test of the candidate's per-seed val_bpb against ``baseline mean − margin``;
  - Welch's t-test of candidate vs baseline seeds shifted by the margin, when baseline seeds exist
    (this one decides, since it accounts for the baseline's own noise).
* Leaderboard rule (late in the challenge): one-sided Welch's t-test on per-seed val_bpb against
  the previous leader's seeds, no margin, p < 0.25 (a one-sample test against the leader's mean
  when only the mean is known).

Assumptions, stated in every result: seeds are independent draws and per-seed val_bpb is
roughly normal. With few seeds a distribution-free test could not reach alpha at all; that is
reported as a warning (e.g. 3-vs-3 permutation test: min p = 1/20 = 0.05).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import BadInput
from .findings import CheckResult, Evidence, Severity, Status
from .records import RecordFolder, read_folder

from .output import SCHEMA_VERSION


class _LazyScipyStats:
    """scipy.stats, imported on first use: `report` on one folder needs no t-test (fast start-up)."""

    def __getattr__(self, name: str):
        from scipy import stats

        return getattr(stats, name)


st = _LazyScipyStats()
MARGIN_NATS = 0.005
README_ALPHA = 0.01
LEADERBOARD_ALPHA = 0.25
RULES = ("readme", "leaderboard")
ASSUMPTIONS = "independent seeds; per-seed val_bpb approximately normal"


@dataclass
class Sample:
    """Per-seed val_bpb of one side of a comparison, with where it came from."""

    label: str
    values: dict[str, float]  # seed (as text; "v1".. for raw values) -> val_bpb
    ratio: float | None = None  # bpb per nat (val_bpb / val_loss) of this side
    source: str = ""
    claimed_mean: float | None = None  # the JSON's val_bpb, if any
    date: str = ""

    @property
    def array(self) -> np.ndarray:
        return np.array(list(self.values.values()), dtype=np.float64)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.array)) if self.n else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.array, ddof=1)) if self.n > 1 else float("nan")


@dataclass
class TestResult:
    """One hypothesis test, reported the way scipy reports it."""

    rule: str  # "readme" or "leaderboard"
    test: str  # "one-sample t-test" | "Welch two-sample t-test"
    alternative: str  # in words, e.g. "mean(candidate) < 1.2194 (baseline mean − margin)"
    n: int
    mean: float
    std: float
    n_baseline: int | None
    mean_baseline: float | None
    std_baseline: float | None
    null_value: float  # popmean (one-sample) or the margin the difference must beat (Welch)
    statistic: float | None
    df: float | None
    pvalue: float | None
    ci_low: float | None  # one-sided (1 − alpha) CI of the mean (one-sample) or of the difference (Welch)
    ci_high: float | None
    alpha: float
    margin_nats: float
    margin_bpb: float
    decision: str  # "significant", "not significant", "cannot test"
    decides: bool = True  # whether this test makes the rule's decision
    assumptions: str = ASSUMPTIONS
    seeds_needed: int | None = None  # seeds for the expected t to reach alpha at the observed effect/std
    seeds_for_80_power: int | None = None
    note: str = ""

    @property
    def significant(self) -> bool:
        return self.decision == "significant"


@dataclass
class SignificanceReport:
    """A candidate against a baseline under one or both rules."""

    candidate: Sample
    baseline: Sample | None
    baseline_mean: float
    ratio: float | None
    ratio_source: str
    margin_units: str
    rules: list[str]
    tests: list[TestResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    def decision(self, rule: str) -> str:
        deciding = [t for t in self.tests if t.rule == rule and t.decides]
        return deciding[0].decision if deciding else "not run"


# ----------------------------------------------------------------------------- statistics


def _f(x: object) -> float | None:
    """A plain float (numpy scalars cast), None for nan."""
    if x is None:
        return None
    value = float(x)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def seeds_needed(effect: float, std: float, alpha: float, power: float | None = None, limit: int = 1000) -> int | None:
    """Smallest n whose one-sample t-test reaches ``alpha`` at the observed effect (> 0) and std.

    ``power=None``: the n where the *expected* t (effect/std·√n) crosses the critical value;
    ``power=0.8``: the n where a noncentral-t test has an 80 % chance to reach alpha.
    """
    if not (effect > 0 and std > 0 and math.isfinite(effect) and math.isfinite(std)):
        return None if not effect > 0 else 2
    d = effect / std
    for n in range(2, limit + 1):
        crit = st.t.ppf(1 - alpha, n - 1)
        if power is None:
            if d * math.sqrt(n) >= crit:
                return n
        elif st.nct.sf(crit, n - 1, d * math.sqrt(n)) >= power:
            return n
    return None


def one_sample_test(values: Sequence[float], popmean: float, alpha: float) -> tuple[float | None, float | None, float | None, float | None]:
    """(statistic, df, pvalue, CI high) of the one-sided test mean < popmean."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or np.std(x, ddof=1) == 0:
        return None, None, None, None
    res = st.ttest_1samp(x, popmean, alternative="less")
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return _f(res.statistic), _f(res.df), _f(res.pvalue), _f(ci.high)


def welch_test(candidate: Sequence[float], baseline: Sequence[float], margin: float, alpha: float) -> tuple[float | None, float | None, float | None, float | None]:
    """(statistic, df, pvalue, CI high of mean(c) − mean(b)) of the one-sided test mean(c) − mean(b) < −margin."""
    c, b = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if c.size < 2 or b.size < 2 or (np.std(c, ddof=1) == 0 and np.std(b, ddof=1) == 0):
        return None, None, None, None
    # Shifting the candidate by the margin turns "diff < −margin" into scipy's "diff < 0".
    res = st.ttest_ind(c + margin, b, equal_var=False, alternative="less")
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return _f(res.statistic), _f(res.df), _f(res.pvalue), (_f(ci.high) - margin if _f(ci.high) is not None else None)


def _decision(p: float | None, alpha: float) -> str:
    if p is None:
        return "cannot test"
    return "significant" if p < alpha else "not significant"


def _one_sample(rule: str, cand: Sample, base_mean: float, margin_nats: float, margin_bpb: float, alpha: float,
                base: Sample | None, decides: bool) -> TestResult:  # fmt: skip
    target = base_mean - margin_bpb
    stat, df, p, hi = one_sample_test(list(cand.values.values()), target, alpha)
    effect, std = target - cand.mean, cand.std
    note = "" if p is not None else ("needs ≥ 2 seeds" if cand.n < 2 else "all seeds identical: the t statistic is undefined")
    return TestResult(
        rule, "one-sample t-test", f"mean(candidate) < {target:.8f} (baseline mean {base_mean:.8f} − margin {margin_bpb:.6f} bpb)",
        cand.n, cand.mean, std, base.n if base else None, base_mean, base.std if base and base.n > 1 else None, target,
        stat, df, p, None if p is None else -math.inf, hi, alpha, margin_nats, margin_bpb, _decision(p, alpha), decides,
        seeds_needed=seeds_needed(effect, std, alpha), seeds_for_80_power=seeds_needed(effect, std, alpha, 0.8), note=note,
    )  # fmt: skip


def _welch(rule: str, cand: Sample, base: Sample, margin_nats: float, margin_bpb: float, alpha: float, decides: bool) -> TestResult:
    stat, df, p, hi = welch_test(list(cand.values.values()), list(base.values.values()), margin_bpb, alpha)
    pooled = math.sqrt((cand.std**2 + base.std**2) / 2) if cand.n > 1 and base.n > 1 else float("nan")
    effect = base.mean - margin_bpb - cand.mean
    note = "" if p is not None else "needs ≥ 2 seeds on each side with some spread"
    return TestResult(
        rule, "Welch two-sample t-test", f"mean(candidate) − mean(baseline) < −{margin_bpb:.6f} bpb",
        cand.n, cand.mean, cand.std, base.n, base.mean, base.std, -margin_bpb, stat, df, p,
        None if p is None else -math.inf, hi, alpha, margin_nats, margin_bpb, _decision(p, alpha), decides,
        seeds_needed=seeds_needed(effect, pooled * math.sqrt(2), alpha), note=note,
    )  # fmt: skip


def _permutation_floor(n: int, m: int | None) -> float:
    """The smallest p an exact permutation (or sign-flip, one-sample) test can give."""
    if m:
        return 1.0 / math.comb(n + m, n)
    return 1.0 / 2**n


def compare(candidate: Sample, baseline: Sample | None = None, *, baseline_mean: float | None = None,
            rules: Sequence[str] = RULES, margin_units: str = "nats", baseline_ratio: float | None = None,
            ratio: float | None = None) -> SignificanceReport:  # fmt: skip
    """Test ``candidate`` against a baseline (its seeds, or just its mean) under ``rules``."""
    rules = [r for r in RULES if r in rules]
    if not rules:
        raise BadInput("no rule selected (readme, leaderboard)")
    if baseline is None and baseline_mean is None:
        raise BadInput("a baseline is needed: --baseline FOLDER, --baseline-mean X or --baseline-values")
    if candidate.n == 0:
        raise BadInput(f"{candidate.label}: no per-seed val_bpb values")
    if baseline is not None and baseline.n == 0 and baseline_mean is None:
        raise BadInput(f"{baseline.label}: no per-seed val_bpb values")
    base_mean = baseline_mean if baseline_mean is not None else baseline.mean  # type: ignore[union-attr]
    ratio_used, ratio_source = ratio, "--ratio"
    if ratio_used is None:
        ratio_used, ratio_source = candidate.ratio, f"candidate's own val_bpb/val_loss ({candidate.source})"
    if ratio_used is None and baseline_ratio is not None:
        ratio_used, ratio_source = baseline_ratio, "baseline's val_bpb/val_loss (candidate's unknown: same tokenizer assumed)"
    report = SignificanceReport(candidate, baseline, base_mean, ratio_used, ratio_source if ratio_used else "unknown",
                                margin_units, list(rules))  # fmt: skip
    if "readme" in rules:
        if margin_units == "bpb":
            margin_bpb = MARGIN_NATS
            report.warnings.append("margin applied as 0.005 bpb (--margin-units bpb): the README rule is 0.005 nats")
        elif ratio_used is None:
            margin_bpb = math.nan
            report.warnings.append("README rule not tested: the candidate's bpb/nats ratio is unknown (no val_loss); pass --ratio")
        else:
            margin_bpb = MARGIN_NATS * ratio_used
        if not math.isnan(margin_bpb):
            has_seeds = baseline is not None and baseline.n >= 2
            report.tests.append(_one_sample("readme", candidate, base_mean, MARGIN_NATS, margin_bpb, README_ALPHA, baseline, not has_seeds))
            if has_seeds:
                report.tests.append(_welch("readme", candidate, baseline, MARGIN_NATS, margin_bpb, README_ALPHA, True))  # type: ignore[arg-type]
    if "leaderboard" in rules:
        if baseline is not None and baseline.n >= 2:
            report.tests.append(_welch("leaderboard", candidate, baseline, 0.0, 0.0, LEADERBOARD_ALPHA, True))
        else:
            t = _one_sample("leaderboard", candidate, base_mean, 0.0, 0.0, LEADERBOARD_ALPHA, baseline, True)
            t.note = (t.note + "; " if t.note else "") + "baseline seeds unknown: one-sample test against its mean"
            report.tests.append(t)
    _sample_warnings(report)
    report.checks = _checks(report)
    return report


def _sample_warnings(report: SignificanceReport) -> None:
    c, b = report.candidate, report.baseline
    m = b.n if b is not None and b.n >= 2 else None
    floor = _permutation_floor(c.n, m)
    readme_pass = any(t.rule == "readme" and t.decides and t.decision == "significant" for t in report.tests)
    # Only where it matters: a t-test that passes the README rule on too few runs for any
    # distribution-free test to agree.
    if floor >= README_ALPHA and "readme" in report.rules and readme_pass:
        what = f"{c.n}-vs-{m} permutation test" if m else f"{c.n}-seed sign-flip test"
        report.warnings.append(
            f"n too small for a distribution-free test ever to reach p < {README_ALPHA}: a {what} cannot go below "
            f"p = {floor:.4g}; the t-test's p relies on normality"
        )  # fmt: skip

    if c.claimed_mean is not None and c.n and abs(c.claimed_mean - c.mean) > 5e-5 and all(abs(c.claimed_mean - v) > 5e-5 for v in c.values.values()):
        report.warnings.append(f"{c.label}: submission.json val_bpb {c.claimed_mean} is not the mean of the seeds used ({c.mean:.8f})")


def _checks(report: SignificanceReport) -> list[CheckResult]:
    out = []
    for rule, check_id, title, alpha in (("readme", "GA-SIG-001", "README rule: ≥ 0.005 nats at p < 0.01", README_ALPHA),
                                         ("leaderboard", "GA-SIG-002", "Leaderboard rule: Welch p < 0.25", LEADERBOARD_ALPHA)):  # fmt: skip
        tests = [t for t in report.tests if t.rule == rule]
        rule_text = {"readme": "Beat the SOTA by ≥ 0.005 nats at p < 0.01",
                     "leaderboard": "One-sided Welch t-test on per-seed val_bpb vs the previous leader, p < 0.25"}[rule]  # fmt: skip
        if rule not in report.rules:
            out.append(CheckResult(check_id, title, Status.NOT_RUN, "rule not selected", Severity.ERROR, rule_text))
            continue
        ev = [Evidence(f"{t.test}: t = {_fmt(t.statistic)}, df = {_fmt(t.df)}, p = {format_p(t.pvalue)} ({t.decision}"
                       f"{'' if t.decides else ', reported only'}){'; ' + t.note if t.note else ''}",
                       value=t.pvalue, threshold=alpha) for t in tests]  # fmt: skip
        ev += [Evidence(w) for w in report.warnings]
        decision = report.decision(rule)
        deciding = next((t for t in tests if t.decides), None)
        p_text = f" (p = {format_p(deciding.pvalue)}, needs < {alpha:g})" if deciding and deciding.pvalue is not None else ""
        if decision == "cannot test" and report.candidate.n < 2:
            # One run has no variance: the rule asks the submitter to *show* p < alpha, and one run cannot.
            status, summary = Status.FAIL, f"{report.candidate.n} run: significance cannot be shown (a t-test needs ≥ 2 runs)"
        else:
            status = {"significant": Status.PASS, "not significant": Status.FAIL}.get(decision, Status.ERROR if tests else Status.NOT_RUN)
            summary = {"significant": f"the improvement is significant{p_text}",
                       "not significant": f"the improvement is not significant{p_text}",
                       "cannot test": "cannot test (all runs identical: no spread)"}.get(decision, "not tested")  # fmt: skip
        # Caveats are evidence for the reviewer; they do not turn a statistical verdict into a warning
        # (seed-selection problems are GA-SEED-001's verdict).
        data = {"tests": [_test_dict(t) for t in tests], "warnings": list(report.warnings)}
        out.append(CheckResult(check_id, title, status, summary, Severity.ERROR, rule_text, evidence=ev, data=data))
    return out


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def format_p(p: float | None) -> str:
    """A p-value with enough digits to tell 0.9997 from 1 and 0.0098 from 0.01."""
    if p is None:
        return "—"
    if p == 0:
        return "0"
    if p < 1e-4:
        return f"{p:.2e}"
    if p > 0.999:
        return "> 0.999999" if p > 0.9999995 else f"{p:.6f}".rstrip("0")
    return f"{p:.4f}" if p >= 0.001 else f"{p:.6f}"


def _test_dict(t: TestResult) -> dict:
    from dataclasses import asdict

    d = asdict(t)
    d["confidence_interval"] = [t.ci_low, t.ci_high]
    del d["ci_low"], d["ci_high"]
    return d


# ----------------------------------------------------------------------------- inputs


def sample_from_folder(folder: str | Path | RecordFolder) -> Sample:
    """Per-seed val_bpb of a records folder (headlines from its logs, else its JSON)."""
    record = folder if isinstance(folder, RecordFolder) else read_folder(folder)
    values = record.seed_values("val_bpb")
    sub = record.submission
    return Sample(label=record.name, values={str(k): v for k, v in values.items()}, ratio=record.bpb_loss_ratio,
                  source=record.values_source, claimed_mean=sub.val_bpb if sub else None, date=record.date)  # fmt: skip


def sample_from_values(values: Sequence[float], label: str = "values") -> Sample:
    clean = [float(v) for v in values]
    if not all(math.isfinite(v) for v in clean):
        raise BadInput("--values must be finite numbers")
    return Sample(label=label, values={f"v{i + 1}": v for i, v in enumerate(clean)}, source="--values")


_BEST_OF = re.compile(r"best\s+(\d+)\s+(?:of|out of)\s+(\d+)", re.I)


def folder_warnings(record: RecordFolder) -> list[str]:
    """Red flags of a folder's seed evidence: best-k-of-n, seeds that do not match."""
    out = []
    kinds = {"unclaimed-log": "more runs than reported", "seed-mismatch": "log seed ≠ file name",
             "missing-log": "claimed seed without a log", "repeated-seed": "seed repeated",
             "value-mismatch": "JSON value ≠ log"}  # fmt: skip
    for d in record.discrepancies:
        if d.kind in kinds:
            out.append(f"{record.name}: {kinds[d.kind]}: {d.message}")
    readme = record.path / "README.md"
    if readme.is_file():
        try:
            text = readme.read_text("utf-8", errors="replace")[:200_000]
        except OSError:
            text = ""
        for m in _BEST_OF.finditer(text):
            if int(m.group(2)) > int(m.group(1)):
                out.append(f"{record.name}: README discloses best-{m.group(1)}-of-{m.group(2)} seed reporting")
                break
    return out


def compare_folders(candidate: str | Path, baseline: str | Path, rules: Sequence[str] = RULES, margin_units: str = "nats") -> SignificanceReport:
    """Both rules for a candidate folder against a baseline folder (what ``report`` calls)."""
    cand_rec, base_rec = read_folder(candidate), read_folder(baseline)
    cand, base = sample_from_folder(cand_rec), sample_from_folder(base_rec)
    if base.n == 0:
        raise BadInput(f"{base_rec.name}: no per-seed val_bpb values in its logs or submission.json")
    report = compare(cand, base, rules=rules, margin_units=margin_units, baseline_ratio=base.ratio)
    extra = folder_warnings(cand_rec)
    if extra:
        report.warnings.extend(extra)
        report.checks = _checks(report)
    return report


@dataclass
class TreeRow:
    """One folder of a chronological walk, tested against the best record before it."""

    folder: str
    date: str
    n: int
    mean: float | None
    leader: str | None
    leader_mean: float | None
    readme: str
    readme_p: float | None
    leaderboard: str
    leaderboard_p: float | None
    new_leader: bool
    warnings: list[str] = field(default_factory=list)
    pr: int | None = None  # the PR that added the folder (0: launch snapshot; None: unknown)
    pr_source: str = ""  # git / readme / submission.json / order-file / "" (unknown)
    pr_evidence: str = ""
    leader_pr: int | None = None
    order_unknown: bool = False  # the folder's place in the chronology is unknown: nothing was tested
    required: bool = True  # significance is required (record track); not for non-record submissions

    @property
    def failed(self) -> bool:
        """An error-severity significance rule fails for a record that must show significance."""
        return self.required and self.leader is not None and "not significant" in (self.readme, self.leaderboard) or (
            self.required and self.leader is not None and self.n == 1)


def _non_record(record: RecordFolder) -> bool:
    track = (record.submission.track or "") if record.submission else ""
    where = " ".join(record.path.resolve().parts[-3:])
    return "non_record" in where or "non-record" in track or "non_record" in track


def walk_tree(tree: str | Path, margin_units: str = "nats", order: dict[str, int] | None = None) -> list[TreeRow]:
    """Every records folder of a track in PR order, each against the best record before it.

    The order is the PR number that added each folder (``records.chronology``: git merge
    commits, else an explicit README/submission.json declaration, else ``order``). Folders of
    the same PR are simultaneous (neither is the other's baseline). A folder whose PR number is
    unknown is listed with ``order_unknown`` and not tested: a date prefix is the author's
    choice, not the submission order, so it is never used to pretend an order.
    """
    from .records import list_record_folders
    from .records.chronology import folder_pr_number

    records = [read_folder(p) for p in list_record_folders(tree)]
    numbered = [(folder_pr_number(r.path, order=order), r) for r in records]
    known = sorted(((pr, r) for pr, r in numbered if pr is not None), key=lambda t: (t[0].number, t[1].name))
    samples = {id(r): sample_from_folder(r) for _, r in known}
    rows: list[TreeRow] = []
    for pr, record in known:
        sample = samples[id(record)]
        # Same track only (the folder's parent); a smaller PR number only (same PR: simultaneous).
        earlier = [(p, r) for p, r in known if p.number < pr.number and samples[id(r)].n > 0 and r.path.parent == record.path.parent]
        leader = min(earlier, key=lambda t: samples[id(t[1])].mean) if earlier else None
        row = TreeRow(record.name, record.date, sample.n, sample.mean if sample.n else None,
                      leader[1].name if leader else None, samples[id(leader[1])].mean if leader else None,
                      "first", None, "first", None, False, pr=pr.number, pr_source=pr.source, pr_evidence=pr.evidence,
                      leader_pr=leader[0].number if leader else None)  # fmt: skip
        if sample.n == 0:
            row.readme = row.leaderboard = "no values"
            row.warnings.append("no per-seed val_bpb")
        elif leader is not None:
            lead = samples[id(leader[1])]
            report = compare(sample, lead, margin_units=margin_units, baseline_ratio=lead.ratio)
            tests = {t.rule: t for t in report.tests if t.decides}
            readme, board = tests.get("readme"), tests.get("leaderboard")
            row.readme, row.readme_p = (readme.decision, readme.pvalue) if readme else ("not tested", None)
            row.leaderboard, row.leaderboard_p = (board.decision, board.pvalue) if board else ("not tested", None)
            row.warnings = report.warnings + folder_warnings(record)
        best_before = min((samples[id(r)].mean for p, r in known
                           if p.number < pr.number and samples[id(r)].n and r.path.parent == record.path.parent), default=None)
        row.required = not _non_record(record)
        row.new_leader = bool(sample.n) and (best_before is None or sample.mean < best_before)
        rows.append(row)
    for pr, record in numbered:
        if pr is None:
            sample = sample_from_folder(record)
            rows.append(TreeRow(record.name, record.date, sample.n, sample.mean if sample.n else None, None, None,
                                "order unknown", None, "order unknown", None, False,
                                ["chronological order unknown: not in a git checkout, no PR number declared in README or "
                                 "submission.json, not in --order"], order_unknown=True))  # fmt: skip
    return rows

