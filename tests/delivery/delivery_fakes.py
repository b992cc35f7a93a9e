"""A fake platform for delivery tests: a ledger in a SQLite file (shared across processes),
programmable faults, and read-back. Plus helpers that seed units, accounts, articles, posts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlmodel import SQLModel

from channels.base import (
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Receipt,
    SendError,
    Template,
    WithdrawMode,
    payload_hash,
)
from publisher.delivery.jobs import NewDelivery
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.sql import SqlRepository
from publisher.store.tables import ArticleRow, PostRow

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


class Ledger:
    """What the 'platform' accepted; a SQLite file so a killed process's posts survive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS post (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " account TEXT, body_sha256 TEXT, payload TEXT)"
            )
            # Recall: every withdraw call, and each post taken back (once, with how).
            db.execute("CREATE TABLE IF NOT EXISTS withdraw_call (remote_id TEXT)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS removed (remote_id TEXT PRIMARY KEY, how TEXT,"
                " notice TEXT)"
            )

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def accept(self, account: str, body_hash: str, payload: str) -> str:
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO post (account, body_sha256, payload) VALUES (?, ?, ?)",
                (account, body_hash, payload),
            )
            return f"p{cursor.lastrowid}"

    def find(self, account: str, body_hash: str) -> str | None:
        with self._db() as db:
            row = db.execute(
                "SELECT id FROM post WHERE account = ? AND body_sha256 = ? ORDER BY id LIMIT 1",
                (account, body_hash),
            ).fetchone()
        return f"p{row[0]}" if row else None

    def entries(self) -> list[tuple[str, str]]:
        with self._db() as db:
            return [(a, h) for a, h in db.execute("SELECT account, body_sha256 FROM post")]

    def withdraw(self, remote_id: str, how: str, notice: str) -> None:
        """Idempotent, as the platforms are: taking back a post already gone changes nothing."""
        with self._db() as db:
            db.execute("INSERT INTO withdraw_call (remote_id) VALUES (?)", (remote_id,))
            db.execute(
                "INSERT OR IGNORE INTO removed (remote_id, how, notice) VALUES (?, ?, ?)",
                (remote_id, how, notice),
            )

    def removed(self) -> dict[str, str]:
        with self._db() as db:
            return dict(db.execute("SELECT remote_id, how FROM removed").fetchall())

    def withdraw_calls(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT count(*) FROM withdraw_call").fetchone()[0])

    def duplicates(self) -> int:
        with self._db() as db:
            row = db.execute(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM post"
                " GROUP BY account, body_sha256)"
            ).fetchone()
        return int(row[0])


@dataclass
class Faults:
    """Outcomes for the next calls, in order ("ok" once the script runs out)."""

    script: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    retry_after_s: float = 60.0

    def next(self) -> str:
        return self.script.pop(0) if self.script else "ok"


class LedgerChannel(Channel):
    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "Fake (ledger)"
    can_read_back: ClassVar[bool] = True

    def __init__(self, ledger: Ledger, faults: Faults | None = None) -> None:
        super().__init__(http=None, base_url="fake://")  # type: ignore[arg-type]
        self.ledger = ledger
        self.faults = faults or Faults()
        self.calls = 0

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": f"{template.lead_in}{article.title}", "unit": unit.code})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        self.calls += 1
        fault = self.faults.next()
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        else:
            await asyncio.sleep(0)
        if fault == "before_send":
            raise SendError(ErrorKind.BEFORE_SEND, "connection refused")
        if fault == "rate_limited":
            raise SendError(
                ErrorKind.RATE_LIMITED, "too many calls", retry_after=self.faults.retry_after_s
            )
        if fault == "auth":
            raise SendError(ErrorKind.AUTH, "token expired", platform_code="190")
        if fault == "permanent":
            raise SendError(ErrorKind.PERMANENT, "invalid parameter", platform_code="100")
        import json

        remote_id = self.ledger.accept(account.id, payload_hash(payload), json.dumps(payload))
        if fault == "reply_lost":
            raise SendError(ErrorKind.UNKNOWN_OUTCOME, "read timeout after the body was sent")
        return Receipt(remote_id=remote_id, url=f"https://fake/{remote_id}")

    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        remote_id = self.ledger.find(account.id, body_hash)
        return Receipt(remote_id=remote_id) if remote_id else None


class DeletingLedgerChannel(LedgerChannel):
    """A platform whose API deletes posts; `withdraw_faults` scripts the withdraw calls."""

    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    def __init__(
        self, ledger: Ledger, faults: Faults | None = None, withdraw_faults: Faults | None = None
    ) -> None:
        super().__init__(ledger, faults)
        self.withdraw_faults = withdraw_faults or Faults()
        self.notices: list[str] = []
        self.withdraw_attempts = 0  # calls made, whatever came back

    async def withdraw(
        self, account: ChannelAccount, credentials: Credentials, remote_id: str, *, notice: str
    ) -> Receipt:
        self.withdraw_attempts += 1
        fault = self.withdraw_faults.next()
        if self.withdraw_faults.latency_s:
            await asyncio.sleep(self.withdraw_faults.latency_s)
        if fault == "before_send":
            raise SendError(ErrorKind.BEFORE_SEND, "connection refused")
        if fault == "rate_limited":
            raise SendError(
                ErrorKind.RATE_LIMITED,
                "too many calls",
                retry_after=self.withdraw_faults.retry_after_s,
            )
        if fault == "auth":
            raise SendError(ErrorKind.AUTH, "token expired", platform_code="190")
        if fault == "permanent":
            raise SendError(ErrorKind.PERMANENT, "not allowed to delete", platform_code="200")
        if fault == "hang":
            await asyncio.sleep(3600)
        self.notices.append(notice)
        how = "edited" if self.withdraw_mode is WithdrawMode.EDIT else "deleted"
        self.ledger.withdraw(remote_id, how, notice)
        if fault == "reply_lost":
            raise SendError(ErrorKind.UNKNOWN_OUTCOME, "read timeout after the request was sent")
        return Receipt(remote_id=remote_id)


class EditingLedgerChannel(DeletingLedgerChannel):
    """A platform that can only edit: the notice replaces the post."""

    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.EDIT


class BlindLedgerChannel(LedgerChannel):
    """Same platform behaviour, but no read-back (like Viber): unknown → needs_review."""

    platform: ClassVar[Platform] = Platform.VIBER
    display_name: ClassVar[str] = "Fake (no read-back)"
    can_read_back: ClassVar[bool] = False


def create_schema(engine: sa.Engine) -> None:
    import publisher.store.tables  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine)


