"""`golf-audit report`: one compliance report for a PR folder or a whole records tree."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import BadInput
from ..findings import Severity
from ..output import emit, stderr_console
from ..render import ReportFormat
from .common import guarded


def register(app: typer.Typer) -> None:
    @app.command("report")
    @guarded
    def report_command(
        folder: Annotated[Path, typer.Argument(help="A records folder (the one a PR adds), or a records tree with --recursive.")],
        *,
        recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Audit every records folder under FOLDER and print a leaderboard; each folder is tested against the previous leader of its track.")] = False,
        baseline: Annotated[Optional[Path], typer.Option(help="Previous leader's records folder, for the significance checks (GA-SIG-*).")] = None,
        order: Annotated[Optional[Path], typer.Option("--order", help="With --recursive: PR number per folder ('N folder' lines or JSON), where git history is absent.")] = None,
        dynamic: Annotated[bool, typer.Option("--dynamic", help="Also run the slow dynamic checks (flip test of the script's own eval functions in a child process).")] = False,
        python: Annotated[Optional[str], typer.Option("--python", help="Python interpreter for the dynamic checks' child process (e.g. a 3.12 for scripts that need it).")] = None,
        unsafe_no_sandbox: Annotated[bool, typer.Option("--unsafe-no-sandbox", help="With --dynamic: run the submission's code without the OS sandbox (bubblewrap) when none is available. Unsafe: the code can reach the network and your files.")] = False,
        fail_on: Annotated[Severity, typer.Option(help="Exit 1 when a check of this severity or higher fails.")] = Severity.ERROR,
        check: Annotated[Optional[list[str]], typer.Option("--check", help="Run only these check ids (repeatable); see `golf-audit checks`.")] = None,
        format: Annotated[ReportFormat, typer.Option("--format", "-f", help="table, json, markdown (PR comment) or sarif (code scanning).")] = ReportFormat.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report to this file (atomically) instead of stdout.")] = None,
    ) -> None:
        """One compliance report for a records FOLDER (a PR), or a whole tree with --recursive.

        Exit codes: 0 no failure; 1 a check at or above --fail-on failed; 2 bad input, or an audit that cannot conclude (a check errored, or none could run).
        """
        from ..checks import select
        from ..render import render
        from ..render.common import counts_text, verdict_line
        from ..report import audit_single, audit_tree
        from ..inputs import FILE, FOLDER, existing, interpreter, output_file

        existing(folder, "FOLDER", FOLDER)
        existing(baseline, "--baseline", FOLDER)
        existing(order, "--order", FILE)
        interpreter(python)
        output_file(output)
        if recursive and baseline is not None:
            raise BadInput("--baseline does not apply with --recursive (each folder uses the previous leader)")
        if python is not None and not dynamic:
            raise BadInput("--python needs --dynamic (only the dynamic checks run the script)")

        checks = select(check)
        # The report's provenance: the command rebuilt from the parsed options, so it reads the
        # same however the CLI was invoked (console script, python -m, a test runner).
        parts = ["golf-audit", "report", str(folder)]
        parts += ["--recursive"] if recursive else []
        parts += ["--baseline", str(baseline)] if baseline is not None and not recursive else []
        parts += ["--order", str(order)] if order is not None and recursive else []
        parts += ["--dynamic"] if dynamic else []
        parts += ["--python", python] if python else []
        parts += ["--unsafe-no-sandbox"] if unsafe_no_sandbox else []
        parts += ["--fail-on", fail_on.value] if fail_on is not Severity.ERROR else []
        for check_id in check or []:
            parts += ["--check", check_id]
        parts += ["--format", format.value]
        command = shlex.join(parts)
        if recursive:
            from ..records.chronology import read_order_file

            report = audit_tree(folder, dynamic=dynamic, checks=checks, fail_on=fail_on, command=command,
                                order=read_order_file(order) if order is not None else None,
                                unsafe_no_sandbox=unsafe_no_sandbox)
        else:
            report = audit_single(folder, baseline=baseline, dynamic=dynamic, python=python, checks=checks,
                                  fail_on=fail_on, command=command, unsafe_no_sandbox=unsafe_no_sandbox)
        emit(render(report, format), output)
        symbol, word = verdict_line(report)
        stderr_console.print(f"{symbol} {word}: {counts_text(report.counts())}", markup=False)
        raise typer.Exit(report.exit_code())
