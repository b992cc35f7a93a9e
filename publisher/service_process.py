"""`publisher run`: one process that polls, routes, delivers and serves HTTP.

Several such processes (or `publisher worker` processes) on several machines may share one
PostgreSQL database: claims are leased and fenced, so nothing else is needed to scale.

Shutdown on SIGTERM or SIGINT: stop claiming, let in-flight sends finish (each ends `sent`,
retried, or `unknown` for reconciliation), stop polling, stop the HTTP server. A delivery is
never left `claimed` or `sending` by a graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import uvicorn

from channels.base import AccountCheck, Channel, Credentials, ErrorKind, Receipt, SendError
from publisher.alerts import alert_loop
from publisher.archive_schedule import archive_loop
from publisher.delivery.worker import WorkerConfig
from publisher.domain import ChannelAccount
from publisher.fetch import Fetcher
from publisher.ingest.poller import Poller
from publisher.metrics import Metrics
from publisher.runtime import Runtime, default_worker_id
from publisher.server import make_service_app

log = logging.getLogger("publisher.run")


class MeasuredChannel(Channel):
    """A channel whose sends are timed into the metrics; everything else is the channel's."""

    def __init__(self, inner: Channel, metrics: Metrics) -> None:
        super().__init__(inner.http, inner.base_url)
        self.inner = inner
        self.metrics = metrics
        self.platform = inner.platform  # type: ignore[misc]
        self.display_name = inner.display_name  # type: ignore[misc]
        self.can_read_back = inner.can_read_back  # type: ignore[misc]
        self.withdraw_mode = inner.withdraw_mode  # type: ignore[misc]

    def adapt(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.adapt(*args, **kwargs)

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return self.inner.match_hash(payload)

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        started = time.perf_counter()
        outcome = "sent"
        try:
            return await self.inner.send(account, credentials, payload)
        except SendError as error:
            outcome = error.kind.value
            if error.kind is ErrorKind.RATE_LIMITED and error.retry_after is not None:
                self.metrics.rate_limit_wait.labels(self.platform.value).observe(error.retry_after)
            raise
        finally:
            self.metrics.send_latency.labels(self.platform.value, outcome).observe(
                time.perf_counter() - started
            )

    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        return await self.inner.find_published(account, credentials, body_hash, since)

    async def withdraw(
        self, account: ChannelAccount, credentials: Credentials, remote_id: str, *, notice: str
    ) -> Receipt:
        return await self.inner.withdraw(account, credentials, remote_id, notice=notice)

    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        return await self.inner.check(account, credentials)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class JsonFormatter(logging.Formatter):
    """One JSON object per line (messages are already scrubbed by the redacting filter)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(json_lines: bool, level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the rest


async def poll_and_route(runtime: Runtime, stop: asyncio.Event, tick_s: float) -> None:
    """Every tick: poll the due sources, then route whatever is stored and not yet routed."""
    async with Fetcher() as fetcher:
        await _poll_loop(runtime, Poller(runtime.ingest_store(), fetcher), stop, tick_s)


async def _poll_loop(runtime: Runtime, poller: Poller, stop: asyncio.Event, tick_s: float) -> None:
    while not stop.is_set():
        try:
            report = await poller.run_cycle(runtime.repository.list_sources(), now=runtime.clock())
            if report.outcomes:
                log.info("poll cycle: %s in %.1f s", report.summary(), report.seconds)
            posts, deliveries = runtime.route_pending()
            if posts:
                log.info("routed: %d post(s), %d delivery(ies)", posts, deliveries)
        except Exception:  # one bad cycle must not stop the service; the next tick retries
            log.exception("poll/route cycle failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick_s)


async def run_service(
    runtime: Runtime,
    *,
    host: str,
    port: int,
    workers: int,
    poll_tick_s: float,
    stop: asyncio.Event | None = None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = Metrics(runtime.engine, runtime.clock)
    runtime.channels = {key: MeasuredChannel(c, metrics) for key, c in runtime.channels.items()}
    app = make_service_app(
        runtime.engine,
        metrics,
        runtime.intake_app(),
        runtime.clock,
        viber=runtime.viber_webhook_app(),
    )
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    owner = default_worker_id()
    delivery = [
        runtime.worker(WorkerConfig(owner=f"{owner}-{index}")).run(stop=stop)
        for index in range(workers)
    ]

    async def stop_http() -> None:
        await stop.wait()
        server.should_exit = True

    log.info(
        "publisher run: http://%s:%d (intake /intake, /healthz, /metrics), %d worker(s)",
        host,
        port,
        workers,
    )
    alerts = alert_loop(runtime.engine, runtime.config.notify, runtime.http, runtime.clock, stop)
    archiver = archive_loop(runtime.engine, runtime.service.schedule.archive, runtime.clock, stop)
    results = await asyncio.gather(
        server.serve(),
        stop_http(),
        poll_and_route(runtime, stop, poll_tick_s),
        alerts,
        archiver,
        *delivery,
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            log.error("a part of the service ended with an error: %r", result)
    log.info("publisher run: stopped cleanly")
