"""queue filters: (platform, post_id) indexes on delivery and delivery_archive; archive state

The queue's channel filter reads the post ids on one platform from these indexes alone
(publisher/views.py `_queue_conditions`, docs/tui.md); `publisher status` counts archived
deliveries by state from `ix_delivery_archive_state` (docs/cli.md).

Revision ID: 0005_queue_indexes
Revises: 0004_archive
Create Date: 2026-12-04 20:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0005_queue_indexes"
down_revision = "0004_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_platform_post", ["platform", "post_id"], unique=False)
    with op.batch_alter_table("delivery_archive", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_archive_platform_post", ["platform", "post_id"], unique=False
        )
        batch_op.create_index("ix_delivery_archive_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_archive", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_archive_state")
        batch_op.drop_index("ix_delivery_archive_platform_post")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_platform_post")
