"""Real worker processes: a stalled worker's writes are refused, several workers never claim
the same delivery twice, and workers ride out a PostgreSQL restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from delivery_fakes import (
    Ledger,
    LedgerChannel,
    add_posts,
    create_schema,
    seed_world,
    sqlite_engine,
)
from pg import fresh_schema, postgres_url, schema_url

from channels.base import Credentials
from publisher.delivery import faults
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Platform
from publisher.store.delivery_sql import ATTEMPT, D
from publisher.store.engine import make_engine

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SCRIPT = HERE / "kill_worker.py"


def spawn(db_url, ledger, owner, *extra, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    for key in (faults.ENV_VAR, faults.SIGNAL_ENV_VAR):
        env.pop(key, None)
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), db_url, str(ledger), owner, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_stopped(proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{proc.pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "T":
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the worker never stopped")


def state_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(D.c.state, sa.func.count()).group_by(D.c.state)).all())


@pytest.mark.slow
@pytest.mark.parametrize("point", [faults.AFTER_CLAIM, faults.AFTER_SENDING])
def test_a_worker_frozen_past_its_lease_is_refused_when_it_wakes(tmp_path, point):
    db_path = tmp_path / "db.sqlite"
    engine = sqlite_engine(db_path)
    world = seed_world(engine, units=1)
    ledger_path = tmp_path / "ledger.sqlite"
    ledger = Ledger(ledger_path)
    add_posts(world, due_at=datetime.now(UTC) - timedelta(seconds=1))
    lease_timeout = 0.5  # lease = 1 s
    frozen = spawn(
        f"sqlite:///{db_path}",
        ledger_path,
        "frozen",
        "--lease-timeout",
        str(lease_timeout),
        env_extra={faults.ENV_VAR: point, faults.SIGNAL_ENV_VAR: "STOP"},
    )
    try:
        wait_stopped(frozen)
        time.sleep(2 * lease_timeout + 0.3)  # the lease runs out while it is frozen
        rescuer = Worker(
            world.store,
            {"facebook": LedgerChannel(ledger)},
            world.account,
            lambda a: Credentials("t"),
            WorkerConfig(owner="rescuer", sweep_every_s=0.1),
        )
        import asyncio

        asyncio.run(rescuer.run(until_idle=True))
        assert state_counts(engine) == {"sent": 1}
        os.kill(frozen.pid, signal.SIGCONT)
        out, err = frozen.communicate(timeout=30)
    finally:
        if frozen.poll() is None:
            frozen.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcomes"] == {"lost_lease": 1}, err
    assert ledger.duplicates() == 0
    assert len(ledger.entries()) == 1
    assert state_counts(engine) == {"sent": 1}


def run_four_workers(engine, db_url, tmp_path, deliveries: int) -> dict:
    units = deliveries // 20
    world = seed_world(engine, units=units)
    add_posts(world, articles=20, due_at=datetime.now(UTC) - timedelta(seconds=1))
    started = time.monotonic()
    procs = [
        spawn(
            db_url,
            tmp_path / "unused",
            f"w{i}",
            "--null",
            "--batch",
            "50",
            "--concurrency",
            "50",
            "--claims-out",
            str(tmp_path / f"claims{i}.json"),
        )
        for i in range(4)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    elapsed = time.monotonic() - started
    claims = Counter()
    for i in range(4):
        for delivery_id, _attempt in json.loads((tmp_path / f"claims{i}.json").read_text()):
            claims[delivery_id] += 1
    with engine.connect() as conn:
        attempts = conn.execute(sa.select(sa.func.count()).select_from(ATTEMPT)).scalar()
    figures = {
        "deliveries": deliveries,
        "claims": sum(claims.values()),
        "double_claims": sum(n - 1 for n in claims.values() if n > 1),
        "attempt_rows": attempts,
        "states": state_counts(engine),
        "seconds": round(elapsed, 2),
        "per_second_incl_startup": round(deliveries / elapsed),
    }
    print("FOUR_WORKERS", engine.dialect.name, json.dumps(figures))
    return figures


@pytest.mark.slow
@pytest.mark.parametrize("deliveries", [20_000])
def test_four_workers_on_sqlite_never_claim_twice(tmp_path, deliveries):
    engine = sqlite_engine(tmp_path / "db.sqlite")
    figures = run_four_workers(engine, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, deliveries)
    assert figures["double_claims"] == 0
    assert figures["states"] == {"sent": deliveries}
    assert figures["attempt_rows"] == deliveries


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("deliveries", [20_000])
def test_four_workers_on_postgres_never_claim_twice(tmp_path, deliveries):
    url = postgres_url()
    with fresh_schema(url) as (engine, schema):
        create_schema(engine)
        figures = run_four_workers(engine, schema_url(url, schema), tmp_path, deliveries)
    assert figures["double_claims"] == 0
    assert figures["states"] == {"sent": deliveries}
    assert figures["attempt_rows"] == deliveries


@pytest.mark.postgres
def test_four_workers_small_run_on_both(tmp_path, db):
    url = db.url.render_as_string(hide_password=False)
    if db.dialect.name == "postgresql":
        with db.connect() as conn:
            schema = conn.execute(sa.text("select current_schema()")).scalar()
        url = schema_url(postgres_url(), schema)
    figures = run_four_workers(db, url, tmp_path, 2_000)
    assert figures["double_claims"] == 0
    assert figures["states"] == {"sent": 2_000}


PG_RESTART_PORT = int(os.environ.get("PUBLISHER_PG_RESTART_PORT", "55441"))


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_recover_from_a_postgres_restart_by_themselves(tmp_path):
    postgres_url()  # skip (or fail in CI) when there is no PostgreSQL at all
    # Outside pytest's private tmp: the cluster runs as the `postgres` account when we are root.
    cluster = Path(tempfile.mkdtemp(prefix="publisher-pg-restart-")) / "pg"
    cluster.parent.chmod(0o755)
    tool = ROOT / "scripts" / "pg-throwaway"
    started = subprocess.run(
        [str(tool), "start", str(cluster), str(PG_RESTART_PORT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if started.returncode != 0:
        pytest.fail(f"could not start a private PostgreSQL: {started.stderr[-2000:]}")
    url = started.stdout.strip().splitlines()[-1]
    try:
        engine = make_engine(url)
        create_schema(engine)
        world = seed_world(engine, units=50, platforms=(Platform.FACEBOOK,))
        add_posts(world, articles=30, due_at=datetime.now(UTC) - timedelta(seconds=1))  # 1,500
        ledger_path = tmp_path / "ledger.sqlite"
        ledger = Ledger(ledger_path)
        procs = [
            spawn(
                url,
                ledger_path,
                f"w{i}",
                "--batch",
                "10",
                "--concurrency",
                "10",
                "--latency",
                "0.01",
                "--lease-timeout",
                "2",
            )
            for i in range(2)
        ]
        time.sleep(2.0)
        mid = state_counts(engine)
        restarted = subprocess.run(
            [str(tool), "restart", str(cluster)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert restarted.returncode == 0, restarted.stderr
        outputs = [proc.communicate(timeout=300) for proc in procs]
        for proc, (_out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err[-3000:]
        db_errors = sum(json.loads(out.strip().splitlines()[-1])["db_errors"] for out, _ in outputs)
        final = state_counts(engine)
        figures = {
            "before_restart": mid,
            "final": final,
            "worker_db_errors": db_errors,
            "published": len(ledger.entries()),
            "duplicates": ledger.duplicates(),
        }
        print("PG_RESTART", json.dumps(figures))
        assert mid.get("sent", 0) < 1500, "the run finished before the restart: make it longer"
        assert final == {"sent": 1500}
        assert ledger.duplicates() == 0
        assert len(ledger.entries()) == 1500
        engine.dispose()
    finally:
        subprocess.run(
            [str(tool), "stop", str(cluster)], capture_output=True, timeout=120, check=False
        )
