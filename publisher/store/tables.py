"""Persistence tables (sqlmodel). The domain values in `publisher.domain` stay apart from these.

Times are stored as UTC (naive columns on SQLite, `timestamptz` on PostgreSQL) and always come
back timezone-aware. Alembic migrations in `publisher/store/migrations` create this schema;
a test checks that migrations and these tables agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from publisher.store import post_platforms


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware times only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[Any]) -> sa.Table:
    """The Core table behind a sqlmodel class (for statements without the ORM)."""
    return cast(sa.Table, model.__table__)


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: default.copy(), sa_type=sa.JSON, nullable=False)


# --- units, people, accounts, sources -------------------------------------------------------


class UnitRow(SQLModel, table=True):
    __tablename__ = "unit"

    code: str = Field(primary_key=True, max_length=64)
    name: str
    kind: str = Field(max_length=32)
    parent_code: str | None = Field(default=None, foreign_key="unit.code", index=True)
    # Materialised path "/root/01/01001/": a subtree is one LIKE prefix query.
    path: str = Field(index=True)
    depth: int = 0
    code_list: str = ""
    short_name: str = ""
    active: bool = True
    merged_into: str | None = None


class UserRow(SQLModel, table=True):
    __tablename__ = "app_user"

    username: str = Field(primary_key=True, max_length=64)
    display_name: str = ""
    os_users: list[str] = _json([])
    may_act_for_others: bool = False


class RoleGrantRow(SQLModel, table=True):
    __tablename__ = "role_grant"
    __table_args__ = (sa.UniqueConstraint("username", "unit_code", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(foreign_key="app_user.username", index=True)
    unit_code: str = Field(foreign_key="unit.code")
    role: str = Field(max_length=16)
    subtree: bool = True


class ChannelAccountRow(SQLModel, table=True):
    __tablename__ = "channel_account"

    id: str = Field(primary_key=True, max_length=128)
    unit_code: str = Field(foreign_key="unit.code", index=True)
    platform: str = Field(max_length=16, index=True)
    external_id: str
    display_name: str = ""
    credentials_ref: str = ""
    token_expires_at: datetime | None = _time()
    status: str = Field(default="active", max_length=16)
    language: str | None = None
    # Encrypted secrets (never plaintext): ciphertext and the id of the key that made it.
    secret_ciphertext: str | None = None
    secret_key_id: str | None = None
    status_reason: str | None = None
    updated_at: datetime | None = _time()
    # Where the account comes from: "config" (accounts.toml, loaded by `init`) or "connected"
    # (`publisher accounts connect` / the TUI, by a unit admin; a config load never touches it).
    origin: str = Field(
        default="config", max_length=16, sa_column_kwargs={"server_default": "config"}
    )
    connected_by: str | None = None
    connected_at: datetime | None = _time()
    # The last time the platform was asked whether the credentials work, and what it said.
    checked_at: datetime | None = _time()
    check_detail: str | None = None


class SourceRow(SQLModel, table=True):
    __tablename__ = "source"

    id: str = Field(primary_key=True, max_length=128)
    unit_code: str = Field(foreign_key="unit.code", index=True)
    kind: str = Field(max_length=16)
    url: str = ""
    article_kind: str = Field(default="article", max_length=16)
    poll_interval_s: int = 600
    timezone: str = "+07:00"
    allow_private_network: bool = False
    selectors: dict[str, str] = _json({})
    category: str | None = None
    # Poll state: validators for conditional GET, backoff, and whether the backlog was seen.
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: datetime | None = _time(index=True)
    last_polled_at: datetime | None = _time()
    failures: int = 0
    last_error: str | None = None
    backlog_recorded: bool = False


# --- articles ---------------------------------------------------------------------------


class ArticleRow(SQLModel, table=True):
    __tablename__ = "article"

    id: int | None = Field(default=None, primary_key=True)
    guid: str = Field(index=True)
    url: str
    canonical_url: str = Field(index=True)
    content_hash: str = Field(index=True, max_length=64)
    title: str
    summary: str = ""
    body_html: str = ""
    body_text: str = ""
    published_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    images: list[str] = _json([])
    video: str | None = None
    language: str = Field(default="vi", max_length=8)
    source_name: str = ""
    kind: str = Field(default="article", max_length=16, index=True)
    unit_code: str | None = Field(default=None, foreign_key="unit.code", index=True)
    category: str | None = None
    urgent: bool = False
    backlog: bool = False  # seen at a source's first poll: recorded, never published
    routed: bool = False  # posts were created for it (outbox done)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ArticleSourceRow(SQLModel, table=True):
    """One article may arrive from several sources (republished by two portals)."""

    __tablename__ = "article_source"
    __table_args__ = (sa.UniqueConstraint("source_id", "guid"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    source_id: str = Field(max_length=128)
    guid: str
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# --- posts and deliveries ---------------------------------------------------------------


class PostRow(SQLModel, table=True):
    __tablename__ = "post"
    __table_args__ = (
        sa.UniqueConstraint("article_id", "unit_code"),
        # The queue (publisher/views.py): pages walk created_at; segment counts read this
        # one index only (revision 0004_archive), a channel filter included (platforms:
        # revision 0006_platforms_reports).
        sa.Index("ix_post_created_at", "created_at"),
        sa.Index("ix_post_queue_count", "article_id", "state", "unit_code", "platforms"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    unit_code: str = Field(foreign_key="unit.code", index=True)
    state: str = Field(max_length=24, index=True)
    lead_in: str = ""
    scheduled_at: datetime | None = _time()
    expires_at: datetime | None = _time()
    priority: int = 0
    approvals: list[str] = _json([])
    decided_by: str | None = None
    decision_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # ",facebook,zalo,": the platforms of its deliveries, hot or archived; kept by the
    # database's triggers (publisher/store/post_platforms.py; the fan-out writes a new post
    # with what its deliveries will give, so the triggers have nothing to change).
    # No default on the client side: an INSERT leaves the column to the server's ''.
    platforms: str = Field(
        default="", sa_column=sa.Column(sa.String(), server_default="", nullable=False)
    )


class DeliveryRow(SQLModel, table=True):
    """Live work: one post on one channel account. Claimed with a lease, fenced by attempt."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.UniqueConstraint("post_id", "account_id"),
        sa.Index("ix_delivery_due", "state", "due_at"),
        # The queue's channel filter: the post ids on one platform, read from the index
        # alone (revision 0005_queue_indexes).
        sa.Index("ix_delivery_platform_post", "platform", "post_id"),
        # `report directives` reads the rows of a period's directives from this index alone,
        # already in (article, state) order (revision 0006_platforms_reports).
        sa.Index("ix_delivery_report", "article_id", "state", "unit_code", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    # denormalised for coverage reports; looked up by ix_delivery_report, which it leads
    # (its own index, dropped in revision 0006, would only cost every insert)
    article_id: int
    unit_code: str = Field(max_length=64, index=True)  # denormalised for pauses
    account_id: str = Field(foreign_key="channel_account.id", index=True)
    platform: str = Field(max_length=16)
    state: str = Field(max_length=24)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime | None = _time()
    priority: int = 0
    attempt: int = 0
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = _time()
    body_hash: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    remote_id: str | None = None
    remote_url: str | None = None
    last_error: str | None = None
    error_kind: str | None = Field(default=None, max_length=24)
    sent_at: datetime | None = _time()
    # What the platform said beside a send that did not fail it (a Zalo broadcast's id, its
    # monthly quota used up, an image left out): the receipt's problems, each {"severity",
    # "code", "message"}; NULL when there were none (revision 0007_delivery_receipts).
    receipt_notes: list[dict[str, str]] | None = Field(
        default=None, sa_type=sa.JSON(none_as_null=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class DeliveryAttemptRow(SQLModel, table=True):
    """The record of every attempt: what was tried, by whom, and what came back."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    attempt: int
    worker: str = Field(max_length=128)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = _time()
    outcome: str = Field(default="", max_length=24)
    detail: str | None = None


class RecallRow(SQLModel, table=True):
    """A request to take back one post, or one article from every unit (docs/delivery.md)."""

    __tablename__ = "recall"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)  # post | article
    article_id: int = Field(foreign_key="article.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="post.id")
    reason: str
    notice: str = ""
    requested_by: str
    requested_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    cancelled: int = 0  # deliveries stopped before they went out


class WithdrawalRow(SQLModel, table=True):
    """Taking back one delivery: once per delivery, claimed with a lease, fenced by attempt."""

    __tablename__ = "withdrawal"
    __table_args__ = (
        sa.UniqueConstraint("delivery_id"),
        sa.Index("ix_withdrawal_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recall_id: int = Field(foreign_key="recall.id", index=True)
    delivery_id: int = Field(foreign_key="delivery.id")
    post_id: int = Field(index=True)  # denormalised for the post screen
    unit_code: str = Field(max_length=64)
    account_id: str = Field(max_length=128)
    platform: str = Field(max_length=16)
    state: str = Field(max_length=24)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    attempt: int = 0
    retries: int = 0  # errors retried so far (rate limits, unknown outcomes, before-send)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = _time()
    remote_id: str | None = None
    remote_url: str | None = None
    last_error: str | None = None
    error_kind: str | None = Field(default=None, max_length=24)
    withdrawn_at: datetime | None = _time()
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class PauseRow(SQLModel, table=True):
    __tablename__ = "pause"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    target: str = ""
    reason: str
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    until: datetime | None = _time()
    lifted_at: datetime | None = _time()
    lifted_by: str | None = None
    lift_reason: str | None = None


class RateLimitRow(SQLModel, table=True):
    """Per-account and per-platform limits, shared by every worker through the database."""

    __tablename__ = "rate_limit"

    key: str = Field(primary_key=True, max_length=160)
    next_allowed_at: datetime | None = _time()
    window_start: datetime | None = _time()
    window_count: int = 0


class AuditEventRow(SQLModel, table=True):
    """Append-only; each event's hash covers the previous one's (a chain)."""

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    actor: str
    action: str = Field(max_length=48, index=True)
    target: str = ""
    details: dict[str, Any] = _json({})
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class IncidentRow(SQLModel, table=True):
    """An open problem (token expiring, account failing …): notify once per incident."""

    __tablename__ = "incident"
    __table_args__ = (sa.UniqueConstraint("key", "opened_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=32)
    unit_code: str | None = None
    detail: str = ""
    opened_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    notified_at: datetime | None = _time()
    closed_at: datetime | None = _time()


class IntakeNonceRow(SQLModel, table=True):
    """Signatures seen by the push intake API, so a replayed request is refused."""

    __tablename__ = "intake_nonce"

    signature: str = Field(primary_key=True, max_length=128)
    source_id: str = Field(max_length=128)
    seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


# --- archive (publisher/store/archive.py) -----------------------------------------------------


class DeliveryArchiveRow(SQLModel, table=True):
    """A delivery in a final state moved out of the hot table by `publisher archive`: the
    same columns (and the same id, so audit targets `delivery:N` still resolve), plus when it
    was archived. Reports and history read `delivery` ∪ `delivery_archive`."""

    __tablename__ = "delivery_archive"
    __table_args__ = (
        # The queue's channel filter, as on `delivery`; `status` counts archived deliveries
        # by state from an index (revision 0005_queue_indexes).
        sa.Index("ix_delivery_archive_platform_post", "platform", "post_id"),
        sa.Index("ix_delivery_archive_state", "state"),
        sa.Index("ix_delivery_archive_report", "article_id", "state", "unit_code", "sent_at"),
    )

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    post_id: int = Field(index=True)
    article_id: int  # looked up by ix_delivery_archive_report, which it leads
    unit_code: str = Field(max_length=64, index=True)
    account_id: str = Field(max_length=128)
    platform: str = Field(max_length=16)
    state: str = Field(max_length=24)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime | None = _time()
    priority: int = 0
    attempt: int = 0
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = _time()
    body_hash: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    remote_id: str | None = None
    remote_url: str | None = None
    last_error: str | None = None
    error_kind: str | None = Field(default=None, max_length=24)
    sent_at: datetime | None = _time()
    receipt_notes: list[dict[str, str]] | None = Field(
        default=None, sa_type=sa.JSON(none_as_null=True)
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    archived_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DeliveryAttemptArchiveRow(SQLModel, table=True):
    """The attempts of an archived delivery, moved in the same transaction as it."""

    __tablename__ = "delivery_attempt_archive"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    delivery_id: int = Field(index=True)
    attempt: int
    worker: str = Field(max_length=128)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    finished_at: datetime | None = _time()
    outcome: str = Field(default="", max_length=24)
    detail: str | None = None


# The triggers that keep post.platforms also come with `metadata.create_all` (the migration
# 0006_platforms_reports installs them on a migrated database).
sa.event.listen(SQLModel.metadata, "after_create", post_platforms.install_after_create)
