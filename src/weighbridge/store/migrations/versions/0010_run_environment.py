"""where a run was computed, and reproductions of runs

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment_json", sa.Text(), nullable=True))
    op.create_table(
        "reproductions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("answers_same", sa.Integer(), nullable=False),
        sa.Column("verdicts_same", sa.Integer(), nullable=False),
        sa.Column("rejudged_same", sa.Integer(), nullable=False),
        sa.Column("environment_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reproductions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reproductions_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reproductions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reproductions_run_id"))
    op.drop_table("reproductions")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("environment_json")
