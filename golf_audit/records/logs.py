"""Train-log reader: the lines a records log prints, whatever era of the challenge it is from.

Logs are noisy: they embed the script's own source, nvidia-smi tables, per-chunk TTT progress,
and sometimes several runs or a wall-clock timestamp before every line. The reader keeps only
lines whose *values* parse as numbers, so a line of code such as
``log0(f"final_..._exact val_loss:{x:.8f}")`` never reads as a result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

# Logs can be a few MB; a larger "log" is not one.
MAX_LOG_BYTES = 64 * 1024 * 1024

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TIMESTAMP = re.compile(r"^\d{9,}(?:\.\d+)?\s+")  # "1776143349.278 step..." (epoch seconds)
_STEP = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\s+(\S.*)$")
_KV = re.compile(rf"(?<![\w.])([A-Za-z_][\w]*):\s*({_NUM})(ms|s|m)?(?![\w.])")
_STOP = re.compile(rf"^stopping_early:.*?train_time:\s*({_NUM})ms(?:.*?step:\s*(\d+)(?:/(\d+))?)?")
_SEED = re.compile(r"(?:^|\s)seed[:=]\s*(\d+)(?:\s|$)")
_SIZE_MODEL = re.compile(r"^Serialized model(?:\s+([^:]+?))?:\s*(\d+)\s*bytes")
_SIZE_TOTAL = re.compile(r"^Total submission size(?:\s+([^:]+?))?:\s*(\d+)\s*bytes")
_SIZE_CODE = re.compile(r"^Code size(?:\s*\(([^)]*)\))?:\s*(\d+)\s*bytes")
# Odd formats from single records: "INT7+zlib model: N bytes | Total submission: N bytes".
_SIZE_PIPE = re.compile(r"^(\S+)\s+model:\s*(\d+)\s*bytes\s*\|\s*Total submission:\s*(\d+)\s*bytes")
# The ternary/binary/XNOR scripts: "artifact:15.92MB ternary:…(14237274B) fp:…(2537376B) code:70853"
# then "budget:15992753/16000000 (…) FITS"; LegendreGPT: "Code: 70969 bytes".
_ARTIFACT_CODE = re.compile(r"^artifact:\S*.*?\scode:(\d+)\s*$")
_BUDGET = re.compile(r"^budget:(\d+)/(\d+)\b")
_CODE_PLAIN = re.compile(r"^Code:\s*(\d+)\s*bytes")
_TOTAL_EVAL = re.compile(rf"^total_eval_time:\s*({_NUM})s\b")
# Leading words of a final-metric line: "final_int6_sliding_window_exact", "diagnostic quantized".
_NAME = re.compile(r"^([A-Za-z][\w+\-]*(?:\s+[A-Za-z][\w+\-]*)*?)\s+(?=[\w\-]*:|\()")
# Names of evaluations that are diagnostics, never a submission's headline.
_DIAGNOSTIC = re.compile(r"diagnostic|pre[-_ ]?quant|post[-_ ]?ema|^quantized$|temp_scaling", re.I)


@dataclass
class StepLine:
    """One ``step:N/M ...`` line (train or val)."""

    line: int
    step: int
    total: int
    train_loss: float | None = None
    val_loss: float | None = None
    val_bpb: float | None = None
    train_time_ms: float | None = None
    step_avg_ms: float | None = None


@dataclass
class SizeLine:
    """A logged byte count: ``kind`` is model, total or code; ``tag`` the format (``int6+lzma``)."""

    line: int
    kind: str
    tag: str | None
    bytes: int

    @property
    def compressed(self) -> bool:
        """Whether this is a compressed (artifact) size rather than the raw ``torch.save``/source size."""
        if self.kind == "code":
            return self.tag is not None and "compress" in self.tag and "uncompress" not in self.tag
        return self.tag is not None and self.tag.lower() not in ("raw", "uncompressed")


@dataclass
class FinalLine:
    """An evaluation result line: ``<name> val_loss:X val_bpb:Y [eval_time:Tms]``."""

    line: int
    name: str
    val_loss: float | None
    val_bpb: float
    eval_time_ms: float | None = None

    @property
    def exact(self) -> bool:
        return "exact" in self.name

    @property
    def diagnostic(self) -> bool:
        return bool(_DIAGNOSTIC.search(self.name))


@dataclass
class PhaseLine:
    """A timed step after the training loop: GPTQ calibration, pre-quantization TTT, reserves."""

    line: int
    kind: str  # "calibration" (Hessians / GPTQ calibration), "val-adaptation" (pre-quant TTT), "reserve"
    seconds: float
    text: str


# Settings printed in hyperparameter dumps ("  world_size: 8", "world_size:8").
_PARAM = re.compile(rf"^\s{{0,4}}(world_size|max_wallclock_seconds|gptq_reserve_seconds|val_tokens|train_shards)[:=]\s*({_NUM})\s*$")
_PARAM_INLINE = re.compile(rf"(?:^|\s)(world_size|train_shards):({_NUM})(?=\s|$)")
# Post-loop steps and how long they took.
_PHASES = (
    ("calibration", re.compile(rf"^(?:GPTQ|gptq):\s*(?:collected|calibrated|done|quantization complete)\b.*?\bin\s+({_NUM})\s*s\b", re.I)),
    ("calibration", re.compile(rf"^gptq:(?:generated|calibration)\b.*?\bin\s+({_NUM})\s*s\b", re.I)),
    ("val-adaptation", re.compile(rf"^prequant_ttt:done\b.*?total_time=({_NUM})s")),
    ("reserve", re.compile(rf"^gptq:reserving\s+({_NUM})s")),
)


@dataclass
class TrainLog:
    """What one train log says about its run."""

    path: Path
    seed: int | None = None  # the seed the log itself prints (last run)
    seed_line: int | None = None
    seeds_seen: list[int] = field(default_factory=list)  # every seed line (several runs in one log)
    steps: list[StepLine] = field(default_factory=list)
    stop: StepLine | None = None  # the stopping_early line, as a step
    sizes: list[SizeLine] = field(default_factory=list)
    finals: list[FinalLine] = field(default_factory=list)
    params: dict[str, tuple[float, int]] = field(default_factory=dict)  # run settings the log prints: name -> (value, line)
    phases: list["PhaseLine"] = field(default_factory=list)  # timed post-training steps (GPTQ, pre-quant TTT, …)
    total_eval_time_s: float | None = None  # a logged total_eval_time line
    total_eval_time_line: int | None = None
    problems: list[str] = field(default_factory=list)

    # -- derived values --------------------------------------------------------------------
    @property
    def recognized(self) -> bool:
        """Whether anything in the file looks like a train log at all."""
        return bool(self.steps or self.finals or self.sizes or self.stop or self.seed is not None)

    @property
    def train_time_ms(self) -> float | None:
        """Training wall-clock: the stopping_early line, else the last step line's train_time."""
        if self.stop is not None and self.stop.train_time_ms is not None:
            return self.stop.train_time_ms
        times = [s.train_time_ms for s in self.steps if s.train_time_ms is not None]
        return times[-1] if times else None

    @property
    def train_time_line(self) -> int | None:
        if self.stop is not None and self.stop.train_time_ms is not None:
            return self.stop.line
        lines = [s.line for s in self.steps if s.train_time_ms is not None]
        return lines[-1] if lines else None

    @property
    def eval_time_s(self) -> float | None:
        """Evaluation wall-clock: a logged total, else the sum of the final lines' eval_time."""
        if self.total_eval_time_s is not None:
            return self.total_eval_time_s
        times = [f.eval_time_ms for f in self.finals if f.eval_time_ms is not None]
        return sum(times) / 1000.0 if times else None

    def size(self, kind: str, compressed: bool | None = True) -> SizeLine | None:
        """The last logged size of ``kind``, preferring compressed (artifact) sizes."""
        lines = [s for s in self.sizes if s.kind == kind]
        if compressed is not None:
            preferred = [s for s in lines if s.compressed == compressed]
            if preferred:
                return preferred[-1]
            if kind == "code" and lines:  # "Code size: N" is the counted code
                return lines[-1]
            return None
        return lines[-1] if lines else None

    @property
    def model_bytes(self) -> SizeLine | None:
        return self.size("model")

    @property
    def total_bytes(self) -> SizeLine | None:
        return self.size("total")

    @property
    def code_uncompressed(self) -> SizeLine | None:
        """``Code size (uncompressed): N``: the source length a compressed-counting script ran."""
        lines = [s for s in self.sizes if s.kind == "code" and s.tag and "uncompress" in s.tag]
        return lines[-1] if lines else None

    @property
    def code_bytes(self) -> SizeLine | None:
        """The counted code size: ``Code size: N`` or ``Code size (compressed): N``."""
        plain = [s for s in self.sizes if s.kind == "code" and s.tag is None]
        compressed = [s for s in self.sizes if s.kind == "code" and s.compressed]
        return (compressed or plain or [None])[-1]

    def headline(self, mode: str | None = None) -> FinalLine | None:
        """The result this log reports: the last line named ``mode``, else the last ``*_exact``
        line, else the last final line that is not a diagnostic."""
        if mode is not None:
            named = [f for f in self.finals if f.name == mode]
            return named[-1] if named else None
        exact = [f for f in self.finals if f.exact and not f.diagnostic]
        if exact:
            return exact[-1]
        plain = [f for f in self.finals if not f.diagnostic]
        return plain[-1] if plain else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _kvs(text: str) -> dict[str, tuple[float, str | None]]:
    out: dict[str, tuple[float, str | None]] = {}
    for m in _KV.finditer(text):
        value = _number(m.group(2))
        if value is not None and m.group(1) not in out:
            out[m.group(1)] = (value, m.group(3))
    return out


