"""Packing bench (issue 11, part 2), on the local Slurm cluster (slurm/local/start.sh), one run:
the same 48 short runs (demo data, ``train.max_steps`` steps each) submitted as one run per
array task, then as ``--runs-per-task`` runs per task; the time from ``clf submit`` until every
run recorded its end, for each, their ratio, and whether every run's metrics are identical.

    python bench/pack_bench.py [--runs-per-task 8] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SLURM = ["cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1",
         "cluster.array_parallelism=4"]
GRID = ["model.num_heads=1,2,4,8", "seed=range(12)"]
SAME = ("dev_f1", "test_f1", "best_step", "steps")
FINAL = ("completed", "failed", "cancelled")


def clf(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "clf", *args], check=True, capture_output=True, text=True).stdout


def ended(sweep: Path) -> dict[str, str] | None:
    """Each run's recorded state, once every run recorded a final one."""
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    states = {}
    for run in runs:
        try:
            states[run["name"]] = json.loads((sweep / run["run_dir"] / "status.json").read_text())["state"]
        except (OSError, ValueError, KeyError):
            return None
    return states if all(s in FINAL for s in states.values()) else None


def sweep_seconds(sweep: Path, submit_args: list[str], timeout: float) -> float:
    """Wall seconds from ``clf submit SUBMIT_ARGS`` until every run recorded its end (all completed)."""
    started = time.perf_counter()
    clf("submit", f"sweep_dir={sweep}", *submit_args)
    deadline = time.monotonic() + timeout
    while (states := ended(sweep)) is None:
        if time.monotonic() > deadline:
            clf("cancel", str(sweep))
            raise SystemExit(f"{sweep}: not done after {timeout} s")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    bad = {name: s for name, s in states.items() if s != "completed"}
    if bad:
        raise SystemExit(f"{sweep}: runs did not complete: {bad}")
    return seconds


def metrics(sweep: Path) -> dict[str, tuple]:
    out = {}
    for run_dir in sorted((sweep / "runs").iterdir()):
        m = json.loads((run_dir / "metrics.json").read_text())
        out[run_dir.name] = tuple(m[k] for k in SAME)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-per-task", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    train = [f"train.max_steps={args.steps}", "train.progress=none", "train.num_threads=1", "device=cpu"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name:
        root = Path(name)
        clf("train", *train, f"run_dir={root / 'warm'}")  # the demo data's token cache
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; 48 runs of {args.steps} steps, "
              f"4 array tasks at a time", flush=True)
        one = sweep_seconds(root / "one", [*SLURM, *GRID, *train], args.timeout)
        print(f"1 run per task:  {one:.1f} s", flush=True)
        packed = sweep_seconds(root / "packed", [*SLURM, *GRID, *train, f"cluster.runs_per_task={args.runs_per_task}"],
                               args.timeout)
        print(f"{args.runs_per_task} runs per task: {packed:.1f} s", flush=True)
        a, b = metrics(root / "one"), metrics(root / "packed")
        same = sum(1 for run in a if a[run] == b.get(run))
        print(f"speed-up {one / packed:.2f}x (goal >= 3x); identical metrics ({', '.join(SAME)}): {same} of {len(a)} runs")


if __name__ == "__main__":
    main()
