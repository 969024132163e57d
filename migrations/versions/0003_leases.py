"""Leases: which process is computing which chunk, so that others skip it.

Revision ID: 0003
Revises: 0002
Created: 2025-12-01

A lease names its owner and expires unless heartbeated; a new table, so nothing
existing is rewritten.  Frozen snapshot: written out literally, never imported from
``chunk_memo.catalog.schema``.
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("root_id", sa.Integer, nullable=False),
        sa.Column("chunk_hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("root_id", "chunk_hash", name="pk_leases"),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name="fk_leases_root_id_roots", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_leases_owner", "leases", ["root_id", "owner"])


def downgrade() -> None:
    op.drop_index("ix_leases_owner", table_name="leases")
    op.drop_table("leases")
