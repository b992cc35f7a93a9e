"""Dispatch throughput of the delivery worker on SQLite.

1. No-latency channel: deliveries/s of one worker (claim 50 → one commit of the launched
   group's `sending` marks, the calls, one commit of their outcomes), against the bare
   claim-and-commit loop (the same SQL and transactions through the sqlite3 module, no
   worker, no channel, no SQLAlchemy) and the minimal loop (the issue's first baseline: claim
   50, then per delivery two one-statement commits).
2. 200 ms platform latency with a per-account minimum gap: total time against the theoretical
   minimum ((posts per account − 1) × gap + latency).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
import statistics
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
from publisher.store.delivery_sql import ARTICLE, FEW_WITHDRAWALS, POST, SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.recall_sql import SqlRecallStore
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


def worker_rate(template: Path, n: int) -> float:
    """Deliveries/s of one worker over a copy of the seeded database."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "w.db"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        accounts = {a.id: a for a in SqlRepository(engine).list_accounts()}
        store = SqlDeliveryStore(engine)
        worker = Worker(
            store,
            {"facebook": InstantChannel()},
            accounts.get,
            lambda a: Credentials("t"),
            WorkerConfig(owner="bench", batch=50, concurrency=50),
            withdrawals=SqlRecallStore(store),  # on, as in `publisher worker`/`run`
        )
        started = time.perf_counter()
        stats = asyncio.run(worker.run(until_idle=True))
        elapsed = time.perf_counter() - started
        engine.dispose()
    assert stats.outcomes.get("sent") == n, stats.outcomes
    return n / elapsed


def _sqlite_time(value: datetime) -> str:
    # What SQLAlchemy stores for a UTCDateTime on SQLite.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# The worker's statements, as it sends them (SQLAlchemy's SQLite compilation of
# SqlDeliveryStore.claim, mark_sending and mark_sent), with the same parameters.
_PAUSES = (
    "SELECT pause.id, pause.scope, pause.target, pause.reason, pause.created_by, "
    "pause.created_at, pause.until, pause.lifted_at, pause.lifted_by, pause.lift_reason "
    "FROM pause WHERE pause.lifted_at IS NULL AND (pause.until IS NULL OR pause.until > ?)"
)
_HELD_PLATFORMS = (
    'SELECT rate_limit."key" FROM rate_limit '
    'WHERE rate_limit."key" LIKE ? AND rate_limit.next_allowed_at > ?'
)
_CLAIM = (
    "UPDATE delivery SET state=?, attempt=(delivery.attempt + ?), lease_owner=?, "
    "lease_until=?, updated_at=? WHERE delivery.id IN (SELECT due.id FROM delivery AS due "
    "WHERE due.state IN (?, ?) AND due.due_at <= ? "
    "AND (due.expires_at IS NULL OR due.expires_at > ?) "
    "AND (due.account_id NOT IN (SELECT channel_account.id FROM channel_account "
    "WHERE channel_account.status != ?)) "
    'AND (due.account_id NOT IN (SELECT substr(rate_limit."key", ?) AS substr_1 FROM rate_limit '
    'WHERE substr(rate_limit."key", ?, ?) = ? AND rate_limit.next_allowed_at > ?)) '
    "AND (due.id NOT IN (SELECT withdrawal.delivery_id FROM withdrawal)) "
    "ORDER BY due.priority DESC, due.due_at, due.id LIMIT ? OFFSET ?) "
    "RETURNING id, post_id, article_id, unit_code, account_id, platform, state, attempt, "
    "lease_owner, lease_until, payload, body_hash, expires_at, created_at, priority"
)
# How many withdrawal rows there may be (few: the claim reads their ids once, as here).
_LAST_WITHDRAWAL = "SELECT max(withdrawal.id) AS max_1 FROM withdrawal"
_MARK_SENDING = (
    "UPDATE delivery SET state=?, lease_until=?, body_hash=?, updated_at=? "
    "WHERE delivery.id = ? AND delivery.lease_owner = ? AND delivery.attempt = ? "
    "AND delivery.state = ? AND delivery.lease_until >= ?"
)
_INSERT_ATTEMPT = (
    "INSERT INTO delivery_attempt (delivery_id, attempt, worker, started_at, outcome) "
    "VALUES (?, ?, ?, ?, ?)"
)
_MARK_SENT = (
    "UPDATE delivery SET state=?, lease_until=?, remote_id=?, remote_url=?, "
    "last_error=?, error_kind=?, sent_at=?, receipt_notes=?, updated_at=? WHERE delivery.id = ? "
    "AND delivery.lease_owner = ? AND delivery.attempt = ? AND delivery.state = ?"
)
_FINISH_ATTEMPT = (
    "UPDATE delivery_attempt SET finished_at=?, outcome=?, detail=? "
    "WHERE delivery_attempt.delivery_id = ? AND delivery_attempt.attempt = ?"
)


