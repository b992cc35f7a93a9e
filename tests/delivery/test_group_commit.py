"""Group commit: one transaction for a launched group's `sending` marks, one for outcomes that
end close together, every row still fenced on its own (memory, SQLite and PostgreSQL stores).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from delivery_fakes import T0, Ledger, LedgerChannel
from test_store_contract import Harness, harness  # noqa: F401  (the fixture: memory, SQLite, PG)

from channels.base import Adapted, Channel, Credentials, Receipt, Template
from publisher.delivery import faults
from publisher.delivery.jobs import Finish, Job, Sending
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Article, ChannelAccount, DeliveryState, Platform, Unit
from publisher.store.delivery_memory import MemoryDeliveryStore
from publisher.store.tables import DeliveryAttemptRow, DeliveryRow

D = DeliveryRow.__table__
ATTEMPT = DeliveryAttemptRow.__table__
LEASE_S = 10.0  # request timeout + margin of the workers below


def worker(h: Harness, channel: Channel, fault: Callable[[str], None] = faults.no_fault, **config):
    return Worker(
        h.store,
        {"facebook": channel},
        h.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=5, lease_margin_s=5, **config),
        clock=lambda: T0,
        fault=fault,
        rng=random.Random(3),
    )


def rows(h: Harness) -> dict[int, tuple[str, str, str | None]]:
    """id → (state, account, lease owner)."""
    store = h.store
    if isinstance(store, MemoryDeliveryStore):
        return {r.id: (r.state.value, r.new.account_id, r.lease_owner) for r in store.rows.values()}
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(D.c.id, D.c.state, D.c.account_id, D.c.lease_owner))
        return {i: (state, account, owner) for i, state, account, owner in found}


def attempts(h: Harness) -> dict[tuple[int, int], str]:
    store = h.store
    if isinstance(store, MemoryDeliveryStore):
        return dict(store.attempts)
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(ATTEMPT.c.delivery_id, ATTEMPT.c.attempt, ATTEMPT.c.outcome))
        return {(d, n): outcome for d, n, outcome in found}


def change_row(h: Harness, delivery_id: int, **values: Any) -> None:
    """What another actor commits meanwhile (a recall cancelling a claim, another owner)."""
    store = h.store
    if isinstance(store, MemoryDeliveryStore):
        row = store.rows[delivery_id]
        for name, value in values.items():
            setattr(row, name, DeliveryState(value) if name == "state" else value)
        return
    with store.engine.begin() as conn:
        conn.execute(sa.update(D).where(D.c.id == delivery_id).values(**values))


# --- the store's group writes ---------------------------------------------------------------


def test_group_writes_fence_each_row_and_leave_a_refused_one_untouched(harness):  # noqa: F811
    harness.enqueue()
    harness.enqueue()
    store = harness.store
    jobs = store.claim("w", T0, 10, LEASE_S)
    assert len(jobs) == 4
    first, second, third, fourth = jobs
    stale = replace(second, attempt=second.attempt - 1)  # an earlier lease on that row
    marked = store.mark_sending_many(
        [Sending(j, f"hash{j.id}", j.payload or {}) for j in (first, stale, third)], T0, LEASE_S
    )
    assert marked == [True, False, True]
    # A lease that is over is refused as well, row by row.
    assert store.mark_sending_many(
        [Sending(fourth, "h", fourth.payload or {})], T0 + timedelta(seconds=LEASE_S + 1), LEASE_S
    ) == [False]
    states = rows(harness)
    assert [states[j.id][0] for j in jobs] == ["sending", "claimed", "sending", "claimed"]
    assert set(attempts(harness)) == {(first.id, first.attempt), (third.id, third.attempt)}

    receipt = Receipt("r1", url="https://fake/r1")
    finished = store.finish_many(
        [
            Finish(first, DeliveryState.SENT, "sent", T0, receipt),
            Finish(second, DeliveryState.SENT, "sent", T0, receipt),  # still `claimed`
            Finish(
                third,
                DeliveryState.RETRY_WAIT,
                "before_send",
                T0,
                error="refused",
                retry_at=T0 + timedelta(seconds=30),
            ),
        ]
    )
    assert finished == [True, False, True]
    states = rows(harness)
    assert [states[j.id][0] for j in jobs] == ["sent", "claimed", "retry_wait", "claimed"]
    assert attempts(harness) == {
        (first.id, first.attempt): "sent",
        (third.id, third.attempt): "before_send",
    }
    # The refused row was left exactly as it was: its own worker can still go on with it.
    assert store.mark_sending(second, "h", second.payload or {}, T0, LEASE_S)
    assert store.finish_many([]) == [] == store.mark_sending_many([], T0, LEASE_S)


def test_a_finish_must_say_what_it_records():
    job = Job(
        1, 1, 1, "U", "U.facebook", "facebook", DeliveryState.SENDING, 1, "w", T0, {}, "h", None, T0
    )
    with pytest.raises(ValueError, match="receipt"):
        Finish(job, DeliveryState.SENT, "sent", T0)
    with pytest.raises(ValueError, match="try again"):
        Finish(job, DeliveryState.RETRY_WAIT, "before_send", T0)
    with pytest.raises(ValueError, match="cannot end"):
        Finish(job, DeliveryState.PENDING, "sent", T0)


# --- the worker's groups -----------------------------------------------------------------------


async def test_a_row_fenced_out_of_the_group_is_not_sent_and_the_others_go(harness, tmp_path):  # noqa: F811
    harness.enqueue()
    harness.enqueue()
    ids = sorted(rows(harness))
    cancelled, taken = ids[1], ids[2]
    seen = {"claims": 0}

    def between_claim_and_sending(point: str) -> None:
        # Before the group's `sending` commit: a recall cancels one claimed delivery, and
        # another worker has taken over a second one (the sweeper handed it on).
        if point == faults.AFTER_CLAIM and seen["claims"] == 0:
            change_row(harness, cancelled, state="cancelled")
            change_row(harness, taken, lease_owner="other")
        seen["claims"] += point == faults.AFTER_CLAIM

    groups: list[int] = []
    mark = harness.store.mark_sending_many

    def spy(sends, now, lease_s):
        groups.append(len(sends))
        return mark(sends, now, lease_s)

    harness.store.mark_sending_many = spy
    ledger = Ledger(tmp_path / "l.db")
    channel = LedgerChannel(ledger)
    w = worker(harness, channel, between_claim_and_sending, batch=10, concurrency=10)
    stats = await w.run(stop=_stop_when(lambda: w.stats.claimed >= 4 and w._calls_in_flight == 0))
    assert groups == [4]  # one commit for the whole group, two rows refused in it
    assert stats.outcomes == {"sent": 2, "lost_lease": 2}
    states = rows(harness)
    assert states[cancelled][0] == "cancelled"
    assert (states[taken][0], states[taken][2]) == ("claimed", "other")
    assert channel.calls == 2
    published = {account for account, _ in ledger.entries()}
    assert published == {states[i][1] for i in ids if i not in (cancelled, taken)}
    assert {d for d, _ in attempts(harness)} == set(ids) - {cancelled, taken}


def _stop_when(done: Callable[[], bool]) -> asyncio.Event:
    """An event the worker loop checks each round, set once `done()` holds."""

    class Until(asyncio.Event):
        def is_set(self) -> bool:
            return done()

    return Until()


class Crash(BaseException):
    """The worker process died here."""


async def test_crash_between_the_group_sending_commit_and_the_calls_is_reconciled(
    harness,  # noqa: F811
    tmp_path,
):
    harness.enqueue()
    harness.enqueue()
    ledger = Ledger(tmp_path / "l.db")
    channel = LedgerChannel(ledger)

    def die_after_sending(point: str) -> None:
        if point == faults.AFTER_SENDING:
            raise Crash(point)

    with pytest.raises(Crash):
        await worker(harness, channel, die_after_sending, batch=10, concurrency=10).run()
    assert [state for state, _, _ in rows(harness).values()] == ["sending"] * 4
    assert channel.calls == 0
    # Recovery: the lease runs out → unknown → read back: absent → pending → sent once.
    later = T0 + timedelta(seconds=LEASE_S + 1)
    assert harness.store.sweep(later).unknown == 4
    resolved = await reconcile_once(
        harness.store,
        {"facebook": channel},
        harness.accounts.get,
        lambda a: Credentials("t"),
        owner="r",
        now=later,
    )
    assert resolved == {"pending": 4}
    rescuer = Worker(
        harness.store,
        {"facebook": channel},
        harness.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="rescuer", request_timeout_s=5, lease_margin_s=5),
        clock=lambda: later,
    )
    stats = await rescuer.run(until_idle=True)
    assert stats.outcomes == {"sent": 4}
    assert len(ledger.entries()) == 4
    assert ledger.duplicates() == 0


class SplitChannel(Channel):
    """One account answers at once; the other takes `slow_s`, and while it is under way it
    looks at what the store says of the fast one's delivery."""

    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "split"

    def __init__(self, fast: str, slow_s: float, look: Callable[[], str]) -> None:
        super().__init__(http=None, base_url="fake://")  # type: ignore[arg-type]
        self.fast, self.slow_s, self.look = fast, slow_s, look
        self.seen: str | None = None

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        if account.id != self.fast:
            await asyncio.sleep(self.slow_s)
            self.seen = self.look()
        return Receipt(remote_id=f"r-{account.id}")


