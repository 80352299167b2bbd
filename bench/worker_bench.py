"""Workers bench (issue 20), on the local Slurm cluster configured like Great Lakes, with the class
account (2 running jobs), in one run: the same sweeps submitted as one run per array task, as K
runs per task (packing, several K: the best is what workers must beat), and through 2 workers
with R = 1 and 2 runs at a time. Printed per setting: the wall time from ``clf submit`` until
every run recorded its end, the speed-ups, the sweep efficiency and whether every run's metrics
equal those of the one-run-per-task sweep.

Sweep efficiency = sum of the runs' ``train_seconds`` / (wall time x slots), where slots are the
runs that may train at once: 2 jobs x R (1 for one run per task and for packing). 100% is every
slot training all the time; what is lost is queue waits, job starts, imports, data loads,
evaluation and writes.

    python bench/worker_bench.py [--short 48] [--steps 100] [--imdb 12] [--ks 4 8 12 24]
        [--mixed-steps 25 50 100 400] [--skip-short]
        [--data ../shared/data/imdb --w2v ../shared/data/imdb-w2v]
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

from pack_bench import clf, sweep_seconds  # noqa: E402 (bench/ is on sys.path when run as a script)

SAME = ("dev_f1", "test_f1", "best_step", "steps")
CLASS = ["cluster=greatlakes-standard", "cluster.account=si630f25_class", "cluster.cpus_per_task=1",
         "cluster.mem_gb=3"]


def metrics(sweep: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "metrics.json").read_text()) for d in sorted((sweep / "runs").iterdir())}


def compare(name: str, root: Path, settings: list[tuple[str, list[str], int]], overrides: list[str],
            timeout: float) -> None:
    """Each setting's sweep in turn; one table."""
    rows = []
    for label, extra, slots in settings:
        sweep = root / f"{name}-{len(rows)}"
        wall = sweep_seconds(sweep, [*CLASS, *overrides, *extra], timeout)
        rows.append((label, wall, slots, metrics(sweep)))
        print(f"  {label}: {wall:.1f} s", flush=True)
    base_wall, base = rows[0][1], rows[0][3]
    packed = [r for r in rows if r[0].startswith("K=")]
    best_k = min(packed, key=lambda r: r[1]) if packed else None
    print(f"{name}: setting | wall s | x one-per-task | x best K | efficiency | identical metrics")
    for label, wall, slots, runs in rows:
        train = sum(float(m.get("train_seconds") or 0) for m in runs.values())
        same = sum(1 for run, m in runs.items() if all(m.get(k) == base[run].get(k) for k in SAME))
        vs_k = f"{best_k[1] / wall:.2f}x" if best_k else "-"
        print(f"  {label} | {wall:.1f} | {base_wall / wall:.2f}x | {vs_k} | {100 * train / (wall * slots):.0f}% "
              f"| {same} of {len(runs)}")
    if best_k:
        print(f"  best static K: {best_k[0]} ({best_k[1]:.1f} s)")


def settings(ks: list[int], runs: int) -> list[tuple[str, list[str], int]]:
    out: list[tuple[str, list[str], int]] = [("one run per task", [], 2)]
    out += [(f"K={k}", [f"cluster.runs_per_task={k}"], 2) for k in ks if k < runs]
    out += [(f"workers=2 R={r}", ["cluster.workers=2", f"cluster.runs_per_worker={r}", f"cluster.cpus_per_task={r}"],
             2 * r) for r in (1, 2)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=48, help="demo runs of --steps steps")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--ks", type=int, nargs="*", default=[4, 8, 12, 24])
    parser.add_argument("--imdb", type=int, default=12, help="IMDB runs on the shipped defaults (0: skip)")
    parser.add_argument("--imdb-ks", type=int, nargs="*", default=[3, 6])
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--w2v", default="../shared/data/imdb-w2v")
    parser.add_argument("--mixed-steps", type=int, nargs="*", default=[],
                        help="also demo runs of these lengths (x --short / their count seeds): runs that differ")
    parser.add_argument("--skip-short", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    common = ["train.progress=none", "train.num_threads=1", "device=cpu"]
    code = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name:
        root = Path(name)
        short = [*common, f"train.max_steps={args.steps}", f"seed=range({args.short})"]
        clf("train", *common, f"train.max_steps={args.steps}", f"run_dir={root / 'warm'}")  # the token cache
        print(f"commit {code}, {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs; class account: 2 running jobs", flush=True)
        if not args.skip_short:
            print(f"{args.short} demo runs of {args.steps} steps:", flush=True)
            compare("short", root, settings(args.ks, args.short), short, args.timeout)
        if args.mixed_steps:
            steps = ",".join(map(str, args.mixed_steps))
            mixed = [*common, f"train.max_steps={steps}", f"seed=range({args.short // len(args.mixed_steps)})"]
            print(f"{args.short} demo runs of {steps} steps (in sweep order):", flush=True)
            compare("mixed", root, settings(args.ks, args.short), mixed, args.timeout)
        if args.imdb:
            imdb = [*common, "data=imdb", f"data.dir={Path(args.data).absolute()}", "embeddings=word2vec",
                    f"embeddings.dir={Path(args.w2v).absolute()}", f"seed=range({args.imdb})"]
            clf("train", *imdb[:-1], "train.max_steps=1", f"run_dir={root / 'warm-imdb'}")
            print(f"{args.imdb} IMDB runs on the shipped defaults:", flush=True)
            compare("imdb", root, settings(args.imdb_ks, args.imdb), imdb, args.timeout)


if __name__ == "__main__":
    main()
