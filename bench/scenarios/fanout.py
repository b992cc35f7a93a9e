"""Fan-out of one central directive to 5,000 units × 4 channel accounts, as one transaction.

Compares the whole `DeliveryService.route_article` (load the tree and accounts, route, plan
times and approval, insert posts and deliveries in pages of 1,000 with ON CONFLICT DO NOTHING,
audit event) with a raw bulk insert of the same rows (plain executemany, nothing else).
Runs on SQLite, and on PostgreSQL too when DATABASE_URL_TEST is set.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import publisher.store.tables  # noqa: F401  (registers the tables)
from publisher.domain import ChannelAccount, Platform, Unit
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ARTICLE, POST, D
from publisher.store.engine import make_engine, normalise_url
from publisher.store.sql import SqlRepository

DESCRIPTION = "fan-out of one directive to 5,000 units × 4 channels vs a raw bulk insert"
PLATFORMS = (Platform.FACEBOOK, Platform.ZALO, Platform.TELEGRAM, Platform.VIBER)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@contextmanager
def database(kind: str) -> Iterator[sa.Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
            SQLModel.metadata.create_all(engine)
            yield engine
            engine.dispose()
        return
    url = normalise_url(os.environ["DATABASE_URL_TEST"])
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(engine: sa.Engine, units: int) -> tuple[SqlRepository, int]:
    repo = SqlRepository(engine)
    tree = [Unit("CP", "Central", "central")]
    provinces = 34
    tree += [Unit(f"P{p:02d}", f"P{p}", "province", "CP") for p in range(provinces)]
    tree += [
        Unit(f"C{c:05d}", f"C{c}", "commune", f"P{c % provinces:02d}")
        for c in range(units - provinces)
    ]
    repo.upsert_units(tree)
    repo.upsert_accounts(
        ChannelAccount(f"{u.code}.{p.value}", u.code, p, u.code) for u in tree for p in PLATFORMS
    )
    with engine.begin() as conn:
        article_id = conn.execute(
            sa.insert(ARTICLE)
            .values(
                guid="d",
                url="u",
                canonical_url="u",
                content_hash="h",
                title="Chỉ đạo",
                published_at=NOW,
                images=[],
                kind="directive",
                unit_code="CP",
                created_at=NOW,
            )
            .returning(ARTICLE.c.id)
        ).scalar_one()
    return repo, article_id


def raw_rows(units: list[str], article_id: int) -> tuple[list[dict[str, Any]], Any]:
    posts = [
        {
            "article_id": article_id,
            "unit_code": code,
            "state": "approved",
            "priority": 0,
            "approvals": [],
            "lead_in": "",
            "created_at": NOW,
            "updated_at": NOW,
        }
        for code in units
    ]

    def deliveries(ids: dict[str, int]) -> list[dict[str, Any]]:
        return [
            {
                "post_id": ids[code],
                "article_id": article_id,
                "unit_code": code,
                "account_id": f"{code}.{p.value}",
                "platform": p.value,
                "state": "pending",
                "due_at": NOW,
                "priority": 0,
                "attempt": 0,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for code in units
            for p in PLATFORMS
        ]

    return posts, deliveries


def measure(kind: str, units: int) -> list[dict[str, Any]]:
    with database(kind) as engine:
        repo, article_id = seed(engine, units)
        service = DeliveryService(
            engine,
            repo,
            schedule_rules=ScheduleFile(default={"quiet_hours": []}),
            clock=lambda: NOW,
        )
        started = time.perf_counter()
        posts, deliveries = service.route_article(article_id)
        fanout_s = time.perf_counter() - started
        codes = [u.code for u in repo.list_units()]
    with database(kind) as engine:
        _, article_id = seed(engine, units)
        post_rows, delivery_rows = raw_rows(codes, article_id)
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.insert(POST), post_rows)
            ids = dict(conn.execute(sa.select(POST.c.unit_code, POST.c.id)).all())
            conn.execute(sa.insert(D), delivery_rows(ids))
        raw_s = time.perf_counter() - started
    rows = posts + deliveries
    return [
        {"name": f"fanout_{kind}_rows", "value": rows, "unit": "rows"},
        {
            "name": f"fanout_{kind}_seconds",
            "value": round(fanout_s, 3),
            "unit": "s",
            "baseline": "raw bulk insert of the same rows",
            "baseline_value": round(raw_s, 3),
            "ratio": round(fanout_s / raw_s, 2),
        },
        {"name": f"fanout_{kind}_rows_per_s", "value": round(rows / fanout_s), "unit": "rows/s"},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    units = 500 if quick else 5_000
    figures = measure("sqlite", units)
    if os.environ.get("DATABASE_URL_TEST"):
        figures += measure("postgresql", units)
    return figures
