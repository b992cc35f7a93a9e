"""`/healthz` and `/metrics` of `publisher run`, against a migrated database with known rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from publisher.metrics import Metrics
from publisher.server import make_service_app
from publisher.store.engine import make_engine, upgrade
from publisher.store.tables import (
    ArticleRow,
    ChannelAccountRow,
    DeliveryRow,
    PostRow,
    UnitRow,
)

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(UnitRow(code="CP", name="Cổng", kind="central", path="/CP/"))
        session.add(
            UnitRow(code="01", name="Hà Nội", kind="province", parent_code="CP", path="/CP/01/")
        )
        session.flush()  # no ORM relationships: parents must exist before their rows
        session.add_all(
            [
                ChannelAccountRow(
                    id="01.facebook",
                    unit_code="01",
                    platform="facebook",
                    external_id="1",
                    token_expires_at=NOW + timedelta(days=3),
                ),
                ChannelAccountRow(
                    id="01.zalo",
                    unit_code="01",
                    platform="zalo",
                    external_id="2",
                    token_expires_at=NOW - timedelta(hours=1),
                    status="auth_failed",
                ),
            ]
        )
        session.add(
            ArticleRow(
                id=1,
                guid="g",
                url="u",
                canonical_url="u",
                content_hash="h",
                title="t",
                published_at=NOW,
            )
        )
        session.flush()
        session.add(PostRow(id=1, article_id=1, unit_code="01", state="approved"))
        session.commit()
        rows = [
            ("01.facebook", "facebook", "sent", NOW - timedelta(minutes=5)),
            ("01.zalo", "zalo", "pending", NOW - timedelta(minutes=1)),  # due: counts in depth
        ]
        for index, (account, platform, state, due) in enumerate(rows, start=1):
            session.add(
                DeliveryRow(
                    id=index,
                    post_id=1,
                    article_id=1,
                    unit_code="01",
                    account_id=account,
                    platform=platform,
                    state=state,
                    due_at=due,
                )
            )
        session.commit()
    yield engine
    engine.dispose()


async def test_metrics_reports_states_depth_and_token_horizon(engine) -> None:  # type: ignore[no-untyped-def]
    metrics = Metrics(engine, clock=lambda: NOW)
    metrics.send_latency.labels("facebook", "sent").observe(0.2)
    app = make_service_app(engine, metrics, intake=None, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        reply = await client.get("/metrics")
    assert reply.status_code == 200
    text = reply.text
    assert 'publisher_deliveries{channel="facebook",state="sent"} 1.0' in text
    assert 'publisher_deliveries{channel="zalo",state="pending"} 1.0' in text
    assert 'publisher_deliveries{channel="zalo",state="needs_review"} 0.0' in text
    assert "publisher_queue_depth 1.0" in text
    assert 'publisher_token_expiry_seconds{channel="facebook"} 259200.0' in text
    assert 'publisher_token_expiry_seconds{channel="zalo"} -3600.0' in text
    assert "publisher_accounts_auth_failed 1.0" in text
    assert 'publisher_send_seconds_count{channel="facebook",outcome="sent"} 1.0' in text


async def test_healthz_follows_the_database(engine) -> None:  # type: ignore[no-untyped-def]
    app = make_service_app(
        engine, Metrics(engine, clock=lambda: NOW), intake=None, clock=lambda: NOW
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        engine.dispose()
        engine.url = engine.url.set(database="/nonexistent/dir/x.db")  # type: ignore[misc]
        broken = make_engine(str(engine.url))
        app_broken = make_service_app(broken, Metrics(broken, clock=lambda: NOW), None, lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_broken), base_url="http://t"
    ) as client:
        reply = await client.get("/healthz")
    broken.dispose()
    assert reply.status_code == 503
    assert reply.json()["status"] == "unavailable"
