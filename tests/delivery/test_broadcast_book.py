"""Zalo's broadcast book in the database (SQLite and PostgreSQL): a broadcast is claimed once
per article, counted against the month, given back when refused, used up on -211."""

from __future__ import annotations

import asyncio
from datetime import date

import sqlalchemy as sa

from channels.zalo import Claim
from publisher.store.broadcast_book import LIMIT, SqlBroadcastBook, month_start

NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)


async def test_claims_are_counted_once_per_article_within_the_allowance(db: sa.Engine) -> None:
    book = SqlBroadcastBook(db)
    assert await book.claim("01.zalo", "a1", NOV, 2) is Claim.GRANTED
    assert await book.claim("01.zalo", "a1", NOV, 2) is Claim.ALREADY
    assert await book.claim("01.zalo", "a2", NOV, 2) is Claim.GRANTED
    assert await book.claim("01.zalo", "a3", NOV, 2) is Claim.USED_UP
    assert await book.used("01.zalo", NOV) == 2
    assert await book.claim("79.zalo", "a3", NOV, 2) is Claim.GRANTED  # another OA
    # a new month starts from nothing; an article claimed last month stays claimed
    assert await book.claim("01.zalo", "a3", DEC, 2) is Claim.GRANTED
    assert await book.claim("01.zalo", "a1", DEC, 2) is Claim.ALREADY
    assert await book.used("01.zalo", DEC) == 1


async def test_give_back_and_use_up(db: sa.Engine) -> None:
    book = SqlBroadcastBook(db)
    assert await book.claim("01.zalo", "a1", NOV, 4) is Claim.GRANTED
    await book.give_back("01.zalo", "a1", NOV)
    assert await book.used("01.zalo", NOV) == 0
    await book.give_back("01.zalo", "a1", NOV)  # twice: no negative count
    assert await book.used("01.zalo", NOV) == 0
    assert await book.claim("01.zalo", "a1", NOV, 4) is Claim.GRANTED
    await book.use_up("01.zalo", NOV, 4)  # Zalo said -211
    assert await book.claim("01.zalo", "a2", NOV, 4) is Claim.USED_UP
    assert await book.claim("01.zalo", "a2", DEC, 4) is Claim.GRANTED


async def test_claims_from_several_workers_books_grant_one(db: sa.Engine) -> None:
    books = [SqlBroadcastBook(db) for _ in range(4)]  # one per worker, one database
    results = await asyncio.gather(*(b.claim("01.zalo", "a1", NOV, 6) for b in books))
    assert sorted(results) == sorted([Claim.GRANTED] + [Claim.ALREADY] * 3)
    with db.connect() as conn:
        window = conn.execute(
            sa.select(LIMIT.c.window_start).where(LIMIT.c.key == "zalo-broadcasts:01.zalo")
        ).scalar_one()
    assert window == month_start(NOV)
    assert window.isoformat() == "2026-10-31T17:00:00+00:00"  # midnight in Vietnam
