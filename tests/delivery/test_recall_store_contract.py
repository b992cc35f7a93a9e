"""Recall: one contract, three stores (memory, SQLite, PostgreSQL). A recall stops what has
not gone out, takes back what has — exactly once — and waits for deliveries whose outcome is
not known yet. The worker runs unchanged over each store."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from delivery_fakes import (
    T0,
    DeletingLedgerChannel,
    EditingLedgerChannel,
    Faults,
    Ledger,
    LedgerChannel,
    add_posts,
    seed_world,
)

from channels.base import Channel, Credentials, Receipt
from publisher.delivery.jobs import NewDelivery
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.withdraw import DEFAULT_NOTICE, WithdrawOutcome
from publisher.delivery.worker import Outcome, Worker, WorkerConfig
from publisher.domain import (
    AccountStatus,
    ChannelAccount,
    DeliveryState,
    Platform,
    Recall,
    RecallScope,
    WithdrawalState,
)
from publisher.store.delivery_memory import MemoryDeliveryStore
from publisher.store.recall_memory import MemoryRecallStore
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import ChannelAccountRow, WithdrawalRow

W = WithdrawalRow.__table__
ACCOUNT = ChannelAccountRow.__table__


@dataclass
class Harness:
    store: Any  # the delivery store
    recalls: Any  # the recall store
    account: Callable[[str], ChannelAccount | None]
    enqueue: Callable[[], list[tuple[int, int]]]  # → (post_id, delivery_id) per delivery
    withdrawal_state: Callable[[int], WithdrawalState | None]
    delivery_state: Callable[[int], DeliveryState]
    account_status: Callable[[str], AccountStatus]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def h(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        accounts = {
            f"U{i:04d}.facebook": ChannelAccount(
                f"U{i:04d}.facebook", f"U{i:04d}", Platform.FACEBOOK, "x"
            )
            for i in range(2)
        }
        store = MemoryDeliveryStore()
        recalls = MemoryRecallStore(store)
        counter = {"n": 0}

        def enqueue() -> list[tuple[int, int]]:
            counter["n"] += 1
            n = counter["n"]
            news = [
                NewDelivery(
                    n * 10 + i, n, a.unit_code, a.id, "facebook", T0, payload={"m": f"{n}{a.id}"}
                )
                for i, a in enumerate(accounts.values())
            ]
            store.enqueue(news, T0)
            return [(r.new.post_id, r.id) for r in store.rows.values() if r.new.article_id == n]

        def account(account_id: str) -> ChannelAccount | None:
            found = accounts.get(account_id)
            status = store.account_status.get(account_id, AccountStatus.ACTIVE)
            return None if found is None else ChannelAccount(**{**_fields(found), "status": status})

        return Harness(
            store,
            recalls,
            account,
            enqueue,
            recalls.withdrawal_state,
            store.state_of,
            lambda a: store.account_status.get(a, AccountStatus.ACTIVE),
        )
    engine = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    world = seed_world(engine, units=2)
    store = world.store

    def enqueue_sql() -> list[tuple[int, int]]:
        news = add_posts(world)
        from publisher.store.delivery_sql import D as DT

        with engine.connect() as conn:
            return [
                (post_id, delivery_id)
                for post_id, delivery_id in conn.execute(
                    sa.select(DT.c.post_id, DT.c.id)
                    .where(DT.c.post_id.in_([d.post_id for d in news]))
                    .order_by(DT.c.id)
                )
            ]

    def withdrawal_state(delivery_id: int) -> WithdrawalState | None:
        with engine.connect() as conn:
            value = conn.execute(
                sa.select(W.c.state).where(W.c.delivery_id == delivery_id)
            ).scalar_one_or_none()
        return None if value is None else WithdrawalState(value)

    def delivery_state(delivery_id: int) -> DeliveryState:
        from publisher.store.delivery_sql import D as DT

        with engine.connect() as conn:
            return DeliveryState(
                conn.execute(sa.select(DT.c.state).where(DT.c.id == delivery_id)).scalar_one()
            )

    def account_status(account_id: str) -> AccountStatus:
        with engine.connect() as conn:
            return AccountStatus(
                conn.execute(
                    sa.select(ACCOUNT.c.status).where(ACCOUNT.c.id == account_id)
                ).scalar_one()
            )

    return Harness(
        store,
        SqlRecallStore(store),
        world.repo.get_account,
        enqueue_sql,
        withdrawal_state,
        delivery_state,
        account_status,
    )


def _fields(account: ChannelAccount) -> dict[str, Any]:
    return {name: getattr(account, name) for name in account.__slots__}  # type: ignore[attr-defined]


def recall(h: Harness, post_ids: list[int], *, at: datetime = T0, notice: str = "") -> Any:
    request = Recall(RecallScope.ARTICLE, 1, "sent in error", "duyet", at, notice=notice)
    return h.recalls.recall(request, post_ids, at)


def worker(h: Harness, channel: Channel, now: datetime = T0, owner: str = "w") -> Worker:
    return Worker(
        h.store,
        {"facebook": channel},
        h.account,
        lambda a: Credentials("t"),
        WorkerConfig(owner=owner, request_timeout_s=5, lease_margin_s=5),
        clock=lambda: now,
        rng=random.Random(3),
        withdrawals=h.recalls,
    )


async def test_sent_posts_are_withdrawn_once_and_nothing_is_sent_again(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    assert len(ledger.entries()) == 2
    created = recall(h, [p for p, _ in pairs], notice="")
    assert (created.cancelled, created.withdrawals, created.to_withdraw) == (0, 2, 2)
    stats = await worker(h, channel, T0 + timedelta(seconds=1)).run(until_idle=True)
    assert stats.outcomes == {WithdrawOutcome.WITHDRAWN.value: 2}
    assert len(ledger.removed()) == 2
    assert set(ledger.removed().values()) == {"deleted"}
    assert ledger.withdraw_calls() == 2
    assert channel.notices == [DEFAULT_NOTICE, DEFAULT_NOTICE]
    for _, delivery_id in pairs:
        assert h.withdrawal_state(delivery_id) is WithdrawalState.WITHDRAWN
        assert h.delivery_state(delivery_id) is DeliveryState.SENT
    # Asking again makes nothing new: one withdrawal per delivery.
    again = recall(h, [p for p, _ in pairs])
    assert (again.withdrawals, again.to_withdraw) == (0, 0)
    await worker(h, channel, T0 + timedelta(seconds=2)).run(until_idle=True)
    assert ledger.withdraw_calls() == 2
    assert len(ledger.entries()) == 2


async def test_not_yet_sent_is_cancelled_and_never_sent(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    pairs = h.enqueue()
    created = recall(h, [p for p, _ in pairs])
    assert (created.cancelled, created.withdrawals, created.to_withdraw) == (2, 2, 0)
    stats = await worker(h, DeletingLedgerChannel(ledger)).run(until_idle=True)
    assert stats.claimed == 0
    assert ledger.entries() == []
    for _, delivery_id in pairs:
        assert h.delivery_state(delivery_id) is DeliveryState.CANCELLED
        assert h.withdrawal_state(delivery_id) is WithdrawalState.NOT_SENT


async def test_a_delivery_claimed_at_that_moment_is_fenced_out(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    pairs = h.enqueue()
    jobs = h.store.claim("w", T0, 10, 60)
    assert len(jobs) == 2
    created = recall(h, [p for p, _ in pairs])
    assert created.cancelled == 2
    w = worker(h, channel)
    assert [await w.process(job) for job in jobs] == [Outcome.LOST_LEASE] * 2
    assert ledger.entries() == []
    await w.run(until_idle=True)
    assert {h.withdrawal_state(d) for _, d in pairs} == {WithdrawalState.NOT_SENT}
    assert {h.delivery_state(d) for _, d in pairs} == {DeliveryState.CANCELLED}


async def test_a_send_in_flight_is_withdrawn_once_its_outcome_is_known(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    pairs = h.enqueue()
    jobs = h.store.claim("w", T0, 10, 60)
    assert all(h.store.mark_sending(j, "h", j.payload, T0, 60) for j in jobs)
    created = recall(h, [p for p, _ in pairs])
    assert (created.cancelled, created.to_withdraw) == (0, 2)
    # The send's outcome is not known: nothing to withdraw yet.
    assert h.recalls.claim_withdrawals("x", T0, 10, 60) == []
    sent, failed = jobs
    # The first call went out; the second failed before reaching the platform.
    remote = ledger.accept(sent.account_id, "h", "{}")
    assert h.store.mark_sent(sent, Receipt(remote, url=f"https://fake/{remote}"), T0)
    assert h.store.mark_retry(failed, T0, "before_send", "refused", T0)
    # The retry is due, but the recall stops it: never claimed.
    assert h.store.claim("w2", T0 + timedelta(hours=1), 10, 60) == []
    stats = await worker(h, channel).run(until_idle=True)
    assert stats.outcomes == {"withdrawn": 1, "not_sent": 1}
    assert h.withdrawal_state(sent.id) is WithdrawalState.WITHDRAWN
    assert h.withdrawal_state(failed.id) is WithdrawalState.NOT_SENT
    assert h.delivery_state(failed.id) is DeliveryState.CANCELLED
    assert ledger.removed() == {remote: "deleted"}


async def test_unknown_waits_for_reconcile_then_acts(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger, Faults(["reply_lost", "before_send"]))
    pairs = h.enqueue()
    jobs = h.store.claim("w", T0, 10, 60)
    w = worker(h, channel)
    outcomes = [await w.process(job) for job in jobs]
    assert outcomes == [Outcome.UNKNOWN, Outcome.RETRY]
    # The recall comes while one is unknown and the other waits for its retry.
    created = recall(h, [p for p, _ in pairs])
    assert (created.cancelled, created.to_withdraw) == (1, 1)
    unknown_id = jobs[0].id
    assert h.delivery_state(unknown_id) is DeliveryState.UNKNOWN
    assert h.withdrawal_state(jobs[1].id) is WithdrawalState.NOT_SENT
    assert h.recalls.claim_withdrawals("x", T0, 10, 60) == []  # waits for the outcome
    # Reconcile finds the post (the reply was lost, the platform has it): then withdraw it.
    await reconcile_once(
        h.store, {"facebook": channel}, h.account, lambda a: Credentials("t"), owner="r", now=T0
    )
    assert h.delivery_state(unknown_id) is DeliveryState.SENT
    later = T0 + timedelta(minutes=5)
    await worker(h, channel, later).run(until_idle=True)
    assert h.withdrawal_state(unknown_id) is WithdrawalState.WITHDRAWN
    assert len(ledger.removed()) == 1
    assert len(ledger.entries()) == 1  # the one that failed before send never went out


async def test_unknown_proven_absent_is_cancelled_not_sent(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    pairs = h.enqueue()
    jobs = h.store.claim("w", T0, 10, 60)
    for job in jobs:  # `sending` committed, then the worker died before the call
        assert h.store.mark_sending(job, f"hash{job.id}", job.payload, T0, 60)
    recall(h, [p for p, _ in pairs])
    later = T0 + timedelta(seconds=120)
    assert h.store.sweep(later).unknown == 2
    resolved = await reconcile_once(
        h.store, {"facebook": channel}, h.account, lambda a: Credentials("t"), owner="r", now=later
    )
    assert resolved == {"pending": 2}
    stats = await worker(h, channel, later).run(until_idle=True)
    assert stats.claimed == 0  # proven absent, but recalled: never sent
    assert stats.outcomes == {"not_sent": 2}
    assert ledger.entries() == []
    assert {h.delivery_state(d) for _, d in pairs} == {DeliveryState.CANCELLED}


async def test_manual_and_permanent_need_a_person_with_the_url(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    pairs = h.enqueue()
    await worker(h, LedgerChannel(ledger)).run(until_idle=True)
    recall(h, [pairs[0][0]])
    stats = await worker(h, LedgerChannel(ledger)).run(until_idle=True)  # withdraw_mode MANUAL
    assert stats.outcomes == {"needs_manual_removal": 1}
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.NEEDS_MANUAL_REMOVAL
    refusing = DeletingLedgerChannel(ledger, withdraw_faults=Faults(["permanent"]))
    recall(h, [pairs[1][0]])
    stats = await worker(h, refusing).run(until_idle=True)
    assert stats.outcomes == {"needs_manual_removal": 1}
    assert h.withdrawal_state(pairs[1][1]) is WithdrawalState.NEEDS_MANUAL_REMOVAL
    assert ledger.removed() == {}


async def test_rate_limit_waits_what_the_platform_said(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    faults = Faults(["rate_limited"], retry_after_s=120)
    channel = EditingLedgerChannel(ledger, withdraw_faults=faults)
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    recall(h, [pairs[0][0]], notice="Đính chính: tin đã thu hồi")
    stats = await worker(h, channel).run(until_idle=True)
    assert stats.outcomes == {"withdraw_retry": 1}
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.PENDING
    assert h.recalls.claim_withdrawals("x", T0 + timedelta(seconds=100), 10, 60) == []
    await worker(h, channel, T0 + timedelta(seconds=200)).run(until_idle=True)
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.WITHDRAWN
    assert list(ledger.removed().values()) == ["edited"]
    assert channel.notices == ["Đính chính: tin đã thu hồi"]


async def test_unknown_outcome_is_retried_safely_because_withdraw_is_idempotent(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger, withdraw_faults=Faults(["reply_lost"]))
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    recall(h, [pairs[0][0]])
    stats = await worker(h, channel).run(until_idle=True)
    assert stats.outcomes == {"withdraw_retry": 1}
    assert len(ledger.removed()) == 1  # it was removed; the reply was lost
    await worker(h, channel, T0 + timedelta(hours=2)).run(until_idle=True)
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.WITHDRAWN
    assert ledger.withdraw_calls() == 2
    assert len(ledger.removed()) == 1


async def test_auth_stops_the_account_and_the_withdrawal_waits(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger, withdraw_faults=Faults(["auth"]))
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    recall(h, [pairs[0][0]])
    stats = await worker(h, channel).run(until_idle=True)
    # Stopped; looked at again at once, the account is stopped: given back for later.
    assert stats.outcomes == {"withdraw_account_stopped": 1, "withdraw_held": 1}
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.PENDING
    accounts = {h.account(a) for a in ("U0000.facebook", "U0001.facebook")}
    stopped = [a for a in accounts if a is not None and a.status is AccountStatus.AUTH_FAILED]
    assert len(stopped) == 1
    # While the account is stopped the withdrawal is looked at now and then, never called.
    stats = await worker(h, channel, T0 + timedelta(seconds=1)).run(until_idle=True)
    assert stats.outcomes == {}
    stats = await worker(h, channel, T0 + timedelta(seconds=301)).run(until_idle=True)
    assert stats.outcomes == {"withdraw_held": 1}
    assert channel.withdraw_attempts == 1


async def test_gives_up_after_bounded_retries(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger, withdraw_faults=Faults(["before_send"] * 20))
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    recall(h, [pairs[0][0]])
    now = T0
    for _ in range(10):
        now += timedelta(hours=2)
        await worker(h, channel, now).run(until_idle=True)
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.FAILED
    assert channel.withdraw_attempts == 7  # the first try and 6 retries
    assert ledger.withdraw_calls() == 0


async def test_lease_expiry_hands_over_and_fences_the_old_worker(h, tmp_path):
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    pairs = h.enqueue()
    await worker(h, channel).run(until_idle=True)
    recall(h, [pairs[0][0]])
    [old] = h.recalls.claim_withdrawals("old", T0, 10, 60)
    assert h.recalls.mark_withdrawing(old, T0, 60)
    # The old worker freezes; its lease runs out; the sweeper gives the withdrawal back.
    later = T0 + timedelta(seconds=61)
    assert h.recalls.sweep_withdrawals(later) == 1
    [new] = h.recalls.claim_withdrawals("new", later, 10, 60)
    assert new.attempt == old.attempt + 1
    await worker(h, channel, later, owner="new").withdrawer.process(new)  # type: ignore[union-attr]
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.WITHDRAWN
    # The old worker wakes and tries to record its result: refused, state unchanged.
    assert not h.recalls.mark_withdrawn(old, Receipt(old.remote_id or ""), "deleted", later)
    assert not h.recalls.mark_manual(old, "manual", "x", later)
    assert not h.recalls.retry_withdrawal(old, later, "before_send", "x", later)
    assert h.withdrawal_state(pairs[0][1]) is WithdrawalState.WITHDRAWN
    # A claim whose lease ran out may not start the call.
    pairs2 = h.enqueue()
    await worker(h, channel, later).run(until_idle=True)
    recall(h, [pairs2[0][0]], at=later)
    [job] = h.recalls.claim_withdrawals("slow", later, 10, 60)
    assert not h.recalls.mark_withdrawing(job, later + timedelta(seconds=61), 60)
