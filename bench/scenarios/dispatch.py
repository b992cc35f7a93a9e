"""Dispatch throughput of the delivery worker on SQLite.

1. No-latency channel: deliveries/s of one worker (claim 50 → per delivery commit `sending`,
   call, commit `sent`), against the bare claim-and-commit loop (the same SQL through the
   sqlite3 module, no worker, no channel, no SQLAlchemy).
2. 200 ms platform latency with a per-account minimum gap: total time against the theoretical
   minimum ((posts per account − 1) × gap + latency).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlmodel import SQLModel

import publisher.store.tables  # noqa: F401  (registers the tables)
from channels.base import Adapted, Channel, Credentials, Receipt, Template, payload_hash
from publisher.delivery.jobs import NewDelivery
from publisher.delivery.limits import RateLimits
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.store.delivery_sql import ARTICLE, POST, SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.sql import SqlRepository

DESCRIPTION = "worker dispatch on SQLite: no-latency rate vs bare loop; 200 ms latency vs minimum"


class InstantChannel(Channel):
    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "instant"

    def __init__(self, latency_s: float = 0.0) -> None:
        super().__init__(http=None, base_url="bench://")  # type: ignore[arg-type]
        self.latency_s = latency_s

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": article.title})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return Receipt(remote_id=payload_hash(payload)[:16])


def seed(
    path: Path, accounts: int, per_account: int, due: datetime
) -> tuple[sa.Engine, dict[str, ChannelAccount]]:
    engine = make_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    repo = SqlRepository(engine)
    units = [Unit("CP", "Central", "central")] + [
        Unit(f"U{i:05d}", f"U{i}", "commune", "CP") for i in range(accounts)
    ]
    repo.upsert_units(units)
    found = {
        f"{u.code}.facebook": ChannelAccount(
            f"{u.code}.facebook", u.code, Platform.FACEBOOK, u.code
        )
        for u in units[1:]
    }
    repo.upsert_accounts(found.values())
    deliveries: list[NewDelivery] = []
    with engine.begin() as conn:
        for n in range(per_account):
            article_id = conn.execute(
                sa.insert(ARTICLE)
                .values(
                    guid=f"g{n}",
                    url="u",
                    canonical_url="u",
                    content_hash="h",
                    title=f"Article {n}",
                    published_at=due,
                    images=[],
                    created_at=due,
                )
                .returning(ARTICLE.c.id)
            ).scalar_one()
            post_rows = [
                {
                    "article_id": article_id,
                    "unit_code": u.code,
                    "state": "approved",
                    "approvals": [],
                    "created_at": due,
                    "updated_at": due,
                }
                for u in units[1:]
            ]
            conn.execute(sa.insert(POST), post_rows)
            ids = dict(
                conn.execute(
                    sa.select(POST.c.unit_code, POST.c.id).where(POST.c.article_id == article_id)
                ).all()
            )
            deliveries += [
                NewDelivery(
                    ids[a.unit_code],
                    article_id,
                    a.unit_code,
                    a.id,
                    "facebook",
                    due,
                    payload={"message": f"article {n} for {a.id}"},
                )
                for a in found.values()
            ]
    SqlDeliveryStore(engine).enqueue(deliveries, due)
    return engine, found


def worker_rate(n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        due = datetime.now(UTC) - timedelta(seconds=1)
        engine, accounts = seed(Path(folder) / "w.db", accounts=n // 10, per_account=10, due=due)
        worker = Worker(
            SqlDeliveryStore(engine),
            {"facebook": InstantChannel()},
            accounts.get,
            lambda a: Credentials("t"),
            WorkerConfig(owner="bench", batch=50, concurrency=50),
        )
        started = time.perf_counter()
        stats = asyncio.run(worker.run(until_idle=True))
        elapsed = time.perf_counter() - started
        engine.dispose()
    return n / elapsed, stats.outcomes.get("sent", 0)


def bare_rate(n: int) -> float:
    """The floor: claim 50 with UPDATE … RETURNING, then two commits per delivery."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.db"
        due = datetime.now(UTC) - timedelta(seconds=1)
        engine, _ = seed(path, accounts=n // 10, per_account=10, due=due)
        engine.dispose()
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        started = time.perf_counter()
        done = 0
        while True:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "UPDATE delivery SET state='claimed', lease_owner='b', attempt=attempt+1 "
                "WHERE id IN (SELECT id FROM delivery WHERE state='pending' AND due_at <= ? "
                "ORDER BY priority DESC, due_at, id LIMIT 50) RETURNING id, attempt",
                (now,),
            ).fetchall()
            db.execute("COMMIT")
            if not rows:
                break
            for delivery_id, attempt in rows:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "UPDATE delivery SET state='sending', body_hash='h' "
                    "WHERE id=? AND lease_owner='b' AND attempt=? AND state='claimed'",
                    (delivery_id, attempt),
                )
                db.execute("COMMIT")
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "UPDATE delivery SET state='sent', remote_id='r' "
                    "WHERE id=? AND lease_owner='b' AND attempt=? AND state='sending'",
                    (delivery_id, attempt),
                )
                db.execute("COMMIT")
                done += 1
        elapsed = time.perf_counter() - started
        db.close()
    assert done == n
    return n / elapsed


def paced(accounts: int, per_account: int, gap_s: float, latency_s: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        due = datetime.now(UTC) - timedelta(seconds=1)
        engine, found = seed(Path(folder) / "p.db", accounts, per_account, due)
        worker = Worker(
            SqlDeliveryStore(engine),
            {"facebook": InstantChannel(latency_s)},
            found.get,
            lambda a: Credentials("t"),
            WorkerConfig(owner="bench", batch=100, concurrency=100, poll_s=0.02),
            limits=RateLimits(account_gap_s={"facebook": gap_s}),
        )
        started = time.perf_counter()
        stats = asyncio.run(worker.run(until_idle=True))
        elapsed = time.perf_counter() - started
        engine.dispose()
    assert stats.outcomes.get("sent") == accounts * per_account, stats.outcomes
    return elapsed, (per_account - 1) * gap_s + latency_s


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 2_000 if quick else 10_000
    rate, sent = worker_rate(n)
    assert sent == n
    floor = bare_rate(n)
    elapsed, minimum = paced(
        accounts=20 if quick else 50, per_account=3 if quick else 5, gap_s=1.0, latency_s=0.2
    )
    return [
        {
            "name": "dispatch_sqlite_no_latency",
            "value": round(rate),
            "unit": "deliveries/s",
            "baseline": "bare claim-and-commit loop (sqlite3, no worker)",
            "baseline_value": round(floor),
            "ratio": round(floor / rate, 2),
        },
        {
            "name": "dispatch_200ms_latency_account_gap_1s",
            "value": round(elapsed, 2),
            "unit": "s",
            "baseline": "theoretical minimum",
            "baseline_value": round(minimum, 2),
            "ratio": round(elapsed / minimum, 3),
        },
    ]
