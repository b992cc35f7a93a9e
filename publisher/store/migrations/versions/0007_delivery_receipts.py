"""receipt notes on deliveries: what a channel said beside a send that did not fail it

A Zalo OA broadcast refused or over the month's quota, its message id, an image left out:
`delivery.receipt_notes` (and the same column on `delivery_archive`, which archiving copies
by name) keeps the receipt's problems as JSON, for `publisher report receipts` and the TUI's
post detail (docs/delivery.md).

Revision ID: 0007_delivery_receipts
Revises: 0006_platforms_reports
Create Date: 2026-12-04 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from publisher.store import post_platforms

revision = "0007_delivery_receipts"
down_revision = "0006_platforms_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: no table rebuild on SQLite, which would drop the
    # post.platforms triggers on these tables (0006).
    for table in ("delivery", "delivery_archive"):
        op.add_column(table, sa.Column("receipt_notes", sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, and a rebuild drops its triggers: they
    # are taken down first and put back after (docs/architecture.md).
    conn = op.get_bind()
    post_platforms.uninstall(conn)
    for table in ("delivery_archive", "delivery"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("receipt_notes")
    post_platforms.install(conn)
