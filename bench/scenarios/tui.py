"""Editors' TUI on a large queue: open the queue and answer keys with 100,000 deliveries,
then with 1,000,000 (the cached database of bench/million_db.py; skipped with --quick).

Builds a SQLite database from the sample configuration (64 units, 207 accounts), fills it with
posts and deliveries (~100,000 deliveries; quick: ~10,000), then drives the real app headless
(Textual `run_test`) over the real backend (views + DeliveryService): time until the first page
of the admin's queue is on screen, the time a cursor key takes to answer, and the time to turn
a page (which asks the database again).

Over the million, each queue filter too (kind, channel, state, a search): the time of what the
queue screen asks when a filter changes (`QueueScreen.load_page`: the first page with its total,
and the counts per state, one call of `Views.queue_and_counts`), median of rounds — on SQLite,
and on PostgreSQL when DATABASE_URL_TEST names a server (the same rows copied as
bench/scenarios/million_pg.py does, into a schema dropped afterwards).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from publisher.domain import PostState
from publisher.settings import load_config
from publisher.store.engine import make_engine, upgrade
from publisher.store.sql import SqlRepository
from publisher.store.tables import ArticleRow, DeliveryRow, PostRow
from publisher.views import QueueFilter, Views
from publisher.workspace import SAMPLE_CONFIG, sync_directory

DESCRIPTION = "TUI: open the queue and answer keys over ~100,000 and ~1,000,000 deliveries"
OPEN_TARGET_MS = 1000.0
KEY_TARGET_MS = 100.0
PAGE_SIZE = 50  # TuiSettings.page_size's default

# name → the filter an editor picks (the admin, who sees the whole network)
FILTERS = {
    "none": QueueFilter(),
    "kind_directive": QueueFilter(kind="directive"),
    "kind_article": QueueFilter(kind="article"),
    "channel_telegram": QueueFilter(channel="telegram"),  # ~1 post in 6
    "channel_facebook": QueueFilter(channel="facebook"),  # every post: the worst case
    "state_waiting": QueueFilter(state=PostState.AWAITING_APPROVAL.value),
    "state_approved": QueueFilter(state=PostState.APPROVED.value),
    "search_title": QueueFilter(search="số 42"),
    "search_unit": QueueFilter(search="Hà Nội"),
    "search_nothing": QueueFilter(search="không có đâu"),
}


def _fill(
    engine: sa.Engine, articles: int, accounts_by_unit: dict[str, list[tuple[str, str]]]
) -> int:
    now = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
    art, post, dlv = ArticleRow.__table__, PostRow.__table__, DeliveryRow.__table__  # type: ignore[attr-defined]
    units = sorted(accounts_by_unit)
    with engine.begin() as conn:
        conn.execute(
            art.insert(),
            [
                {
                    "id": a,
                    "guid": f"g{a}",
                    "url": f"https://baochinhphu.vn/{a}.htm",
                    "canonical_url": f"https://baochinhphu.vn/{a}.htm",
                    "content_hash": f"{a:064d}",
                    "title": f"Thông tin chỉ đạo số {a} về công tác điều hành",
                    "published_at": now - timedelta(minutes=a),
                    "images": [],
                    "kind": "directive" if a % 4 == 0 else "article",
                    "routed": True,
                    "created_at": now - timedelta(minutes=a),
                }
                for a in range(1, articles + 1)
            ],
        )
        posts, rows = [], []
        post_id = 0
        for a in range(1, articles + 1):
            for unit in units:
                post_id += 1
                waiting = (a + post_id) % 3 == 0
                posts.append(
                    {
                        "id": post_id,
                        "article_id": a,
                        "unit_code": unit,
                        "state": "awaiting_approval" if waiting else "approved",
                        "approvals": [],
                        "scheduled_at": now + timedelta(minutes=a),
                        "created_at": now - timedelta(minutes=a),
                        "updated_at": now,
                    }
                )
                for account_id, platform in accounts_by_unit[unit]:
                    rows.append(
                        {
                            "post_id": post_id,
                            "article_id": a,
                            "unit_code": unit,
                            "account_id": account_id,
                            "platform": platform,
                            "state": "awaiting_approval" if waiting else "pending",
                            "due_at": now + timedelta(minutes=a),
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
        conn.execute(post.insert(), posts)
        for start in range(0, len(rows), 20000):
            conn.execute(dlv.insert(), rows[start : start + 20000])
    return len(rows)


async def _drive(engine: sa.Engine, repository: SqlRepository) -> dict[str, Any]:
    import httpx

    from channels.registry import load_channels
    from publisher.service import DeliveryService
    from tui.app import TuiSettings, make_app
    from tui.backend import CoreBackend
    from tui.screens.queue import QueueScreen

    user = repository.get_user("admin")
    assert user is not None
    async with httpx.AsyncClient() as http:
        backend = CoreBackend(engine, DeliveryService(engine, repository), load_channels(http))
        app = make_app(TuiSettings(user=user, poll_seconds=0), backend)
        started = time.perf_counter()
        async with app.run_test(size=(120, 36)) as pilot:
            deadline = time.perf_counter() + 60
            while not (isinstance(app.screen, QueueScreen) and app.screen.page.items):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the queue did not open in 60 s (screen {app.screen!r})")
                await asyncio.sleep(0.005)
            await pilot.pause()
            opened = time.perf_counter() - started
            total = app.screen.page.total
            keys = []
            for _ in range(20):
                t = time.perf_counter()
                await pilot.press("down")
                keys.append(time.perf_counter() - t)
            pages = []
            for _ in range(5):
                before = app.screen.first_row
                t = time.perf_counter()
                await pilot.press("pagedown")
                deadline = time.perf_counter() + 30
                while (
                    app.screen.first_row == before or app.screen.page.offset != app.screen.first_row
                ):
                    if time.perf_counter() > deadline:
                        raise RuntimeError("a page did not load in 30 s")
                    await asyncio.sleep(0.002)
                await pilot.pause()
                pages.append(time.perf_counter() - t)
    return {"open": opened, "keys": keys, "pages": pages, "total": total}


def figures_of(prefix: str, measured: dict[str, Any], targets: bool) -> list[dict[str, Any]]:
    def figure(name: str, value: float, target: float | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {"name": f"{prefix}.{name}", "value": value, "unit": "ms"}
        if targets and target is not None:
            found |= {"target": target, "meets_target": value <= target}
        return found

    return [
        {"name": f"{prefix}.queue_posts", "value": measured["total"], "unit": "posts"},
        figure("open_queue", round(measured["open"] * 1000, 1), OPEN_TARGET_MS),
        figure("key_median", round(statistics.median(measured["keys"]) * 1000, 2), KEY_TARGET_MS),
        figure("key_max", round(max(measured["keys"]) * 1000, 2)),
        figure("page_median", round(statistics.median(measured["pages"]) * 1000, 1)),
    ]


def drive_rounds(engine: sa.Engine, repository: SqlRepository, rounds: int) -> dict[str, Any]:
    """`rounds` fresh app runs: the median open, and every key and page time."""
    runs = [asyncio.run(_drive(engine, repository)) for _ in range(rounds)]
    return {
        "open": statistics.median(r["open"] for r in runs),
        "keys": [k for r in runs for k in r["keys"]],
        "pages": [p for r in runs for p in r["pages"]],
        "total": runs[0]["total"],
    }


def filter_figures(engine: sa.Engine, prefix: str, rounds: int) -> list[dict[str, Any]]:
    """Each filter's first page (with its total) and the counts per state, as the queue
    screen reads them after a filter change: median of `rounds` (after one warm-up)."""
    views = Views(engine)
    user = SqlRepository(engine).get_user("admin")
    assert user is not None
    figures: list[dict[str, Any]] = []
    for name, wanted in FILTERS.items():
        times = []
        for _ in range(rounds + 1):
            started = time.perf_counter()
            page, _ = views.queue_and_counts(user, wanted, 0, PAGE_SIZE)
            times.append(time.perf_counter() - started)
        value = round(statistics.median(times[1:]) * 1000, 1)
        figures += [
            {
                "name": f"{prefix}.filter_{name}",
                "value": value,
                "unit": "ms",
                "target": KEY_TARGET_MS,
                "meets_target": value <= KEY_TARGET_MS,
            },
            {"name": f"{prefix}.filter_{name}_posts", "value": page.total, "unit": "posts"},
        ]
    return figures


def postgres_filter_figures(rounds: int) -> list[dict[str, Any]]:
    """The filters over the same million on the server of DATABASE_URL_TEST (if any)."""
    import uuid

    from bench.million_db import million_db
    from bench.scenarios.million_pg import _copy
    from publisher.store.engine import normalise_url

    url = os.environ.get("DATABASE_URL_TEST", "").strip()
    if not url:
        return [{"name": "tui.million_pg.skipped_no_DATABASE_URL_TEST", "value": 0, "unit": "n"}]
    url = normalise_url(url)
    db = million_db()
    schema = f"bench_tui_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(scoped)
        engine = make_engine(scoped)
        _copy(str(db.path), engine)
        # A live server's autovacuum has set the visibility map by now; after COPY only a
        # VACUUM does, and index-only scans (the channel filter's) need it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("post", "delivery", "delivery_archive", "article", "unit"):
                conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
        figures = filter_figures(engine, "tui.million_pg", rounds)
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return figures


def run_million(rounds: int = 3) -> list[dict[str, Any]]:
    from bench.million_db import million_db

    db = million_db()
    engine = make_engine(db.url)
    measured = drive_rounds(engine, SqlRepository(engine), rounds)
    filters = filter_figures(engine, "tui.million", 5)
    engine.dispose()
    return [
        {"name": "tui.million.deliveries", "value": db.deliveries, "unit": "deliveries"},
        *figures_of("tui.million", measured, targets=True),
        *filters,
        *postgres_filter_figures(5),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    config = load_config(SAMPLE_CONFIG)
    accounts_by_unit: dict[str, list[tuple[str, str]]] = {}
    for account in config.accounts:
        accounts_by_unit.setdefault(account.unit_code, []).append(
            (account.id, account.platform.value)
        )
    per_article = sum(len(v) for v in accounts_by_unit.values())
    articles = max(1, (10_000 if quick else 100_000) // per_article)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'tui.db'}"
        upgrade(url)
        engine = make_engine(url)
        repository = SqlRepository(engine)
        sync_directory(config, repository)
        deliveries = _fill(engine, articles, accounts_by_unit)
        measured = asyncio.run(_drive(engine, repository))
        engine.dispose()
    return [
        {"name": "tui.deliveries", "value": deliveries, "unit": "deliveries"},
        {"name": "tui.queue_posts", "value": measured["total"], "unit": "posts"},
        {"name": "tui.open_queue", "value": round(measured["open"] * 1000, 1), "unit": "ms"},
        {
            "name": "tui.key_median",
            "value": round(statistics.median(measured["keys"]) * 1000, 2),
            "unit": "ms",
        },
        {"name": "tui.key_max", "value": round(max(measured["keys"]) * 1000, 2), "unit": "ms"},
        {
            "name": "tui.page_median",
            "value": round(statistics.median(measured["pages"]) * 1000, 1),
            "unit": "ms",
        },
    ] + ([] if quick else run_million())
