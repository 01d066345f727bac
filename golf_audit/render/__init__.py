"""Renderers of an ``AuditReport``: one small module per format, each ``render(report) -> str``."""

from __future__ import annotations

import enum
from typing import Callable

from ..report import AuditReport


class ReportFormat(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


def renderer(fmt: ReportFormat) -> Callable[[AuditReport], str]:
    """The ``render`` function of ``fmt``."""
    from . import json as json_, markdown, sarif, table

    return {
        ReportFormat.table: table.render,
        ReportFormat.json: json_.render,
        ReportFormat.markdown: markdown.render,
        ReportFormat.sarif: sarif.render,
    }[ReportFormat(fmt)]


def render(report: AuditReport, fmt: ReportFormat | str) -> str:
    return renderer(ReportFormat(fmt))(report)
