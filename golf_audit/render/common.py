"""Formatting shared by the renderers: numbers with units, evidence lines, verdict words."""

from __future__ import annotations

from typing import Any

from ..errors import EXIT_BAD_INPUT, EXIT_VIOLATION
from ..findings import Evidence, Status
from ..report import AuditReport, FolderAudit



def number(value: Any, unit: str | None = None) -> str:
    """``16004211, "bytes"`` → ``16,004,211 bytes``; floats keep up to 6 significant decimals."""
    if isinstance(value, bool) or value is None:
        text = "—" if value is None else str(value).lower()
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.6g}"
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


def location(ev: Evidence) -> str:
    if not ev.file:
        return ""
    return f"{ev.file}:{ev.line}" if ev.line else ev.file


def measured(ev: Evidence) -> str:
    """``measured 16,004,211 bytes, threshold 16,000,000 bytes`` (empty when neither is known)."""
    parts = []
    if ev.value is not None:
        parts.append(f"measured {number(ev.value, ev.unit)}")
    if ev.threshold is not None:
        parts.append(f"threshold {number(ev.threshold, ev.unit)}")
    return ", ".join(parts)


def verdict_line(report: AuditReport) -> tuple[str, str]:
    """(symbol, word) for the whole report, consistent with its exit code."""
    code = report.exit_code()
    if code == EXIT_VIOLATION:
        return "✖", "FAIL"
    if code == EXIT_BAD_INPUT:
        return "‼", "CANNOT CONCLUDE"
    statuses = {r.status for r in report.results}
    if Status.PASS not in statuses and not statuses & {Status.WARN, Status.FAIL}:
        return "–", "NOTHING CHECKED (no check could run)"
    # Gated checks (at or above --fail-on) that did not run, other than dynamic ones not asked for:
    # a "no failure" with those missing must say so, never read as a pass.
    missing = sorted({r.check_id for r in report.results if r.status is Status.NOT_RUN
                      and r.severity.rank >= report.fail_on.rank and not r.summary.startswith("dynamic checks run only")})
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        return "⚠", f"NO FAILURE FOUND, but {len(missing)} check(s) at or above {report.fail_on.value} did not run ({shown})"
    if statuses & {Status.WARN, Status.FAIL, Status.ERROR}:
        return "⚠", "NO FAILURE at or above the fail-on severity; warnings below it to review"
    if Status.NOT_RUN in statuses:
        if all(r.summary.startswith("dynamic checks run only") for r in report.results if r.status is Status.NOT_RUN):
            return "✔", "PASS (dynamic checks not requested)"
        return "✔", "NO FAILURE (some checks not run)"
    return "✔", "PASS"


def counts_text(counts: dict[str, int]) -> str:
    """``1 fail, 0 error, 1 warn, 3 pass, 2 not-run, 0 not-applicable`` (status names, no plurals)."""
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def significance_cell(audit: FolderAudit) -> str:
    """The leader-rule result in words: ``✔ p=0.012 vs <leader>``."""
    result = audit.result("GA-SIG-002")
    if result is None:
        return "—"
    text = f"{result.status.symbol} {result.status.value}"
    p = result.data.get("pvalue")
    if isinstance(p, (int, float)):
        from ..stats import format_p

        text += f" p={format_p(p)}"
    if audit.baseline and result.status in (Status.PASS, Status.FAIL, Status.WARN, Status.ERROR):
        text += f" vs {audit.baseline}"
    return text


def finding_cell(audit: FolderAudit) -> str:
    finding = audit.worst_finding()
    if finding is None:
        return "—"
    return f"{finding.status.symbol} {finding.check_id} ({finding.status.value}, {finding.severity.value})"


def bpb_cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.5f}"


def folders_text(n: int) -> str:
    return f"{n} folder" if n == 1 else f"{n} folders"
