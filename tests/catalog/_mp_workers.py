"""Process bodies of the multi-process tests (importable by 'spawn' children)."""

import os
import traceback

from _builders import chunk_row


def record_overlapping(index, root, url, barrier, errors, n_rows=2000, batch=250):
    """Open the catalog when every process is ready, then record rows in batches.

    Process ``index`` records chunks ``index * n_rows // 2`` to that plus ``n_rows``,
    so neighbours overlap by half.
    """
    try:
        from chunk_memo.catalog import Catalog

        barrier.wait(timeout=60)
        catalog = Catalog(root, url)  # every process opens the fresh file at once
        first = index * n_rows // 2
        rows = [chunk_row(i) for i in range(first, first + n_rows)]
        for start in range(0, n_rows, batch):
            catalog.record_chunks(rows[start:start + batch])
        missing = {r.chunk_hash for r in rows} - catalog.existing_chunks(
            [r.chunk_hash for r in rows])
        if missing:
            raise AssertionError(f"process {index}: {len(missing)} rows missing after recording")
    except BaseException:
        errors.put(f"process {index} (pid {os.getpid()}):\n{traceback.format_exc()}")
        raise


def claim_and_record(index, root, url, hashes, barrier, out_path, errors, batch=50):
    """A runner of a shared sweep: claim, "compute" (record), repeat until all are done.

    Even processes walk ``hashes`` in order, so that they race for the very same
    batches; odd ones walk them shuffled.  Every hash this process was granted goes
    to the JSON list at ``out_path``, duplicates included.
    """
    try:
        import json
        import random
        import time

        from chunk_memo.catalog import Catalog, ChunkRow

        catalog = Catalog(root, url)
        owner = f"runner-{index}-{os.getpid()}"
        pending = list(hashes)
        if index % 2:
            random.Random(index).shuffle(pending)
        claimed = []
        barrier.wait(timeout=60)
        while pending:
            for start in range(0, len(pending), batch):
                mine = catalog.claim_chunks(pending[start:start + batch], owner, ttl=60)
                claimed.extend(mine)
                if mine:
                    # Computing, outside any transaction.  It also lets the others
                    # in: SQLite's busy handler sleeps, so a process that writes
                    # back to back would win the lock every time and do all the work.
                    time.sleep(0.005)
                catalog.record_chunks(
                    ChunkRow(h, f"{h}.bin", None, 1, None, 1, h) for h in sorted(mine))
            done = catalog.existing_chunks(pending)
            pending = [h for h in pending if h not in done]
            if pending:
                time.sleep(0.01)  # the others are still computing these
        with open(out_path, "w") as out:
            json.dump(claimed, out)
    except BaseException:
        errors.put(f"process {index} (pid {os.getpid()}):\n{traceback.format_exc()}")
        raise