def check_same_sql(engine: sa.Engine) -> None:
    """The bare loop's statements are the worker's, word for word (whitespace aside)."""
    store = SqlDeliveryStore(engine)
    driver = {name: " ".join(st.sql.split()) for name, st in store._driver.items()}
    claim = " ".join(store._claim_statement([], [], 50, few_withdrawals=True).sql.split())
    ours = {
        "active_pauses": _PAUSES,
        "held": _HELD_PLATFORMS,
        "last_withdrawal": _LAST_WITHDRAWAL,
        "mark_sending_same_body": _MARK_SENDING,
        "insert_attempt": _INSERT_ATTEMPT,
        "mark_sent": _MARK_SENT,
        "finish_attempt": _FINISH_ATTEMPT,
    }
    for name, sql in ours.items():
        assert " ".join(sql.split()) == driver[name], (name, sql, driver[name])
    assert " ".join(_CLAIM.split()) == claim, (_CLAIM, claim)


def bare_rate(template: Path, n: int) -> float:
    """The floor: the worker's own SQL and transactions straight through the sqlite3 module,
    on a connection set up as the engine sets its own (WAL, synchronous=NORMAL, foreign
    keys): per claim the pause, held-platform and withdrawal-count reads and the claim of 50
    (one transaction), then the worker's group commits: the 50 `sending` marks + attempt rows
    (one commit) and the 50 `sent` + attempt outcomes (one commit), each row fenced and
    checked on its own. No worker, no channel, no SQLAlchemy, no asyncio."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.db"
        shutil.copyfile(template, path)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        started = time.perf_counter()
        done = 0
        while True:
            now = datetime.now(UTC)
            t_now = _sqlite_time(now)
            db.execute("BEGIN IMMEDIATE")
            db.execute(_PAUSES, (t_now,)).fetchall()
            db.execute(_HELD_PLATFORMS, ("platform:%", t_now)).fetchall()
            [(last,)] = db.execute(_LAST_WITHDRAWAL).fetchall()
            assert (last or 0) <= FEW_WITHDRAWALS  # the claim below is the few-rows form
            lease_until = _sqlite_time(now + timedelta(seconds=60))
            claim = ("claimed", 1, "b", lease_until, t_now, "pending", "retry_wait", t_now, t_now)
            held = (9, 1, 8, "account:", t_now)
            rows = db.execute(_CLAIM, (*claim, "active", *held, 50, 0)).fetchall()
            db.execute("COMMIT")
            if not rows:
                break
            # The worker's group commits: one transaction for the batch's `sending` marks
            # and attempt rows, one for their outcomes, each row fenced on its own.
            now = datetime.now(UTC)
            t_now = _sqlite_time(now)
            lease_until = _sqlite_time(now + timedelta(seconds=60))
            fence = ("claimed", t_now)
            db.execute("BEGIN IMMEDIATE")
            for row in rows:
                delivery_id, attempt, payload = row[0], row[7], row[10]
                body_hash = hashlib.sha256(payload.encode()).hexdigest()
                changed = db.execute(
                    _MARK_SENDING,
                    ("sending", lease_until, body_hash, t_now, delivery_id, "b", attempt, *fence),
                ).rowcount
                assert changed == 1
                db.execute(_INSERT_ATTEMPT, (delivery_id, attempt, "b", t_now, "sending"))
            db.execute("COMMIT")
            db.execute("BEGIN IMMEDIATE")
            for row in rows:
                delivery_id, attempt = row[0], row[7]
                t_now = _sqlite_time(datetime.now(UTC))
                # no receipt notes: SQL NULL, as the worker binds a receipt without problems
                sent = ("sent", None, "r", None, None, None, t_now, None, t_now)
                changed = db.execute(
                    _MARK_SENT, (*sent, delivery_id, "b", attempt, "sending")
                ).rowcount
                assert changed == 1
                db.execute(_FINISH_ATTEMPT, (t_now, "sent", "r", delivery_id, attempt))
                done += 1
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
    assert done == n
    return n / elapsed


def minimal_rate(template: Path, n: int) -> float:
    """The loop this scenario first compared against: a claim without the pause, account
    and rate-hold conditions, and per delivery two one-statement commits without the
    attempt record or the lease-time fence. Less work than the worker must do: kept as a
    second reference only."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.db"
        shutil.copyfile(template, path)
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


