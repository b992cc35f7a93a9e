"""`publisher units import`: the whole country's unit tree from the official code list."""

from __future__ import annotations

import json
import os

import typer

from publisher.cli.common import UserError
from publisher.identity import IdentityRefused, current_os_user, resolve_identity, sandbox_enabled
from publisher.national import SOURCES, DivisionError, run_import
from publisher.service import ServiceError
from publisher.settings import ConfigError
from publisher.workspace import Workspace

units_app = typer.Typer(help="The unit tree.")


def register(app: typer.Typer) -> None:
    @units_app.command("import")
    def import_units(
        source: str = typer.Option(
            "vietnam-provinces", "--from", help=f"Where from: {', '.join(SOURCES)}."
        ),
        provinces: list[str] = typer.Option(
            [], "--province", help="Only this province's communes (2-digit code); repeatable."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Say what would change; write nothing."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        as_user: str | None = typer.Option(
            None, "--as", help="Act as this user (sandbox, or users allowed to act for others)."
        ),
    ) -> None:
        """Import the 34 provinces and their communes (QD19/2025) into config/units-national.toml
        and the database. Root admins only; audited; safe to repeat."""
        workspace = Workspace.from_env()
        if not workspace.config_dir.is_dir():
            raise UserError(f"{workspace.home}: no working folder here; run `publisher init` first")
        workspace.upgrade_database()
        repository = workspace.repository()
        try:
            identity = resolve_identity(
                current_os_user(), as_user, repository, sandbox_enabled(dict(os.environ))
            )
        except IdentityRefused as error:
            raise UserError(str(error)) from None
        finally:
            repository.engine.dispose()
        try:
            result = run_import(
                workspace,
                identity,
                source=source,
                provinces=[p.strip().zfill(2) for p in provinces],
                dry_run=dry_run,
            )
        except ConfigError as error:
            raise UserError(error.problems) from None
        except (DivisionError, ServiceError) as error:
            raise UserError(str(error)) from None
        if as_json:
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
            return
        plan = result.plan
        verb = "would write" if dry_run else ("wrote" if result.changed else "unchanged:")
        typer.echo(f"{plan.source}, code list {plan.code_list}")
        typer.echo(
            f"  provinces: {len(plan.provinces)} imported ({len(plan.matched_provinces)} already "
            f"in units.toml, {len(plan.added_provinces)} added); communes: {plan.communes}"
        )
        for replacement in plan.replaced:
            typer.echo(f"  replaced: {replacement.code} ({replacement.name}) → {replacement.by}")
        for note in plan.notes:
            typer.echo(f"  note: {note}")
        typer.echo(f"  {verb} {result.path}; units in the configuration: {result.units_total}")

    app.add_typer(units_app, name="units")
