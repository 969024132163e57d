"""Chunk leases: processes sharing a root compute each chunk once.

Before computing chunks a process claims them in the catalog (owner, expiry); a
chunk leased by a live owner is left to it and picked up from the catalog once
recorded; a lease whose owner stopped renewing it is taken over after its expiry,
so a crashed process delays a sweep by at most the lease time.  A heartbeat
thread renews this process's leases while it holds any.  Recording a chunk drops
its lease in the same transaction.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from typing import Iterable

#: Default lease time in seconds: the longest a crashed process can hold up others.
DEFAULT_LEASE_TTL = 30.0
#: Polling interval bounds while waiting for chunks leased by other processes.
POLL_MIN, POLL_MAX = 0.05, 1.0


class Leases:
    """This process's leases on one root's chunks.

    Parameters
    ----------
    catalog : Catalog
        The root's catalog.
    ttl : float
        Lease time; the heartbeat renews every ``ttl / 3`` seconds.
    enabled : bool
        ``False`` turns cooperation off: every claim succeeds, nothing is written.
    """

    def __init__(self, catalog, ttl: float = DEFAULT_LEASE_TTL, enabled: bool = True):
        if ttl <= 0:
            raise ValueError(f"lease ttl must be > 0 seconds, got {ttl}")
        self.catalog = catalog
        self.ttl = float(ttl)
        self.enabled = enabled
        self._owner: str | None = None
        self._held = False
        self._stop: threading.Event | None = None  # created with the heartbeat thread
        self._thread: threading.Thread | None = None
        self._poll = POLL_MIN

    @property
    def owner(self) -> str:
        """This process's owner name in the catalog: host, pid and a random tag."""
        if self._owner is None:
            self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        return self._owner

    @classmethod
    def for_cache(cls, cache) -> "Leases":
        return cls(cache.storage().catalog, ttl=cache.lease_ttl, enabled=cache.leases)

    def claim(self, chunk_hashes: Iterable[str]) -> set[str]:
        """Claim the given chunks; return those this process now holds.

        Chunks already recorded, or leased by another live owner, are not claimed.
        """
        hashes = list(dict.fromkeys(chunk_hashes))
        if not self.enabled or not hashes:
            return set(hashes)
        claimed = self.catalog.claim_chunks(hashes, self.owner, self.ttl)
        if claimed:
            self._held = True
            self._start_heartbeat()
        return claimed

    def release(self, chunk_hashes: Iterable[str]) -> None:
        if self.enabled and self._held:
            self.catalog.release_chunks(list(chunk_hashes), self.owner)

    def wait(self) -> None:
        """Sleep before polling chunks leased by others again (backing off to 1 s)."""
        time.sleep(self._poll)
        self._poll = min(self._poll * 2, POLL_MAX, self.ttl / 4)

    def close(self) -> None:
        """Stop the heartbeat and give up every lease still held."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if self.enabled and self._held:
            self.catalog.release_all(self.owner)
            self._held = False

    def _start_heartbeat(self) -> None:
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._beat, name="chunk-memo-leases",
                                            daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.catalog.heartbeat(self.owner, self.ttl)
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                continue
