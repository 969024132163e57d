"""The catalog: caches, their axes and params, and the chunk index, in SQL.

One database (SQLite at ``<root>/catalog.sqlite`` by default, or PostgreSQL through
``psycopg`` for a catalog shared by many roots and machines) reached through
SQLAlchemy Core.  One concern per module: ``schema`` (tables), ``engine`` (engines,
pragmas, retried transactions), ``dialects`` (what differs between backends),
``migrate`` (Alembic on open), ``queries`` (prebuilt statements), ``catalog`` (the
:class:`Catalog`, with its ``caches`` and ``chunk_index`` halves, its ``leases``
on chunks being computed and its ``maintenance`` walks and deletions for the
inspection tools), ``records`` (what goes in and out) and ``validation`` (error
messages for bad input).
"""

from .catalog import Catalog, open_catalog
from .engine import default_url, dispose_engine
from .errors import CacheNotFoundError, CatalogBusyError, CatalogError, CatalogVersionError
from .records import CacheInfo, CacheRecord, ChunkRow, LeaseState

__all__ = [
    "CacheInfo",
    "CacheNotFoundError",
    "CacheRecord",
    "Catalog",
    "CatalogBusyError",
    "CatalogError",
    "CatalogVersionError",
    "ChunkRow",
    "LeaseState",
    "default_url",
    "dispose_engine",
    "head_revision",
    "open_catalog",
    "upgrade_catalog",
]


def __getattr__(name: str):
    # The migrate module is imported on first use, not with the package, so that
    # `python -m chunk_memo.catalog.migrate` runs it fresh (runpy warns about a
    # module its package imported already).
    if name in ("head_revision", "upgrade_catalog"):
        from . import migrate

        return getattr(migrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
