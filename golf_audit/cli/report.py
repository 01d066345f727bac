"""Placeholder: the `report` command is being built (see its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("report", hidden=True)
    def _placeholder() -> None:
        raise typer.Exit(2)
