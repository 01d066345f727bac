"""`golf-audit checks`: list the registered checks, or show one check's documentation."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..output import SCHEMA_VERSION, Format, dumps_json, emit, plain_text
from ..errors import BadInput
from .common import guarded


def register(app: typer.Typer) -> None:
    @app.command("checks")
    @guarded
    def checks_command(
        check_id: Annotated[Optional[str], typer.Argument(help="Show this check's documentation (rationale, example, fix).")] = None,
        *,
        format: Annotated[Format, typer.Option("--format", "-f", help="table, json or markdown.")] = Format.table,
        output: Annotated[Optional[str], typer.Option(help="Write to this file (atomically) instead of stdout.")] = None,
    ) -> None:
        """List every check with its stable id, severity, rule and remediation."""
        from ..checks import all_checks, get_check
        from ..inputs import output_file

        output_file(output)
        if check_id is not None and not check_id.strip():
            raise BadInput("CHECK_ID: empty (omit it to list every check)")

        checks = [get_check(check_id)] if check_id else all_checks()
        rows = [
            {"id": c.id, "title": c.title, "severity": c.severity.value, "family": c.family,
             "dynamic": c.dynamic, "rule": c.rule, "remediation": c.remediation, "doc": c.doc}
            for c in checks
        ]
        if format is Format.json:
            emit(dumps_json({"schema_version": SCHEMA_VERSION, "checks": rows}), output)
        elif check_id:
            emit(checks[0].id + ": " + checks[0].title + "\n\n" + checks[0].doc + f"\n\nSeverity: {checks[0].severity.value}\nRule: {checks[0].rule}\n", output)
        elif format is Format.markdown:
            lines = ["| Id | Title | Severity | Rule | Remediation |", "|---|---|---|---|---|"]
            lines += [f"| `{r['id']}` | {r['title']} | {r['severity']} | {r['rule']} | {r['remediation']} |" for r in rows]
            emit("\n".join(lines), output)
        else:
            from rich import box
            from rich.table import Table

            table = Table(box=box.SIMPLE_HEAD, show_edge=False)
            for name in ("Id", "Title", "Severity", "Family", "Rule"):
                table.add_column(name, overflow="fold")
            for r in rows:
                table.add_row(r["id"], r["title"], r["severity"], r["family"] + (" (--dynamic)" if r["dynamic"] else ""), r["rule"])
            emit(plain_text([table], 160), output)
