"""``golf-audit pr N``: audit the records folder(s) pull request N adds, as a Markdown PR comment.

Examples::

    cd parameter-golf && golf-audit pr 1530                  # fetches refs/pull/1530/head if needed
    golf-audit pr 1530 --repo ~/parameter-golf --no-dynamic --output comment.md
    golf-audit pr 1530 --format json --sarif golf-audit.sarif

Exit codes: 0 no failure; 1 a check at or above --fail-on failed in a folder; 2 bad input
(no such PR, no records folder in it) or an audit that cannot conclude.
"""

from __future__ import annotations

import enum
import shlex
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import BadInput
from ..findings import Severity
from ..output import emit, stderr_console, write_atomic
from .common import guarded


class PrFormat(str, enum.Enum):
    markdown = "markdown"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command("pr")
    @guarded
    def pr_command(
        number: Annotated[int, typer.Argument(help="The pull request number.", show_default=False)],
        *,
        repo: Annotated[Path, typer.Option(help="A clone of the challenge repository (default: the current directory's).")] = Path("."),
        remote: Annotated[str, typer.Option(help="Remote to fetch refs/pull/N/head from, and whose URL the links use.")] = "origin",
        base: Annotated[Optional[str], typer.Option(help="The main branch to diff against (default: REMOTE/HEAD, else main or master).")] = None,
        dynamic: Annotated[bool, typer.Option("--dynamic/--no-dynamic", help="Run the PR's own eval functions in a sandbox (flip tests; minutes on CPU).")] = True,
        python: Annotated[Optional[str], typer.Option(help="Python interpreter for the dynamic checks (e.g. a 3.12 for scripts that need it).")] = None,
        fail_on: Annotated[Severity, typer.Option(help="Exit 1 when a check of this severity or higher fails.")] = Severity.ERROR,
        check: Annotated[Optional[list[str]], typer.Option("--check", help="Run only these check ids (repeatable); see `golf-audit checks`.")] = None,
        format: Annotated[PrFormat, typer.Option("--format", "-f", help="markdown (the PR comment) or json.")] = PrFormat.markdown,
        output: Annotated[Optional[Path], typer.Option(help="Write the comment to this file (atomically) instead of stdout.")] = None,
        sarif: Annotated[Optional[Path], typer.Option(help="Also write SARIF here (repository paths, for code scanning).")] = None,
    ) -> None:
        """Audit the records folder(s) a pull request adds or changes, against the record it had to beat.

        Fetches refs/pull/N/head when the clone lacks it, diffs it against its merge base with the main branch, picks each folder's baseline by PR number (the best earlier record of its track), runs the full report and prints one Markdown comment whose evidence links into the PR's commit (GitHub remotes; repository paths otherwise).
        """
        from ..checks import select
        from ..inputs import FOLDER, existing, interpreter, number as check_number, output_file
        from ..pr import audit_pr, render_json, render_markdown, render_sarif
        from ..render.common import counts_text

        check_number(number, "NUMBER", minimum=1)
        existing(repo, "--repo", FOLDER)
        interpreter(python)
        output_file(output)
        output_file(sarif, "--sarif")
        if not remote.strip():
            raise BadInput("--remote: empty name")
        if python is not None and not dynamic:
            raise BadInput("--python needs the dynamic checks (drop --no-dynamic)")
        checks = select(check)
        parts = ["golf-audit", "pr", str(number)]
        parts += ["--repo", str(repo)] if str(repo) != "." else []
        parts += ["--remote", remote] if remote != "origin" else []
        parts += ["--base", base] if base else []
        parts += [] if dynamic else ["--no-dynamic"]
        parts += ["--python", python] if python else []
        parts += ["--fail-on", fail_on.value] if fail_on is not Severity.ERROR else []
        for check_id in check or []:
            parts += ["--check", check_id]
        say = lambda msg: stderr_console.print(f"pr: {msg}", markup=False)  # noqa: E731
        with tempfile.TemporaryDirectory(prefix="golf-audit-pr-") as scratch:
            audit = audit_pr(repo, number, Path(scratch), remote=remote, base=base, dynamic=dynamic, python=python,
                             checks=checks, fail_on=fail_on, command=shlex.join(parts), progress=say)
            text = render_markdown(audit) if format is PrFormat.markdown else render_json(audit)
            if sarif is not None:
                write_atomic(sarif, render_sarif(audit))
                say(f"wrote {sarif}")
        emit(text, output)
        for folder in audit.folders:
            say(f"{folder.changed.path}: {counts_text(folder.report.counts())}")
        raise typer.Exit(audit.exit_code())
