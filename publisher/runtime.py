"""Assembling the running system from a working folder.

`publisher run`, `publisher worker` and `publisher demo` all need the same parts wired the same
way: the directory, the delivery service, the channels (real platforms or the sandbox), the
credential resolver, the worker, the poller and the push intake app. This module builds them
once, from a `Workspace`, and nothing here runs anything by itself.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette

from channels.base import Channel, InMemoryTokenStore, TokenStore
from channels.facebook import FacebookChannel
from channels.registry import channel_base_url, channel_classes, sandbox_url_from_env
from channels.telegram import TelegramChannel
from channels.viber import ViberChannel
from channels.x import XChannel
from channels.youtube import YouTubeChannel
from channels.zalo import ZaloChannel
from publisher.delivery.faults import FaultHook, no_fault
from publisher.delivery.limits import RateLimits
from publisher.delivery.prepare import AdaptingPreparer
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Platform, SourceKind
from publisher.fetch import FetchPolicy, fetch_bytes
from publisher.ingest.intake import IntakeSource, make_intake_app
from publisher.ingest.normalize import SourceContext
from publisher.ingest.pipeline import RecordReport
from publisher.secrets import (
    CredentialResolver,
    EncryptedTokenStore,
    MasterKeyError,
    SecretStore,
    load_keyring,
)
from publisher.service import DeliveryService
from publisher.settings import Config
from publisher.settings.notify import SecretError, resolve_secret
from publisher.store.broadcast_book import SqlBroadcastBook
from publisher.store.ingest_sql import SqlIngestStore
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.sql import SqlRepository
from publisher.store.tables import ArticleRow, table_of
from publisher.viber_webhook import make_viber_webhook_app
from publisher.workspace import Workspace

log = logging.getLogger("publisher.runtime")

VIDEO_MAX_BYTES = 256 * 1024 * 1024  # a news clip; YouTube itself takes far more
VIDEO_TIMEOUT_S = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Runtime:
    """The parts of one service process. Close it with `await runtime.aclose()`."""

    workspace: Workspace
    config: Config
    engine: sa.Engine
    repository: SqlRepository
    service: DeliveryService
    secrets: SecretStore
    credentials: CredentialResolver
    http: httpx.AsyncClient
    channels: dict[str, Channel]
    sandbox_url: str | None
    clock: Callable[[], datetime] = utc_now
    routed: list[int] = field(default_factory=list)

    # --- delivery ------------------------------------------------------------------------

    def rate_limits(self) -> RateLimits:
        """Minimum gaps from schedule.toml, enforced at send time by slots shared in the DB."""
        schedule = self.service.schedule
        account_gaps = {
            platform: rules.min_gap_minutes * 60 for platform, rules in schedule.platform.items()
        }
        if schedule.default.min_gap_minutes:
            for platform in Platform:
                account_gaps.setdefault(platform.value, schedule.default.min_gap_minutes * 60)
        return RateLimits(account_gaps, dict(schedule.platform_min_gap_seconds))

    def worker(self, config: WorkerConfig | None = None, fault: FaultHook = no_fault) -> Worker:
        return Worker(
            self.service.store,
            self.channels,
            self.repository.get_account,
            self.credentials,
            config or WorkerConfig(owner=default_worker_id()),
            # Default templates for every unit (per-unit templates are not configurable yet).
            prepare=AdaptingPreparer(self.engine, self.channels, self.repository.get_unit),
            limits=self.rate_limits(),
            clock=self.clock,
            fault=fault,
            withdrawals=SqlRecallStore(self.service.store),
        )

    # --- ingestion and routing -------------------------------------------------------------

    def ingest_store(self) -> SqlIngestStore:
        return SqlIngestStore(self.engine)

    def route_new(self, article_ids: list[int]) -> tuple[int, int]:
        """Fan new articles out to their units; returns (posts, deliveries) created."""
        posts = deliveries = 0
        for article_id in article_ids:
            created_posts, created_deliveries = self.service.route_article(article_id)
            posts += created_posts
            deliveries += created_deliveries
            self.routed.append(article_id)
        return posts, deliveries

    def route_pending(self) -> tuple[int, int]:
        """Route every stored article that is not routed yet (crash-safe outbox sweep)."""
        return self.route_new(unrouted_articles(self.engine))

    def intake_app(self) -> Starlette:
        """The push intake API for every `push` source whose secret can be read."""
        sources: dict[str, IntakeSource] = {}
        for source in self.config.sources:
            if source.kind is not SourceKind.PUSH:
                continue
            reference = self.config.push_secrets.get(source.id)
            if reference is None:
                log.warning("push source %s has no push_secret: it cannot be used", source.id)
                continue
            try:
                secret = resolve_secret(reference)
            except SecretError as error:
                log.warning("push source %s disabled: %s", source.id, error)
                continue
            sources[source.id] = IntakeSource(SourceContext.of(source), secret.encode())

        def on_recorded(source_id: str, report: RecordReport) -> None:
            self.route_new(list(report.new_ids))

        return make_intake_app(
            sources, self.ingest_store(), clock=self.clock, on_recorded=on_recorded
        )

    def viber_webhook_app(self) -> Starlette:
        """Viber's signed callbacks, checked with each account's token as the worker sees it."""
        return make_viber_webhook_app(self.repository.get_account, self.credentials)

    async def aclose(self) -> None:
        await self.http.aclose()
        self.engine.dispose()


def delivery_service(
    workspace: Workspace, config: Config, clock: Callable[[], datetime] = utc_now
) -> DeliveryService:
    """The use cases over the working folder's database, with its routing, policy, schedule."""
    engine = workspace.engine()
    return DeliveryService.from_config(engine, SqlRepository(engine), config, clock)


