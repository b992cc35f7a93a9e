"""Delivery workers on PostgreSQL: 1, 2 and 4 worker processes on the national fan-out.

For each count: a fresh schema, the whole country's tree (root, 34 provinces, every commune
of the pinned `vietnam-provinces` data) × 5 channel accounts, one directive routed by
`DeliveryService.route_article` (~17,000 deliveries), then N real `Worker` processes
(`bench/pgworker.py`: claim with FOR UPDATE SKIP LOCKED, fenced writes, attempt rows, payloads
built by the real `AdaptingPreparer`) against channels that accept at once, started together
once all have connected. Reports deliveries/s (first start to last finish) and double claims
counted two ways, never from the workers' counters: deliveries claimed by more than one
worker (each worker's claimed (id, attempt) list) and deliveries with more than one row in
the `delivery_attempt` table. Needs DATABASE_URL_TEST (`scripts/pg-throwaway start DIR`
prints one); says so and measures nothing without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import publisher.store.tables  # noqa: F401  (registers the tables)
from bench.scenarios.national import national_tree, new_article, seed
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ATTEMPT, D
from publisher.store.engine import make_engine, normalise_url

DESCRIPTION = "PostgreSQL: 1, 2 and 4 worker processes on the national fan-out; double claims"
ROOT = Path(__file__).resolve().parents[2]
WORKER_COUNTS = (1, 2, 4)


class _NoDirectory:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the fan-out path used the directory's {name}")


def one_run(url: str, workers: int, quick: bool) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        SQLModel.metadata.create_all(engine)
        seed(engine, national_tree(quick))
        routed_at = datetime.now(UTC) - timedelta(minutes=10)  # stagger window (5 min) passed
        service = DeliveryService(
            engine,
            _NoDirectory(),  # type: ignore[arg-type]
            schedule_rules=ScheduleFile(default={"quiet_hours": []}),
            clock=lambda: routed_at,
        )
        _, deliveries = service.route_article(new_article(engine, 0))
        with tempfile.TemporaryDirectory() as folder:
            go = Path(folder) / "go"
            procs, outs, readies = [], [], []
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            for i in range(workers):
                ready, out = Path(folder) / f"ready{i}", Path(folder) / f"out{i}.json"
                readies.append(ready)
                outs.append(out)
                files = [str(ready), str(go), str(out)]
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.pgworker", url, schema, f"w{i}", *files],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            deadline = time.monotonic() + 120
            while not all(r.exists() for r in readies):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    for p in procs:
                        p.kill()
                    errors = [p.communicate()[1][-2000:] for p in procs]
                    raise RuntimeError(f"workers did not start: {errors}")
                time.sleep(0.05)
            go.write_text("go")
            for proc in procs:
                _, err = proc.communicate(timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"worker failed: {err[-3000:]}")
            reports = [json.loads(out.read_text()) for out in outs]
        started = min(r["started"] for r in reports)
        finished = max(r["finished"] for r in reports)
        claims: Counter[int] = Counter()
        for report in reports:
            claims.update(delivery_id for delivery_id, _attempt in report["claimed"])
        with engine.connect() as conn:
            per_delivery = conn.execute(
                sa.select(ATTEMPT.c.delivery_id, sa.func.count()).group_by(ATTEMPT.c.delivery_id)
            ).all()
            states = dict(
                conn.execute(sa.select(D.c.state, sa.func.count()).group_by(D.c.state)).all()
            )
            over_one = conn.execute(
                sa.select(sa.func.count()).select_from(D).where(D.c.attempt > 1)
            ).scalar()
        sent = states.get("sent", 0)
        return {
            "workers": workers,
            "deliveries": deliveries,
            "sent": sent,
            "states": states,
            "seconds": round(finished - started, 2),
            "rate": round(sent / (finished - started)),
            "per_worker_sent": [r["outcomes"].get("sent", 0) for r in reports],
            "double_claims_workers": sum(n - 1 for n in claims.values() if n > 1),
            "double_claims_attempt_table": sum(n - 1 for _, n in per_delivery if n > 1),
            "deliveries_with_attempt_over_1": int(over_one or 0),
            "attempt_rows": sum(n for _, n in per_delivery),
            "database_errors": sum(r["database_errors"] for r in reports),
        }
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(quick: bool = False) -> list[dict[str, Any]]:
    raw_url = os.environ.get("DATABASE_URL_TEST", "").strip()
    if not raw_url:
        message = (
            "pgworkers: no PostgreSQL: set DATABASE_URL_TEST "
            "(scripts/pg-throwaway start DIR prints one); nothing measured"
        )
        print(message, file=sys.stderr)
        return [{"name": "pgworkers", "value": 0, "unit": "skipped", "reason": message}]
    url = normalise_url(raw_url)
    figures: list[dict[str, Any]] = []
    single: float | None = None
    for workers in WORKER_COUNTS:
        result = one_run(url, workers, quick)
        if result["sent"] != result["deliveries"]:
            raise RuntimeError(f"not everything was sent: {result}")
        single = single or result["rate"]
        figures.append(
            {
                "name": f"pgworkers_{workers}_rate",
                "value": result["rate"],
                "unit": "deliveries/s",
                "baseline": "1 worker",
                "baseline_value": single,
                "ratio": round(result["rate"] / single, 2),
                **{k: v for k, v in result.items() if k not in ("rate", "states")},
            }
        )
    return figures
