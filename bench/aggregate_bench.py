"""How long ``clf aggregate`` takes on 1,000 runs (target: <= 2 s).

Generates a synthetic sweep in a temp dir with the training code's own writers (metrics.json,
config.yaml, TensorBoard events with HParams): 100 settings (num_heads x lr x dim) x 10 seeds,
of which a few runs failed, are still running or have a half-written metrics.json. Then times

* ``clf aggregate SWEEP`` as a user runs it (a fresh process: imports included), with and
  without plots, median of ``--repeats`` runs;
* the same work in-process (imports warm), split into its stages.

    python bench/aggregate_bench.py [--runs 1000] [--repeats 5] [--write bench/RESULTS_aggregate.md]
                                    [--dir DIR]   # keep (or reuse) the generated sweep in DIR
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from clf.results.synthetic import base_config, completed_metrics, running_metrics, with_values, write_run

HEADS, LRS, DIMS = (1, 2, 4, 8, 16), (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), (25, 50, 100, 200)
EVAL_STEPS = tuple(range(500, 5001, 500))     # 10 dev evaluations per run
LOG_STEPS = tuple(range(250, 5001, 250))      # 20 points of each training scalar


def generate(root: Path, n_runs: int) -> dict[str, int]:
    """``n_runs`` run dirs under ``root/runs``; returns how many of each state."""
    base = base_config()
    settings = [(h, lr, d) for h in HEADS for lr in LRS for d in DIMS]
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text("{}")
    counts: dict[str, int] = {}
    for i in range(n_runs):
        heads, lr, dim = settings[i % len(settings)]
        seed = i // len(settings)
        run_dir = root / "runs" / f"{i:04d}"
        cfg = with_values(base, {"model.num_heads": heads, "optim.lr": lr, "embeddings.dim": dim, "seed": seed,
                                 "run_dir": str(run_dir)})
        f1 = 0.7 + 0.01 * heads ** 0.5 + 0.02 * (lr > 1e-3) + 0.001 * seed
        curve = [(s, f1 - 0.1 / (1 + s / 1000)) for s in EVAL_STEPS]
        state = "failed" if i % 97 == 5 else "running" if i % 89 == 7 else "corrupt" if i % 83 == 11 else "completed"
        if state == "failed":
            write_run(run_dir, cfg, job={"state": "failed", "error": "RuntimeError: out of memory"})
        elif state == "running":
            write_run(run_dir, cfg, running_metrics(cfg, f1, 2500, 2600, 5000), dev_curve=curve[:5], log_steps=LOG_STEPS[:10])
        else:
            metrics = completed_metrics(cfg, f1, f1 - 0.01, 4500, 5000, 60.0 + seed)
            write_run(run_dir, cfg, metrics, dev_curve=curve, log_steps=LOG_STEPS)
            if state == "corrupt":
                text = (run_dir / "metrics.json").read_text()
                (run_dir / "metrics.json").write_text(text[: len(text) // 3])
        counts[state] = counts.get(state, 0) + 1
    return counts


def existing_counts(sweep: Path) -> dict[str, int]:
    from clf.results.runs import discover, read_run

    counts: dict[str, int] = {}
    for path, name in discover([sweep]):
        state = read_run(path, name).state
        counts[state] = counts.get(state, 0) + 1
    return counts


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float, list[float]]:
    """Median wall seconds, median CPU seconds (this process and its children), all wall times."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu_before = _cpu_seconds()
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu_before)
    return statistics.median(walls), statistics.median(cpus), walls


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cli(sweep: Path, out: Path, *extra: str) -> Callable[[], None]:
    """``clf aggregate`` in a fresh interpreter (``python -m clf``: the same as the ``clf`` script)."""
    command = [sys.executable, "-m", "clf", "aggregate", str(sweep), "--out", str(out), *extra]
    return lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def in_process_stages(sweep: Path, out: Path) -> dict[str, Callable[[], object]]:
    from clf.results.aggregate import aggregate, plot_figures, write_plots, write_tables
    from clf.results.runs import load_runs
    from clf.results.table import runs_frame

    agg = aggregate([sweep])
    return {
        "read 1 run dir each (JSON)": lambda: load_runs([sweep]),
        "read + table + groups": lambda: aggregate([sweep]),
        "write CSV + Markdown": lambda: write_tables(agg, out),
        "read TB events + build figures": lambda: plot_figures(agg),
        "whole: aggregate + tables + plots": lambda: (write_tables(a := aggregate([sweep]), out), write_plots(a, out)),
        "pandas frame from records": (lambda records=load_runs([sweep]): runs_frame(records)),
    }


def fmt(seconds: float) -> str:
    return f"{seconds:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="write the results as Markdown here")
    parser.add_argument("--dir", type=Path, help="generate the sweep here and keep it (reused if already there)")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # the corrupt runs' warnings, once per repetition
    with tempfile.TemporaryDirectory(prefix="clf-aggregate-bench-") as tmp:
        work = args.dir or Path(tmp)
        sweep, out = work / "sweep", Path(tmp) / "results" / "bench"
        start = time.perf_counter()
        if (sweep / "sweep.json").is_file():
            counts, generated = existing_counts(sweep), None
        else:
            counts, generated = generate(sweep, args.runs), time.perf_counter() - start
        rows = []
        for label, extra in (("clf aggregate (tables + plots)", ()), ("clf aggregate --no-plots", ("--no-plots",))):
            cli(sweep, out, *extra)()  # warm the page cache and .pyc files once
            rows.append((f"`{label}`, fresh process", *median_seconds(cli(sweep, out, *extra), args.repeats)))
        for label, fn in in_process_stages(sweep, out).items():
            fn()
            rows.append((f"in-process: {label}", *median_seconds(fn, args.repeats)))
        plots = sorted(p.name for p in out.parent.glob("*.png"))
    lines = [f"# `clf aggregate` on {sum(counts.values())} runs", "",
             f"Synthetic sweep: {len(HEADS) * len(LRS) * len(DIMS)} settings x {sum(counts.values()) // len(HEADS) // len(LRS) // len(DIMS)} seeds; "
             f"states {counts}; each run: metrics.json with the full config, config.yaml, TensorBoard events "
             f"({len(EVAL_STEPS)} dev evaluations, {len(LOG_STEPS)} x 4 training scalars, HParams)"
             + (f"; generated in {generated:.0f} s." if generated is not None else "."), "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
             f"(load average {os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}. "
             f"Median of {args.repeats} repetitions (after one warm-up). Wall clock is what a user waits; "
             "CPU time (user + system) is less sensitive to other jobs on the machine.", "",
             "| what | median wall | median CPU | all walls (s) |", "|---|---:|---:|---|"]
    lines += [f"| {label} | {fmt(wall)} | {fmt(cpu)} | {', '.join(f'{t:.3f}' for t in walls)} |"
              for label, wall, cpu, walls in rows]
    lines += ["", f"Plots written: {', '.join(plots)}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
