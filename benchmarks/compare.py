"""Compare chunk-memo from this repository with chunk-memo 0.1.5 and joblib.Memory.

    python benchmarks/compare.py [--repeat N] [--only SCENARIO] [--impl ours,v015,joblib]
                                 [--sizes all|small|N,N...] [--budget S] [--timeout S]

Each scenario (``benchmarks/scenarios/<name>.py``) runs at each of its sizes, in
increasing order, in a fresh process per implementation and repetition, with a fresh
cache root, and prints one JSON line.  Implementations alternate A B C / C B A across
repetitions so that drift on a shared machine hits all alike.  ``ours`` runs in this
Python (the editable install of the repository); ``v015`` runs in
``benchmarks/.venvs/chunk-memo-0.1.5`` (``pip install chunk-memo==0.1.5``) and
``joblib`` in ``benchmarks/.venvs/joblib`` (``pip install joblib``), each created here
if missing.  An implementation is skipped at a size when its median wall time at its
previous size, scaled linearly by size, exceeds ``--budget`` seconds.

Prints one table per scenario (median, min-max, ratio to ours, peak RSS) and writes
them, with the machine, the date and the command, to ``benchmarks/RESULTS.md``, and a
log-log plot of cost against size to ``benchmarks/results.png``.  Standard library
and matplotlib only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SCENARIO_DIR = BENCH_DIR / "scenarios"
RESULTS = BENCH_DIR / "RESULTS.md"
PLOT = BENCH_DIR / "results.png"
# Variables that would make a scenario process import or store somewhere else.
SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CHUNK_MEMO_CATALOG_URL")
PLOT_INSTALL = f"pip install -e '{REPO}[plot]'"


@dataclass(frozen=True)
class Venv:
    """A virtual environment holding one implementation's library, installed by pip."""

    path: Path
    distribution: str
    requirement: str
    version: str | None  # the version that must be installed; None: whatever pip chose

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


IMPL_LABELS = {"ours": "ours", "v015": "chunk-memo 0.1.5", "joblib": "joblib.Memory"}
IMPL_COLORS = {"ours": "tab:blue", "v015": "tab:orange", "joblib": "tab:green"}
VENVS = {
    "v015": Venv(BENCH_DIR / ".venvs" / "chunk-memo-0.1.5", "chunk-memo", "chunk-memo==0.1.5",
                 "0.1.5"),
    "joblib": Venv(BENCH_DIR / ".venvs" / "joblib", "joblib", "joblib", None),
}


@dataclass(frozen=True)
class Column:
    """An extra per-run measurement shown as its median: ``line[key] * scale``."""

    header: str
    key: str
    scale: float = 1.0
    digits: int = 1


@dataclass(frozen=True)
class Target:
    """Ours' median of ``line[key]`` must be at most ``limit`` (at ``size``, or every size)."""

    limit: float
    size: int | None = None
    key: str = "metric"
    unit: str | None = None  # default: the scenario's unit


@dataclass(frozen=True)
class Flat:
    """Ours' median of ``line[key]`` must not grow with size: largest <= 1.5 x smallest + slack."""

    key: str
    what: str
    slack: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    unit: str
    size_unit: str
    sizes: tuple[int, ...]
    targets: tuple[Target, ...] = ()
    columns: tuple[Column, ...] = ()
    flat: Flat | None = None
    plot: bool = False

    @property
    def script(self) -> Path:
        return SCENARIO_DIR / f"{self.name}.py"


