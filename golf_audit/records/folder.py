"""A records folder as PRs ship it: ``submission.json`` + one train log per seed, cross-checked.

The reader decides which evaluation the submission claims (the "mode": the final-line name whose
per-seed values match the JSON), picks each seed's headline from its log, and reports every
disagreement between the JSON and the logs as a :class:`Discrepancy` with file and line.
"""

from __future__ import annotations

import functools
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
# submission.json problems that mean the file is damaged (wrong types), not merely incomplete.
_DAMAGE = re.compile(r"where a number was expected|is not a number|is not finite|is not a whole number|top level is"
                     r"|where an object was expected|not a seed number")


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
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (file, what is wrong): see the README's damaged-file policy
    roles: dict[str, str] = field(default_factory=dict)  # log (relative path) -> its role, with why
    size_time: list[SeedRun] = field(default_factory=list)  # training runs behind the score (size and time)
    claim_kind: str = ""  # "mean", "single run of several", "single run", "" (unknown)

    @property
    def backing_logs(self) -> list[str]:
        """The logs whose results form the per-seed values (what the claim rests on)."""
        return [_rel(self, r.log.path) for r in self.runs]

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

    def seed_values(self, metric: str = "val_bpb") -> dict[str, float]:
        """Per-run values of the logs that back the claim (keyed by seed; a repeated seed or a log
        without one gets its own key, so every run counts), else the JSON's per-seed results."""
        out: dict[str, float] = {}
        for i, run in enumerate(self.runs):
            value = getattr(run, metric)
            if value is None:
                continue
            key = str(run.seed if run.seed is not None else run.filename_seed if run.filename_seed is not None else f"run{i + 1}")
            while key in out:
                key += "'"
            out[key] = value
        if out:
            return out
        if self.submission:
            for seed, result in self.submission.seed_results.items():
                value = getattr(result, metric)
                if value is not None:
                    out[str(seed)] = value
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
    """Read and cross-check one records folder. BadInput only if it is not a folder at all.

    Memoized on the folder's files (names, sizes, mtimes): a tree report reads each folder for
    its own checks, for the artifact audit and for the significance walk. Treat the result as
    read-only.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder")
    try:
        stamp = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in sorted(folder.rglob("*")) if p.is_file())
    except OSError:
        return _read_folder(folder)
    return _read_folder_cached(str(folder), stamp)


@functools.lru_cache(maxsize=128)
def _read_folder_cached(folder: str, stamp: tuple) -> RecordFolder:
    return _read_folder(Path(folder))


def _read_folder(folder: Path) -> RecordFolder:
    record = RecordFolder(path=folder, submission=None)
    json_path, notes = find_submission_json(folder)
    record.problems.extend(notes)
    if json_path is not None:
        try:
            record.submission = read_submission(json_path)
            record.problems.extend(f"{json_path.name}: {p}" for p in record.submission.problems)
            record.damaged.extend((json_path.name, p) for p in record.submission.problems if _DAMAGE.search(p))
        except BadInput as exc:
            record.problems.append(str(exc))
            record.damaged.append((json_path.name, str(exc).replace(f"{json_path}: ", "")))
    for path in find_logs(folder):
        log = read_log(path)
        record.damaged.extend((_rel(record, path), p.split(": ", 1)[-1]) for p in log.problems if p.startswith(f"{path.name}: not valid UTF-8"))
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


def _is_training(log: TrainLog) -> bool:
    """A training run: it logs training steps or a wall-clock stop (an eval-only re-run does not)."""
    return log.stop is not None or any(st.train_loss is not None or st.train_time_ms is not None for st in log.steps)


def _config(log: TrainLog) -> tuple:
    """What makes two logs the same configuration: world size, wall-clock cap, final-metric names."""
    params = tuple(sorted((k, v[0]) for k, v in log.params.items() if k in ("world_size", "max_wallclock_seconds")))
    wall = log.train_time_ms or 0.0
    return params, round(wall / 600_000.0) if wall else None  # a 4-hour run is not a 10-minute one


def _pick_runs(record: RecordFolder) -> None:
    """Which logs back the claim (``runs``), which logs are the training runs behind them
    (``size_time``), and a role for every log, with why.

    * claimed per-seed values: per claimed seed, the log whose headline gives the value (the
      printed seed first, then the file-name seed, then any log with that exact value); an
      eval-only re-run that gives the value backs the score, and the training run of that seed
      backs size and time;
    * one claimed value: the training logs of the configuration that gives it (same world size,
      cap and run length), exact duplicates dropped; the claim is their mean, or one run's value
      (then every run of that configuration is evidence, and the claim is best-of-n);
    * no claim: every training log.
    """
    sub = record.submission
    logs = [l for l in record.logs if _headline(record, l) is not None]
    # Exact duplicates (same seed, same headline value and line count): one copy counts.
    seen: dict[tuple, TrainLog] = {}
    distinct: list[TrainLog] = []
    for log in logs:
        h = _headline(record, log)
        key = (log.seed, h.val_bpb if h else None, len(log.steps), log.train_time_ms)
        if key in seen and h is not None and _filename_seed(log) == log.seed and _filename_seed(seen[key]) != log.seed:
            # Keep the copy named for its seed (train_seed1337.log over train.log).
            distinct[distinct.index(seen[key])], (log, seen[key]) = log, (seen[key], log)
        if key in seen and h is not None:
            record.roles[_rel(record, log.path)] = f"duplicate of {_rel(record, seen[key].path)} (same seed, same results)"
            record.discrepancies.append(Discrepancy("duplicate-log", f"{_rel(record, log.path)} duplicates "
                                                    f"{_rel(record, seen[key].path)}", file=_rel(record, log.path)))
            continue
        seen[key] = log
        distinct.append(log)
    training = [l for l in distinct if _is_training(l)]
    claimed = list(dict.fromkeys(sub.seeds)) if sub and sub.seeds else []
    per_seed = {seed: r.val_bpb for seed, r in (sub.seed_results.items() if sub else []) if r.val_bpb is not None}
    chosen: list[TrainLog] = []
    if per_seed:
        used: set[int] = set()
        for seed in claimed or list(per_seed):
            target = per_seed.get(seed)
            pool = [l for l in distinct if id(l) not in used]
            by_value = sorted((l for l in pool if target is not None and _close(target, _headline(record, l).val_bpb)),
                              key=lambda l: abs(_headline(record, l).val_bpb - target))  # closest first (claims are rounded)
            printed = [l for l in by_value if l.seed == seed] or [l for l in pool if l.seed == seed and target is None]
            named = [l for l in by_value if _filename_seed(l) == seed]
            pick = (printed or named or by_value or [l for l in pool if l.seed == seed])[:1]
            for l in pick:
                used.add(id(l))
                chosen.append(l)
    elif claimed:
        for seed in claimed:
            pick = [l for l in training if l.seed == seed][:1] or [l for l in distinct if l.seed == seed][:1]
            chosen.extend(l for l in pick if l not in chosen)
    else:
        target = sub.val_bpb if sub else None
        chosen = list(training or distinct)
        if target is not None and chosen:
            givers = [l for l in chosen if _close(target, _headline(record, l).val_bpb)]
            if givers and not _close(target, statistics.fmean(_headline(record, l).val_bpb for l in chosen)):
                same = [l for l in chosen if _config(l) == _config(givers[0])]
                for l in chosen:
                    if l not in same:
                        record.roles[_rel(record, l.path)] = "other configuration (world size, cap or run length differ from the claimed run)"
                chosen = same
            if len(chosen) > 1 and givers and not _close(target, statistics.fmean(_headline(record, l).val_bpb for l in chosen)):
                record.claim_kind = f"single run of {len(chosen)}"
            elif chosen:
                record.claim_kind = "mean" if len(chosen) > 1 else "single run"
    for log in chosen:
        rel = _rel(record, log.path)
        record.runs.append(SeedRun(log.seed, log, _headline(record, log), _filename_seed(log)))
        if _is_training(log):
            record.roles[rel] = "training run; backs the claim"
            record.size_time.append(record.runs[-1])
        else:
            trainer = next((l for l in training if l.seed == log.seed and l not in chosen), None)
            record.roles[rel] = "eval-only re-run; gives the claimed value" + (
                f" (its training run: {_rel(record, trainer.path)})" if trainer else " (no training log of this seed)")
            if trainer is not None:
                record.size_time.append(SeedRun(trainer.seed, trainer, _headline(record, trainer), _filename_seed(trainer)))
    for log in record.logs:
        rel = _rel(record, log.path)
        if rel not in record.roles:
            record.roles[rel] = ("training run; not part of the claim (another run or version)" if _is_training(log)
                                 else "eval-only run; not part of the claim") if _headline(record, log) else "no result line"
    by_seed: dict[int | None, list[SeedRun]] = {}
    for run in record.runs:
        by_seed.setdefault(run.seed, []).append(run)
    for seed, runs in by_seed.items():
        if seed is not None and len(runs) > 1 and sub is not None:  # without a claim, nothing is "backed"
            record.discrepancies.append(Discrepancy(
                "repeated-seed", f"seed {seed} is printed by {len(runs)} of the logs that back the claim "
                f"({', '.join(_rel(record, r.log.path) for r in runs)}): distinct runs, not distinct seeds",
                file=_rel(record, runs[0].log.path)))  # fmt: skip


def _filename_seed(log: TrainLog) -> int | None:
    m = _FILENAME_SEED.search(log.path.name)
    return int(m.group(1)) if m else None


_BEST_OF_TEXT = re.compile(r"best\s+(?:(\d+)\s+)?(?:of|out of)\s+(\d+)", re.I)
_RUN_COUNT_KEYS = ("n_runs", "num_runs", "runs_total", "total_runs", "n_trials")
_RUN_LIST_KEYS = ("all_runs", "all_seeds", "runs", "trials", "all_results")


def _best_of_n(record: RecordFolder) -> None:
    """Disclosed or evident selection of the best runs: a claim that is one run's value of
    several, a submission.json field that lists more runs than seeds, a README saying so."""
    sub = record.submission
    add = record.discrepancies.append
    if record.claim_kind.startswith("single run of"):
        values = [r.val_bpb for r in record.runs if r.val_bpb is not None]
        add(Discrepancy("best-of-n", f"submission.json val_bpb {sub.val_bpb} is one run's value, not the mean "
                        f"({statistics.fmean(values):.8f}) of the {len(values)} logged runs of the claimed configuration",
                        claimed=sub.val_bpb, logged=round(statistics.fmean(values), 8)))
    if sub is not None:
        n_seeds = len(sub.seeds) or len(record.runs)
        for key in _RUN_COUNT_KEYS:
            value = sub.raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > n_seeds:
                add(Discrepancy("best-of-n", f"submission.json {key} = {value} runs, {n_seeds} reported", file="submission.json"))
        for key in _RUN_LIST_KEYS:
            value = sub.raw.get(key)
            if isinstance(value, (list, dict)) and len(value) > n_seeds:
                add(Discrepancy("best-of-n", f"submission.json {key} describes {len(value)} runs, {n_seeds} reported",
                                file="submission.json"))
        for key, value in sub.raw.items():
            if isinstance(value, str) and (m := _BEST_OF_TEXT.search(value)) and int(m.group(2)) > (int(m.group(1) or 1)):
                add(Discrepancy("best-of-n", f"submission.json {key}: \"{value.strip()[:100]}\"", file="submission.json"))
                break
    for readme in sorted(record.path.glob("[Rr][Ee][Aa][Dd][Mm][Ee]*.md"))[:1]:
        try:
            lines = readme.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            m = _BEST_OF_TEXT.search(line)
            if m and int(m.group(2)) > int(m.group(1) or 1) and "seed" in line.lower() or (m and "run" in line.lower()):
                add(Discrepancy("best-of-n", f"README: \"{line.strip()[:120]}\"", file=readme.name, line=n))
                break


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
    _best_of_n(record)
    if sub.seeds:
        # Seeds printed by the logs that back the claim (an ablation's seed is not a claimed run's).
        logged = {r.seed for r in record.runs if r.seed is not None}
        backing = {id(r.log) for r in record.runs}
        for seed in dict.fromkeys(sub.seeds):
            if seed not in logged:
                named = [r for r in record.runs if r.filename_seed == seed]
                already = {d.file for d in record.discrepancies if d.kind == "seed-mismatch"}
                if named and _rel(record, named[0].log.path) in already:
                    continue  # the file-name mismatch of this very log already says it
                if named:
                    run = named[0]
                    add(Discrepancy("seed-mismatch", f"claimed seed {seed} is backed by {_rel(record, run.log.path)}, "
                                    f"which prints seed {run.seed}: a run of another seed (or configuration)",
                                    file=_rel(record, run.log.path), line=run.log.seed_line, claimed=seed, logged=run.seed))
                else:
                    add(Discrepancy("missing-log", f"claimed seed {seed} has no log printing that seed", claimed=seed))
        for seed in sorted({l.seed for l in record.logs if l.seed is not None and _is_training(l)} - set(sub.seeds)):
            files = [_rel(record, l.path) for l in record.logs if l.seed == seed and id(l) not in backing
                     and not record.roles.get(_rel(record, l.path), "").startswith("duplicate")]
            if files:
                add(Discrepancy(
                    "unclaimed-log", f"training log(s) of seed {seed} not listed in submission.json ({', '.join(files)}): "
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
    values = [r.val_bpb for r in record.runs if r.val_bpb is not None]  # the runs that back the claim
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
    """Every records folder under ``tree``: one holding a submission*.json, or a README/script
    next to train logs (a folder that ships only logs is audited too, never silently skipped).
    Folders inside another records folder (its ``logs/``) are part of it, not folders of their own."""
    tree = Path(tree)
    if not tree.is_dir():
        raise BadInput(f"{tree}: not a folder")
    if find_submission_json(tree)[0] is not None:
        return [tree]
    found: set[Path] = set()
    for path in tree.rglob("submission*.json"):
        if len(path.relative_to(tree).parts) <= 4:
            found.add(path.parent)
    for path in tree.rglob("*"):
        if not path.is_dir() or len(path.relative_to(tree).parts) > 3 or path in found:
            continue
        try:
            names = [c for c in path.iterdir() if c.is_file()]
        except OSError:
            continue
        has_logs = any(c.suffix.lower() in LOG_SUFFIXES and not _NOT_LOGS.match(c.name) for c in names)
        has_body = any(c.suffix == ".py" or c.name.lower().startswith("readme") for c in names)
        if has_logs and has_body:
            found.add(path)
    return sorted(p for p in found if not any(parent in found for parent in p.parents))
