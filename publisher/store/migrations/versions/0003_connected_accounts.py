"""connected channel accounts: origin, who connected them and when, the last check

Revision ID: 0003_connected_accounts
Revises: 0002_recall
Create Date: 2026-12-04 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import publisher.store.tables

revision = "0003_connected_accounts"
down_revision = "0002_recall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "origin",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="config",
            )
        )
        batch_op.add_column(
            sa.Column("connected_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "connected_at", publisher.store.tables.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "checked_at", publisher.store.tables.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("check_detail", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("channel_account", schema=None) as batch_op:
        batch_op.drop_column("check_detail")
        batch_op.drop_column("checked_at")
        batch_op.drop_column("connected_at")
        batch_op.drop_column("connected_by")
        batch_op.drop_column("origin")
