"""Renderers of the artifact + time audit: ``render(report, times, fmt) -> str`` (table, json, markdown)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from .. import __version__
from ..findings import CheckResult, Status, worst
from ..output import dumps_json, plain_text
from .audit import ArtifactReport
from .timing import TimeReport

from ..output import SCHEMA_VERSION
WIDTH = 150
TOP_TENSORS = 12


def verdict(artifact: ArtifactReport, times: TimeReport) -> Status:
    """The worst outcome among checks that ran; ``not-run`` only when none could run."""
    ran = [c.status for c in artifact.checks + times.checks if c.status not in (Status.NOT_RUN, Status.NOT_APPLICABLE)]
    return worst(ran) if ran else Status.NOT_RUN


def exit_code(artifact: ArtifactReport, times: TimeReport) -> int:
    """0 nothing failed, 1 a check failed, 2 a check could not conclude or nothing could be checked."""
    statuses = [c.status for c in artifact.checks + times.checks]
    if Status.FAIL in statuses:
        return 1
    # GA-FILES-001 only says what could not be read: on its own it concludes nothing.
    concluded = [c.status for c in artifact.checks + times.checks if c.check_id != "GA-FILES-001"]
    if Status.ERROR in statuses or not any(s in (Status.PASS, Status.WARN) for s in concluded):
        return 2
    return 0


def _n(v: Any) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.3f}" if isinstance(v, float) else str(v)


def to_dict(artifact: ArtifactReport, times: TimeReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "golf-audit", "version": __version__},
        "folder": str(artifact.folder),
        "verdict": verdict(artifact, times).value,
        "cap_bytes": 16_000_000,
        "code": None if artifact.code is None else {
            "bytes": artifact.code.total_bytes,
            "files": [{"path": str(f.path), "bytes": f.size, "how": f.how, "line": f.line,
                       "via": str(f.via) if f.via else None, "in_wrapper": f.in_wrapper} for f in artifact.code.files],
            "missing": [str(f.path) for f in artifact.code.missing],
        },  # fmt: skip
        "recomputed_total": artifact.recomputed_total,
        "claimed_total": artifact.claimed_total,
        "seeds": artifact.seeds,
        "times": times.seeds,
        "artifacts": [{"path": str(a.path), "bytes": a.size, "format": a.format, "valid": a.valid, "error": a.error,
                       "tensors": a.tensors} for a in artifact.artifacts],  # fmt: skip
        "checks": artifact.checks + times.checks,
        "problems": artifact.record.problems,
    }




def _checks_rows(checks: list[CheckResult]) -> list[list[str]]:
    return [[c.status.symbol, c.check_id, c.status.value, c.title, c.summary] for c in checks]


def _seed_rows(artifact: ArtifactReport, times: TimeReport) -> list[list[str]]:
    by_log = {t.log: t for t in times.seeds}
    rows = []
    for s in artifact.seeds:
        t = by_log.get(s.log)
        rows.append([str(s.seed), s.log, _n(s.code), _n(s.model), _n(s.total), _n(s.recomputed),
                     _n(t.train_s if t else None), _n(t.eval_s if t else None)])  # fmt: skip
    return rows


SEED_HEADER = ["Seed", "Log", "Code (logged)", "Model (logged)", "Total (logged)", "Total (recomputed)", "Train s", "Eval s"]
CHECK_HEADER = ["", "Check", "Status", "Title", "Summary"]


def _evidence_lines(checks: list[CheckResult]) -> list[str]:
    out = []
    for c in checks:
        for e in c.evidence:
            where = f"{e.file}:{e.line}" if e.file and e.line else (e.file or "")
            value = f" [{_n(e.value)}{' ' + e.unit if e.unit else ''}]" if e.value is not None else ""
            out.append(f"{c.check_id} {where + ': ' if where else ''}{e.message}{value}")
    return out


def render_table(artifact: ArtifactReport, times: TimeReport) -> str:
    checks = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in CHECK_HEADER:
        checks.add_column(name, overflow="fold")
    for row in _checks_rows(artifact.checks + times.checks):
        checks.add_row(*row)
    seeds = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title="Per seed (bytes, seconds)")
    for name in SEED_HEADER:
        seeds.add_column(name, overflow="fold")
    for row in _seed_rows(artifact, times):
        seeds.add_row(*row)
    head = f"golf-audit artifact {artifact.folder}: {verdict(artifact, times).value.upper()}"
    items: list[Any] = [head, checks, seeds]
    if artifact.code is not None:
        items.append(f"Code: {artifact.code.total_bytes:,} bytes in {len(artifact.code.files)} file(s)")
    for a in artifact.artifacts:
        if a.tensors:
            tensors = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=f"{a.path.name}: what takes the space")
            for name in ("Tensor", "Kind", "Shape", "Stored bytes", "Share", "≈ compressed"):
                tensors.add_column(name, overflow="fold")
            for t in a.tensors[:TOP_TENSORS]:
                tensors.add_row(t.name, t.kind, "×".join(map(str, t.shape)), f"{t.stored_bytes:,}", f"{t.share:.1%}", f"{t.est_compressed_bytes:,}")
            items.append(tensors)
    evidence = _evidence_lines(artifact.checks + times.checks)
    if evidence:
        items.append("Evidence:\n" + "\n".join(f"  {line}" for line in evidence))
    if artifact.record.problems:
        items.append("Could not find / read:\n" + "\n".join(f"  {p}" for p in artifact.record.problems))
    return plain_text(items, WIDTH)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(artifact: ArtifactReport, times: TimeReport) -> str:
    lines = [f"### golf-audit artifact `{artifact.folder.name}`: **{verdict(artifact, times).value.upper()}**", ""]
    lines += [_md_row(CHECK_HEADER), _md_row(["---"] * len(CHECK_HEADER))]
    lines += [_md_row(r) for r in _checks_rows(artifact.checks + times.checks)]
    lines += ["", _md_row(SEED_HEADER), _md_row(["---"] * len(SEED_HEADER))]
    lines += [_md_row(r) for r in _seed_rows(artifact, times)]
    for a in artifact.artifacts:
        if a.tensors:
            lines += ["", f"<details><summary>{a.path.name}: what takes the space</summary>", "",
                      _md_row(["Tensor", "Kind", "Stored bytes", "Share"]), _md_row(["---"] * 4)]  # fmt: skip
            lines += [_md_row([t.name, t.kind, f"{t.stored_bytes:,}", f"{t.share:.1%}"]) for t in a.tensors[:TOP_TENSORS]]
            lines += ["", "</details>"]
    evidence = _evidence_lines(artifact.checks + times.checks)
    if evidence:
        lines += ["", "<details><summary>Evidence</summary>", ""] + [f"- {e}" for e in evidence] + ["", "</details>"]
    return "\n".join(lines) + "\n"


def render(artifact: ArtifactReport, times: TimeReport, fmt: str) -> str:
    fmt = getattr(fmt, "value", fmt)
    if fmt == "json":
        return dumps_json(to_dict(artifact, times))
    if fmt == "markdown":
        return render_markdown(artifact, times)
    return render_table(artifact, times)
