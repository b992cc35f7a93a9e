"""`publisher run` and `publisher demo` (issue 6)."""

from __future__ import annotations

import typer

from publisher.cli.common import not_built_yet


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run() -> None:
        """The long-running service: poll, route, schedule, deliver, intake API, metrics."""
        not_built_yet("run", 6)

    @app.command("demo")
    def demo() -> None:
        """The main job on the embedded default (SQLite and the sandbox on loopback)."""
        not_built_yet("demo", 6)
