"""`publisher ingest` (issue 3)."""

from __future__ import annotations

from pathlib import Path

import typer

from publisher.cli.common import not_built_yet


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        source: str = typer.Argument(..., help="Path or URL: RSS/Atom/JSON Feed, HTML page, or article JSON."),
        unit: str | None = typer.Option(None, "--unit", help="Owning unit code (directives default to the root)."),
        kind: str = typer.Option("article", "--kind", help="directive | article"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Parse and print; write nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array of normalised articles."),
    ) -> None:
        """Read articles from a feed, page or article JSON; store and route them."""
        del source, unit, kind, dry_run, as_json, Path
        not_built_yet("ingest", 3)
