"""`publisher tui` (issue 5)."""

from __future__ import annotations

import typer

from publisher.cli.common import not_built_yet


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(as_user: str | None = typer.Option(None, "--as", help="Act as this user.")) -> None:
        """The editors' terminal UI (Vietnamese first)."""
        del as_user
        not_built_yet("tui", 5)

    @app.command("import-plan")
    def import_plan(
        path: str = typer.Argument(..., help="CSV of posts: units, channels, times."),
    ) -> None:
        """Import a bulk posting plan, validated row by row before anything is saved."""
        del path
        not_built_yet("import-plan", 5)
