"""The chunk half of the catalog: the root's chunk index, in batches.

:class:`ChunkIndex` is a mixin of :class:`~chunk_memo.catalog.catalog.Catalog`,
which provides the transactions (``_read``, ``_write``), the prebuilt statements
(``_sql``), the backend (``_backend``) and the root (``_root_id``, ``_cache_id``).
"""

from __future__ import annotations

import time
from functools import partial
from itertools import islice
from operator import itemgetter
from typing import Iterable, Optional

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from .dialects import json_string_array
from .records import ChunkRow
from .validation import diagnose_chunk_rows, require_str_keys

# ChunkRow from a plain row tuple, without the Python frame of ChunkRow._make.
_new_chunk_row = partial(tuple.__new__, ChunkRow)
_chunk_hash_of = itemgetter(0)

#: Chunk rows per write transaction: short enough to keep the write lock brief,
#: long enough that the per-transaction cost vanishes (~10^5 rows/s).
RECORD_BATCH = 10_000
#: Keys per lookup statement (one JSON parameter each).
LOOKUP_BATCH = 100_000
#: From this many keys on, scanning the root's whole chunk index may beat lookups.
SCAN_MIN_KEYS = 50_000
#: Scan when the root holds fewer than this many chunks per key asked: a lookup
#: costs ~1.5 us a key, a scan ~0.6 us a stored chunk (measured at 10^6 rows).
SCAN_RATIO = 2
#: Chunk hashes per page of a scan (bounds the memory of one answer: ~50 MB).
SCAN_PAGE = 1_000_000


