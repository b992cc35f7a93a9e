"""A Hypothesis state machine over the real SQL store and worker (SQLite file, fake platform).

Rules: enqueue, claim, send (ok / failed before send / rate limited / reply lost), crash at any
of the five points, advance the clock, sweep, reconcile, and stale workers coming back late.
Invariants after every step: at most one remote post per delivery, `sent` ⇒ a remote id that
the platform knows, final states never change, a final non-sent delivery was never published.
At the end everything is drained: each delivery is final, and each `sent` is published once.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from delivery_fakes import T0, Faults, Ledger, LedgerChannel, add_posts, seed_world, sqlite_engine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from channels.base import Credentials, payload_hash
from publisher.delivery import faults
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import FINAL_DELIVERY_STATES, DeliveryState
from publisher.store.tables import DeliveryRow

LEASE_S = 20.0
D = DeliveryRow.__table__


class Crash(BaseException):
    """The worker process died here."""


class DeliveryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="dsm-"))
        self.engine = sqlite_engine(self.dir / "db.sqlite")
        self.world = seed_world(self.engine, units=2)
        self.ledger = Ledger(self.dir / "ledger.sqlite")
        self.faults = Faults(retry_after_s=45)
        self.channel = LedgerChannel(self.ledger, self.faults)
        self.now = T0
        self.held: list = []  # jobs claimed by workers that may be dead or merely slow
        self.finals: dict[int, str] = {}
        self.crash_point: str | None = None
        self.owner_seq = 0

    def _fault(self, point: str) -> None:
        if point == self.crash_point:
            raise Crash(point)

    def _worker(self, owner: str) -> Worker:
        return Worker(
            self.world.store,
            {"facebook": self.channel},
            self.world.account,
            lambda account: Credentials("t"),
            WorkerConfig(owner=owner, request_timeout_s=LEASE_S / 2, lease_margin_s=LEASE_S / 2),
            clock=lambda: self.now,
            fault=self._fault,
            rng=random.Random(1),
        )

    def _rows(self) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(D)))

    # --- rules ---------------------------------------------------------------------------

    @rule(expires=st.sampled_from([None, 600, 7200]))
    def enqueue(self, expires):
        add_posts(
            self.world,
            due_at=self.now,
            expires_in=timedelta(seconds=expires) if expires else None,
        )

    @rule(k=st.integers(1, 3))
    def claim(self, k):
        self.owner_seq += 1
        self.held.extend(self.world.store.claim(f"w{self.owner_seq}", self.now, k, LEASE_S))

    @precondition(lambda self: self.held)
    @rule(
        pick=st.integers(0, 10),
        behaviour=st.sampled_from(["ok", "before_send", "rate_limited", "reply_lost"]),
        crash=st.sampled_from([None, None, *faults.KILL_POINTS]),
    )
    def send(self, pick, behaviour, crash):
        job = self.held.pop(pick % len(self.held))
        self.faults.script = [behaviour]
        self.crash_point = crash
        try:
            asyncio.run(self._worker(job.lease_owner).process(job))
        except Crash:
            pass
        finally:
            self.crash_point = None
            self.faults.script = []

    @rule()
    def crash_all_holders(self):
        self.held.clear()

    @rule(seconds=st.sampled_from([1, 15, 25, 60, 900, 3600]))
    def advance_clock(self, seconds):
        self.now += timedelta(seconds=seconds)

    @rule()
    def sweep(self):
        self.world.store.sweep(self.now)

    @rule()
    def reconcile(self):
        asyncio.run(
            reconcile_once(
                self.world.store,
                {"facebook": self.channel},
                self.world.account,
                lambda a: Credentials("t"),
                owner="reconciler",
                now=self.now,
                lease_s=LEASE_S,
            )
        )

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def at_most_one_remote_post_per_delivery(self):
        assert self.ledger.duplicates() == 0

    @invariant()
    def sent_has_a_remote_id_the_platform_knows_and_finals_stay(self):
        published = {h for _, h in self.ledger.entries()}
        for row in self._rows():
            state = DeliveryState(row.state)
            if state is DeliveryState.SENT:
                assert row.remote_id, f"delivery {row.id} sent without a remote id"
                assert self.ledger.find(row.account_id, row.body_hash) == row.remote_id
            if row.id in self.finals:
                assert row.state == self.finals[row.id], f"final state of {row.id} changed"
            if state in FINAL_DELIVERY_STATES:
                self.finals[row.id] = row.state
                if state is not DeliveryState.SENT:
                    own = payload_hash(row.payload) if row.payload else None
                    assert own not in published, f"{row.id} is {row.state} but was published"

    def teardown(self):
        try:
            # Drain: every worker is dead, time passes, the system recovers on its own.
            self.held.clear()
            for _ in range(8):
                self.now += timedelta(seconds=3600)
                self.faults.script = []
                asyncio.run(self._worker("drain").run(until_idle=True))
            rows = self._rows()
            for row in rows:
                assert row.state in {s.value for s in FINAL_DELIVERY_STATES}, (row.id, row.state)
            self.sent_has_a_remote_id_the_platform_knows_and_finals_stay()
            assert self.ledger.duplicates() == 0
            sent = sum(1 for r in rows if r.state == "sent")
            assert sent == len(self.ledger.entries()), "a published post is not recorded as sent"
        finally:
            self.engine.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)


TestDeliveryMachine = DeliveryMachine.TestCase
TestDeliveryMachine.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
