"""ledger keys, entries and checkpoints (append-only)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("ledger_keys", "ledger_entries", "ledger_checkpoints")
PG_FUNCTION = "weighbridge_ledger_append_only"


def upgrade() -> None:
    op.create_table(
        "ledger_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("actor_key_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("evidence_digest", sa.String(length=71), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["actor_key_id"], ["ledger_keys.key_id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("entry_hash"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_subject"), ["subject"], unique=False)
    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("time", sa.String(length=32), nullable=False),
        sa.Column("signer_key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("frontier_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["signer_key_id"], ["ledger_keys.key_id"]),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    _forbid_changes()


def _forbid_changes() -> None:
    """Rows of the ledger tables can be inserted, never updated or deleted."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {event} is not allowed'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'restrict_violation'; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
    else:
        raise NotImplementedError(f"append-only triggers for the {dialect} dialect")


def downgrade() -> None:
    # Dropping a table drops its triggers.
    op.drop_table("ledger_checkpoints")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_subject"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_action"))
    op.drop_table("ledger_entries")
    op.drop_table("ledger_keys")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {PG_FUNCTION}()")