@pytest.mark.parametrize(
    ("flush_s", "flush_rows", "seen"),
    [
        (0.02, 50, "sent"),  # the time bound: written while the slow call is still out
        (60.0, 1, "sent"),  # the row bound
        (60.0, 50, "sending"),  # neither: it waits for the in-flight set to drain
    ],
)
async def test_outcomes_are_written_within_the_flush_bounds(
    harness,  # noqa: F811
    flush_s,
    flush_rows,
    seen,
):
    harness.enqueue()
    fast, _ = sorted(harness.accounts)

    def fast_state() -> str:
        return next(state for state, account, _ in rows(harness).values() if account == fast)

    channel = SplitChannel(fast, slow_s=0.5, look=fast_state)
    w = worker(
        harness,
        channel,
        batch=10,
        concurrency=10,
        outcome_flush_s=flush_s,
        outcome_flush_rows=flush_rows,
    )
    stats = await w.run(stop=_stop_when(lambda: w.stats.claimed >= 2 and w._calls_in_flight == 0))
    assert channel.seen == seen
    assert stats.outcomes == {"sent": 2}
    assert [state for state, _, _ in rows(harness).values()] == ["sent", "sent"]


class WaitingChannel(Channel):
    """Answers after its own waits: `kind` says how (see the test below)."""

    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "waiting"

    def __init__(self, kind: str) -> None:
        super().__init__(http=None, base_url="fake://")  # type: ignore[arg-type]
        self.kind = kind
        self.cancelled = 0

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        if self.kind == "own_timeout":
            # A deadline of its own, entered before its first wait and left after the last:
            # it must belong to the task the whole call runs in.
            async with asyncio.timeout(5):
                await asyncio.sleep(0.01)
                await asyncio.sleep(0)
        elif self.kind == "too_slow":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return Receipt(remote_id=f"r-{account.id}")


