"""A platform's error text can carry a token (an echoed URL, a debug dump). Whatever the worker
stores of it — `delivery.last_error`, the attempt's error, the account's status reason, the
incident and the `account_stopped` audit event — goes through `publisher.redact` first.

Tests the delivery engine's store (`publisher.store.delivery_sql`) through a real worker run on
a migrated SQLite file, then searches every byte SQLite keeps for the secret.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sec_helpers import raw_database_bytes

from channels.base import (
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Receipt,
    SendError,
    Template,
)
from publisher import audit, redact
from publisher.delivery.jobs import NewDelivery
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.tables import ArticleRow, DeliveryAttemptRow, DeliveryRow, PostRow

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
# Not shaped like any known token: only the registry of known secrets can catch it.
SECRET = "page-secret-Qm9vZ2llV29vZ2llMTIz"


class LeakyChannel(Channel):
    """Fails every send with an error message that quotes the page token."""

    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "Leaky"
    can_read_back: ClassVar[bool] = False

    def __init__(self, kind: ErrorKind) -> None:
        super().__init__(http=None, base_url="fake://")  # type: ignore[arg-type]
        self.kind = kind

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        raise SendError(self.kind, f"rejected call with page key {SECRET} (debug: {SECRET})")

    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        return None


def seed_delivery(engine: sa.Engine, store: SqlDeliveryStore) -> None:
    with engine.begin() as conn:
        article_id = conn.execute(
            sa.insert(ArticleRow.__table__)  # type: ignore[attr-defined]
            .values(
                guid="g1",
                url="https://hanoi.gov.vn/1",
                canonical_url="https://hanoi.gov.vn/1",
                content_hash="h1",
                title="Tin 1",
                published_at=NOW,
                unit_code="01",
                images=[],
            )
            .returning(ArticleRow.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
        post_id = conn.execute(
            sa.insert(PostRow.__table__)  # type: ignore[attr-defined]
            .values(article_id=article_id, unit_code="01", state="approved", approvals=[])
            .returning(PostRow.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
    store.enqueue(
        [
            NewDelivery(
                post_id=post_id,
                article_id=article_id,
                unit_code="01",
                account_id="01.facebook",
                platform="facebook",
                due_at=NOW,
                payload={"message": "Tin 1"},
            )
        ],
        NOW,
    )


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (ErrorKind.BEFORE_SEND, "retry_wait"),  # mark_retry
        (ErrorKind.PERMANENT, "failed"),  # mark_final
        (ErrorKind.UNKNOWN_OUTCOME, "needs_review"),  # mark_unknown (no read-back)
        (ErrorKind.AUTH, "pending"),  # stop_account: status, incident, audit event
    ],
)
async def test_a_secret_in_a_send_error_never_lands_in_the_database(
    sample_db: Any, kind: ErrorKind, state: str
) -> None:
    engine, repository, path = sample_db
    redact.register_secret(SECRET)
    store = SqlDeliveryStore(engine)
    seed_delivery(engine, store)
    worker = Worker(
        store,
        {"facebook": LeakyChannel(kind)},
        repository.get_account,
        lambda account: Credentials(SECRET),
        WorkerConfig(owner="w1", request_timeout_s=5, lease_margin_s=5),
        clock=lambda: NOW,
        rng=random.Random(7),
    )
    await worker.run(until_idle=True)
    table = DeliveryRow.__table__  # type: ignore[attr-defined]
    attempts = DeliveryAttemptRow.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(sa.select(table.c.state, table.c.last_error)).one()
        [detail] = conn.execute(sa.select(attempts.c.detail)).scalars().all()
        events = audit.load(conn)
    assert row.state == state
    # the message is kept, the token is not
    assert f"page key {redact.MASK} (debug: {redact.MASK})" in detail
    if kind is not ErrorKind.UNKNOWN_OUTCOME:  # there the reconcile note replaced it
        assert f"page key {redact.MASK}" in row.last_error
    if kind is ErrorKind.AUTH:
        [stopped] = [e for e in events if e.action == "account_stopped"]
        assert redact.MASK in stopped.details["reason"]
    assert audit.verify(events).ok
    engine.dispose()
    assert SECRET.encode() not in raw_database_bytes(path)
