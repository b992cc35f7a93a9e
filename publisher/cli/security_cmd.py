"""`publisher secrets …` and `publisher accounts set-token` (issue 9).

Tokens are read from standard input (hidden prompt on a terminal), never from the command
line, where every user of the server could read them in the process list and shell history.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import typer

from channels.base import Credentials
from publisher import redact
from publisher.cli.common import UserError
from publisher.cli.reports_cmd import accounts_app
from publisher.domain import Role, User
from publisher.identity import (
    IdentityRefused,
    current_os_user,
    resolve_identity,
    sandbox_enabled,
)
from publisher.secrets import (
    CredentialError,
    SecretsError,
    SecretStore,
    credentials_from_text,
    generate_key,
    load_keyring,
    write_key_file,
)
from publisher.workspace import Workspace

secrets_app = typer.Typer(help="The master key and the encrypted channel secrets.")

MAX_SECRET_BYTES = 64 * 1024


def _store(workspace: Workspace) -> SecretStore:
    try:
        keyring = load_keyring(os.environ, workspace.home)
    except SecretsError as error:
        raise UserError(str(error)) from None
    workspace.upgrade_database()
    return SecretStore(workspace.engine(), keyring)


def read_secret_input() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Token (input hidden; or a JSON object with token and extra): ")
    data = sys.stdin.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise UserError(f"stdin: more than {MAX_SECRET_BYTES} bytes; a token is far shorter")
    return data


def _administers(user: User, unit_code: str, ancestors: list[str]) -> bool:
    for grant in user.grants:
        if grant.role is not Role.ADMIN:
            continue
        if grant.unit_code == unit_code or (grant.subtree and grant.unit_code in ancestors):
            return True
    return False


def register(app: typer.Typer) -> None:
    @secrets_app.command("new-key")
    def new_key(
        file: Path | None = typer.Option(
            None, "--file", help="Write the key to this new file (mode 600) instead of stdout."
        ),
    ) -> None:
        """Make a new master key (to put first in PUBLISHER_SECRET_KEY or the key file)."""
        key = generate_key()
        if file is None:
            typer.echo(key)
            return
        try:
            write_key_file(file, key)
        except FileExistsError:
            raise UserError(f"{file}: already exists; not overwritten") from None
        except OSError as error:
            raise UserError(f"{file}: cannot write: {error.strerror}") from None
        typer.echo(f"new master key written to {file} (mode 600)")

    @secrets_app.command("rotate")
    def rotate() -> None:
        """Re-encrypt every stored secret under the first (primary) key of the key ring.

        Put the new key first and keep the old ones after it (PUBLISHER_SECRET_KEY="new,old",
        or one key per line in the key file), run this, then remove the old keys.
        """
        workspace = Workspace.from_env()
        store = _store(workspace)
        try:
            report = store.rotate(actor=f"os:{current_os_user()}")
        except SecretsError as error:
            raise UserError(str(error)) from None
        typer.echo(
            f"{report.rotated} secret(s) re-encrypted under key {report.key_id}, "
            f"{report.already_current} already under it; every stored secret opens. "
            "Older keys may now be removed from the key ring."
        )

    @secrets_app.command("check")
    def check() -> None:
        """Open every stored secret with the key ring; list key ids (never secret values)."""
        workspace = Workspace.from_env()
        store = _store(workspace)
        by_key: dict[str, int] = {}
        problems: list[str] = []
        for account_id in store.stored_account_ids():
            try:
                store.get(account_id)
            except SecretsError as error:
                problems.append(str(error))
        for key_id in store.key_ids().values():
            by_key[key_id] = by_key.get(key_id, 0) + 1
        for key_id, count in sorted(by_key.items()):
            primary = " (primary)" if key_id == store.keyring.primary.key_id else ""
            typer.echo(f"key {key_id}{primary}: {count} secret(s)")
        if problems:
            raise UserError(problems)
        typer.echo(f"{sum(by_key.values())} stored secret(s), all open")

    @accounts_app.command("set-token")
    def set_token(
        account_id: str = typer.Argument(..., metavar="ACCOUNT", help="Channel account id."),
        as_user: str | None = typer.Option(
            None, "--as", help="Act as this user (sandbox, or users allowed to act for others)."
        ),
    ) -> None:
        """Store an account's token, encrypted, read from stdin (never from the command line)."""
        workspace = Workspace.from_env()
        store = _store(workspace)
        repository = workspace.repository()
        account = repository.get_account(account_id)
        if account is None:
            raise UserError(f"{account_id}: no such channel account (run `publisher init`?)")
        try:
            identity = resolve_identity(
                current_os_user(), as_user, repository, sandbox_enabled(os.environ)
            )
        except IdentityRefused as error:
            raise UserError(str(error)) from None
        if not _administers(
            identity.user, account.unit_code, repository.ancestors(account.unit_code)
        ):
            raise UserError(
                f"{account_id}: user {identity.user.username} is not an admin of unit "
                f"{account.unit_code} or of a unit above it"
            )
        if account.credentials_ref not in ("", "store:"):
            raise UserError(
                f"{account_id}: its credentials are {account.credentials_ref!r} in accounts.toml, "
                "not 'store:'; a stored token would never be used"
            )
        try:
            credentials: Credentials = credentials_from_text(read_secret_input(), "stdin")
            key_id = store.put(
                account_id,
                credentials,
                actor=identity.actor_label,
                audit_details=identity.audit_details(),
            )
        except (CredentialError, SecretsError) as error:
            raise UserError(redact.redact(str(error))) from None
        typer.echo(f"{account_id}: token stored, encrypted with key {key_id}")

    app.add_typer(secrets_app, name="secrets")
