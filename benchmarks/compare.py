"""Compare chunk-memo from this repository with the published chunk-memo 0.1.5.

    python benchmarks/compare.py [--repeat N] [--only SCENARIO] [--impl ours,v015]

Each scenario (``benchmarks/scenarios/<name>.py``) runs in a fresh process per
implementation and repetition, with a fresh cache root, and prints one JSON line.
Implementations alternate A B / B A across repetitions so that drift on a shared
machine hits both alike.  ``ours`` runs in this Python (the editable install of the
repository); ``v015`` runs in ``benchmarks/.venvs/chunk-memo-0.1.5``, created here
with ``pip install chunk-memo==0.1.5`` if it is missing.

Prints one table per scenario (median, min-max, ratio to ours, peak RSS) and writes
them, with the machine, the date and the command, to ``benchmarks/RESULTS.md``.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SCENARIO_DIR = BENCH_DIR / "scenarios"
RESULTS = BENCH_DIR / "RESULTS.md"
PUBLISHED_VERSION = "0.1.5"
PUBLISHED_VENV = BENCH_DIR / ".venvs" / f"chunk-memo-{PUBLISHED_VERSION}"
IMPL_LABELS = {"ours": "ours", "v015": f"chunk-memo {PUBLISHED_VERSION}"}
# Variables that would make a scenario process import or store somewhere else.
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CHUNK_MEMO_CATALOG_URL")


@dataclass(frozen=True)
class Column:
    """An extra per-run measurement shown as its median: ``line[key] * scale``."""

    header: str
    key: str
    scale: float = 1.0
    digits: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    unit: str
    target: float | None  # ours' median must be at most this (None: see check_extend)
    columns: tuple[Column, ...]

    @property
    def script(self) -> Path:
        return SCENARIO_DIR / f"{self.name}.py"


SCENARIOS = (
    Scenario("cold", "Cold run: overhead per point (50,000 points, 500 chunks)", "us/point",
             5.0, (Column("run s", "seconds", digits=3),
                   Column("exec_fn alone ms", "exec_alone_s", 1e3, 2),
                   Column("cache setup ms", "setup_s", 1e3, 1))),
    Scenario("warm", "Warm run: time per point, everything cached (50,000 points)",
             "us/point", 1.0, (Column("run s", "seconds", digits=3),
                               Column("cache setup ms", "setup_s", 1e3, 1))),
    Scenario("subset", "1% subset: run on a slice, per selected point (1,000 of 100,000)",
             "us/selected point", 5.0,
             (Column("run ms", "seconds", 1e3, 2), Column("slice ms", "slice_s", 1e3, 2),
              Column("slice+run us/point", "slice_and_run_us_per_point", digits=2))),
    Scenario("extend", "Extend: second run after 10,000 new values on a 10,000-value axis",
             "ms (second run)", None,
             (Column("extend_axis_values ms", "extend_s", 1e3, 1),)),
    Scenario("coop", "4 processes, one 400-chunk sweep: executions / points",
             "executions/point", 1.05,
             (Column("wall s", "seconds", digits=2),
              Column("chunks stored (of 400)", "stored_chunks", digits=0))),
)


# -- interpreters ---------------------------------------------------------------------


def published_python() -> Path:
    """The virtual environment's Python with chunk-memo 0.1.5, created or repaired if needed."""
    python = PUBLISHED_VENV / "bin" / "python"
    if _installed_version(python) == PUBLISHED_VERSION:
        return python
    if not python.exists():
        print(f"creating {PUBLISHED_VENV.relative_to(REPO)} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PUBLISHED_VENV)], check=True)
    print(f"installing chunk-memo=={PUBLISHED_VERSION} into it ...", file=sys.stderr)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    f"chunk-memo=={PUBLISHED_VERSION}"], check=True)
    found = _installed_version(python)
    if found != PUBLISHED_VERSION:
        raise SystemExit(f"{python} has chunk-memo {found!r} after installing "
                         f"{PUBLISHED_VERSION}; delete {PUBLISHED_VENV} and retry")
    return python


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    # -I: without it the current directory joins sys.path, and this repository's own
    # chunk_memo.egg-info would answer for the virtual environment.
    probe = subprocess.run(
        [str(python), "-I", "-c",
         "import importlib.metadata as m; print(m.version('chunk-memo'))"],
        capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def _scenario_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}


