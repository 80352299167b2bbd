"""Overhead bench (issue 11, part 1): where a default IMDB run's process time goes outside its
training steps, and the ratio process wall time / ``train_seconds``; one run prints both.

1. ``--repeats`` full ``clf train`` processes (default IMDB config, warm token cache): median
   wall time, median ``train_seconds`` and their ratio (goal <= 1.5);
2. the same run once more in this process with its phases timed (data loading, dev and test
   evaluations, checkpoint and best.pt writes, vocabulary copy, predictions), and the
   interpreter's import time of ``clf.train.loop`` in a fresh process.

``--baseline SRC`` (the ``src`` directory of another checkout, e.g. ``git worktree add
/tmp/ovh-base db93584``) runs that code's processes too, alternating with this checkout's, so
that both see the same load; it prints both medians and the test F1 of each.

    python bench/overhead_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v
    python bench/overhead_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v --baseline /tmp/ovh-base/src
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
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable


def overrides(args: argparse.Namespace, run_dir: Path) -> list[str]:
    return ["data=imdb", f"data.dir={args.data}", "embeddings=word2vec", f"embeddings.dir={args.w2v}",
            f"run_dir={run_dir}", "train.progress=none", *args.extra]


def process_runs(args: argparse.Namespace, tmp: Path, envs: dict[str, dict[str, str]]) -> dict[str, dict[str, list]]:
    """{code: {"wall": [...], "train": [...], "test_f1": [...]}}, the codes' runs alternating."""
    runs: dict[str, dict[str, list]] = {code: defaultdict(list) for code in envs}
    for i in range(args.repeats + 1):  # the first one warms the token cache (shared by the codes)
        for code, env in (envs.items() if i else list(envs.items())[-1:]):
            run_dir = tmp / f"process-{code}-{i}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "clf", "train", *overrides(args, run_dir)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            metrics = json.loads((run_dir / "metrics.json").read_text())
            seconds = metrics["train_seconds"]
            print(f"  {code} process {i}{' (cache warm-up, not counted)' if i == 0 else ''}: wall {wall:.2f} s, "
                  f"train_seconds {seconds:.2f} s, ratio {wall / seconds:.2f}, test F1 {metrics['test_f1']}, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            if i:
                for key, value in (("wall", wall), ("train", seconds), ("test_f1", metrics["test_f1"])):
                    runs[code][key].append(value)
    return runs


def import_seconds(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import clf.cli, clf.train.loop"], env=env, check=True)
    return time.perf_counter() - start


def timed(totals: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            totals[name].append(time.perf_counter() - start)
    return wrapper


def phases(args: argparse.Namespace, tmp: Path) -> None:
    from clf.config.compose import compose
    from clf.data.vocab import Vocab
    from clf.train import loop, saver

    totals: dict[str, list[float]] = defaultdict(list)
    loop.prepare_data = timed(totals, "data loading (warm cache)", loop.prepare_data)
    loop.evaluate = timed(totals, "evaluations (dev during training, dev+test at the end)", loop.evaluate)
    loop.write_predictions = timed(totals, "prediction files", loop.write_predictions)
    loop.write_metrics = timed(totals, "metrics.json writes", loop.write_metrics)
    for name in ("save", "save_best", "load_best"):
        setattr(saver.CheckpointSaver, name, timed(totals, f"CheckpointSaver.{name}", getattr(saver.CheckpointSaver, name)))
    Vocab.save = timed(totals, "vocabulary copy", Vocab.save)
    run_dir = tmp / "phases"
    cfg = compose(overrides(args, run_dir))
    start = time.perf_counter()
    result = loop.train(cfg, run_dir)
    wall = time.perf_counter() - start
    train_s = result.metrics["train_seconds"]
    print(f"in-process run: train() {wall:.2f} s, train_seconds {train_s:.2f} s")
    for name, times in totals.items():
        print(f"  {name:58s} {sum(times):6.2f} s  ({len(times)} calls)")
    rest = wall - train_s - sum(sum(t) for t in totals.values())
    print(f"  {'the rest (model build, logging, TensorBoard, step bookkeeping)':58s} {rest:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--w2v", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides")
    parser.add_argument("--baseline", help="src directory of a checkout to compare with (its processes alternate "
                                           "with this checkout's)")
    parser.add_argument("--no-phases", action="store_true", help="skip the in-process run with phases timed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = dict(os.environ, CLF_CACHE_DIR=os.environ.get("CLF_CACHE_DIR", str(tmp / "cache")))
        os.environ["CLF_CACHE_DIR"] = env["CLF_CACHE_DIR"]
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        envs = {"this": env}
        if args.baseline:
            pythonpath = os.pathsep.join(p for p in (args.baseline, env.get("PYTHONPATH")) if p)
            envs = {"baseline": dict(env, PYTHONPATH=pythonpath), **envs}
        runs = process_runs(args, tmp, envs)
        for code, figures in runs.items():
            wall, train_s = statistics.median(figures["wall"]), statistics.median(figures["train"])
            print(f"{code}: default IMDB run, median of {args.repeats}: process wall {wall:.2f} s, train_seconds "
                  f"{train_s:.2f} s, ratio {wall / train_s:.2f} (goal <= 1.5), test F1 {sorted(set(figures['test_f1']))}")
        for code, code_env in envs.items():
            print(f"{code}: python -c 'import clf.cli, clf.train.loop': {import_seconds(code_env):.2f} s")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        if not args.no_phases:
            phases(args, tmp)


if __name__ == "__main__":
    main()
