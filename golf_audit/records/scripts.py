"""Which script of a records folder produced which log.

Folders ship ``train_gpt.py``, or a script with another name (``train_gpt_v5.py``,
``train_gpt_cuda_ternary.py``), or several variants (a readable copy, ablation versions, a
baseline), next to data-preparation helpers. The byte accounting and the static checks must look
at the script the logs came from, so each log is attributed, in order of certainty, by:

1. **embedded source**: many scripts copy their own source into the log; a candidate whose text
   appears byte-for-byte in the log produced it;
2. **logged size**: the log's raw ``Code size`` (or, for compressed counting, its
   ``Code size (uncompressed)``) equals the file's size;
3. **name**: the log names the script (``python train_gpt_gdn.py``);
4. otherwise the folder's main script (``train_gpt.py``, else the largest ``train*.py``) is
   *assumed*, and the attribution says so.

Example: in ``2026-04-04_GDN_Hybrid_LongContext`` the hybrid logs embed ``train_gpt_gdn.py``
and the baseline logs embed ``train_gpt.py``: two scripts, each attributed by embedded source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .logs import TrainLog

EMBEDDED, LOGGED_SIZE, NAMED, ASSUMED = "embedded source", "logged size", "named in the log", "assumed"
# Helper files shipped next to a script that are not entry points (data prep, tokenizer transforms).
_HELPER_HINTS = ("prepare", "download", "cached_", "lossless", "transpile", "tokeniz", "setup", "util", "helper")


@dataclass(frozen=True)
class Attribution:
    """The script a log came from, and how that was decided."""

    script: Path | None
    how: str  # EMBEDDED, LOGGED_SIZE, NAMED, ASSUMED
    evidence: str

    @property
    def certain(self) -> bool:
        return self.how in (EMBEDDED, LOGGED_SIZE)


def candidate_scripts(folder: Path) -> list[Path]:
    """Top-level ``*.py`` files that look like entry scripts (train_gpt.py first)."""
    files = sorted(p for p in folder.glob("*.py") if p.is_file())
    entries = [p for p in files if not any(h in p.name.lower() for h in _HELPER_HINTS)]
    entries = entries or files
    return sorted(entries, key=lambda p: (p.name != "train_gpt.py", not p.name.startswith("train"), -_size(p), p.name))


def main_script(folder: Path) -> Path | None:
    """The folder's script when nothing else decides: train_gpt.py, else the largest train*.py."""
    scripts = candidate_scripts(folder)
    return scripts[0] if scripts else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def attribute(log: TrainLog, log_text: str | None, scripts: list[Path]) -> Attribution:
    """Which of ``scripts`` produced ``log`` (``log_text``: the log's text, for the embedded check)."""
    if not scripts:
        return Attribution(None, ASSUMED, "the folder ships no script")
    rel = log.path.name
    if log_text:
        for script in scripts:
            body = _text(script)
            if len(body) > 200 and body.strip() and body in log_text:
                start = log_text[: log_text.index(body)].count("\n") + 1
                end = start + body.count("\n")
                return Attribution(script, EMBEDDED, f"{rel}:{start}-{end} embeds {script.name} byte-for-byte")
    figures = [(s, s.tag) for s in log.sizes if s.kind == "code" and not s.compressed]
    for size_line, tag in reversed(figures):
        for script in scripts:
            if _size(script) == size_line.bytes:
                what = "Code size (uncompressed)" if tag and "uncompress" in tag else "code size"
                return Attribution(script, LOGGED_SIZE,
                                   f"{rel}:{size_line.line} logs {what} {size_line.bytes:,} = {script.name}")
    if log_text:
        for script in scripts:
            if script.name in log_text:
                return Attribution(script, NAMED, f"{rel} names {script.name}")
    chosen = scripts[0]
    if figures:
        nearest = min(scripts, key=lambda s: abs(_size(s) - figures[-1][0].bytes))
        chosen = nearest
        return Attribution(chosen, ASSUMED, f"closest, not exact: {rel}:{figures[-1][0].line} logs "
                                            f"{figures[-1][0].bytes:,} bytes vs {chosen.name} {_size(chosen):,}")
    return Attribution(chosen, ASSUMED, f"{rel} neither embeds nor sizes its script; {chosen.name} assumed")
