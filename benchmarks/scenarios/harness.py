"""What every scenario script shares: its command line, the timed phase, one JSON line.

A scenario is a function ``scenario(impl, root, measure, size) -> dict``.  It builds
what it needs under ``root`` (an empty directory) for a grid of ``size`` (what size
counts, points, chunks or caches, is the script's to say), wraps exactly one phase in
``with measure:`` and returns its measurements; :func:`main` adds which library ran,
the seconds of the measured phase and the process's peak RSS, and prints the result
as one JSON line on stdout.  A library that has nothing to measure raises
:class:`~adapters.NotAvailable`, printed as ``{"n/a": reason}``.  ``compare.py``
starts one fresh process per scenario, size, implementation and repetition; a script
can also be run by hand::

    python benchmarks/scenarios/cold.py --impl ours --size 500000
    python benchmarks/scenarios/cold.py --impl ours --profile /tmp/cold.pstats
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, TypeVar

from adapters import IMPLEMENTATIONS, Implementation, NotAvailable

T = TypeVar("T")


class Measure:
    """Times the one phase run under ``with measure:``; optionally profiles it."""

    def __init__(self, profile_path: str | None = None) -> None:
        self.seconds: float | None = None
        self._profile_path = profile_path
        self._profiler = cProfile.Profile() if profile_path else None
        self._started = 0.0

    def __enter__(self) -> "Measure":
        if self.seconds is not None:
            raise RuntimeError("a scenario measures exactly one phase")
        if self._profiler is not None:
            self._profiler.enable()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.perf_counter() - self._started
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self._profile_path)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``(fn(), seconds it took)``, for phases reported beside the measured one."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def fingerprint(points: list) -> dict:
    """Count and order-sensitive checksum of a flat output, to compare implementations."""
    return {"n_outputs": len(points), "checksum": zlib.crc32(repr(points).encode())}


def peak_rss_kib() -> int:
    """The process's peak RSS so far, in KiB."""
    # Linux reports ru_maxrss in KiB (macOS in bytes; these benchmarks assume Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(scenario: Callable[[Implementation, Path, Measure, int], dict], default_size: int,
         ) -> None:
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=sorted(IMPLEMENTATIONS), required=True,
                        help="which library this process measures")
    parser.add_argument("--size", type=int, default=default_size,
                        help=f"grid size, as the description says (default {default_size:,})")
    parser.add_argument("--root", type=Path,
                        help="an empty directory for the cache (default: a new temporary one)")
    parser.add_argument("--profile", metavar="FILE",
                        help="also write cProfile stats of the measured phase to FILE")
    args = parser.parse_args()

    impl = IMPLEMENTATIONS[args.impl]()  # imports the library
    rss_after_import = peak_rss_kib()
    measure = Measure(args.profile)
    try:
        if args.root is None:
            with tempfile.TemporaryDirectory(prefix="chunk-memo-bench-") as tmp:
                result = scenario(impl, Path(tmp), measure, args.size)
        else:
            if args.root.exists() and any(args.root.iterdir()):
                parser.error(f"--root {args.root} is not empty; give a new or empty directory")
            args.root.mkdir(parents=True, exist_ok=True)
            result = scenario(impl, args.root, measure, args.size)
    except NotAvailable as reason:
        print(json.dumps({**impl.describe(), "size": args.size, "n/a": str(reason)}))
        return
    if measure.seconds is None:
        raise RuntimeError(f"{scenario.__name__} never entered its measured phase")
    # A scenario that probes something after its measurements (with tracemalloc, say)
    # reports the peak RSS it saw before that, as "peak_rss_kib".
    peak_rss = result.pop("peak_rss_kib", None) or peak_rss_kib()
    line = {
        **impl.describe(),
        "size": args.size,
        "seconds": measure.seconds,
        **result,
        "rss_after_import_kib": rss_after_import,
        "peak_rss_kib": peak_rss,
    }
    print(json.dumps(line))
