"""Core benchmark (issue 2): the homework loop and ours, side by side, in one run.

Prints: read+tokenize+ids for the 50k train/dev/test documents (cold and cached), the
homework loop's time per epoch (measured over --homework-steps steps), our epoch time (median of --repeats; also with frozen embeddings) at
batch 1/64/256 (the real `clf train` code path; evaluation excluded), eval time for the 25k
test documents, training seconds until test F1 >= 0.88, and the peak RSS of a full
`clf train` process.

The figures are for the homework's model shape (``CORE_CONFIG``); ``--defaults`` measures the
shipped defaults instead (lowercased words and their bigrams, 8 heads).

    python bench/core_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v
    python bench/core_bench.py --defaults --device cuda --skip tokenize homework f1 rss --batch-sizes 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clf.config import compose
from clf.data.batching import collate, epoch_plan
from clf.data.dataset import load_dataset
from clf.embeddings import load_word2vec
from clf.train.evaluate import evaluate
from clf.metrics import binary_metrics
from clf.model import build_model
from clf.optim import build_optimizer, clip_gradients
from clf.train.loop import prepare_data, train

sys.path.insert(0, str(Path(__file__).parent))
from homework_loop import homework_lists, homework_predict, run_homework_loop  # noqa: E402
from peak_rss import run_measured  # noqa: E402


HOMEWORK_RECIPE = ["optim.lr=5e-5", "optim.schedule=none", "optim.warmup_steps=0", "optim.grad_clip=null"]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# The core figures (issue 2) are measured on the shipped case-kept word vectors, so with the
# configuration they fit: words as written, no bigrams, 4 heads (the defaults before issue 12,
# the homework's model); ``--defaults`` drops it.
CORE_CONFIG = ("data.tokenizer.lowercase=false", "data.tokenizer.ngrams=1", "model.num_heads=4")


def overrides(args, cache: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["data=imdb", f"data.dir={args.data}", f"data.cache_dir={cache}", "embeddings=word2vec",
            f"embeddings.dir={args.w2v}", f"run_dir={run_dir}", "train.progress=none", f"device={args.device}",
            f"precision={args.precision}", *([] if args.defaults else CORE_CONFIG), *extra]


def bench_tokenize(args, cfg, vocab, tmp: Path) -> dict[str, float]:
    cold_dir = tmp / "cold-cache"
    cfg.data.cache_dir = str(cold_dir)
    start = time.perf_counter()
    dataset = load_dataset(cfg.data, vocab)
    cold = time.perf_counter() - start
    cached = median_time(lambda: load_dataset(cfg.data, vocab), 5)
    docs = sum(len(s) for s in dataset.splits.values())
    tokens = sum(len(s.ids) for s in dataset.splits.values())
    return {"docs": docs, "tokens": tokens, "cold_s": cold, "cached_s": cached}


def bench_homework(vectors, dataset, steps: int, full_epoch: bool) -> dict[str, float]:
    train_split = dataset["train"]
    train_list = homework_lists(train_split.ids, train_split.offsets, train_split.labels)
    run_homework_loop(vectors, train_list, 50)  # warm-up
    n = len(train_list) if full_epoch else steps
    model, per_step = run_homework_loop(vectors, train_list, n)
    result = {"steps_timed": n, "s_per_step": per_step, "epoch_s": per_step * len(train_list)}
    if full_epoch:
        test = dataset["test"]
        probs = homework_predict(model, test.ids, test.offsets)
        result["test_f1_after_epoch"] = binary_metrics(test.labels, probs >= 0.5)["f1"]
    return result


def bench_epochs(args, tmp: Path, batch_sizes: list[int], frozen: bool = False) -> dict[int, dict[str, object]]:
    """One epoch per batch size, ``--repeats`` times (batch 1: the homework's recipe, lr 5e-5, no
    schedule, no clipping, with lazy updates; larger: our defaults); the median epoch time and
    every repeat's."""
    out: dict[int, dict[str, object]] = {}
    for bs in batch_sizes:
        times, f1 = [], None
        for repeat in range(args.repeats):
            run_dir = tmp / f"epoch-bs{bs}-{'frozen' if frozen else 'trained'}-{repeat}"
            cfg = compose(overrides(args, tmp / "cache", run_dir, f"train.batch_size={bs}", "train.epochs=1",
                                    f"embeddings.freeze={frozen}", *(HOMEWORK_RECIPE if bs == 1 else []),
                                    "train.eval_every=100000000", "train.checkpoint_every=100000000",
                                    "train.checkpoint_seconds=1e9"))
            result = train(cfg, run_dir)
            times.append(round(result.metrics["train_seconds"], 3))
            f1 = result.metrics["test_f1"]
        out[bs] = {"epoch_s": statistics.median(times), "all_s": times, "test_f1": f1}
    return out


