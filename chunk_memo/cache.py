"""ChunkCache: a grid of a function's inputs, its identity, and where its chunks live.

A cache ties together the grid (``grid.py``), the identity hashes
(``identity.py``), and the root's chunk storage (``storage.py``: payload files plus
catalog rows).  It runs nothing itself: the runners (``runners.py``) take a cache
and an ``exec_fn``.  A *view* made by :meth:`ChunkCache.slice` shares everything
but its selection of points.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from chunk_memo import discovery, identity, status
from chunk_memo.grid import ChunkKey, Grid, normalize_axis_values
from chunk_memo.leasing import DEFAULT_LEASE_TTL
from chunk_memo.metadata import cache_record
from chunk_memo.planning import Plan

DEFAULT_ROOT = ".chunk_memo"
#: "Last used" is written at most this often per cache and process (a write costs
#: a catalog transaction, which a service answering lookups should not pay each time).
TOUCH_INTERVAL = 60.0
_LAST_MARKED: dict[tuple[str, str], float] = {}
_ALIASES = {"cache_root": "root", "cache_chunk_spec": "chunk_spec"}


class ChunkCache:
    """Chunked memoization of a function over a grid of params and axis values.

    Parameters follow ``SPEC.md``: ``root`` (alias ``cache_root``; default
    ``./.chunk_memo``), ``chunk_spec`` (alias ``cache_chunk_spec``), ``axis_values``,
    ``params``, ``collate_fn``, ``cache_chunk_enumerator``, ``chunk_hash_fn``,
    ``cache_path_fn``, ``cache_version``, ``axis_order``, ``verbose``, ``profile``,
    ``exclusive``, ``warn_on_overlap``; and ours: ``trusted`` (``False``: never
    unpickle), ``catalog_url`` (default ``$CHUNK_MEMO_CATALOG_URL`` or SQLite under
    the root), ``durable`` (fsync payloads), ``leases`` (processes sharing the root
    compute each chunk once; ``False`` turns it off) and ``lease_ttl`` (seconds a
    crashed process can hold chunks up).

    Examples
    --------
    >>> cache = ChunkCache(root=tmp, chunk_spec={"s": 2}, axis_values={"s": [1, 2, 3]},
    ...                    params={"alpha": 0.4}, verbose=0)
    >>> cache.grid.n_chunks
    2
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        chunk_spec: Mapping[str, Any] | None = None,
        axis_values: Mapping[str, Iterable] | None = None,
        params: Mapping[str, Any] | None = None,
        collate_fn: Callable[[list], Any] | None = None,
        cache_chunk_enumerator: Callable[[dict], Sequence[ChunkKey]] | None = None,
        chunk_hash_fn: Callable[[dict, ChunkKey, str], str] | None = None,
        cache_path_fn: Callable[[dict, ChunkKey, str, str], Any] | None = None,
        cache_version: str = "v1",
        axis_order: Sequence[str] | None = None,
        verbose: int = 1,
        profile: bool = False,
        exclusive: bool = False,
        warn_on_overlap: bool = False,
        *,
        trusted: bool = True,
        catalog_url: str | None = None,
        durable: bool = False,
        leases: bool = True,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        **aliases: Any,
    ) -> None:
        root, chunk_spec = _resolve_aliases(root, chunk_spec, aliases)
        if axis_values is None:
            raise TypeError("ChunkCache needs axis_values (use {} for a singleton cache)")
        if not isinstance(cache_version, str):
            raise TypeError(f"cache_version must be a str, got {cache_version!r}")
        self.root = Path(DEFAULT_ROOT if root is None else root).absolute()
        self.grid = Grid.build(axis_values, chunk_spec, axis_order)
        self.collate_fn = collate_fn
        self.cache_chunk_enumerator = cache_chunk_enumerator
        self.chunk_hash_fn = chunk_hash_fn
        self.cache_path_fn = cache_path_fn
        self.cache_version = cache_version
        self.verbose = verbose
        self.profile = profile
        self.exclusive = exclusive
        self.warn_on_overlap = warn_on_overlap
        self.trusted = trusted
        self.catalog_url = catalog_url
        self.durable = durable
        if lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be > 0 seconds, got {lease_ttl}")
        self.leases = leases
        self.lease_ttl = float(lease_ttl)
        self.selected_positions: dict[str, list[int]] = {}
        self._params: dict | None = None
        self._cache_hash: str | None = None
        self._params_hash: str | None = None
        self._registered: str | None = None
        self._storage_local = threading.local()
        if params is not None:
            self.set_params(params)

    # -- identity ------------------------------------------------------------------
    @property
    def params(self) -> dict:
        return dict(self._params or {})

    @property
    def axis_values(self) -> dict[str, list]:
        return {name: list(values) for name, values in self.grid.axis_values.items()}

    @property
    def chunk_spec(self) -> dict[str, int]:
        return dict(self.grid.chunk_spec)

    @property
    def axis_order(self) -> tuple[str, ...]:
        return self.grid.axis_order

    @property
    def own_params(self) -> dict:
        """Params without keys that name an axis: what enters the identity."""
        return identity.params_without_axes(self._params, self.grid.axis_order)

    def _derived(self) -> dict:
        """Values the grid derived for these params and version (shared by slices)."""
        return self.grid.remember((self._params_hash, self.cache_version))

    @property
    def cache_hash(self) -> str:
        if self._cache_hash is None:
            derived = self._derived()
            if "cache_hash" not in derived:
                derived["cache_hash"] = identity.cache_hash(
                    self.own_params, self.grid.axis_values, self.grid.chunk_spec,
                    self.cache_version, self.grid.axis_order)
            self._cache_hash = derived["cache_hash"]
        return self._cache_hash

    @property
    def cache_dir(self) -> Path:
        """This cache's own directory under the root (``cache_path_fn`` paths resolve here)."""
        return self.root / "caches" / self.cache_hash

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Set params and refresh identity; keys naming an axis stay out of the identity."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict, got {type(params).__name__}: {params!r}")
        for key in params:
            if not isinstance(key, str):
                raise TypeError(f"param names must be strings, got {key!r}")
        # Unsupported values fail here, naming their type; the hash keys what this
        # grid derives from these params (identity_key).
        params_hash = identity.value_hash(dict(params))
        self._params = dict(params)
        self._params_hash = params_hash
        self._cache_hash = None
        self.register()

    def register(self) -> None:
        """Record this cache in the catalog (idempotent), checking exclusivity/overlap."""
        if self._params is None:
            raise ValueError("params are not set: call set_params(params) first")
        if self._registered == self.cache_hash:
            return
        catalog = self.storage().catalog
        if not catalog.has_cache(self.cache_hash):
            record = cache_record(self._params, self.grid, self.cache_version)
            discovery.check_overlaps(self, record, catalog)
            catalog.register_cache(record)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._registered = self.cache_hash

    def mark_used(self) -> None:
        """Record in the catalog that this cache was used (at most once a minute)."""
        key = (str(self.root), self.cache_hash)
        now = time.monotonic()
        if now - _LAST_MARKED.get(key, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
            return
        _LAST_MARKED[key] = now
        self.storage().catalog.touch(self.cache_hash)

    def storage(self):
        """This thread's :class:`~chunk_memo.storage.ChunkStorage` for the root.

        One per thread (and per process: a forked child opens its own), so threads
        sharing a cache never share a batch of uncommitted rows.
        """
        from chunk_memo.storage import ChunkStorage

        local = self._storage_local
        if getattr(local, "pid", None) != os.getpid():
            local.storage = ChunkStorage(self.root, catalog_url=self.catalog_url,
                                         durable=self.durable, trusted=self.trusted)
            local.pid = os.getpid()
        return local.storage

    # -- chunks ----------------------------------------------------------------------
    def chunk_hash(self, chunk_key: ChunkKey) -> str:
        """Hash of one chunk: ``chunk_hash_fn`` if given, else params/key/version."""
        if self.chunk_hash_fn is not None:
            return str(self.chunk_hash_fn(self.own_params, chunk_key, self.cache_version))
        return identity.chunk_hash(self.own_params, chunk_key, self.cache_version)

    def chunk_hasher(self):
        """The compiled batch hasher of this cache's grid, params and version."""
        derived = self._derived()
        hasher = derived.get("chunk_hasher")
        if hasher is None:
            hasher = derived["chunk_hasher"] = self.grid.chunk_hasher(
                self.own_params, self.cache_version)
        return hasher

    def resolved_chunk_keys(self) -> list[ChunkKey]:
        """Chunk keys of this view: the enumerator's, or the grid's touched by the selection."""
        plan = Plan(self)
        if plan.keys is not None:
            return list(plan.keys)
        return [self.grid.chunk_key(o) for o in plan.selection.ordinals()]

    def chunk_location(self, chunk_key: ChunkKey, chunk_hash: str) -> str | None:
        """Payload location from ``cache_path_fn`` (relative to the root), else ``None``."""
        if self.cache_path_fn is None:
            return None
        raw = Path(self.cache_path_fn(self.own_params, chunk_key, self.cache_version, chunk_hash))
        path = (raw if raw.is_absolute() else self.cache_dir / raw).resolve()
        root = self.root.resolve()
        if path != root and root not in path.parents:
            raise ValueError(f"cache_path_fn returned {str(raw)!r}, which escapes the root {root}")
        return path.relative_to(root).as_posix()

    def extend_axis_values(self, new_values: Mapping[str, Iterable]) -> None:
        """Append values not yet present to existing axes; unchanged chunks are reused."""
        merged = self.axis_values
        for name, values in new_values.items():
            if name not in merged:
                raise KeyError(f"unknown axis {name!r}; axes are {list(self.axis_order)}")
            known = {identity.encode(v) for v in merged[name]}
            for value in normalize_axis_values(name, values):
                if identity.encode(value) not in known:
                    merged[name].append(value)
                    known.add(identity.encode(value))
        self.grid = Grid(self.grid.axis_order, {k: tuple(v) for k, v in merged.items()},
                         self.grid.chunk_spec)
        self._cache_hash = None
        self._registered = None
        if self._params is not None:
            self.register()

    # -- views -----------------------------------------------------------------------
    def slice(self, params: Mapping[str, Any] | None = None, axis_indices: Mapping | None = None,
              **axes: Any) -> "ChunkCache":
        """A view of this cache scoped to some values or indices of its axes.

        Select by value (``strat=["a"]``; one value means ``[value]``) or by index
        (``axis_indices={"s": slice(0, 3)}``), not both.
        """
        view = copy.copy(self)
        view.selected_positions = self._positions_for(axis_indices, axes)
        if params is not None:
            view.set_params(params)
        return view

    def _positions_for(self, axis_indices: Mapping | None, axes: Mapping) -> dict[str, list[int]]:
        if axis_indices is not None and axes:
            raise ValueError(
                f"select by values ({sorted(axes)}) or by axis_indices "
                f"({sorted(axis_indices)}), not both")
        wanted = axis_indices if axis_indices is not None else axes
        if wanted and not self.grid.axis_order:
            raise ValueError(f"this cache has no axes; cannot select {dict(wanted)!r}")
        positions = dict(self.selected_positions)
        for name, spec in (wanted or {}).items():
            if name not in self.grid.axis_values:
                raise KeyError(f"unknown axis {name!r}; axes are {list(self.axis_order)}")
            if axis_indices is not None:
                chosen = self.grid.positions_for_indices(name, spec)
            else:
                chosen = self.grid.positions_for_values(name, spec)
            previous = positions.get(name)
            if previous is not None:
                chosen = [p for p in chosen if p in set(previous)]
            positions[name] = sorted(set(chosen))
        return positions

    def cache_status(self, axis_indices: Mapping | None = None, **axes: Any) -> dict:
        """Cached and missing chunks of this view (narrowed by values or indices).

        The four chunk lists are read-only sequences built as they are read
        (``status.ChunkList``), so a status over millions of chunks stays small.
        """
        view = self.slice(None, axis_indices, **axes) if (axis_indices or axes) else self
        return status.cache_status(self, view)

    def selected_axis_values(self) -> dict[str, list]:
        return {name: ([values[p] for p in self.selected_positions[name]]
                       if name in self.selected_positions else list(values))
                for name, values in self.grid.axis_values.items()}

    # -- discovery (answered by catalog queries; see discovery.py) -------------------
    discover_caches = classmethod(discovery.discover_caches)
    find_compatible_caches = classmethod(discovery.find_compatible_caches)
    load_from_cache = classmethod(discovery.load_from_cache)
    auto_load = classmethod(discovery.auto_load)

    def __copy__(self) -> "ChunkCache":
        # Views share the thread's storage (pickling, below, must not).
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        return view

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_storage_local"]  # connections stay in their process and thread
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._storage_local = threading.local()

    def __repr__(self) -> str:
        sizes = {name: len(v) for name, v in self.grid.axis_values.items()}
        return (f"ChunkCache(root={str(self.root)!r}, axes={sizes}, "
                f"chunk_spec={self.chunk_spec}, params={self._params!r})")


def _resolve_aliases(root: Any, chunk_spec: Any, aliases: dict) -> tuple[Any, Any]:
    given = {"root": root, "chunk_spec": chunk_spec}
    for alias, value in aliases.items():
        if alias not in _ALIASES:
            raise TypeError(f"ChunkCache() got an unexpected keyword argument {alias!r}")
        name = _ALIASES[alias]
        if given[name] is not None:
            raise TypeError(f"pass either {name!r} or its alias {alias!r}, not both")
        given[name] = value
    return given["root"], given["chunk_spec"]
