"""chunk-memo: chunked memoization for grid parameter sweeps."""

from chunk_memo.cache import ChunkCache
from chunk_memo.memo import ChunkMemo
from chunk_memo.runners import Diagnostics, run, run_chunks, run_chunks_streaming, run_streaming
from chunk_memo.runners_parallel import run_parallel

__version__ = "0.2.0.dev0"

auto_load = ChunkCache.auto_load

__all__ = [
    "ChunkCache",
    "ChunkMemo",
    "Diagnostics",
    "auto_load",
    "run",
    "run_chunks",
    "run_chunks_streaming",
    "run_parallel",
    "run_streaming",
]