class FutureChannel(WaitingChannel):
    def send(self, account, credentials, payload):  # type: ignore[override]
        # An awaitable that is not a coroutine: a future answered a moment later.
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, Receipt("r-f"))
        return future


@pytest.mark.parametrize(
    ("make", "kind", "outcomes"),
    [
        (WaitingChannel, "own_timeout", {"sent": 2}),
        (WaitingChannel, "too_slow", {"unknown": 2}),
        (FutureChannel, "future", {"sent": 2}),
    ],
)
async def test_calls_that_wait_end_in_their_own_task_within_the_request_timeout(
    harness,  # noqa: F811
    make,
    kind,
    outcomes,
):
    harness.enqueue()
    channel = make(kind)
    w = Worker(
        harness.store,
        {"facebook": channel},
        harness.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=0.2, lease_margin_s=5),
        clock=lambda: T0,
    )
    stats = await w.run(stop=_stop_when(lambda: w.stats.claimed >= 2 and w._calls_in_flight == 0))
    assert stats.outcomes == outcomes
    if channel.kind == "too_slow":
        assert channel.cancelled == 2  # the timeout reached the call itself
        assert {state for state, _, _ in rows(harness).values()} == {"unknown"}


async def test_a_slow_group_preparation_does_not_count_against_the_calls(harness):  # noqa: F811
    """Getting a group ready (slots, payloads, credentials) can take longer than the lease
    margin on a busy machine: the stall check counts from the group's `sending` commit."""
    harness.enqueue()
    harness.enqueue()
    clock = {"now": T0}

    def slow_prepare(job: Job) -> Mapping[str, Any]:
        clock["now"] += timedelta(seconds=0.6)  # four of them: past the 1 s margin
        assert job.payload is not None
        return job.payload

    w = Worker(
        harness.store,
        {"facebook": WaitingChannel("instant")},
        harness.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=5, lease_margin_s=1, batch=10, concurrency=10),
        prepare=slow_prepare,
        clock=lambda: clock["now"],
    )
    stats = await w.run(stop=_stop_when(lambda: w.stats.claimed >= 4 and w._calls_in_flight == 0))
    assert stats.outcomes == {"sent": 4}


@pytest.mark.parametrize(
    ("late_s", "outcomes", "called"), [(2, {"sent": 2}, 2), (7, {"lost_lease": 2}, 0)]
)
async def test_a_call_starting_late_goes_only_with_a_fresh_lease(
    harness,  # noqa: F811
    tmp_path,
    late_s,
    outcomes,
    called,
):
    """Past the margin after the group's commit (late in a big group on a busy machine, or
    frozen), a call goes only if the lease (5 s timeout + 1 s margin) can be renewed."""
    harness.enqueue()
    clock = {"now": T0}
    seen = {"late": False}

    def late(point: str) -> None:
        if point == faults.AFTER_SENDING and not seen["late"]:
            seen["late"] = True
            clock["now"] += timedelta(seconds=late_s)

    channel = LedgerChannel(Ledger(tmp_path / "l.db"))
    w = Worker(
        harness.store,
        {"facebook": channel},
        harness.accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=5, lease_margin_s=1, batch=10, concurrency=10),
        clock=lambda: clock["now"],
        fault=late,
    )
    stats = await w.run(stop=_stop_when(lambda: w.stats.claimed >= 2 and w._calls_in_flight == 0))
    assert stats.outcomes == outcomes
    assert channel.calls == called
    expected = "sent" if called else "sending"  # not called: the sweeper's, then reconcile's
    assert [state for state, _, _ in rows(harness).values()] == [expected] * 2
