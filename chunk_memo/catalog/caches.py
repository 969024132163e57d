"""The cache half of the catalog: register, fetch, list, and match caches.

:class:`CacheQueries` is a mixin of :class:`~chunk_memo.catalog.catalog.Catalog`,
which provides the transactions (``_read``, ``_write``), the prebuilt statements
(``_sql``), the backend (``_backend``) and the root (``_root_id``, ``_cache_id``).
"""

from __future__ import annotations

import itertools
import time
from functools import partial
from typing import Iterable, Mapping, Optional

from sqlalchemy import Connection

from .chunk_index import LOOKUP_BATCH
from .dialects import json_string_array
from .errors import CacheNotFoundError
from .records import CacheInfo, CacheRecord
from .validation import json_object, require_str_keys

# CacheInfo from a plain row tuple, without the Python frame of CacheInfo._make.
_new_cache_info = partial(tuple.__new__, CacheInfo)


class CacheQueries:
    """Caches of one root: registration, lookup, discovery and matching."""

    def register_cache(self, record: CacheRecord) -> bool:
        """Store a cache with its axes, axis values and params (idempotent).

        Parameters
        ----------
        record : CacheRecord
            The cache; its ``created_at``/``updated_at``/``last_used_at`` are ignored.

        Returns
        -------
        bool
            ``True`` when the cache was new, ``False`` when it was registered already
            (then only its metadata and ``updated_at`` are refreshed).
        """
        if not isinstance(record, CacheRecord):
            raise TypeError(f"register_cache takes a CacheRecord, got {type(record).__name__}")
        sql = self._sql
        now = time.time()

        def register(connection: Connection) -> bool:
            existing = connection.execute(
                sql.cache_id, {"root": self._root_id, "cache": record.cache_hash}
            ).scalar()
            if existing is not None:
                # The hash is the identity: equal hashes mean equal axes and params,
                # so there is nothing to rewrite but the caller's metadata.
                connection.execute(sql.refresh_cache, {
                    "cache_id": existing, "metadata": record.metadata, "now": now})
                return False
            cache_id = connection.execute(sql.insert_cache, {
                "root_id": self._root_id,
                "cache_hash": record.cache_hash,
                "params_hash": record.params_hash,
                "axis_values_hash": record.axis_values_hash,
                "chunk_spec_hash": record.chunk_spec_hash,
                "axis_order_hash": record.axis_order_hash,
                "cache_version": record.cache_version,
                "metadata": record.metadata,
                "created_at": now,
                "updated_at": now,
            }).scalar()
            if cache_id is None:
                # Registered by a concurrent writer since our read (PostgreSQL):
                # rerun, now finding it.
                return register(connection)
            _insert_axes_and_params(connection, sql, cache_id, record)
            return True

        return self._write(register)

    def replace_axis_values(self, old_cache_hash: str, new_record: CacheRecord) -> bool:
        """Register the grown version of a cache (an axis extended with new values).

        Growing an axis changes the cache's identity hash, so the grown cache is a new
        cache; the old one is kept (its chunks are shared by hash anyway).

        Parameters
        ----------
        old_cache_hash : str
            The cache being grown; it must exist under this root.
        new_record : CacheRecord
            The grown cache: same params, chunk spec, version and axis order.

        Returns
        -------
        bool
            Whether ``new_record`` was new (see :meth:`register_cache`).

        Raises
        ------
        CacheNotFoundError
            ``old_cache_hash`` is not registered under this root.
        ValueError
            ``new_record`` differs from the old cache in more than its axis values.
        """
        old = self.get_cache(old_cache_hash)
        if old is None:
            raise CacheNotFoundError(
                f"cannot grow cache {old_cache_hash!r}: it is not registered under root "
                f"{str(self.root)!r}"
            )
        for field in ("params_hash", "chunk_spec_hash", "cache_version", "axis_order_hash"):
            if getattr(old, field) != getattr(new_record, field):
                raise ValueError(
                    f"growing cache {old_cache_hash!r} may only change its axis values, but "
                    f"{field} changes from {getattr(old, field)!r} to "
                    f"{getattr(new_record, field)!r}; register a new cache instead"
                )
        return self.register_cache(new_record)

    def has_cache(self, cache_hash: str) -> bool:
        """Whether this root has the cache ``cache_hash`` (one indexed lookup)."""
        sql = self._sql
        return self._read(lambda connection: connection.execute(
            sql.cache_id, {"root": self._root_id, "cache": cache_hash}).scalar()) is not None

    def get_cache(self, cache_hash: str) -> Optional[CacheRecord]:
        """The full record of one cache of this root, or ``None`` when it is unknown."""
        sql = self._sql

        def load(connection: Connection) -> Optional[CacheRecord]:
            row = connection.execute(
                sql.cache_row, {"root": self._root_id, "cache": cache_hash}
            ).first()
            if row is None:
                return None
            cache_id = row.id
            bound = {"cache_id": cache_id}
            values: dict[str, list] = {}
            for axis, value_hash, value in connection.execute(sql.values_of_cache, bound):
                values.setdefault(axis, []).append((value_hash, value))
            axes = [(axis, values.get(axis, ()))
                    for axis in connection.execute(sql.axes_of_cache, bound).scalars()]
            params = connection.execute(sql.params_of_cache, bound).all()
            created_at, updated_at, last_used_at = row[7:10]
            return CacheRecord(*row[:7], axes=axes, params=[tuple(p) for p in params],
                               created_at=created_at, updated_at=updated_at,
                               last_used_at=last_used_at)

        return self._read(load)

    def list_caches(self) -> list[CacheInfo]:
        """Every cache of this root, oldest first (discovery)."""
        return self._infos(self._sql.list_caches, {"root": self._root_id})

    def find_caches(
        self,
        params_hash: Optional[str] = None,
        axis_values_hash: Optional[str] = None,
        chunk_spec_hash: Optional[str] = None,
        cache_version: Optional[str] = None,
        axis_order_hash: Optional[str] = None,
    ) -> list[CacheInfo]:
        """Caches of this root matching every given criterion exactly.

        A criterion left to ``None`` matches anything; with none given, this is
        :meth:`list_caches`.  Oldest first.
        """
        given = {name: value for name, value in (
            ("params_hash", params_hash),
            ("axis_values_hash", axis_values_hash),
            ("chunk_spec_hash", chunk_spec_hash),
            ("cache_version", cache_version),
            ("axis_order_hash", axis_order_hash),
        ) if value is not None}
        statement = self._sql.find_caches(frozenset(given))
        return self._infos(statement, {"root": self._root_id, **given})

    def find_superset_caches(
        self,
        params: Mapping[str, str],
        axes: Mapping[str, Iterable[str]],
        cache_version: Optional[str] = None,
    ) -> list[CacheInfo]:
        """Caches of this root that hold every point of a request.

        A cache matches when (a) it has every requested axis, holding all the
        requested value hashes; (b) every requested param either equals the cache's
        param of that key or is one of the values of the cache's axis of that name;
        and (c) every param of the cache is requested with the same value hash (a
        cache computed with an extra param is another function call).  A cache may
        have axes the request does not mention (SPEC: "has every requested axis").

        Parameters
        ----------
        params : mapping of str to str
            Requested params, key -> value hash.
        axes : mapping of str to iterable of str
            Requested axes, axis name -> the value hashes wanted on it.
        cache_version : str, optional
            When given, only caches of that version match.

        Returns
        -------
        list of CacheInfo
            Oldest first.

        Raises
        ------
        ValueError
            A key is both a requested param and a requested axis.
        """
        params = dict(params)
        wanted = {axis: list(dict.fromkeys(values)) for axis, values in axes.items()}
        both = sorted(params.keys() & wanted.keys())
        if both:
            raise ValueError(f"{both} requested both as params and as axes; pick one")
        require_str_keys(params.values(), "param value hashes")
        for values in wanted.values():
            require_str_keys(values, "axis value hashes")
        n_axis_values = sum(len(values) for values in wanted.values())
        statement = self._sql.superset(
            has_params=bool(params), has_axes=bool(wanted), has_values=n_axis_values > 0,
            has_version=cache_version is not None,
        )
        return self._infos(statement, {
            "root": self._root_id,
            "params": json_object(params),
            "n_params": len(params),
            "axes": json_object(wanted),
            "n_axis_values": n_axis_values,
            "n_axes": len(wanted),
            "cache_version": cache_version,
        })

    def _infos(self, statement, bound: dict) -> list[CacheInfo]:
        rows = self._read(lambda connection: statement.fetchall(connection, bound))
        return list(map(_new_cache_info, self._backend.native_rows(rows)))

    def touch(self, cache_hash: str, chunk_hashes: Iterable[str] = ()) -> None:
        """Mark a cache (and optionally some of its chunks) as used now.

        Raises
        ------
        CacheNotFoundError
            ``cache_hash`` is not registered under this root.
        """
        sql = self._sql
        now = time.time()
        keys = list(chunk_hashes)

        def touch(connection: Connection) -> None:
            done = connection.execute(sql.touch_cache, {
                "root": self._root_id, "cache": cache_hash, "now": now})
            if done.rowcount == 0:
                self._cache_id(connection, cache_hash)  # raises CacheNotFoundError
            for start in range(0, len(keys), LOOKUP_BATCH):
                connection.execute(sql.touch_chunks, {
                    "root": self._root_id, "now": now,
                    "keys": json_string_array(keys[start:start + LOOKUP_BATCH])})

        self._write(touch)

    # -- chunks -----------------------------------------------------------------

#: Axis value rows per executemany when registering a cache.
AXIS_VALUE_BATCH = 10_000


def _insert_axes_and_params(connection: Connection, sql, cache_id: int,
                            record: CacheRecord) -> None:
    if record.axes:
        connection.execute(sql.insert_axis, [
            {"cache_id": cache_id, "axis_name": axis, "position": position,
             "n_values": len(values)}
            for position, (axis, values) in enumerate(record.axes)])
        # Axes of 10^4-10^5 values: straight to the driver (SQLAlchemy's per-row
        # parameter processing was two thirds of registering such a cache).
        # In batches, so that a 10^5-value axis never exists as one list of rows.
        statement = sql.insert_axis_value
        rows = ((cache_id, axis, position, value_hash, value)
                for axis, values in record.axes
                for position, (value_hash, value) in enumerate(values))
        while batch := list(itertools.islice(rows, AXIS_VALUE_BATCH)):
            connection.exec_driver_sql(statement.sql, statement.parameters(batch))
    if record.params:
        connection.execute(sql.insert_param, [
            {"cache_id": cache_id, "key": key, "value_hash": value_hash}
            for key, value_hash in record.params])


