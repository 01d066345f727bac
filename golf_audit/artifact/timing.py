"""Time limits from the logs: training ≤ 600 s and evaluation ≤ 600 s, per backing run.

* GA-TIME-001 training: the ``stopping_early`` line's ``train_time`` (else the last step line's).
  Scripts check the wall-clock cap between steps, so a run stops a step or so *after* 600 s (the
  seed PR's own baseline logs 600,038 ms; every early record does it). A stop within
  OVERRUN_SLACK (two mean steps, at least 1 s) past 600 s is a note on a pass, not a failure;
  beyond it a failure. A run configured without the cap (``max_wallclock_seconds`` 0 or > 600)
  or on fewer than 8 GPUs fails: its time says nothing about 8×H100 in 600 s.
* GA-TIME-002 evaluation: the scored metric's own ``eval_time`` (or its non-exact twin's), plus
  every post-training step the score depends on that is not training: adaptation on validation
  tokens before scoring (pre-quantization TTT) and calibration time beyond the training budget.
  Without a headline eval_time: ``total_eval_time``, else the sum of the final lines (an
  estimate, said so).
* GA-TIME-003 training data after the stop: GPTQ calibration that reads *training* shards after
  the training loop is eval-time training data (DOMAIN.md §4, PR #606). Rule, chosen so that both
  the ruling and the accepted records come out right: a script that stops its loop at the full
  600 s and then reads training data fails; a script that reserves time for calibration (its
  loop stops at 600 s − reserve) passes when loop + calibration ≤ 600 s, and warns when the
  calibration overran the reserve (accepted records overran by 0.7–4.3 s; the maintainers took
  them, and asked one lineage to rerun with a larger reserve). Self-generated calibration data
  reads no training data and passes at any time.

Non-record tracks have no time limit: the checks are not applicable there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..findings import CheckResult, Evidence, Severity, Status, worst
from ..records import FinalLine, RecordFolder, TrainLog, read_folder
from ..records.dataflow import SELF, TRAIN, VAL, CalibrationSite

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
    eval_source: str = ""  # "eval_time of <metric>", "total_eval_time" or "sum of N eval_time values"
    world_size: int | None = None
    world_size_line: int | None = None
    max_wallclock_s: float | None = None
    max_wallclock_line: int | None = None
    reserve_s: float | None = None  # time the loop leaves for post-loop calibration
    calibration_s: float | None = None  # logged post-loop calibration time
    calibration_line: int | None = None
    val_adaptation_s: float | None = None  # pre-quantization TTT and the like, before scoring
    val_adaptation_line: int | None = None
    self_generated: bool = False  # the log says the calibration data is self-generated


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


def _headline_eval(record: RecordFolder, run_headline: FinalLine | None, log: TrainLog) -> tuple[float | None, int | None, str]:
    """The scored metric's eval_time, or that of its non-exact twin printed just before it."""
    if run_headline is None:
        return None, None, ""
    if run_headline.eval_time_ms is not None:
        return run_headline.eval_time_ms / 1000.0, run_headline.line, f"eval_time of {run_headline.name}"
    base = run_headline.name.removesuffix("_exact")
    twins = [f for f in log.finals if f.line < run_headline.line and f.eval_time_ms is not None
             and (f.name == base or f.name.startswith(base))]  # fmt: skip
    if twins:
        return twins[-1].eval_time_ms / 1000.0, twins[-1].line, f"eval_time of {twins[-1].name}"  # type: ignore[operator]
    return None, None, ""


_SELF_GEN = re.compile(r"autoregressive|self[-_ ]?gen|selfgen=1|ar_selfgen=1|generated \d+ sequences", re.I)


