"""Link chunks to the caches that hold them; remember when caches and chunks were used.

Revision ID: 0002
Revises: 0001
Created: 2025-11-29

``cache_chunks`` lets a cache list its own chunks (a chunk is shared by every cache
whose grid holds it).  ``last_used_at`` (NULL: never touched since the upgrade)
feeds explicit, dry-runnable pruning.
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_chunks",
        sa.Column("cache_id", sa.Integer, nullable=False),
        sa.Column("chunk_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("cache_id", "chunk_hash", name="pk_cache_chunks"),
        sa.ForeignKeyConstraint(
            ["cache_id"], ["caches.id"], name="fk_cache_chunks_cache_id_caches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_cache_chunks_chunk_hash", "cache_chunks", ["chunk_hash"])
    # Adding a nullable column is an in-place ALTER on SQLite too; batch mode keeps
    # the revision correct should a later one need a table rebuild here.
    with op.batch_alter_table("caches") as batch:
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("caches") as batch:
        batch.drop_column("last_used_at")
    op.drop_index("ix_cache_chunks_chunk_hash", table_name="cache_chunks")
    op.drop_table("cache_chunks")
