"""`publisher report coverage` and `publisher accounts check` (issue 7)."""

from __future__ import annotations

import typer

from publisher.cli.common import not_built_yet

report_app = typer.Typer(help="Reports: who published what, when, where.")
accounts_app = typer.Typer(help="Channel accounts: credential health.")


def register(app: typer.Typer) -> None:
    @report_app.command("coverage")
    def coverage(
        article: int | None = typer.Option(None, "--article"),
        fmt: str = typer.Option("table", "--format", help="table | csv | xlsx | png | json"),
    ) -> None:
        """Coverage of directives across units and channels."""
        del article, fmt
        not_built_yet("report coverage", 7)

    @accounts_app.command("check")
    def check() -> None:
        """Tokens expiring soon, failing or revoked, per unit."""
        not_built_yet("accounts check", 7)

    app.add_typer(report_app, name="report")
    app.add_typer(accounts_app, name="accounts")