def _seed_times(record: RecordFolder) -> list[SeedTimes]:
    # The training runs behind the claim; an eval-only re-run's time is its own scored eval.
    scored = {r.seed: r for r in record.runs}
    pairs = [(r.seed, r.log, r.headline) for r in record.size_time] or [(log.seed, log, log.headline()) for log in record.logs]

    rows = []
    for seed, log, headline in pairs:
        row = SeedTimes(seed, str(log.path.relative_to(record.path)) if log.path.is_relative_to(record.path) else log.path.name)
        if log.train_time_ms is not None:
            row.train_s, row.train_line = log.train_time_ms / 1000.0, log.train_time_line
        avgs = [s.step_avg_ms for s in log.steps if s.step_avg_ms is not None]
        row.step_avg_ms = avgs[-1] if avgs else None
        if row.step_avg_ms is None and log.stop is not None and log.stop.step and row.train_s:
            row.step_avg_ms = row.train_s * 1000.0 / log.stop.step
        evaluated = scored.get(seed)
        if evaluated is not None and evaluated.log is not log:
            # The score comes from an eval-only re-run: its own scored eval is the one timed.
            row.eval_s, row.eval_line, row.eval_source = _headline_eval(record, evaluated.headline, evaluated.log)
            if row.eval_s is not None:
                row.eval_source += f" (eval-only re-run {evaluated.log.path.name})"
        else:
            row.eval_s, row.eval_line, row.eval_source = _headline_eval(record, headline, log)
        if row.eval_s is None and log.total_eval_time_s is not None:
            row.eval_s, row.eval_line, row.eval_source = log.total_eval_time_s, log.total_eval_time_line, "total_eval_time"
        elif row.eval_s is None:
            timed = [f for f in log.finals if f.eval_time_ms is not None]
            if timed:
                row.eval_s = sum(f.eval_time_ms for f in timed) / 1000.0  # type: ignore[misc]
                row.eval_line = timed[-1].line
                row.eval_source = f"sum of {len(timed)} eval_time value(s) (no eval_time on the scored line)"
        if "world_size" in log.params:
            row.world_size, row.world_size_line = int(log.params["world_size"][0]), log.params["world_size"][1]
        if "max_wallclock_seconds" in log.params:
            row.max_wallclock_s, row.max_wallclock_line = log.params["max_wallclock_seconds"]
        # The exact setting first: "gptq:reserving 0s" is 0.5 s printed with %.0f.
        reserve = [p.seconds for p in log.phases if p.kind == "reserve"]
        if "gptq_reserve_seconds" in log.params:
            row.reserve_s = log.params["gptq_reserve_seconds"][0]
        elif reserve:
            row.reserve_s = reserve[-1]
        calib = [p for p in log.phases if p.kind == "calibration"]
        if calib:
            row.calibration_s, row.calibration_line = sum(p.seconds for p in calib), calib[0].line
        adapt = [p for p in log.phases if p.kind == "val-adaptation" and (headline is None or p.line < headline.line)]
        if adapt:
            row.val_adaptation_s, row.val_adaptation_line = sum(p.seconds for p in adapt), adapt[0].line
        row.self_generated = any(_SELF_GEN.search(p.text) for p in log.phases) or _mentions_self_gen(log.path)
        rows.append(row)
    return rows


def _mentions_self_gen(path: Path) -> bool:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return False
    # Only printed lines (not embedded source): "gptq:generating autoregressive calibration data".
    return any(_SELF_GEN.search(line) for line in text.splitlines() if line.startswith(("gptq", "GPTQ")))


def _train_check(rows: list[SeedTimes], non_record: bool) -> CheckResult:
    title, rule = "Training ≤ 600 s", "Training runs in ≤ 600 s on 8×H100"
    ev, statuses, notes = [], [], []
    for r in rows:
        if r.max_wallclock_s is not None and (r.max_wallclock_s <= 0 or r.max_wallclock_s > TRAIN_LIMIT_S):
            statuses.append(Status.FAIL)
            what = "no wall-clock cap" if r.max_wallclock_s <= 0 else f"a {r.max_wallclock_s:g} s cap"
            ev.append(Evidence(f"seed {r.seed}: configured with {what} (max_wallclock_seconds)", file=r.log,
                               line=r.max_wallclock_line, value=r.max_wallclock_s, threshold=TRAIN_LIMIT_S, unit="s"))
        if r.world_size is not None and r.world_size < 8:
            statuses.append(Status.FAIL)
            ev.append(Evidence(f"seed {r.seed}: ran on {r.world_size} GPU(s), not 8×H100: its time does not show the "
                               "600 s budget", file=r.log, line=r.world_size_line, value=r.world_size, threshold=8))
        if r.train_s is None:
            statuses.append(Status.NOT_RUN)
            ev.append(Evidence(f"seed {r.seed}: no train_time in the log", file=r.log))
            continue
        slack = overrun_slack_s(r.step_avg_ms)
        status = Status.PASS if r.train_s <= TRAIN_LIMIT_S + slack else Status.FAIL
        statuses.append(status)
        if TRAIN_LIMIT_S < r.train_s <= TRAIN_LIMIT_S + slack:
            step = f"mean step {r.step_avg_ms:.1f} ms" if r.step_avg_ms else "step time unknown"
            note = f"stopped {1000 * (r.train_s - TRAIN_LIMIT_S):.0f} ms after 600 s ({step}): the cap fires on the first check after 600 s"
            notes.append(r.log)
        else:
            note = "within the limit" if status is Status.PASS else f"over the limit by {r.train_s - TRAIN_LIMIT_S:.1f} s"
        ev.append(Evidence(f"seed {r.seed}: {note}", file=r.log, line=r.train_line, value=round(r.train_s, 3),
                           threshold=TRAIN_LIMIT_S, unit="s"))  # fmt: skip
    result = _combine("GA-TIME-001", title, rule, statuses, ev, non_record, rows, "train")
    if notes and result.status is Status.PASS:
        result.summary += f"; {len(notes)} run(s) stop within one step after 600 s (the cap fires mid-step: a note, not a failure)"
    return result


