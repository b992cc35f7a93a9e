"""`publisher tui` and `publisher import-plan` (issue 5)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from publisher.cli.common import UserError
from publisher.settings.workflow import ScheduleFile

if TYPE_CHECKING:
    import sqlalchemy as sa

    from publisher.domain import User
    from publisher.workspace import Workspace
    from tui.backend import AccountServiceFactory, CoreBackend

LANGUAGE_ENV = "PUBLISHER_TUI_LANG"


@dataclass(frozen=True)
class Session:
    user: User
    backend: CoreBackend
    quiet_hours: tuple[int, int]


def _quiet_hours(schedule: ScheduleFile) -> tuple[int, int]:
    """The default quiet hours of schedule.toml as whole local hours, for the calendar."""
    spans = schedule.default.quiet_hours
    if not spans:
        return (0, 0)
    start, end = spans[0].split("-")
    return int(start.split(":")[0]), int(end.split(":")[0])


def account_service_factory(workspace: Workspace, engine: sa.Engine) -> AccountServiceFactory:
    """The account use cases for the TUI's account screen: fresh channels per call over the
    session's engine (real platforms, or the sandbox when PUBLISHER_SANDBOX_URL is set).
    Without a master key, connect and rotate say so when used; test and remove still work."""
    import httpx

    from channels.registry import sandbox_url_from_env
    from publisher.accounts import AccountService, platform_steps
    from publisher.runtime import build_channels, public_url_from_env
    from publisher.secrets import Keyring, SecretsError, SecretStore, load_keyring
    from publisher.store.sql import SqlRepository

    keyring: Keyring | None
    try:
        keyring = load_keyring(os.environ, workspace.home)
    except SecretsError:
        keyring = None
    repository = SqlRepository(engine)
    secrets = SecretStore(engine, keyring)

    def build(http: httpx.AsyncClient) -> AccountService:
        public_url = public_url_from_env()
        channels = build_channels(http, sandbox_url_from_env(), secrets, public_url=public_url)
        return AccountService(
            engine, repository, secrets, channels, after_connect=platform_steps(public_url)
        )

    return build


@contextmanager
def open_session(as_user: str | None) -> Iterator[Session]:
    """Open the working folder, resolve who is acting, and build the core's backend."""
    import httpx

    from channels.registry import load_channels
    from publisher.identity import (
        IdentityRefused,
        current_os_user,
        resolve_identity,
        sandbox_enabled,
    )
    from publisher.service import DeliveryService
    from publisher.settings import ConfigError
    from publisher.store.sql import SqlRepository
    from publisher.workspace import Workspace
    from tui.backend import CoreBackend

    workspace = Workspace.from_env()
    try:
        config = workspace.load_config()
    except ConfigError as error:
        raise UserError(error.problems) from None
    if (
        workspace.database_url.startswith("sqlite")
        and not (workspace.home / "publisher.db").exists()
    ):
        raise UserError(f"{workspace.home}: no database here; run `publisher init` first")
    engine = workspace.engine()
    repository = SqlRepository(engine)
    try:
        identity = resolve_identity(
            current_os_user(), as_user, repository, sandbox_enabled(os.environ)
        )
    except IdentityRefused as error:
        raise UserError(str(error)) from None
    schedule = config.schedule
    service = DeliveryService.from_config(engine, repository, config)
    http = httpx.AsyncClient()  # adapt() never sends; the channels only hold it
    try:
        backend = CoreBackend(
            engine,
            service,
            load_channels(http),
            accounts=account_service_factory(workspace, engine),
        )
        yield Session(identity.user, backend, _quiet_hours(schedule))
    finally:
        asyncio.run(http.aclose())
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(
        as_user: str | None = typer.Option(None, "--as", help="Act as this user."),
        lang: str = typer.Option(
            "", "--lang", help=f"vi or en (default: ${LANGUAGE_ENV} or vi); F9 switches."
        ),
        poll: float = typer.Option(5.0, "--poll", help="Seconds between refreshes (0: never)."),
    ) -> None:
        """The editors' terminal UI (Vietnamese first)."""
        from tui import i18n
        from tui.app import TuiSettings, make_app

        language = lang or os.environ.get(LANGUAGE_ENV, "") or i18n.DEFAULT_LANGUAGE
        if language not in i18n.LANGUAGES:
            raise UserError(f"--lang: {language!r} is not one of {', '.join(i18n.LANGUAGES)}")
        with open_session(as_user) as session:
            settings = TuiSettings(
                user=session.user,
                language=language,
                poll_seconds=poll,
                quiet_hours=session.quiet_hours,
            )
            make_app(settings, session.backend).run()

    @app.command("import-plan")
    def import_plan(
        path: Path = typer.Argument(..., help="CSV of posts: article, unit, channels, time."),
        as_user: str | None = typer.Option(None, "--as", help="Act as this user."),
        check_only: bool = typer.Option(False, "--check", help="Validate only; save nothing."),
    ) -> None:
        """Import a bulk posting plan, validated row by row before anything is saved."""
        from tui.plan_check import check_plan_file
        from tui.ports import ActionRefused

        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: cannot read: {error}") from None
        with open_session(as_user) as session:
            result = check_plan_file(session.backend, session.user, text, datetime.now(UTC))
            if result.errors:
                raise UserError(f"{path}: {error}" for error in result.errors)
            if check_only:
                print(f"{path}: {len(result.rows)} dòng hợp lệ (chưa lưu)")
                return
            try:
                saved = session.backend.import_plan(session.user, result.rows)
            except ActionRefused as refused:
                raise UserError(f"{path}: {refused.reason}") from None
            print(f"{path}: đã lưu {saved} bài theo kế hoạch")
