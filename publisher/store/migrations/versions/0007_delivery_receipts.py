"""receipt notes on deliveries: what a channel said beside a send that did not fail it

A Zalo OA broadcast refused or over the month's quota, its message id, an image left out:
`delivery.receipt_notes` (and the same column on `delivery_archive`, which archiving copies
by name) keeps the receipt's problems as JSON, for `publisher report receipts` and the TUI's
post detail (docs/delivery.md).

Revision ID: 0007_delivery_receipts
Revises: 0005_queue_indexes
Create Date: 2026-12-04 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_delivery_receipts"
# 0006 is being added on another branch; the lead chains the two at merge.
down_revision = "0005_queue_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("delivery", "delivery_archive"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("receipt_notes", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("delivery_archive", "delivery"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("receipt_notes")
