"""The engine against the real emulators (the sandbox, in-process over httpx.ASGITransport):
accepted-but-reply-lost faults never cause a second post; unknown outcomes are resolved by
read-back where the channel can, and handed to a person where it cannot."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from delivery_fakes import T0
from starlette.applications import Starlette
from starlette.routing import Mount

from channels.article_json import article_from_json
from channels.base import Credentials
from channels.registry import load_channels
from channels.sandbox import make_app
from channels.viber import ViberChannel
from publisher.delivery.prepare import AdaptingPreparer
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import ArticleKind, ChannelAccount, Platform, Unit
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ARTICLE, ATTEMPT, D
from publisher.store.sql import SqlRepository
from publisher.viber_webhook import make_viber_webhook_app

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "samples" / "directive-chuyen-doi-so.json"
SANDBOX = "http://sandbox"
PLATFORMS = (Platform.FACEBOOK, Platform.TELEGRAM, Platform.VIBER)
UNITS = 12


def seed(engine):
    repo = SqlRepository(engine)
    units = [Unit("CP", "Cổng TTĐT Chính phủ", "central")] + [
        Unit(f"{i:02d}", f"Tỉnh {i}", "province", "CP", short_name=f"Tỉnh {i}")
        for i in range(1, UNITS)
    ]
    repo.upsert_units(units)
    accounts = []
    for n, unit in enumerate(units):
        accounts += [
            ChannelAccount(
                f"{unit.code}.facebook", unit.code, Platform.FACEBOOK, f"1000000000{n:05d}"
            ),
            ChannelAccount(f"{unit.code}.telegram", unit.code, Platform.TELEGRAM, f"@kenh_{n}"),
            ChannelAccount(f"{unit.code}.viber", unit.code, Platform.VIBER, f"vb{n}"),
        ]
    repo.upsert_accounts(accounts)
    return repo, {a.id: a for a in accounts}


def token_for(account: ChannelAccount) -> Credentials:
    if account.platform is Platform.TELEGRAM:
        return Credentials("123456:ABCdef")
    return Credentials(f"{account.external_id}.token")


def store_article(engine) -> int:
    article = article_from_json(json.loads(SAMPLE.read_text("utf-8")), SAMPLE.name)
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(ARTICLE)
            .values(
                guid=article.guid,
                url=article.url,
                canonical_url=article.url,
                content_hash="h",
                title=article.title,
                summary=article.summary,
                body_html=article.body_html,
                body_text=article.body_text,
                published_at=article.published_at,
                images=list(article.images),
                language=article.language,
                source_name=article.source,
                kind=ArticleKind.DIRECTIVE.value,
                unit_code="CP",
                created_at=T0,
            )
            .returning(ARTICLE.c.id)
        ).scalar_one()


@pytest.mark.parametrize("loss_rate", [0.3])
async def test_reply_lost_never_duplicates_and_read_back_resolves_it(db, loss_rate):
    repo, accounts = seed(db)
    service = DeliveryService(
        db,
        repo,
        schedule_rules=ScheduleFile(stagger_seconds=0, default={"quiet_hours": []}),
    )
    service.route_article(store_article(db))
    # Viber posts only once a webhook is set: the sandbox reaches the publisher's endpoint.
    hooks = make_viber_webhook_app(accounts.get, token_for)
    sandbox = make_app(
        fault_spec={"seed": 7, "faults": [{"kind": "reply_lost", "rate": loss_rate}]},
        callback_transport=httpx.ASGITransport(app=Starlette(routes=[Mount("/viber", hooks)])),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as http:
        channels = {p.value: c for p, c in load_channels(http, SANDBOX).items() if p in PLATFORMS}
        channels["viber"] = ViberChannel(http, f"{SANDBOX}/viber", public_url="http://publisher")
        worker = Worker(
            service.store,
            channels,
            accounts.get,
            token_for,
            WorkerConfig(owner="w", request_timeout_s=10),
            prepare=AdaptingPreparer(db, channels, repo.get_unit),
        )
        await worker.run(until_idle=True)
    ledger = sandbox.state.sandbox.ledger
    copies = Counter((e.platform, e.account, e.body_sha256) for e in ledger)
    with db.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(D.c.platform + ":" + D.c.state, sa.func.count()).group_by(
                    D.c.platform, D.c.state
                )
            ).all()
        )
        lost_replies = conn.execute(
            sa.select(sa.func.count())
            .select_from(ATTEMPT)
            .where(ATTEMPT.c.outcome == "unknown_outcome")
        ).scalar()
    total = UNITS * len(PLATFORMS)
    figures = {
        "deliveries": total,
        "ledger": len(ledger),
        "duplicates": sum(n - 1 for n in copies.values()),
        "unknown_outcomes": lost_replies,
        "states": states,
    }
    print("SANDBOX_REPLY_LOST", json.dumps(figures))
    assert figures["duplicates"] == 0
    assert len(ledger) == total  # every post published exactly once
    assert lost_replies > 0
    # Facebook reads back: every unknown there was resolved to sent automatically.
    assert states.get("facebook:sent") == UNITS
    # Telegram and Viber cannot: unknowns wait for a person, never re-sent.
    for platform in ("telegram", "viber"):
        assert (
            states.get(f"{platform}:sent", 0) + states.get(f"{platform}:needs_review", 0) == UNITS
        )
    # Every lost reply ended as sent (found by read-back) or needs_review; none was re-sent.
    needs_review = sum(v for k, v in states.items() if k.endswith("needs_review"))
    assert needs_review <= lost_replies
    assert sum(v for k, v in states.items() if k.endswith(":sent")) + needs_review == total


async def test_a_facebook_policy_block_retries_later_and_the_page_keeps_posting(db):
    """Graph 368 ("temporarily blocked for policy"): that post waits and is tried again much
    later; the Page is not stopped, and its other posts and other Pages go out."""
    from datetime import UTC, datetime

    from publisher.store.delivery_sql import ACCOUNT

    repo, accounts = seed(db)
    service = DeliveryService(
        db, repo, schedule_rules=ScheduleFile(stagger_seconds=0, default={"quiet_hours": []})
    )
    service.route_article(store_article(db))
    blocked = accounts["01.facebook"]
    sandbox = make_app(
        fault_spec={
            "faults": [
                {
                    "platform": "facebook",
                    "account": blocked.external_id,
                    "kind": "error",
                    "code": 368,
                    "next": 1,
                }
            ]
        }
    )
    started = datetime.now(UTC)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as http:
        channels = {
            p.value: c for p, c in load_channels(http, SANDBOX).items() if p is Platform.FACEBOOK
        }
        worker = Worker(
            service.store,
            channels,
            accounts.get,
            token_for,
            WorkerConfig(owner="w", request_timeout_s=10),
            prepare=AdaptingPreparer(db, channels, repo.get_unit),
        )
        await worker.run(until_idle=True)
    with db.connect() as conn:
        status = conn.execute(
            sa.select(ACCOUNT.c.status).where(ACCOUNT.c.id == blocked.id)
        ).scalar_one()
        row = conn.execute(
            sa.select(D.c.state, D.c.error_kind, D.c.due_at, D.c.last_error).where(
                D.c.account_id == blocked.id
            )
        ).one()
        sent = conn.execute(
            sa.select(sa.func.count()).where(D.c.platform == "facebook", D.c.state == "sent")
        ).scalar()
    assert status == "active"  # not auth_failed: the Page keeps publishing
    assert row.state == "retry_wait"
    assert row.error_kind == "before_send"
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)
    assert (due - started).total_seconds() >= 3600  # Meta: wait, then retry
    assert "368" in row.last_error
    assert sent == UNITS - 1
    assert len(sandbox.state.sandbox.ledger) == UNITS - 1
