"""Overhead bench (issue 11, part 1): where a default IMDB run's process time goes outside its
training steps, and the ratio process wall time / ``train_seconds``; one run prints both.

1. ``--repeats`` full ``clf train`` processes (default IMDB config, warm token cache): median
   wall time, median ``train_seconds`` and their ratio (goal <= 1.5);
2. ``--savings``: each cut of issue 11 against what it replaced, side by side and alternating, in
   this process or fresh ones (medians of ``--repeats``): the optimizer's construction with and
   without torch._dynamo's import, a dev evaluation collating its batches each time or once,
   scoring dev's batches made once or its word bags made once,
   the run's vocabulary copy serialised or written as read, the bigram vocabulary counted or
   read from its cache;
3. the same run once more in this process with its phases timed (data loading, dev and test
   evaluations, checkpoint and best.pt writes, vocabulary copy, predictions), and the
   interpreter's import time of ``clf.train.loop`` in a fresh process; then the floor of the
   ratio for a run done one phase after another: torch's import, the run's evaluations and its
   training steps, which no cut of clf's own code removes.

``--this-extra OVERRIDES`` adds a third variant, this code's runs with those overrides,
alternating with the others.

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
import shutil
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
    """{code: {"wall": [...], "train": [...], "test_f1": [...]}}, the codes' runs alternating
    (and this code with ``--this-extra`` as the code ``this+``)."""
    variants = {code: (env, []) for code, env in envs.items()}
    if args.this_extra:
        variants["this+"] = (envs["this"], args.this_extra)
    runs: dict[str, dict[str, list]] = {code: defaultdict(list) for code in variants}
    for i in range(args.repeats + 1):  # the first one warms the token cache (shared by the codes)
        for code, (env, extra) in (variants.items() if i else [("this", variants["this"])]):
            run_dir = tmp / f"process-{code}-{i}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "clf", "train", *overrides(args, run_dir), *extra], env=env,
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def import_seconds(env: dict[str, str], modules: str = "clf.cli, clf.train.loop", repeats: int = 3) -> float:
    """Median wall time of a fresh ``python -c 'import MODULES'``: the interpreter's start included,
    its teardown not (``os._exit``, as ``clf`` ends: tearing down torch's modules takes 0.5-0.6 s
    that no clf process spends)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import os, {modules}; os._exit(0)"], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


OPTIMIZER_BUILD = """
import sys, time, torch
from torch import nn
from clf import optim
emb = nn.Embedding(55612, 100, sparse=True)
cfg = type("Cfg", (), dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, embedding_update="lazy"))()
start = time.perf_counter()
if sys.argv[1] == "torch": optim.LazyAdamW(emb.parameters())   # Optimizer.__init__ as torch has it
else: optim.build_optimizer(emb, cfg)                           # with clf.compat.torch.eager_optimizer_methods
print(time.perf_counter() - start)
"""