class ChunkIndex:
    """Chunks of one root: batch upserts, existence checks, rows, deletions."""

    def record_chunks(self, rows: Iterable[ChunkRow], cache_hash: Optional[str] = None) -> None:
        """Insert or update chunk rows, one short write transaction per batch.

        Parameters
        ----------
        rows : iterable of ChunkRow
            Recorded in batches of :data:`RECORD_BATCH`; a row whose hash is stored
            already overwrites it (its ``created_at`` is kept).  The leases on the
            recorded chunks, whoever holds them, are deleted in the same transaction.
        cache_hash : str, optional
            Also link every row to this cache of the root.

        Raises
        ------
        CacheNotFoundError
            ``cache_hash`` is not registered under this root.
        TypeError, ValueError
            A malformed row (the message shows it); the batches before it are stored.
        """
        sql = self._sql
        cache_id = None
        if cache_hash is not None:
            cache_id = self._read(lambda c: self._cache_id(c, cache_hash))
        upsert, link = sql.upsert_chunks, sql.link_chunks
        root_id = self._root_id
        iterator = iter(rows)
        while batch := list(islice(iterator, RECORD_BATCH)):
            now = time.time()
            try:
                # In hash order: concurrent writers of overlapping batches then lock
                # rows in one order and never deadlock (row locks on a server).
                batch.sort(key=_chunk_hash_of)
                values = upsert.parameters([(root_id, *row, now, now, now) for row in batch])
                recorded = {"root": root_id,
                            "keys": json_string_array([row[0] for row in batch])}
            except TypeError:
                raise diagnose_chunk_rows(batch) from None
            links = None
            if cache_id is not None:
                links = link.parameters([(cache_id, row[0]) for row in batch])

            def write(connection: Connection) -> None:
                connection.exec_driver_sql(upsert.sql, values)
                if links:
                    connection.exec_driver_sql(link.sql, links)
                # A recorded chunk needs no lease.  Deleted in this transaction, so
                # no claim ever sees the chunk unrecorded yet free.  Most roots have
                # no leases at all (one process): one index step skips the delete.
                if connection.execute(sql.any_lease, {"root": root_id}).first():
                    connection.execute(sql.drop_leases, recorded)

            try:
                self._write(write)
            except DBAPIError as error:
                problem = diagnose_chunk_rows(batch, error)
                if problem is error:
                    raise
                raise problem from error

    def existing_chunks(self, hashes: Iterable[str]) -> set[str]:
        """The subset of ``hashes`` recorded under this root.

        Batches of :data:`LOOKUP_BATCH` keys are looked up in the root's chunk index;
        when the keys are many compared with the chunks stored, the index is read
        through once instead (see :data:`SCAN_RATIO`).  One read transaction, so the
        answer is a consistent snapshot.

        Raises
        ------
        TypeError
            A hash is not a str.
        """
        keys = hashes if isinstance(hashes, (list, tuple)) else list(hashes)
        if not keys:
            return set()
        sql = self._sql
        root_id = self._root_id

        def lookup(connection: Connection) -> set[str]:
            if len(keys) >= SCAN_MIN_KEYS:
                cap = SCAN_RATIO * len(keys)
                stored = connection.execute(
                    sql.count_chunks_capped, {"root": root_id, "cap": cap}).scalar_one()
                if stored < cap:
                    return self._scan_existing(connection, keys, stored)
            found: set[str] = set()
            for start in range(0, len(keys), LOOKUP_BATCH):
                payload = json_string_array(keys[start:start + LOOKUP_BATCH])
                answer = connection.execute(
                    sql.existing_chunks, {"root": root_id, "keys": payload}).scalar()
                found.update(self._backend.decode_json_list(answer))
            return found

        return self._read(lookup)

    def _scan_existing(self, connection: Connection, keys, stored: int) -> set[str]:
        require_str_keys(keys, "chunk hashes")
        if stored == 0:
            return set()
        decode = self._backend.decode_json_list
        bound = {"root": self._root_id}
        if stored <= SCAN_PAGE:  # a set of the few stored hashes, not of the many keys
            return set(decode(
                connection.execute(self._sql.all_chunk_hashes, bound).scalar())).intersection(keys)
        wanted = set(keys)
        found: set[str] = set()
        after = ""  # below every non-empty hash
        while True:
            page = decode(connection.execute(self._sql.chunk_hash_page, {
                **bound, "after": after, "page_size": SCAN_PAGE}).scalar())
            found.update(wanted.intersection(page))
            if len(page) < SCAN_PAGE:
                return found
            after = max(page)

    def get_chunks(self, hashes: Iterable[str]) -> dict[str, ChunkRow]:
        """The stored rows of those ``hashes`` that are recorded under this root."""
        keys = hashes if isinstance(hashes, (list, tuple)) else list(hashes)
        statement = self._sql.get_chunks
        native_rows = self._backend.native_rows

        if len(keys) == 1:  # a lookup: by equality, one statement, no transaction
            require_str_keys(keys, "chunk hashes")
            rows = self._query(self._sql.get_chunk, {"root": self._root_id, "key": keys[0]})
            return {row[0]: _new_chunk_row(row) for row in native_rows(rows)}
        if 0 < len(keys) <= LOOKUP_BATCH:  # one statement: no transaction needed
            rows = self._query(statement, {"root": self._root_id,
                                           "keys": json_string_array(keys)})
            return {row[0]: _new_chunk_row(row) for row in native_rows(rows)}

        def load(connection: Connection) -> dict[str, ChunkRow]:
            found: dict[str, ChunkRow] = {}
            for start in range(0, len(keys), LOOKUP_BATCH):
                payload = json_string_array(keys[start:start + LOOKUP_BATCH])
                rows = statement.fetchall(connection, {"root": self._root_id, "keys": payload})
                found.update((row[0], _new_chunk_row(row)) for row in native_rows(rows))
            return found

        return self._read(load) if keys else {}

    def delete_chunks(self, hashes: Iterable[str]) -> int:
        """Forget chunks of this root (and their links to caches); returns how many.

        The payload files are the caller's to delete, after this returns: a row
        without a file is treated as missing, a file without a row is garbage.
        """
        keys = hashes if isinstance(hashes, (list, tuple)) else list(hashes)
        sql = self._sql
        deleted = 0
        for start in range(0, len(keys), RECORD_BATCH):
            bound = {"root": self._root_id,
                     "keys": json_string_array(keys[start:start + RECORD_BATCH])}

            def delete(connection: Connection) -> int:
                connection.execute(sql.unlink_chunks, bound)
                return connection.execute(sql.delete_chunks, bound).rowcount

            deleted += self._write(delete)
        return deleted

    def linked_chunks(self, cache_hash: str) -> set[str]:
        """Hashes of the chunks linked to a cache by ``record_chunks(..., cache_hash)``.

        Raises
        ------
        CacheNotFoundError
            ``cache_hash`` is not registered under this root.
        """
        sql = self._sql

        def load(connection: Connection) -> set[str]:
            cache_id = self._cache_id(connection, cache_hash)
            answer = connection.execute(sql.linked_chunks, {"cache_id": cache_id}).scalar()
            return set(self._backend.decode_json_list(answer))

        return self._read(load)
