"""SLOT comparison reports: table, Markdown and JSON, each opening with the finding in one sentence."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from ..output import Format, dumps_json
from .compare import LABELS, SlotComparison, to_json

WIDTH = 140


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "—" if x is None else format(x, spec)


def _verdict(v) -> str:
    if v.causality is None:
        return "not run"
    mark = {"pass": "✔", "fail": "✖", "error": "‼"}.get(v.causality, "")
    text = f"{mark} {v.causality}"
    if v.channels:
        text += f" ({'+'.join(v.channels)} channel)"
    return text


def _main_rows(r: SlotComparison) -> list[list[str]]:
    rows = [["sliding", _fmt(r.sliding_bpb), _fmt(r.sliding_loss), "—", "—", "✔ causal by construction", "—"]]
    for v in r.variants:
        rows.append([v.label, _fmt(v.val_bpb), _fmt(v.val_loss), _fmt(v.gain_bpb, "+.4f"), _fmt(v.gain_nats, "+.4f"),
                     _verdict(v), _fmt(v.self_prediction, "+.4f")])
    return rows


MAIN_HEADERS = ["Evaluation", "bpb ↓", "val_loss ↓", "gain (bpb)", "gain (nats)", "causality (flip test)",
                "self-pred. adv. (nats)"]


def _sweep_headers(r: SlotComparison) -> list[str]:
    keys = list(r.sweep[0].bpb) if r.sweep else []
    return [r.sweep[0].parameter if r.sweep else "value", "sliding bpb"] + [f"{LABELS[k]} bpb" for k in keys] + \
        ["leak (bpb)", "leak (nats)"]


def _sweep_rows(r: SlotComparison) -> list[list[str]]:
    return [[row.value, _fmt(row.sliding_bpb)] + [_fmt(b) for b in row.bpb.values()] +
            [_fmt(row.leak_bpb, "+.4f"), _fmt(row.leak_nats, "+.4f")] for row in r.sweep]


def _context_lines(r: SlotComparison) -> list[str]:
    settings = ", ".join(f"{k}={v}" for k, v in r.settings.items()) or "seed defaults"
    if "tail" not in r.settings:  # say which window enumeration the numbers use
        settings += " (windows as the seed enumerates them: tail windows re-score the last targets)"
    share = f" ({100 * r.leak_share:.0f}% of the scored-mask gain)" if r.leak_share is not None else ""
    return [f"Leak = bpb(context, window) − bpb(scored, window) = {r.leak_bpb:+.4f} bpb = {r.leak_nats:+.4f} nats/token{share}",
            f"model: {r.model}; stream: {r.stream} ({r.stream_tokens} tokens); SLOT settings: {settings}",
            (f"causality: {r.audit_flips} flips per variant on the first {r.audit_tokens} tokens (audit geometry "
             f"seq_len 32, stride 8 unless set)" if r.audit_flips else "causality: flip test skipped (--flips 0)")
            + f"; {r.seconds:.1f} s"]


def render_table(r: SlotComparison) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=WIDTH, color_system=None, force_terminal=False, highlight=False)
    console.print(r.finding(), soft_wrap=True, markup=False)
    console.print()
    for line in _context_lines(r):
        console.print(line, soft_wrap=True, markup=False)
    for headers, rows in ((MAIN_HEADERS, _main_rows(r)), (_sweep_headers(r), _sweep_rows(r))):
        if not rows:
            continue
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for k, h in enumerate(headers):
            table.add_column(h, justify="left" if k == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print()
        console.print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, headers)) + " |", "|" + "---|" * len(headers)] + \
        ["| " + " | ".join(map(esc, row)) + " |" for row in rows]


def render_markdown(r: SlotComparison, *, command: str | None = None, plot: str | None = None) -> str:
    lines = ["# SLOT: how much of the gain is leakage", "", f"**{r.finding()}**", ""]
    lines += [f"- {line}" for line in _context_lines(r)]
    lines += ["", *_md_table(MAIN_HEADERS, _main_rows(r))]
    if r.sweep:
        lines += ["", f"## Sweep over {r.sweep[0].parameter}", "", *_md_table(_sweep_headers(r), _sweep_rows(r))]
    if plot:
        lines += ["", f"![bpb against {r.sweep[0].parameter if r.sweep else 'steps'}]({plot})"]
    lines += ["", "How to read it: *scored mask* fits SLOT's delta on the positions it then scores (the seed PR); "
              "*context mask* fits it only on the window's earlier tokens, already scored by earlier windows; "
              "*batch* shares one delta across 32 consecutive windows. The flip test changes one token and checks "
              "that no earlier score moves; the self-prediction advantage is how many nats the true token gains when "
              "the evaluator saw it (0 for a causal evaluator)."]
    for v in r.variants:
        if v.causality_summary:
            lines.append(f"- {v.label}: {v.causality_summary}")
    if command:
        lines += ["", "Generated with:", "", "```", command, "```"]
    return "\n".join(lines) + "\n"


def render(r: SlotComparison, fmt: Format, *, command: str | None = None, plot: str | None = None) -> str:
    if fmt is Format.json:
        data = to_json(r)
        if command:
            data["command"] = command
        return dumps_json(data)
    if fmt is Format.markdown:
        return render_markdown(r, command=command, plot=plot)
    return render_table(r)
