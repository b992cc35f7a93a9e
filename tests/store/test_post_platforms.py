"""post.platforms (publisher/store/post_platforms.py): kept by the database's triggers, it must
list exactly the platforms of the post's deliveries in `delivery` ∪ `delivery_archive`,
whatever writes them — the store's bulk insert, raw inserts, the archive, a recall's restore,
a deletion — on SQLite and PostgreSQL, on a migrated database and on one made by create_all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import SQLModel

import publisher.store.tables  # noqa: F401  (registers the tables)
from publisher.delivery.jobs import NewDelivery
from publisher.domain import DeliveryState
from publisher.store import post_platforms
from publisher.store.archive import (
    DELIVERY,
    DELIVERY_ARCHIVE,
    archive_finished,
    restore_posts,
)
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.engine import alembic_config, make_engine, upgrade
from publisher.store.tables import ArticleRow, ChannelAccountRow, PostRow, UnitRow, table_of

POST = table_of(PostRow)
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
EARLY = NOW - timedelta(days=60)  # written then: old enough to archive at NOW
PLATFORMS = ("facebook", "zalo", "telegram", "x")


@pytest.fixture(
    params=["sqlite", "sqlite-create-all", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        upgrade(url)
        made = make_engine(url)
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'p.db'}"
        upgrade(url)
        made = make_engine(url)
    else:
        made = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
        SQLModel.metadata.create_all(made)
    _world(made)
    yield made
    made.dispose()


def _world(engine: sa.Engine) -> None:
    """One unit with two accounts on each platform, three articles and their posts."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table_of(UnitRow)).values(
                code="01", name="Hà Nội", kind="province", path="/01/", depth=0
            )
        )
        conn.execute(
            sa.insert(table_of(ChannelAccountRow)),
            [
                {"id": f"01-{p}-{n}", "unit_code": "01", "platform": p, "external_id": f"{p}{n}"}
                for p in PLATFORMS
                for n in (1, 2)
            ],
        )
        conn.execute(
            sa.insert(table_of(ArticleRow)),
            [
                {
                    "id": n,
                    "guid": f"g{n}",
                    "url": f"https://a.vn/{n}",
                    "canonical_url": f"https://a.vn/{n}",
                    "content_hash": f"h{n}",
                    "title": "Chỉ đạo",
                    "published_at": NOW,
                    "kind": "directive",
                }
                for n in (1, 2, 3)
            ],
        )
        for post_id in (1, 2, 3):
            conn.execute(
                sa.insert(POST).values(
                    id=post_id,
                    article_id=post_id,
                    unit_code="01",
                    state="approved",
                    approvals=[],
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        if engine.dialect.name == "postgresql":  # ids given above: the sequence goes on after
            for table in ("post", "article"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 3)")


def _delivery(post_id: int, platform: str, n: int, state: str = "pending") -> NewDelivery:
    return NewDelivery(
        post_id=post_id,
        article_id=post_id,
        unit_code="01",
        account_id=f"01-{platform}-{n}",
        platform=platform,
        state=DeliveryState(state),
        due_at=EARLY,
    )


def _check(engine: sa.Engine) -> dict[int, set[str]]:
    """post.platforms against the platforms read from both delivery tables; returns them."""
    with engine.connect() as conn:
        truth: dict[int, set[str]] = {}
        for table in (DELIVERY, DELIVERY_ARCHIVE):
            for post_id, platform in conn.execute(sa.select(table.c.post_id, table.c.platform)):
                truth.setdefault(post_id, set()).add(platform)
        stored = dict(conn.execute(sa.select(POST.c.id, POST.c.platforms)).all())
    for post_id, value in stored.items():
        listed = [p for p in value.split(",") if p]
        assert len(listed) == len(set(listed)), (post_id, value)  # each platform once
        assert set(listed) == truth.get(post_id, set()), (post_id, value)
        assert value == "" or (value.startswith(",") and value.endswith(",")), value
        for platform in PLATFORMS:  # the test the queue runs, in SQL
            with engine.connect() as conn:
                found = conn.execute(
                    sa.select(
                        post_platforms.has_platform(POST.c.platforms, platform, engine.dialect.name)
                    ).where(POST.c.id == post_id)
                ).scalar_one()
            assert bool(found) == (platform in truth.get(post_id, set())), (post_id, platform)
    return truth


def test_every_way_in_and_out_keeps_the_summary(engine: sa.Engine) -> None:
    store = SqlDeliveryStore(engine)
    assert _check(engine) == {}
    # the store's bulk insert: two platforms on post 1, one twice (two accounts), in one go
    store.enqueue(
        [
            _delivery(1, "facebook", 1, "sent"),
            _delivery(1, "facebook", 2),
            _delivery(1, "zalo", 1, "sent"),
            _delivery(2, "telegram", 1, "sent"),
        ],
        EARLY,
    )
    assert _check(engine) == {1: {"facebook", "zalo"}, 2: {"telegram"}}
    # a second statement adding a platform to a post that has some, and one it has
    store.enqueue([_delivery(1, "x", 1), _delivery(2, "telegram", 2, "sent")], EARLY)
    assert _check(engine)[1] == {"facebook", "zalo", "x"}
    # a raw insert, outside the store
    with engine.begin() as conn:
        conn.execute(
            sa.insert(DELIVERY).values(
                post_id=3,
                article_id=3,
                unit_code="01",
                account_id="01-zalo-2",
                platform="zalo",
                state="sent",
                due_at=EARLY,
                created_at=EARLY,
                updated_at=EARLY,
            )
        )
    assert _check(engine)[3] == {"zalo"}
    # the archive moves the finished rows out: nothing changes
    before = _check(engine)
    moved = archive_finished(engine, NOW, timedelta(days=30))
    assert moved.deliveries == 5
    with engine.connect() as conn:
        hot = set(conn.execute(sa.select(DELIVERY.c.post_id, DELIVERY.c.platform)).all())
    assert (3, "zalo") not in hot  # only archived now
    assert (2, "telegram") not in hot
    assert _check(engine) == before
    # a recall brings them back: nothing changes
    with engine.begin() as conn:
        assert restore_posts(conn, [1, 2, 3]) == 5
    assert _check(engine) == before
    # deleting one of two facebook rows keeps facebook; deleting the last one drops it,
    # whichever table it is in
    with engine.begin() as conn:
        conn.execute(DELIVERY.delete().where(DELIVERY.c.account_id == "01-facebook-2"))
    assert _check(engine)[1] == {"facebook", "zalo", "x"}
    archive_finished(engine, NOW, timedelta(days=30))
    with engine.begin() as conn:
        conn.execute(DELIVERY_ARCHIVE.delete().where(DELIVERY_ARCHIVE.c.platform == "facebook"))
        conn.execute(DELIVERY.delete().where(DELIVERY.c.post_id == 2))
    assert _check(engine)[1] == {"zalo", "x"}
    with engine.begin() as conn:
        conn.execute(DELIVERY_ARCHIVE.delete().where(DELIVERY_ARCHIVE.c.post_id == 2))
    truth = _check(engine)
    assert 2 not in truth
    with engine.connect() as conn:
        assert conn.execute(sa.select(POST.c.platforms).where(POST.c.id == 2)).scalar_one() == ""


def test_a_delivery_never_changes_post_or_platform(engine: sa.Engine) -> None:
    SqlDeliveryStore(engine).enqueue([_delivery(1, "facebook", 1)], NOW)
    for change in ({"platform": "zalo"}, {"post_id": 2}):
        with (
            pytest.raises(sa.exc.DatabaseError, match="post and platform never change"),
            engine.begin() as conn,
        ):
            conn.execute(sa.update(DELIVERY).values(**change))
    # other columns change freely (the worker's every update)
    with engine.begin() as conn:
        conn.execute(sa.update(DELIVERY).values(state="sent", platform="facebook"))
    assert _check(engine) == {1: {"facebook"}}


def test_the_triggers_are_there(engine: sa.Engine) -> None:
    """A later migration that rebuilds a delivery table on SQLite (Alembic's batch mode)
    would drop them silently: this fails then."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = (
            "SELECT DISTINCT trigger_name FROM information_schema.triggers"
            " WHERE event_object_schema = current_schema()"
        )
    with engine.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql(query)}
    assert names == set(post_platforms.trigger_names())


def _trigger_names(engine: sa.Engine) -> set[str]:
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = (
            "SELECT DISTINCT trigger_name FROM information_schema.triggers"
            " WHERE event_object_schema = current_schema()"
        )
    with engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql(query)}


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_later_migrations_keep_the_triggers_both_ways(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0007 adds a column to both delivery tables and its downgrade drops it again (a table
    rebuild on SQLite): the triggers are there after each step, and still keep the column."""
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgres"
        else f"sqlite:///{tmp_path / 'steps.db'}"
    )
    expected = set(post_platforms.trigger_names())
    upgrade(url)
    engine = make_engine(url)
    assert _trigger_names(engine) == expected
    engine.dispose()
    command.downgrade(alembic_config(url), "0006_platforms_reports")
    engine = make_engine(url)
    assert _trigger_names(engine) == expected
    _world(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO delivery (post_id, article_id, unit_code, account_id, platform,"
                " state, due_at, priority, attempt, created_at, updated_at)"
                " VALUES (1, 1, '01', '01-zalo-1', 'zalo', 'pending', :t, 0, 0, :t, :t)"
            ),
            {"t": NOW},
        )
    assert _check(engine) == {1: {"zalo"}}
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    assert _trigger_names(engine) == expected
    engine.dispose()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_migration_fills_existing_posts(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Deliveries written before revision 0006 (no triggers yet) are summarised by it."""
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgres"
        else f"sqlite:///{tmp_path / 'old.db'}"
    )
    upgrade(url, "0005_queue_indexes")
    engine = make_engine(url)
    _world(engine)
    rows = [
        (1, "facebook", 1, "sent"),
        (1, "zalo", 1, "sent"),
        (2, "telegram", 1, "sent"),
        (2, "telegram", 2, "pending"),
    ]
    with engine.begin() as conn:
        for post_id, platform, n, state in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO delivery (post_id, article_id, unit_code, account_id, platform,"
                    " state, due_at, priority, attempt, created_at, updated_at)"
                    " VALUES (:p, :p, '01', :a, :pl, :s, :t, 0, 0, :t, :t)"
                ),
                {
                    "p": post_id,
                    "a": f"01-{platform}-{n}",
                    "pl": platform,
                    "s": state,
                    "t": datetime(2026, 9, 1, tzinfo=UTC),
                },
            )
    # The 0005 schema has the archive; the rows are moved by hand, as archive_finished moved
    # them then (today's archive_finished copies later columns too).
    with engine.begin() as conn:
        columns = ", ".join(c["name"] for c in sa.inspect(conn).get_columns("delivery"))
        conn.execute(
            sa.text(
                f"INSERT INTO delivery_archive ({columns}, archived_at)"
                f" SELECT {columns}, :now FROM delivery WHERE state = 'sent'"
            ),
            {"now": NOW},
        )
        conn.execute(sa.text("DELETE FROM delivery WHERE state = 'sent'"))
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    assert _check(engine) == {1: {"facebook", "zalo"}, 2: {"telegram"}}
    engine.dispose()


def test_the_fan_out_writes_what_the_triggers_would(engine: sa.Engine) -> None:
    """The fan-out fills a new post's platforms itself (so the triggers have nothing to do);
    a second fan-out to the same post (left as it is) with a new channel goes through the
    trigger."""
    from publisher.domain import PostState
    from publisher.store.delivery_sql import PlannedPost, SqlPostStore

    with engine.begin() as conn:
        conn.execute(
            sa.insert(table_of(ArticleRow)).values(
                id=4,
                guid="g4",
                url="https://a.vn/4",
                canonical_url="https://a.vn/4",
                content_hash="h4",
                title="Chỉ đạo 4",
                published_at=NOW,
                kind="directive",
            )
        )
    posts = SqlPostStore(SqlDeliveryStore(engine))

    def plan(*channels: tuple[str, int]) -> PlannedPost:
        deliveries = tuple(NewDelivery(4, 4, "01", f"01-{p}-{n}", p, EARLY) for p, n in channels)
        return PlannedPost("01", PostState.APPROVED, 0, None, deliveries)

    assert posts.fan_out(4, [plan(("zalo", 1), ("facebook", 1), ("zalo", 2))], NOW, "t") == (1, 3)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(POST.c.platforms).where(POST.c.article_id == 4)).scalar()
    assert stored == ",facebook,zalo,"
    assert posts.fan_out(4, [plan(("facebook", 1), ("x", 1))], NOW, "t") == (0, 1)
    post_id = next(iter({p for p, s in _check(engine).items() if "x" in s}))
    assert _check(engine)[post_id] == {"facebook", "zalo", "x"}
