"""Migrations are the schema: they match the tables, and SQLite and PostgreSQL get the same one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import publisher.store.tables  # noqa: F401  (registers the tables)
from publisher.store.engine import make_engine, upgrade


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns (with nullability and a coarse type), indexes and unique keys."""
    inspector = sa.inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        columns = {
            c["name"]: (
                c["nullable"],
                type(c["type"]).__name__.upper().replace("TIMESTAMP", "DATETIME"),
            )
            for c in inspector.get_columns(table)
        }
        indexes = sorted(
            (tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
            if not i.get("duplicates_constraint")  # PostgreSQL lists unique keys as indexes too
        )
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        foreign = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"])
            for f in inspector.get_foreign_keys(table)
        )
        schema[table] = {"columns": columns, "indexes": indexes, "uniques": uniques, "fk": foreign}
    return schema


def _types_agree(sqlite_type: str, pg_type: str) -> bool:
    same = {("VARCHAR", "VARCHAR"), ("INTEGER", "INTEGER"), ("BOOLEAN", "BOOLEAN")}
    return (
        (sqlite_type, pg_type) in same
        or sqlite_type == pg_type
        or {sqlite_type, pg_type}
        <= {
            "JSON",
            "JSONB",
        }
    )


def test_migrations_match_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


def test_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    upgrade(url)
    engine = make_engine(url)
    assert "delivery" in sa.inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.postgres
def test_sqlite_and_postgresql_get_the_same_schema(tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(sqlite_url)
    upgrade(postgres_url)
    engines = make_engine(sqlite_url), make_engine(postgres_url)
    lite, pg = schema_of(engines[0]), schema_of(engines[1])
    for engine in engines:
        engine.dispose()
    assert lite.keys() == pg.keys()
    for table in lite:
        assert lite[table]["columns"].keys() == pg[table]["columns"].keys(), table
        for column, (nullable, kind) in lite[table]["columns"].items():
            pg_nullable, pg_kind = pg[table]["columns"][column]
            assert nullable == pg_nullable, (table, column)
            assert _types_agree(kind, pg_kind), (table, column, kind, pg_kind)
        assert lite[table]["indexes"] == pg[table]["indexes"], table
        assert lite[table]["uniques"] == pg[table]["uniques"], table
        assert lite[table]["fk"] == pg[table]["fk"], table
