"""Archiving finished deliveries changes no report and no history view, loses nothing and
duplicates nothing when killed between batches — on SQLite and on PostgreSQL.

Each test builds its own world (archiving writes), on the backend of the `backend` param.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pg import fresh_schema, postgres_url, schema_url
from world import DIRECTIVE, NOW, WORKER_NOW, World, build_world

from publisher import audit
from publisher.domain import FINAL_DELIVERY_STATES, VIETNAM_TZ, DeliveryState
from publisher.reports import load_coverage, load_unit_record
from publisher.store.archive import (
    ATTEMPT,
    ATTEMPT_ARCHIVE,
    DELIVERY,
    DELIVERY_ARCHIVE,
    ArchiveError,
    archive_finished,
)
from publisher.store.sql import SqlRepository
from publisher.views import QueueFilter

REPORT_NOW = WORKER_NOW + timedelta(hours=1)
ARCHIVE_NOW = WORKER_NOW + timedelta(days=400)  # every finished row is older than a year
FINAL = {s.value for s in FINAL_DELIVERY_STATES}


@dataclass
class Built:
    world: World
    url: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Built]:
    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as env:
        if request.param == "postgres":
            url = postgres_url()
            with fresh_schema(url) as (engine, schema):
                engine.dispose()
                env.setenv("DATABASE_URL", schema_url(url, schema))
                world = build_world(home)
                yield Built(world, schema_url(url, schema))
        else:
            env.delenv("DATABASE_URL", raising=False)
            world = build_world(home)
            yield Built(world, str(world.engine.url))
        world.engine.dispose()
        world.service.store.engine.dispose()


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def snapshot(world: World) -> dict[str, Any]:
    """Every report and history view that must not change when rows move to the archive."""
    engine, views = world.engine, world.views
    seen: dict[str, Any] = {}
    units = [u.code for u in world.config.units]
    for title, article_id in sorted(world.article_ids.items()):
        seen[f"coverage {title}"] = load_coverage(engine, REPORT_NOW, article_id).to_json()
        for unit in ("CP", "01", "79", "22"):
            seen[f"coverage {title} {unit}"] = load_coverage(
                engine, REPORT_NOW, article_id, subtree_of=unit
            ).to_json()
    for unit in units:
        seen[f"record {unit}"] = load_unit_record(
            engine, unit, NOW - timedelta(days=7), REPORT_NOW, REPORT_NOW
        ).to_json()
    for user in world.config.users:
        name = user.username
        seen[f"queue {name}"] = views.queue(user, QueueFilter(), 0, 1000)
        seen[f"queue zalo {name}"] = views.queue(user, QueueFilter(channel="zalo"), 0, 1000)
        for day in range(-1, 3):
            wanted = QueueFilter(day=(NOW + timedelta(days=day)).astimezone(VIETNAM_TZ).date())
            seen[f"queue day {day} {name}"] = views.queue(user, wanted, 0, 1000)
        seen[f"counts {name}"] = views.queue_counts(user)
        seen[f"calendar {name}"] = views.calendar(
            user, NOW - timedelta(days=2), NOW + timedelta(days=5)
        )
        for item in seen[f"queue {name}"].items:
            seen[f"post {name} {item.post_id}"] = views.post(user, item.post_id)
        for title, article_id in world.article_ids.items():
            seen[f"tui coverage {name} {title}"] = views.coverage(
                user, article_id, REPORT_NOW
            ).to_json()
        events = views.audit(user, "", 0, 10_000).items
        seen[f"audit {name}"] = [e for e in events if e.action != "archive"]
    return seen


def test_reports_and_history_are_the_same_after_archiving(built: Built) -> None:
    world = built.world
    deliveries_before = _rows(world.engine, DELIVERY)
    attempts_before = _rows(world.engine, ATTEMPT)
    finals = [d for d in deliveries_before if d["state"] in FINAL]
    assert {d["state"] for d in finals} >= {"sent", "failed", "cancelled"}  # the world has them
    assert attempts_before
    before = snapshot(world)

    status_before = SqlRepository(world.engine).status_counts().to_json()
    archived_before = status_before["deliveries_archived"]
    assert isinstance(archived_before, dict)
    assert all(n == 0 for n in archived_before.values())

    result = archive_finished(world.engine, ARCHIVE_NOW, timedelta(days=30), batch=3)

    assert result.deliveries == len(finals)
    # `status`: the hot figures lose what moved, the archived ones gain exactly that, and
    # hot + archived is every delivery, state by state.
    status = SqlRepository(world.engine).status_counts().to_json()
    hot_now, archived_now = status["deliveries"], status["deliveries_archived"]
    assert isinstance(hot_now, dict)
    assert isinstance(archived_now, dict)
    assert isinstance(status_before["deliveries"], dict)
    assert set(archived_now) == {s.value for s in DeliveryState}
    assert {s: hot_now[s] + archived_now[s] for s in hot_now} == status_before["deliveries"]
    assert archived_now == {
        s.value: sum(d["state"] == s.value for d in finals) for s in DeliveryState
    }
    assert sum(archived_now.values()) == len(finals) > 0
    hot = _rows(world.engine, DELIVERY)
    archived = _rows(world.engine, DELIVERY_ARCHIVE)
    assert {d["state"] for d in hot}.isdisjoint(FINAL)
    assert {d["id"] for d in archived} == {d["id"] for d in finals}
    # Same rows, same values: only `archived_at` is new.
    assert [{k: v for k, v in d.items() if k != "archived_at"} for d in archived] == finals
    assert all(d["archived_at"] == ARCHIVE_NOW for d in archived)
    moved_attempts = _rows(world.engine, ATTEMPT_ARCHIVE)
    assert (
        sorted(_rows(world.engine, ATTEMPT) + moved_attempts, key=lambda a: a["id"])
        == attempts_before
    )
    assert result.attempts == len(moved_attempts)
    assert {a["delivery_id"] for a in moved_attempts} <= {d["id"] for d in finals}

    after = snapshot(world)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    verdict = audit.verify_database(world.engine)
    assert verdict.ok, verdict.reason


def test_live_states_are_never_archived_and_a_second_run_moves_nothing(built: Built) -> None:
    world = built.world
    live = [d for d in _rows(world.engine, DELIVERY) if d["state"] not in FINAL]
    assert {DeliveryState.UNKNOWN.value, DeliveryState.PENDING.value} <= {d["state"] for d in live}
    dry = archive_finished(world.engine, ARCHIVE_NOW, timedelta(0), dry_run=True)
    assert dry.dry_run
    assert dry.deliveries > 0
    assert len(_rows(world.engine, DELIVERY_ARCHIVE)) == 0  # a dry run moves nothing
    first = archive_finished(world.engine, ARCHIVE_NOW, timedelta(0))
    assert (first.deliveries, first.attempts) == (dry.deliveries, dry.attempts)
    again = archive_finished(world.engine, ARCHIVE_NOW, timedelta(0))
    assert (again.deliveries, again.attempts, again.batches) == (0, 0, 0)
    assert _rows(world.engine, DELIVERY) == live


def test_only_rows_older_than_the_horizon_move(built: Built) -> None:
    world = built.world
    # The world's rows were finished at WORKER_NOW at the latest: 10 days later, a 30-day
    # horizon moves nothing; 40 days later everything finished moves.
    assert archive_finished(world.engine, WORKER_NOW + timedelta(days=10)).deliveries == 0
    assert archive_finished(world.engine, WORKER_NOW + timedelta(days=40)).deliveries > 0
    with pytest.raises(ArchiveError):
        archive_finished(world.engine, ARCHIVE_NOW, timedelta(days=-1))


KILLER = """
import os, signal, sys
from datetime import datetime, timedelta
from publisher.store.archive import archive_finished
from publisher.store.engine import make_engine

