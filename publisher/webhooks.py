"""Outgoing webhooks for integrations: delivery sent / failed / needs_review, and alerts.

Each request is a JSON body signed with HMAC-SHA256 over "<timestamp>.<body>", the same
scheme the push intake API accepts (publisher.ingest.intake), so one verifier serves both:

    X-Publisher-Event:     sent | failed | needs_review | expired | alert
    X-Publisher-Timestamp: Unix seconds when this attempt was signed
    X-Publisher-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Publisher-Webhook-Id: stable id of the event (the same on every retry: deduplicate on it)

Retries are bounded (`max_attempts` per endpoint): a transport error, a 5xx, or a 429 is
retried after a backoff (429 honours Retry-After up to a cap); any other 4xx is final.
The HTTP client and the clock are injected, so tests run against an in-process app.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

HEADER_EVENT = "X-Publisher-Event"
HEADER_TIMESTAMP = "X-Publisher-Timestamp"
HEADER_SIGNATURE = "X-Publisher-Signature"
HEADER_ID = "X-Publisher-Webhook-Id"
MAX_RETRY_AFTER_S = 60.0


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    now: datetime,
    tolerance_s: float = 300.0,
) -> bool:
    """For receivers: the signature matches and the timestamp is within the tolerance."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - moment) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    secret: bytes
    events: frozenset[str]
    max_attempts: int = 4
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Outcome:
    url: str
    event: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None = None


def event_body(event: str, data: Mapping[str, Any], occurred_at: datetime) -> tuple[str, bytes]:
    """(id, body): the id is a hash of the content, so a retry carries the same id."""
    payload = {"event": event, "occurred_at": occurred_at.isoformat(), "data": dict(data)}
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    raw = body.encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:32], raw


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None


class WebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoints: Iterable[Endpoint],
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff_s: float = 1.0,
    ) -> None:
        self.client = client
        self.endpoints = list(endpoints)
        self.clock = clock
        self.sleep = sleep
        self.backoff_s = backoff_s

    def wants(self, event: str) -> bool:
        return any(event in e.events for e in self.endpoints)

    async def publish(self, event: str, data: Mapping[str, Any]) -> list[Outcome]:
        """Send `event` to every endpoint that subscribed to it; never raises for HTTP."""
        event_id, body = event_body(event, data, self.clock())
        chosen = [e for e in self.endpoints if event in e.events]
        return list(await asyncio.gather(*(self._send(e, event, event_id, body) for e in chosen)))

    async def _send(self, endpoint: Endpoint, event: str, event_id: str, body: bytes) -> Outcome:
        status: int | None = None
        error: str | None = None
        for attempt in range(1, endpoint.max_attempts + 1):
            timestamp = str(int(self.clock().timestamp()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                HEADER_EVENT: event,
                HEADER_ID: event_id,
                HEADER_TIMESTAMP: timestamp,
                HEADER_SIGNATURE: sign(endpoint.secret, timestamp, body),
            }
            wait = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = await self.client.post(
                    endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_s
                )
            except httpx.HTTPError as failure:
                status, error = None, f"{type(failure).__name__}: {failure}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Outcome(endpoint.url, event, True, attempt, status)
                error = f"HTTP {status}"
                if status == 429:
                    wait = _retry_after(response) or wait
                elif status < 500:
                    return Outcome(endpoint.url, event, False, attempt, status, error)
            if attempt < endpoint.max_attempts:
                await self.sleep(min(wait, MAX_RETRY_AFTER_S))
        return Outcome(endpoint.url, event, False, endpoint.max_attempts, status, error)


def delivery_event_data(
    *,
    delivery_id: int | None,
    article_id: int,
    unit_code: str,
    account_id: str,
    platform: str,
    state: str,
    remote_id: str | None = None,
    remote_url: str | None = None,
    sent_at: datetime | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "article_id": article_id,
        "unit": unit_code,
        "account": account_id,
        "platform": platform,
        "state": state,
        "remote_id": remote_id,
        "remote_url": remote_url,
        "sent_at": sent_at.isoformat() if sent_at else None,
        "error": error,
    }
