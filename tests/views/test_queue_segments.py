"""The queue reads its page segment by segment (publisher/views.py): the rows and their order
must be exactly those of one ORDER BY over everything, for every filter, offset and size; and
the filters (written as index-friendly sets for counts, per row for walked pages) must select
exactly the posts a plain reading of the tables in Python selects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg import fresh_schema, postgres_url, schema_url
from world import DIRECTIVE, HN_WAITING, NOW, WORKER_NOW, World, build_world

import publisher.views
from publisher.domain import VIETNAM_TZ, PostState
from publisher.store.archive import DELIVERY, DELIVERY_ARCHIVE, archive_finished
from publisher.views import ARTICLE, POST, UNIT, QueueFilter


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def urgent_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The views world with two urgent articles (one waiting at some units), so every
    segment of the queue — waiting/urgent, waiting, urgent, the rest — holds posts."""
    home: Path = tmp_path_factory.mktemp(f"segments-{request.param}") / "home"
    with pytest.MonkeyPatch.context() as env, ExitStack() as stack:
        if request.param == "postgres":
            url = postgres_url()
            engine, schema = stack.enter_context(fresh_schema(url))
            engine.dispose()
            env.setenv("DATABASE_URL", schema_url(url, schema))
        else:
            env.delenv("DATABASE_URL", raising=False)
        world = build_world(home)
        with world.engine.begin() as conn:
            conn.execute(
                sa.update(ARTICLE)
                .where(ARTICLE.c.title.in_([DIRECTIVE, HN_WAITING]))
                .values(urgent=True)
            )
        # Finished deliveries move to the archive: the channel filter must find them there.
        archived = archive_finished(world.engine, WORKER_NOW + timedelta(days=400), timedelta(30))
        assert archived.deliveries > 0
        yield world
        world.engine.dispose()
        world.service.store.engine.dispose()


def reference(world: World, username: str, wanted: QueueFilter) -> list[int]:
    """The queue's order as one statement: waiting first, urgent next, newest, then id."""
    views = world.views
    scope = views.scope_for(world.user(username))
    joined = POST.join(ARTICLE, ARTICLE.c.id == POST.c.article_id).join(
        UNIT, UNIT.c.code == POST.c.unit_code
    )
    waiting_first = sa.case((POST.c.state == PostState.AWAITING_APPROVAL.value, 0), else_=1)
    query = (
        sa.select(POST.c.id)
        .select_from(joined)
        .where(*views._queue_conditions(scope, wanted))
        .order_by(waiting_first, ARTICLE.c.urgent.desc(), POST.c.created_at.desc(), POST.c.id)
    )
    with world.engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


FILTERS = [
    QueueFilter(),
    QueueFilter(state=PostState.AWAITING_APPROVAL.value),
    QueueFilter(state=PostState.APPROVED.value),
    QueueFilter(channel="zalo"),
    QueueFilter(kind="directive"),
    QueueFilter(unit="01"),
    QueueFilter(search="Hà Nội"),
    QueueFilter(day=(NOW + timedelta(days=1)).astimezone(VIETNAM_TZ).date()),
]


@pytest.mark.parametrize("username", ["admin", "duyet.hanoi", "bientap.cp", "quantri.quangninh"])
def test_pages_are_the_single_order_by(urgent_world: World, username: str) -> None:
    world = urgent_world
    user = world.user(username)
    for wanted in FILTERS:
        expected = reference(world, username, wanted)
        for limit in (2, 7, 1000):
            got: list[int] = []
            for offset in range(0, len(expected) + limit, limit):
                page = world.views.queue(user, wanted, offset, limit)
                assert page.total == len(expected), wanted
                got.extend(item.post_id for item in page.items)
            assert got == expected, (wanted, limit)


def test_every_segment_holds_posts(urgent_world: World) -> None:
    """Else the test above would prove little: the admin's queue crosses all four."""
    page = urgent_world.views.queue(urgent_world.user("admin"), QueueFilter(), 0, 10_000)
    kinds = {(i.state == PostState.AWAITING_APPROVAL.value, i.urgent) for i in page.items}
    assert kinds == {(True, True), (True, False), (False, True), (False, False)}


def plain_reference(world: World, username: str, wanted: QueueFilter) -> list[int]:
    """The filter read the obvious way: every post, article, unit and delivery of the store
    loaded into Python, tested one by one, sorted in the queue's order."""
    scope = world.views.scope_for(world.user(username))
    with world.engine.connect() as conn:
        units = {r["code"]: r for r in conn.execute(sa.select(UNIT)).mappings()}
        articles = {r["id"]: r for r in conn.execute(sa.select(ARTICLE)).mappings()}
        posts = list(conn.execute(sa.select(POST)).mappings())
        platforms: dict[int, set[str]] = {}
        for table in (DELIVERY, DELIVERY_ARCHIVE):
            for post_id, platform in conn.execute(sa.select(table.c.post_id, table.c.platform)):
                platforms.setdefault(post_id, set()).add(platform)
    text = wanted.search.strip().lower()

    def visible(code: str) -> bool:
        return (
            scope.everything
            or code in scope.single_codes
            or any(units[code]["path"].startswith(path) for path in scope.subtree_paths)
        )

    def shown(post: sa.RowMapping) -> bool:
        article, unit = articles[post["article_id"]], units[post["unit_code"]]
        day_ok = True
        if wanted.day:
            day_ok = post["scheduled_at"] is not None and (
                post["scheduled_at"].astimezone(VIETNAM_TZ).date() == wanted.day
            )
        return (
            visible(post["unit_code"])
            and (not wanted.unit or post["unit_code"] == wanted.unit)
            and (not wanted.state or post["state"] == wanted.state)
            and (not wanted.kind or article["kind"] == wanted.kind)
            and (not wanted.channel or wanted.channel in platforms.get(post["id"], set()))
            and (
                not text
                or text in article["title"].lower()
                or text in unit["code"].lower()
                or text in unit["name"].lower()
            )
            and day_ok
        )

    def order(post: sa.RowMapping) -> tuple[int, int, float, int]:
        waiting = post["state"] == PostState.AWAITING_APPROVAL.value
        urgent = bool(articles[post["article_id"]]["urgent"])
        return (
            0 if waiting else 1,
            0 if urgent else 1,
            -post["created_at"].timestamp(),
            post["id"],
        )

    return [p["id"] for p in sorted(filter(shown, posts), key=order)]


