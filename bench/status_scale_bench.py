"""Figures of ``clf status`` at scale (issue 19) on the local Slurm cluster: the squeue and sacct
calls of one ``clf status`` and its wall time (fresh process, as a user runs it), for

* a 5,000-run sweep submitted as 1 array;
* the same split into 5 arrays of 1,000 (``scontrol show config`` wrapped to say MaxArraySize=1000),
  then 300 of its runs (60 per array) cancelled before they started and resubmitted into a 6th;
* both sweeps in one ``clf status`` (10,000 runs, 7 arrays);
* with ``--workers N``, the same number of runs drained by N workers (``cluster.workers``: one
  array of N tasks, the runs' rows from their claims).

Sweeps are submitted with this checkout's ``clf submit`` (held: nothing runs; cancelled at the
end). Every run gets a ``status.json`` and a ``metrics.json`` (the first 400 of every 1,000
completed, the rest pending), the most files ``clf status`` reads. squeue and sacct are wrapped on
PATH by scripts that log each call and exec the real command (tests/helpers.py: counting_path).
``--baseline-src`` also times another checkout's ``src`` (e.g. the commit before) on the same sweeps.

    python bench/status_scale_bench.py [--runs 5000] [--arrays 5] [--repeats 5] [--workers 2] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from slurm_bench import REPO, SLURM, bench_data, clf, read, report, row, wait_for

sys.path.insert(0, str(REPO / "tests"))
from helpers import FAKE_MAX_ARRAY_SIZE, counting_path  # noqa: E402 (tests/ first)

DONE = 40            # of each array's runs, the first 40% completed (the rest pending)
RESUBMITTED = 60     # its tasks from 60% to 66% are cancelled before they start, then resubmitted


def resubmitted_tasks(array_size: int) -> range:
    first = array_size * RESUBMITTED // 100
    return range(first, first + array_size * 6 // 100)


def write_run_files(sweep: Path, array_size: int) -> None:
    """A status.json and a metrics.json per run, as the jobs write them (the first ``DONE`` of
    every ``array_size`` runs completed)."""
    manifest = read(sweep / "sweep.json")
    for i, run in enumerate(manifest["runs"]):
        run_dir = sweep / run["run_dir"]
        run_dir.mkdir(parents=True, exist_ok=True)
        done = i % array_size * 100 < DONE * array_size
        (run_dir / "status.json").write_text(json.dumps(
            {"state": "completed" if done else "pending", "submission": run["submission"], "job_id": run["job_id"],
             "restarts": 0, "elapsed_s": 65.0, "node": "gl3001"}, indent=2))
        (run_dir / "metrics.json").write_text(json.dumps(
            {"steps": 900 if done else 0, "total_steps": 900, "dev_f1": 0.8 if done else None,
             "status": "completed" if done else "running"}, indent=2))


def resubmit_some(sweep: Path, array_size: int, env: dict[str, str]) -> int:
    """Cancel some pending tasks of each array before they start (``resubmitted_tasks``), then
    ``clf resubmit``: those runs move to a new array (their job ids differ from their first
    array's). Returns how many."""
    arrays = read(sweep / "sweep.json")["submissions"][0]["job_ids"]
    tasks = resubmitted_tasks(array_size)
    subprocess.run(["scancel", *(f"{a}_[{tasks.start}-{tasks.stop - 1}]" for a in arrays)], check=True)

    def gone() -> bool:  # out of the queue: "left the queue while pending", as sacct keeps no record
        counts = json.loads(clf("status", "--json", str(sweep), env=env)[2].stdout)["counts"]
        return counts.get("failed", 0) == len(arrays) * len(tasks)

    wait_for(gone, 60, every=1)
    clf("resubmit", str(sweep), env=env)
    return sum(1 for run in read(sweep / "sweep.json")["runs"] if run["submission"] == 1)


def measure(what: str, sweeps: list[Path], env: dict[str, str], log: Path, repeats: int) -> list[str]:
    """Rows: ``clf status`` (table) and ``clf status --json`` of ``sweeps``, and their calls per look."""
    rows = []
    for flag in ([], ["--json"]):
        walls, cpus, calls = [], [], []
        for _ in range(repeats):
            log.write_text("")
            wall, cpu, _ = clf("status", *flag, *map(str, sweeps), env=env)
            walls.append(wall)
            cpus.append(cpu)
            lines = log.read_text().splitlines()
            calls.append((sum(line.startswith("squeue ") for line in lines),
                          sum(line.startswith("sacct ") for line in lines)))
        rows.append(row(f"`clf status{' --json' if flag else ''}` {what}", walls, cpus))
        assert len(set(calls)) == 1, calls
        squeue, sacct = calls[0]
    jobs = sorted({line.split("--jobs ")[1].split()[0] for line in log.read_text().splitlines()})
    rows.append(f"| ... calls per look | {squeue} squeue, {sacct} sacct | | `--jobs {' '.join(jobs)}` |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--arrays", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="also time clf status from this src directory")
    parser.add_argument("--workers", type=int, default=0, help="also a sweep through this many workers")
    args = parser.parse_args()
    trees = {"": str(REPO / "src")}
    if args.baseline_src:
        trees[f" [{args.baseline_src}]"] = str(args.baseline_src.absolute())
    with bench_data("clf-status-scale-bench-") as (root, small, _):
        log = root / "calls.log"
        env = {**counting_path(root / "bin", log), "PYTHONPATH": trees[""]}
        one, split = root / "one-array", root / f"{args.arrays}-arrays"
        sweeps = [one, split]
        try:
            for sweep, arrays in ((one, 1), (split, args.arrays)):
                capped = {FAKE_MAX_ARRAY_SIZE: str(args.runs // arrays)} if arrays > 1 else {}
                clf("submit", *SLURM, f"sweep_dir={sweep}", "+cluster.additional_parameters.hold=true", *small,
                    f"seed=range({args.runs})", env={**env, **capped})
                write_run_files(sweep, args.runs // args.arrays)
            moved = resubmit_some(split, args.runs // args.arrays, env)
            workers = root / "workers"
            if args.workers:
                sweeps.append(workers)
                clf("submit", *SLURM, f"sweep_dir={workers}", "+cluster.additional_parameters.hold=true",
                    f"cluster.workers={args.workers}", *small, f"seed=range({args.runs})", env=env)
                write_run_files(workers, args.runs)
            rows = []
            for suffix, src in trees.items():
                tree_env = {**env, "PYTHONPATH": src}
                rows += measure(f"{args.runs} runs, 1 array{suffix}", [one], tree_env, log, args.repeats)
                rows += measure(f"{args.runs} runs, {args.arrays} arrays + {moved} resubmitted into another{suffix}",
                                [split], tree_env, log, args.repeats)
                rows += measure(f"both sweeps together ({2 * args.runs} runs){suffix}", [one, split], tree_env, log,
                                args.repeats)
                if args.workers and not suffix:
                    rows += measure(f"{args.runs} runs through {args.workers} workers", [workers], tree_env, log,
                                    args.repeats)
        finally:
            submitted = [str(sweep) for sweep in sweeps if (sweep / "sweep.json").exists()]
            if submitted:
                clf("cancel", *submitted)
    report({f"clf status at scale: {args.runs} runs (held jobs on the local Slurm cluster)": rows}, None)


if __name__ == "__main__":
    main()
