"""What a run tells the user: a tqdm bar on stderr, per-chunk lines, a summary.

``verbose=0`` prints nothing; ``1`` a bar while work runs (shown only when a run
lasts over half a second) and a one-line summary; ``2`` also a line per chunk.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


class Progress:
    """Progress of one run over ``total_chunks`` chunks holding ``total_points`` points."""

    def __init__(self, verbose: int, total_chunks: int, total_points: int, label: str = "run"):
        self.verbose = verbose
        self.label = label
        self.started = time.perf_counter()
        self.executed_points = 0
        self.bar = _Silent() if verbose < 1 else tqdm(
            total=total_chunks, unit="chunk", desc=f"chunk-memo {label}", file=sys.stderr,
            delay=0.5, leave=False, dynamic_ncols=True)
        self.total_points = total_points

    def executed(self, chunk_hash: str, key: tuple, n_points: int) -> None:
        self.executed_points += n_points
        self.bar.set_postfix_str(f"{self.executed_points} points executed", refresh=False)
        self.bar.update(1)
        if self.verbose >= 2:
            self.bar.write(f"chunk-memo: executed chunk {chunk_hash[:12]} "
                           f"({n_points} points) {key}", file=sys.stderr)

    def reused(self, chunk_hash: str, partial: bool = False) -> None:
        self.bar.update(1)
        if self.verbose >= 2:
            kind = "partial" if partial else "reused"
            self.bar.write(f"chunk-memo: {kind} chunk {chunk_hash[:12]}", file=sys.stderr)

    def close(self, diagnostics) -> None:
        self.bar.close()
        if self.verbose >= 1:
            elapsed = time.perf_counter() - self.started
            print(
                f"chunk-memo {self.label}: {diagnostics.total_chunks} chunks: executed "
                f"{diagnostics.executed_chunks} ({self.executed_points} points), reused "
                f"{diagnostics.cached_chunks}, partial {diagnostics.partial_chunks} "
                f"[{elapsed:.2f} s]",
                file=sys.stderr,
            )


class _Silent:
    """The bar of a run with ``verbose=0``: a lookup should not pay for a tqdm object."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def write(self, text: str, file=None) -> None:
        pass

    def close(self) -> None:
        pass