def unrouted_articles(engine: sa.Engine) -> list[int]:
    """Stored, publishable articles that have no posts yet: the outbox to drain.

    Fan-out marks an article routed in the same transaction that creates its posts, so an
    article recorded just before a crash is routed by the next sweep, never twice.
    """
    table = table_of(ArticleRow)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.id)
            .where(table.c.routed.is_(False), table.c.backlog.is_(False))
            .order_by(table.c.id)
        )
        return [int(row.id) for row in rows]


PUBLIC_URL_ENV = "PUBLISHER_PUBLIC_URL"


def public_url_from_env() -> str | None:
    """`PUBLISHER_PUBLIC_URL`: where platforms reach `publisher run` (Viber's webhook)."""
    value = os.environ.get(PUBLIC_URL_ENV, "").strip()
    return value.rstrip("/") or None


def build_channels(
    http: httpx.AsyncClient,
    sandbox_url: str | None,
    secrets: SecretStore,
    *,
    zalo_broadcasts: Mapping[str, int] | None = None,
    public_url: str | None = None,
) -> dict[str, Channel]:
    """Every registered channel. Media named by an article (images, videos) is fetched only
    through the project's safe fetcher (SSRF checks, size and time caps); Zalo keeps its
    rotating refresh tokens in the encrypted store and its broadcasts in the database; Viber
    sets its webhook to `<public_url>/viber/webhook/<account>` when a post needs one."""
    sandbox = sandbox_url is not None
    image_policy = FetchPolicy(allow_private_network=sandbox)
    video_policy = FetchPolicy(
        allow_private_network=sandbox, max_bytes=VIDEO_MAX_BYTES, timeout_s=VIDEO_TIMEOUT_S
    )

    async def fetch_image(url: str) -> bytes:
        return await fetch_bytes(url, policy=image_policy)

    async def fetch_video(url: str) -> bytes:
        return await fetch_bytes(url, policy=video_policy)

    renewed_tokens = renewed_token_store(secrets, sandbox)
    channels: dict[str, Channel] = {}
    for cls in channel_classes().values():
        base_url = channel_base_url(cls, sandbox_url)
        channel: Channel
        if cls is FacebookChannel:
            # A re-derived Page token (after 190/460/463/467) is saved encrypted.
            channel = FacebookChannel(http, base_url, fetch=fetch_image, token_store=renewed_tokens)
        elif cls is TelegramChannel:
            # Bytes to upload when Telegram cannot fetch a photo URL itself.
            channel = TelegramChannel(http, base_url, fetch=fetch_image)
        elif cls is YouTubeChannel:
            channel = YouTubeChannel(http, base_url, fetch=fetch_video, token_store=renewed_tokens)
        elif cls is XChannel:
            channel = XChannel(http, base_url, token_store=renewed_tokens)
        elif cls is ZaloChannel:
            channel = ZaloChannel(
                http,
                base_url,
                token_store=renewed_tokens,
                broadcasts=zalo_broadcasts,
                broadcast_book=SqlBroadcastBook(secrets.engine),
            )
        elif cls is ViberChannel:
            channel = ViberChannel(http, base_url, public_url=public_url, fetch=fetch_image)
        else:
            channel = cls(http, base_url)
        channels[Platform(cls.platform).value] = channel
    return channels


def renewed_token_store(secrets: SecretStore, sandbox: bool) -> TokenStore:
    """Where channels keep the tokens they renew (YouTube and X access tokens, X's and Zalo's
    rotated refresh tokens, Facebook's re-derived Page tokens): the encrypted secret store.

    In sandbox mode every renewed token is a sandbox fake, so they are kept in memory: writing
    them to the store would put fakes where a person's secret belongs (and, for an account
    with no stored secret, a row without the OAuth client that the next renewal needs).
    Without a master key a real renewal fails BEFORE_SEND with the message that names the
    missing key."""
    if sandbox:
        return InMemoryTokenStore()
    return EncryptedTokenStore(secrets)


def build_runtime(
    workspace: Workspace,
    *,
    clock: Callable[[], datetime] = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    """Wire the parts of a service process (`transport` lets tests mount the sandbox)."""
    config = workspace.load_config()
    workspace.upgrade_database()
    engine = workspace.engine()
    repository = SqlRepository(engine)
    try:
        keyring = load_keyring(os.environ, workspace.home)
    except MasterKeyError:
        keyring = None  # `store:` tokens then resolve only in sandbox mode, with a clear error
    secrets = SecretStore(engine, keyring)
    sandbox_url = sandbox_url_from_env()
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0, connect=10.0))
    service = DeliveryService.from_config(engine, repository, config, clock)
    return Runtime(
        workspace=workspace,
        config=config,
        engine=engine,
        repository=repository,
        service=service,
        secrets=secrets,
        credentials=CredentialResolver(secrets),
        http=http,
        channels=build_channels(
            http,
            sandbox_url,
            secrets,
            zalo_broadcasts=config.zalo_broadcasts,
            public_url=public_url_from_env(),
        ),
        sandbox_url=sandbox_url,
        clock=clock,
    )
