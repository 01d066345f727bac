"""Time limits from the logs: training ≤ 600 s and evaluation ≤ 600 s, per seed.

Training time is the ``stopping_early`` line's ``train_time`` (else the last step line's).
Scripts check the wall-clock cap between steps, so a run stops a step or so *after* 600 s:
the seed PR's own baseline logs 600,038 ms. An overrun within OVERRUN_SLACK (two average
steps, at least 1 s) is a warning; beyond it a failure. Evaluation time is the logged ``total_eval_time`` when there is one, else
the sum of the final evaluation lines' ``eval_time`` (an estimate, said so in the evidence).
Non-record tracks have no time limit: the checks are not applicable there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..findings import CheckResult, Evidence, Severity, Status, worst
from ..records import RecordFolder, read_folder

TRAIN_LIMIT_S = 600.0
EVAL_LIMIT_S = 600.0


def overrun_slack_s(step_avg_ms: float | None) -> float:
    """How far past the cap a run may stop because the cap is checked between steps."""
    return max(2.0 * (step_avg_ms or 0.0) / 1000.0, 1.0)


@dataclass
class SeedTimes:
    seed: int | None
    log: str
    train_s: float | None = None
    train_line: int | None = None
    step_avg_ms: float | None = None
    eval_s: float | None = None
    eval_line: int | None = None
    eval_source: str = ""  # "total_eval_time" or "sum of N eval_time values"


@dataclass
class TimeReport:
    folder: Path
    seeds: list[SeedTimes] = field(default_factory=list)
    non_record: bool = False
    checks: list[CheckResult] = field(default_factory=list)


def _is_non_record(record: RecordFolder) -> bool:
    track = (record.submission.track or "") if record.submission else ""
    where = " ".join(record.path.resolve().parts[-3:])
    return "non_record" in where or "non-record" in track or "non_record" in track


def _seed_times(record: RecordFolder) -> list[SeedTimes]:
    pairs = [(r.seed, r.log) for r in record.runs] or [(log.seed, log) for log in record.logs]
    rows = []
    for seed, log in pairs:
        row = SeedTimes(seed, str(log.path.relative_to(record.path)) if log.path.is_relative_to(record.path) else log.path.name)
        if log.train_time_ms is not None:
            row.train_s, row.train_line = log.train_time_ms / 1000.0, log.train_time_line
        avgs = [s.step_avg_ms for s in log.steps if s.step_avg_ms is not None]
        row.step_avg_ms = avgs[-1] if avgs else None
        if log.total_eval_time_s is not None:
            row.eval_s, row.eval_line, row.eval_source = log.total_eval_time_s, log.total_eval_time_line, "total_eval_time"
        else:
            timed = [f for f in log.finals if f.eval_time_ms is not None]
            if timed:
                row.eval_s = sum(f.eval_time_ms for f in timed) / 1000.0  # type: ignore[misc]
                row.eval_line = timed[-1].line
                row.eval_source = f"sum of {len(timed)} eval_time value(s)"
        rows.append(row)
    return rows


def _train_check(rows: list[SeedTimes], non_record: bool) -> CheckResult:
    title, rule = "Training ≤ 600 s", "Training runs in ≤ 600 s on 8×H100"
    ev, statuses = [], []
    for r in rows:
        if r.train_s is None:
            statuses.append(Status.NOT_RUN)
            ev.append(Evidence(f"seed {r.seed}: no train_time in the log", file=r.log))
            continue
        slack = overrun_slack_s(r.step_avg_ms)
        status = Status.PASS if r.train_s <= TRAIN_LIMIT_S else Status.WARN if r.train_s <= TRAIN_LIMIT_S + slack else Status.FAIL
        statuses.append(status)
        note = {Status.PASS: "within the limit", Status.WARN: f"over by {r.train_s - TRAIN_LIMIT_S:.3f} s, within {slack:.2f} s (the cap is checked between steps)",
                Status.FAIL: "over the limit"}[status]  # fmt: skip
        ev.append(Evidence(f"seed {r.seed}: {note}", file=r.log, line=r.train_line, value=round(r.train_s, 3),
                           threshold=TRAIN_LIMIT_S, unit="s"))  # fmt: skip
    return _combine("GA-TIME-001", title, rule, statuses, ev, non_record, rows, "train")


def _eval_check(rows: list[SeedTimes], non_record: bool) -> CheckResult:
    title, rule = "Evaluation ≤ 600 s", "Evaluation runs in a separate ≤ 600 s budget"
    ev, statuses = [], []
    for r in rows:
        if r.eval_s is None:
            statuses.append(Status.NOT_RUN)
            ev.append(Evidence(f"seed {r.seed}: no evaluation time in the log", file=r.log))
            continue
        status = Status.PASS if r.eval_s <= EVAL_LIMIT_S else Status.FAIL
        statuses.append(status)
        ev.append(Evidence(f"seed {r.seed}: {r.eval_source}", file=r.log, line=r.eval_line, value=round(r.eval_s, 3),
                           threshold=EVAL_LIMIT_S, unit="s"))  # fmt: skip
    return _combine("GA-TIME-002", title, rule, statuses, ev, non_record, rows, "eval")


def _combine(check_id: str, title: str, rule: str, statuses: list[Status], ev: list[Evidence], non_record: bool,
             rows: list[SeedTimes], what: str) -> CheckResult:  # fmt: skip
    values = [getattr(r, f"{what}_s") for r in rows if getattr(r, f"{what}_s") is not None]
    data = {"limit_s": TRAIN_LIMIT_S if what == "train" else EVAL_LIMIT_S, "max_s": max(values, default=None),
            "per_seed": {str(r.seed): getattr(r, f"{what}_s") for r in rows}}  # fmt: skip
    if non_record:
        return CheckResult(check_id, title, Status.NOT_APPLICABLE, "non-record track: no time limit", Severity.ERROR, rule,
                           evidence=ev, data=data)  # fmt: skip
    if not rows:
        return CheckResult(check_id, title, Status.NOT_RUN, "no train logs", Severity.ERROR, rule)
    status = worst(statuses)
    if status == Status.NOT_RUN and Status.PASS in statuses:
        status = Status.WARN  # some seeds could not be checked: never a plain pass
    summary = {
        Status.PASS: f"every seed within {data['limit_s']:.0f} s (max {max(values):.1f} s)",
        Status.WARN: "a seed stops just past the limit (the cap is checked between steps), or some seeds are not timed",
        Status.FAIL: f"a seed takes {max(values):.1f} s, over the {data['limit_s']:.0f} s limit" if values else "over the limit",
        Status.NOT_RUN: f"no {what} time in any log",
    }[status]
    return CheckResult(check_id, title, status, summary, Severity.ERROR, rule, evidence=ev, data=data)


def audit_time_limits(folder: str | Path | RecordFolder) -> TimeReport:
    """Per-seed training and evaluation times; ``.checks`` holds GA-TIME-001 and GA-TIME-002."""
    record = folder if isinstance(folder, RecordFolder) else read_folder(folder)
    report = TimeReport(folder=record.path, seeds=_seed_times(record), non_record=_is_non_record(record))
    report.checks = [_train_check(report.seeds, report.non_record), _eval_check(report.seeds, report.non_record)]
    return report
