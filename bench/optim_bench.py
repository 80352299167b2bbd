"""LazyAdamW's step with exact weight decay against the step it replaced (no decay for rows
outside the batch), side by side in one run, on the embedding gradients of real IMDB batches.

Both optimizers step the same IMDB-sized embedding table (55k x 50) with the sparse gradients
of the rows each batch of the first ``--batches`` batches of an epoch uses; the two are timed in
alternation, ``--repeats`` times, and the medians and their ratio printed.

    python bench/optim_bench.py --data ../shared/data/imdb --w2v ../shared/data/imdb-w2v
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clf.config import compose
from clf.data.batching import collate, epoch_plan
from clf.data.dataset import load_dataset
from clf.embeddings import load_word2vec
from clf.optim import LazyAdamW, coalesced
from clf.compat.torch import fused_adamw_


class PreviousLazyAdamW(LazyAdamW):
    """LazyAdamW as it was before exact weight decay: rows outside a batch owe nothing."""

    @staticmethod
    def _sparse_step(group: dict, p: torch.Tensor, state: dict) -> None:
        grad = coalesced(p.grad)
        rows = grad.indices()[0]
        full = (p, state["exp_avg"], state["exp_avg_sq"])
        part = [t.index_select(0, rows) for t in full]
        fused_adamw_([part[0]], [grad.values()], [part[1]], [part[2]], [state["step"]], lr=group["lr"],
                     beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
                     eps=group["eps"])
        for whole, piece in zip(full, part):
            whole.index_copy_(0, rows, piece)


def batch_gradients(args, rows_total: int, dim: int) -> list[torch.Tensor]:
    """The sparse embedding gradient (random values) of each of the epoch's first batches."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(["data=imdb", f"data.dir={args.data}", f"data.cache_dir={Path(tmp) / 'cache'}",
                       "embeddings=word2vec", f"embeddings.dir={args.w2v}"])
        vocab, _ = load_word2vec(args.w2v)
        split = load_dataset(cfg.data, vocab)["train"]
    plan = epoch_plan(split.lengths, args.batch_size, cfg.train.bucket_batches, 0, 0)
    grads = []
    for docs in plan[: args.batches]:
        ids, _ = collate(split, docs, vocab.size, None)
        rows = torch.unique(ids)
        grads.append(torch.sparse_coo_tensor(rows.unsqueeze(0), torch.randn(len(rows), dim), (rows_total, dim),
                                             check_invariants=True))
    return grads


def time_steps(optimizer: torch.optim.Optimizer, p: torch.nn.Parameter, grads: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    for grad in grads:
        p.grad = grad
        optimizer.step()
    return (time.perf_counter() - start) / len(grads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--w2v", default="../shared/data/imdb-w2v")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocab, vectors = load_word2vec(args.w2v)
    rows_total, dim = vocab.size + 1, vectors.shape[1]
    grads = batch_gradients(args, rows_total, dim)
    distinct = statistics.median(g._nnz() for g in grads)
    params = {kind: torch.nn.Parameter(torch.randn(rows_total, dim)) for kind in ("exact", "previous")}
    optimizers = {"exact": LazyAdamW([params["exact"]], lr=1e-3, weight_decay=0.01),
                  "previous": PreviousLazyAdamW([params["previous"]], lr=1e-3, weight_decay=0.01)}
    times: dict[str, list[float]] = {kind: [] for kind in optimizers}
    for repeat in range(args.repeats):
        order = list(optimizers) if repeat % 2 == 0 else list(reversed(optimizers))
        for kind in order:
            times[kind].append(time_steps(optimizers[kind], params[kind], grads))
    settle = statistics.median(_time_settle(optimizers["exact"]) for _ in range(args.repeats))
    medians = {kind: statistics.median(t) for kind, t in times.items()}
    print(f"LazyAdamW step, IMDB embedding table {rows_total} x {dim}, batch {args.batch_size} "
          f"(median {distinct:.0f} distinct rows), {len(grads)} batches, median of {args.repeats}, 1 thread")
    for kind, median in medians.items():
        print(f"  {kind:<9} {median * 1e3:8.3f} ms/step   (repeats: {', '.join(f'{t * 1e3:.3f}' for t in times[kind])})")
    print(f"  ratio exact/previous: {medians['exact'] / medians['previous']:.3f}")
    print(f"  settle_weights (before each evaluation): {settle * 1e3:.3f} ms")


def _time_settle(optimizer: LazyAdamW) -> float:
    start = time.perf_counter()
    optimizer.settle_weights()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
