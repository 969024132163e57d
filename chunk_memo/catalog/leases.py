"""Leases: which process computes which chunk, so that N processes compute each once.

Before computing chunks, a runner claims them (:meth:`Leases.claim_chunks`); it skips
the chunks others hold and picks them up from the catalog once they are recorded.
A lease is live until its ``expires_at``; its owner keeps it live by heartbeating,
and once an owner stops (it crashed, hung or was killed) its leases expire and the
next claim takes them over.  Recording a chunk deletes its lease (in
``record_chunks``, in the same transaction), so a recorded chunk is never claimed.

Clocks: ``now`` is this process's ``time.time()``, read once the write lock is
held.  Processes of one machine share a clock; on a server database reached from
several machines the clocks must agree to well within the ttl (NTP does).

:class:`Leases` is a mixin of :class:`~chunk_memo.catalog.catalog.Catalog`, which
provides the transactions (``_read``, ``_write``), the prebuilt statements
(``_sql``) and the root (``_root_id``).
"""

from __future__ import annotations

import time
from typing import Iterable

from sqlalchemy import Connection

from .dialects import json_string_array
from .records import LeaseState
from .validation import require_owner, require_str_keys, require_ttl

#: Hashes per claim or release transaction: a runner's batch of a few thousand is
#: one short transaction, and a huge request cannot hold the write lock for long.
LEASE_BATCH = 10_000
#: Hashes per lookup statement of :meth:`Leases.lease_states`.
LEASE_LOOKUP_BATCH = 100_000