def _eval_check(rows: list[SeedTimes], non_record: bool) -> CheckResult:
    title, rule = "Evaluation ≤ 600 s", "Evaluation runs in a separate ≤ 600 s budget"
    ev, statuses = [], []
    for r in rows:
        if r.eval_s is None:
            statuses.append(Status.NOT_RUN)
            ev.append(Evidence(f"seed {r.seed}: no evaluation time in the log", file=r.log))
            continue
        total, parts = r.eval_s, [f"{r.eval_source} {r.eval_s:.1f} s"]
        if r.val_adaptation_s:
            total += r.val_adaptation_s
            parts.append(f"+ adaptation on validation tokens before scoring {r.val_adaptation_s:.1f} s (line {r.val_adaptation_line})")
        spill = _calibration_spill(r)
        if spill > 0:
            total += spill
            parts.append(f"+ calibration past the training budget {spill:.1f} s (line {r.calibration_line})")
        status = Status.PASS if total <= EVAL_LIMIT_S else Status.FAIL
        statuses.append(status)
        r.eval_s = total
        ev.append(Evidence(f"seed {r.seed}: {' '.join(parts)}", file=r.log, line=r.eval_line, value=round(total, 3),
                           threshold=EVAL_LIMIT_S, unit="s"))  # fmt: skip
    return _combine("GA-TIME-002", title, rule, statuses, ev, non_record, rows, "eval")


def _calibration_spill(r: SeedTimes) -> float:
    """Seconds of training-data calibration that ran past the 600 s training budget."""
    if r.calibration_s is None or r.train_s is None or r.self_generated:
        return 0.0
    return max(0.0, r.train_s + r.calibration_s - TRAIN_LIMIT_S)


