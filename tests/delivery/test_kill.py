"""SIGKILL a real worker process at each of the five points, many times, then let the system
recover (sweeper + reconcile + another worker): duplicates 0, lost 0.

The worker kills itself with SIGKILL at the named point (PUBLISHER_FAULT_KILL_AT), so nothing
in the dying process gets a chance to clean up. The platform's ledger is a SQLite file, so what
the platform accepted survives the process. Recovery runs with the clock moved past the lease.
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
from delivery_fakes import Ledger, LedgerChannel, add_posts, seed_world, sqlite_engine
from kill_worker import LEASE_TIMEOUT_S

from channels.base import Credentials
from publisher.delivery import faults
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.store.tables import DeliveryRow

RUNS = int(os.environ.get("PUBLISHER_KILL_RUNS", "50"))
HERE = Path(__file__).parent
ROOT = HERE.parent.parent
D = DeliveryRow.__table__


def run_worker(db_url: str, ledger: Path, owner: str, kill_at: str | None, *extra: str) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    env.pop(faults.ENV_VAR, None)
    env.pop(faults.SIGNAL_ENV_VAR, None)
    if kill_at:
        env[faults.ENV_VAR] = kill_at
    done = subprocess.run(
        [sys.executable, str(HERE / "kill_worker.py"), db_url, str(ledger), owner, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.returncode


@pytest.mark.slow
@pytest.mark.parametrize("point", faults.KILL_POINTS)
def test_sigkill_at_each_point_loses_nothing_and_duplicates_nothing(tmp_path, point):
    engine = sqlite_engine(tmp_path / "db.sqlite")
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    world = seed_world(engine, units=2)
    ledger_path = tmp_path / "ledger.sqlite"
    ledger = Ledger(ledger_path)
    kills = unknowns = found = absent = 0
    for run in range(RUNS):
        now = datetime.now(UTC)
        add_posts(world, due_at=now - timedelta(seconds=1))  # 2 deliveries
        code = run_worker(db_url, ledger_path, f"victim{run}", point)
        kills += code == -signal.SIGKILL
        # Recovery: the lease has run out; sweep, reconcile, and finish with a fresh worker.
        later = datetime.now(UTC) + timedelta(seconds=2 * LEASE_TIMEOUT_S + 1)
        swept = world.store.sweep(later)
        unknowns += swept.unknown
        resolved = asyncio.run(
            reconcile_once(
                world.store,
                {"facebook": LedgerChannel(ledger)},
                world.account,
                lambda a: Credentials("t"),
                owner=f"reconciler{run}",
                now=later,
            )
        )
        found += resolved.get("sent", 0)
        absent += resolved.get("pending", 0)
        rescuer = Worker(
            world.store,
            {"facebook": LedgerChannel(ledger)},
            world.account,
            lambda a: Credentials("t"),
            WorkerConfig(owner=f"rescuer{run}"),
            clock=lambda later=later: later,
        )
        asyncio.run(rescuer.run(until_idle=True))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(D.c.state, D.c.account_id, D.c.body_hash, D.c.remote_id)
        ).all()
    not_sent = [r for r in rows if r.state != "sent"]
    lost = len(not_sent) + sum(1 for r in rows if ledger.find(r.account_id, r.body_hash) is None)
    duplicates = ledger.duplicates()
    figures = {
        "point": point,
        "runs": RUNS,
        "kills": kills,
        "deliveries": len(rows),
        "published": len(ledger.entries()),
        "duplicates": duplicates,
        "lost": lost,
        "unknowns": unknowns,
        "reconciled_found": found,
        "reconciled_absent": absent,
    }
    print("KILL", json.dumps(figures))
    assert kills == RUNS
    assert duplicates == 0
    assert lost == 0
    assert len(ledger.entries()) == len(rows)
    if point in (faults.AFTER_SENDING, faults.DURING_CALL, faults.AFTER_ACCEPT):
        assert unknowns == RUNS  # the one in flight each time went through reconcile
    if point == faults.AFTER_ACCEPT:
        assert found == RUNS


@pytest.mark.slow
@pytest.mark.parametrize("point", faults.KILL_POINTS)
def test_sigkill_in_a_group_loses_nothing_and_duplicates_nothing(tmp_path, point):
    """The same with groups: 6 deliveries claimed, marked `sending` in one commit and
    called together, outcomes committed together. A kill anywhere leaves the group's
    uncertain rows to the sweeper and reconcile: each post is on the platform once."""
    engine = sqlite_engine(tmp_path / "db.sqlite")
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    world = seed_world(engine, units=3)
    ledger_path = tmp_path / "ledger.sqlite"
    ledger = Ledger(ledger_path)
    runs = max(1, RUNS // 5)
    kills = unknowns = 0
    for run in range(runs):
        now = datetime.now(UTC)
        add_posts(world, articles=2, due_at=now - timedelta(seconds=1))  # 6 deliveries
        group = ("--batch", "6", "--concurrency", "6")
        code = run_worker(db_url, ledger_path, f"victim{run}", point, *group)
        kills += code == -signal.SIGKILL
        later = datetime.now(UTC) + timedelta(seconds=2 * LEASE_TIMEOUT_S + 1)
        unknowns += world.store.sweep(later).unknown
        asyncio.run(
            reconcile_once(
                world.store,
                {"facebook": LedgerChannel(ledger)},
                world.account,
                lambda a: Credentials("t"),
                owner=f"reconciler{run}",
                now=later,
            )
        )
        rescuer = Worker(
            world.store,
            {"facebook": LedgerChannel(ledger)},
            world.account,
            lambda a: Credentials("t"),
            WorkerConfig(owner=f"rescuer{run}"),
            clock=lambda later=later: later,
        )
        asyncio.run(rescuer.run(until_idle=True))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(D.c.state, D.c.account_id, D.c.body_hash)).all()
    print("KILL-GROUP", json.dumps({"point": point, "runs": runs, "unknowns": unknowns}))
    assert kills == runs
    assert ledger.duplicates() == 0
    assert [r.state for r in rows] == ["sent"] * 6 * runs
    assert all(ledger.find(r.account_id, r.body_hash) is not None for r in rows)
    assert len(ledger.entries()) == len(rows)
    if point == faults.AFTER_SENDING:
        assert unknowns == 6 * runs  # the whole group was marked, none was called
