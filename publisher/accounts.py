"""Unit admins manage their own channel accounts: connect, test, rotate, remove (issue 12).

Each use case checks that the user is an admin reaching the account's unit (`Action.
MANAGE_ACCOUNTS`: the unit itself or, with a subtree grant, any unit below it — never
sideways), asks the platform through `Channel.check` before it stores anything, and writes
the change, the sealed secret and the audit event in one transaction. A refusal is audited in
a fresh transaction (action `refused`), as `publisher.service` does; a failed check is audited
too (`account_connect_failed`, `account_rotate_failed`, `account_tested` with the outcome).

How config-defined and connected accounts live together (docs/cli.md):
- `origin = "config"` rows come from accounts.toml and are updated by every config load;
  `origin = "connected"` rows are made here and a config load never touches them.
- An id is never reused: connecting refuses an id that exists (in either origin, removed
  ones included: their history needs the id), and a config load refuses an accounts.toml
  entry whose id is a connected account (`connected_conflicts`).
- One live account per platform page: connecting refuses a (platform, external id) that a
  not-removed account already has, and a config load refuses to add one that a connected
  account has.
- Removing disables (never deletes): history and coverage keep pointing at the row. A removed
  config account stays disabled through config loads (status is not config's to set) until
  someone deletes it from accounts.toml.

What happens to deliveries: the worker claims nothing for an account that is not `active`
(`SqlDeliveryStore._runnable`); a token refused while sending leaves the delivery `pending`
with the account `auth_failed`. When `test` or `rotate` finds working credentials on an
`auth_failed` account it becomes `active` again and those held deliveries go out at the next
claim — unless they expired meanwhile (then the sweep marks them `expired`). The `auth:`
incident is closed by the next credential-health sweep, which no longer finds the problem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from channels.base import AccountCheck, Channel, Credentials, ErrorKind, SendError
from channels.viber import webhook_url
from publisher import audit, redact, workflow
from publisher.domain import (
    AccountStatus,
    ChannelAccount,
    DeliveryState,
    Platform,
    User,
)
from publisher.secrets import CredentialResolver, SecretsError, SecretStore, remember
from publisher.service import NotFound, PermissionDenied, ServiceError
from publisher.store.repository import Repository
from publisher.store.tables import ChannelAccountRow, DeliveryRow, table_of
from publisher.workflow import Action

log = logging.getLogger(__name__)

ACCOUNT = table_of(ChannelAccountRow)
DELIVERY = table_of(DeliveryRow)

ORIGIN_CONFIG = "config"
ORIGIN_CONNECTED = "connected"
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
LANGUAGE = re.compile(r"[a-z]{2,3}")
MAX_TEXT = 200

# Not started yet: a removed account's deliveries in these states are cancelled.
NOT_STARTED = (
    DeliveryState.AWAITING_APPROVAL.value,
    DeliveryState.PENDING.value,
    DeliveryState.RETRY_WAIT.value,
)
# Leased by a worker right now: they finish (or fail) on their own.
IN_FLIGHT = (DeliveryState.CLAIMED.value, DeliveryState.SENDING.value)
# Held by an auth stop: they go out again when the account is active.
HELD = (DeliveryState.PENDING.value, DeliveryState.RETRY_WAIT.value)


def utc_now() -> datetime:
    return datetime.now(UTC)


class CheckFailed(ServiceError):
    """The platform refused the credentials, or could not be asked; nothing was stored.

    `verdict` is "refused" (the platform said the credentials do not work) or "unavailable"
    (the platform could not be asked, or this channel cannot check credentials).
    """

    def __init__(self, message: str, *, verdict: str) -> None:
        super().__init__(message)
        self.verdict = verdict


class InvalidRequest(ServiceError):
    """A connect request with bad fields: one line per problem, each naming the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    unit_code: str
    platform: str
    external_id: str
    display_name: str = ""
    account_id: str | None = None  # default: "<unit>.<platform>.<external id>"
    language: str | None = None  # None: every language reaches the account

    def resolved_id(self) -> str:
        if self.account_id:
            return self.account_id
        external = re.sub(r"[^A-Za-z0-9._:-]+", "-", self.external_id.strip()).strip("-")
        return f"{self.unit_code}.{self.platform}.{external}"[:128]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one check found and what was done about it (never a secret)."""

    account_id: str
    unit_code: str
    platform: str
    verdict: str  # "ok" | "refused" | "unavailable"
    detail: str
    status: str  # the account's status afterwards
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    reactivated: bool = False  # was auth_failed, is active again
    held_deliveries: int = 0  # waiting deliveries that the account's status holds or frees
    key_id: str | None = None  # the key the stored secret is sealed with, when one was stored

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "unit": self.unit_code,
            "platform": self.platform,
            "ok": self.ok,
            "verdict": self.verdict,
            "detail": self.detail,
            "status": self.status,
            "token_expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "scopes": list(self.scopes),
            "reactivated": self.reactivated,
            "held_deliveries": self.held_deliveries,
            "key_id": self.key_id,
        }


@dataclass(frozen=True, slots=True)
class RemoveOutcome:
    account_id: str
    unit_code: str
    origin: str
    cancelled: int  # not-started deliveries cancelled with the reason
    in_flight: int  # claimed or sending right now: they finish or fail on their own
    secret_deleted: bool
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "unit": self.unit_code,
            "origin": self.origin,
            "status": AccountStatus.DISABLED.value,
            "cancelled_deliveries": self.cancelled,
            "in_flight_deliveries": self.in_flight,
            "secret_deleted": self.secret_deleted,
            "notes": list(self.notes),
        }


# A platform step run after a successful check and before anything is stored (e.g. Viber's
# webhook). It raises `SendError` (or `CheckFailed`) to stop the connection.
AfterConnect = Callable[[Channel, ChannelAccount, Credentials], Awaitable[None]]


def webhook_step(public_url: str) -> AfterConnect:
    """An after-connect step that registers the account's callback URL under `public_url`
    (where `publisher run` is reached) through the channel's `set_webhook(account,
    credentials, url)`: Viber accepts no post before one is set."""

    async def step(channel: Channel, account: ChannelAccount, credentials: Credentials) -> None:
        set_webhook = getattr(channel, "set_webhook", None)
        if set_webhook is None:
            raise CheckFailed(
                f"{channel.display_name}: this version cannot set the webhook the platform "
                "needs; nothing was stored",
                verdict="unavailable",
            )
        await set_webhook(account, credentials, webhook_url(public_url, account.id))

    return step


def platform_steps(public_url: str | None) -> dict[str, AfterConnect]:
    """The after-connect steps for this deployment: Viber's webhook when a public URL is set
    (without one the channel's first post says what to set)."""
    return {"viber": webhook_step(public_url)} if public_url else {}


@dataclass
class AccountService:
    """The account use cases over one database, its directory, the secret store and the
    channels (real platforms, or the sandbox when `PUBLISHER_SANDBOX_URL` is set)."""

    engine: sa.Engine
    directory: Repository
    secrets: SecretStore
    channels: Mapping[str, Channel]
    resolver: CredentialResolver | None = None
    clock: Callable[[], datetime] = utc_now
    after_connect: Mapping[str, AfterConnect] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resolver is None:
            self.resolver = CredentialResolver(self.secrets)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # --- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _audit(
        self, conn: sa.Connection, actor: str, action: str, target: str, **details: Any
    ) -> None:
        audit.append(
            conn,
            self.is_sqlite,
            at=self.clock(),
            actor=actor,
            action=action,
            target=target,
            details=details,
        )

    def _audit_alone(self, actor: str, action: str, target: str, **details: Any) -> None:
        """An event with nothing else to commit (a failed check, a refusal)."""
        try:
            with self._write() as conn:
                self._audit(conn, actor, action, target, **details)
        except sa.exc.SQLAlchemyError:
            log.exception("could not audit %s on %s by %s", action, target, actor)

    def _audit_refusal(self, refusal: PermissionDenied, actor: str) -> None:
        self._audit_alone(
            actor,
            "refused",
            refusal.target or f"unit:{refusal.unit}",
            attempted=refusal.attempted,
            unit=refusal.unit,
            reason=redact.redact(str(refusal)),
        )

    def _user(self, username: str) -> User:
        user = self.directory.get_user(username)
        if user is None:
            raise NotFound(f'unknown user "{username}"')
        return user

    def _account(self, account_id: str) -> ChannelAccount:
        account = self.directory.get_account(account_id)
        if account is None:
            raise NotFound(f'unknown channel account "{account_id}"')
        return account

    def _require(self, user: User, unit_code: str, attempted: str, target: str) -> None:
        if not workflow.may(
            user, Action.MANAGE_ACCOUNTS, unit_code, self.directory.ancestors(unit_code)
        ):
            raise PermissionDenied(
                f"{user.username} may not {attempted} channel accounts of unit {unit_code}: "
                f"only an admin of the unit or of a unit above it may",
                username=user.username,
                attempted=attempted,
                unit=unit_code,
                target=target,
            )

    def _channel(self, platform: str) -> Channel:
        channel = self.channels.get(platform)
        if channel is None:
            raise ServiceError(f'platform "{platform}": no channel plugin for it')
        return channel

    def _row(self, conn: sa.Connection, account_id: str) -> Any:
        return conn.execute(sa.select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()

    def _held(self, conn: sa.Connection, account_id: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(DELIVERY)
                .where(DELIVERY.c.account_id == account_id, DELIVERY.c.state.in_(HELD))
            ).scalar_one()
        )

    async def _ask(
        self, channel: Channel, account: ChannelAccount, credentials: Credentials
    ) -> tuple[str, str, AccountCheck | None]:
        """(verdict, detail, the check when the platform answered). Never raises for a
        platform's answer: "refused" only when the platform said the credentials do not work
        (`ok=False` or an auth error); anything else that goes wrong is "unavailable"."""
        try:
            check = await channel.check(account, credentials)
        except SendError as error:
            detail = redact.redact(error.message)
            if error.kind is ErrorKind.AUTH:
                return "refused", detail, None
            return "unavailable", detail, None
        except httpx.HTTPError as error:
            return "unavailable", redact.redact(f"{type(error).__name__}: {error}"), None
        if check.credentials is not None:
            remember(check.credentials)  # durable credentials traded by the platform
        detail = redact.redact(check.detail)
        return ("ok" if check.ok else "refused"), detail, check

    def _need_keyring(self) -> None:
        try:
            self.secrets.keyring  # noqa: B018  (raises MasterKeyError when there is none)
        except SecretsError as error:
            raise ServiceError(str(error)) from None

    # --- connect ---------------------------------------------------------------------------

    async def connect(
        self,
        request: ConnectRequest,
        credentials: Credentials,
        username: str,
        *,
        actor_label: str | None = None,
        audit_details: Mapping[str, Any] | None = None,
    ) -> CheckOutcome:
        """Ask the platform, then store the account (origin "connected") and its sealed
        secret with the audit event in one transaction. A failed check stores nothing."""
        actor = actor_label or username
        remember(credentials)  # whatever happens next, it is never printed or logged
        try:
            return await self._connect(request, credentials, username, actor, audit_details)
        except PermissionDenied as refusal:
            self._audit_refusal(refusal, actor)
            raise

    def _validate(self, request: ConnectRequest) -> list[str]:
        problems: list[str] = []
        account_id = request.resolved_id()
        if not ACCOUNT_ID.fullmatch(account_id):
            problems.append(
                f"--id: {account_id!r} is not an account id (letters, digits, . _ : -; "
                "at most 128, starting with a letter or digit)"
            )
        if request.platform not in {p.value for p in Platform}:
            problems.append(
                f"--platform: {request.platform!r} is not one of "
                f"{', '.join(p.value for p in Platform)}"
            )
        external = request.external_id.strip()
        if not external or len(external) > MAX_TEXT or not external.isprintable():
            problems.append(
                "--external-id: the platform's page, channel, OA or chat id is required "
                f"(one printable line, at most {MAX_TEXT} characters)"
            )
        if len(request.display_name) > MAX_TEXT or not request.display_name.isprintable():
            problems.append(f"--name: one printable line, at most {MAX_TEXT} characters")
        if request.language is not None and not LANGUAGE.fullmatch(request.language):
            problems.append(f"--language: {request.language!r} is not a language code (vi, en …)")
        return problems

    async def _connect(
        self,
        request: ConnectRequest,
        credentials: Credentials,
        username: str,
        actor: str,
        audit_details: Mapping[str, Any] | None,
    ) -> CheckOutcome:
        problems = self._validate(request)
        if problems:
            raise InvalidRequest(problems)
        user = self._user(username)
        account_id = request.resolved_id()
        if self.directory.get_unit(request.unit_code) is None:
            raise NotFound(f'--unit: unknown unit "{request.unit_code}"')
        # No account row exists yet: connect events name the unit (so its admins see them).
        self._require(user, request.unit_code, "connect", f"unit:{request.unit_code}")
        with self.engine.connect() as conn:
            self._refuse_duplicates(conn, account_id, request.platform, request.external_id)
        self._need_keyring()
        channel = self._channel(request.platform)
        account = ChannelAccount(
            id=account_id,
            unit_code=request.unit_code,
            platform=Platform(request.platform),
            external_id=request.external_id.strip(),
            display_name=request.display_name.strip(),
            credentials_ref="store:",
            language=request.language,
        )
        verdict, detail, check = await self._ask(channel, account, credentials)
        base = {
            "account": account_id,
            "unit": account.unit_code,
            "platform": account.platform.value,
            "external_id": account.external_id,
            **(audit_details or {}),
        }
        if check is None or not check.ok:
            self._audit_alone(
                actor,
                "account_connect_failed",
                f"unit:{account.unit_code}",
                verdict=verdict,
                detail=detail,
                **base,
            )
            raise CheckFailed(
                f"{account_id}: {account.platform.value} did not accept the credentials "
                f"({detail}); nothing was stored",
                verdict=verdict,
            )
        step = self.after_connect.get(account.platform.value)
        stored = check.credentials or credentials
        if step is not None:
            try:
                await step(channel, account, stored)
            except (SendError, httpx.HTTPError, CheckFailed) as error:
                reason = redact.redact(
                    error.message if isinstance(error, SendError) else str(error)
                )
                self._audit_alone(
                    actor,
                    "account_connect_failed",
                    f"unit:{account.unit_code}",
                    verdict="after_connect",
                    detail=reason,
                    **base,
                )
                raise CheckFailed(
                    f"{account_id}: connected to {account.platform.value}, but its set-up step "
                    f"failed ({reason}); nothing was stored",
                    verdict="unavailable",
                ) from None
        key_id, ciphertext = self.secrets.seal_for(account_id, stored)
        try:
            with self._write() as conn:
                self._store_connected(conn, account, check, detail, key_id, ciphertext, actor, base)
        except sa.exc.IntegrityError:
            raise ServiceError(
                f"account {account_id} was created by someone else meanwhile; nothing was stored"
            ) from None
        return CheckOutcome(
            account_id,
            account.unit_code,
            account.platform.value,
            "ok",
            detail,
            AccountStatus.ACTIVE.value,
            check.expires_at,
            tuple(check.scopes),
            key_id=key_id,
        )

    def _store_connected(
        self,
        conn: sa.Connection,
        account: ChannelAccount,
        check: AccountCheck,
        detail: str,
        key_id: str,
        ciphertext: str,
        actor: str,
        base: Mapping[str, Any],
    ) -> None:
        now = self.clock()
        self._refuse_duplicates(conn, account.id, account.platform.value, account.external_id)
        conn.execute(
            sa.insert(ACCOUNT).values(
                id=account.id,
                unit_code=account.unit_code,
                platform=account.platform.value,
                external_id=account.external_id,
                display_name=account.display_name,
                credentials_ref="store:",
                token_expires_at=check.expires_at,
                status=AccountStatus.ACTIVE.value,
                language=account.language,
                secret_ciphertext=ciphertext,
                secret_key_id=key_id,
                status_reason=None,
                updated_at=now,
                origin=ORIGIN_CONNECTED,
                connected_by=actor,
                connected_at=now,
                checked_at=now,
                check_detail=detail,
            )
        )
        self._audit(
            conn,
            actor,
            "account_connected",
            f"account:{account.id}",
            key_id=key_id,
            detail=detail,
            token_expires_at=check.expires_at.isoformat() if check.expires_at else None,
            scopes=list(check.scopes),
            traded=check.credentials is not None,
            language=account.language,
            **base,
        )

    def _refuse_duplicates(
        self, conn: sa.Connection, account_id: str, platform: str, external_id: str
    ) -> None:
        same_id = self._row(conn, account_id)
        if same_id is not None:
            removed = " (removed: ids are never reused)" if same_id.status == "disabled" else ""
            raise ServiceError(
                f"account {account_id} already exists{removed}, from "
                f"{'accounts.toml' if same_id.origin == ORIGIN_CONFIG else 'a connection'}; "
                "choose another --id"
            )
        same_page = conn.execute(
            sa.select(ACCOUNT.c.id, ACCOUNT.c.unit_code).where(
                ACCOUNT.c.platform == platform,
                ACCOUNT.c.external_id == external_id.strip(),
                ACCOUNT.c.status != AccountStatus.DISABLED.value,
            )
        ).first()
        if same_page is not None:
            raise ServiceError(
                f"{platform} {external_id.strip()} is already account {same_page.id} "
                f"(unit {same_page.unit_code}); one account per page — test or rotate that one"
            )

    # --- test ------------------------------------------------------------------------------

    async def test(
        self, account_id: str, username: str, *, actor_label: str | None = None
    ) -> CheckOutcome:
        """Ask the platform whether the account's credentials work; record what it said.

        ok: expiry and scopes recorded, an `auth_failed` account becomes `active` (its held
        deliveries go out). refused: an `active` account becomes `auth_failed` (the worker
        stops sending). unavailable: the status is left as it is.
        """
        actor = actor_label or username
        try:
            return await self._test(account_id, username, actor)
        except PermissionDenied as refusal:
            self._audit_refusal(refusal, actor)
            raise

    async def _test(self, account_id: str, username: str, actor: str) -> CheckOutcome:
        user = self._user(username)
        account = self._account(account_id)
        self._require(user, account.unit_code, "test", f"account:{account_id}")
        if account.status is AccountStatus.DISABLED:
            raise ServiceError(f"account {account_id} was removed; connect it again to use it")
        assert self.resolver is not None
        try:
            credentials = self.resolver.resolve(account)
        except SecretsError as error:
            raise ServiceError(redact.redact(str(error))) from None
        verdict, detail, check = await self._ask(
            self._channel(account.platform.value), account, credentials
        )
        now = self.clock()
        values: dict[str, Any] = {"checked_at": now, "check_detail": detail, "updated_at": now}
        with self._write() as conn:
            before = self._row(conn, account_id)
            status = before.status
            if verdict == "ok" and check is not None:
                if check.expires_at is not None:
                    values["token_expires_at"] = check.expires_at
                if status == AccountStatus.AUTH_FAILED.value:
                    values.update(status=AccountStatus.ACTIVE.value, status_reason=None)
            elif verdict == "refused":  # active → auth_failed; an auth_failed one: why now
                values.update(status=AccountStatus.AUTH_FAILED.value, status_reason=detail[:500])
            conn.execute(
                sa.update(ACCOUNT)
                .where(ACCOUNT.c.id == account_id, ACCOUNT.c.status == status)
                .values(**values)
            )
            after = values.get("status", status)
            held = self._held(conn, account_id)
            expires = values.get("token_expires_at", before.token_expires_at)
            self._audit(
                conn,
                actor,
                "account_tested",
                f"account:{account_id}",
                unit=account.unit_code,
                verdict=verdict,
                detail=detail,
                status_before=status,
                status_after=after,
                held_deliveries=held,
                token_expires_at=expires.isoformat() if expires else None,
            )
        return CheckOutcome(
            account_id,
            account.unit_code,
            account.platform.value,
            verdict,
            detail,
            after,
            expires,
            tuple(check.scopes) if check is not None else (),
            reactivated=status == AccountStatus.AUTH_FAILED.value
            and after == AccountStatus.ACTIVE.value,
            held_deliveries=held,
        )

    # --- rotate ----------------------------------------------------------------------------

    async def rotate(
        self,
        account_id: str,
        credentials: Credentials,
        username: str,
        *,
        actor_label: str | None = None,
        audit_details: Mapping[str, Any] | None = None,
    ) -> CheckOutcome:
        """Check the new credentials first; only if the platform accepts them replace the
        stored secret (atomically, with the audit event). The old one stays otherwise."""
        actor = actor_label or username
        remember(credentials)
        try:
            return await self._rotate(account_id, credentials, username, actor, audit_details)
        except PermissionDenied as refusal:
            self._audit_refusal(refusal, actor)
            raise

    async def _rotate(
        self,
        account_id: str,
        credentials: Credentials,
        username: str,
        actor: str,
        audit_details: Mapping[str, Any] | None,
    ) -> CheckOutcome:
        user = self._user(username)
        account = self._account(account_id)
        self._require(user, account.unit_code, "rotate", f"account:{account_id}")
        if account.status is AccountStatus.DISABLED:
            raise ServiceError(f"account {account_id} was removed; connect it again to use it")
        if account.credentials_ref not in ("", "store:"):
            raise ServiceError(
                f"account {account_id}: its credentials are {account.credentials_ref!r} in "
                "accounts.toml, not stored here; change them where that reference points"
            )
        self._need_keyring()
        verdict, detail, check = await self._ask(
            self._channel(account.platform.value), account, credentials
        )
        base = {"unit": account.unit_code, **(audit_details or {})}
        if check is None or not check.ok:
            self._audit_alone(
                actor,
                "account_rotate_failed",
                f"account:{account_id}",
                verdict=verdict,
                detail=detail,
                **base,
            )
            raise CheckFailed(
                f"{account_id}: {account.platform.value} did not accept the new credentials "
                f"({detail}); the old ones are kept",
                verdict=verdict,
            )
        key_id, ciphertext = self.secrets.seal_for(account_id, check.credentials or credentials)
        now = self.clock()
        with self._write() as conn:
            before = self._row(conn, account_id)
            if before is None or before.status == AccountStatus.DISABLED.value:
                raise ServiceError(f"account {account_id} was removed meanwhile; nothing changed")
            values: dict[str, Any] = {
                "secret_ciphertext": ciphertext,
                "secret_key_id": key_id,
                "token_expires_at": check.expires_at,
                "checked_at": now,
                "check_detail": detail,
                "updated_at": now,
            }
            if before.status == AccountStatus.AUTH_FAILED.value:
                values.update(status=AccountStatus.ACTIVE.value, status_reason=None)
            conn.execute(sa.update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(**values))
            held = self._held(conn, account_id)
            self._audit(
                conn,
                actor,
                "account_rotated",
                f"account:{account_id}",
                key_id=key_id,
                detail=detail,
                status_before=before.status,
                status_after=values.get("status", before.status),
                held_deliveries=held,
                token_expires_at=check.expires_at.isoformat() if check.expires_at else None,
                traded=check.credentials is not None,
                **base,
            )
        return CheckOutcome(
            account_id,
            account.unit_code,
            account.platform.value,
            "ok",
            detail,
            values.get("status", before.status),
            check.expires_at,
            tuple(check.scopes),
            reactivated=before.status == AccountStatus.AUTH_FAILED.value,
            held_deliveries=held,
            key_id=key_id,
        )

    # --- remove ----------------------------------------------------------------------------

    def remove(
        self, account_id: str, reason: str, username: str, *, actor_label: str | None = None
    ) -> RemoveOutcome:
        """Disable the account (kept for history and coverage), delete its stored secret and
        cancel its deliveries that have not started, with the reason. Sent ones are history;
        ones a worker holds right now finish or fail on their own."""
        actor = actor_label or username
        try:
            return self._remove(account_id, reason, username, actor)
        except PermissionDenied as refusal:
            self._audit_refusal(refusal, actor)
            raise

    def _remove(self, account_id: str, reason: str, username: str, actor: str) -> RemoveOutcome:
        reason = reason.strip()
        if not reason:
            raise ServiceError("--reason: removing an account needs a reason")
        user = self._user(username)
        account = self._account(account_id)
        self._require(user, account.unit_code, "remove", f"account:{account_id}")
        said = redact.redact(reason)[:500]
        now = self.clock()
        with self._write() as conn:
            row = self._row(conn, account_id)
            if row.status == AccountStatus.DISABLED.value:
                raise ServiceError(f"account {account_id} is already removed")
            conn.execute(
                sa.update(ACCOUNT)
                .where(ACCOUNT.c.id == account_id)
                .values(
                    status=AccountStatus.DISABLED.value,
                    status_reason=f"removed by {actor}: {said}",
                    secret_ciphertext=None,
                    secret_key_id=None,
                    updated_at=now,
                )
            )
            cancelled = conn.execute(
                sa.update(DELIVERY)
                .where(DELIVERY.c.account_id == account_id, DELIVERY.c.state.in_(NOT_STARTED))
                .values(
                    state=DeliveryState.CANCELLED.value,
                    last_error=f"account removed: {said}",
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
            in_flight = int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(DELIVERY)
                    .where(DELIVERY.c.account_id == account_id, DELIVERY.c.state.in_(IN_FLIGHT))
                ).scalar_one()
            )
            secret_deleted = row.secret_ciphertext is not None
            self._audit(
                conn,
                actor,
                "account_removed",
                f"account:{account_id}",
                unit=account.unit_code,
                reason=said,
                origin=row.origin,
                cancelled_deliveries=cancelled,
                in_flight_deliveries=in_flight,
                secret_deleted=secret_deleted,
            )
        notes: list[str] = []
        if row.origin == ORIGIN_CONFIG:
            notes.append(
                f"{account_id} is defined in accounts.toml: delete it there too; until then "
                "it stays disabled (a config load never re-enables an account)"
            )
        if account.credentials_ref.startswith(("env:", "file:")):
            notes.append(
                f"its credentials live in {account.credentials_ref}, outside the database: "
                "revoke the token on the platform and remove it there"
            )
        if in_flight:
            notes.append(f"{in_flight} delivery(ies) in flight will finish or fail on their own")
        return RemoveOutcome(
            account_id,
            account.unit_code,
            row.origin,
            int(cancelled),
            in_flight,
            secret_deleted,
            tuple(notes),
        )


# --- config loads and connected accounts ------------------------------------------------------


def connected_conflicts(engine: sa.Engine, accounts: list[ChannelAccount]) -> list[str]:
    """accounts.toml entries a config load must refuse: an id that is a connected account,
    or a page (platform + external id) that a live connected account already publishes to."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ACCOUNT.c.id,
                ACCOUNT.c.platform,
                ACCOUNT.c.external_id,
                ACCOUNT.c.status,
                ACCOUNT.c.connected_by,
            ).where(ACCOUNT.c.origin == ORIGIN_CONNECTED)
        ).all()
    by_id = {r.id: r for r in rows}
    by_page = {
        (r.platform, r.external_id): r for r in rows if r.status != AccountStatus.DISABLED.value
    }
    problems: list[str] = []
    for index, account in enumerate(accounts):
        where = f"accounts.toml: account[{index}]"
        if account.id in by_id:
            who = by_id[account.id].connected_by or "a unit admin"
            problems.append(
                f'{where}.id: "{account.id}" is a connected account (connected by {who}); '
                "give the accounts.toml entry another id"
            )
            continue
        page = by_page.get((account.platform.value, account.external_id))
        if page is not None:
            problems.append(
                f'{where}.external_id: {account.platform.value} "{account.external_id}" is '
                f"already connected as account {page.id}; remove one of the two"
            )
    return problems