def die(batch):
    if batch == 2:
        os.kill(os.getpid(), signal.SIGKILL)

engine = make_engine(sys.argv[1])
archive_finished(
    engine, datetime.fromisoformat(sys.argv[2]), timedelta(0), batch=2, between_batches=die
)
"""


def test_a_kill_between_batches_loses_nothing_and_duplicates_nothing(built: Built) -> None:
    world = built.world
    deliveries = _rows(world.engine, DELIVERY)
    attempts = _rows(world.engine, ATTEMPT)
    finals = [d for d in deliveries if d["state"] in FINAL]
    assert len(finals) > 4  # the kill lands with rows left to move
    before = snapshot(world)

    done = subprocess.run(
        [sys.executable, "-c", KILLER, built.url, ARCHIVE_NOW.isoformat()],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr

    hot, archived = _rows(world.engine, DELIVERY), _rows(world.engine, DELIVERY_ARCHIVE)
    assert len(archived) == 4  # two committed batches of two
    assert {d["id"] for d in hot}.isdisjoint({d["id"] for d in archived})
    assert sorted(d["id"] for d in hot + archived) == [d["id"] for d in deliveries]
    all_attempts = _rows(world.engine, ATTEMPT) + _rows(world.engine, ATTEMPT_ARCHIVE)
    assert sorted(a["id"] for a in all_attempts) == [a["id"] for a in attempts]
    assert snapshot(world) == before  # half-archived: still the same reports

    rest = archive_finished(world.engine, ARCHIVE_NOW, timedelta(0), batch=2)
    assert rest.deliveries == len(finals) - 4
    assert snapshot(world) == before
    with world.engine.connect() as conn:
        events = conn.execute(
            sa.select(sa.func.count()).where(audit.AUDIT.c.action == "archive")
        ).scalar_one()
    assert events == 2 + rest.batches  # one audit event per committed batch
    assert audit.verify_database(world.engine).ok


def test_a_plan_does_not_resend_an_archived_channel(built: Built) -> None:
    world = built.world
    archive_finished(world.engine, ARCHIVE_NOW, timedelta(0))
    post_id = world.post_id(DIRECTIVE, "CP")
    with world.engine.connect() as conn:
        archived = conn.execute(
            sa.select(DELIVERY_ARCHIVE.c.account_id).where(DELIVERY_ARCHIVE.c.post_id == post_id)
        ).scalars()
        assert "CP.facebook" in set(archived)  # it was sent, then archived
    from publisher.domain import Platform
    from publisher.plan_import import PlanRow

    row = PlanRow(
        line=2,
        article_id=world.article_ids[DIRECTIVE],
        unit_code="CP",
        platforms=(Platform.FACEBOOK,),
        at=NOW + timedelta(days=1),
        lead_in="",
    )
    world.service.apply_plan([row], "admin")
    with world.engine.connect() as conn:
        again = conn.execute(
            sa.select(sa.func.count()).where(
                DELIVERY.c.post_id == post_id, DELIVERY.c.account_id == "CP.facebook"
            )
        ).scalar_one()
    assert again == 0


def test_publisher_run_archives_on_its_schedule(built: Built) -> None:
    import asyncio

    from publisher.archive_schedule import archive_loop
    from publisher.settings.workflow import ArchiveSchedule

    world = built.world
    assert world.config.schedule.archive.every_hours > 0  # the sample turns it on
    finals = [d for d in _rows(world.engine, DELIVERY) if d["state"] in FINAL]
    settings = ArchiveSchedule(every_hours=1, older_than_days=30, batch=2, max_batches=1)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(archive_loop(world.engine, settings, lambda: ARCHIVE_NOW, stop))
        for _ in range(600):
            if len(_rows(world.engine, DELIVERY_ARCHIVE)) == len(finals):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(run())
    assert len(_rows(world.engine, DELIVERY_ARCHIVE)) == len(finals)
    off = ArchiveSchedule(every_hours=0)
    asyncio.run(archive_loop(world.engine, off, lambda: ARCHIVE_NOW, asyncio.Event()))
