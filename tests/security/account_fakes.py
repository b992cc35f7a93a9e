"""A fake channel whose `check` answers from a list of good tokens, and a small delivery world
for the account-management tests (issue 12)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from channels.base import (
    AccountCheck,
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Receipt,
    SendError,
    Template,
)
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.store.tables import ArticleRow, DeliveryRow, PostRow

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 1, 31, 17, 0, tzinfo=UTC)  # 01/02/2027 00:00 in Hà Nội

# Secrets shaped like real ones, so a leak is easy to find anywhere.
GOOD = "EAAGoodPageToken0123456789abcdefSECRET"
GOOD_2 = "EAASecondGoodToken9876543210zyxwvSECRET"
BAD = "plain-bad-secret-without-a-known-shape-5555"
AUTH_ERROR = "EAAAuthErrorToken7777777777bbbbbSECRET"
DOWN = "EAAPlatformDownToken888888888cccSECRET"
TRADED = "EAATradedDurablePageToken4242424242SECRET"
SHORT_LIVED = "EAAShortLivedUserToken1111111111SECRET"
ALL_SECRETS = (GOOD, GOOD_2, BAD, AUTH_ERROR, DOWN, TRADED, SHORT_LIVED)


class FakeChannel(Channel):
    """`check` says ok for good tokens, refuses bad ones, raises for the error tokens."""

    platform = Platform.TELEGRAM
    display_name = "Fake"

    def __init__(self, platform: Platform, good: set[str]) -> None:
        super().__init__(cast(httpx.AsyncClient, None))
        self.platform = platform  # type: ignore[misc]
        self.good = good
        self.checked: list[tuple[str, str]] = []  # (account id, token)

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"text": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        raise AssertionError("account management never publishes")

    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        self.checked.append((account.id, credentials.token))
        token = credentials.token
        if token == AUTH_ERROR:
            raise SendError(ErrorKind.AUTH, f"token {token} was revoked", platform_code="190")
        if token == DOWN:
            raise SendError(ErrorKind.BEFORE_SEND, "connection refused")
        if token == SHORT_LIVED:
            return AccountCheck(
                True,
                f"page {account.external_id} (traded for a page token)",
                EXPIRES,
                ("pages_manage_posts",),
                Credentials(TRADED, {"app_id": "123"}),
            )
        if token in self.good:
            return AccountCheck(
                True, f"page {account.external_id} (token ok)", EXPIRES, ("pages_manage_posts",)
            )
        return AccountCheck(False, f"invalid token {token} for {account.external_id}")


def fake_channels(good: set[str] | None = None) -> dict[str, FakeChannel]:
    accepted = {GOOD, GOOD_2} if good is None else good
    return {p.value: FakeChannel(p, accepted) for p in Platform}


@dataclass
class DeliveryWorld:
    post_id: int
    by_state: dict[str, int]  # delivery state → delivery id


def add_deliveries(
    engine: sa.Engine, account_id: str, unit: str, states: list[str]
) -> DeliveryWorld:
    """One article and post at `unit`, and one delivery per state on `account_id` (each on
    its own post, since a post has one delivery per account)."""
    by_state: dict[str, int] = {}
    with Session(engine) as session:
        article = ArticleRow(
            guid=f"g-{account_id}",
            url="https://baochinhphu.vn/a.htm",
            canonical_url="https://baochinhphu.vn/a.htm",
            content_hash="0" * 64,
            title="Bài thử",
            published_at=NOW,
        )
        session.add(article)
        session.flush()
        assert article.id is not None
        post_id = 0
        for index, state in enumerate(states):
            other = ArticleRow(
                guid=f"g-{account_id}-{index}",
                url=f"https://baochinhphu.vn/{index}.htm",
                canonical_url=f"https://baochinhphu.vn/{index}.htm",
                content_hash=f"{index:064d}",
                title=f"Bài {index}",
                published_at=NOW,
            )
            session.add(other)
            session.flush()
            assert other.id is not None
            post = PostRow(article_id=other.id, unit_code=unit, state="approved")
            session.add(post)
            session.flush()
            assert post.id is not None
            post_id = post.id
            delivery = DeliveryRow(
                post_id=post.id,
                article_id=other.id,
                unit_code=unit,
                account_id=account_id,
                platform=account_id.split(".")[1],
                state=state,
                due_at=NOW + timedelta(hours=index),
                sent_at=NOW if state == "sent" else None,
                remote_id="r1" if state == "sent" else None,
            )
            session.add(delivery)
            session.flush()
            assert delivery.id is not None
            by_state[state] = delivery.id
        session.commit()
    return DeliveryWorld(post_id, by_state)