def sqlite_engine(path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    return engine


@dataclass
class World:
    engine: sa.Engine
    store: SqlDeliveryStore
    repo: SqlRepository
    accounts: dict[str, ChannelAccount]
    next_article: int = 1

    def account(self, account_id: str) -> ChannelAccount | None:
        return self.accounts.get(account_id)


def seed_world(
    engine: sa.Engine,
    units: int = 3,
    platforms: tuple[Platform, ...] = (Platform.FACEBOOK,),
) -> World:
    repo = SqlRepository(engine)
    tree = [Unit(code="CP", name="Central", kind="central")]
    tree += [
        Unit(code=f"U{i:04d}", name=f"Unit {i}", kind="province", parent_code="CP")
        for i in range(units)
    ]
    repo.upsert_units(tree)
    accounts = [
        ChannelAccount(id=f"{u.code}.{p.value}", unit_code=u.code, platform=p, external_id=u.code)
        for u in tree[1:]
        for p in platforms
    ]
    repo.upsert_accounts(accounts)
    return World(engine, SqlDeliveryStore(engine), repo, {a.id: a for a in accounts})


def add_posts(
    world: World,
    articles: int = 1,
    *,
    due_at: datetime = T0,
    expires_in: timedelta | None = None,
) -> list[NewDelivery]:
    """Articles × units posts, one delivery per account; payloads unique per delivery."""
    article_table = ArticleRow.__table__
    post_table = PostRow.__table__
    deliveries: list[NewDelivery] = []
    units = sorted({a.unit_code for a in world.accounts.values()})
    with world.engine.begin() as conn:
        for _ in range(articles):
            n = world.next_article
            world.next_article += 1
            article_id = conn.execute(
                sa.insert(article_table)
                .values(
                    guid=f"g{n}",
                    url=f"https://x/{n}",
                    canonical_url=f"https://x/{n}",
                    content_hash=f"{n:064d}",
                    title=f"Article {n}",
                    published_at=T0,
                    images=[],
                    created_at=T0,
                )
                .returning(article_table.c.id)
            ).scalar_one()
            for unit in units:
                post_id = conn.execute(
                    sa.insert(post_table)
                    .values(
                        article_id=article_id,
                        unit_code=unit,
                        state="approved",
                        approvals=[],
                        created_at=T0,
                        updated_at=T0,
                    )
                    .returning(post_table.c.id)
                ).scalar_one()
                for account in world.accounts.values():
                    if account.unit_code != unit:
                        continue
                    deliveries.append(
                        NewDelivery(
                            post_id=post_id,
                            article_id=article_id,
                            unit_code=unit,
                            account_id=account.id,
                            platform=account.platform.value,
                            due_at=due_at,
                            expires_at=(due_at + expires_in) if expires_in else None,
                            payload={"message": f"article {n} for {account.id}"},
                        )
                    )
    world.store.enqueue(deliveries, due_at)
    return deliveries


class NullChannel(Channel):
    """Accepts everything at once and remembers nothing (throughput and claim tests)."""

    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "Null"
    can_read_back: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__(http=None, base_url="null://")  # type: ignore[arg-type]

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        return Receipt(remote_id=payload_hash(payload)[:16])
