"""The values the catalog takes and returns: plain records of strings, bytes and numbers.

The layer above computes every hash and encodes every value; the catalog stores and
compares them, and never decodes a blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional


class ChunkRow(NamedTuple):
    """One chunk of a root's chunk index.

    A named tuple rather than a dataclass: ``record_chunks`` and ``get_chunks`` move
    10^5 of them at a time, and a tuple goes to the database driver as it is.

    Attributes
    ----------
    chunk_hash : str
        The chunk's identity hash.
    location : str
        Where its payload file lives (relative to the root, as the store decides).
    n_items : int or None
        Number of items in the chunk; ``None`` when the payload is stored whole.
    n_present : int
        Number of items stored.
    present : bytes or None
        Bitmap of the stored items; ``None`` when all are present.
    byte_size : int
        Size of the payload file in bytes.
    checksum : str
        Checksum of the payload file.
    """

    chunk_hash: str
    location: str
    n_items: Optional[int]
    n_present: int
    present: Optional[bytes]
    byte_size: int
    checksum: str


class CacheInfo(NamedTuple):
    """A cache as discovery lists it: its hash, version, metadata and timestamps.

    Returned by ``list_caches``, ``find_caches`` and ``find_superset_caches``; the
    other identity hashes, axes and params are in ``get_cache``'s full record
    (left out here, listing 10^4 caches takes 15 ms instead of 21).
    ``last_used_at`` is ``None`` until the cache is touched.
    """

    cache_hash: str
    cache_version: str
    metadata: bytes
    created_at: float
    updated_at: float
    last_used_at: Optional[float]


class LeaseState(NamedTuple):
    """Who holds the lease of a chunk, and until when (``lease_states`` returns these).

    Attributes
    ----------
    owner : str
        The owner that claimed the chunk (a runner's id, e.g. host, pid and a nonce).
    expires_at : float
        Epoch seconds; the lease is live while this is in the future.  Past it, the
        owner stopped heartbeating and anyone may take the chunk over.
    """

    owner: str
    expires_at: float


AxisValues = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class CacheRecord:
    """Everything the catalog stores about one cache.

    Parameters
    ----------
    cache_hash, params_hash, axis_values_hash, chunk_spec_hash, axis_order_hash : str
        Identity hashes computed by the layer above.
    cache_version : str
        The user's cache version label.
    metadata : bytes
        Opaque blob kept for the caller (``discover_caches`` returns it).
    axes : sequence of (str, sequence of (str, bytes))
        The axes in axis order, each with its values in order, every value as
        ``(value_hash, encoded_value)``.
    params : sequence of (str, str)
        The params that are not axes, as ``(key, value_hash)``; kept sorted by key.
    created_at, updated_at, last_used_at : float or None
        Filled in by the catalog when it returns a record; ignored when registering
        and left out of equality.

    Raises
    ------
    TypeError
        A field has the wrong type (the message names the field and the value).
    ValueError
        An empty hash, a duplicate axis, a duplicate value hash within an axis, a
        duplicate param key, or a param key that is also an axis name.

    Examples
    --------
    >>> record = CacheRecord("c0ffee", "p1", "v1", "s1", "o1", "v1", b"",
    ...                      axes=[("x", [("h0", b"0"), ("h1", b"1")])],
    ...                      params=[("beta", "b2"), ("alpha", "a1")])
    >>> record.params
    (('alpha', 'a1'), ('beta', 'b2'))
    >>> record.axes[0][1][1]
    ('h1', b'1')
    """

    cache_hash: str
    params_hash: str
    axis_values_hash: str
    chunk_spec_hash: str
    axis_order_hash: str
    cache_version: str
    metadata: bytes
    axes: tuple[tuple[str, AxisValues], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    created_at: Optional[float] = field(default=None, compare=False)
    updated_at: Optional[float] = field(default=None, compare=False)
    last_used_at: Optional[float] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("cache_hash", "params_hash", "axis_values_hash", "chunk_spec_hash",
                     "axis_order_hash"):
            _check_hash(getattr(self, name), name)
        if not isinstance(self.cache_version, str):
            raise TypeError(f"cache_version must be a str, got {self.cache_version!r}")
        if not isinstance(self.metadata, (bytes, bytearray, memoryview)):
            raise TypeError(
                "metadata must be bytes (encoded by the caller), "
                f"got {type(self.metadata).__name__}"
            )
        axes = _normalized_axes(self.axes)
        params = _normalized_params(self.params, axis_names={name for name, _ in axes})
        object.__setattr__(self, "metadata", bytes(self.metadata))
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "params", params)

    @property
    def info(self) -> CacheInfo:
        """This record without its axes and params, as the listing queries return it."""
        return CacheInfo(self.cache_hash, self.cache_version, self.metadata,
                         self.created_at, self.updated_at, self.last_used_at)


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str hash, got {value!r} ({type(value).__name__})")
    if not value:
        raise ValueError(f"{what} must not be empty")


def _normalized_axes(axes) -> tuple[tuple[str, AxisValues], ...]:
    normalized = []
    seen_axes = set()
    for entry in axes:
        try:
            name, values = entry
        except (TypeError, ValueError):
            raise TypeError(
                f"an axis must be (axis_name, [(value_hash, value), ...]), got {entry!r}"
            ) from None
        if not isinstance(name, str) or not name:
            raise TypeError(f"axis names must be non-empty str, got {name!r}")
        if name in seen_axes:
            raise ValueError(f"axis {name!r} appears twice in the record")
        seen_axes.add(name)
        normalized.append((name, _normalized_values(name, values)))
    return tuple(normalized)


def _normalized_values(axis: str, values) -> AxisValues:
    normalized = []
    seen = set()
    for entry in values:
        try:
            value_hash, blob = entry
        except (TypeError, ValueError):
            raise TypeError(
                f"a value of axis {axis!r} must be (value_hash, encoded_value), got {entry!r}"
            ) from None
        _check_hash(value_hash, f"value hash on axis {axis!r}")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"the encoded value {value_hash!r} on axis {axis!r} must be bytes, "
                f"got {type(blob).__name__}"
            )
        if value_hash in seen:
            raise ValueError(f"axis {axis!r} holds value hash {value_hash!r} twice")
        seen.add(value_hash)
        # The caller's pair as it is when already (str, bytes): no copy per value.
        normalized.append(entry if type(entry) is tuple and type(blob) is bytes
                          else (value_hash, bytes(blob)))
    return tuple(normalized)


def _normalized_params(params, axis_names: set[str]) -> tuple[tuple[str, str], ...]:
    normalized: dict[str, str] = {}
    for entry in params:
        try:
            key, value_hash = entry
        except (TypeError, ValueError):
            raise TypeError(f"a param must be (key, value_hash), got {entry!r}") from None
        if not isinstance(key, str) or not key:
            raise TypeError(f"param keys must be non-empty str, got {key!r}")
        _check_hash(value_hash, f"hash of param {key!r}")
        if key in normalized:
            raise ValueError(f"param {key!r} appears twice in the record")
        if key in axis_names:
            raise ValueError(
                f"{key!r} is both a param and an axis of the record; a key that names "
                "an axis is left out of the params"
            )
        normalized[key] = value_hash
    return tuple(sorted(normalized.items()))
