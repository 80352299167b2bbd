"""Figures of the Slurm side (on the local cluster: slurm/local/start.sh):

* ``clf submit`` of a 100-run sweep (``model.num_heads=1,2,4,8 seed=range(25)``), in a fresh
  process as a user runs it; the jobs are held (``--hold``) so that nothing runs, and ``sbatch``
  calls are counted by a shim on PATH. Then ``clf status`` on that sweep, then ``clf cancel``;
* the cost of a checkpoint (``checkpoints/last.pt``, model + AdamW state, atomic + fsync): saved
  directly for the demo model and an IMDB-sized one, and inside ``clf train`` (checkpoint every
  step against never);
* USR2 -> running again: a running job gets ``scancel --signal=USR2``; times until it recorded
  'requeued' (checkpoint at the next step + ``scontrol requeue``), until squeue shows it RUNNING,
  until its python recorded the new attempt, and until training resumed (the log says so).

    python bench/slurm_bench.py [--repeats 5] [--preemptions 3] [--write bench/RESULTS_slurm.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

REPO = Path(__file__).resolve().parents[1]
SLURM = ["cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1"]
TRAIN = ["train.progress=none", "train.num_threads=1", "device=cpu"]


def clf(*args: str, env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the process, result) of ``python -m clf ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "clf", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"clf {' '.join(args)} failed:\n{result.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def wait_for(predicate: Callable[[], object], timeout: float = 600, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit("timed out")


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def row(what: str, walls: list[float], cpus: list[float] | None = None) -> str:
    cpu = f"{statistics.median(cpus):.3f} s" if cpus else "-"
    return (f"| {what} | {statistics.median(walls):.3f} s | {cpu} | "
            f"{', '.join(f'{w:.3f}' for w in walls)} |")


def bench_submit(root: Path, data: list[str], repeats: int) -> list[str]:
    shim = root / "bin"
    shim.mkdir()
    calls = root / "sbatch-calls"
    (shim / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {shutil.which("sbatch")} "$@"\n')
    (shim / "sbatch").chmod(0o755)
    env = {"PATH": f"{shim}:{os.environ['PATH']}"}
    submit_w, submit_c, status_w, status_c, sbatch_calls, internal = [], [], [], [], [], []
    for i in range(repeats):
        sweep = root / f"hundred-{i}"
        calls.write_text("")
        wall, cpu, result = clf("submit", *SLURM, f"sweep_dir={sweep}", "+cluster.additional_parameters.hold=true",
                                *data, "model.num_heads=1,2,4,8", "seed=range(25)", env=env)
        manifest = read(sweep / "sweep.json")
        assert len(manifest["runs"]) == 100
        submit_w.append(wall)
        submit_c.append(cpu)
        internal.append(manifest["submissions"][0]["seconds"])
        sbatch_calls.append(len(calls.read_text().splitlines()))
        for _ in range(2):  # status twice per sweep: squeue/sacct answers vary
            wall, cpu, result = clf("status", str(sweep))
            assert "100 runs: 100 pending" in result.stdout, result.stdout[-500:]
            status_w.append(wall)
            status_c.append(cpu)
        clf("cancel", str(sweep))
    return [row("`clf submit` 100 runs (fresh process)", submit_w, submit_c),
            row("... of which submitit + sbatch (one array)", internal),
            row("`clf status` 100 runs (fresh process)", status_w, status_c),
            f"| sbatch calls per submit | {', '.join(map(str, sbatch_calls))} | | |"]


def bench_checkpoint_direct(repeats: int) -> list[str]:
    from clf.config.compose import compose
    from clf.model import build_model
    from clf.optim import build_optimizer
    from clf.train import checkpoint

    rows = []
    for label, vocab in (("demo model (vocab 5k x 50)", 5_000), ("IMDB-sized model (vocab 70k x 50)", 70_000)):
        cfg = compose(["device=cpu"])
        model = build_model(cfg, vocab, None)
        optimizer = build_optimizer(model, cfg.optim)
        ids = torch.randint(0, vocab, (64, 200))
        logits, _ = model(ids, torch.ones_like(ids, dtype=torch.bool))
        logits.sum().backward()
        optimizer.step()
        payload = {"state": {"step": 1}, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
        with tempfile.TemporaryDirectory() as tmp:
            walls = []
            for _ in range(repeats):
                started = time.perf_counter()
                checkpoint.save_last(Path(tmp), payload)
                walls.append(time.perf_counter() - started)
            size = (Path(tmp) / checkpoint.LAST).stat().st_size / 2**20
        rows.append(row(f"save last.pt, {label}, {size:.1f} MiB", walls))
    return rows


def bench_checkpoint_in_training(root: Path, data: list[str], repeats: int, steps: int = 400) -> list[str]:
    walls: dict[str, list[float]] = {"every": [], "never": []}
    for i in range(repeats):
        for mode, every in (("every", "1"), ("never", "1000000")):
            run_dir = root / f"ckpt-{mode}-{i}"
            wall, _, _ = clf("train", *data, *TRAIN, f"train.max_steps={steps}", "train.eval_every=1000000",
                             f"train.checkpoint_every={every}", "train.checkpoint_seconds=1000000",
                             f"run_dir={run_dir}")
            walls[mode].append(wall)
            shutil.rmtree(run_dir)
    per_save = [(a - b) / steps for a, b in zip(walls["every"], walls["never"])]
    return [row(f"`clf train` {steps} steps, checkpoint every step", walls["every"]),
            row(f"`clf train` {steps} steps, no checkpoint", walls["never"]),
            f"| per save inside training (difference / {steps}) | {statistics.median(per_save) * 1000:.1f} ms | | "
            f"{', '.join(f'{p * 1000:.1f}' for p in per_save)} (ms) |"]


def bench_requeue(root: Path, data: list[str], preemptions: int) -> list[str]:
    sweep = root / "requeue"
    clf("submit", *SLURM, f"sweep_dir={sweep}", *data, *TRAIN, "train.max_steps=1000000", "train.eval_every=200",
        "train.checkpoint_every=200", "train.log_every=100")
    run_dir = sweep / "runs" / "run"
    job = read(sweep / "sweep.json")["runs"][0]["job_id"]
    stages: dict[str, list[float]] = {"recorded 'requeued' (checkpoint + scontrol requeue)": [],
                                      "RUNNING again in squeue": [], "new attempt recorded by the job": [],
                                      "training resumed (log: resuming at step N)": []}
    try:
        for k in range(preemptions):
            wait_for(lambda: read(run_dir / "status.json").get("state") == "running"
                     and read(run_dir / "status.json").get("restarts") == k
                     and read(run_dir / "metrics.json").get("steps", 0) > 0)
            resumed_before = (run_dir / "train.log").read_text().count("resuming")
            t0 = time.perf_counter()
            subprocess.run(["scancel", "--signal=USR2", job], check=True)
            marks = []
            wait_for(lambda: read(run_dir / "status.json").get("state") == "requeued")
            marks.append(time.perf_counter() - t0)
            wait_for(lambda: read(run_dir / "status.json").get("state") != "requeued" or subprocess.run(
                ["squeue", "--noheader", "--jobs", job, "--format=%T"], capture_output=True, text=True
            ).stdout.strip() == "RUNNING", every=0.1)
            marks.append(time.perf_counter() - t0)
            wait_for(lambda: read(run_dir / "status.json").get("restarts") == k + 1)
            marks.append(time.perf_counter() - t0)
            wait_for(lambda: (run_dir / "train.log").read_text().count("resuming") > resumed_before)
            marks.append(time.perf_counter() - t0)
            for name, mark in zip(stages, marks):
                stages[name].append(mark)
    finally:
        clf("cancel", str(sweep))
    return [row(f"USR2 -> {name}", walls) for name, walls in stages.items()]


@contextlib.contextmanager
def bench_data(prefix: str) -> Iterator[tuple[Path, list[str], list[str]]]:
    """A temporary directory with a token cache, and the overrides of a small and a long dataset."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_dataset

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        os.environ["CLF_CACHE_DIR"] = str(root / "cache")
        small = make_dataset(root / "data").overrides + ["data.min_count=1", "embeddings.dim=12"]
        long = make_dataset(root / "long", n_train=2000).overrides + ["data.min_count=1", "embeddings.dim=12"]
        yield root, small, long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preemptions", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write the Markdown tables here")
    args = parser.parse_args()
    with bench_data("clf-slurm-bench-") as (root, small, long):
        sections = {
            "clf submit / clf status, 100 runs on the local Slurm cluster": bench_submit(root, small, args.repeats),
            "checkpoint cost": bench_checkpoint_direct(args.repeats)
            + bench_checkpoint_in_training(root, long, max(1, args.repeats // 2)),
            "USR2 -> running again (local cluster: AuthInfo cred_expire=10 s)": bench_requeue(root, long,
                                                                                            args.preemptions),
        }
    report(sections, args.write)


def report(sections: dict[str, list[str]], write: Path | None) -> None:
    """Print the sections' tables under a line about the machine (and write them to ``write``)."""
    load = os.getloadavg()
    lines = [f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
             f"{load[2]:.1f}, Python {platform.python_version()}, torch {torch.__version__}", ""]
    for title, rows in sections.items():
        lines += [f"### {title}", "", "| what | median wall | median CPU | all (s) |", "|---|---:|---:|---|", *rows, ""]
    text = "\n".join(lines)
    print(text)
    if write:
        write.write_text(text)


if __name__ == "__main__":
    main()
