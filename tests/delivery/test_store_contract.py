"""One contract, two stores: the in-memory delivery store behaves like the SQL one
(SQLite and PostgreSQL). The worker runs unchanged over each."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from delivery_fakes import T0, Faults, Ledger, LedgerChannel, add_posts, seed_world

from channels.base import Credentials
from publisher.delivery.jobs import NewDelivery
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import ChannelAccount, DeliveryState, Pause, PauseScope, Platform
from publisher.store.delivery_memory import MemoryDeliveryStore


class Harness:
    def __init__(self, store, accounts, enqueue, pause):
        self.store = store
        self.accounts = accounts
        self.enqueue = enqueue
        self.pause = pause


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request, tmp_path):
    if request.param == "memory":
        accounts = {
            f"U{i:04d}.facebook": ChannelAccount(
                f"U{i:04d}.facebook", f"U{i:04d}", Platform.FACEBOOK, "x"
            )
            for i in range(2)
        }
        store = MemoryDeliveryStore({f"U{i:04d}": f"/CP/U{i:04d}/" for i in range(2)})
        counter = {"n": 0}

        def enqueue(expires_in=None):
            counter["n"] += 1
            n = counter["n"]
            store.enqueue(
                [
                    NewDelivery(
                        n * 10 + i,
                        n,
                        a.unit_code,
                        a.id,
                        "facebook",
                        T0,
                        expires_at=(T0 + expires_in) if expires_in else None,
                        payload={"message": f"article {n} for {a.id}"},
                    )
                    for i, a in enumerate(accounts.values())
                ],
                T0,
            )

        return Harness(store, accounts, enqueue, store.add_pause)
    engine = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    world = seed_world(engine, units=2)

    def pause(p: Pause):
        from publisher.store.delivery_sql import SqlPostStore

        with world.store.write() as conn:
            SqlPostStore(world.store).add_pause(conn, p)

    return Harness(
        world.store,
        world.accounts,
        lambda expires_in=None: add_posts(world, expires_in=expires_in),
        pause,
    )


def worker(h, channel, now=T0, owner="w"):
    return Worker(
        h.store,
        {"facebook": channel},
        h.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner=owner, request_timeout_s=5, lease_margin_s=5),
        clock=lambda: now,
        rng=random.Random(3),
    )


async def test_send_once_and_reply_lost_is_found(harness, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    harness.enqueue()
    channel = LedgerChannel(ledger, Faults(["reply_lost"]))
    stats = await worker(harness, channel).run(until_idle=True)
    assert stats.outcomes == {"unknown": 1, "sent": 1}
    assert ledger.duplicates() == 0
    assert len(ledger.entries()) == 2
    assert harness.store.is_idle(T0)


async def test_retry_before_send_and_bounded_by_expiry(harness, tmp_path):
    harness.enqueue(expires_in=timedelta(seconds=40))
    channel = LedgerChannel(Ledger(tmp_path / "l.db"), Faults(["before_send"] * 50))
    now = T0
    for _ in range(6):
        await worker(harness, channel, now).run(until_idle=True)
        now += timedelta(seconds=20)
    assert channel.calls >= 2
    assert harness.store.claim("x", now, 10, 5) == []
    assert harness.store.is_idle(now)


def test_fencing_lease_and_sweep(harness):
    harness.enqueue()
    store = harness.store
    first = store.claim("a", T0, 1, 10)
    assert len(first) == 1
    assert len(store.claim("b", T0, 10, 10)) == 1  # the other one only
    later = T0 + timedelta(seconds=11)
    assert store.sweep(later).reclaimed == 2
    again = store.claim("c", later, 10, 10)
    assert len(again) == 2
    assert first[0].id in {j.id for j in again}
    stale = first[0]
    assert not store.mark_sending(stale, "h", {"m": 1}, later, 10)
    fresh = next(j for j in again if j.id == stale.id)
    assert store.mark_sending(fresh, "h", {"m": 1}, later, 10)
    assert store.sweep(later + timedelta(seconds=11)).unknown == 1
    [recon] = store.claim_unknown("r", later + timedelta(seconds=12), 10, 10)
    assert recon.attempt == fresh.attempt + 1
    assert store.resolve(recon, DeliveryState.NEEDS_REVIEW, later, note="check")
    assert not store.resolve(recon, DeliveryState.PENDING, later)


def test_pauses_keep_their_place(harness):
    harness.enqueue()
    harness.pause(Pause(PauseScope.SUBTREE, "U0000", "why", "admin", T0))
    jobs = harness.store.claim("a", T0, 10, 10)
    assert [j.unit_code for j in jobs] == ["U0001"]
    harness.pause(Pause(PauseScope.ALL, "", "stop", "admin", T0, until=T0 + timedelta(minutes=5)))
    harness.enqueue()
    assert harness.store.claim("a", T0, 10, 10) == []
    assert len(harness.store.claim("a", T0 + timedelta(minutes=6), 10, 10)) == 1


def test_rate_limit_slots_and_holds(harness):
    store = harness.store
    gaps = {"account:A": 60.0, "platform:facebook": 1.0}
    assert store.reserve(gaps, T0) is None
    assert store.reserve(gaps, T0 + timedelta(seconds=2)) == T0 + timedelta(seconds=60)
    assert store.reserve(gaps, T0 + timedelta(seconds=60)) is None
    harness.enqueue()
    account = next(iter(sorted(harness.accounts)))
    store.hold(f"account:{account}", T0 + timedelta(seconds=300))
    assert [j.account_id for j in store.claim("a", T0, 10, 10)] != [account]
