"""One million deliveries (issue 13): coverage reports, the queue, the claim, and archiving.

Over the cached ~1,000,000-delivery SQLite database of `bench/million_db.py` (built on first
use, then reused): `publisher report coverage` for the newest directive (as the CLI makes it:
load, compute, JSON text), for a province's subtree and for a unit's 30-day record; the TUI's
coverage of a directive for the root user; `publisher report directives` (every directive of the
default 30 days, and of the whole 90 days) for the root admin and for a province's user
(duyet.hanoi, 01's subtree); the admin's first queue page with its counts; the worker's claim
query. Then on a scratch copy: archive the 95% of finished rows older than
4 days (`publisher archive` in-process: rows/s), and the same queue page and claim again.
Each figure is the median of several rounds; a figure with a target carries `target` (same
unit) and `meets_target`. `--quick` uses ~100,000 deliveries.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.million_db import NOW, fresh_copy, million_db
from bench.scenarios.tui import drive_rounds, figures_of, filter_figures
from publisher import report_output
from publisher.cli.reports_cmd import report_period
from publisher.report_directives import load_overview
from publisher.reports import load_coverage, load_unit_record, newest_directive_id
from publisher.store.archive import archive_finished
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.sql import SqlRepository
from publisher.views import QueueFilter, Views

DESCRIPTION = "1,000,000 deliveries: coverage, queue, claim; archive 95% (SQLite, cached DB)"

REPORT_TARGET_MS = 1000.0
ARCHIVE_OLDER_THAN_DAYS = 4  # of 90 days of history: ~95% of the rows are older and final
OPEN_TARGET_MS = 1000.0


def _median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def _figure(name: str, value: float, unit: str, target: float | None = None) -> dict[str, Any]:
    figure: dict[str, Any] = {"name": name, "value": value, "unit": unit}
    if target is not None:
        figure["target"] = target
        figure["meets_target"] = value <= target
    return figure


def _claim_ms(engine: sa.Engine, rounds: int) -> float:
    """The worker's claim of 50 due deliveries (each round claims the next 50)."""
    store = SqlDeliveryStore(engine)
    now = NOW
    return _median_ms(lambda: store.claim("bench", now, limit=50, lease_s=60), rounds)


def _queue_open_ms(engine: sa.Engine, rounds: int) -> float:
    views = Views(engine)
    admin = SqlRepository(engine).get_user("admin")
    assert admin is not None
    return _median_ms(lambda: views.queue_and_counts(admin, QueueFilter(), 0, 50), rounds)


def _cli_coverage_ms(url: str, rounds: int) -> float:
    """`publisher report coverage --format json` as a process: start-up included."""
    import os

    env = {**os.environ, "DATABASE_URL": url, "PUBLISHER_HOME": tempfile.gettempdir()}
    command = [
        sys.executable,
        "-c",
        "from publisher.cli import main; main()",
        "report",
        "coverage",
        "--format",
        "json",
    ]
    return _median_ms(
        lambda: subprocess.run(command, env=env, capture_output=True, check=True), rounds
    )


def _directives_figures(
    engine: sa.Engine, rounds: int, prefix: str = "million"
) -> list[dict[str, Any]]:
    """`publisher report directives` as the CLI makes it (load, compute, JSON text): the
    default period (the 30 local days up to NOW) and the whole history, for the root admin
    and for a province's user."""
    repository = SqlRepository(engine)
    default = report_period(None, None, NOW)
    whole = report_period("2026-08-01", None, NOW)  # before the first article (NOW − 90 d)
    figures = []
    for username, label in (("admin", "root"), ("duyet.hanoi", "province_01")):
        user = repository.get_user(username)
        assert user is not None
        for (since, until), period in ((default, "30d"), (whole, "all")):
            overview = load_overview(engine, since, until, NOW, user)
            figures.append(
                _figure(
                    f"{prefix}.report_directives_{period}_{label}_deliveries",
                    overview.total.planned,
                    "deliveries",
                )
            )
            figures.append(
                _figure(
                    f"{prefix}.report_directives_{period}_{label}",
                    _median_ms(
                        lambda s=since, u=until, who=user: report_output.to_json_text(
                            load_overview(engine, s, u, NOW, who)
                        ),
                        rounds,
                    ),
                    "ms",
                    REPORT_TARGET_MS,
                )
            )
    return figures


