"""The world of `world.py` on SQLite and on PostgreSQL (`postgres` marker: skipped without a
server, a failure in CI — see tests/pg.py).

Built once per session and backend: every test here only reads it (read models cannot
write), which keeps the suite fast. A test that needs to change data must build its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg import fresh_schema, postgres_url, schema_url
from world import World, build_world


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"views-{request.param}") / "home"
    with pytest.MonkeyPatch.context() as env:
        if request.param == "postgres":
            url = postgres_url()
            with fresh_schema(url) as (engine, schema):
                engine.dispose()
                env.setenv("DATABASE_URL", schema_url(url, schema))
                built = build_world(home)
                yield built
                built.engine.dispose()
                built.service.store.engine.dispose()
        else:
            env.delenv("DATABASE_URL", raising=False)
            built = build_world(home)
            yield built
            built.engine.dispose()
            built.service.store.engine.dispose()
