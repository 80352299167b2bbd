"""Torch's CPU threads and OpenMP's wait policy: a default IMDB run's training time with 1
thread and with 2 threads under libgomp's default wait (a waiting thread spins, then sleeps),
``OMP_WAIT_POLICY=PASSIVE`` (it sleeps at once) and shorter spins (``GOMP_SPINCOUNT``), on an
idle machine and beside one busy process at the lowest priority (``nice -n 19``).

A training step runs many short parallel regions and OpenMP's threads meet at the end of each;
how they wait decides what a step costs when a core is shared.

    python bench/threads_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# "" leaves libgomp at its own default (spin, then sleep) even where the caller's environment sets
# a policy: libgomp ignores an empty value (it says so on stderr, which this bench discards)
SETTINGS = {
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "2 threads, libgomp's default wait (spin, then sleep)": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": ""},
    "2 threads, OMP_WAIT_POLICY=PASSIVE (sleep at once)": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    "2 threads, GOMP_SPINCOUNT=10000 (spin briefly, then sleep)": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "",
                                                                   "GOMP_SPINCOUNT": "10000"},
    "2 threads, GOMP_SPINCOUNT=1000": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "1000"},
}
BUSY_LOOP = "while True: pass"


@contextmanager
def busy_neighbour(on: bool) -> Iterator[None]:
    """One process spinning at nice 19 for the block's duration (or nothing)."""
    if not on:
        yield
        return
    process = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", BUSY_LOOP])
    try:
        yield
    finally:
        process.kill()
        process.wait()


def one_run(args: argparse.Namespace, env: dict[str, str], run_dir: Path) -> tuple[float, float, float]:
    """Wall seconds, train_seconds and test F1 of one ``clf train`` process."""
    overrides = ["data=imdb", f"data.dir={args.data}", "embeddings=word2vec", f"embeddings.dir={args.w2v}",
                 f"run_dir={run_dir}", "train.progress=none", *args.extra]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clf", "train", *overrides], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return wall, metrics["train_seconds"], metrics["test_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--w2v", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides, e.g. train.max_steps=300")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = dict(os.environ, CLF_CACHE_DIR=str(tmp / "cache"))
        one_run(args, dict(base, **SETTINGS["1 thread"]), tmp / "warm-up")  # fills the token cache
        for neighbour in (False, True):
            where = "beside one busy nice-19 process" if neighbour else "idle machine"
            figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SETTINGS}
            with busy_neighbour(neighbour):
                for i in range(args.repeats):  # the settings alternate, so that they see the same load
                    for k, (setting, env) in enumerate(SETTINGS.items()):
                        run_dir = tmp / f"busy{int(neighbour)}-setting{k}-{i}"
                        figures[setting].append(one_run(args, dict(base, **env), run_dir))
            for setting, runs in figures.items():
                walls, trains, f1s = zip(*runs)
                print(f"{where:34s} {setting:46s} train_seconds median {statistics.median(trains):7.2f} "
                      f"({', '.join(f'{t:.2f}' for t in trains)}), wall median {statistics.median(walls):7.2f}, "
                      f"test F1 {sorted(set(f1s))}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
