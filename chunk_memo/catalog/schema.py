"""The catalog's tables, as SQLAlchemy Core metadata (the head of the migrations).

One database may serve many roots, so caches and chunks carry ``root_id`` and every
query is scoped to one root.  Every hash is the string the identity layer computed;
``metadata`` and axis ``value`` columns are opaque blobs the catalog never decodes.
Timestamps are float epoch seconds.

This module describes the *head* revision only.  The Alembic revisions under
``migrations/versions`` write their tables out literally, and a test checks that
upgrading an empty database to head yields exactly these tables.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Column type of every identity hash (32 hex characters today, room to grow).
HASH = String(64)

# Named constraints: Alembic's batch mode on SQLite can only rebuild a table whose
# constraints have names, and the migrations use the same names.
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_updated() -> list[Column]:
    return [
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        Column("last_used_at", Float, nullable=True),
    ]


roots = Table(
    "roots",
    metadata,
    Column("id", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("path"),
)

caches = Table(
    "caches",
    metadata,
    Column("id", Integer, nullable=False),
    Column("root_id", Integer, ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    Column("cache_hash", HASH, nullable=False),
    Column("params_hash", HASH, nullable=False),
    Column("axis_values_hash", HASH, nullable=False),
    Column("chunk_spec_hash", HASH, nullable=False),
    Column("axis_order_hash", HASH, nullable=False),
    Column("cache_version", Text, nullable=False),
    Column("metadata", LargeBinary, nullable=False),
    *_created_updated(),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("root_id", "cache_hash"),
)

#: The columns ``find_caches`` may filter on exactly; each has a (root_id, column) index.
EXACT_MATCH_COLUMNS = (
    "params_hash",
    "axis_values_hash",
    "chunk_spec_hash",
    "axis_order_hash",
    "cache_version",
)
for _name in EXACT_MATCH_COLUMNS:
    Index(f"ix_caches_{_name}", caches.c.root_id, caches.c[_name])
# (root_id, rowid) order: a root's caches come out oldest first without a sort.
Index("ix_caches_root_id", caches.c.root_id)

cache_axes = Table(
    "cache_axes",
    metadata,
    Column("cache_id", Integer, ForeignKey("caches.id", ondelete="CASCADE"), nullable=False),
    Column("axis_name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("n_values", Integer, nullable=False),
    PrimaryKeyConstraint("cache_id", "axis_name"),
    UniqueConstraint("cache_id", "position"),
)

axis_values = Table(
    "axis_values",
    metadata,
    Column("cache_id", Integer, ForeignKey("caches.id", ondelete="CASCADE"), nullable=False),
    Column("axis_name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("value_hash", HASH, nullable=False),
    Column("value", LargeBinary, nullable=False),
    PrimaryKeyConstraint("cache_id", "axis_name", "position"),
    # One value per axis; also the index of "does this cache hold this value".
    UniqueConstraint("cache_id", "axis_name", "value_hash"),
    # "Which caches hold this value on this axis": superset matching.
    Index("ix_axis_values_lookup", "axis_name", "value_hash"),
)

cache_params = Table(
    "cache_params",
    metadata,
    Column("cache_id", Integer, ForeignKey("caches.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("value_hash", HASH, nullable=False),
    PrimaryKeyConstraint("cache_id", "key"),
    Index("ix_cache_params_lookup", "key", "value_hash"),
)

chunks = Table(
    "chunks",
    metadata,
    # A rowid table with a narrow unique index (root_id, chunk_hash): existence
    # checks read only that index, which is a third of the table's size (measured:
    # 10^6 lookups 1.3 s against 2.4 s for a WITHOUT ROWID table keyed by the hash).
    Column("id", Integer, nullable=False),
    Column("root_id", Integer, ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    Column("chunk_hash", HASH, nullable=False),
    Column("location", Text, nullable=False),
    Column("n_items", Integer, nullable=True),  # NULL: the payload is stored whole
    Column("n_present", Integer, nullable=False),
    Column("present", LargeBinary, nullable=True),  # item bitmap; NULL: all present
    Column("byte_size", BigInteger, nullable=False),
    Column("checksum", String(128), nullable=False),
    *_created_updated(),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("root_id", "chunk_hash"),
)

cache_chunks = Table(
    "cache_chunks",
    metadata,
    # A chunk is shared by every cache of its root whose grid holds it; the link
    # lives in the cache's root, so no root_id here.
    Column("cache_id", Integer, ForeignKey("caches.id", ondelete="CASCADE"), nullable=False),
    Column("chunk_hash", HASH, nullable=False),
    PrimaryKeyConstraint("cache_id", "chunk_hash"),
    Index("ix_cache_chunks_chunk_hash", "chunk_hash"),
)

leases = Table(
    "leases",
    metadata,
    # Who is computing a chunk of the root right now.  A lease is live while
    # expires_at is in the future; its owner pushes expires_at forward by
    # heartbeating, and anyone may take a lease over once it has expired (its owner
    # died or hung).  Recording a chunk deletes its lease.
    Column("root_id", Integer, ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    Column("chunk_hash", HASH, nullable=False),
    Column("owner", Text, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    PrimaryKeyConstraint("root_id", "chunk_hash"),
    # Heartbeats and releases go by owner.
    Index("ix_leases_owner", "root_id", "owner"),
)

#: Columns of a chunk row, in the order of :class:`~chunk_memo.catalog.records.ChunkRow`.
CHUNK_ROW_COLUMNS = (
    "chunk_hash",
    "location",
    "n_items",
    "n_present",
    "present",
    "byte_size",
    "checksum",
)

#: Columns of a cache's full record, in the order of the fields of
#: :class:`~chunk_memo.catalog.records.CacheRecord` (axes and params aside).
CACHE_RECORD_COLUMNS = (
    "cache_hash",
    "params_hash",
    "axis_values_hash",
    "chunk_spec_hash",
    "axis_order_hash",
    "cache_version",
    "metadata",
    "created_at",
    "updated_at",
    "last_used_at",
)

#: Columns of a cache summary, in the order of :class:`~chunk_memo.catalog.records.CacheInfo`.
#: Four identity hashes fewer than a record: listing 10^4 caches takes 15 ms, not 21.
CACHE_INFO_COLUMNS = (
    "cache_hash",
    "cache_version",
    "metadata",
    "created_at",
    "updated_at",
    "last_used_at",
)
