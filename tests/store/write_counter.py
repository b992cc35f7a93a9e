"""Which rows of a table were written (updated) since last asked: for tests that a sync writes
only what changed. SQLite through a trigger, PostgreSQL through each row's `xmin` (new on
every write)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


def write_counter(engine: sa.Engine, table: str, key: str) -> Callable[[], set[str]]:
    """A function giving the `key` of every row of `table` written since it was last called
    (or since this call, the first time)."""
    if engine.dialect.name == "sqlite":
        log = f"{table}_writes"
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {log} ({key} TEXT)"))
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER {table}_written AFTER UPDATE ON {table} "
                    f"BEGIN INSERT INTO {log} VALUES (new.{key}); END"
                )
            )

        def sqlite_written() -> set[str]:
            with engine.begin() as conn:
                keys = {k for (k,) in conn.execute(sa.text(f"SELECT {key} FROM {log}"))}
                conn.execute(sa.text(f"DELETE FROM {log}"))
            return keys

        return sqlite_written

    def versions() -> dict[str, str]:
        with engine.connect() as conn:
            query = sa.text(f"SELECT {key}, xmin::text FROM {table}")
            return {k: v for k, v in conn.execute(query).all()}

    seen = versions()

    def postgres_written() -> set[str]:
        nonlocal seen
        now = versions()
        changed = {k for k, version in now.items() if seen.get(k) != version}
        seen = now
        return changed

    return postgres_written
