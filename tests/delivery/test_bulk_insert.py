"""The fan-out's bulk insert stores exactly what SQLAlchemy's own insert stores, skips
existing keys, and counts what it inserted (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from delivery_fakes import seed_world

from publisher.store.bulk import BulkInsert
from publisher.store.delivery_sql import DELIVERY_COLUMNS, POST, D

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
HANOI = timezone(timedelta(hours=7))


def test_bulk_rows_read_back_like_sqlalchemy_rows(db: sa.Engine) -> None:
    world = seed_world(db, units=3)
    codes = sorted(world.accounts)[:2]
    with db.begin() as conn:
        article_id = conn.execute(
            sa.text(
                "INSERT INTO article (guid, url, canonical_url, content_hash, title, "
                "summary, body_html, body_text, published_at, images, language, source_name, "
                "kind, urgent, backlog, routed, created_at) VALUES ('g', 'u', 'u', 'h', 't', "
                "'', '', '', :t, '[]', 'vi', '', 'directive', false, false, false, :t) "
                "RETURNING id"
            ),
            {"t": T0},
        ).scalar_one()
        post_ids = [
            conn.execute(
                sa.insert(POST)
                .values(
                    article_id=article_id,
                    unit_code=world.accounts[code].unit_code,
                    state="approved",
                    approvals=[],
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(POST.c.id)
            ).scalar_one()
            for code in codes
        ]
    due = T0.astimezone(HANOI) + timedelta(seconds=1.5)  # any offset: stored as UTC
    rows = [
        (
            post_id,
            article_id,
            world.accounts[code].unit_code,
            code,
            "facebook",
            "pending",
            due,
            None,
            0,
            0,
            payload,
            T0,
            T0,
        )
        for post_id, code, payload in zip(
            post_ids, codes, [None, {"message": "Chỉ đạo ộ"}], strict=True
        )
    ]
    bulk = BulkInsert(D, DELIVERY_COLUMNS, ("post_id", "account_id"), db.dialect)
    with db.begin() as conn:
        assert bulk.run(conn, rows) == 2
        assert bulk.run(conn, rows) == 0  # the same keys again: nothing inserted
        assert bulk.run(conn, []) == 0
    with db.begin() as conn:
        conn.execute(sa.delete(D).where(D.c.post_id == post_ids[1]))
        conn.execute(sa.insert(D), [dict(zip(DELIVERY_COLUMNS, rows[1], strict=True))])
        stored = conn.execute(
            sa.select(D.c.account_id, D.c.due_at, D.c.expires_at, D.c.payload, D.c.state).order_by(
                D.c.post_id
            )
        ).all()
        # The stored text of the JSON column, not only its decoded value.
        payload_text = (
            conn.execute(sa.select(sa.cast(D.c.payload, sa.Text)).order_by(D.c.post_id))
            .scalars()
            .all()
        )
    assert [row.due_at for row in stored] == [due.astimezone(UTC)] * 2
    assert all(row.due_at.tzinfo is not None for row in stored)
    assert [row.payload for row in stored] == [None, {"message": "Chỉ đạo ộ"}]
    assert [row.expires_at for row in stored] == [None, None]
    # Bulk (first) and SQLAlchemy (second) store None the same way (JSON null).
    assert payload_text[0] == "null"
    with db.begin() as conn:
        conn.execute(sa.delete(D))
        conn.execute(sa.insert(D), [dict(zip(DELIVERY_COLUMNS, rows[0], strict=True))])
        via_sqlalchemy = conn.execute(sa.select(sa.cast(D.c.payload, sa.Text))).scalar_one()
    assert via_sqlalchemy == payload_text[0]
