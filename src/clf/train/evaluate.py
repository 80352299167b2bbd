"""Run a model over a whole split: probabilities in the split's order, and metrics."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from clf.data.batching import collate, eval_plan
from clf.data.cache import TokenizedSplit
from clf.metrics import binary_metrics
from clf.model import Distinct, DocumentAttentionClassifier, distinct_ids
from clf.train.distributed import Dist, sum_over_ranks


class EvalBatch(NamedTuple):
    docs: np.ndarray       # the documents' indices in the split
    ids: torch.Tensor      # [B, T] padded token ids, on the device
    mask: torch.Tensor     # [B, T]
    distinct: Distinct | None = None   # its distinct ids (``distinct_ids``), for a batch scored many times


def eval_batches(split: TokenizedSplit, pad_id: int, *, batch_tokens: int, max_tokens: int | None = None,
                 device: torch.device | str = "cpu", ctx: Dist = Dist(), distinct: bool = False) -> list[EvalBatch]:
    """This rank's evaluation batches of ``split`` (every world-th), padded and on the device.

    A run scores dev every ``train.eval_every`` steps; collating it once (``_Run.dev_batches``)
    instead of at each evaluation gives the same tensors, so the same scores, for less time.
    ``distinct``: also find each batch's distinct ids now; every pass then reads the values of
    those words only, a table small enough to stay in the CPU's cache (the same values).
    """
    lengths = split.lengths if max_tokens is None else np.minimum(split.lengths, max_tokens)
    batches = []
    for docs in eval_plan(lengths, batch_tokens)[ctx.rank::ctx.world]:
        ids, mask = collate(split, docs, pad_id, max_tokens)
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        batches.append(EvalBatch(docs, ids, mask, distinct_ids(ids, pad_id + 1) if distinct else None))
    return batches


@torch.inference_mode()
def predict(model: DocumentAttentionClassifier, split: TokenizedSplit, *, batch_tokens: int,
            max_tokens: int | None = None, device: torch.device | str = "cpu",
            autocast_dtype: torch.dtype | None = None, ctx: Dist = Dist(),
            batches: Sequence[EvalBatch] | None = None) -> np.ndarray:
    """P(label = 1) for every document of ``split`` (float32, in file order).

    ``batches``: ``eval_batches`` of this split made earlier (else they are made here).
    Under data parallelism each rank scores every world-th batch and the results are summed.
    """
    was_training = model.training
    model.eval()
    device = torch.device(device)
    if batches is None:
        batches = eval_batches(split, model.pad_id, batch_tokens=batch_tokens, max_tokens=max_tokens,
                               device=device, ctx=ctx)
    probs = torch.zeros(len(split), dtype=torch.float32, device=device if ctx.enabled else "cpu")
    table = None  # every word's values, made once for the batches that read them
    try:
        for docs, ids, mask, distinct in batches:
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                reads_table = distinct is not None or model.takes_whole_table(ids)
                if reads_table and table is None:
                    table = model.table_values()
                logits, _ = model(ids, mask, table if reads_table else None, distinct)
            probs[torch.from_numpy(docs).to(probs.device)] = torch.sigmoid(logits.float()).to(probs.device)
    finally:
        model.train(was_training)
    return sum_over_ranks(probs, ctx).cpu().numpy()


def evaluate(model: DocumentAttentionClassifier, split: TokenizedSplit, **kwargs) -> tuple[np.ndarray, dict[str, float] | None]:
    """Probabilities and, when the split has labels, f1/precision/recall/accuracy at 0.5."""
    probs = predict(model, split, **kwargs)
    metrics = binary_metrics(split.labels, probs >= 0.5) if split.has_labels else None
    return probs, metrics
