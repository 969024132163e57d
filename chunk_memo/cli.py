"""The ``chunk-memo`` command: inspect, verify and prune a cache root.

Every command reads ``--root`` (default ``./.chunk_memo``) through
:mod:`chunk_memo.inspection` and prints text, or JSON with ``--json``.  Exit status:
0 on success, 1 when ``verify`` finds problems it was not asked to repair, 2 on a
usage error, a folder that is not a root, or an unknown cache.

Examples
--------
$ chunk-memo ls
$ chunk-memo status 5be0 --axes strat,s --png coverage.png
$ chunk-memo verify --repair
$ chunk-memo prune --older-than 30 --orphans           # prints the plan
$ chunk-memo prune --older-than 30 --orphans --yes     # removes it
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from typing import Any, Sequence

from chunk_memo import inspection, maintenance
from chunk_memo.cache import DEFAULT_ROOT
from chunk_memo.catalog import CatalogError
from chunk_memo.errors import ChunkMemoError

EXIT_PROBLEMS, EXIT_USAGE = 1, 2
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class _UsageError(Exception):
    """A bad value on the command line; the message says which."""


def duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"30m"``, ``"1h"`` or ``"2d"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; give seconds or a number with s, m, h or d (e.g. 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"days must be >= 0, got {text}")
    return days


# -- formatting ------------------------------------------------------------------

def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{seconds:.0f}s"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
    return f"{stamp} ({_age(max(0.0, time.time() - epoch))} ago)"


def _inline(mapping: dict, width: int = 40) -> str:
    text = " ".join(f"{key}={value!r}" for key, value in mapping.items()) or "-"
    return text if len(text) <= width else text[:width - 1] + "~"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _jsonable(result: Any) -> Any:
    return dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=repr))


# -- commands --------------------------------------------------------------------

def cmd_ls(args) -> int:
    caches = inspection.list_caches(args.root)
    if args.json:
        _print_json([_jsonable(c) for c in caches])
        return 0
    if not caches:
        print(f"no caches under {args.root}")
        return 0
    rows = [["CACHE", "PARAMS", "AXES", "CHUNKS", "BYTES", "LAST USED"]]
    for c in caches:
        axes = " ".join(f"{name}:{n}" for name, n in c.axes.items()) or "-"
        chunks = f"{c.chunks_cached}/{c.chunks_total}"
        if c.chunks_partial:
            chunks += f" (+{c.chunks_partial} partial)"
        params = c.error or _inline(c.params)
        rows.append([c.cache_hash, params, axes, chunks, _size(c.bytes), _when(c.last_used_at)])
    print(_table(rows))
    return 0


def cmd_show(args) -> int:
    details = inspection.describe_cache(args.root, args.cache)
    if args.json:
        _print_json(_jsonable(details))
        return 0
    d = details
    lines = [f"cache       {d.cache_hash}", f"path        {d.path}",
             f"version     {d.cache_version}", f"params      {_inline(d.params, 200)}",
             f"axis order  {', '.join(d.axis_order) or '(none: a singleton)'}",
             f"chunk spec  {_inline(d.chunk_spec, 200)}", "axes"]
    for name, axis in d.axis_values.items():
        shown = [repr(v) for v in axis["head"]] + (["..."] if axis["tail"] else []) + \
            [repr(v) for v in axis["tail"]]
        lines.append(f"  {name}: {axis['count']} values in {axis['bins']} bins: "
                     f"{', '.join(shown)}")
    lines.append("identity    " + ", ".join(f"{k}={v}" for k, v in d.identity.items()))
    lines += [f"created     {_when(d.created_at)}", f"updated     {_when(d.updated_at)}",
              f"last used   {_when(d.last_used_at)}",
              f"chunks      {d.chunks_cached} cached, {d.chunks_partial} partial, "
              f"{d.chunks_total} in the grid ({d.chunks_linked} linked)",
              f"bytes       {_size(d.bytes)} ({d.bytes})"]
    print("\n".join(lines))
    return 0


def cmd_status(args) -> int:
    coverage = inspection.cache_coverage(args.root, args.cache)
    axes = _chosen_axes(args.axes, coverage.axis_order)
    picture = coverage.map(*axes)
    if args.png:
        picture.save_png(args.png)
    if args.json:
        _print_json({**coverage.to_dict(), "map": picture.to_dict(), "png": args.png})
        return 0
    print(picture.text())
    if args.png:
        print(f"wrote {args.png}")
    return 0


def _chosen_axes(text: str | None, axis_order: Sequence[str]) -> tuple:
    if text is None:
        chosen = list(axis_order[:2])
    else:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        if not 1 <= len(chosen) <= 2:
            raise _UsageError(f"--axes takes one or two axis names (a,b), got {text!r}")
    for name in chosen:
        if name not in axis_order:
            raise _UsageError(f"--axes: unknown axis {name!r}; this cache's axes are "
                              f"{list(axis_order)}")
    return tuple(chosen + [None] * (2 - len(chosen)))


def cmd_verify(args) -> int:
    report = maintenance.verify(args.root, args.cache, repair=args.repair, min_age=args.min_age)
    if args.json:
        _print_json({**_jsonable(report), "ok": report.ok})
    else:
        print(_verify_text(report))
    return 0 if report.ok or report.repaired else EXIT_PROBLEMS


def _verify_text(report) -> str:
    scope = f"cache {report.cache_hash}" if report.cache_hash else f"root {report.root}"
    young = sum(not orphan.stale for orphan in report.orphans)
    lines = [f"checked {report.checked} chunks of {scope}: {len(report.broken)} broken, "
             f"{len(report.orphans) - young} orphan files "
             f"({young} younger than {_age(report.min_age)} left alone)"]
    for problem in report.broken:
        lines.append(f"  {problem.problem:<8} {problem.chunk_hash}  {problem.location}")
    for orphan in report.orphans:
        state = "orphan" if orphan.stale else "young"
        lines.append(f"  {state:<8} {orphan.location}  {_size(orphan.bytes)}, "
                     f"{_age(orphan.age_seconds)} old")
    if report.repaired:
        lines.append(f"repaired: dropped {len(report.dropped)} rows (the next run recomputes "
                     f"them), removed {len(report.removed_orphans)} orphan files")
    elif not report.ok:
        lines.append("run again with --repair to drop the broken rows (the next run "
                     "recomputes them) and remove the orphan files")
    return "\n".join(lines)


def cmd_prune(args) -> int:
    try:
        plan = maintenance.plan_prune(args.root, caches=args.cache or (),
                                     older_than_days=args.older_than, orphans=args.orphans,
                                     min_age=args.min_age)
    except ValueError as error:
        raise _UsageError(str(error)) from None
    if args.yes:
        plan = maintenance.apply_prune(plan)
    if args.json:
        _print_json({**_jsonable(plan), "bytes": plan.bytes})
    else:
        print(_prune_text(plan))
    return 0


def _prune_text(plan) -> str:
    verb = "removed" if plan.applied else "would remove"
    lines = [f"{verb} {len(plan.caches)} caches, {len(plan.chunks)} chunks and "
             f"{len(plan.orphans)} orphan files: {_size(plan.bytes)}"]
    lines += [f"  cache   {cache_hash}" for cache_hash in plan.caches]
    lines += [f"  chunk   {c.chunk_hash}  {c.location}  {_size(c.bytes)}" for c in plan.chunks]
    lines += [f"  orphan  {o.location}  {_size(o.bytes)}, {_age(o.age_seconds)} old"
              for o in plan.orphans]
    if plan.kept_shared:
        lines.append(f"kept {len(plan.kept_shared)} chunks that remaining caches hold")
    if plan.young_orphans:
        lines.append(f"left {plan.young_orphans} orphan files younger than "
                     f"{_age(plan.min_age)} (writes possibly in flight)")
    if not plan.applied:
        lines.append("dry run: nothing was removed; pass --yes to remove the above")
    return "\n".join(lines)


def cmd_du(args) -> int:
    usage = inspection.disk_usage(args.root)
    if args.json:
        _print_json(_jsonable(usage))
        return 0
    rows = [["CACHE", "CHUNKS", "BYTES", "SHARED WITH OTHER CACHES"]]
    for c in usage.caches:
        shared = f"{c.shared_chunks} chunks, {_size(c.shared_bytes)}" if c.shared_chunks else "-"
        rows.append([c.cache_hash, str(c.chunks), _size(c.bytes), shared])
    print(_table(rows))
    print(f"root {usage.root}: {usage.recorded_chunks} chunks recorded "
          f"({_size(usage.recorded_bytes)}), {usage.payload_files} payload files on disk "
          f"({_size(usage.payload_bytes)}), catalog {_size(usage.catalog_bytes)}")
    print("a shared chunk is counted for every cache holding it")
    return 0


# -- parser ----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``chunk-memo`` (``--root``/``--json`` also after a command)."""
    parser = argparse.ArgumentParser(prog="chunk-memo",
                                     description="Inspect, verify and prune a chunk-memo root.")
    # Defined twice: a sub-command's own default would overwrite the value given
    # before it, so there the options default to "not given".
    common = argparse.ArgumentParser(add_help=False)
    for container, given in ((parser, {}), (common, {"default": argparse.SUPPRESS})):
        container.add_argument("--root", help="the cache root (default ./.chunk_memo)",
                               **({"default": DEFAULT_ROOT} | given))
        container.add_argument("--json", action="store_true", help="print JSON for scripts",
                               **given)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, function, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(function=function)
        return sub

    command("ls", cmd_ls, "list caches: params, axes, chunks cached/total, bytes, last used")
    command("show", cmd_show, "one cache in full").add_argument("cache", help="cache hash")
    status = command("status", cmd_status, "which chunks of a cache are cached, as a picture")
    status.add_argument("cache", help="cache hash (or a unique prefix)")
    status.add_argument("--axes", help="two axes 'a,b' for rows and columns (default: the "
                        "first two); other axes are summarized per cell")
    status.add_argument("--png", metavar="FILE", help="also draw the picture to a PNG file "
                        "(needs chunk-memo[plot])")
    grace = {"type": duration, "default": inspection.DEFAULT_MIN_AGE, "metavar": "AGE",
             "help": "leave orphan files younger than this (e.g. 90s, 30m, 1h; default 1h): "
                     "they may be writes whose row is not committed yet"}
    verify = command("verify", cmd_verify, "check payloads against checksums and the catalog")
    verify.add_argument("cache", nargs="?", help="only this cache (default: the whole root)")
    verify.add_argument("--repair", action="store_true",
                        help="drop broken rows and their files; remove stale orphan files")
    verify.add_argument("--min-age", **grace)
    prune = command("prune", cmd_prune, "remove caches or unreferenced files (dry run "
                    "unless --yes)")
    prune.add_argument("--cache", action="append", metavar="HASH", help="remove this cache "
                       "(repeatable); its chunks that other caches hold are kept")
    prune.add_argument("--older-than", type=_days, metavar="DAYS",
                       help="remove caches not used for DAYS days")
    prune.add_argument("--orphans", action="store_true",
                       help="remove files that no catalog row points to")
    prune.add_argument("--min-age", **grace)
    prune.add_argument("--yes", action="store_true", help="remove; without it, only print")
    command("du", cmd_du, "space per cache, payload total and catalog size")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chunk-memo`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.function(args)
    except (_UsageError, ChunkMemoError, CatalogError, LookupError, ImportError,
            ValueError) as error:
        message = error.args[0] if isinstance(error, LookupError) and error.args else error
        print(f"chunk-memo: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
