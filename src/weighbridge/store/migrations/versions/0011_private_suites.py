"""private suites: held-out prompt sets kept in the store

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "private_suites",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("categories_json", sa.Text(), nullable=False),
        sa.Column("items_json", sa.Text(), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("private_suites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_private_suites_digest"), ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("private_suites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_private_suites_digest"))
    op.drop_table("private_suites")