class Leases:
    """Leases on the chunks of one root: claim, heartbeat, release, inspect."""

    def claim_chunks(self, hashes: Iterable[str], owner: str, ttl: float) -> set[str]:
        """Lease the chunks nobody else is computing; return those ``owner`` now holds.

        Of ``hashes``, a chunk is skipped when it is recorded already or when another
        owner holds a live lease on it (``expires_at`` in the future).  Every other
        chunk is leased to ``owner`` until ``now + ttl``: a free chunk gets a new
        lease, an expired lease of another owner is taken over, and ``owner``'s own
        lease is extended (keeping its ``acquired_at``).

        Parameters
        ----------
        hashes : iterable of str
            Chunk hashes of this root, in any order, duplicates allowed.  Up to
            :data:`LEASE_BATCH` of them cost one write transaction; more are claimed
            in several, each correct on its own.
        owner : str
            Who claims: unique per running process (host, pid and a random nonce),
            so that a restarted process does not inherit a dead one's leases.
        ttl : float
            Seconds the leases stay live without a heartbeat.  Pick it well above
            the heartbeat period and the time a chunk takes between heartbeats.

        Returns
        -------
        set of str
            The chunks of ``hashes`` now leased to ``owner``: compute these, record
            them with ``record_chunks`` (which deletes their leases), or give them
            back with :meth:`release_chunks`.

        Raises
        ------
        TypeError, ValueError
            A hash is not a str, ``owner`` is not a non-empty str, or ``ttl`` is not
            a positive number of seconds.

        Examples
        --------
        A runner's loop over the chunk hashes it needs, ``pending``::

            while pending:
                for start in range(0, len(pending), 256):
                    mine = catalog.claim_chunks(pending[start:start + 256], owner, ttl=60)
                    catalog.record_chunks(compute(mine))  # heartbeat(owner, 60) meanwhile
                done = catalog.existing_chunks(pending)
                pending = [h for h in pending if h not in done]
                if pending:
                    time.sleep(1)  # others compute the rest (or hold expiring leases)
        """
        # Race-free because each key is decided by one conditional upsert (queries:
        # ``claim_leases``) against the newest committed state:
        # - SQLite: BEGIN IMMEDIATE takes the database's only write lock before the
        #   transaction reads anything, so claims run one after the other and each
        #   sees every lease and chunk committed before it.
        # - PostgreSQL (the same statement): at READ COMMITTED, INSERT ... ON
        #   CONFLICT DO UPDATE locks each conflicting row and evaluates its WHERE on
        #   the row's latest committed version; two inserts of one new key wait on
        #   each other in the unique index.  Needed there: READ COMMITTED (or retry
        #   serialization failures, 40001), keys deduplicated (a statement may not
        #   update a row twice) and sorted (the ORDER BY: no deadlocks, 40P01), and
        #   the backend's is_lock_error retrying both.  The NOT EXISTS on chunks
        #   reads the statement's snapshot, which may predate a recorder that was
        #   deleting its lease on a chunk: the claim waits on that lease's row lock
        #   and, once the recorder commits, inserts a fresh lease for the recorded
        #   chunk.  Hence the second look at the granted chunks, in a new statement
        #   of the same transaction (a new snapshot at READ COMMITTED, taken after
        #   every recorder the claim waited for committed): those recorded meanwhile
        #   are given back.
        require_owner(owner)
        seconds = require_ttl(ttl)
        unique = set(hashes)
        require_str_keys(unique, "chunk hashes")
        # Sorted: the statement's ORDER BY finds nothing to reorder, and the batches
        # of a huge request are key ranges.
        keys = sorted(unique)
        sql = self._sql
        statement = sql.claim_leases
        root_id = self._root_id
        recheck = not self._backend.serializes_writes
        decode = self._backend.decode_json_list
        claimed: set[str] = set()
        for start in range(0, len(keys), LEASE_BATCH):
            payload = json_string_array(keys[start:start + LEASE_BATCH])

            def claim(connection: Connection) -> set[str]:
                # Read the clock under the write lock: a claim that waited for the
                # lock must neither judge leases nor date its own with a stale time.
                now = time.time()
                granted = {row[0] for row in statement.fetchall(connection, {
                    "root": root_id, "holder": owner, "now": now, "expires": now + seconds,
                    "keys": payload})}
                if recheck and granted:
                    bound = {"root": root_id, "keys": json_string_array(list(granted))}
                    recorded = decode(connection.execute(sql.existing_chunks, bound).scalar())
                    if recorded:
                        connection.execute(sql.release_leases, {
                            "root": root_id, "holder": owner,
                            "keys": json_string_array(recorded)})
                        granted.difference_update(recorded)
                return granted

            claimed.update(self._write(claim))
        return claimed

    def heartbeat(self, owner: str, ttl: float) -> int:
        """Keep ``owner``'s leases in this root live for ``ttl`` more seconds.

        Extends every lease ``owner`` still holds, expired ones included (nobody
        took those over yet).  A lease taken over by another owner after it expired
        is no longer ``owner``'s: the count then drops, and the runner should stop
        computing those chunks (see :meth:`lease_states`).

        Returns
        -------
        int
            How many leases ``owner`` holds in this root.
        """
        require_owner(owner)
        seconds = require_ttl(ttl)
        statement = self._sql.heartbeat_leases

        def beat(connection: Connection) -> int:
            now = time.time()
            return connection.execute(statement, {
                "root": self._root_id, "holder": owner, "now": now,
                "expires": now + seconds}).rowcount

        return self._write(beat)

    def release_chunks(self, hashes: Iterable[str], owner: str) -> int:
        """Give back ``owner``'s leases on ``hashes`` (chunks it will not compute).

        Leases of other owners are left alone.  Returns how many were released.
        """
        require_owner(owner)
        keys = list(dict.fromkeys(hashes))
        statement = self._sql.release_leases
        released = 0
        for start in range(0, len(keys), LEASE_BATCH):
            bound = {"root": self._root_id, "holder": owner,
                     "keys": json_string_array(keys[start:start + LEASE_BATCH])}
            released += self._write(lambda c: c.execute(statement, bound).rowcount)
        return released

    def release_all(self, owner: str) -> int:
        """Give back every lease ``owner`` holds in this root (a runner's exit path).

        Returns how many were released.
        """
        require_owner(owner)
        statement = self._sql.release_all_leases
        bound = {"root": self._root_id, "holder": owner}
        return self._write(lambda c: c.execute(statement, bound).rowcount)

    def lease_states(self, hashes: Iterable[str]) -> dict[str, LeaseState]:
        """The leases on those of ``hashes`` that have one, live or expired.

        A runner that found chunks leased by others decides from this whom to wait
        for: a lease whose ``expires_at`` is past will be taken over by the next
        :meth:`claim_chunks`.  Recorded chunks have no lease.

        Returns
        -------
        dict of str to LeaseState
            ``{chunk_hash: LeaseState(owner, expires_at)}``; chunks without a lease
            are left out.
        """
        keys = hashes if isinstance(hashes, (list, tuple)) else list(hashes)
        statement = self._sql.lease_states

        def load(connection: Connection) -> dict[str, LeaseState]:
            found: dict[str, LeaseState] = {}
            for start in range(0, len(keys), LEASE_LOOKUP_BATCH):
                rows = statement.fetchall(connection, {
                    "root": self._root_id,
                    "keys": json_string_array(keys[start:start + LEASE_LOOKUP_BATCH])})
                found.update((chunk_hash, LeaseState(owner, expires_at))
                             for chunk_hash, owner, expires_at in rows)
            return found

        return self._read(load) if keys else {}
