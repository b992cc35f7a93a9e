"""`publisher preview` and `publisher sandbox serve` (issue 8)."""

from __future__ import annotations

import typer

from publisher.cli.common import not_built_yet

sandbox_app = typer.Typer(help="The platform sandbox: emulators of every platform, with a ledger.")


def register(app: typer.Typer) -> None:
    @app.command("preview")
    def preview(
        article: str = typer.Argument(..., help="An article JSON file or a stored article id."),
        channel: str = typer.Option(..., "--channel", help="facebook, youtube, zalo, viber, telegram, x"),
        unit: str | None = typer.Option(None, "--unit", help="Unit code whose template applies."),
        as_json: bool = typer.Option(False, "--json", help="Print the exact payload as JSON."),
    ) -> None:
        """Show exactly what would be sent to one channel."""
        del article, channel, unit, as_json
        not_built_yet("preview", 8)

    @sandbox_app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8765, "--port"),
        faults: str | None = typer.Option(None, "--faults", help="Fault spec (JSON) set at start."),
    ) -> None:
        """Serve every platform's emulator on one port, with a ledger and fault injection."""
        del host, port, faults
        not_built_yet("sandbox serve", 8)

    app.add_typer(sandbox_app, name="sandbox")
