"""`publisher run`'s archiver: every `[archive] every_hours` of schedule.toml, move finished
deliveries older than `older_than_days` to the archive tables (publisher/store/archive.py),
at most `max_batches` batches per round so workers never wait long for the write lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from publisher.settings.workflow import ArchiveSchedule
from publisher.store.archive import archive_finished

log = logging.getLogger(__name__)


def archive_round(
    engine: sa.Engine, settings: ArchiveSchedule, now: datetime
) -> tuple[int, int, bool]:
    """One round: (deliveries moved, attempts moved, more left)."""
    result = archive_finished(
        engine,
        now,
        timedelta(days=settings.older_than_days),
        batch=settings.batch,
        max_batches=settings.max_batches,
    )
    more = result.batches == settings.max_batches and result.deliveries > 0
    return result.deliveries, result.attempts, more


async def archive_loop(
    engine: sa.Engine,
    settings: ArchiveSchedule,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
) -> None:
    if settings.every_hours <= 0:
        return
    while not stop.is_set():
        more = True
        while more and not stop.is_set():
            try:
                moved, attempts, more = await asyncio.to_thread(
                    archive_round, engine, settings, clock()
                )
            except Exception:  # one bad round must not stop the service; the next one retries
                log.exception("archive round failed")
                break
            if moved:
                log.info("archived %d delivery(ies), %d attempt(s)", moved, attempts)
            await asyncio.sleep(1.0)  # let the workers in between rounds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.every_hours * 3600)
