"""The catalog of one root: its caches and its chunk index, as SQL queries.

A :class:`Catalog` is bound to one root path.  Everything it answers is scoped to that
root, so one database (a server, or a SQLite file named by the user) can serve many
roots.  It stores strings, numbers and opaque bytes given by the layer above; it never
opens payload files and never decodes a value.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import URL, make_url

from .caches import CacheQueries
from .chunk_index import ChunkIndex
from .dialects import backend_for
from .engine import (
    check_database_file,
    default_url,
    display_url,
    get_engine,
    read_statement,
    remember_database_file,
    run_transaction,
    url_string,
)
from .errors import CacheNotFoundError
from .leases import Leases
from .maintenance import Maintenance
from .queries import statements_for

T = TypeVar("T")


class Catalog(CacheQueries, ChunkIndex, Leases, Maintenance):
    """The catalog of one root, opened (created or upgraded) on construction.

    Parameters
    ----------
    root : str or os.PathLike
        The cache root this catalog answers for.
    url : str or sqlalchemy.engine.URL, optional
        SQLAlchemy URL of the database.  Default: ``sqlite:///<root>/catalog.sqlite``.
        The caller resolves ``CHUNK_MEMO_CATALOG_URL``; the catalog reads no
        environment variable.

    Raises
    ------
    CatalogVersionError
        The database was written by a newer chunk-memo (its schema revision is
        unknown here); the message names both revisions.

    Attributes
    ----------
    root : pathlib.Path
        The absolute root path.
    url : str
        The database URL.
    root_key : str
        How the root is recorded in the database (see Notes).
    revision : str
        The schema revision the database is at (always the head once opened).

    Notes
    -----
    A root is stored by its real path, except that a SQLite catalog lying in the
    root itself records the root as ``"."``, so that moving or copying the root
    directory keeps its catalog valid.

    Examples
    --------
    >>> catalog = Catalog("/tmp/sweep")                      # doctest: +SKIP
    >>> catalog.existing_chunks(["3f2a...", "9bc1..."])     # doctest: +SKIP
    {'3f2a...'}
    """

    def __init__(self, root: str | os.PathLike, url: Optional[str | URL] = None):
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.url = url_string(url) if url is not None else default_url(self.root)
        self._display_url = display_url(self.url)
        check_database_file(self.url)  # a deleted catalog file is created anew
        engine = get_engine(self.url)
        # Imported on use, not with the package: `python -m chunk_memo.catalog.migrate`
        # must find that module not imported yet (runpy warns otherwise).
        from .migrate import ensure_schema

        self.revision = ensure_schema(engine)
        self._sql = statements_for(engine)
        self._backend = backend_for(engine.dialect.name)
        self.root_key = _root_key(self.root, self.url)
        self._root_id = self._root_id_of(self.root_key)
        remember_database_file(self.url)

    def __repr__(self) -> str:
        return f"Catalog(root={str(self.root)!r}, url={self._display_url!r})"

    # -- transactions -----------------------------------------------------------

    def _read(self, work: Callable[[Connection], T]) -> T:
        return run_transaction(get_engine(self.url), work, write=False)

    def _query(self, statement, values: dict) -> list[tuple]:
        """Rows of one read-only :class:`~.queries.DriverStatement` (see read_statement)."""
        return read_statement(
            self.url, statement.sql, statement.bind(values),
            lambda: self._read(lambda connection: statement.fetchall(connection, values)))

    def _write(self, work: Callable[[Connection], T]) -> T:
        return run_transaction(get_engine(self.url), work, write=True)

    def _root_id_of(self, key: str) -> int:
        sql = self._sql
        root_id = self._read(lambda c: c.execute(sql.root_id, {"path": key}).scalar())
        if root_id is not None:
            return root_id

        def register(connection: Connection) -> int:
            connection.execute(sql.insert_root, {"path": key, "now": time.time()})
            return connection.execute(sql.root_id, {"path": key}).scalar_one()

        return self._write(register)

    def _cache_id(self, connection: Connection, cache_hash: str) -> int:
        cache_id = connection.execute(
            self._sql.cache_id, {"root": self._root_id, "cache": cache_hash}
        ).scalar()
        if cache_id is None:
            raise CacheNotFoundError(
                f"no cache {cache_hash!r} under root {str(self.root)!r} in {self._display_url}"
            )
        return cache_id

    # -- caches -----------------------------------------------------------------

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database file (SQLite; else no-op).

        SQLite checkpoints by itself after commits, but readers that always overlap
        can starve it and let the log grow; long-running drivers call this now and
        then.
        """
        statement = self._backend.checkpoint_sql()
        if statement is None:
            return
        raw = get_engine(self.url).raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(statement)
            cursor.fetchall()
            cursor.close()
        finally:
            raw.close()


def _root_key(root: Path, url: str) -> str:
    real_root = os.path.realpath(root)
    folder = backend_for(url).database_folder(make_url(url))
    if folder is not None and os.path.realpath(folder) == real_root:
        return "."
    return real_root


def open_catalog(root: str | os.PathLike, url: Optional[str] = None) -> Catalog:
    """Open (create or upgrade) the catalog of ``root``; see :class:`Catalog`."""
    return Catalog(root, url)

