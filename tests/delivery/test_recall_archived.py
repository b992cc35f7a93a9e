"""Recall and archiving meet: a post sent long ago may have its deliveries in the archive,
yet it is still published, so a recall must take it back like any other; and a delivery with
a withdrawal is never archived from under it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from delivery_fakes import T0, DeletingLedgerChannel, Ledger, add_posts, seed_world

from channels.base import Credentials
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import DeliveryState, Recall, RecallScope, WithdrawalState
from publisher.store.archive import archive_finished
from publisher.store.delivery_sql import D
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import DeliveryArchiveRow, WithdrawalRow

W = WithdrawalRow.__table__
ARCHIVE = DeliveryArchiveRow.__table__
LATER = T0 + timedelta(days=60)


def worker(world, channel, recalls, now):  # type: ignore[no-untyped-def]
    return Worker(
        world.store,
        {"facebook": channel},
        world.repo.get_account,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=5, lease_margin_s=5),
        clock=lambda: now,
        rng=random.Random(3),
        withdrawals=recalls,
    )


def count(engine: sa.Engine, table: sa.Table, post_ids: list[int]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.post_id.in_(post_ids))
            ).scalar_one()
        )


@pytest.mark.parametrize("db", ["sqlite_db", pytest.param("pg_db", marks=pytest.mark.postgres)])
async def test_an_archived_post_is_still_taken_back(db, request, tmp_path) -> None:
    engine = request.getfixturevalue(db)
    world = seed_world(engine, units=2)
    news = add_posts(world)
    post_ids = sorted({d.post_id for d in news})
    ledger = Ledger(tmp_path / "l.db")
    channel = DeletingLedgerChannel(ledger)
    recalls = SqlRecallStore(world.store)
    await worker(world, channel, recalls, T0).run(until_idle=True)
    assert len(ledger.entries()) == 2

    moved = archive_finished(engine, LATER, timedelta(days=30))
    assert moved.deliveries == 2
    assert count(engine, D, post_ids) == 0

    request_ = Recall(RecallScope.ARTICLE, 1, "sai thông tin", "duyet", LATER)
    created = recalls.recall(request_, post_ids, LATER)
    assert (created.withdrawals, created.to_withdraw) == (2, 2)
    assert count(engine, ARCHIVE, post_ids) == 0  # back in the hot table, ids kept
    await worker(world, channel, recalls, LATER + timedelta(seconds=1)).run(until_idle=True)
    assert len(ledger.removed()) == 2
    with engine.connect() as conn:
        states = conn.execute(sa.select(W.c.state, D.c.state).join(D, D.c.id == W.c.delivery_id))
        assert (
            sorted(tuple(row) for row in states)
            == [(WithdrawalState.WITHDRAWN.value, DeliveryState.SENT.value)] * 2
        )

    # A delivery with a withdrawal stays hot, however old.
    again = archive_finished(engine, LATER + timedelta(days=90), timedelta(days=30))
    assert again.deliveries == 0
    assert count(engine, D, post_ids) == 2
