"""pinned references, and how a run sampled its items

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_references",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("chat_format", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("model_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_references_submission_id"), ["submission_id"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sampling_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("sampling_json")
    with op.batch_alter_table("model_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_references_submission_id"))
    op.drop_table("model_references")