def _ms(value: tuple[float, str | None] | None, default_unit: str = "ms") -> float | None:
    if value is None:
        return None
    number, unit = value
    unit = unit or default_unit
    return number * {"ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _int(text: str) -> int | None:
    # Sizes and seeds are small; a 400-digit "seed" is not one.
    return int(text) if len(text) <= 18 else None


def _parse_params(log: TrainLog, n: int, line: str) -> None:
    if "(" in line or "=" in line.split(":", 1)[0]:
        return  # code, not a settings dump
    m = _PARAM.match(line)
    pairs = [m.groups()] if m else [g.groups() for g in _PARAM_INLINE.finditer(line)]
    for name, value in pairs:
        number = _number(value)
        if number is not None:
            log.params[name] = (number, n)


def _parse_phase(log: TrainLog, n: int, line: str) -> bool:
    if not line[:1] in "Ggp" or ":" not in line:
        return False
    for kind, pattern in _PHASES:
        m = pattern.match(line)
        if m and (seconds := _number(m.group(1))) is not None:
            log.phases.append(PhaseLine(n, kind, seconds, line.strip()[:160]))
            return True
    return False


def _parse_seed(log: TrainLog, n: int, line: str) -> None:
    m = _SEED.search(line)
    if m and _int(m.group(1)) is not None:
        seed = int(m.group(1))
        log.seeds_seen.append(seed)
        log.seed, log.seed_line = seed, n


def _parse_line(log: TrainLog, n: int, line: str) -> None:
    if ":" not in line:
        # "key=value key=value …" hyperparameter dumps (the ternary/binary scripts) carry the seed.
        if "seed=" in line and "(" not in line:
            _parse_seed(log, n, line)
        return
    _parse_params(log, n, line)
    if " | " in line and "Code:" in line:
        # "Raw model: 85587955 bytes | Code: 70969 bytes | Total: 85658924"
        for part in line.split(" | "):
            m = _CODE_PLAIN.match(part.strip())
            if m:
                log.sizes.append(SizeLine(n, "code", None, int(m.group(1)[:18])))
        return
    if _parse_phase(log, n, line):
        return
    m = _STEP.match(line) if line[0].isdigit() or line.startswith("step") else None
    if m:
        kv = _kvs(m.group(3))
        step = StepLine(n, int(m.group(1)[:18]), int(m.group(2)[:18]))
        step.train_loss = (kv.get("train_loss") or kv.get("loss") or (None, None))[0]
        step.val_loss = (kv.get("val_loss") or (None, None))[0]
        step.val_bpb = (kv.get("val_bpb") or (None, None))[0]
        # "train_time:41450ms", "train_time: 0.8m", "t:41450ms"
        step.train_time_ms = _ms(kv.get("train_time") or kv.get("t"))
        step.step_avg_ms = _ms(kv.get("step_avg") or kv.get("avg"))
        if any(v is not None for v in (step.train_loss, step.val_loss, step.val_bpb, step.train_time_ms)):
            log.steps.append(step)
        return
    m = _STOP.match(line) if line.startswith("stopping_early") else None
    if m:
        step, total = (_int(g) if g else None for g in (m.group(2), m.group(3)))
        log.stop = StepLine(n, step or 0, total or 0, train_time_ms=_number(m.group(1)))
        return
    for kind, pattern, prefix in (("model", _SIZE_MODEL, "Seri"), ("total", _SIZE_TOTAL, "Tota"), ("code", _SIZE_CODE, "Code")):
        m = pattern.match(line) if line.startswith(prefix) else None
        if m:
            value = _int(m.group(2))
            if value is not None:
                tag = m.group(1).strip() if m.group(1) else None
                if kind == "total" and tag is None:
                    # An untagged total printed right after a compressed model size is the
                    # compressed total (older scripts print both raw and compressed untagged).
                    models = [s for s in log.sizes if s.kind == "model"]
                    if models and models[-1].compressed and models[-1].line > max(
                        (s.line for s in log.sizes if s.kind == "total"), default=0
                    ):
                        tag = models[-1].tag
                log.sizes.append(SizeLine(n, kind, tag, value))
            return
    m = _SIZE_PIPE.match(line) if " model:" in line else None
    if m:
        log.sizes.append(SizeLine(n, "model", m.group(1), int(m.group(2)[:18])))
        log.sizes.append(SizeLine(n, "total", m.group(1), int(m.group(3)[:18])))
        return
    m = _ARTIFACT_CODE.match(line) if line.startswith("artifact:") else None
    if m:
        log.sizes.append(SizeLine(n, "code", None, int(m.group(1)[:18])))
        return
    m = _BUDGET.match(line) if line.startswith("budget:") else None
    if m:
        total = int(m.group(1)[:18])
        log.sizes.append(SizeLine(n, "total", "budget", total))
        code = [c for c in log.sizes if c.kind == "code"]
        if code and not any(s.kind == "model" and s.line > code[-1].line for s in log.sizes):
            # These scripts print no model line: the model is what the budget leaves after the code.
            log.sizes.append(SizeLine(n, "model", "budget - code", total - code[-1].bytes))
        return
    m = _CODE_PLAIN.match(line) if line.startswith("Code: ") else None
    if m:
        log.sizes.append(SizeLine(n, "code", None, int(m.group(1)[:18])))
        return
    m = _TOTAL_EVAL.match(line) if line.startswith("total_eval") else None
    if m:
        log.total_eval_time_s = _number(m.group(1))
        log.total_eval_time_line = n
        return
    if "val_bpb" in line and "{" not in line:
        _parse_final(log, n, line)
        return
    if "seed" in line and "(" not in line:
        _parse_seed(log, n, line)


def _parse_final(log: TrainLog, n: int, line: str) -> None:
    name_match = _NAME.match(line)
    if not name_match:
        return
    kv = _kvs(line)
    if "val_bpb" not in kv:
        return
    name = name_match.group(1)
    # "final_int8_zlib_roundtrip_exact sliding val_loss:..": the qualifier belongs to the name.
    eval_time = _ms(kv.get("eval_time") or kv.get("time"))
    log.finals.append(FinalLine(n, name, (kv.get("val_loss") or (None, None))[0], kv["val_bpb"][0], eval_time))


def parse_log_text(text: str, path: str | Path = "<log>") -> TrainLog:
    """Parse a log's text. Never raises on content: what is missing goes to ``problems``."""
    log = TrainLog(path=Path(path))
    for n, raw_line in enumerate(text.splitlines(), start=1):
        if len(raw_line) > 10_000:  # a line this long is data or garbage, not a log line
            continue
        line = raw_line.rstrip()
        if line[:1].isdigit() and len(line) > 10 and line[9:10].isdigit():
            line = _TIMESTAMP.sub("", line)
        if not line or line[0] in " \t#|+":
            # indented lines are embedded source or hyperparameter dumps: only settings matter
            if line.startswith("  ") and not line.startswith("    ") and ":" in line:
                _parse_params(log, n, line)
            if line.startswith("  seed") and not line.startswith("    "):
                m = _SEED.search(line)
                if m and _int(m.group(1)) is not None:
                    log.seeds_seen.append(int(m.group(1)))
                    log.seed, log.seed_line = int(m.group(1)), n
            continue
        _parse_line(log, n, line)
    _note_problems(log)
    return log


def _note_problems(log: TrainLog) -> None:
    if not log.recognized:
        log.problems.append(f"{log.path.name}: no train-log lines found (foreign or empty file)")
        return
    if log.seed is None:
        log.problems.append(f"{log.path.name}: the log prints no seed")
    if len(set(log.seeds_seen)) > 1 or len(log.seeds_seen) > 1:
        log.problems.append(
            f"{log.path.name}: {len(log.seeds_seen)} seed lines ({', '.join(map(str, log.seeds_seen))}): "
            "several runs in one log; the last run's values are used"
        )
    if not log.finals:
        log.problems.append(f"{log.path.name}: no final val_bpb line (truncated log?)")
    elif not any(f.exact for f in log.finals):
        log.problems.append(f"{log.path.name}: no *_exact final line; using the last non-diagnostic result")
    if log.total_bytes is None:
        log.problems.append(f"{log.path.name}: no compressed 'Total submission size' line")
    if log.train_time_ms is None:
        log.problems.append(f"{log.path.name}: no train_time found")


def read_log(path: str | Path) -> TrainLog:
    """Read and parse one train log file. Unreadable files come back with a problem, not an exception."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LOG_BYTES:
            log = TrainLog(path=path)
            log.problems.append(f"{path.name}: {size} bytes is too large for a train log; skipped")
            return log
        data = path.read_bytes()
    except OSError as exc:
        log = TrainLog(path=path)
        log.problems.append(f"{path.name}: cannot read ({exc.strerror or exc})")
        return log
    try:
        text = data.decode("utf-8")
        bad = None
    except UnicodeDecodeError as exc:
        text, bad = data.decode("utf-8", errors="replace"), exc.start
    log = parse_log_text(text, path)
    if bad is not None:
        log.problems.insert(0, f"{path.name}: not valid UTF-8 (first bad byte at offset {bad}); undecodable bytes replaced")
    return log
