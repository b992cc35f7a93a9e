"""`publisher run` and `publisher demo` (issue 6)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from publisher.cli.common import UserError, not_built_yet
from publisher.workspace import default_home


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run() -> None:
        """The long-running service: poll, route, schedule, deliver, intake API, metrics."""
        not_built_yet("run", 6)

    @app.command("demo")
    def demo(
        directory: Path | None = typer.Option(
            None, "--dir", help="Demo folder (default: <PUBLISHER_HOME or ./.publisher>/demo)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """The main job on the embedded default: SQLite and the sandbox on loopback."""
        from publisher.demo.run import DemoError, print_summary, report_json, run_demo

        console = Console(stderr=as_json)
        try:
            report = run_demo(directory or default_home() / "demo", console)
        except DemoError as error:
            raise UserError(f"demo: {error}") from None
        if as_json:
            print(report_json(report))
        else:
            print_summary(report, console)
