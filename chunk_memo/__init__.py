"""chunk-memo: chunked memoization for grid parameter sweeps."""

__version__ = "0.2.0.dev0"
