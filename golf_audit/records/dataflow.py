"""Where a script's post-training calibration reads its data from, found statically.

GPTQ needs activations ("Hessians") of calibration batches after training. Three sources occur
in real submissions, with three different rulings (DOMAIN.md §4):

* **validation tokens** (``DistributedTokenLoader(args.val_files, …)``): the artifact is fitted to
  tokens that are scored later: illegal (PR #728);
* **training shards** (``gptq_calibrate(model, args.train_files, …)``, a ``ShuffledSequenceLoader``
  over the train files): legal only inside the 600 s training budget, since reading training
  data after it is eval-time training data (PR #606);
* **self-generated** text (autoregressive samples from the model): legal at any time.

The scan is deliberately textual (line based, on the decoded source): it must work on scripts
that only parse on a newer Python, and a calibration call is recognisable by its names. Each
site records the line and the words that decided its source, so a reviewer can check it.

Example: ``calib_loader = DistributedTokenLoader(args.val_files, rank, world_size, device)``
followed by ``collect_hessians(model, calib_loader, …)`` is a site with source ``val``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

VAL, TRAIN, SELF, UNKNOWN = "val", "train", "self-generated", "unknown"

# A calibration call: gptq_calibrate(...), collect_hessians(...), calibrate(...), *_hessians(...)
_CALL = re.compile(r"\b(\w*(?:gptq_calib|calibrat|hessian)\w*)\s*\(", re.I)
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(")
_CLASS = re.compile(r"^\s*class\s+(\w+)\b")
_VAL_WORDS = re.compile(r"\b(val_files|val_tokens|val_data|val_loader|val_pattern|validation_tokens|fineweb_val)\b")
_TRAIN_WORDS = re.compile(r"\b(train_files|train_pattern|train_loader|train_tokens|fineweb_train|train_shards)\b")
_SELF_WORDS = re.compile(r"(autoregress|self[_-]?gen|generate_calib|gen_calib|ar_calib|sample_calib|\bgenerate\w*\()", re.I)
_ASSIGN = re.compile(r"^\s*(\w+)\s*=\s*(.+)$")
# The training loop's budget reduced by a reserve for post-loop work.
_RESERVE = re.compile(r"(reserve\w*|gptq_\w*seconds)", re.I)
_BUDGET = re.compile(r"max_wallclock\w*", re.I)


@dataclass(frozen=True)
class CalibrationSite:
    """One post-training calibration call and the data it reads."""

    line: int  # 1-based, in the scanned (decoded) source
    call: str
    source: str  # VAL, TRAIN, SELF, UNKNOWN
    why: str  # the words that decided it, with their line


def _definitions(lines: list[str]) -> dict[str, tuple[int, int]]:
    """name -> (first, last) line index of each def/class body (indentation based)."""
    out: dict[str, tuple[int, int]] = {}
    for i, line in enumerate(lines):
        m = _DEF.match(line) or _CLASS.match(line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip())
        end = i
        for j in range(i + 1, len(lines)):
            text = lines[j]
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            end = j
        out.setdefault(m.group(1), (i, end))
    return out


def _classify(text: str) -> str | None:
    if _VAL_WORDS.search(text):
        return VAL
    if _SELF_WORDS.search(text):
        return SELF
    if _TRAIN_WORDS.search(text):
        return TRAIN
    return None


def _statements(line: str) -> list[str]:
    """A line's statements: minified code packs several per line (``a=f(x);log0(...);b=g(a)``)."""
    parts, depth, quote, start = [], 0, "", 0
    for k, ch in enumerate(line):
        if quote:
            if ch == quote and line[k - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in ";:" and depth == 0:
            parts.append(line[start:k])
            start = k + 1
    parts.append(line[start:])
    return [p.strip() for p in parts if p.strip()]


def calibration_sites(source: str) -> list[CalibrationSite]:
    """Every call site of a calibration function (not its definition, nor the helpers it calls
    inside its own body), with its data source."""
    return list(_calibration_sites(source))


@functools.lru_cache(maxsize=32)
def _calibration_sites(source: str) -> tuple[CalibrationSite, ...]:
    # Memoized on the text: the time and the data checks both scan the same script.
    lines = source.splitlines()
    defs = _definitions(lines)
    inside = [rng for name, rng in defs.items() if _CALL.match(name + "(")]
    classes = {m.group(1) for line in lines if (m := _CLASS.match(line))}
    assigns: dict[str, list[tuple[tuple[int, int], str]]] = {}
    for i, line in enumerate(lines):
        for k, stmt in enumerate(_statements(line)):
            m = _ASSIGN.match(stmt)
            if m:
                assigns.setdefault(m.group(1), []).append(((i, k), m.group(2)))
    sites = []
    for i, line in enumerate(lines):
        if any(a < i <= b for a, b in inside):
            continue  # a helper called inside a calibration function's own body
        for k, stmt in enumerate(_statements(line)):
            if stmt.startswith(("#", "def ", "async def ", "class ", "log", "print", "if ", "elif ")):
                continue
            m = _CALL.search(stmt)
            if not m:
                continue
            name = m.group(1)
            if name not in defs and not name.lower().startswith(("gptq", "collect")):
                continue
            if name in classes:
                continue  # building a hook object, not reading data
            source, why = _source_of(lines, (i, k), stmt, defs, assigns)
            sites.append(CalibrationSite(i + 1, name, source, why))
    known = [site for site in sites if site.source != UNKNOWN]
    return tuple(known or sites)


def _source_of(lines: list[str], at: tuple[int, int], line: str, defs: dict[str, tuple[int, int]],
               assigns: dict[str, list[tuple[tuple[int, int], str]]]) -> tuple[str, str]:  # fmt: skip
    """The data source of the call at ``at`` (line, statement): its arguments, the names they were
    assigned from (latest assignment before the call), and the loader class those name."""
    i = at[0]
    call_text = line[line.find("("):]
    found = _classify(call_text) or (SELF if _SELF_WORDS.search(line) else None)
    if found:
        return found, f"line {i + 1}: {line.strip()[:120]}"
    for name in re.findall(r"\b([A-Za-z_]\w*)\b", call_text):
        earlier = [(pos, v) for pos, v in assigns.get(name, []) if pos < at]
        if not earlier:
            continue
        (j, _), value = earlier[-1]
        found = _classify(value)
        if found:
            return found, f"line {j + 1}: {lines[j].strip()[:120]}"
        # ``calib_loader = ShuffledSequenceLoader(h, device)``: what does that loader read?
        for ctor in re.findall(r"\b([A-Za-z_]\w*)\s*\(", value):
            if ctor in defs:
                a, b = defs[ctor]
                body_kind = _classify("\n".join(lines[a:b + 1]))
                if body_kind:
                    return body_kind, f"line {j + 1}: {lines[j].strip()[:80]} ({ctor} reads {body_kind} data, line {a + 1})"
    # The called function's own body (``gptq_calibrate`` that opens the train files itself).
    head = _CALL.search(line)
    if head and head.group(1) in defs:
        a, b = defs[head.group(1)]
        body_kind = _classify("\n".join(lines[a:b + 1]))
        if body_kind:
            return body_kind, f"{head.group(1)} (line {a + 1}) reads {body_kind} data"
    return UNKNOWN, f"line {i + 1}: no data source named"


def reserves_time(source: str) -> tuple[bool, int | None]:
    """Whether the training loop's wall-clock budget is reduced by a reserve (and the line)."""
    for i, line in enumerate(source.splitlines()):
        if _BUDGET.search(line) and _RESERVE.search(line) and re.search(r"-=|-\s*\w", line):
            return True, i + 1
    return False, None
