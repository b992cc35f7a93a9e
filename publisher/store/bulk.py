"""Many rows in one INSERT … ON CONFLICT (key) DO NOTHING, for the fan-out (or DO UPDATE of
the rows that changed, for syncing the unit tree).

A directive to the whole country writes ~3,400 posts and ~17,000 deliveries in one
transaction. Through SQLAlchemy's executemany each of the ~80,000 values goes through its
type's bind conversion and each row is a statement (psycopg pipelines them, but still parses
and sends one per row). Here:

- values are converted by the column type's own bind processor (so stored values are exactly
  what SQLAlchemy would store), once per distinct value: a fan-out repeats the same few times
  (created, updated, expires) thousands of times;
- PostgreSQL gets **one** statement: `INSERT … SELECT … FROM unnest(%(c1)b::type[], …)
  ON CONFLICT (key) DO NOTHING`, each column one array parameter sent in binary (psycopg's
  text arrays quote every element with a regular expression: 3× the client CPU); its
  rowcount is exact;
- SQLite gets one `executemany` of a statement compiled once, straight on the connection's
  driver cursor (sqlite3 sums the rows each execution changed: exact as well).

Both run on the caller's connection, inside its transaction.

With `update` columns, a row whose key exists is updated instead — and only where one of those
columns differs (`IS DISTINCT FROM`), so re-syncing an unchanged table writes nothing. `touch`
columns (an `updated_at`) take the new value in such an update but are not compared: a row
whose only difference is the time is not written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler


def _convert(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """`values` through `process`, once per distinct value when they are hashable (datetimes,
    strings, numbers); a column of dicts or lists (JSON) goes value by value."""
    if process is None:
        return values
    try:
        done = {value: process(value) for value in set(values)}
    except TypeError:  # unhashable
        return [process(value) for value in values]
    return list(map(done.__getitem__, values))


class BulkInsert:
    """INSERT of `columns` into `table`, rows given as tuples in `columns` order; rows whose
    `key` already exists are left as they are, or with `update`, get those columns' new values
    when any of them differs. `run` returns how many rows were inserted (or updated)."""

    def __init__(
        self,
        table: sa.Table,
        columns: Sequence[str],
        key: Sequence[str],
        dialect: sa.Dialect,
        update: Sequence[str] = (),
        touch: Sequence[str] = (),
    ) -> None:
        if touch and not update:
            raise ValueError("touch columns are written only with update columns")
        self.table = table
        self.columns = tuple(columns)
        self.dialect = dialect
        self.is_sqlite = dialect.name == "sqlite"
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            inserting = sqlite_insert(table).values(
                {c: sa.bindparam(c, type_=table.c[c].type) for c in self.columns}
            )
            statement = (
                inserting.on_conflict_do_update(
                    index_elements=list(key),
                    set_={c: inserting.excluded[c] for c in (*update, *touch)},
                    where=sa.or_(
                        *(table.c[c].is_distinct_from(inserting.excluded[c]) for c in update)
                    ),
                )
                if update
                else inserting.on_conflict_do_nothing(index_elements=list(key))
            )
            compiled = statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            order = [compiled.binds[name].key for name in compiled.positiontup or []]
            if sorted(order) != sorted(self.columns):
                raise AssertionError(f"unexpected parameters {order} for {self.columns}")
            self._order = [self.columns.index(name) for name in order]
            self.sql = compiled.string
            self._processors = [
                table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in order
            ]
        else:
            quote = dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in self.columns)
            casts = ", ".join(
                f"CAST(%({c})b AS {self._array_type(table.c[c])})" for c in self.columns
            )
            target = dialect.identifier_preparer.format_table(table)
            on_conflict = f"ON CONFLICT ({', '.join(quote(k) for k in key)}) DO NOTHING"
            if update:
                assignments = ", ".join(
                    f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (*update, *touch)
                )
                changed = " OR ".join(
                    f"{target}.{quote(c)} IS DISTINCT FROM EXCLUDED.{quote(c)}" for c in update
                )
                on_conflict = (
                    f"ON CONFLICT ({', '.join(quote(k) for k in key)}) "
                    f"DO UPDATE SET {assignments} WHERE {changed}"
                )
            self.sql = (
                f"INSERT INTO {target} ({names}) "
                f"SELECT {names} FROM unnest({casts}) AS given({names}) {on_conflict}"
            )
            self._order = list(range(len(self.columns)))
            self._processors = [
                table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in self.columns
            ]

    def _array_type(self, column: sa.Column[Any]) -> str:
        return f"{column.type.compile(dialect=self.dialect)}[]"

    def run(self, conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        given = list(zip(*rows, strict=True))
        columns = [
            _convert(list(given[index]), process)
            for index, process in zip(self._order, self._processors, strict=True)
        ]
        if self.is_sqlite:
            result = conn.exec_driver_sql(self.sql, list(zip(*columns, strict=True)))
        else:
            result = conn.exec_driver_sql(self.sql, dict(zip(self.columns, columns, strict=True)))
        return int(result.rowcount)