def bench_time_to_f1(args, tmp: Path, target: float, eval_every: int) -> dict[str, float]:
    """Train with our defaults, evaluating test every few steps (clock stopped meanwhile)."""
    cfg = compose(overrides(args, tmp / "cache", tmp / "ttf"))
    dataset, vectors = prepare_data(cfg)  # with the defaults' bigrams, their rows too
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, dataset.vocab.size, vectors)
    optimizer = build_optimizer(model, cfg.optim)
    params = [p for p in model.parameters() if p.requires_grad]
    split = dataset["train"]
    labels = torch.from_numpy(split.labels.astype(np.float32))
    clock, step, history = 0.0, 0, []
    for epoch in range(6):  # at most twice a default IMDB run's 3 epochs
        for docs in epoch_plan(split.lengths, cfg.train.batch_size, cfg.train.bucket_batches, cfg.seed, epoch):
            start = time.perf_counter()
            ids, mask = collate(split, docs, model.pad_id)
            logits, _ = model(ids, mask)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[docs])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(params, cfg.optim.grad_clip)
            optimizer.step()
            clock += time.perf_counter() - start
            step += 1
            if step % eval_every == 0:
                _, scores = evaluate(model, dataset["test"], batch_tokens=cfg.train.eval_batch_tokens)
                history.append((step, clock, scores["f1"]))
                if scores["f1"] >= target:
                    return {"reached": True, "train_s": clock, "steps": step, "test_f1": scores["f1"],
                            "batch_size": cfg.train.batch_size, "lr": cfg.optim.lr}
    best = max(history, key=lambda h: h[2])
    return {"reached": False, "train_s": best[1], "steps": best[0], "test_f1": best[2],
            "batch_size": cfg.train.batch_size, "lr": cfg.optim.lr}


def bench_eval(args, tmp: Path) -> dict[str, float]:
    cfg = compose(overrides(args, tmp / "cache", tmp / "eval"))
    dataset, vectors = prepare_data(cfg)  # the vocabulary a run has (the defaults': words and bigrams)
    test = dataset["test"]
    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    model = build_model(cfg, dataset.vocab.size, vectors).to(device)
    amp = torch.bfloat16 if args.precision == "bf16" else None

    def run() -> None:
        evaluate(model, test, batch_tokens=cfg.train.eval_batch_tokens, device=device, autocast_dtype=amp)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()
    return {"docs": len(test), "eval_s": median_time(run, 5)}


def bench_rss(args, tmp: Path) -> dict[str, float]:
    """Peak RSS of a whole `clf train` process (1 epoch on IMDB), started by a small launcher
    (``peak_rss``: a child forked from this process would count this process's pages)."""
    cmd = [sys.executable, "-m", "clf", "train", *overrides(args, tmp / "cache", tmp / "rss", "train.epochs=1")]
    status, peak_rss_mb, _, _ = run_measured(cmd, tmp / "rss.log")
    if status != 0:
        raise SystemExit(f"clf train failed (status {status}): {' '.join(cmd)}")
    return {"peak_rss_mb": peak_rss_mb}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, data paths made absolute (bench/gpu_check.py builds its runs from them too)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--w2v", default="../shared/data/imdb-w2v")
    parser.add_argument("--homework-steps", type=int, default=3000)
    parser.add_argument("--homework-full-epoch", action="store_true", help="time a whole homework epoch and its F1")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 64, 256])
    parser.add_argument("--frozen-batch-sizes", type=int, nargs="*", default=[64, 256],
                        help="epoch times with embeddings.freeze=true too")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per batch size (median quoted)")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: tokenize homework epochs eval f1 rss")
    parser.add_argument("--defaults", action="store_true",
                        help="the shipped defaults (lowercased words + bigrams, 8 heads) instead of CORE_CONFIG")
    args = parser.parse_args(argv)
    args.data, args.w2v = str(Path(args.data).resolve()), str(Path(args.w2v).resolve())
    return args


def main() -> None:
    args = parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"{'the shipped defaults' if args.defaults else 'CORE_CONFIG (the homework model)'}")
    with tempfile.TemporaryDirectory(prefix="clf-bench-") as name:
        tmp = Path(name)
        cfg = compose(overrides(args, tmp / "cache", tmp / "x"))
        vocab, _ = load_word2vec(args.w2v)  # the tokenize section reads with its vocabulary
        figures: dict[str, object] = {}
        if "tokenize" not in args.skip:
            figures["tokenize"] = bench_tokenize(args, cfg, vocab, tmp)
            print("read+tokenize+ids:", figures["tokenize"], flush=True)
        cfg.data.cache_dir = str(tmp / "cache")
        dataset, vectors = prepare_data(cfg)
        if "homework" not in args.skip:
            figures["homework"] = bench_homework(vectors, dataset, args.homework_steps, args.homework_full_epoch)
            print("homework loop:", figures["homework"], flush=True)
        if "epochs" not in args.skip:
            figures["epochs"] = bench_epochs(args, tmp, args.batch_sizes)
            print("our epochs:", figures["epochs"], flush=True)
            if args.frozen_batch_sizes:
                frozen = bench_epochs(args, tmp, args.frozen_batch_sizes, frozen=True)
                print("our epochs, frozen embeddings:", frozen, flush=True)
            if "homework" in figures:
                for bs, epoch in figures["epochs"].items():
                    ratio = figures["homework"]["epoch_s"] / epoch["epoch_s"]
                    print(f"speed-up at batch {bs} over the homework loop: {ratio:.0f}x", flush=True)
        if "eval" not in args.skip:
            figures["eval"] = bench_eval(args, tmp)
            print("eval:", figures["eval"], flush=True)
        if "f1" not in args.skip:
            figures["f1"] = bench_time_to_f1(args, tmp, 0.88, eval_every=10)
            print("time to test F1 >= 0.88:", figures["f1"], flush=True)
        if "rss" not in args.skip:
            figures["rss"] = bench_rss(args, tmp)
            print("peak RSS:", figures["rss"], flush=True)


if __name__ == "__main__":
    main()
