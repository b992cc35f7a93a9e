"""`post.platforms`: the platforms a post has a delivery on, hot or archived, kept by triggers.

Why: the queue's channel filter must count every matching post (the page shows the total).
For a channel every post has (Facebook: 440,721 posts at one million deliveries) counting
through the `(platform, post_id)` delivery indexes meant looking each post up for its article
and state: ~230 ms on SQLite, ~1 s on PostgreSQL. With the platforms on the post itself, in
`ix_post_queue_count`, the count is one pass over that index, as for no filter (docs/tui.md).

Why triggers rather than the store's insert path: the summary must be exact whatever writes
deliveries — the fan-out's bulk insert, `enqueue`, the archive moving rows out and a recall
moving them back, a bench or a test inserting rows directly. The database keeps it in the
same statement, so no writer can forget it and no reader can see it out of step.

The value: '' for no delivery, else ",facebook,zalo," (each platform once, between commas;
insertion order on SQLite, sorted on PostgreSQL — only membership is ever asked, with
`has_platform`). The fan-out writes a new post with the value its deliveries, inserted in the
same transaction, will give (`listing`), so that the triggers find every platform already
listed and do not rewrite the post once per delivery. A delivery's `post_id` and `platform`
never change; a trigger refuses an update that would, rather than recount. A deleted
delivery takes its platform off the post only when no other delivery of that post on that
platform is left in either table (the archive inserts the copy before deleting the
original, a recall the other way round).

Alembic's batch mode on SQLite rebuilds a table by copying it: that drops the triggers of a
rebuilt `delivery` or `delivery_archive` silently, and makes the rename of a rebuilt `post`
fail (the triggers name it while it is missing). Such a migration calls `uninstall` before
and `install` after (tests/store/test_post_platforms.py checks a migrated database has them
all).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

TABLES = ("delivery", "delivery_archive")

_SQLITE_TEMPLATE = """
CREATE TRIGGER IF NOT EXISTS post_platforms_{table}_insert AFTER INSERT ON {table}
BEGIN
    UPDATE post
    SET platforms = CASE platforms WHEN '' THEN ',' ELSE platforms END || NEW.platform || ','
    WHERE id = NEW.post_id AND instr(platforms, ',' || NEW.platform || ',') = 0;
END;
---
CREATE TRIGGER IF NOT EXISTS post_platforms_{table}_delete AFTER DELETE ON {table}
BEGIN
    UPDATE post
    SET platforms = CASE replace(platforms, ',' || OLD.platform || ',', ',')
        WHEN ',' THEN '' ELSE replace(platforms, ',' || OLD.platform || ',', ',') END
    WHERE id = OLD.post_id
        AND NOT EXISTS (
            SELECT 1 FROM delivery WHERE platform = OLD.platform AND post_id = OLD.post_id)
        AND NOT EXISTS (
            SELECT 1 FROM delivery_archive
            WHERE platform = OLD.platform AND post_id = OLD.post_id);
END;
---
CREATE TRIGGER IF NOT EXISTS post_platforms_{table}_fixed BEFORE UPDATE OF post_id, platform
ON {table}
WHEN OLD.post_id IS NOT NEW.post_id OR OLD.platform IS NOT NEW.platform
BEGIN
    SELECT RAISE(ABORT, '{table}: a delivery''s post and platform never change');
END;
"""

# Statement triggers with transition tables: the fan-out inserts thousands of rows in one
# statement, and one UPDATE … FROM for them all is far cheaper than a function call per row.
_POSTGRESQL_FUNCTIONS = """
CREATE OR REPLACE FUNCTION post_platforms_added() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    -- Merged with the post's current value (not the snapshot's): two transactions adding
    -- the same platform to one post leave it there once.
    UPDATE post AS p
    SET platforms = (
        SELECT coalesce(',' || string_agg(DISTINCT x, ',' ORDER BY x) || ',', '')
        FROM unnest(string_to_array(p.platforms || ',' || a.added, ',')) AS x
        WHERE x <> '')
    FROM (
        SELECT n.post_id, string_agg(DISTINCT n.platform, ',') AS added
        FROM new_rows AS n JOIN post AS q ON q.id = n.post_id
        WHERE strpos(q.platforms, ',' || n.platform || ',') = 0
        GROUP BY n.post_id
    ) AS a
    WHERE p.id = a.post_id;
    RETURN NULL;
END
$body$;
---
CREATE OR REPLACE FUNCTION post_platforms_removed() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    UPDATE post AS p
    SET platforms = coalesce((
        SELECT ',' || string_agg(DISTINCT s.platform, ',' ORDER BY s.platform) || ','
        FROM (
            SELECT platform FROM delivery WHERE post_id = p.id
            UNION ALL
            SELECT platform FROM delivery_archive WHERE post_id = p.id
        ) AS s), '')
    WHERE p.id IN (
        SELECT o.post_id FROM old_rows AS o
        WHERE NOT EXISTS (
                SELECT 1 FROM delivery AS d
                WHERE d.platform = o.platform AND d.post_id = o.post_id)
            AND NOT EXISTS (
                SELECT 1 FROM delivery_archive AS d
                WHERE d.platform = o.platform AND d.post_id = o.post_id));
    RETURN NULL;
