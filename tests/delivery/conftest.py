"""Fixtures: a delivery database on SQLite (always) and PostgreSQL (when available)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from delivery_fakes import create_schema, sqlite_engine
from pg import fresh_schema, postgres_url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sqlite_engine(tmp_path / "publisher.db")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_db() -> Iterator[sa.Engine]:
    url = postgres_url()
    with fresh_schema(url) as (engine, _schema):
        create_schema(engine)
        yield engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> sa.Engine:
    name = "sqlite_db" if request.param == "sqlite" else "pg_db"
    return request.getfixturevalue(name)
