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