END
$body$;
---
CREATE OR REPLACE FUNCTION post_platforms_fixed() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    -- No format string: the driver would read its percent sign as a placeholder.
    RAISE EXCEPTION USING MESSAGE =
        TG_TABLE_NAME || ': a delivery''s post and platform never change';
END
$body$;
"""

_POSTGRESQL_TEMPLATE = """
DROP TRIGGER IF EXISTS post_platforms_{table}_insert ON {table};
---
CREATE TRIGGER post_platforms_{table}_insert AFTER INSERT ON {table}
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION post_platforms_added();
---
DROP TRIGGER IF EXISTS post_platforms_{table}_delete ON {table};
---
CREATE TRIGGER post_platforms_{table}_delete AFTER DELETE ON {table}
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
EXECUTE FUNCTION post_platforms_removed();
---
DROP TRIGGER IF EXISTS post_platforms_{table}_fixed ON {table};
---
CREATE TRIGGER post_platforms_{table}_fixed BEFORE UPDATE OF post_id, platform ON {table}
FOR EACH ROW
WHEN (OLD.post_id IS DISTINCT FROM NEW.post_id OR OLD.platform IS DISTINCT FROM NEW.platform)
EXECUTE FUNCTION post_platforms_fixed();
"""

# Every post's value from its deliveries in both tables: for a database that had deliveries
# before the triggers (revision 0006).
_BACKFILL = {
    "sqlite": """
UPDATE post SET platforms = coalesce((
    SELECT ',' || group_concat(platform, ',') || ','
    FROM (
        SELECT platform FROM delivery WHERE post_id = post.id
        UNION
        SELECT platform FROM delivery_archive WHERE post_id = post.id
    )), '')
""",
    "postgresql": """
UPDATE post AS p SET platforms = coalesce((
    SELECT ',' || string_agg(DISTINCT s.platform, ',' ORDER BY s.platform) || ','
    FROM (
        SELECT platform FROM delivery WHERE post_id = p.id
        UNION ALL
        SELECT platform FROM delivery_archive WHERE post_id = p.id
    ) AS s), '')
""",
}


def _statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        text = "---".join(_SQLITE_TEMPLATE.format(table=t) for t in TABLES)
    elif dialect == "postgresql":
        text = (
            _POSTGRESQL_FUNCTIONS
            + "---"
            + "---".join(_POSTGRESQL_TEMPLATE.format(table=t) for t in TABLES)
        )
    else:
        raise ValueError(f"post.platforms has no triggers for the {dialect} database")
    return [s.strip() for s in text.split("---") if s.strip()]


def listing(platforms: Iterable[str]) -> str:
    """The column's value for a post with deliveries on these platforms: what the triggers
    make of them (the order aside, which no reader depends on)."""
    found = sorted(set(platforms))
    return f",{','.join(found)}," if found else ""


def trigger_names() -> list[str]:
    """The triggers `install` creates, by name (the same on both databases)."""
    return [f"post_platforms_{t}_{what}" for t in TABLES for what in ("insert", "delete", "fixed")]


def install(conn: sa.Connection) -> None:
    """Create the triggers (again: safe to repeat)."""
    for statement in _statements(conn.dialect.name):
        conn.exec_driver_sql(statement)


def backfill(conn: sa.Connection) -> None:
    """Set every post's platforms from the deliveries it has now."""
    conn.exec_driver_sql(_BACKFILL[conn.dialect.name].strip())


def uninstall(conn: sa.Connection) -> None:
    for table in TABLES:
        for what in ("insert", "delete", "fixed"):
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    f"DROP TRIGGER IF EXISTS post_platforms_{table}_{what} ON {table}"
                )
            else:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS post_platforms_{table}_{what}")
    if conn.dialect.name == "postgresql":
        for function in ("added", "removed", "fixed"):
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS post_platforms_{function}()")


def has_platform(
    column: sa.ColumnElement[Any], platform: str, dialect: str
) -> sa.ColumnElement[bool]:
    """`column` (post.platforms) lists `platform`: a case-sensitive substring test, as the
    delivery's `platform = :p` is (SQLite's LIKE ignores ASCII case, and a key with `_` or
    `%` would need escaping)."""
    needle = f",{platform},"
    if dialect == "postgresql":
        return sa.func.strpos(column, needle) > 0
    return sa.func.instr(column, needle) > 0


def install_after_create(target: sa.MetaData, connection: sa.Connection, **kw: Any) -> None:
    """`metadata.create_all` (tests, benches without migrations) gets the triggers too, once
    the three tables they touch exist."""
    names = {t.name for t in kw.get("tables") or target.tables.values()}
    if {"post", *TABLES} <= names:
        install(connection)
