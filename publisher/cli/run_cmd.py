"""`publisher run` and `publisher demo` (issue 6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from publisher.cli.common import UserError
from publisher.workspace import default_home


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        host: str = typer.Option("127.0.0.1", "--host", help="Address for the HTTP surface."),
        port: int = typer.Option(8780, "--port", help="Port: /intake, /healthz, /metrics."),
        workers: int = typer.Option(1, "--workers", min=0, help="Delivery workers in-process."),
        poll_tick: float = typer.Option(5.0, "--poll-tick", help="Seconds between poll checks."),
        log_json: bool = typer.Option(
            False, "--log-json", help="Structured logs, one JSON a line."
        ),
    ) -> None:
        """The long-running service: poll, route, schedule, deliver, intake API, metrics.

        Stops cleanly on SIGTERM or SIGINT: in-flight sends finish, nothing is left claimed.
        """
        from publisher import audit, redact
        from publisher.runtime import build_runtime
        from publisher.service_process import configure_logging, run_service
        from publisher.settings import ConfigError
        from publisher.workspace import Workspace

        configure_logging(log_json)
        redact.install()
        workspace = Workspace.from_env()
        if not workspace.config_dir.is_dir():
            raise UserError(f"{workspace.home}: no working folder here; run `publisher init` first")
        try:
            runtime = build_runtime(workspace)
        except ConfigError as error:
            raise UserError(error.problems) from None

        async def main() -> None:
            try:
                await run_service(
                    runtime, host=host, port=port, workers=workers, poll_tick_s=poll_tick
                )
            finally:
                # Record the audit chain's head outside the database: truncation shows later.
                audit.anchor_database(
                    runtime.engine, workspace.home / audit.ANCHOR_FILE_NAME, datetime.now(UTC)
                )
                await runtime.aclose()

        asyncio.run(main())

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
