"""The worker's paths on SQLite and PostgreSQL: sent, retried, unknown, reconciled, stopped."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from delivery_fakes import (
    T0,
    BlindLedgerChannel,
    Faults,
    Ledger,
    LedgerChannel,
    add_posts,
    seed_world,
)

from channels.base import Credentials
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.worker import Outcome, Worker, WorkerConfig
from publisher.domain import AccountStatus, Platform
from publisher.store.tables import DeliveryRow, IncidentRow


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_worker(world, channel, clock, owner="w1", **config):
    channels = {channel.platform.value: channel}
    return Worker(
        world.store,
        channels,
        world.account,
        lambda account: Credentials("token"),
        WorkerConfig(owner=owner, request_timeout_s=5, lease_margin_s=5, **config),
        clock=clock,
        rng=random.Random(7),
    )


def states(engine: sa.Engine) -> dict[int, str]:
    table = DeliveryRow.__table__
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.id, table.c.state)).all())


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.db")


async def test_happy_path_sends_each_once_with_remote_id(db, ledger):
    world = seed_world(db, units=3)
    add_posts(world, articles=2)
    clock = Clock()
    worker = make_worker(world, LedgerChannel(ledger), clock)
    stats = await worker.run(until_idle=True)
    assert set(states(db).values()) == {"sent"}
    assert stats.outcomes == {"sent": 6}
    assert len(ledger.entries()) == 6
    assert ledger.duplicates() == 0
    table = DeliveryRow.__table__
    with db.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).where(table.c.remote_id.is_(None))).scalar()
            == 0
        )


async def test_reply_lost_is_resolved_by_read_back_without_resending(db, ledger):
    world = seed_world(db, units=2)
    add_posts(world)
    clock = Clock()
    channel = LedgerChannel(ledger, Faults(["reply_lost", "reply_lost"]))
    worker = make_worker(world, channel, clock)
    stats = await worker.run(until_idle=True)
    assert stats.outcomes == {"unknown": 2}
    assert set(states(db).values()) == {"sent"}
    assert channel.calls == 2  # never sent again
    assert ledger.duplicates() == 0


async def test_reply_lost_without_read_back_goes_to_a_person(db, ledger):
    world = seed_world(db, units=1, platforms=(Platform.VIBER,))
    add_posts(world)
    channel = BlindLedgerChannel(ledger, Faults(["reply_lost"]))
    worker = make_worker(world, channel, Clock())
    await worker.run(until_idle=True)
    assert list(states(db).values()) == ["needs_review"]
    assert channel.calls == 1


async def test_failure_before_send_is_retried_with_backoff(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world)
    clock = Clock()
    channel = LedgerChannel(ledger, Faults(["before_send"]))
    worker = make_worker(world, channel, clock)
    await worker.run(until_idle=True)
    assert list(states(db).values()) == ["retry_wait"]
    table = DeliveryRow.__table__
    with db.connect() as conn:
        due = conn.execute(sa.select(table.c.due_at)).scalar_one()
    assert T0 <= due <= T0 + timedelta(seconds=30)
    clock.now = due
    await worker.run(until_idle=True)
    assert list(states(db).values()) == ["sent"]
    assert channel.calls == 2


async def test_rate_limit_waits_at_least_what_the_platform_asked(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world)
    clock = Clock()
    channel = LedgerChannel(ledger, Faults(["rate_limited"], retry_after_s=120))
    worker = make_worker(world, channel, clock)
    await worker.run(until_idle=True)
    table = DeliveryRow.__table__
    with db.connect() as conn:
        due = conn.execute(sa.select(table.c.due_at)).scalar_one()
    assert due >= T0 + timedelta(seconds=120)
    clock.advance(119)
    await worker.run(until_idle=True)
    assert channel.calls == 1  # not before the wait
    clock.now = due
    await worker.run(until_idle=True)
    assert list(states(db).values()) == ["sent"]


async def test_auth_error_stops_the_whole_account_and_opens_an_incident(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world, articles=3)
    channel = LedgerChannel(ledger, Faults(["auth"]))
    worker = make_worker(world, channel, Clock(), batch=1, concurrency=1)
    await worker.run(until_idle=True)
    assert channel.calls == 1
    assert sorted(states(db).values()) == ["pending"] * 3
    assert world.repo.get_account("U0000.facebook").status is AccountStatus.AUTH_FAILED
    with db.connect() as conn:
        incidents = conn.execute(sa.select(IncidentRow.__table__.c.kind)).scalars().all()
    assert incidents == ["auth_failed"]


async def test_permanent_error_fails_without_retry(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world)
    channel = LedgerChannel(ledger, Faults(["permanent"]))
    await make_worker(world, channel, Clock()).run(until_idle=True)
    assert list(states(db).values()) == ["failed"]


async def test_expired_delivery_is_never_sent_late(db, ledger):
    world = seed_world(db, units=2)
    add_posts(world, expires_in=timedelta(minutes=10))
    clock = Clock()
    clock.advance(601)
    channel = LedgerChannel(ledger)
    await make_worker(world, channel, clock).run(until_idle=True)
    assert set(states(db).values()) == {"expired"}
    assert channel.calls == 0


async def test_stale_worker_writes_are_refused_after_the_sweeper_took_over(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world)
    clock = Clock()
    stale = world.store.claim("old", clock(), 10, lease_s=10)
    clock.advance(11)
    assert world.store.sweep(clock()).reclaimed == 1
    fresh = world.store.claim("new", clock(), 10, lease_s=10)
    assert [j.attempt for j in fresh] == [stale[0].attempt + 1]
    assert not world.store.mark_sending(stale[0], "h", {"m": 1}, clock(), 10)
    channel = LedgerChannel(ledger)
    worker = make_worker(world, channel, clock, owner="old")
    assert await worker.process(stale[0]) is Outcome.LOST_LEASE
    assert channel.calls == 0


async def test_expired_sending_becomes_unknown_then_is_found_by_reconcile(db, ledger):
    world = seed_world(db, units=1)
    add_posts(world)
    clock = Clock()
    [job] = world.store.claim("w", clock(), 1, lease_s=10)
    assert world.store.mark_sending(job, "h" * 64, {"m": 1}, clock(), 10)
    ledger.accept("U0000.facebook", "h" * 64, "{}")  # the platform got it; the worker died
    clock.advance(11)
    assert world.store.sweep(clock()).unknown == 1
    channel = LedgerChannel(ledger)
    got = await reconcile_once(
        world.store,
        {"facebook": channel},
        world.account,
        lambda a: Credentials("t"),
        owner="r",
        now=clock(),
    )
    assert got == {"sent": 1}
    assert channel.calls == 0


async def test_lease_still_valid_blocks_second_claim(db):
    world = seed_world(db, units=1)
    add_posts(world)
    first = world.store.claim("a", T0, 10, lease_s=30)
    second = world.store.claim("b", T0, 10, lease_s=30)
    assert len(first) == 1
    assert second == []
    assert world.store.sweep(T0 + timedelta(seconds=29)).reclaimed == 0
