"""The queue reads its page segment by segment (publisher/views.py): the rows and their order
must be exactly those of one ORDER BY over everything, for every filter, offset and size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg import fresh_schema, postgres_url, schema_url
from world import DIRECTIVE, HN_WAITING, NOW, World, build_world

from publisher.domain import VIETNAM_TZ, PostState
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
