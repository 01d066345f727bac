"""Placeholder: the `checks` command is being built (see its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("checks", hidden=True)
    def _placeholder() -> None:
        raise typer.Exit(2)
