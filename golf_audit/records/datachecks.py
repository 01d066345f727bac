"""Data access checks of a records folder: GA-DATA-001 (validation tokens used before they are
scored) and GA-DATA-002 (data-preparation fingerprints in the logs).

GA-DATA-001 reads the training script's post-training calibration sites (``records.dataflow``):
GPTQ Hessians collected on validation batches fit the artifact to tokens that are scored later,
which breaks score-before-update (ruling on PR #728). Logs confirm it when they print a
validation-sourced calibration ("calibrating … (using val data)").

GA-DATA-002 compares what the logs print about the data with the canonical split: the sp1024
validation set has 62,021,632 target tokens, truncated to a whole number of sequences (a run
with seq_len 16,384 prints 62,013,440); the canonical training set has 80 shards. A different
validation count means a different validation split (scores are not comparable, and the split
may overlap the training documents); more training shards than the canonical set means a custom
training set that must be shown not to contain the validation documents. Only sp1024 has a
canonical count here; other tokenizers are not judged (not applicable).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..findings import CheckResult, Evidence, Severity, Status
from .dataflow import VAL, CalibrationSite
from .folder import RecordFolder

CANONICAL_VAL_TOKENS = {"sp1024": 62_021_632}
CANONICAL_TRAIN_SHARDS = {"sp1024": 80}
_VAL_LINE = re.compile(r"val_loader:shards pattern=(\S+) tokens:(\d+)")
_TRAIN_LINE = re.compile(r"train_loader:dataset:(\S+) train_shards:(\d+)")
_VAL_CALIB_LOG = re.compile(r"calibrat\w*.*\b(val data|validation)", re.I)
RULE_DATA = "Challenge rule: no validation data in training or in the artifact before it is scored"


def val_calibration_check(record: RecordFolder, sites: list[CalibrationSite] | None, script: str) -> CheckResult:
    """GA-DATA-001: no calibration (GPTQ Hessians, mixer fitting) on validation tokens."""
    title = "No validation tokens used before they are scored"
    if sites is None:
        return CheckResult("GA-DATA-001", title, Status.NOT_RUN, "no training script to scan", Severity.ERROR, RULE_DATA)
    val = [s for s in sites if s.source == VAL]
    ev = [Evidence(f"{s.call}: calibration data {s.source} ({s.why})", file=script, line=s.line) for s in val]
    for log in record.logs:
        for n, line in _printed_lines(log.path):
            if _VAL_CALIB_LOG.search(line):
                ev.append(Evidence(f"the run prints: {line.strip()[:120]}", file=_rel(record, log.path), line=n))
                break
    if val:
        return CheckResult("GA-DATA-001", title, Status.FAIL,
                           f"{val[0].call} calibrates on validation tokens before they are scored",
                           Severity.CRITICAL, RULE_DATA, evidence=ev,
                           remediation="Calibrate on training data inside the 600 s, or on self-generated text.")  # fmt: skip
    others = [Evidence(f"{s.call}: calibration data {s.source}", file=script, line=s.line) for s in sites]
    summary = f"{len(sites)} calibration site(s), none on validation data" if sites else "no post-training calibration found"
    return CheckResult("GA-DATA-001", title, Status.PASS, summary, Severity.CRITICAL, RULE_DATA, evidence=others)


def fingerprint_check(record: RecordFolder) -> CheckResult:
    """GA-DATA-002: the logs' validation token count and shard count match the canonical split."""
    title = "Data split matches the canonical one"
    ev: list[Evidence] = []
    judged = 0
    bad = False
    for log in record.logs:
        rel = _rel(record, log.path)
        for n, line in _printed_lines(log.path):
            m = _VAL_LINE.search(line)
            if m:
                tok = _tokenizer(m.group(1))
                canon = CANONICAL_VAL_TOKENS.get(tok)
                if canon is None:
                    continue
                judged += 1
                count = int(m.group(2))
                if not _is_truncation(count, canon):
                    bad = True
                    ev.append(Evidence(f"{count:,} validation tokens; the canonical {tok} split has {canon:,} "
                                       "(or that truncated to whole sequences): a different validation split",
                                       file=rel, line=n, value=count, threshold=canon))  # fmt: skip
            m = _TRAIN_LINE.search(line)
            if m:
                tok = _tokenizer(m.group(1))
                canon = CANONICAL_TRAIN_SHARDS.get(tok)
                if canon is None:
                    continue
                judged += 1
                if int(m.group(2)) > canon:
                    bad = True
                    ev.append(Evidence(f"{int(m.group(2))} training shards, more than the canonical {canon}: a custom "
                                       "training set; it must exclude the validation documents", file=rel, line=n,
                                       value=int(m.group(2)), threshold=canon))  # fmt: skip
    if bad:
        return CheckResult("GA-DATA-002", title, Status.WARN, f"{len(ev)} data fingerprint(s) differ from the canonical split",
                           Severity.WARNING, RULE_DATA, evidence=ev,
                           remediation="Use the challenge's data preparation (cached_challenge_fineweb.py) unchanged.")  # fmt: skip
    if judged == 0:
        return CheckResult("GA-DATA-002", title, Status.NOT_APPLICABLE,
                           "the logs print no data fingerprint of a tokenizer with a known canonical split",
                           Severity.WARNING, RULE_DATA)  # fmt: skip
    return CheckResult("GA-DATA-002", title, Status.PASS, f"{judged} fingerprint(s) match the canonical split",
                       Severity.WARNING, RULE_DATA)


def _is_truncation(count: int, canonical: int) -> bool:
    """``count`` is the canonical count truncated to a whole number of power-of-two sequences."""
    if count == canonical:
        return True
    return any(count == canonical - canonical % (1 << k) for k in range(6, 21))


def _tokenizer(pattern: str) -> str:
    m = re.search(r"fineweb10B_(\w+?)(?:/|$)", pattern)
    return m.group(1) if m else pattern


def _printed_lines(path: Path) -> list[tuple[int, str]]:
    """The log's own output lines (not its embedded source: those start with whitespace or code)."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return []
    return [(n, line) for n, line in enumerate(text.splitlines(), 1)
            if line[:1].isalpha() and not any(code in line for code in ("log0(", "print(", "f\"", " = ", "def "))]  # fmt: skip


def _rel(record: RecordFolder, path: Path) -> str:
    try:
        return str(path.relative_to(record.path))
    except ValueError:
        return path.name