# -- one run --------------------------------------------------------------------------


def run_once(scenario: Scenario, impl: str, python: Path, timeout: float) -> dict:
    """One fresh process: the scenario's JSON line, or ``{"error": ...}``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"chunk-memo-{scenario.name}-{impl}-"))
    try:
        done = subprocess.run(
            [str(python), str(scenario.script), "--impl", impl, "--root", str(workdir / "root")],
            cwd=workdir, env=_scenario_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}: {_tail(done.stderr)}"}
    try:
        line = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no JSON line on stdout: {_tail(done.stdout + done.stderr)}"}
    _check_library(line, impl)
    return line


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _check_library(line: dict, impl: str) -> None:
    """Stop if a process imported another chunk_memo than the one it claims to measure."""
    if impl == "ours" and Path(line["module"]) != REPO / "chunk_memo":
        raise SystemExit(f"'ours' imported chunk_memo from {line['module']}, not "
                         f"{REPO / 'chunk_memo'}; run compare.py with the Python that has "
                         f"the editable install (pip install -e {REPO})")
    if impl == "v015" and line["version"] != PUBLISHED_VERSION:
        raise SystemExit(f"'v015' imported chunk-memo {line['version']} from "
                         f"{line['module']}; delete {PUBLISHED_VENV} and retry")


# -- reporting ------------------------------------------------------------------------


def scenario_report(scenario: Scenario, impls: list[str], runs: dict[str, list[dict]]) -> str:
    """A Markdown section: the table, then checks (targets, exec counts, equal outputs)."""
    ok = {impl: [r for r in runs[impl] if "error" not in r] for impl in impls}
    medians = {impl: statistics.median(r["metric"] for r in ok[impl])
               for impl in impls if ok[impl]}
    header = ["implementation", f"median {scenario.unit}", "min-max", "ratio to ours",
              "peak RSS MiB", *(c.header for c in scenario.columns), "exec points", "runs"]
    rows = []
    for impl in impls:
        good = ok[impl]
        failed = len(runs[impl]) - len(good)
        runs_text = f"{len(good)}" + (f" ({failed} failed)" if failed else "")
        if not good:
            rows.append([IMPL_LABELS[impl], "-", "-", "-", "-",
                         *("-" for _ in scenario.columns), "-", runs_text])
            continue
        metrics = [r["metric"] for r in good]
        ratio = (f"{medians[impl] / medians['ours']:.2f}"
                 if "ours" in medians and medians["ours"] > 0 else "n/a")
        rows.append([
            IMPL_LABELS[impl],
            _num(medians[impl]),
            f"{_num(min(metrics))} - {_num(max(metrics))}",
            ratio,
            f"{statistics.median(r['peak_rss_kib'] for r in good) / 1024:.0f}"
            f" (import {statistics.median(r['rss_after_import_kib'] for r in good) / 1024:.0f})",
            *(f"{statistics.median(r[c.key] for r in good) * c.scale:.{c.digits}f}"
              for c in scenario.columns),
            _spread(r["exec_points"] for r in good),
            runs_text,
        ])
    lines = [f"### {scenario.name}: {scenario.title}", "", _markdown_table(header, rows), ""]
    lines += [f"- {note}" for note in _checks(scenario, impls, ok, medians)]
    for impl in impls:
        for r in runs[impl]:
            if "error" in r:
                lines.append(f"- {IMPL_LABELS[impl]} failed: {r['error'].splitlines()[-1]}")
    return "\n".join(lines) + "\n"


def _checks(scenario: Scenario, impls: list[str], ok: dict, medians: dict) -> list[str]:
    notes = []
    if "ours" in medians and scenario.target is not None:
        verdict = "met" if medians["ours"] <= scenario.target else "MISSED"
        notes.append(f"target for ours: <= {scenario.target:g} {scenario.unit}: {verdict} "
                     f"(median {_num(medians['ours'])})")
    if scenario.name == "extend":
        for impl in impls:
            for r in ok[impl]:
                if r["exec_points"] != r["new_points"]:
                    target = " (target for ours: MISSED)" if impl == "ours" else ""
                    notes.append(f"{IMPL_LABELS[impl]} computed {r['exec_points']:,} points, "
                                 f"not just the {r['new_points']:,} new ones{target}")
                    break
            else:
                if ok[impl]:
                    target = " (target for ours: met)" if impl == "ours" else ""
                    notes.append(f"{IMPL_LABELS[impl]}: exactly the {ok[impl][0]['new_points']:,}"
                                 f" new points computed in every run{target}")
    outputs = {(r["n_outputs"], r["checksum"]) for impl in impls for r in ok[impl]}
    if len(outputs) > 1:
        notes.append(f"WARNING: outputs differ between runs or implementations: {sorted(outputs)}")
    elif outputs:
        n_outputs, _ = outputs.pop()
        notes.append(f"outputs identical across implementations and runs ({n_outputs:,} points)")
    return notes


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _spread(values) -> str:
    values = list(values)
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def machine_report(command: str, impls: list[str], pythons: dict[str, Path], repeat: int) -> str:
    versions = {impl: _python_version(python) for impl, python in pythons.items()}
    lines = [
        f"- Command: `{command}`",
        f"- Date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: {_nproc()} CPUs (nproc), {_cpu_model()}, {platform.system()} "
        f"{platform.release()}; load average at start {_load()}",
        "- Python: " + ", ".join(f"{IMPL_LABELS[i]} {versions[i]} ({pythons[i]})" for i in impls),
    ]
    if "ours" in impls:
        lines.append(f"- ours: chunk-memo {_installed_version(pythons['ours'])}, editable install "
                     f"of this repository, {_git_state()}")
    if "v015" in impls:
        lines.append(f"- chunk-memo {PUBLISHED_VERSION}: from PyPI, in "
                     f"`{PUBLISHED_VENV.relative_to(REPO)}`")
    lines.append(f"- {repeat} runs per implementation and scenario, each a fresh process with a "
                 f"fresh cache root, implementations alternating A B / B A; every implementation "
                 f"ran at full size and with every repetition.")
    return "\n".join(lines) + "\n"


def _python_version(python: Path) -> str:
    return subprocess.run([str(python), "-I", "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip()


def _nproc() -> int:
    return len(os.sched_getaffinity(0))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _git_state() -> str:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "chunk_memo")
    return f"commit {commit}" + (" plus uncommitted changes in chunk_memo/" if dirty else "")


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Scenarios: " + ", ".join(names))
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per implementation and scenario (default 5)")
    parser.add_argument("--only", choices=names, help="run only this scenario")
    parser.add_argument("--impl", default="ours,v015",
                        help="comma-separated implementations (default ours,v015)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds before one run is abandoned (default 900)")
    args = parser.parse_args(argv)
    args.impl = [name.strip() for name in args.impl.split(",") if name.strip()]
    unknown = sorted(set(args.impl) - set(IMPL_LABELS))
    if unknown or not args.impl:
        parser.error(f"--impl takes a comma-separated subset of {sorted(IMPL_LABELS)}, "
                     f"got {unknown or 'nothing'}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    scenarios = [s for s in SCENARIOS if args.only in (None, s.name)]
    pythons = {impl: Path(sys.executable) if impl == "ours" else published_python()
               for impl in args.impl}
    header = machine_report(command, args.impl, pythons, args.repeat)
    print(header)

    sections = []
    for scenario in scenarios:
        runs: dict[str, list[dict]] = {impl: [] for impl in args.impl}
        for rep in range(args.repeat):
            order = args.impl if rep % 2 == 0 else args.impl[::-1]
            for impl in order:
                line = run_once(scenario, impl, pythons[impl], args.timeout)
                runs[impl].append(line)
                shown = line.get("error", "").splitlines()[-1:] or [
                    f"{_num(line['metric'])} {scenario.unit}"]
                print(f"  {scenario.name} {rep + 1}/{args.repeat} {IMPL_LABELS[impl]}: {shown[0]}",
                      file=sys.stderr, flush=True)
        section = scenario_report(scenario, args.impl, runs)
        sections.append(section)
        print(section, flush=True)

    RESULTS.write_text(
        "# chunk-memo: ours against the published 0.1.5\n\n"
        "Written by `benchmarks/compare.py` (see `benchmarks/README.md`); re-run it rather "
        "than editing this file. Medians over runs; ratio = median / ours' median (above 1: "
        "slower than ours). Peak RSS is the whole process's (`ru_maxrss`), in parentheses "
        "right after importing the library.\n\n"
        + header + "\n" + "\n".join(sections))
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