def run(quick: bool = False) -> list[dict[str, Any]]:
    db = million_db(100_000 if quick else 1_000_000)
    rounds = 3 if quick else 5
    figures = [
        _figure("million.deliveries", db.deliveries, "deliveries"),
        _figure("million.attempts", db.attempts, "rows"),
        _figure("million.posts", db.posts, "posts"),
        _figure("million.units", db.units, "units"),
        _figure("million.accounts", db.accounts, "accounts"),
        _figure("million.articles", db.articles, "articles"),
    ]
    if db.built_s is not None:
        figures.append(_figure("million.build", round(db.built_s, 1), "s"))
    engine = make_engine(db.url)
    views = Views(engine)
    admin = SqlRepository(engine).get_user("admin")
    assert admin is not None
    from sqlmodel import Session

    with Session(engine) as session:
        directive = newest_directive_id(session)
    assert directive is not None
    coverage = load_coverage(engine, NOW)
    figures.append(_figure("million.directive_deliveries", coverage.total.targeted, "deliveries"))
    figures += [
        _figure(
            "million.report_coverage_directive",
            _median_ms(lambda: report_output.to_json_text(load_coverage(engine, NOW)), rounds),
            "ms",
            REPORT_TARGET_MS,
        ),
        _figure(
            "million.report_coverage_subtree_01",
            _median_ms(
                lambda: report_output.to_json_text(load_coverage(engine, NOW, subtree_of="01")),
                rounds,
            ),
            "ms",
            REPORT_TARGET_MS,
        ),
        _figure(
            "million.report_unit_record_01_30d",
            _median_ms(
                lambda: report_output.to_json_text(
                    load_unit_record(engine, "01", NOW - timedelta(days=30), NOW, NOW)
                ),
                rounds,
            ),
            "ms",
            REPORT_TARGET_MS,
        ),
        _figure(
            "million.tui_coverage_directive",
            _median_ms(lambda: views.coverage(admin, directive, NOW), rounds),
            "ms",
            REPORT_TARGET_MS,
        ),
        *_directives_figures(engine, rounds),
        # The queue filters as the screen reads them after a filter change (bench tui too).
        *filter_figures(engine, "million", rounds),
        _figure("million.cli_report_coverage_process", _cli_coverage_ms(db.url, 3), "ms"),
        _figure(
            "million.queue_first_page_hot",
            _queue_open_ms(engine, rounds),
            "ms",
            OPEN_TARGET_MS,
        ),
    ]
    engine.dispose()

    with tempfile.TemporaryDirectory(dir=db.path.parent) as scratch:
        url = f"sqlite:///{fresh_copy(db, Path(scratch))}"
        engine = make_engine(url)
        repository = SqlRepository(engine)
        figures.append(_figure("million.claim_50_hot", _claim_ms(engine, rounds), "ms"))
        figures += figures_of("million.tui_hot", drive_rounds(engine, repository, 3), True)
        result = archive_finished(engine, NOW, timedelta(days=ARCHIVE_OLDER_THAN_DAYS))
        moved = result.deliveries + result.attempts
        figures += [
            _figure("million.archived_deliveries", result.deliveries, "deliveries"),
            _figure(
                "million.archived_share",
                round(100.0 * result.deliveries / db.deliveries, 1),
                "%",
            ),
            _figure("million.archive_seconds", round(result.seconds, 1), "s"),
            _figure("million.archive_rows_per_s", round(moved / result.seconds), "rows/s"),
            _figure(
                "million.archive_deliveries_per_s",
                round(result.deliveries / result.seconds),
                "deliveries/s",
            ),
            _figure("million.claim_50_archived", _claim_ms(engine, rounds), "ms"),
            _figure(
                "million.queue_first_page_archived",
                _queue_open_ms(engine, rounds),
                "ms",
                OPEN_TARGET_MS,
            ),
            _figure(
                "million.report_coverage_directive_archived",
                _median_ms(lambda: report_output.to_json_text(load_coverage(engine, NOW)), rounds),
                "ms",
                REPORT_TARGET_MS,
            ),
            *(
                {**f, "name": f["name"].replace("report_directives", "report_directives_archived")}
                for f in _directives_figures(engine, rounds)
            ),
        ]
        figures += figures_of("million.tui_archived", drive_rounds(engine, repository, 3), True)
        old = load_coverage(engine, NOW, article_id=1).to_json()
        figures.append(_figure("million.oldest_article_targeted", old["total"]["targeted"], "n"))
        engine.dispose()
    return figures
