"""Plain-text tables for a terminal (rich, rendered without colour so the text is stable)."""

from __future__ import annotations


from rich import box
from rich.table import Table

from ..findings import Status
from ..output import plain_text
from ..report import ARTIFACT_IDS, TIME_IDS, AuditReport, FolderAudit
from . import common

WIDTH = 150  # fixed so the text is the same on every terminal and in tests
TREE_WIDTH = 230  # the leaderboard names two folders per row




def _checks_table(audit: FolderAudit) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("", "Check", "Status", "Severity", "Summary"):
        table.add_column(name, overflow="fold")
    for r in audit.results:
        table.add_row(r.status.symbol, r.check_id, r.status.value, r.severity.value, r.summary)
    return table


def _evidence(audit: FolderAudit) -> list[str]:
    lines = []
    for r in audit.results:
        if r.status not in (Status.FAIL, Status.WARN, Status.ERROR):
            continue
        lines.append(f"{r.status.symbol} {r.check_id} {r.title}: {r.status.value}")
        for ev in r.evidence:
            loc = common.location(ev)
            m = common.measured(ev)
            lines.append("    " + " ".join(x for x in (f"{loc}:" if loc else "", ev.message, f"({m})" if m else "") if x))
        if r.status is not Status.ERROR:  # an error needs the audit fixed, not the submission
            lines.append(f"    fix: {r.remediation}")
    return lines


def _leaderboard(report: AuditReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("Folder", "Claimed bpb", "Artifact", "Significance vs previous leader", "Time", "Worst finding"):
        table.add_column(name, overflow="fold", justify="right" if name == "Claimed bpb" else "left")
    for a in report.folders:
        art, tim = a.family_verdict(ARTIFACT_IDS), a.family_verdict(TIME_IDS)
        table.add_row(a.name, common.bpb_cell(a.claimed_bpb), f"{art.symbol} {art.value}",
                      common.significance_cell(a), f"{tim.symbol} {tim.value}", common.finding_cell(a))
    return table


def render(report: AuditReport) -> str:
    symbol, word = common.verdict_line(report)
    head = f"{symbol} {word}: {common.counts_text(report.counts())} (fail-on: {report.fail_on.value})"
    if report.recursive:
        return plain_text([f"golf-audit report {report.subject} ({common.folders_text(len(report.folders))})", head, "",
                           _leaderboard(report)], TREE_WIDTH)
    audit = report.folders[0]
    title = f"golf-audit report {audit.name}" + (f" vs baseline {audit.baseline}" if audit.baseline else "")
    text = plain_text([title, head, "", _checks_table(audit)], WIDTH)
    evidence = _evidence(audit)
    return text + ("\n" + "\n".join(evidence) + "\n" if evidence else "")
