"""`init`, `config check`, `db upgrade` and `status`: standing up a working folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from publisher.cli.common import UserError
from publisher.domain import FINAL_DELIVERY_STATES
from publisher.settings import Config, ConfigError
from publisher.workspace import Workspace, sync_directory

config_app = typer.Typer(help="Deployment configuration.")
db_app = typer.Typer(help="Database schema.")


def _load(workspace: Workspace) -> Config:
    try:
        return workspace.load_config()
    except ConfigError as error:
        raise UserError(error.problems) from None


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        directory: Path | None = typer.Option(
            None, "--dir", help="Working folder (default: $PUBLISHER_HOME or ./.publisher)."
        ),
    ) -> None:
        """Make a working folder: sample configuration and a migrated database. Safe twice."""
        workspace = Workspace.from_env(directory)
        copied = workspace.create()
        config = _load(workspace)
        workspace.upgrade_database()
        try:
            sync_directory(config, workspace.repository())
        except ConfigError as error:
            raise UserError(error.problems) from None
        console = Console()
        console.print(f"Thư mục làm việc · working folder: [bold]{workspace.home}[/]")
        console.print(f"  configuration files copied: {len(copied)} (existing files kept)")
        console.print(f"  database: {workspace.database_url}")
        console.print(
            f"  units {len(config.units)}, users {len(config.users)}, "
            f"accounts {len(config.accounts)}, sources {len(config.sources)}"
        )

    @config_app.command("check")
    def check(
        directory: Path | None = typer.Option(
            None, "--dir", help="Working folder (default: $PUBLISHER_HOME or ./.publisher)."
        ),
    ) -> None:
        """Validate the configuration; exit 2 with one `file: key: reason` line per problem."""
        workspace = Workspace.from_env(directory)
        config = _load(workspace)
        print(
            f"configuration OK: {len(config.units)} units, {len(config.users)} users, "
            f"{len(config.accounts)} accounts, {len(config.sources)} sources"
        )
        if config.replaced:
            print(
                f"  {len(config.replaced)} sample unit(s) replaced by official ones "
                "(units-national.toml): their accounts, roles and sources belong to the "
                "official units"
            )

    @db_app.command("upgrade")
    def upgrade() -> None:
        """Apply database migrations (Alembic)."""
        workspace = Workspace.from_env()
        workspace.upgrade_database()
        print(f"database at the newest schema: {workspace.database_url}")

    @app.command("status")
    def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Counts of articles, posts and deliveries by state (hot, and archived apart)."""
        workspace = Workspace.from_env()
        workspace.upgrade_database()
        counts = workspace.repository().status_counts().to_json()
        if as_json:
            print(json.dumps(counts, ensure_ascii=False))
            return
        table = Table(title="Trạng thái · status")
        table.add_column("")
        table.add_column("", justify="right")
        table.add_row("articles", str(counts["articles"]))
        for group in ("posts", "deliveries", "withdrawals"):
            states = counts[group]
            assert isinstance(states, dict)
            for state, n in states.items():
                table.add_row(f"{group}.{state}", str(n))
        # Only finished states are ever archived: list those, zeros included, so the operator
        # sees the archive is counted even before the first `publisher archive`.
        archived = counts["deliveries_archived"]
        assert isinstance(archived, dict)
        for state in sorted(s.value for s in FINAL_DELIVERY_STATES):
            table.add_row(f"deliveries_archived.{state}", str(archived[state]))
        Console().print(table)

    app.add_typer(config_app, name="config")
    app.add_typer(db_app, name="db")
