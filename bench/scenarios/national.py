"""Fan-out of one central directive to the whole country: the 2025 division (the root, 34
provinces, every commune, from the pinned `vietnam-provinces` package, as `publisher units
import` writes it) × 5 channel accounts each, as one transaction.

Compares the whole `DeliveryService.route_article` (load the tree and accounts, route, plan
times and approval, insert posts and deliveries with ON CONFLICT DO NOTHING, mark the article
routed, audit event) with a raw bulk insert of the same rows (plain executemany, nothing
else). The two sides alternate, each on its own identically seeded database, one new article
per round; the figures are medians. SQLite, and PostgreSQL when DATABASE_URL_TEST is set.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench.scenarios.fanout import database
from publisher.domain import Platform, Unit
from publisher.national import load_division
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ACCOUNT, ARTICLE, POST, UNIT, D
from publisher.store.repository import unit_path

DESCRIPTION = "directive to every unit of the country × 5 channels vs a raw bulk insert (medians)"
PLATFORMS = (Platform.FACEBOOK, Platform.ZALO, Platform.TELEGRAM, Platform.VIBER, Platform.X)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def national_tree(quick: bool) -> list[Unit]:
    division = load_division()
    root = Unit("CP", "Cổng Thông tin điện tử Chính phủ", "central", None, "internal")
    provinces = [
        Unit(p.code, p.name, p.kind, "CP", p.code_list, p.short_name) for p in division.provinces
    ]
    communes = list(division.communes)
    if quick:
        communes = communes[::10]
    return [root, *provinces, *communes]


def seed(engine: sa.Engine, tree: list[Unit]) -> None:
    """The tree and its accounts with plain Core inserts (seeding is not what is measured)."""
    known = {u.code: u for u in tree}
    unit_rows = []
    for u in tree:
        path = unit_path(u, known)
        unit_rows.append(
            {
                "code": u.code,
                "name": u.name,
                "kind": u.kind,
                "parent_code": u.parent_code,
                "path": path,
                "depth": path.count("/") - 2,
                "code_list": u.code_list,
                "short_name": u.short_name,
                "active": True,
                "merged_into": None,
            }
        )
    account_rows = [
        {
            "id": f"{u.code}.{p.value}",
            "unit_code": u.code,
            "platform": p.value,
            "external_id": f"{u.code}-{p.value}",
            "display_name": "",
            "credentials_ref": "store:",
            "status": "active",
            "updated_at": NOW,
        }
        for u in tree
        for p in PLATFORMS
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(UNIT), sorted(unit_rows, key=lambda r: r["depth"]))
        conn.execute(sa.insert(ACCOUNT), account_rows)


def new_article(engine: sa.Engine, n: int) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(ARTICLE)
                .values(
                    guid=f"d{n}",
                    url=f"u{n}",
                    canonical_url=f"u{n}",
                    content_hash=f"h{n}",
                    title="Chỉ đạo",
                    published_at=NOW,
                    images=[],
                    kind="directive",
                    unit_code="CP",
                    created_at=NOW,
                )
                .returning(ARTICLE.c.id)
            ).scalar_one()
        )


def raw_insert(engine: sa.Engine, codes: list[str], article_id: int) -> int:
    """The floor: the same posts and deliveries with two plain executemany inserts."""
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
        for code in codes
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(POST), posts)
        ids = dict(
            conn.execute(
                sa.select(POST.c.unit_code, POST.c.id).where(POST.c.article_id == article_id)
            ).all()
        )
        deliveries = [
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
            for code in codes
            for p in PLATFORMS
        ]
        conn.execute(sa.insert(D), deliveries)
    return len(posts) + len(deliveries)


def measure(kind: str, quick: bool) -> list[dict[str, Any]]:
    tree = national_tree(quick)
    rounds = 3 if quick else 7
    codes = [u.code for u in tree]  # the default cascade includes the root
    fan_times: list[float] = []
    raw_times: list[float] = []
    with database(kind) as fan_engine, database(kind) as raw_engine:
        seed(fan_engine, tree)
        seed(raw_engine, tree)
        service = DeliveryService(
            fan_engine,
            _NoDirectory(),
            schedule_rules=ScheduleFile(default={"quiet_hours": []}),
            clock=lambda: NOW,
        )
        rows = 0
        for n in range(rounds):
            article_id = new_article(fan_engine, n)
            started = time.perf_counter()
            posts, deliveries = service.route_article(article_id)
            fan_times.append(time.perf_counter() - started)
            again = service.route_article(article_id)  # routing twice adds nothing
            assert again == (0, 0), again
            rows = posts + deliveries
            raw_article = new_article(raw_engine, n)
            started = time.perf_counter()
            raw_rows = raw_insert(raw_engine, codes, raw_article)
            raw_times.append(time.perf_counter() - started)
            assert raw_rows == rows, (raw_rows, rows)
    fan, raw = statistics.median(fan_times), statistics.median(raw_times)
    return [
        {"name": f"national_{kind}_units", "value": len(tree), "unit": "units"},
        {"name": f"national_{kind}_rows", "value": rows, "unit": "rows"},
        {
            "name": f"national_{kind}_fanout_seconds",
            "value": round(fan, 3),
            "unit": "s",
            "baseline": "raw bulk insert of the same rows",
            "baseline_value": round(raw, 3),
            "ratio": round(fan / raw, 2),
            "rounds": rounds,
            # Each round's fan-out over the raw insert just after it: steadier than the
            # ratio of medians when the machine's load drifts.
            "paired_ratio_median": round(
                statistics.median(f / r for f, r in zip(fan_times, raw_times, strict=True)), 2
            ),
            "fanout_all": [round(t, 3) for t in fan_times],
            "raw_all": [round(t, 3) for t in raw_times],
        },
        {"name": f"national_{kind}_rows_per_s", "value": round(rows / fan), "unit": "rows/s"},
    ]


class _NoDirectory:
    """route_article reads units and accounts itself (load_directory); nothing else here
    needs the directory."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the fan-out path used the directory's {name}")


def run(quick: bool = False) -> list[dict[str, Any]]:
    figures = measure("sqlite", quick)
    if os.environ.get("DATABASE_URL_TEST"):
        figures += measure("postgresql", quick)
    else:
        figures.append(
            {
                "name": "national_postgresql",
                "value": 0,
                "unit": "skipped",
                "reason": "no PostgreSQL: set DATABASE_URL_TEST (scripts/pg-throwaway start DIR)",
            }
        )
    return figures
