"""``golf-audit artifact FOLDER``: the 16,000,000-byte cap, uncounted code, logged sizes, the
container and the time limits of one records folder.

Examples::

    golf-audit artifact records/track_10min_16mb/2026-03-18_LongContextSeq2048
    golf-audit artifact my_pr_folder --format markdown --output artifact.md

Exit codes: 0 no check failed, 1 a check failed (over the cap, corrupt artifact, over time),
2 bad input, a check that could not conclude (an unrecognised artifact), or nothing checkable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..output import Format, emit, stderr_console
from .common import guarded


def register(app: typer.Typer) -> None:
    @app.command("artifact")
    @guarded
    def artifact_command(
        folder: Annotated[Path, typer.Argument(help="A records folder: submission.json, train logs, train_gpt.py, *.ptz.", show_default=False)],
        *,
        format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """Check code + compressed model ≤ 16,000,000 bytes, counting every file the script loads."""
        from ..artifact import audit_artifact, audit_time_limits
        from ..artifact.render import exit_code, render, verdict

        from ..inputs import FOLDER, existing, output_file

        existing(folder, "FOLDER", FOLDER)
        output_file(output)
        report = audit_artifact(folder)
        times = audit_time_limits(report.record, report.script)
        emit(render(report, times, format), output)
        stderr_console.print(f"artifact: {verdict(report, times).value}")
        raise typer.Exit(exit_code(report, times))
