"""Prometheus metrics for `publisher run`.

Two kinds:
- read from the database at scrape time (deliveries by state and channel, queue depth,
  token expiry horizon), so every process reports the same truth whichever worker did the work;
- observed in this process (send latency, rate-limit waits), recorded by the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from publisher.domain import DeliveryState
from publisher.store.tables import ChannelAccountRow, DeliveryRow, table_of

DELIVERY = table_of(DeliveryRow)
ACCOUNT = table_of(ChannelAccountRow)

SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class DatabaseCollector(Collector):
    """Gauges computed from the delivery and account tables when Prometheus scrapes."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        by_state = GaugeMetricFamily(
            "publisher_deliveries",
            "Deliveries by state and channel (platform).",
            labels=["state", "channel"],
        )
        depth = GaugeMetricFamily(
            "publisher_queue_depth",
            "Deliveries due now and claimable (pending or retry_wait with due_at <= now).",
        )
        horizon = GaugeMetricFamily(
            "publisher_token_expiry_seconds",
            "Seconds until the soonest token expiry per channel (negative: already expired).",
            labels=["channel"],
        )
        auth_failed = GaugeMetricFamily(
            "publisher_accounts_auth_failed", "Channel accounts stopped by an auth error."
        )
        with self.engine.connect() as connection:
            counts = {
                (state, platform): n
                for state, platform, n in connection.execute(
                    sa.select(DELIVERY.c.state, DELIVERY.c.platform, sa.func.count()).group_by(
                        DELIVERY.c.state, DELIVERY.c.platform
                    )
                )
            }
            platforms = sorted({p for _, p in counts} | {"facebook", "telegram", "zalo"})
            for state in DeliveryState:
                for platform in platforms:
                    by_state.add_metric(
                        [state.value, platform], counts.get((state.value, platform), 0)
                    )
            due = connection.scalar(
                sa.select(sa.func.count())
                .select_from(DELIVERY)
                .where(DELIVERY.c.state.in_(["pending", "retry_wait"]))
                .where(DELIVERY.c.due_at <= now)  # the UTC type converts for each dialect
            )
            depth.add_metric([], float(due or 0))
            soonest = connection.execute(
                sa.select(ACCOUNT.c.platform, sa.func.min(ACCOUNT.c.token_expires_at))
                .where(ACCOUNT.c.token_expires_at.is_not(None))
                .group_by(ACCOUNT.c.platform)
            )
            for platform, expires_at in soonest:
                horizon.add_metric([platform], (expires_at - now).total_seconds())
            failed = connection.scalar(
                sa.select(sa.func.count())
                .select_from(ACCOUNT)
                .where(ACCOUNT.c.status == "auth_failed")
            )
            auth_failed.add_metric([], float(failed or 0))
        yield by_state
        yield depth
        yield horizon
        yield auth_failed


class Metrics:
    """One registry per service process, holding both kinds of metric."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(engine, clock))
        self.send_latency = Histogram(
            "publisher_send_seconds",
            "Time of one platform call, by channel and outcome.",
            ["channel", "outcome"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self.rate_limit_wait = Histogram(
            "publisher_rate_limit_wait_seconds",
            "Waits asked for by platforms (Retry-After and the like), by channel.",
            ["channel"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
