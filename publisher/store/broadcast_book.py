"""Zalo broadcasts in the database: which articles were broadcast, and how many this month.

A `channels.zalo.BroadcastBook` shared by every worker on every machine. It needs no table of
its own: the `rate_limit` rows are keyed counters with a window, which is exactly a monthly
allowance —
- `zalo-broadcasts:<account id>`: `window_start` = the month (its first midnight in Vietnam
  time, stored in UTC), `window_count` = broadcasts claimed in it;
- `zalo-broadcast:<hash of account id and article id>`: one row per article whose broadcast
  was claimed (`window_start` = its month). Its existence is what makes the broadcast
  idempotent: it is committed before the request, so nothing sends the broadcast again.
Each method is one short write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: the counter
row is locked with FOR UPDATE), committed when it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from channels.zalo import Claim
from publisher.domain import VIETNAM_TZ, sha256_hex
from publisher.store.tables import RateLimitRow, table_of

LIMIT = table_of(RateLimitRow)


def month_start(month: date) -> datetime:
    """The first moment of a Vietnam month, in UTC."""
    return datetime(month.year, month.month, 1, tzinfo=VIETNAM_TZ).astimezone(UTC)


def counter_key(account_id: str) -> str:
    return f"zalo-broadcasts:{account_id}"


def claim_key(account_id: str, article_id: str) -> str:
    # hashed: an account id may be 128 characters and the key column holds 160
    return f"zalo-broadcast:{sha256_hex(account_id + chr(0) + article_id)[:40]}"


class SqlBroadcastBook:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _insert_ignoring(self) -> Any:
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(LIMIT).on_conflict_do_nothing(index_elements=["key"])
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(LIMIT).on_conflict_do_nothing(index_elements=["key"])

    def _count(self, conn: sa.Connection, account_id: str, month: date) -> int:
        """The month's count, the counter row locked; a counter of an earlier month restarts."""
        key, start = counter_key(account_id), month_start(month)
        conn.execute(
            self._insert_ignoring(),
            [{"key": key, "next_allowed_at": None, "window_start": start, "window_count": 0}],
        )
        select = sa.select(LIMIT.c.window_start, LIMIT.c.window_count).where(LIMIT.c.key == key)
        if not self.is_sqlite:
            select = select.with_for_update()
        row = conn.execute(select).one()
        if row.window_start is None or row.window_start < start:
            conn.execute(
                sa.update(LIMIT)
                .where(LIMIT.c.key == key)
                .values(window_start=start, window_count=0)
            )
            return 0
        return int(row.window_count) if row.window_start == start else 0

    def _set_count(self, conn: sa.Connection, account_id: str, month: date, count: int) -> None:
        conn.execute(
            sa.update(LIMIT)
            .where(LIMIT.c.key == counter_key(account_id))
            .values(window_start=month_start(month), window_count=count)
        )

    async def claim(self, account_id: str, article_id: str, month: date, allowance: int) -> Claim:
        with self._write() as conn:
            used = self._count(conn, account_id, month)
            key = claim_key(account_id, article_id)
            if conn.execute(sa.select(LIMIT.c.key).where(LIMIT.c.key == key)).first():
                return Claim.ALREADY
            if used >= allowance:
                return Claim.USED_UP
            conn.execute(
                sa.insert(LIMIT).values(key=key, window_start=month_start(month), window_count=1)
            )
            self._set_count(conn, account_id, month, used + 1)
            return Claim.GRANTED

    async def give_back(self, account_id: str, article_id: str, month: date) -> None:
        with self._write() as conn:
            used = self._count(conn, account_id, month)
            gone = conn.execute(
                sa.delete(LIMIT).where(LIMIT.c.key == claim_key(account_id, article_id))
            ).rowcount
            if gone:
                self._set_count(conn, account_id, month, max(0, used - 1))

    async def use_up(self, account_id: str, month: date, allowance: int) -> None:
        with self._write() as conn:
            used = self._count(conn, account_id, month)
            self._set_count(conn, account_id, month, max(used, allowance))

    async def used(self, account_id: str, month: date) -> int:
        with self._write() as conn:
            return self._count(conn, account_id, month)
