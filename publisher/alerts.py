"""The service's alerting loop: credential health, failure notices and delivery webhooks.

Every tick (default 10 minutes for notices, 15 seconds for webhooks):
- credential health opens an incident per expiring, failing or revoked token and tells the
  unit's admins and its parent once per incident (publisher.notify.credential_pass);
- deliveries that ended failed, expired or needs_review are told to the unit's editors, one
  message per unit (publisher.notify.failure_pass);
- recalled posts a person must remove by hand (or whose withdrawal failed) are told to the
  unit's editors, one message per unit (publisher.recall_notify.removal_pass);
- each delivery that became sent, failed or needs_review is published to the subscribed
  webhooks, signed (publisher.webhooks). The event id is stable per delivery and state, so a
  receiver can drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa

from publisher.notify import Notifier, build_notifier, credential_pass, directory_from_engine
from publisher.notify import failure_pass as run_failure_pass
from publisher.recall_notify import removal_pass
from publisher.settings.notify import NotifyFile, SecretError, resolve_secret
from publisher.store.tables import DeliveryRow, table_of
from publisher.webhooks import Endpoint, WebhookSender, delivery_event_data

log = logging.getLogger("publisher.alerts")
WEBHOOK_STATES = ("sent", "failed", "needs_review")
DELIVERY = table_of(DeliveryRow)


def build_webhooks(
    settings: NotifyFile, client: httpx.AsyncClient, clock: Callable[[], datetime]
) -> WebhookSender | None:
    endpoints = []
    for hook in settings.webhook:
        try:
            secret = resolve_secret(hook.secret)
        except SecretError as error:
            log.warning("webhook %s disabled: %s", hook.url, error)
            continue
        endpoints.append(
            Endpoint(hook.url, secret.encode(), frozenset(hook.events), hook.max_attempts,
                     hook.timeout_s)
        )  # fmt: skip
    return WebhookSender(client, endpoints, clock) if endpoints else None


async def publish_changes(
    engine: sa.Engine, webhooks: WebhookSender, since: datetime, until: datetime
) -> int:
    """Publish deliveries that reached a webhook state in [since, until); returns how many."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(DELIVERY)
            .where(DELIVERY.c.state.in_(WEBHOOK_STATES))
            .where(DELIVERY.c.updated_at >= since, DELIVERY.c.updated_at < until)
            .order_by(DELIVERY.c.updated_at)
        ).all()
    for row in rows:
        if not webhooks.wants(row.state):
            continue
        data = delivery_event_data(
            delivery_id=row.id,
            article_id=row.article_id,
            unit_code=row.unit_code,
            account_id=row.account_id,
            platform=row.platform,
            state=row.state,
            remote_id=row.remote_id,
            remote_url=row.remote_url,
            sent_at=row.sent_at,
            error=row.last_error,
        )
        for outcome in await webhooks.publish(row.state, data):
            if not outcome.ok:
                log.warning("webhook %s for delivery %s failed: %s", outcome.url, row.id,
                            outcome.error)  # fmt: skip
    return len(rows)


async def alert_loop(
    engine: sa.Engine,
    settings: NotifyFile,
    client: httpx.AsyncClient,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    *,
    notice_every_s: float = 600.0,
    webhook_every_s: float = 15.0,
) -> None:
    webhooks = build_webhooks(settings, client, clock)
    try:
        notifier: Notifier | None = build_notifier(settings, client, webhooks)
    except SecretError as error:
        log.warning("notifications disabled: %s", error)
        notifier = None
    horizon = timedelta(days=settings.token_horizon_days)
    cursor = clock()
    next_notice = clock()
    while not stop.is_set():
        now = clock()
        try:
            if webhooks is not None:
                await publish_changes(engine, webhooks, cursor, now)
            cursor = now
            if notifier is not None and now >= next_notice:
                directory = directory_from_engine(engine)
                for summary in (
                    await credential_pass(engine, notifier, directory, settings.contact, now,
                                          horizon),
                    await run_failure_pass(engine, notifier, directory, settings.contact, now),
                    await removal_pass(engine, notifier, directory, settings.contact, now),
                ):  # fmt: skip
                    for notice in summary.failed_notices:
                        log.warning("a notice reached nobody: %s", notice)
                next_notice = now + timedelta(seconds=notice_every_s)
        except Exception:  # alerting must never stop publishing; the next tick tries again
            log.exception("alerting tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=webhook_every_s)
