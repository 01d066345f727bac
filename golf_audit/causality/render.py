"""Causality reports as a terminal table, Markdown or JSON (one function per format)."""

from __future__ import annotations

import io
import math

from rich import box
from rich.console import Console
from rich.table import Table

from ..findings import Status
from ..output import Format, dumps_json
from .engine import CausalityResult
from .report import AuditedSubject, CausalityReport

WIDTH = 170  # fixed, so the text is identical on every terminal and in tests

HEADERS = ("Evaluator", "Expected", "Found", "OK", "Failed tests", "Channel", "Leaky flips", "Affected",
           "max |ΔNLL|", "Example t→s (Δ)", "Self-pred", "worst Σp")
SHORT = {"stream-flip": "stream", "target-flip": "target", "distribution": "dist", "normalization": "norm"}


def _num(x: float | None, fmt: str = ".3g") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, fmt)


def _cells(s: AuditedSubject) -> list[str]:
    r: CausalityResult = s.result
    if r.status is Status.ERROR:
        found = "error"
    else:
        found = r.status.value
    mark = "—" if s.matches_expected is None else ("✔" if s.matches_expected else "✖ NO")
    leaky = max(r.stream_flip.flips_with_leak, r.target_flip.flips_with_leak)
    affected = r.stream_flip.positions_affected + r.target_flip.positions_affected
    worst = max(r.stream_flip.max_abs_delta, r.target_flip.max_abs_delta)
    ex = r.stream_flip.example or r.target_flip.example
    example = f"{ex.flip}→{ex.position} ({_num(ex.delta, '+.3g')})" if ex else "—"
    adv = f"{r.self_prediction.mean:+.3g}" if r.self_prediction else "—"
    mass = _num(r.normalization.worst_mass, ".6g") if r.normalization else "—"
    expected = "—"
    if s.expected:
        expected = s.expected.status.value + (f" ({','.join(SHORT.get(t, t) for t in s.expected.failing)})"
                                               if s.expected.failing else "")
    return [s.label, expected, f"{r.status.symbol} {found}", mark,
            ",".join(SHORT.get(t, t) for t in r.failed_tests) or "—", "+".join(r.channels) or "—",
            f"{leaky}/{r.stream_flip.flips}" if r.status is not Status.ERROR else "—",
            str(affected) if r.status is not Status.ERROR else "—", _num(worst) if r.status is not Status.ERROR else "—",
            example, adv, mass]


def _header_lines(report: CausalityReport) -> list[str]:
    verdict = report.verdict
    word = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.ERROR: "CANNOT CONCLUDE"}[verdict]
    lines = [f"golf-audit causality: {word} ({report.summary()})",
             f"model: {report.model}",
             f"stream: {report.stream} ({report.stream_tokens} tokens); geometry: "
             + (", ".join(f"{k}={v}" for k, v in report.geometry.items()) or "evaluator defaults"),
             f"flips: {report.flips} per evaluator (seed {report.seed}), "
             + ("stream flips only (a script reads inputs and targets from one stream); " if report.mode == "script"
                else "each a stream flip and a target flip; ") +
             f"tolerance {report.tolerance:g} nats (|Δlog p| for rows), Σp tolerance {report.norm_tolerance:g}; "
             f"{report.workers} worker(s), {report.wall_seconds:.1f} s wall, "
             f"{sum(x.result.seconds for x in report.subjects):.1f} s CPU in the evaluator runs",
             "columns: Affected = (flip, earlier target) pairs whose NLL moved; Self-pred = nats the true "
             "token gains when the evaluator saw it (0 if causal); tests: stream/target flip, dist(ribution), norm(alization)"]
    return lines


def _details(report: CausalityReport) -> list[str]:
    lines = []
    for s in report.subjects:
        r = s.result
        if r.status is Status.PASS and s.matches_expected is not False:
            continue
        lines.append(f"{r.status.symbol} {s.label}: {r.summary}")
    return lines


def render_table(report: CausalityReport) -> str:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for k, name in enumerate(HEADERS):
        table.add_column(name, no_wrap=True, justify="right" if k >= 6 else "left")
    for s in report.subjects:
        table.add_row(*_cells(s))
    buf = io.StringIO()
    console = Console(file=buf, width=WIDTH, color_system=None, force_terminal=False, highlight=False)
    for line in _header_lines(report):
        console.print(line, soft_wrap=True, markup=False)
    console.print()
    console.print(table)
    details = _details(report)
    if details:
        console.print()
        for line in details:
            console.print(line, soft_wrap=True, markup=False)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: CausalityReport, command: str | None = None) -> str:
    lines = ["# Causality audit", ""]
    lines += [f"**{_header_lines(report)[0].split(': ', 1)[1]}**", ""]
    lines += [f"- {line}" for line in _header_lines(report)[1:]]
    lines += ["", "| " + " | ".join(_md_escape(h) for h in HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for s in report.subjects:
        lines.append("| " + " | ".join(_md_escape(c) or " " for c in _cells(s)) + " |")
    details = _details(report)
    if details:
        lines += ["", "## Findings", ""] + [f"- {_md_escape(d)}" for d in details]
    lines += ["", "Tests: null control (two unflipped runs must agree), stream flip (whole stream re-scored, "
              "earlier targets must not move), target flip (only the target changes; earlier targets must not move), "
              "distribution (the row scoring a target must not move when it or later tokens change), "
              "normalization (rows sum to 1). Self-prediction advantage: NLL of the true token when the "
              "evaluator saw a wrong target minus when it saw the true one (0 for a causal evaluator)."]
    if command:
        lines += ["", "Generated with:", "", "```", command, "```"]
    return "\n".join(lines) + "\n"


def render(report: CausalityReport, fmt: Format, *, command: str | None = None) -> str:
    """``command`` (the exact command line) is added to the Markdown report, for reproducibility."""
    if fmt is Format.json:
        return dumps_json(report.to_json())
    if fmt is Format.markdown:
        return render_markdown(report, command)
    return render_table(report)
