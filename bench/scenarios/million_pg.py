"""One million deliveries on PostgreSQL: the figures of `million`, on the server named by
DATABASE_URL_TEST (skipped, with the reason as a figure, without one).

The rows come from the cached SQLite database of bench/million_db.py, copied with COPY into
a fresh schema (dropped afterwards: the server is shared) and vacuumed, as autovacuum would
have. Then: coverage of the newest directive, `report directives` (30 days and all, root and
a province), the admin's first queue page, each queue filter, the claim of 50; archive 95%;
the same again.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.million_db import NOW, million_db
from bench.scenarios.million import (
    ARCHIVE_OLDER_THAN_DAYS,
    OPEN_TARGET_MS,
    REPORT_TARGET_MS,
    _claim_ms,
    _directives_figures,
    _figure,
    _median_ms,
    _queue_open_ms,
)
from bench.scenarios.tui import filter_figures
from publisher import report_output
from publisher.reports import load_coverage
from publisher.store.archive import archive_finished
from publisher.store.engine import make_engine, normalise_url, upgrade

DESCRIPTION = "1,000,000 deliveries on PostgreSQL (DATABASE_URL_TEST): coverage, queue, archive"

TABLES = (
    "unit",
    "app_user",
    "role_grant",
    "channel_account",
    "source",
    "article",
    "post",
    "delivery",
    "delivery_attempt",
)


def _copy(sqlite_path: str, engine: sa.Engine) -> float:
    started = time.perf_counter()
    source = sqlite3.connect(sqlite_path)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        for table in TABLES:
            columns = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in source.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
        for table in ("article", "post", "delivery", "delivery_attempt", "role_grant"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        source.close()
    return time.perf_counter() - started


def _vacuum(engine: sa.Engine) -> None:
    """What autovacuum does on a live server: statistics, and the visibility map that
    index-only scans (the queue's counts, the reports' covering indexes) need. After a bulk
    COPY or an archive run only an explicit VACUUM sets it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("post", "delivery", "delivery_archive", "article", "unit"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def run(quick: bool = False) -> list[dict[str, Any]]:
    url = os.environ.get("DATABASE_URL_TEST", "").strip()
    if not url:
        return [_figure("million_pg.skipped_no_DATABASE_URL_TEST", 0, "n")]
    url = normalise_url(url)
    db = million_db(100_000 if quick else 1_000_000)
    rounds = 3 if quick else 5
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade(scoped)
        engine = make_engine(scoped)
        copy_s = _copy(str(db.path), engine)
        _vacuum(engine)
        figures = [
            _figure("million_pg.deliveries", db.deliveries, "deliveries"),
            _figure("million_pg.copy_seconds", round(copy_s, 1), "s"),
            _figure(
                "million_pg.report_coverage_directive",
                _median_ms(lambda: report_output.to_json_text(load_coverage(engine, NOW)), rounds),
                "ms",
                REPORT_TARGET_MS,
            ),
            _figure(
                "million_pg.queue_first_page_hot",
                _queue_open_ms(engine, rounds),
                "ms",
                OPEN_TARGET_MS,
            ),
            *_directives_figures(engine, rounds, "million_pg"),
            *filter_figures(engine, "million_pg", rounds),
            _figure("million_pg.claim_50_hot", _claim_ms(engine, rounds), "ms"),
        ]
        result = archive_finished(engine, NOW, timedelta(days=ARCHIVE_OLDER_THAN_DAYS))
        _vacuum(engine)
        figures += [
            _figure("million_pg.archived_deliveries", result.deliveries, "deliveries"),
            _figure(
                "million_pg.archive_rows_per_s",
                round((result.deliveries + result.attempts) / result.seconds),
                "rows/s",
            ),
            _figure(
                "million_pg.report_coverage_directive_archived",
                _median_ms(lambda: report_output.to_json_text(load_coverage(engine, NOW)), rounds),
                "ms",
                REPORT_TARGET_MS,
            ),
            _figure(
                "million_pg.queue_first_page_archived",
                _queue_open_ms(engine, rounds),
                "ms",
                OPEN_TARGET_MS,
            ),
            *(
                {**f, "name": f["name"].replace("report_directives", "report_directives_archived")}
                for f in _directives_figures(engine, rounds, "million_pg")
            ),
            _figure("million_pg.claim_50_archived", _claim_ms(engine, rounds), "ms"),
        ]
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return figures
