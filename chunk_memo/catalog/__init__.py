"""The catalog: caches, their axes and params, and the chunk index, in SQL.

One database (SQLite at ``<root>/catalog.sqlite`` by default) reached through
SQLAlchemy Core.  One concern per module: ``schema`` (tables), ``engine`` (engines,
pragmas, retried transactions), ``dialects`` (what differs between backends),
``migrate`` (Alembic on open), ``queries`` (prebuilt statements), ``catalog`` (the
:class:`Catalog`, with its ``caches`` and ``chunk_index`` halves and its ``leases``
on chunks being computed), ``records`` (what goes in and out) and ``validation``
(error messages for bad input).
"""

from .catalog import Catalog, open_catalog
from .engine import default_url, dispose_engine
from .errors import CacheNotFoundError, CatalogBusyError, CatalogError, CatalogVersionError
from .migrate import head_revision
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
]
