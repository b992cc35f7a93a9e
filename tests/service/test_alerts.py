"""The service's alert loop publishes delivery outcomes to signed webhooks, once per change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from publisher.alerts import alert_loop, publish_changes
from publisher.settings.notify import NotifyFile, WebhookSettings
from publisher.store.engine import make_engine, upgrade
from publisher.store.tables import ArticleRow, ChannelAccountRow, DeliveryRow, PostRow, UnitRow
from publisher.webhooks import HEADER_EVENT, HEADER_SIGNATURE, HEADER_TIMESTAMP, verify

# An hour ago: the loop's clock also stamps signatures, which receivers check against now.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SECRET = "webhook-test-secret"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(UnitRow(code="01", name="Hà Nội", kind="province", path="/01/"))
        session.flush()
        session.add(
            ChannelAccountRow(id="01.zalo", unit_code="01", platform="zalo", external_id="9")
        )
        outcomes = [("sent", 1), ("failed", 2), ("needs_review", 3), ("pending", 4), ("sent", 30)]
        for index, (state, minutes) in enumerate(outcomes, start=1):
            # One article and post per delivery: (post, account) is unique.
            session.add(ArticleRow(id=index, guid=f"g{index}", url=f"u{index}",
                                   canonical_url=f"u{index}", content_hash=f"h{index}",
                                   title="t", published_at=T0))  # fmt: skip
            session.flush()
            session.add(PostRow(id=index, article_id=index, unit_code="01", state="approved"))
            session.flush()
            session.add(DeliveryRow(
                id=index, post_id=index, article_id=index, unit_code="01",
                account_id="01.zalo", platform="zalo", state=state, due_at=T0,
                remote_id=f"z{index}", updated_at=T0 + timedelta(minutes=minutes),
                last_error=None if state == "sent" else "boom",
            ))  # fmt: skip
        session.commit()
    yield engine
    engine.dispose()


def receiver(
    seen: list[dict[str, object]], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Starlette:
    """A webhook receiver that checks signatures and timestamps against `now`: the sender's
    clock, so a test with a made-up clock does not depend on when the module was imported."""

    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        ok = verify(SECRET.encode(), request.headers[HEADER_TIMESTAMP], body,
                    request.headers[HEADER_SIGNATURE], now())  # fmt: skip
        if not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        seen.append({"event": request.headers[HEADER_EVENT], **json.loads(body)})
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def settings() -> NotifyFile:
    return NotifyFile(
        channels=[],
        webhook=[WebhookSettings(url="http://receiver/hook", secret="env:WEBHOOK_TEST_SECRET")],
    )


async def test_outcomes_in_the_window_are_published_signed(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TEST_SECRET", SECRET)
    seen: list[dict[str, object]] = []
    from publisher.alerts import build_webhooks

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver(seen))) as client:
        webhooks = build_webhooks(settings(), client, lambda: datetime.now(UTC))
        assert webhooks is not None
        count = await publish_changes(engine, webhooks, T0, T0 + timedelta(minutes=10))
    assert count == 3  # the pending one and the one outside the window are not events
    assert sorted(e["event"] for e in seen) == ["failed", "needs_review", "sent"]
    data = {e["event"]: e["data"] for e in seen}
    assert data["sent"]["remote_id"] == "z1"  # type: ignore[index]
    assert data["failed"]["account"] == "01.zalo"  # type: ignore[index]


async def test_the_loop_publishes_each_change_once(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TEST_SECRET", SECRET)
    seen: list[dict[str, object]] = []
    ticks = [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)]
    reads = 0

    def clock() -> datetime:
        # Three changes, then the same hour for ever: any later publication is a repeat.
        nonlocal reads
        reads += 1
        return ticks[reads - 1] if reads <= len(ticks) else T0 + timedelta(hours=1)

    stop = asyncio.Event()
    # The loop signs with its clock, an hour after T0 once the changes are read.
    app = receiver(seen, now=lambda: T0 + timedelta(hours=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        task = asyncio.create_task(
            alert_loop(engine, settings(), client, clock, stop, webhook_every_s=0.01)
        )
        # Let the loop go round well past the last change (a loaded machine is slow to).
        for _ in range(1000):
            if reads >= 15:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert reads >= 15, "the alert loop did not go round in 10 s"
    assert sorted(e["event"] for e in seen) == ["failed", "needs_review", "sent", "sent"]