# Each filter alone and in pairs (searches in lower case without capital accented letters:
# SQLite's lower() folds ASCII only, PostgreSQL's every letter, Python's too).
PLAIN_FILTERS = [
    QueueFilter(kind="directive"),
    QueueFilter(kind="article"),
    QueueFilter(channel="facebook"),
    QueueFilter(channel="zalo"),
    QueueFilter(channel="youtube"),
    QueueFilter(channel="x"),
    QueueFilter(state=PostState.AWAITING_APPROVAL.value),
    QueueFilter(state=PostState.APPROVED.value),
    QueueFilter(state=PostState.REJECTED.value),
    QueueFilter(search="hà nội"),
    QueueFilter(search="ninh"),
    QueueFilter(search="01"),
    QueueFilter(search="không có đâu"),
    QueueFilter(kind="directive", channel="zalo"),
    QueueFilter(kind="article", search="ninh"),
    QueueFilter(channel="facebook", state=PostState.AWAITING_APPROVAL.value),
    QueueFilter(channel="zalo", search="hà nội", state=PostState.APPROVED.value),
    QueueFilter(unit="01", channel="facebook", kind="directive"),
]


@pytest.mark.parametrize("sort_at_most", [0, 1_000_000])
@pytest.mark.parametrize("username", ["admin", "duyet.hanoi", "quantri.quangninh"])
def test_filters_select_what_a_plain_reading_selects(
    urgent_world: World, username: str, sort_at_most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page, with every segment read walking (0) and read as a sorted set (a million):
    the same posts in the same order as the Python reference, and the same total."""
    monkeypatch.setattr(publisher.views, "SORT_AT_MOST", sort_at_most)
    world = urgent_world
    user = world.user(username)
    nonempty = 0
    for wanted in PLAIN_FILTERS:
        expected = plain_reference(world, username, wanted)
        nonempty += bool(expected)
        for limit in (3, 1000):
            got: list[int] = []
            for offset in range(0, len(expected) + limit, limit):
                page = world.views.queue(user, wanted, offset, limit)
                assert page.total == len(expected), wanted
                got.extend(item.post_id for item in page.items)
            assert got == expected, (wanted, limit)
    # else the comparison proves little (a unit admin sees a small part of the world)
    assert nonempty >= (len(PLAIN_FILTERS) // 2 if username == "admin" else 3)


def test_the_channel_filter_finds_archived_deliveries(urgent_world: World) -> None:
    """A post whose only delivery on a platform was archived still shows under it."""
    with urgent_world.engine.connect() as conn:
        hot = set(conn.execute(sa.select(DELIVERY.c.post_id, DELIVERY.c.platform)).all())
        cold = set(
            conn.execute(sa.select(DELIVERY_ARCHIVE.c.post_id, DELIVERY_ARCHIVE.c.platform)).all()
        )
    only_archived = cold - hot
    assert only_archived, "the world should archive some post's only delivery on a platform"
    post_id, platform = sorted(only_archived)[0]
    page = urgent_world.views.queue(
        urgent_world.user("admin"), QueueFilter(channel=platform), 0, 100_000
    )
    assert post_id in {item.post_id for item in page.items}


def plain_state_counts(world: World, username: str) -> dict[str, int]:
    """Posts per state in the user's units, counted in Python."""
    scope = world.views.scope_for(world.user(username))
    with world.engine.connect() as conn:
        paths = dict(conn.execute(sa.select(UNIT.c.code, UNIT.c.path)).all())
        posts = conn.execute(sa.select(POST.c.unit_code, POST.c.state)).all()
    counts = {state.value: 0 for state in PostState}
    for code, state in posts:
        if (
            scope.everything
            or code in scope.single_codes
            or any(paths[code].startswith(p) for p in scope.subtree_paths)
        ):
            counts[state] += 1
    return counts


@pytest.mark.parametrize("username", ["admin", "duyet.hanoi", "quantri.quangninh"])
def test_one_pass_gives_the_page_and_the_counts_of_two(urgent_world: World, username: str) -> None:
    """queue_and_counts (the screen's one call) against queue + queue_counts and the plain
    reading: the same page, total and counts per state, for every filter and page."""
    world = urgent_world
    user = world.user(username)
    counts = plain_state_counts(world, username)
    assert sum(counts.values()) > 0
    for wanted in [QueueFilter(), *FILTERS, *PLAIN_FILTERS]:
        expected = plain_reference(world, username, wanted)
        for offset in (0, 3, 7):
            page, got_counts = world.views.queue_and_counts(user, wanted, offset, 3)
            assert got_counts == counts, wanted
            assert page == world.views.queue(user, wanted, offset, 3), wanted
            assert page.total == len(expected), wanted
            assert [i.post_id for i in page.items] == expected[offset : offset + 3], wanted
