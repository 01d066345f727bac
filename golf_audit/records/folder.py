"""A records folder as PRs ship it: ``submission.json`` + one train log per seed, cross-checked.

The reader decides which evaluation the submission claims (the "mode": the final-line name whose
per-seed values match the JSON), picks each seed's headline from its log, and reports every
disagreement between the JSON and the logs as a :class:`Discrepancy` with file and line.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from .logs import FinalLine, TrainLog, read_log
from .submission import Submission, read_submission

LOG_SUFFIXES = (".log", ".txt")
_NOT_LOGS = re.compile(r"^(requirements|readme|results?|notes?|license)", re.I)
_FILENAME_SEED = re.compile(r"seed[_\-]?(\d{1,12})", re.I)
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


@dataclass
class Discrepancy:
    """One disagreement found while cross-checking (kind is a stable slug)."""

    kind: str  # seed-mismatch, unclaimed-log, missing-log, repeated-seed, value-mismatch, bytes-mismatch, ...
    message: str
    file: str | None = None
    line: int | None = None
    claimed: object = None
    logged: object = None


@dataclass
class SeedRun:
    """One seed's run: its log and the headline result chosen from it."""

    seed: int | None
    log: TrainLog
    headline: FinalLine | None
    filename_seed: int | None = None

    @property
    def val_bpb(self) -> float | None:
        return self.headline.val_bpb if self.headline else None

    @property
    def val_loss(self) -> float | None:
        return self.headline.val_loss if self.headline else None


@dataclass
class RecordFolder:
    """Everything read from one records folder."""

    path: Path
    submission: Submission | None
    logs: list[TrainLog] = field(default_factory=list)
    runs: list[SeedRun] = field(default_factory=list)  # one per claimed seed that has a log
    mode: str | None = None  # the final-line name taken as the headline
    mode_source: str = ""  # how the mode was decided
    discrepancies: list[Discrepancy] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be found or read

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def date(self) -> str:
        """ISO date for chronological order: the folder prefix, else the JSON date."""
        m = _DATE.match(self.path.name)
        if m:
            return m.group(1)
        if self.submission and self.submission.date:
            return self.submission.date[:10]
        return ""

    @property
    def claimed_seeds(self) -> list[int]:
        return list(self.submission.seeds) if self.submission else []

    def seed_values(self, metric: str = "val_bpb") -> dict[int, float]:
        """Per-seed values: from the logs' headlines, else from the JSON's per-seed results."""
        out: dict[int, float] = {}
        for run in self.runs:
            value = getattr(run, metric)
            if run.seed is not None and value is not None:
                out.setdefault(run.seed, value)
        if out:
            return out
        if self.submission:
            for seed, result in self.submission.seed_results.items():
                value = getattr(result, metric)
                if value is not None:
                    out[seed] = value
        return out

    @property
    def values_source(self) -> str:
        return "logs" if any(r.val_bpb is not None for r in self.runs) else "submission.json"

    @property
    def bpb_loss_ratio(self) -> float | None:
        """The candidate's own bpb/nats ratio, from its logs (else its JSON)."""
        pairs = [(r.val_bpb, r.val_loss) for r in self.runs if r.val_bpb and r.val_loss]
        if pairs:
            return sum(b for b, _ in pairs) / sum(l for _, l in pairs)
        return self.submission.bpb_loss_ratio if self.submission else None


def _tolerance(value: float) -> float:
    """Half a unit in the last printed decimal of a JSON number (rounded or truncated: a full unit)."""
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 8
    # Capped: a bpb claim printed with fewer than 3 decimals still has to agree to 1e-3.
    return min(10.0 ** (-decimals), 1e-3) + 1e-12


def _close(claimed: float, logged: float) -> bool:
    return abs(claimed - logged) <= _tolerance(claimed)


def find_logs(folder: Path) -> list[Path]:
    """Candidate train logs: *.log / *.txt in the folder and its subfolders (two levels)."""
    found = []
    for path in sorted(folder.rglob("*")):
        try:
            depth = len(path.relative_to(folder).parts)
        except ValueError:
            continue
        if depth > 3 or not path.is_file() or path.suffix.lower() not in LOG_SUFFIXES:
            continue
        if _NOT_LOGS.match(path.name):
            continue
        found.append(path)
    return found


def find_submission_json(folder: Path) -> tuple[Path | None, list[str]]:
    """``submission.json``, else the one ``submission*.json`` (e.g. submission_ternary.json)."""
    exact = folder / "submission.json"
    if exact.is_file():
        return exact, []
    others = sorted(folder.glob("submission*.json"))
    if len(others) == 1:
        return others[0], [f"submission file is named {others[0].name}"]
    if others:
        return others[0], [f"{len(others)} submission*.json files; using {others[0].name}"]
    return None, ["no submission.json"]


