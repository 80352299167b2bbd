"""Figures of the Great-Lakes-like local cluster (slurm/local/; run as root, it restarts the
cluster):

* ``slurm/local/start.sh`` for N nodes: from a stopped cluster, and again when it is up;
* ``clf submit`` of a 300-run sweep (held) split into K arrays by MaxArraySize;
* a node lost while a run trains (``scontrol update state=down``, or its slurmd and the job's
  processes SIGKILLed) -> the run training again on another node (its log says "resuming").

    python bench/cluster_bench.py [--repeats 3] [--write bench/RESULTS_cluster.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from slurm_bench import SLURM, TRAIN, bench_data, clf, read, report, row, wait_for

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / "slurm" / "local"


def script(name: str, **settings: str) -> float:
    """Wall seconds of slurm/local/NAME.sh with these settings."""
    started = time.perf_counter()
    result = subprocess.run(["bash", str(LOCAL / f"{name}.sh")], capture_output=True, text=True,
                            env=dict(os.environ, **settings))
    if result.returncode != 0:
        raise SystemExit(f"{name}.sh failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def bench_start(repeats: int) -> list[str]:
    rows = []
    for nodes in ("1", "3", "6"):
        cold, warm = [], []
        for _ in range(repeats):
            script("stop", CLF_SLURM_NODES=nodes)
            cold.append(script("start", CLF_SLURM_NODES=nodes))
            warm.append(script("start", CLF_SLURM_NODES=nodes))
        rows += [row(f"start.sh, {nodes} node(s), from a stopped cluster", cold),
                 row(f"start.sh, {nodes} node(s), cluster already up", warm)]
    script("start")  # the default node set again
    return rows


def bench_split(root: Path, data: list[str], repeats: int) -> list[str]:
    rows = []
    try:
        for max_array_size in ("1001", "100", "30"):
            script("start", CLF_SLURM_MAX_ARRAY_SIZE=max_array_size)
            walls, internal, calls = [], [], []
            for i in range(repeats):
                sweep = root / f"split-{max_array_size}-{i}"
                wall, _, _ = clf("submit", *SLURM, f"sweep_dir={sweep}", "+cluster.additional_parameters.hold=true",
                                 *data, "model.num_heads=1,2,4", "seed=range(100)")
                submission = read(sweep / "sweep.json")["submissions"][0]
                walls.append(wall)
                internal.append(submission["seconds"])
                calls.append(submission["sbatch_calls"])
                clf("cancel", str(sweep))
            rows += [row(f"`clf submit` 300 runs, MaxArraySize={max_array_size}: {calls[0]} array(s)", walls),
                     row("... of which submitit + sbatch", internal)]
    finally:
        script("start")
    return rows


def bench_lost_node(root: Path, data: list[str], repeats: int) -> list[str]:
    sys.path.insert(0, str(REPO / "tests"))
    from test_greatlakes import kill_node, raw_job_id

    walls: dict[str, list[float]] = {"down": [], "killed": []}
    for how in walls:
        for i in range(repeats if how == "down" else max(1, repeats // 2)):
            sweep = root / f"lost-{how}-{i}"
            clf("submit", *SLURM, f"sweep_dir={sweep}", *data, *TRAIN, "train.max_steps=1000000",
                "train.eval_every=1000", "train.checkpoint_every=50")
            run_dir = sweep / "runs" / "run"
            try:
                status = wait_for(lambda: (lambda s: s if s.get("state") == "running" and read(
                    run_dir / "metrics.json").get("steps", 0) >= 100 else None)(read(run_dir / "status.json")))
                job = read(sweep / "sweep.json")["runs"][0]["job_id"]
                started = time.perf_counter()
                if how == "down":
                    subprocess.run(["scontrol", "update", f"nodename={status['node']}", "state=down",
                                    "reason=bench"], check=True)
                else:
                    kill_node(status["node"], raw_job_id(job))
                wait_for(lambda: "resuming" in (run_dir / "train.log").read_text())
                walls[how].append(time.perf_counter() - started)
            finally:
                clf("cancel", str(sweep))
                script("start")
    return [row("node set DOWN -> training again on another node", walls["down"]),
            row("node's slurmd + job SIGKILLed -> training again on another node", walls["killed"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write the Markdown tables here")
    args = parser.parse_args()
    with bench_data("clf-cluster-bench-") as (root, small, long):
        sections = {
            "slurm/local/start.sh": bench_start(args.repeats),
            "a sweep split into K arrays (held jobs)": bench_split(root, small, args.repeats),
            "a lost node (requeue: AuthInfo cred_expire=10 s; SlurmdTimeout=30 s)":
                bench_lost_node(root, long, args.repeats),
        }
    report(sections, args.write)


if __name__ == "__main__":
    main()