def _post_stop_check(rows: list[SeedTimes], non_record: bool, sites: list[CalibrationSite] | None,
                     script: str) -> CheckResult:  # fmt: skip
    """GA-TIME-003: no training data read after the training loop's wall-clock stop."""
    title, rule = "No training data read after the training stop", \
        "Training data read after the 600 s of training counts as eval-time training data (GPTQ calibration included)"
    if non_record:
        return CheckResult("GA-TIME-003", title, Status.NOT_APPLICABLE, "non-record track: no time limit", Severity.ERROR, rule)
    if sites is None:
        return CheckResult("GA-TIME-003", title, Status.NOT_RUN, "no training script to scan for post-training calibration",
                           Severity.ERROR, rule)  # fmt: skip
    train_sites = [s for s in sites if s.source == TRAIN]
    self_sites = [s for s in sites if s.source == SELF]
    site_ev = [Evidence(f"{s.call}: calibration data {s.source} ({s.why})", file=script, line=s.line) for s in sites]
    if not train_sites:
        summary = ("calibration uses self-generated data only" if self_sites else
                   "no post-training calibration reads training data" if sites else "no post-training calibration found")
        return CheckResult("GA-TIME-003", title, Status.PASS, summary, Severity.ERROR, rule, evidence=site_ev)
    ev, statuses, selfgen = list(site_ev), [], 0
    for r in rows:
        if r.self_generated and self_sites:
            selfgen += 1
            statuses.append(Status.PASS)
            ev.append(Evidence(f"seed {r.seed}: the log shows self-generated calibration data", file=r.log,
                               line=r.calibration_line))
            continue
        if r.train_s is None:
            statuses.append(Status.NOT_RUN)
            continue
        full_budget = r.train_s >= TRAIN_LIMIT_S - overrun_slack_s(r.step_avg_ms) and not r.reserve_s
        calib = f"{r.calibration_s:.1f} s" if r.calibration_s is not None else "an unlogged time"
        end = r.train_s + (r.calibration_s or 0.0)
        if full_budget:
            statuses.append(Status.FAIL)
            ev.append(Evidence(f"seed {r.seed}: the loop used the full 600 s ({r.train_s:.3f} s, no reserve), then calibration "
                               f"read training data for {calib}", file=r.log, line=r.calibration_line or r.train_line,
                               value=round(end, 3), threshold=TRAIN_LIMIT_S, unit="s"))
        elif r.calibration_s is not None and end > TRAIN_LIMIT_S:
            statuses.append(Status.WARN)
            ev.append(Evidence(f"seed {r.seed}: loop {r.train_s:.3f} s (reserve {r.reserve_s or 0:g} s) + calibration {calib} "
                               f"= {end:.3f} s: the calibration overran its reserve by {end - TRAIN_LIMIT_S:.1f} s",
                               file=r.log, line=r.calibration_line, value=round(end, 3), threshold=TRAIN_LIMIT_S, unit="s"))
        else:
            statuses.append(Status.PASS)
            ev.append(Evidence(f"seed {r.seed}: loop {r.train_s:.3f} s + calibration {calib} ends within 600 s",
                               file=r.log, line=r.calibration_line, value=round(end, 3), threshold=TRAIN_LIMIT_S, unit="s"))
    if not statuses:
        return CheckResult("GA-TIME-003", title, Status.NOT_RUN, "calibration reads training data, but no log times the run",
                           Severity.ERROR, rule, evidence=ev)  # fmt: skip
    status = worst(statuses)
    summary = {
        Status.PASS: ("the logs show self-generated calibration data (no training data read)" if selfgen == len(rows)
                      else "calibration on training data ends within the 600 s training budget"),
        Status.WARN: "calibration on training data overran the time the loop reserved for it (a few seconds past 600 s)",
        Status.FAIL: "training data is read after the full 600 s of training (GPTQ calibration with no reserve)",
        Status.NOT_RUN: "some runs are not timed",
    }.get(status, "see evidence")
    return CheckResult("GA-TIME-003", title, status, summary, Severity.ERROR, rule,
                       remediation="Reserve time for calibration inside the 600 s (stop the loop at 600 s − reserve), "
                                   "or calibrate on self-generated data.", evidence=ev)  # fmt: skip


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
        Status.WARN: "some seeds are not timed",
        Status.FAIL: (f"a seed takes {max(values):.1f} s, over the {data['limit_s']:.0f} s limit"
                      if values and max(values) > data["limit_s"] + (1.0 if what == "train" else 0.0)
                      else "a run is configured so that its time cannot show the 600 s budget on 8×H100"),
        Status.NOT_RUN: f"no {what} time in any log",
    }[status]
    return CheckResult(check_id, title, status, summary, Severity.ERROR, rule, evidence=ev, data=data)


def audit_time_limits(folder: str | Path | RecordFolder, script: Path | None = None) -> TimeReport:
    """Per-seed training and evaluation times; ``.checks`` holds GA-TIME-001, -002 and -003.

    ``script`` is the training script to scan for post-training calibration (default: the
    folder's main script).
    """
    from ..records.dataflow import calibration_sites
    from ..records.scripts import main_script
    from ..source import load_source

    record = folder if isinstance(folder, RecordFolder) else read_folder(folder)
    report = TimeReport(folder=record.path, seeds=_seed_times(record), non_record=_is_non_record(record))
    script = script or main_script(record.path)
    sites = None
    if script is not None:
        try:
            sites = calibration_sites(load_source(script).effective)
        except Exception:  # noqa: BLE001 - an unreadable script: the check says not-run
            sites = None
    from .audit import registered

    report.checks = registered([_train_check(report.seeds, report.non_record), _eval_check(report.seeds, report.non_record),
                                _post_stop_check(report.seeds, report.non_record, sites, script.name if script else "")])
    return report
