"""SIGKILL a real worker process at each point of a withdrawal, many times, then let the
system recover (sweeper + another worker): every recalled post is taken back, each
withdrawal is recorded once (one audit event), and nothing recalled is ever sent again.

The points: `withdraw_claimed` (claimed, nothing called), `withdraw_marked` (`withdrawing`
committed, no call yet), `withdraw_called` (the platform removed the post; `withdrawn` not
recorded). The sweeper gives an expired lease back as `pending`, and the next worker asks the
platform again: safe, because withdraw is idempotent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from delivery_fakes import DeletingLedgerChannel, Ledger, add_posts, seed_world, sqlite_engine
from kill_worker import LEASE_TIMEOUT_S

from channels.base import Credentials
from publisher.delivery import faults
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Recall, RecallScope
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import AuditEventRow, DeliveryRow, WithdrawalRow

RUNS = int(os.environ.get("PUBLISHER_KILL_RUNS", "20"))
HERE = Path(__file__).parent
ROOT = HERE.parent.parent
D = DeliveryRow.__table__
W = WithdrawalRow.__table__
AUDIT = AuditEventRow.__table__


def run_worker(db_url: str, ledger: Path, owner: str, kill_at: str) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    env[faults.ENV_VAR] = kill_at
    env.pop(faults.SIGNAL_ENV_VAR, None)
    done = subprocess.run(
        [sys.executable, str(HERE / "kill_worker.py"), db_url, str(ledger), owner, "--withdraw"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.returncode


def rescue(world, ledger: Ledger, owner: str, at: datetime) -> None:
    worker = Worker(
        world.store,
        {"facebook": DeletingLedgerChannel(ledger)},
        world.account,
        lambda a: Credentials("t"),
        WorkerConfig(owner=owner),
        clock=lambda: at,
        withdrawals=SqlRecallStore(world.store),
    )
    asyncio.run(worker.run(until_idle=True))


@pytest.mark.slow
@pytest.mark.parametrize("point", faults.WITHDRAW_KILL_POINTS)
def test_sigkill_during_a_withdrawal_loses_nothing_and_records_once(tmp_path, point):
    engine = sqlite_engine(tmp_path / "db.sqlite")
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    world = seed_world(engine, units=2)
    recalls = SqlRecallStore(world.store)
    ledger_path = tmp_path / "ledger.sqlite"
    ledger = Ledger(ledger_path)
    kills = swept = 0
    for run in range(RUNS):
        now = datetime.now(UTC)
        news = add_posts(world, due_at=now - timedelta(seconds=1))  # 2 deliveries
        rescue(world, ledger, f"sender{run}", now)  # both sent
        request = Recall(RecallScope.ARTICLE, news[0].article_id, "nhầm", "admin", now)
        recalls.recall(request, sorted({d.post_id for d in news}), now)
        code = run_worker(db_url, ledger_path, f"victim{run}", point)
        kills += code == -signal.SIGKILL
        later = datetime.now(UTC) + timedelta(seconds=2 * LEASE_TIMEOUT_S + 1)
        swept += recalls.sweep_withdrawals(later)
        rescue(world, ledger, f"rescuer{run}", later)
    with engine.connect() as conn:
        deliveries = conn.execute(sa.select(D.c.state, D.c.remote_id)).all()
        withdrawals = conn.execute(sa.select(W.c.state, W.c.delivery_id)).all()
        events = conn.execute(sa.select(AUDIT.c.target).where(AUDIT.c.action == "withdrawal")).all()
    removed = ledger.removed()
    figures = {
        "point": point,
        "runs": RUNS,
        "kills": kills,
        "deliveries": len(deliveries),
        "withdrawn": sum(1 for w in withdrawals if w.state == "withdrawn"),
        "removed_on_platform": len(removed),
        "withdraw_calls": ledger.withdraw_calls(),
        "swept": swept,
        "audit_events": len(events),
    }
    print("KILL", json.dumps(figures))
    assert kills == RUNS
    assert {d.state for d in deliveries} == {"sent"}
    assert len(ledger.entries()) == len(deliveries)  # nothing sent twice
    assert {w.state for w in withdrawals} == {"withdrawn"}
    assert set(removed) == {d.remote_id for d in deliveries}  # every post taken back
    # Recorded once per withdrawal, whoever finished it.
    assert sorted(e.target for e in events) == sorted(
        f"delivery:{w.delivery_id}" for w in withdrawals
    )
    if point == faults.WITHDRAW_CLAIMED:
        assert ledger.withdraw_calls() == len(deliveries)  # the killed claim never called
    if point == faults.WITHDRAW_CALLED:
        assert swept == RUNS
        assert ledger.withdraw_calls() == len(deliveries) + RUNS  # asked again, idempotent