def savings(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Each cut against what it replaced, alternating, medians of ``args.repeats``."""
    from clf.config.compose import compose
    from clf.data.dataset import cache_root, with_training_bigrams
    from clf.data.ngrams import split_vocab
    from clf.data.sources import split_sources
    from clf.data.tokenizer import Tokenizer
    from clf.data.vocab import Vocab
    from clf.model import build_model
    from clf.train.evaluate import PreparedSplit, evaluate
    from clf.train.loop import prepare_data

    def median_pair(before: Callable[[], float], after: Callable[[], float]) -> tuple[float, float]:
        pairs = [(before(), after()) for _ in range(args.repeats)]
        return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)

    def clock(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def build(kind: str) -> float:
        out = subprocess.run([sys.executable, "-c", OPTIMIZER_BUILD, kind], env=env, check=True, capture_output=True,
                             text=True)
        return float(out.stdout.strip())

    print("savings, each side by side (before -> after, medians of %d):" % args.repeats)
    before, after = median_pair(lambda: build("torch"), lambda: build("clf"))
    print(f"  optimizer construction in a fresh process (torch._dynamo imported or not)  {before:6.3f} -> {after:6.3f} s")
    cfg = compose(overrides(args, Path("unused")))
    dataset, vectors = prepare_data(cfg)
    model = build_model(cfg, dataset.vocab.size, vectors)
    dev, kwargs = dataset["dev"], dict(batch_tokens=cfg.train.eval_batch_tokens, max_tokens=cfg.model.max_tokens)
    batches, bags = PreparedSplit(dev, model.pad_id, as_bags=False, **kwargs), PreparedSplit(dev, model.pad_id, **kwargs)
    made = clock(lambda: batches.batches), clock(lambda: bags.bags)
    print(f"  dev prepared once per run: batches with their distinct ids {made[0]:.3f} s, word bags {made[1]:.3f} s")
    before, after = median_pair(lambda: clock(lambda: evaluate(model, dev, **kwargs)),
                                lambda: clock(lambda: evaluate(model, dev, prepared=batches, **kwargs)))
    print(f"  one dev evaluation (batches collated each time or once per run)           {before:6.3f} -> {after:6.3f} s")
    before, after = median_pair(lambda: clock(lambda: evaluate(model, dev, prepared=batches, **kwargs)),
                                lambda: clock(lambda: evaluate(model, dev, prepared=bags, **kwargs)))
    by_tokens, by_bags = (evaluate(model, dev, prepared=p, **kwargs)[0] for p in (batches, bags))
    print(f"  one dev evaluation (batches made once or word bags made once)           {before:6.3f} -> {after:6.3f} s"
          f"  (largest probability difference {abs(by_bags - by_tokens).max():.1e}, "
          f"{int(((by_bags >= 0.5) != (by_tokens >= 0.5)).sum())} predictions differ)")
    with tempfile.TemporaryDirectory() as name:
        serialised = Vocab.from_words(dataset.vocab.words)
        before, after = median_pair(lambda: clock(lambda: serialised.save(name)),
                                    lambda: clock(lambda: dataset.vocab.save(name)))
    print(f"  vocabulary copy into the run dir (serialised or written as read)          {before:6.3f} -> {after:6.3f} s")
    if cfg.data.tokenizer.ngrams == 2:
        words, _ = split_vocab(dataset.vocab)
        sources, tokenizer = split_sources(cfg.data), Tokenizer.from_config(cfg.data.tokenizer)

        def bigram_vocab(root: Path) -> float:
            fresh = Vocab.from_words(words.words)  # nothing derived from it kept yet
            return clock(lambda: with_training_bigrams(cfg.data, sources["train"], tokenizer, fresh, root).save(root))

        def with_tokens(parent: str) -> Path:
            """A cache root holding the run's cached token ids and no bigram vocabulary."""
            root = Path(tempfile.mkdtemp(dir=parent))
            shutil.copytree(cache_root(cfg.data) / "tokens", root / "tokens")
            return root

        with tempfile.TemporaryDirectory() as scratch:
            warm = with_tokens(scratch)
            bigram_vocab(warm)
            before, after = median_pair(lambda: bigram_vocab(with_tokens(scratch)), lambda: bigram_vocab(warm))
        print(f"  bigram vocabulary made and written (counted or from its cache)            {before:6.3f} -> {after:6.3f} s")


def timed(totals: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            totals[name].append(time.perf_counter() - start)
    return wrapper


def phases(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
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
    # what no cut of clf's own code can remove from a run done one phase after another
    torch_s = import_seconds(env, "torch")
    evals_s = sum(totals["evaluations (dev during training, dev+test at the end)"])
    print(f"floor: python -c 'import torch' {torch_s:.2f} s (median of 3) + the evaluations {evals_s:.2f} s + "
          f"training {train_s:.2f} s: ratio >= {(torch_s + evals_s + train_s) / train_s:.2f} for this run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--w2v", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides")
    parser.add_argument("--baseline", help="src directory of a checkout to compare with (its processes alternate "
                                           "with this checkout's)")
    parser.add_argument("--this-extra", nargs="*", default=[],
                        help="overrides of a third variant, this code with them (e.g. train.num_threads=1)")
    parser.add_argument("--no-phases", action="store_true", help="skip the in-process run with phases timed")
    parser.add_argument("--no-processes", action="store_true", help="skip the clf train processes")
    parser.add_argument("--savings", action="store_true", help="time each cut against what it replaced")
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
        runs = {} if args.no_processes else process_runs(args, tmp, envs)
        for code, figures in runs.items():
            wall, train_s = statistics.median(figures["wall"]), statistics.median(figures["train"])
            what = " ".join([*args.extra, *(args.this_extra if code == "this+" else [])]) or "default"
            overhead = statistics.median(w - t for w, t in zip(figures["wall"], figures["train"]))
            print(f"{code}: IMDB run ({what}), median of {args.repeats}: process wall {wall:.2f} s, train_seconds "
                  f"{train_s:.2f} s, ratio {wall / train_s:.2f} (goal <= 1.5), overhead (wall - train_seconds) "
                  f"{overhead:.2f} s, test F1 {sorted(set(figures['test_f1']))}")
        for code, code_env in envs.items() if runs else ():
            print(f"{code}: python -c 'import clf.cli, clf.train.loop': {import_seconds(code_env):.2f} s")
        if args.savings:
            savings(args, env)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        if not args.no_phases:
            phases(args, tmp, env)


if __name__ == "__main__":
    main()
