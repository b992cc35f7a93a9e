"""post.platforms kept by triggers, in the queue's count index; report indexes on deliveries

- `post.platforms` (",facebook,zalo,"): the platforms of a post's deliveries, hot or archived,
  kept by triggers on `delivery` and `delivery_archive` (publisher/store/post_platforms.py),
  filled here from the rows already there; `ix_post_queue_count` gains it as a last column so
  the queue's channel filter counts from that index alone (docs/tui.md).
- `(article_id, state, unit_code, sent_at)` on `delivery` and `delivery_archive`: `publisher
  report directives` reads its rows from these indexes alone, in (article, state) order
  (docs/reports.md). They replace the `article_id` indexes they start with, which would only
  cost every insert (the fan-out writes as many index entries per delivery as before).

Revision ID: 0006_platforms_reports
Revises: 0005_queue_indexes
Create Date: 2026-12-04 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from publisher.store import post_platforms

revision = "0006_platforms_reports"
down_revision = "0005_queue_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite (a rebuild would drop
    # triggers), a catalogue-only change on PostgreSQL.
    op.add_column(
        "post",
        sa.Column(
            "platforms", sqlmodel.sql.sqltypes.AutoString(), server_default="", nullable=False
        ),
    )
    conn = op.get_bind()
    post_platforms.backfill(conn)
    post_platforms.install(conn)
    op.drop_index("ix_post_queue_count", table_name="post")
    op.create_index(
        "ix_post_queue_count", "post", ["article_id", "state", "unit_code", "platforms"]
    )
    op.create_index(
        "ix_delivery_report", "delivery", ["article_id", "state", "unit_code", "sent_at"]
    )
    op.create_index(
        "ix_delivery_archive_report",
        "delivery_archive",
        ["article_id", "state", "unit_code", "sent_at"],
    )
    op.drop_index("ix_delivery_article_id", table_name="delivery")
    op.drop_index("ix_delivery_archive_article_id", table_name="delivery_archive")


def downgrade() -> None:
    op.create_index("ix_delivery_archive_article_id", "delivery_archive", ["article_id"])
    op.create_index("ix_delivery_article_id", "delivery", ["article_id"])
    op.drop_index("ix_delivery_archive_report", table_name="delivery_archive")
    op.drop_index("ix_delivery_report", table_name="delivery")
    op.drop_index("ix_post_queue_count", table_name="post")
    op.create_index("ix_post_queue_count", "post", ["article_id", "state", "unit_code"])
    post_platforms.uninstall(op.get_bind())
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("platforms")
