"""A recall racing a busy worker, on SQLite and PostgreSQL: whatever moment the recall
commits at, every post that went out is taken back, nothing is sent after it, and every
delivery ends `sent` + `withdrawn` or `cancelled` + `not_sent`."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from delivery_fakes import DeletingLedgerChannel, Faults, Ledger, add_posts, seed_world

from channels.base import Credentials
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Recall, RecallScope
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import DeliveryRow, WithdrawalRow

D = DeliveryRow.__table__
W = WithdrawalRow.__table__
ROUNDS = 12


def test_recall_racing_a_worker_leaves_nothing_up(db, tmp_path):
    world = seed_world(db, units=6)
    recalls = SqlRecallStore(world.store)
    ledger = Ledger(tmp_path / "ledger.db")
    rng = random.Random(5)

    def worker(owner: str, latency: float) -> Worker:
        return Worker(
            world.store,
            {"facebook": DeletingLedgerChannel(ledger, Faults(latency_s=latency))},
            world.account,
            lambda a: Credentials("t"),
            WorkerConfig(owner=owner, batch=2, concurrency=2, poll_s=0.01, sweep_every_s=0.05),
            withdrawals=recalls,
        )

    for round_ in range(ROUNDS):
        news = add_posts(world, due_at=datetime.now(UTC) - timedelta(seconds=1))  # 6 deliveries
        busy = worker(f"w{round_}", latency=0.01)
        thread = threading.Thread(target=lambda busy=busy: asyncio.run(busy.run(until_idle=True)))
        thread.start()
        time.sleep(rng.uniform(0.0, 0.08))  # the recall lands somewhere in the middle
        now = datetime.now(UTC)
        request = Recall(RecallScope.ARTICLE, news[0].article_id, "nhầm", "admin", now)
        recalls.recall(request, sorted({d.post_id for d in news}), now)
        recalled_at = len(ledger.entries())
        thread.join(timeout=60)
        assert not thread.is_alive()
        asyncio.run(worker(f"settle{round_}", latency=0.0).run(until_idle=True))
        # Sends already under way when the recall committed may finish; nothing starts after.
        assert len(ledger.entries()) - recalled_at <= 2  # at most the worker's concurrency
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(D.c.state, D.c.remote_id, W.c.state.label("withdrawal")).join(
                W, W.c.delivery_id == D.c.id
            )
        ).all()
        total = conn.execute(sa.select(sa.func.count()).select_from(D)).scalar_one()
    assert len(rows) == total == ROUNDS * 6  # one withdrawal per delivery
    pairs = {(r.state, r.withdrawal) for r in rows}
    assert pairs <= {("sent", "withdrawn"), ("cancelled", "not_sent")}
    sent = {r.remote_id for r in rows if r.state == "sent"}
    assert len(ledger.entries()) == len(sent)  # nothing sent twice, nothing sent unrecorded
    assert set(ledger.removed()) == sent  # and every post that went out was taken back
    assert ("cancelled", "not_sent") in pairs  # the race really cut some rounds short
    assert ("sent", "withdrawn") in pairs