SCENARIOS = (
    Scenario("plan_status", "Build the cache object for an empty grid, then cache_status()",
             "s", "chunks", (10**4, 10**5, 10**6, 10**7),
             (Target(1.0, 10**6), Target(150, 10**6, "peak_rss_mib", "MiB peak RSS"),
              Target(10.0, 10**7)),
             (Column("RSS growth MiB", "rss_growth_mib", digits=0),
              Column("status heap MiB", "status_heap_mib", digits=1),
              Column("construct s", "construct_s", digits=3),
              Column("status s", "status_s", digits=3)),
             Flat("status_heap_mib", "peak Python heap of cache_status (MiB)", slack=16),
             plot=True),
    Scenario("cold", "First run: overhead per point (100 points per chunk)", "us/point",
             "points", (50_000, 500_000), (Target(5.0),),
             (Column("run s", "seconds", digits=3),
              Column("exec_fn alone ms", "exec_alone_s", 1e3, 2),
              Column("cache setup ms", "setup_s", 1e3, 1)),
             Flat("metric", "us/point"), plot=True),
    Scenario("warm", "Second run, everything stored: time per point", "us/point", "points",
             (50_000, 500_000), (Target(1.0),),
             (Column("run s", "seconds", digits=3), Column("cache setup ms", "setup_s", 1e3, 1)),
             Flat("metric", "us/point"), plot=True),
    Scenario("subset", "1% subset of a grid stored in 10 chunks: run on a slice",
             "us/selected point", "points", (100_000, 1_000_000), (Target(5.0),),
             (Column("run ms", "seconds", 1e3, 2), Column("slice ms", "slice_s", 1e3, 2),
              Column("slice+run us/point", "slice_and_run_us_per_point", digits=2)),
             Flat("metric", "us/selected point"), plot=True),
    Scenario("lookup", "200 one-point lookups (slice + run), 100 stored chunks", "us/lookup",
             "points", (100_000,), (Target(100.0),),
             (Column("p50 us", "p50_us", digits=0), Column("p99 us", "p99_us", digits=0),
              Column("cache setup ms", "setup_s", 1e3, 1))),
    Scenario("extend", "Second run after the axis doubles (chunks of 100)", "ms (second run)",
             "values before", (10_000,), (),
             (Column("extend ms", "extend_s", 1e3, 1),)),
    Scenario("discovery", "Discover, find and auto_load among N caches under one root",
             "ms (slower of find, auto_load)", "caches", (1_000, 10_000),
             (Target(20.0, 10_000),),
             (Column("discover ms", "discover_ms", digits=1),
              Column("find ms", "find_ms", digits=1),
              Column("auto_load ms", "auto_load_ms", digits=1),
              Column("setup s", "setup_s", digits=1)), plot=True),
    Scenario("coop", "4 processes, one sweep of 5-point chunks: executions / points",
             "executions/point", "chunks", (400,), (Target(1.05),),
             (Column("wall s", "seconds", digits=2),
              Column("chunks stored", "stored_chunks", digits=0))),
)


@dataclass
class Cell:
    """One implementation at one size: its runs, or why it did not run."""

    runs: list[dict] = field(default_factory=list)
    note: str | None = None  # "skipped (projected ~X s)", "n/a: ...", "not run: ..."

    @property
    def good(self) -> list[dict]:
        return [r for r in self.runs if "error" not in r]

    def median(self, key: str = "metric") -> float | None:
        return statistics.median(r[key] for r in self.good) if self.good else None


# -- interpreters ---------------------------------------------------------------------


