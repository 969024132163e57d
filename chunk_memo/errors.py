"""Exceptions raised by chunk-memo."""

from __future__ import annotations

__all__ = ["ChunkMemoError", "CorruptPayloadError", "UntrustedPayloadError", "CorruptChunkWarning"]


class ChunkMemoError(Exception):
    """Base class of every chunk-memo error."""


class CorruptPayloadError(ChunkMemoError):
    """A chunk payload file is damaged, truncated, or belongs to another chunk.

    The cache treats such a chunk as missing: it recomputes it and reports the file.
    """

    def __init__(self, chunk_hash: str, path: object, reason: str) -> None:
        self.chunk_hash = chunk_hash
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"corrupt payload for chunk {chunk_hash!r} in file {self.path!r}: {reason}"
        )


class UntrustedPayloadError(ChunkMemoError, ValueError):
    """A payload needs pickle to decode, but the cache was opened with trusted=False."""


class CorruptChunkWarning(UserWarning):
    """A stored chunk was unreadable; it was dropped and will be recomputed."""
