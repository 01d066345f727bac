"""``submission.json`` reader: one typed view over every shape the records use.

Real files disagree on almost everything: ``seeds`` is a list of ints or a dict of per-seed
results, per-seed results live in ``seed_results`` (or ``seeds``, or a parallel ``seed_scores``
list), sizes are ``bytes_total``/``artifact_bytes``/``bytes_code``/``code_bytes``, times come in
ms or s, numbers are sometimes strings. The reader accepts all of it and lists in ``problems``
what is missing or odd instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput

MAX_JSON_BYTES = 8 * 1024 * 1024


@dataclass
class SeedResult:
    """One seed's numbers as the submission claims them."""

    seed: int
    val_bpb: float | None = None
    val_loss: float | None = None
    artifact_bytes: int | None = None
    train_time_s: float | None = None
    eval_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Submission:
    """A parsed ``submission.json``."""

    path: Path | None
    raw: dict[str, Any]
    name: str | None = None
    author: str | None = None
    date: str | None = None
    track: str | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    bytes_total: int | None = None
    bytes_code: int | None = None
    seeds: list[int] = field(default_factory=list)  # as listed, duplicates kept
    seed_results: dict[int, SeedResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def bpb_loss_ratio(self) -> float | None:
        """val_bpb / val_loss: converts nats to bpb for this tokenizer (None if either is missing)."""
        if self.val_bpb and self.val_loss:
            return self.val_bpb / self.val_loss
        pairs = [(r.val_bpb, r.val_loss) for r in self.seed_results.values() if r.val_bpb and r.val_loss]
        if pairs:
            return sum(b for b, _ in pairs) / sum(l for _, l in pairs)
        return None


def _as_float(value: Any, key: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        problems.append(f"{key}: a boolean where a number was expected")
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            problems.append(f"{key}: {value!r} is not a number")
            return None
        problems.append(f"{key}: number given as a string ({value!r})")
    else:
        problems.append(f"{key}: {type(value).__name__} where a number was expected")
        return None
    if not math.isfinite(number):
        problems.append(f"{key}: {value!r} is not finite")
        return None
    return number


def _as_int(value: Any, key: str, problems: list[str]) -> int | None:
    number = _as_float(value, key, problems)
    if number is None:
        return None
    if number != int(number) or abs(number) > 1e18:
        problems.append(f"{key}: {value!r} is not a whole number")
        return None
    return int(number)


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else (None if value is None else str(value))


def _first(raw: dict[str, Any], *keys: str) -> tuple[str | None, Any]:
    for key in keys:
        if key in raw and raw[key] is not None:
            return key, raw[key]
    return None, None


def _seed_result(seed: int, entry: Any, where: str, problems: list[str]) -> SeedResult:
    result = SeedResult(seed=seed)
    if isinstance(entry, (int, float, str)) and not isinstance(entry, bool):
        result.val_bpb = _as_float(entry, f"{where}[{seed}]", problems)  # {"42": 1.0812}
        return result
    if not isinstance(entry, dict):
        problems.append(f"{where}[{seed}]: {type(entry).__name__} where an object was expected")
        return result
    p = f"{where}[{seed}]"
    key, value = _first(entry, "val_bpb", "bpb")
    result.val_bpb = _as_float(value, f"{p}.{key}", problems)
    key, value = _first(entry, "val_loss", "loss")
    result.val_loss = _as_float(value, f"{p}.{key}", problems)
    key, value = _first(entry, "artifact_bytes", "bytes_total", "total_bytes")
    result.artifact_bytes = _as_int(value, f"{p}.{key}", problems)
    key, value = _first(entry, "train_time_s", "train_time_ms", "train_time_seconds")
    if key is not None:
        seconds = _as_float(value, f"{p}.{key}", problems)
        result.train_time_s = seconds / 1000.0 if seconds is not None and key.endswith("_ms") else seconds
    key, value = _first(entry, "eval_time_s", "eval_time_ms", "ttt_eval_time_s", "eval_time_seconds", "ttt_time_ms")
    if key is not None:
        seconds = _as_float(value, f"{p}.{key}", problems)
        result.eval_time_s = seconds / 1000.0 if seconds is not None and key.endswith("_ms") else seconds
    known = {"val_bpb", "bpb", "val_loss", "loss", "artifact_bytes", "bytes_total", "total_bytes"}
    result.extra = {k: v for k, v in entry.items() if k not in known}
    if result.val_bpb is None:
        problems.append(f"{p}: no val_bpb")
    return result


def _seed_key(key: Any, where: str, problems: list[str]) -> int | None:
    seed = _as_int(key, f"{where} key", []) if not isinstance(key, str) else None
    if isinstance(key, str):
        try:
            seed = int(key.strip())
        except ValueError:
            seed = None
    if seed is None:
        problems.append(f"{where}: key {key!r} is not a seed number")
    return seed


def parse_submission(raw: Any, path: str | Path | None = None) -> Submission:
    """Build a :class:`Submission` from decoded JSON. Never raises on content."""
    if not isinstance(raw, dict):
        sub = Submission(path=Path(path) if path else None, raw={})
        sub.problems.append(f"top level is {type(raw).__name__}, not an object")
        return sub
    sub = Submission(path=Path(path) if path else None, raw=raw)
    problems = sub.problems
    sub.name = _as_str(raw.get("name") or raw.get("run_name"))
    sub.author = _as_str(raw.get("author") or raw.get("github_id"))
    sub.date = _as_str(raw.get("date"))
    sub.track = _as_str(raw.get("track"))
    key, value = _first(raw, "val_bpb", "mean_bpb")
    sub.val_bpb = _as_float(value, key or "val_bpb", problems)
    key, value = _first(raw, "val_loss")
    sub.val_loss = _as_float(value, "val_loss", problems)
    key, value = _first(raw, "bytes_total", "artifact_size_bytes", "artifact_bytes_max", "artifact_bytes_mean")
    sub.bytes_total = _as_int(value, key or "bytes_total", problems)
    key, value = _first(raw, "bytes_code", "code_bytes")
    sub.bytes_code = _as_int(value, key or "bytes_code", problems)

    # Seeds: a list, a dict of results, or one "seed".
    seeds_value = raw.get("seeds")
    if isinstance(seeds_value, list):
        for i, s in enumerate(seeds_value):
            seed = _as_int(s, f"seeds[{i}]", problems)
            if seed is not None:
                sub.seeds.append(seed)
    elif isinstance(seeds_value, dict):
        for k, entry in seeds_value.items():
            seed = _seed_key(k, "seeds", problems)
            if seed is not None:
                sub.seeds.append(seed)
                sub.seed_results[seed] = _seed_result(seed, entry, "seeds", problems)
    elif seeds_value is not None:
        seed = _as_int(seeds_value, "seeds", problems)
        if seed is not None:
            sub.seeds.append(seed)
    elif "seed" in raw:
        seed = _as_int(raw["seed"], "seed", problems)
        if seed is not None:
            sub.seeds.append(seed)

    results = raw.get("seed_results")
    if isinstance(results, dict):
        for k, entry in results.items():
            seed = _seed_key(k, "seed_results", problems)
            if seed is not None:
                sub.seed_results[seed] = _seed_result(seed, entry, "seed_results", problems)
                if seed not in sub.seeds:
                    if sub.seeds:
                        problems.append(f"seed_results has seed {seed} that 'seeds' does not list")
                    sub.seeds.append(seed)
    elif results is not None:
        problems.append(f"seed_results: {type(results).__name__} where an object was expected")

    scores = raw.get("seed_scores")  # a list parallel to "seeds"
    if isinstance(scores, list) and not sub.seed_results:
        if len(scores) != len(sub.seeds):
            problems.append(f"seed_scores has {len(scores)} values for {len(sub.seeds)} seeds")
        for seed, score in zip(sub.seeds, scores):
            sub.seed_results[seed] = SeedResult(seed=seed, val_bpb=_as_float(score, f"seed_scores[{seed}]", problems))

    # Single-seed submissions: the top-level numbers are that seed's.
    if len(sub.seeds) == 1 and not sub.seed_results and sub.val_bpb is not None:
        sub.seed_results[sub.seeds[0]] = SeedResult(seed=sub.seeds[0], val_bpb=sub.val_bpb, val_loss=sub.val_loss, artifact_bytes=sub.bytes_total)

    duplicates = sorted({s for s in sub.seeds if sub.seeds.count(s) > 1})
    if duplicates:
        problems.append(f"seed(s) listed more than once: {', '.join(map(str, duplicates))}")
    for key in ("val_bpb", "bytes_total", "date"):
        if getattr(sub, key) is None:
            problems.append(f"missing {key}")
    if not sub.seeds:
        problems.append("no seeds listed")
    elif not sub.seed_results:
        problems.append("no per-seed results")
    return sub


def read_submission(path: str | Path) -> Submission:
    """Read a ``submission.json``. BadInput when it is not readable JSON at all."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise BadInput(f"{path}: too large for a submission.json")
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply") from None
    return parse_submission(raw, path)