def venv_python(venv: Venv) -> Path:
    """The virtual environment's Python with its library, created or repaired if needed."""
    found = installed_version(venv.python, venv.distribution)
    if found is not None and venv.version in (None, found):
        return venv.python
    if not venv.python.exists():
        print(f"creating {venv.path.relative_to(REPO)} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)
    print(f"installing {venv.requirement} into it ...", file=sys.stderr)
    subprocess.run([str(venv.python), "-m", "pip", "install", "--quiet", venv.requirement],
                   check=True)
    found = installed_version(venv.python, venv.distribution)
    if found is None or venv.version not in (None, found):
        raise SystemExit(f"{venv.python} has {venv.distribution} {found!r} after installing "
                         f"{venv.requirement}; delete {venv.path} and retry")
    return venv.python


def installed_version(python: Path, distribution: str) -> str | None:
    if not python.exists():
        return None
    # -I: without it the current directory joins sys.path, and this repository's own
    # chunk_memo.egg-info would answer for the virtual environment.
    probe = subprocess.run(
        [str(python), "-I", "-c",
         f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def _scenario_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}


# -- one run --------------------------------------------------------------------------


def run_once(scenario: Scenario, size: int, impl: str, python: Path, timeout: float) -> dict:
    """One fresh process: the scenario's JSON line (plus ``wall_s``), or ``{"error": ...}``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"chunk-memo-{scenario.name}-{impl}-"))
    command = [str(python), str(scenario.script), "--impl", impl, "--size", str(size),
               "--root", str(workdir / "root")]
    started = time.perf_counter()
    # A session of its own, so that a timeout ends the scenario's worker processes too.
    process = subprocess.Popen(command, cwd=workdir, env=_scenario_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wall_s = time.perf_counter() - started
    if process.returncode != 0:
        return {"error": f"exit status {process.returncode}: {_tail(stderr)}"}
    try:
        line = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no JSON line on stdout: {_tail(stdout + stderr)}"}
    _check_library(line, impl)
    if "n/a" not in line:
        line.update(wall_s=wall_s, peak_rss_mib=line["peak_rss_kib"] / 1024,
                    rss_growth_mib=(line["peak_rss_kib"] - line["rss_after_import_kib"]) / 1024)
    return line


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _check_library(line: dict, impl: str) -> None:
    """Stop if a process imported another library than the one it claims to measure."""
    module = Path(line["module"])
    if impl == "ours" and module != REPO / "chunk_memo":
        raise SystemExit(f"'ours' imported chunk_memo from {module}, not "
                         f"{REPO / 'chunk_memo'}; run compare.py with the Python that has "
                         f"the editable install (pip install -e {REPO})")
    venv = VENVS.get(impl)
    if venv is not None and (venv.path.resolve() not in module.parents
                             or venv.version not in (None, line["version"])):
        raise SystemExit(f"{impl!r} imported {venv.distribution} {line['version']} from "
                         f"{module}, not from {venv.path}; delete {venv.path} and retry")


# -- running a scenario ---------------------------------------------------------------


def run_scenario(scenario: Scenario, sizes: list[int], impls: list[str],
                 pythons: dict[str, Path], args: argparse.Namespace) -> dict[int, dict[str, Cell]]:
    """Every size in increasing order, implementations interleaved, the skip rule applied."""
    cells = {size: {impl: Cell() for impl in impls} for size in sizes}
    last: dict[str, tuple[int, float]] = {}  # impl -> (size, median wall s) last measured
    stopped: dict[str, str] = {}  # impl -> why it runs no more in this scenario
    for size in sizes:
        active = []
        for impl in impls:
            if impl in stopped:
                cells[size][impl].note = stopped[impl]
                continue
            if impl in last:
                projected = last[impl][1] * size / last[impl][0]
                if projected > args.budget:
                    cells[size][impl].note = f"skipped (projected ~{projected:.0f} s)"
                    continue
            active.append(impl)
        for rep in range(args.repeat):
            for impl in active if rep % 2 == 0 else active[::-1]:
                if impl in stopped:
                    continue
                cell = cells[size][impl]
                line = run_once(scenario, size, impl, pythons[impl], args.timeout)
                if "n/a" in line:
                    cell.note = stopped[impl] = f"n/a: {line['n/a']}"
                    shown = cell.note
                else:
                    cell.runs.append(line)
                    if "error" in line:
                        stopped[impl] = f"not run: failed at {size:,} {scenario.size_unit}"
                        shown = line["error"].splitlines()[-1]
                    else:
                        shown = f"{_num(line['metric'])} {scenario.unit} ({line['wall_s']:.1f} s)"
                print(f"  {scenario.name} {size:,} {rep + 1}/{args.repeat} "
                      f"{IMPL_LABELS[impl]}: {shown}", file=sys.stderr, flush=True)
        for impl in active:
            if impl not in stopped and cells[size][impl].good:
                last[impl] = (size, cells[size][impl].median("wall_s"))
    return cells


# -- reporting ------------------------------------------------------------------------


def scenario_report(scenario: Scenario, impls: list[str],
                    cells: dict[int, dict[str, Cell]]) -> str:
    """A Markdown section: the table, then checks (targets, growth, exec counts, outputs)."""
    header = [scenario.size_unit, "implementation", f"median {scenario.unit}", "min-max",
              "ratio to ours", "peak RSS MiB", *(c.header for c in scenario.columns),
              "exec points", "runs"]
    rows = []
    for size, by_impl in cells.items():
        ours = by_impl["ours"].median() if "ours" in by_impl else None
        for impl in impls:
            cell = by_impl[impl]
            good = cell.good
            failed = len(cell.runs) - len(good)
            runs_text = f"{len(good)}" + (f" ({failed} failed)" if failed else "")
            if not good:
                rows.append([f"{size:,}", IMPL_LABELS[impl], cell.note or "-", "-", "-", "-",
                             *("-" for _ in scenario.columns), "-", runs_text])
                continue
            metrics = [r["metric"] for r in good]
            rows.append([
                f"{size:,}",
                IMPL_LABELS[impl],
                _num(cell.median()),
                f"{_num(min(metrics))} - {_num(max(metrics))}",
                f"{cell.median() / ours:.2f}" if ours else "n/a",
                f"{cell.median('peak_rss_mib'):.0f} "
                f"(import {cell.median('rss_after_import_kib') / 1024:.0f})",
                *(f"{cell.median(c.key) * c.scale:.{c.digits}f}" for c in scenario.columns),
                _spread(r["exec_points"] for r in good),
                runs_text,
            ])
    lines = [f"### {scenario.name}: {scenario.title}", "", _markdown_table(header, rows), ""]
    lines += [f"- {note}" for note in _checks(scenario, impls, cells)]
    for size, by_impl in cells.items():
        for impl in impls:
            for r in by_impl[impl].runs:
                if "error" in r:
                    lines.append(f"- {IMPL_LABELS[impl]} failed at {size:,}: "
                                 f"{r['error'].splitlines()[-1]}")
    return "\n".join(lines) + "\n"


def _checks(scenario: Scenario, impls: list[str], cells: dict[int, dict[str, Cell]]) -> list[str]:
    notes = []
    ours = {size: by_impl["ours"] for size, by_impl in cells.items() if "ours" in by_impl}
    for target in scenario.targets:
        unit = target.unit or scenario.unit
        for size in [target.size] if target.size else list(ours):
            if size not in ours:
                continue  # that size was not selected in this run
            value = ours[size].median(target.key)
            if value is None:
                notes.append(f"target for ours at {size:,} {scenario.size_unit}: "
                             f"<= {target.limit:g} {unit}: not measured")
                continue
            verdict = "met" if value <= target.limit else "MISSED"
            notes.append(f"target for ours at {size:,} {scenario.size_unit}: <= "
                         f"{target.limit:g} {unit}: {verdict} (median {_num(value)})")
    if scenario.flat:
        series = [(size, cell.median(scenario.flat.key)) for size, cell in ours.items()
                  if cell.good]
        if len(series) > 1:
            (_, first), (_, last) = series[0], series[-1]
            verdict = "flat" if last <= 1.5 * first + scenario.flat.slack else "GROWS"
            shown = ", ".join(f"{size:,}: {_num(value)}" for size, value in series)
            notes.append(f"ours' {scenario.flat.what} by {scenario.size_unit}: {shown}: "
                         f"{verdict} (flat: largest <= 1.5 x smallest"
                         f"{f' + {scenario.flat.slack:g}' if scenario.flat.slack else ''})")
    identical = []  # output counts of the sizes where every run agreed
    for size, by_impl in cells.items():
        if scenario.name == "extend":
            notes += _extend_notes(impls, by_impl)
        outputs = {(r["n_outputs"], r["checksum"]) for impl in impls for r in by_impl[impl].good}
        if len(outputs) > 1:
            notes.append(f"WARNING: outputs differ between runs or implementations at "
                         f"{size:,} {scenario.size_unit}: {sorted(outputs)}")
        elif outputs and (n_outputs := outputs.pop()[0]):
            identical.append(f"{n_outputs:,}")
    if identical:
        notes.append(f"outputs identical across implementations and runs "
                     f"({'; '.join(identical)} outputs{' by size' if len(identical) > 1 else ''})")
    return notes


def _extend_notes(impls: list[str], by_impl: dict[str, Cell]) -> list[str]:
    notes = []
    for impl in impls:
        good = by_impl[impl].good
        wrong = [r for r in good if r["exec_points"] != r["new_points"]]
        target = "" if impl != "ours" else " (target for ours: MISSED)" if wrong else \
            " (target for ours: met)"
        if wrong:
            notes.append(f"{IMPL_LABELS[impl]} computed {wrong[0]['exec_points']:,} points, "
                         f"not just the {wrong[0]['new_points']:,} new ones{target}")
        elif good:
            notes.append(f"{IMPL_LABELS[impl]}: exactly the {good[0]['new_points']:,} new "
                         f"points computed in every run{target}")
    return notes


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _short(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1M: tick labels."""
    for unit, name in ((10**6, "M"), (10**3, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{name}"
    return str(n)


def _spread(values) -> str:
    values = list(values)
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def plot(results: dict[str, dict[int, dict[str, Cell]]], impls: list[str]) -> None:
    """Cost against size on log-log axes, one panel per sized scenario, one line per library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    shown = [s for s in SCENARIOS if s.plot and s.name in results]
    columns = 3
    rows = -(-(len(shown) + 1) // columns)  # one more panel for the legend
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    panels = list(axes.flat)
    for ax, scenario in zip(panels, shown):
        values = []  # everything drawn, to set the y range to whole decades
        for impl in impls:
            points = [(size, cell) for size, by_impl in results[scenario.name].items()
                      if (cell := by_impl[impl]).good]
            if not points:
                continue  # a skipped size just ends the line
            sizes = [size for size, _ in points]
            medians = [cell.median() for _, cell in points]
            lows = [min(r["metric"] for r in cell.good) for _, cell in points]
            highs = [max(r["metric"] for r in cell.good) for _, cell in points]
            ax.errorbar(sizes, medians, fmt="-o", capsize=3, color=IMPL_COLORS[impl],
                        yerr=[[m - lo for m, lo in zip(medians, lows)],
                              [hi - m for m, hi in zip(medians, highs)]],
                        label=IMPL_LABELS[impl])
            values += lows + highs
        for target in scenario.targets:
            if target.key != "metric":
                continue
            values.append(target.limit)
            if target.size is None:
                ax.axhline(target.limit, color="0.5", linestyle="--", linewidth=1,
                           label="target for ours (every size)")
            else:
                ax.plot([target.size], [target.limit], linestyle="none", marker="v",
                        color="0.5", label="target for ours (at that size)")
        ax.set_xscale("log")
        ax.set_yscale("log", nonpositive="clip")
        ax.set_xticks(scenario.sizes, [_short(size) for size in scenario.sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        positive = [v for v in values if v > 0]
        if positive:
            ax.set_ylim(10 ** math.floor(math.log10(min(positive) / 1.3)),
                        10 ** math.ceil(math.log10(max(positive) * 1.3)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(scenario.name, fontsize=11)
        ax.set_xlabel(scenario.size_unit)
        ax.set_ylabel(scenario.unit)
        ax.grid(True, which="both", alpha=0.3)
    handles = {}
    for ax in panels[:len(shown)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    for ax in panels[len(shown):]:
        ax.axis("off")
    panels[len(shown)].legend(handles.values(), handles.keys(), loc="center",
                              title="median, bars: min-max")
    fig.suptitle("chunk-memo benchmarks: cost against grid size (log-log)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


def machine_report(command: str, impls: list[str], pythons: dict[str, Path], repeat: int,
                   budget: float) -> str:
    lines = [
        f"- Command: `{command}`",
        f"- Date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: {_nproc()} CPUs (nproc), {_cpu_model()}, {platform.system()} "
        f"{platform.release()}; load average at start {_load()}",
        "- Python: " + ", ".join(f"{IMPL_LABELS[i]} {_python_version(pythons[i])} "
                                 f"({pythons[i]})" for i in impls),
    ]
    if "ours" in impls:
        lines.append(f"- ours: chunk-memo {installed_version(pythons['ours'], 'chunk-memo')}, "
                     f"editable install of this repository, {_git_state()}")
    for impl in impls:
        if impl in VENVS:
            venv = VENVS[impl]
            lines.append(f"- {impl}: {venv.distribution} "
                         f"{installed_version(pythons[impl], venv.distribution)} from PyPI "
                         f"(`pip install {venv.requirement}`), in "
                         f"`{venv.path.relative_to(REPO)}`")
    lines.append(f"- Runs per implementation, scenario and size: {repeat}, each a fresh process "
                 f"with a fresh cache root, implementations alternating A B C / C B A. Sizes "
                 f"run in increasing order; an implementation is skipped at a size when its "
                 f"median wall time at its previous size, times the size ratio, exceeds the "
                 f"budget of {budget:g} s per run.")
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
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Scenarios and sizes: " + "; ".join(
            f"{s.name} {', '.join(f'{n:,}' for n in s.sizes)} {s.size_unit}" for s in SCENARIOS))
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per implementation, scenario and size (default 5)")
    parser.add_argument("--only", choices=names, help="run only this scenario")
    parser.add_argument("--impl", default="ours,v015,joblib",
                        help="comma-separated implementations (default ours,v015,joblib)")
    parser.add_argument("--sizes", default="all",
                        help="'all' (default), 'small' (each scenario's smallest size) or "
                             "comma-separated sizes (each scenario runs those it has)")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds per run above which a size is skipped, projected "
                             "linearly from the previous size (default 120)")
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
    if args.sizes not in ("all", "small"):
        try:
            args.sizes = {int(n.replace("_", "")) for n in args.sizes.split(",") if n.strip()}
        except ValueError:
            parser.error(f"--sizes takes all, small or comma-separated integers, "
                         f"got {args.sizes!r}")
    return args


def selected_sizes(scenario: Scenario, sizes: str | set[int]) -> list[int]:
    if sizes == "all":
        return list(scenario.sizes)
    if sizes == "small":
        return [min(scenario.sizes)]
    return [n for n in scenario.sizes if n in sizes]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:
        raise SystemExit(f"compare.py draws {PLOT.relative_to(REPO)} with matplotlib, which "
                         f"{sys.executable} lacks; install it with: {PLOT_INSTALL}")
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    plan = [(s, selected_sizes(s, args.sizes)) for s in SCENARIOS if args.only in (None, s.name)]
    for scenario, sizes in plan:
        if not sizes:
            print(f"{scenario.name}: none of its sizes "
                  f"({', '.join(map(str, scenario.sizes))}) is in --sizes; not run",
                  file=sys.stderr)
    plan = [(scenario, sizes) for scenario, sizes in plan if sizes]
    pythons = {impl: Path(sys.executable) if impl == "ours" else venv_python(VENVS[impl])
               for impl in args.impl}
    header = machine_report(command, args.impl, pythons, args.repeat, args.budget)
    print(header)

    sections, results = [], {}
    for scenario, sizes in plan:
        results[scenario.name] = run_scenario(scenario, sizes, args.impl, pythons, args)
        section = scenario_report(scenario, args.impl, results[scenario.name])
        sections.append(section)
        print(section, flush=True)

    plotted = any(s.plot and s.name in results for s in SCENARIOS)
    if plotted:
        plot(results, args.impl)
    RESULTS.write_text(
        "# chunk-memo: ours against the published 0.1.5 and joblib.Memory\n\n"
        "Written by `benchmarks/compare.py` (see `benchmarks/README.md`); re-run it rather "
        "than editing this file. Medians over runs; ratio = median / ours' median at the same "
        "size (above 1: slower than ours). Peak RSS is the whole process's (`ru_maxrss`), in "
        "parentheses right after importing the library.\n\n"
        + header + "\n"
        + (f"![cost against grid size]({PLOT.name})\n\n" if plotted else "")
        + "\n".join(sections))
    print(f"wrote {RESULTS.relative_to(REPO)}" + (f" and {PLOT.relative_to(REPO)}" if plotted
                                                   else ""))


if __name__ == "__main__":
    main()
