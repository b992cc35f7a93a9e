"""Outgoing webhooks: signed, retried within bounds, against an in-process receiver."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publisher.webhooks import (
    HEADER_EVENT,
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Endpoint,
    WebhookSender,
    delivery_event_data,
    verify,
)

SECRET = b"webhook-secret"
NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)


def receiver(replies: list[int], seen: list[dict[str, str]], retry_after: str = "7") -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        ok = verify(
            SECRET,
            request.headers[HEADER_TIMESTAMP],
            body,
            request.headers[HEADER_SIGNATURE],
            NOW,
        )
        seen.append({"event": request.headers[HEADER_EVENT], "id": request.headers[HEADER_ID]})
        if not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        status = replies.pop(0) if replies else 200
        headers = {"Retry-After": retry_after} if status == 429 else {}
        return JSONResponse({"status": status}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def _send(replies: list[int], max_attempts: int = 4, events=("sent", "failed")):  # type: ignore[no-untyped-def]
    seen: list[dict[str, str]] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    transport = httpx.ASGITransport(app=receiver(replies, seen))
    async with httpx.AsyncClient(transport=transport) as client:
        sender = WebhookSender(
            client,
            [Endpoint("http://cms/hook", SECRET, frozenset(events), max_attempts)],
            clock=lambda: NOW,
            sleep=sleep,
        )
        data = delivery_event_data(
            delivery_id=7,
            article_id=2,
            unit_code="01",
            account_id="01.facebook",
            platform="facebook",
            state="sent",
            remote_id="123_456",
            sent_at=NOW,
        )
        outcomes = await sender.publish("sent", data)
    return outcomes, seen, waits


async def test_signed_and_accepted_first_time() -> None:
    outcomes, seen, waits = await _send([200])
    assert [(o.ok, o.attempts, o.status) for o in outcomes] == [(True, 1, 200)]
    assert seen[0]["event"] == "sent"
    assert waits == []


async def test_5xx_and_429_are_retried_with_backoff_and_the_same_id() -> None:
    outcomes, seen, waits = await _send([503, 429, 200])
    assert [(o.ok, o.attempts) for o in outcomes] == [(True, 3)]
    assert waits == [1.0, 7.0]  # backoff, then the receiver's Retry-After
    assert len({s["id"] for s in seen}) == 1  # receivers can deduplicate on the id


async def test_retries_are_bounded_and_4xx_is_final() -> None:
    outcomes, _seen, waits = await _send([500, 500, 500, 500, 500], max_attempts=3)
    assert [(o.ok, o.attempts, o.status) for o in outcomes] == [(False, 3, 500)]
    assert waits == [1.0, 2.0]
    outcomes, _seen, waits = await _send([400])
    assert [(o.ok, o.attempts, o.status) for o in outcomes] == [(False, 1, 400)]
    assert waits == []


async def test_unsubscribed_event_is_not_sent() -> None:
    outcomes, seen, _ = await _send([200], events=("failed",))
    assert outcomes == []
    assert seen == []


def test_verify_refuses_tampering_and_stale_timestamps() -> None:
    from publisher.webhooks import sign

    body = b'{"event":"sent"}'
    timestamp = str(int(NOW.timestamp()))
    signature = sign(SECRET, timestamp, body)
    assert verify(SECRET, timestamp, body, signature, NOW)
    assert not verify(SECRET, timestamp, body + b" ", signature, NOW)
    assert not verify(b"other", timestamp, body, signature, NOW)
    later = datetime(2026, 11, 14, 2, 10, tzinfo=UTC)
    assert not verify(SECRET, timestamp, body, signature, later)