def _choose_mode(sub: Submission | None, logs: list[TrainLog]) -> tuple[str | None, str]:
    """The final-line name whose values best match the JSON's claims."""
    names: list[str] = []
    for log in logs:
        for f in log.finals:
            if f.name not in names:
                names.append(f.name)
    if not names or sub is None:
        return None, "last *_exact line of each log (no submission.json)" if sub is None else "no final lines"
    claims: list[tuple[int | None, float]] = [
        (seed, r.val_bpb) for seed, r in sub.seed_results.items() if r.val_bpb is not None
    ]
    if not claims and sub.val_bpb is not None:
        claims = [(None, sub.val_bpb)]
    if not claims:
        return None, "last *_exact line of each log (the JSON claims no val_bpb)"

    def score(name: str) -> tuple[int, int, int]:
        matches = 0
        for seed, claimed in claims:
            for log in logs:
                if seed is not None and log.seed is not None and log.seed != seed:
                    continue
                line = log.headline(name)
                if line is not None and _close(claimed, line.val_bpb):
                    matches += 1
                    break
        return matches, int("exact" in name), -names.index(name)

    best = max(names, key=score)
    if score(best)[0] == 0 and claims[0][0] is None:
        # Only a mean is claimed: the mode whose per-log values average to it.
        for name in sorted(names, key=lambda n: ("exact" not in n, -names.index(n))):
            values = [h.val_bpb for log in logs if (h := log.headline(name)) is not None]
            if values and _close(claims[0][1], statistics.fmean(values)):
                return name, f"its mean over {len(values)} log(s) matches submission.json's val_bpb"
    if score(best)[0] == 0:
        return None, "last *_exact line of each log (no final line matches the JSON's val_bpb)"
    return best, f"matches {score(best)[0]} claimed value(s) in submission.json"


