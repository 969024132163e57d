"""Initial catalog: roots, caches with their axes, axis values and params, chunks.

Revision ID: 0001
Revises:
Created: 2025-11-29

Frozen snapshot: tables are written out literally, never imported from
``chunk_memo.catalog.schema`` (which describes the head revision only).
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roots"),
        sa.UniqueConstraint("path", name="uq_roots_path"),
    )
    op.create_table(
        "caches",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("root_id", sa.Integer, nullable=False),
        sa.Column("cache_hash", _HASH, nullable=False),
        sa.Column("params_hash", _HASH, nullable=False),
        sa.Column("axis_values_hash", _HASH, nullable=False),
        sa.Column("chunk_spec_hash", _HASH, nullable=False),
        sa.Column("axis_order_hash", _HASH, nullable=False),
        sa.Column("cache_version", sa.Text, nullable=False),
        sa.Column("metadata", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caches"),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name="fk_caches_root_id_roots", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("root_id", "cache_hash", name="uq_caches_root_id"),
    )
    for column in (
        "params_hash",
        "axis_values_hash",
        "chunk_spec_hash",
        "axis_order_hash",
        "cache_version",
    ):
        op.create_index(f"ix_caches_{column}", "caches", ["root_id", column])
    op.create_index("ix_caches_root_id", "caches", ["root_id"])

    op.create_table(
        "cache_axes",
        sa.Column("cache_id", sa.Integer, nullable=False),
        sa.Column("axis_name", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("n_values", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("cache_id", "axis_name", name="pk_cache_axes"),
        sa.ForeignKeyConstraint(
            ["cache_id"], ["caches.id"], name="fk_cache_axes_cache_id_caches", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("cache_id", "position", name="uq_cache_axes_cache_id"),
    )
    op.create_table(
        "axis_values",
        sa.Column("cache_id", sa.Integer, nullable=False),
        sa.Column("axis_name", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("value_hash", _HASH, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("cache_id", "axis_name", "position", name="pk_axis_values"),
        sa.ForeignKeyConstraint(
            ["cache_id"], ["caches.id"], name="fk_axis_values_cache_id_caches", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "cache_id", "axis_name", "value_hash", name="uq_axis_values_cache_id"
        ),
    )
    op.create_index("ix_axis_values_lookup", "axis_values", ["axis_name", "value_hash"])

    op.create_table(
        "cache_params",
        sa.Column("cache_id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value_hash", _HASH, nullable=False),
        sa.PrimaryKeyConstraint("cache_id", "key", name="pk_cache_params"),
        sa.ForeignKeyConstraint(
            ["cache_id"], ["caches.id"], name="fk_cache_params_cache_id_caches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_cache_params_lookup", "cache_params", ["key", "value_hash"])

    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("root_id", sa.Integer, nullable=False),
        sa.Column("chunk_hash", _HASH, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("n_items", sa.Integer, nullable=True),
        sa.Column("n_present", sa.Integer, nullable=False),
        sa.Column("present", sa.LargeBinary, nullable=True),
        sa.Column("byte_size", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chunks"),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name="fk_chunks_root_id_roots", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("root_id", "chunk_hash", name="uq_chunks_root_id"),
    )


def downgrade() -> None:
    op.drop_table("chunks")
    op.drop_index("ix_cache_params_lookup", table_name="cache_params")
    op.drop_table("cache_params")
    op.drop_index("ix_axis_values_lookup", table_name="axis_values")
    op.drop_table("axis_values")
    op.drop_table("cache_axes")
    for column in (
        "params_hash",
        "axis_values_hash",
        "chunk_spec_hash",
        "axis_order_hash",
        "cache_version",
    ):
        op.drop_index(f"ix_caches_{column}", table_name="caches")
    op.drop_index("ix_caches_root_id", table_name="caches")
    op.drop_table("caches")
    op.drop_table("roots")