def no_latency(n: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """Worker, bare loop and minimal loop on copies of one seeded database, interleaved
    (the order rotates each round), so a noisy neighbour weighs on all three alike."""
    runs: dict[str, list[float]] = {"worker": [], "bare": [], "minimal": []}
    measures = {"worker": worker_rate, "bare": bare_rate, "minimal": minimal_rate}
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "seed.db"
        due = datetime.now(UTC) - timedelta(seconds=1)
        engine, _ = seed(template, accounts=n // 10, per_account=10, due=due)
        check_same_sql(engine)
        engine.dispose()
        order = list(measures)
        for r in range(rounds):
            for name in order[r % 3 :] + order[: r % 3]:
                runs[name].append(measures[name](template, n))
    return runs["worker"], runs["bare"], runs["minimal"]


def paced(accounts: int, per_account: int, gap_s: float, latency_s: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        due = datetime.now(UTC) - timedelta(seconds=1)
        engine, found = seed(Path(folder) / "p.db", accounts, per_account, due)
        store = SqlDeliveryStore(engine)
        worker = Worker(
            store,
            {"facebook": InstantChannel(latency_s)},
            found.get,
            lambda a: Credentials("t"),
            WorkerConfig(owner="bench", batch=100, concurrency=100, poll_s=0.02),
            limits=RateLimits(account_gap_s={"facebook": gap_s}),
            withdrawals=SqlRecallStore(store),  # on, as in `publisher worker`/`run`
        )
        started = time.perf_counter()
        stats = asyncio.run(worker.run(until_idle=True))
        elapsed = time.perf_counter() - started
        engine.dispose()
    assert stats.outcomes.get("sent") == accounts * per_account, stats.outcomes
    return elapsed, (per_account - 1) * gap_s + latency_s


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 2_000 if quick else 10_000
    workers, bares, minimals = no_latency(n, rounds=2 if quick else 5)
    rate, floor, minimal = (statistics.median(x) for x in (workers, bares, minimals))
    per_round = [b / w for w, b in zip(workers, bares, strict=True)]
    elapsed, minimum = paced(
        accounts=20 if quick else 50, per_account=3 if quick else 5, gap_s=1.0, latency_s=0.2
    )
    return [
        {
            "name": "dispatch_sqlite_no_latency",
            "value": round(rate),
            "unit": f"deliveries/s (median of {len(workers)}, {n} deliveries each)",
            "baseline": "bare loop: the worker's SQL and commits through sqlite3, no worker",
            "baseline_value": round(floor),
            "ratio": round(floor / rate, 2),
        },
        {
            "name": "dispatch_sqlite_no_latency_vs_minimal_loop",
            "value": round(rate),
            "unit": "deliveries/s",
            "baseline": "minimal loop: simpler claim, no attempt rows (less work than the worker)",
            "baseline_value": round(minimal),
            "ratio": round(minimal / rate, 2),
        },
        {
            "name": "dispatch_sqlite_no_latency_round_ratio",
            "value": round(statistics.median(per_round), 2),
            "unit": "median of the per-round ratios bare / worker",
            "rounds": [
                [round(x) for x in one] for one in zip(workers, bares, minimals, strict=True)
            ],
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
