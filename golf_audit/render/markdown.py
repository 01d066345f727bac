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


# A GitHub comment holds 65,536 characters; the tree report stays under this with room to spare.
COMMENT_LIMIT = 65_536
TREE_BUDGET = 60_000
MAX_EVIDENCE = 8  # per check in the tree report; the JSON report has all of it


def _folder_permalink(audit: FolderAudit, ev: Evidence) -> str | None:
    """The default linker: the folder's commit on GitHub, when the folder is in such a checkout."""
    base = getattr(audit, "permalink", None)
    if not base or not ev.file:
        return None
    anchor = f"#L{ev.line}" if ev.line else ""
    return f"{base}/{ev.file}{anchor}"


def _where(ev: Evidence, audit: FolderAudit | None, link: Linker | None) -> str:
    """``path:line``, linked (a permalink into the commit) when a linker knows where it lives."""
    loc = common.location(ev)
    linker = link or _folder_permalink
    url = linker(audit, ev) if audit is not None and ev.file else None
    return f"[`{loc}`]({url})" if url else f"`{loc}`"


def _details(r: CheckResult, audit: FolderAudit | None = None, link: Linker | None = None,
             max_evidence: int | None = None) -> list[str]:
    lines = [f"<details><summary>{r.status.symbol} <code>{r.check_id}</code> {_text(r.title)}: {r.status.value}</summary>", ""]
    lines.append(_text(r.summary))
    lines.append("")
    lines.append(f"- Rule: {_text(r.rule)}")
    evidence = r.evidence if max_evidence is None else r.evidence[:max_evidence]
    for ev in evidence:
        parts = [_where(ev, audit, link)] if ev.file else []
        parts.append(_cell(ev.message))
        m = common.measured(ev)
        if m:
            parts.append(f"({m})")
        lines.append("- " + " ".join(parts))
        if ev.snippet:
            lines += ["", "  ```", *("  " + s for s in ev.snippet.splitlines()), "  ```"]
    if len(evidence) < len(r.evidence):
        lines.append(f"- … {len(r.evidence) - len(evidence)} more item(s) in the JSON report")
    if r.status in (Status.FAIL, Status.WARN):  # an error needs the audit fixed, not the submission
        lines.append(f"- Fix: {_text(r.remediation)}")
    lines += ["", "</details>"]
    return lines


def _folder_body(audit: FolderAudit, link: Linker | None = None) -> list[str]:
    lines = _checks_table(audit.results)
    bad = [r for r in audit.results if r.status in (Status.FAIL, Status.WARN, Status.ERROR)]
    notes = [r for r in audit.results if r.evidence and r not in bad]
    if bad:
        lines.append("")
        for r in bad:
            lines += _details(r, audit, link)
    if notes:
        # Evidence of the checks that passed (parse notes, what was counted): one collapsed block,
        # so that a compliant folder reads as a clean pass at a glance.
        lines += ["", f"<details><summary>Details of the {len(notes)} other check(s)</summary>", ""]
        for r in notes:
            lines += _details(r, audit, link)
        lines += ["", "</details>"]
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
        used = sum(len(x) + 1 for x in lines) + 400  # + the footer
        omitted = []
        for a in report.folders:
            bad = [r for r in a.results if r.status in (Status.FAIL, Status.WARN, Status.ERROR)]
            if not bad:
                continue
            v = a.verdict
            block = [f"<details><summary>{v.symbol} <code>{_text(a.name)}</code>: {common.counts_text(a.counts())}</summary>", ""]
            block += _checks_table(bad)
            block.append("")
            for r in bad:
                block += _details(r, a, link, MAX_EVIDENCE)
            block += ["", "</details>"]
            size = sum(len(x) + 1 for x in block)
            if used + size > TREE_BUDGET:
                omitted.append(a.name)
                continue
            used += size
            lines += block
        if omitted:
            lines += ["", f"Details of {len(omitted)} more folder(s) are left out to fit a GitHub comment "
                          f"({COMMENT_LIMIT:,} characters): run `golf-audit report FOLDER` on "
                          + ", ".join(f"`{_text(n)}`" for n in omitted[:10]) + (" …" if len(omitted) > 10 else "")
                          + ", or use `--format json` for everything."]
    else:
        audit = report.folders[0]
        against = f" vs baseline `{audit.baseline}`" if audit.baseline else ""
        lines.append(f"### golf-audit report: `{audit.name}`{against}")
        lines += ["", f"**{symbol} {word}**: {counts} (fail-on: {report.fail_on.value})", ""]
        lines += _folder_body(audit, link)
    lines += _footer(report)
    return "\n".join(lines) + "\n"


__all__ = ["render", "number"]
