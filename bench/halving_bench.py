"""Successive halving against a grid (issue 11, part 3), one run: the same 27 IMDB configurations
(model.num_heads x optim.lr x model.hidden_layers) with the full budget ``train.max_steps=900``
(evaluations every 50 steps), submitted with ``cluster=local`` as a grid and then as
``search=halving search.eta=3 search.min_steps=100`` (rungs 100 / 300 / 900). Prints the grid's
best test F1 (the configuration with the best dev F1, as ``clf aggregate`` picks it), the halving
winner's test F1 and their difference (goal <= 0.002), the training steps each spent (the sum of
the steps every run reached; goal: halving <= 1/3 of the grid), their training seconds and wall
times (from ``clf submit`` until every job ended).

    nice -n 10 python bench/halving_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v \\
        [--runs-per-task 3] [--parallel 1] [--cpus-per-task 2] [--keep DIR]
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

GRID = ["model.num_heads=1,4,8", "optim.lr=0.001,0.003,0.01", "model.hidden_layers=0,1,2"]
FINAL = ("completed", "failed", "cancelled")


def clf(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "clf", *args], check=True, capture_output=True, text=True).stdout


def ended(sweep: Path) -> dict[str, str] | None:
    """Each job's recorded state once every one recorded a final one (and a halving search ended)."""
    halving = sweep / "halving.json"
    if halving.exists() and not json.loads(halving.read_text()).get("finished"):
        return None
    states = {}
    for run in json.loads((sweep / "sweep.json").read_text())["runs"]:
        try:
            states[run["name"]] = json.loads((sweep / run["run_dir"] / "status.json").read_text())["state"]
        except (OSError, ValueError, KeyError):
            return None
    return states if all(s in FINAL for s in states.values()) else None


def run_sweep(sweep: Path, overrides: list[str], timeout: float) -> float:
    """Wall seconds from ``clf submit`` until every job of the sweep ended."""
    started = time.perf_counter()
    clf("submit", f"sweep_dir={sweep}", *overrides)
    deadline = time.monotonic() + timeout
    while (states := ended(sweep)) is None:
        if time.monotonic() > deadline:
            clf("cancel", str(sweep))
            raise SystemExit(f"{sweep}: not done after {timeout} s")
        time.sleep(1.0)
    bad = {name: s for name, s in states.items() if s != "completed"}
    if bad:
        raise SystemExit(f"{sweep}: jobs did not complete: {bad}")
    return time.perf_counter() - started


def run_metrics(sweep: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "metrics.json").read_text()) for d in sorted((sweep / "runs").iterdir())}


def grid_best(sweep: Path) -> tuple[str, float, float]:
    """(configuration, dev F1, test F1) of the grid's best group by dev F1, as clf aggregate marks it."""
    from clf.results.aggregate import aggregate

    groups = aggregate([sweep]).groups
    best = groups[groups["best"]].iloc[0]
    label = ", ".join(f"{k}={best[k]}" for k in GRID_KEYS)
    return label, float(best["dev_f1_mean"]), float(best["test_f1_mean"])


GRID_KEYS = [g.split("=")[0] for g in GRID]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="IMDB in the homework layout (shared/data/imdb)")
    parser.add_argument("--w2v", required=True, help="its word2vec vectors (shared/data/imdb-w2v)")
    parser.add_argument("--runs-per-task", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=1, help="cluster.array_parallelism: tasks at the same time")
    parser.add_argument("--cpus-per-task", type=int, default=2, help="cluster.cpus_per_task (torch's threads)")
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--keep", type=Path, help="keep the two sweeps here (default: a temp dir, removed)")
    args = parser.parse_args()
    common = ["cluster=local", f"cluster.runs_per_task={args.runs_per_task}", f"cluster.array_parallelism={args.parallel}",
              f"cluster.cpus_per_task={args.cpus_per_task}", "data=imdb",
              f"data.dir={Path(args.data).absolute()}", "embeddings=word2vec",
              f"embeddings.dir={Path(args.w2v).absolute()}", "train.max_steps=900", "train.eval_every=50",
              "train.progress=none", "device=cpu"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name:
        root = args.keep or Path(name)
        root.mkdir(parents=True, exist_ok=True)
        clf("train", *common[4:], "train.max_steps=1", "train.eval_every=1", f"run_dir={root / 'warm'}")  # token cache
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; 27 configurations, full budget 900 "
              f"steps, cluster=local with {args.runs_per_task} runs per task, {args.parallel} task(s) at a time, "
              f"{args.cpus_per_task} CPU(s) each", flush=True)
        grid_wall = run_sweep(root / "grid", [*common, *GRID], args.timeout)
        print(f"grid done in {grid_wall:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        halving_wall = run_sweep(root / "halving", [*common, *GRID, "search=halving", "search.eta=3",
                                                    "search.min_steps=100"], args.timeout)
        print(f"halving done in {halving_wall:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        grid, halving = run_metrics(root / "grid"), run_metrics(root / "halving")
        record = json.loads((root / "halving" / "halving.json").read_text())
        winner = halving[record["winner"]]
        label, grid_dev, grid_test = grid_best(root / "grid")
        steps = {k: sum(m["steps"] for m in runs.values()) for k, runs in (("grid", grid), ("halving", halving))}
        seconds = {k: sum(m["train_seconds"] for m in runs.values()) for k, runs in (("grid", grid), ("halving", halving))}
        print(f"rungs: {' / '.join(str(len(r['runs'])) for r in record['rungs'])} runs at "
              f"{' / '.join(map(str, record['budgets']))} steps")
        print(f"grid best (by dev F1): {label}: dev F1 {grid_dev:.4f}, test F1 {grid_test:.4f}")
        print(f"halving winner: {record['winner']}: dev F1 {winner['dev_f1']:.4f}, test F1 {winner['test_f1']:.4f}")
        diff = grid_test - winner["test_f1"]
        print(f"test F1 difference (grid best - halving winner): {diff:+.4f} (goal <= 0.002: "
              f"{'met' if diff <= 0.002 else 'NOT met'})")
        ratio = steps["halving"] / steps["grid"]
        print(f"training steps: grid {steps['grid']}, halving {steps['halving']}, ratio {ratio:.3f} "
              f"(goal <= 1/3: {'met' if ratio <= 1 / 3 else 'NOT met'})")
        print(f"training seconds: grid {seconds['grid']:.0f}, halving {seconds['halving']:.0f}; "
              f"wall: grid {grid_wall:.0f} s, halving {halving_wall:.0f} s (ratio {halving_wall / grid_wall:.2f})")


if __name__ == "__main__":
    main()
