"""Markdown for a PR comment: a one-line verdict, a table of checks, evidence in <details>."""

from __future__ import annotations

import html
from typing import Callable, Optional

from ..findings import CheckResult, Evidence, Status
from ..report import ARTIFACT_IDS, TIME_IDS, AuditReport, FolderAudit
from . import common
from .common import number

FOOTER_LABEL = "golf-audit"
# Where a piece of evidence can be read (e.g. a permalink into the PR's commit), or None.
Linker = Callable[[FolderAudit, Evidence], Optional[str]]


def _text(text: str) -> str:
    # GitHub drops what looks like an HTML tag ("<none>", "<log>"): escape it to show it.
    return html.escape(" ".join(str(text).split()), quote=False)


def _cell(text: str) -> str:
    # Pipes and newlines would break the table row.
    return _text(text).replace("|", "\\|")


def _checks_table(results: list[CheckResult]) -> list[str]:
    lines = ["| | Check | Title | Severity | Result |", "|:-:|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.status.symbol} | `{r.check_id}` | {_cell(r.title)} | {r.severity.value} | "
            f"**{r.status.value}**: {_cell(r.summary)} |"
        )
    return lines


def _details(r: CheckResult, audit: FolderAudit | None = None, link: Linker | None = None) -> list[str]:
    lines = [f"<details><summary>{r.status.symbol} <code>{r.check_id}</code> {_text(r.title)}: {r.status.value}</summary>", ""]
    lines.append(_text(r.summary))
    lines.append("")
    lines.append(f"- Rule: {_text(r.rule)}")
    for ev in r.evidence:
        url = link(audit, ev) if link and audit and ev.file else None
        parts = [f"[`{common.location(ev)}`]({url})" if url else f"`{common.location(ev)}`"] if ev.file else []
        parts.append(_cell(ev.message))
        m = common.measured(ev)
        if m:
            parts.append(f"({m})")
        lines.append("- " + " ".join(parts))
        if ev.snippet:
            lines += ["", "  ```", *("  " + s for s in ev.snippet.splitlines()), "  ```"]
    if r.status in (Status.FAIL, Status.WARN):  # an error needs the audit fixed, not the submission
        lines.append(f"- Fix: {_text(r.remediation)}")
    lines += ["", "</details>"]
    return lines


def _folder_body(audit: FolderAudit, link: Linker | None = None) -> list[str]:
    lines = _checks_table(audit.results)
    shown = [r for r in audit.results if r.evidence or r.status in (Status.FAIL, Status.WARN, Status.ERROR)]
    if shown:
        lines.append("")
        for r in shown:
            lines += _details(r, audit, link)
    return lines


def _footer(report: AuditReport) -> list[str]:
    commit = ""
    if not report.recursive and report.folders and report.folders[0].commit:
        commit = f" · folder commit {report.folders[0].commit[:12]}"
    return [
        "",
        f"<sub>{FOOTER_LABEL} {report.tool_version} · {report.date}{commit} · "
        f"`{report.command or 'golf-audit report'}`</sub>",
    ]


def _leaderboard(report: AuditReport) -> list[str]:
    lines = [
        "| Folder | Claimed val_bpb (bpb) | Artifact | Significance vs previous leader | Time | Worst finding |",
        "|---|--:|---|---|---|---|",
    ]
    for a in report.folders:
        art = a.family_verdict(ARTIFACT_IDS)
        tim = a.family_verdict(TIME_IDS)
        lines.append(
            f"| `{_cell(a.name)}` | {common.bpb_cell(a.claimed_bpb)} | {art.symbol} {art.value} | "
            f"{_cell(common.significance_cell(a))} | {tim.symbol} {tim.value} | {_cell(common.finding_cell(a))} |"
        )
    return lines


def render(report: AuditReport, link: Linker | None = None) -> str:
    symbol, word = common.verdict_line(report)
    counts = common.counts_text(report.counts())
    lines: list[str] = []
    if report.recursive:
        lines.append(f"### golf-audit report: `{report.subject}` ({common.folders_text(len(report.folders))})")
        lines += ["", f"**{symbol} {word}**: {counts} (fail-on: {report.fail_on.value})", ""]
        lines += _leaderboard(report)
        lines += ["", "#### Findings per folder", ""]
        for a in report.folders:
            bad = [r for r in a.results if r.status in (Status.FAIL, Status.WARN, Status.ERROR)]
            if not bad:
                continue
            v = a.verdict
            lines += [f"<details><summary>{v.symbol} <code>{a.name}</code>: {common.counts_text(a.counts())}</summary>", ""]
            lines += _checks_table(bad)
            lines.append("")
            for r in bad:
                lines += _details(r, a, link)
            lines += ["", "</details>"]
    else:
        audit = report.folders[0]
        against = f" vs baseline `{audit.baseline}`" if audit.baseline else ""
        lines.append(f"### golf-audit report: `{audit.name}`{against}")
        lines += ["", f"**{symbol} {word}**: {counts} (fail-on: {report.fail_on.value})", ""]
        lines += _folder_body(audit, link)
    lines += _footer(report)
    return "\n".join(lines) + "\n"


__all__ = ["render", "number"]
