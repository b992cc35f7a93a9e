"""`publisher accounts connect|test|rotate|remove`: unit admins manage their channel accounts
(issue 12). The rules live in `publisher.accounts.AccountService`; this module reads the
secret (a private file, an environment variable or stdin — never the command line), resolves
who is acting, and prints one line per result (Vietnamese first) or JSON.

Exit codes: 0 done; 2 bad input, a refusal, or credentials the platform refused (nothing was
stored); 1 the platform could not be asked, or `test` found the credentials not working.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer

from channels.base import Channel, Credentials
from publisher import redact
from publisher.accounts import (
    AccountService,
    CheckFailed,
    CheckOutcome,
    ConnectRequest,
    InvalidRequest,
    RemoveOutcome,
    platform_steps,
)
from publisher.cli.common import UserError, print_problems
from publisher.cli.reports_cmd import accounts_app
from publisher.cli.security_cmd import MAX_SECRET_BYTES, read_secret_input
from publisher.identity import Identity, IdentityRefused, current_os_user, resolve_identity
from publisher.identity import sandbox_enabled as _sandbox_enabled
from publisher.report_output import local_time
from publisher.secrets import (
    Keyring,
    SecretsError,
    SecretStore,
    credentials_from_text,
    load_keyring,
    read_secret_file,
)
from publisher.service import ServiceError
from publisher.store.sql import SqlRepository
from publisher.workspace import Workspace

R = TypeVar("R")

AS_HELP = "Act as this user (sandbox, or users allowed to act for others)."


def make_channels(http: httpx.AsyncClient, secrets: SecretStore) -> dict[str, Channel]:
    """The channels checks go through: the sandbox when PUBLISHER_SANDBOX_URL is set, else
    the real platforms (tests replace this function)."""
    from channels.registry import sandbox_url_from_env
    from publisher.runtime import build_channels, public_url_from_env

    return build_channels(http, sandbox_url_from_env(), secrets, public_url=public_url_from_env())


def read_credentials(
    token_file: Path | None, token_env: str | None, token_stdin: bool
) -> Credentials:
    """The secret from exactly one of the three sources; errors never quote it."""
    given = [
        name
        for name, present in (
            ("--token-file", token_file is not None),
            ("--token-env", token_env is not None),
            ("--token-stdin", token_stdin),
        )
        if present
    ]
    if len(given) != 1:
        raise UserError(
            "give the secret with exactly one of --token-file PATH, --token-env VARIABLE or "
            "--token-stdin (never on the command line itself)"
        )
    try:
        if token_file is not None:
            text = read_secret_file(token_file)
            if len(text.encode()) > MAX_SECRET_BYTES:
                raise UserError(f"{token_file}: more than {MAX_SECRET_BYTES} bytes")
            return credentials_from_text(text, str(token_file))
        if token_env is not None:
            value = os.environ.get(token_env, "")
            if not value.strip():
                raise UserError(f"--token-env: environment variable {token_env} is not set")
            return credentials_from_text(value, f"environment variable {token_env}")
        return credentials_from_text(read_secret_input(), "stdin")
    except SecretsError as error:  # CredentialError included
        raise UserError(redact.redact(str(error))) from None


def _keyring(workspace: Workspace, required: bool) -> Keyring | None:
    try:
        return load_keyring(os.environ, workspace.home)
    except SecretsError as error:
        if required:
            raise UserError(str(error)) from None
        return None


def _identity(repository: SqlRepository, as_user: str | None) -> Identity:
    try:
        return resolve_identity(
            current_os_user(), as_user, repository, _sandbox_enabled(os.environ)
        )
    except IdentityRefused as error:
        raise UserError(str(error)) from None


def _run(
    needs_key: bool,
    as_user: str | None,
    use: Callable[[AccountService, Identity], Awaitable[R]],
) -> R:
    """Open the working folder, resolve who acts, and run one use case with the channels."""
    workspace = Workspace.from_env()
    keyring = _keyring(workspace, needs_key)
    workspace.upgrade_database()
    engine = workspace.engine()
    repository = SqlRepository(engine)
    try:
        identity = _identity(repository, as_user)
        secrets = SecretStore(engine, keyring)

        async def go() -> R:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
                from publisher.runtime import public_url_from_env

                service = AccountService(
                    engine,
                    repository,
                    secrets,
                    make_channels(http, secrets),
                    after_connect=platform_steps(public_url_from_env()),
                )
                return await use(service, identity)

        try:
            return asyncio.run(go())
        except CheckFailed as failed:
            print_problems([redact.redact(str(failed))])
            raise typer.Exit(2 if failed.verdict == "refused" else 1) from None
        except InvalidRequest as invalid:
            raise UserError([redact.redact(line) for line in invalid.problems]) from None
        except ServiceError as error:
            raise UserError(redact.redact(str(error))) from None
    finally:
        engine.dispose()


def _expiry(outcome: CheckOutcome) -> str:
    if outcome.expires_at is None:
        return "không hết hạn / không rõ · no expiry given"
    return f"hết hạn · expires {local_time(outcome.expires_at)} (+07)"


def _emit(payload: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        for line in lines:
            typer.echo(line)


def _held_line(outcome: CheckOutcome) -> list[str]:
    if outcome.reactivated:
        return [
            f"  hoạt động trở lại · active again: {outcome.held_deliveries} lượt đăng đang chờ "
            "sẽ được gửi · waiting deliveries go out now"
        ]
    return []


def register(app: typer.Typer) -> None:
    @accounts_app.command("connect")
    def connect(
        unit: str = typer.Option(..., "--unit", help="The unit the account publishes for."),
        platform: str = typer.Option(
            ..., "--platform", help="facebook, youtube, zalo, viber, telegram or x."
        ),
        external_id: str = typer.Option(
            ..., "--external-id", help="The platform's page, channel, OA or chat id."
        ),
        name: str = typer.Option("", "--name", help="Display name."),
        account_id: str | None = typer.Option(
            None, "--id", help="Account id (default: UNIT.PLATFORM.EXTERNAL_ID)."
        ),
        token_file: Path | None = typer.Option(
            None, "--token-file", help="Read the secret from this file (mode 600)."
        ),
        token_env: str | None = typer.Option(
            None, "--token-env", help="Read the secret from this environment variable."
        ),
        token_stdin: bool = typer.Option(
            False, "--token-stdin", help="Read the secret from stdin (hidden on a terminal)."
        ),
        language: str | None = typer.Option(
            None, "--language", help="Only articles in this language reach it (e.g. vi)."
        ),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Connect a unit's channel account: the platform checks the secret, then the account
        and its encrypted secret are stored (nothing is stored if the check fails)."""
        credentials = read_credentials(token_file, token_env, token_stdin)
        request = ConnectRequest(
            unit_code=unit.strip(),
            platform=platform.strip().lower(),
            external_id=external_id,
            display_name=name,
            account_id=account_id,
            language=language,
        )

        async def use(service: AccountService, identity: Identity) -> CheckOutcome:
            return await service.connect(
                request,
                credentials,
                identity.user.username,
                actor_label=identity.actor_label,
                audit_details=identity.audit_details(),
            )

        outcome = _run(True, as_user, use)
        _emit(
            outcome.to_json(),
            as_json,
            [
                f"Đã kết nối · connected: {outcome.account_id} ({outcome.platform}, đơn vị · "
                f"unit {outcome.unit_code}); {_expiry(outcome)}",
                f"  {outcome.detail}",
                f"  bí mật đã mã hóa · secret encrypted with key {outcome.key_id}",
            ],
        )

    @accounts_app.command("test")
    def test(
        account: str = typer.Argument(..., metavar="ACCOUNT", help="Channel account id."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Ask the platform whether the account's credentials work; record status and expiry.

        A refused token stops the account (auth_failed); a working one on an auth_failed
        account makes it active again, and the deliveries held for it go out.
        """

        async def use(service: AccountService, identity: Identity) -> CheckOutcome:
            return await service.test(
                account, identity.user.username, actor_label=identity.actor_label
            )

        outcome = _run(False, as_user, use)
        heading = {
            "ok": "Hoạt động · works",
            "refused": "Bị từ chối · refused",
            "unavailable": "Không kiểm tra được · could not check",
        }[outcome.verdict]
        _emit(
            outcome.to_json(),
            as_json,
            [
                f"{heading}: {outcome.account_id} ({outcome.platform}, đơn vị · unit "
                f"{outcome.unit_code}); trạng thái · status {outcome.status}; {_expiry(outcome)}",
                f"  {outcome.detail}",
                *_held_line(outcome),
            ],
        )
        if not outcome.ok:
            raise typer.Exit(1)

    @accounts_app.command("rotate")
    def rotate(
        account: str = typer.Argument(..., metavar="ACCOUNT", help="Channel account id."),
        token_file: Path | None = typer.Option(
            None, "--token-file", help="Read the new secret from this file (mode 600)."
        ),
        token_env: str | None = typer.Option(
            None, "--token-env", help="Read the new secret from this environment variable."
        ),
        token_stdin: bool = typer.Option(
            False, "--token-stdin", help="Read the new secret from stdin (hidden on a terminal)."
        ),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Replace an account's secret: the new one is checked first; if the platform refuses
        it, the old one is kept."""
        credentials = read_credentials(token_file, token_env, token_stdin)

        async def use(service: AccountService, identity: Identity) -> CheckOutcome:
            return await service.rotate(
                account,
                credentials,
                identity.user.username,
                actor_label=identity.actor_label,
                audit_details=identity.audit_details(),
            )

        outcome = _run(True, as_user, use)
        _emit(
            outcome.to_json(),
            as_json,
            [
                f"Đã thay bí mật · secret replaced: {outcome.account_id}; {_expiry(outcome)}",
                f"  {outcome.detail}",
                f"  bí mật đã mã hóa · secret encrypted with key {outcome.key_id}",
                *_held_line(outcome),
            ],
        )

    @accounts_app.command("remove")
    def remove(
        account: str = typer.Argument(..., metavar="ACCOUNT", help="Channel account id."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit trail)."),
        as_user: str | None = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Remove an account: disabled (kept for history), secret deleted, deliveries not yet
        started cancelled with the reason (sent ones stay as history)."""

        async def use(service: AccountService, identity: Identity) -> RemoveOutcome:
            return service.remove(
                account, reason, identity.user.username, actor_label=identity.actor_label
            )

        outcome = _run(False, as_user, use)
        _emit(
            outcome.to_json(),
            as_json,
            [
                f"Đã gỡ · removed: {outcome.account_id} (đơn vị · unit {outcome.unit_code}); "
                f"{outcome.cancelled} lượt đăng chưa gửi đã hủy · unsent deliveries cancelled; "
                f"bí mật · secret {'deleted' if outcome.secret_deleted else 'none stored'}",
                *(f"  {note}" for note in outcome.notes),
            ],
        )
