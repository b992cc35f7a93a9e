"""recall: take sent posts back (recall requests and one withdrawal per delivery)

Revision ID: 0002_recall
Revises: 0001
Create Date: 2026-12-04 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import publisher.store.tables

revision = "0002_recall"
down_revision = "0001"
branch_labels = None
depends_on = None

STRING = sqlmodel.sql.sqltypes.AutoString
TIME = publisher.store.tables.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "recall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", STRING(length=16), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("reason", STRING(), nullable=False),
        sa.Column("notice", STRING(), nullable=False),
        sa.Column("requested_by", STRING(), nullable=False),
        sa.Column("requested_at", TIME(timezone=True), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recall_article_id"), ["article_id"], unique=False)

    op.create_table(
        "withdrawal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", STRING(length=64), nullable=False),
        sa.Column("account_id", STRING(length=128), nullable=False),
        sa.Column("platform", STRING(length=16), nullable=False),
        sa.Column("state", STRING(length=24), nullable=False),
        sa.Column("due_at", TIME(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("lease_owner", STRING(length=128), nullable=True),
        sa.Column("lease_until", TIME(timezone=True), nullable=True),
        sa.Column("remote_id", STRING(), nullable=True),
        sa.Column("remote_url", STRING(), nullable=True),
        sa.Column("last_error", STRING(), nullable=True),
        sa.Column("error_kind", STRING(length=24), nullable=True),
        sa.Column("withdrawn_at", TIME(timezone=True), nullable=True),
        sa.Column("created_at", TIME(timezone=True), nullable=False),
        sa.Column("updated_at", TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.ForeignKeyConstraint(["recall_id"], ["recall.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    with op.batch_alter_table("withdrawal", schema=None) as batch_op:
        batch_op.create_index("ix_withdrawal_due", ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_withdrawal_post_id"), ["post_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_withdrawal_recall_id"), ["recall_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("withdrawal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawal_recall_id"))
        batch_op.drop_index(batch_op.f("ix_withdrawal_post_id"))
        batch_op.drop_index("ix_withdrawal_due")
    op.drop_table("withdrawal")
    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recall_article_id"))
    op.drop_table("recall")