def read_folder(folder: str | Path) -> RecordFolder:
    """Read and cross-check one records folder. BadInput only if it is not a folder at all."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder")
    record = RecordFolder(path=folder, submission=None)
    json_path, notes = find_submission_json(folder)
    record.problems.extend(notes)
    if json_path is not None:
        try:
            record.submission = read_submission(json_path)
            record.problems.extend(f"{json_path.name}: {p}" for p in record.submission.problems)
        except BadInput as exc:
            record.problems.append(str(exc))
    for path in find_logs(folder):
        log = read_log(path)
        if log.recognized:
            record.logs.append(log)
            record.problems.extend(log.problems)
        else:
            record.problems.append(f"{path.relative_to(folder)}: not a train log; ignored")
    if not record.logs:
        record.problems.append("no train logs")
    record.mode, record.mode_source = _choose_mode(record.submission, record.logs)
    _pick_runs(record)
    _cross_check(record)
    return record


def _rel(record: RecordFolder, path: Path) -> str:
    try:
        return str(path.relative_to(record.path))
    except ValueError:
        return str(path)


def _headline(record: RecordFolder, log: TrainLog) -> FinalLine | None:
    return (log.headline(record.mode) if record.mode else None) or log.headline()


def _pick_runs(record: RecordFolder) -> None:
    """One run per seed: the log whose headline matches the claim, duplicates noted."""
    sub = record.submission
    by_seed: dict[int | None, list[TrainLog]] = {}
    for log in record.logs:
        by_seed.setdefault(log.seed, []).append(log)
    claimed = list(dict.fromkeys(sub.seeds)) if sub and sub.seeds else []
    wanted = claimed or [s for s in by_seed if s is not None]
    for seed in wanted:
        logs = [l for l in by_seed.get(seed, []) if _headline(record, l) is not None] or by_seed.get(seed, [])
        if not logs:
            continue
        claim = sub.seed_results.get(seed) if sub else None
        target = claim.val_bpb if claim else (sub.val_bpb if sub and len(wanted) == 1 else None)
        chosen = logs[0]
        if target is not None:
            matching = [l for l in logs if (h := _headline(record, l)) and _close(target, h.val_bpb)]
            chosen = matching[0] if matching else logs[0]
        values = {(_headline(record, l).val_bpb if _headline(record, l) else None) for l in logs}
        if len(logs) > 1:
            kind = "repeated-seed" if len(values) > 1 else "duplicate-log"
            record.discrepancies.append(Discrepancy(
                kind,
                f"seed {seed} has {len(logs)} logs ({', '.join(_rel(record, l.path) for l in logs)})"
                + (" with different results" if len(values) > 1 else ", identical results (copies)"),
                file=_rel(record, chosen.path),
            ))  # fmt: skip
        m = _FILENAME_SEED.search(chosen.path.name)
        record.runs.append(SeedRun(seed, chosen, _headline(record, chosen), int(m.group(1)) if m else None))


def _cross_check(record: RecordFolder) -> None:
    sub = record.submission
    add = record.discrepancies.append
    for log in record.logs:
        m = _FILENAME_SEED.search(log.path.name)
        if m and log.seed is not None and int(m.group(1)) != log.seed:
            add(Discrepancy(
                "seed-mismatch", f"{_rel(record, log.path)} is named for seed {m.group(1)} but the log prints seed {log.seed}",
                file=_rel(record, log.path), line=log.seed_line, claimed=int(m.group(1)), logged=log.seed,
            ))  # fmt: skip
    if sub is None:
        return
    if sub.seeds:
        logged = {l.seed for l in record.logs if l.seed is not None}
        for seed in dict.fromkeys(sub.seeds):
            if seed not in logged:
                add(Discrepancy("missing-log", f"claimed seed {seed} has no log printing that seed", claimed=seed))
        for seed in sorted(logged - set(sub.seeds)):
            files = [_rel(record, l.path) for l in record.logs if l.seed == seed]
            add(Discrepancy(
                "unclaimed-log", f"log(s) for seed {seed} not listed in submission.json ({', '.join(files)}): "
                "more runs than reported (best-k-of-n?)", file=files[0], logged=seed,
            ))  # fmt: skip
        dupes = sorted({s for s in sub.seeds if sub.seeds.count(s) > 1})
        if dupes:
            add(Discrepancy("repeated-seed", f"submission.json lists seed(s) {dupes} more than once"))
    for run in record.runs:
        claim = sub.seed_results.get(run.seed) if run.seed is not None else None
        if claim is None:
            continue
        rel = _rel(record, run.log.path)
        if claim.val_bpb is not None and run.headline is not None and not _close(claim.val_bpb, run.headline.val_bpb):
            add(Discrepancy(
                "value-mismatch", f"seed {run.seed}: submission.json val_bpb {claim.val_bpb} but {rel} reports "
                f"{run.headline.val_bpb} ({run.headline.name})", file=rel, line=run.headline.line,
                claimed=claim.val_bpb, logged=run.headline.val_bpb,
            ))  # fmt: skip
        total = run.log.total_bytes
        if claim.artifact_bytes is not None and total is not None and claim.artifact_bytes != total.bytes:
            add(Discrepancy(
                "bytes-mismatch", f"seed {run.seed}: submission.json artifact_bytes {claim.artifact_bytes} but {rel} "
                f"logs a total of {total.bytes}", file=rel, line=total.line, claimed=claim.artifact_bytes, logged=total.bytes,
            ))  # fmt: skip
    values = [r.val_bpb for r in record.runs if r.val_bpb is not None and (not sub.seeds or r.seed in sub.seeds)]
    if sub.val_bpb is not None and values:
        mean = statistics.fmean(values)
        if not _close(sub.val_bpb, mean) and not any(_close(sub.val_bpb, v) for v in values):
            add(Discrepancy(
                "mean-mismatch", f"submission.json val_bpb {sub.val_bpb} is neither the logs' mean {mean:.8f} "
                f"nor any single seed's value", claimed=sub.val_bpb, logged=round(mean, 8),
            ))  # fmt: skip
    code = [r.log.code_bytes for r in record.runs if r.log.code_bytes is not None]
    if sub.bytes_code is not None and code and all(c.bytes != sub.bytes_code for c in code):
        first = next(r for r in record.runs if r.log.code_bytes is not None)
        add(Discrepancy(
            "bytes-mismatch", f"submission.json bytes_code {sub.bytes_code} but the logs print code sizes "
            f"{sorted({c.bytes for c in code})}", file=_rel(record, first.log.path), line=code[0].line,
            claimed=sub.bytes_code, logged=code[0].bytes,
        ))  # fmt: skip


def list_record_folders(tree: str | Path) -> list[Path]:
    """Every records folder under ``tree`` (a folder holding a submission*.json or train logs)."""
    tree = Path(tree)
    if not tree.is_dir():
        raise BadInput(f"{tree}: not a folder")
    if find_submission_json(tree)[0] is not None:
        return [tree]
    out = []
    for path in sorted(tree.rglob("submission*.json")):
        if path.parent not in out and len(path.relative_to(tree).parts) <= 4:
            out.append(path.parent)
    return out
