"""Run a model over a whole split: probabilities in the split's order, and metrics."""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import numpy as np
import torch

from clf.data.batching import collate, count_words, eval_plan
from clf.data.cache import TokenizedSplit
from clf.metrics import binary_metrics
from clf.model import Distinct, DocumentAttentionClassifier, WordBags, distinct_ids
from clf.train.distributed import Dist, sum_over_ranks


class EvalBatch(NamedTuple):
    docs: np.ndarray       # the documents' indices in the split
    ids: torch.Tensor      # [B, T] padded token ids, on the device
    mask: torch.Tensor     # [B, T]
    distinct: Distinct | None = None   # its distinct ids (``distinct_ids``), for a batch scored many times


def eval_batches(split: TokenizedSplit, pad_id: int, *, batch_tokens: int, max_tokens: int | None = None,
                 device: torch.device | str = "cpu", ctx: Dist = Dist(), distinct: bool = False) -> list[EvalBatch]:
    """This rank's evaluation batches of ``split`` (every world-th), padded and on the device.

    ``distinct``: also find each batch's distinct ids now, for batches scored many times
    (``PreparedSplit``); every pass then reads the values of those words only, a table small
    enough to stay in the CPU's cache (the same values).
    """
    lengths = split.lengths if max_tokens is None else np.minimum(split.lengths, max_tokens)
    batches = []
    for docs in eval_plan(lengths, batch_tokens)[ctx.rank::ctx.world]:
        ids, mask = collate(split, docs, pad_id, max_tokens)
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        batches.append(EvalBatch(docs, ids, mask, distinct_ids(ids, pad_id + 1) if distinct else None))
    return batches


def word_bags(split: TokenizedSplit, pad_id: int, *, batch_tokens: int, max_tokens: int | None = None,
              device: torch.device | str = "cpu", ctx: Dist = Dist()) -> WordBags:
    """This rank's documents of ``split`` (those of its ``eval_batches``) as bags of word counts."""
    lengths = split.lengths if max_tokens is None else np.minimum(split.lengths, max_tokens)
    shares = eval_plan(lengths, batch_tokens)[ctx.rank::ctx.world]
    docs = np.sort(np.concatenate(shares)) if shares else np.zeros(0, dtype=np.int64)
    word_ids, offsets, counts = count_words(split, docs, max_tokens)
    rows, words = distinct_ids(word_ids, pad_id + 1)
    return WordBags(*(t.to(device) for t in (torch.from_numpy(docs), rows, words, offsets, counts.float())))


class PreparedSplit:
    """A split scored many times (a run's dev set, every ``train.eval_every`` steps), prepared
    once: as word bags for a model that scores them (``bag_logits``), else as padded batches with
    their distinct ids (each made when first needed). Either gives the scores of batches made at
    each pass: the batches exactly, the bags within float32 rounding of another summation order."""

    def __init__(self, split: TokenizedSplit, pad_id: int, *, batch_tokens: int, max_tokens: int | None = None,
                 device: torch.device | str = "cpu", ctx: Dist = Dist(), as_bags: bool = True) -> None:
        """``as_bags=False``: batches for every model (benches compare the two ways)."""
        self.split, self.pad_id, self.as_bags = split, pad_id, as_bags
        self.kwargs = dict(batch_tokens=batch_tokens, max_tokens=max_tokens, device=device, ctx=ctx)

    @cached_property
    def bags(self) -> WordBags:
        return word_bags(self.split, self.pad_id, **self.kwargs)

    @cached_property
    def batches(self) -> list[EvalBatch]:
        return eval_batches(self.split, self.pad_id, distinct=True, **self.kwargs)


@torch.inference_mode()
def predict(model: DocumentAttentionClassifier, split: TokenizedSplit, *, batch_tokens: int,
            max_tokens: int | None = None, device: torch.device | str = "cpu",
            autocast_dtype: torch.dtype | None = None, ctx: Dist = Dist(),
            prepared: PreparedSplit | None = None) -> np.ndarray:
    """P(label = 1) for every document of ``split`` (float32, in file order).

    ``prepared``: this split prepared earlier (else its batches are made here). Its word bags
    are scored when the model can (``scores_word_bags``, full precision) and every bag's sums
    are trusted; else its batches, token by token. Under data parallelism each rank scores its
    share of the documents (every world-th batch; the same documents either way) and the results
    are summed.
    """
    was_training = model.training
    model.eval()
    device = torch.device(device)
    probs = torch.zeros(len(split), dtype=torch.float32, device=device if ctx.enabled else "cpu")
    try:
        use_bags = prepared is not None and prepared.as_bags and model.scores_word_bags and autocast_dtype is None
        logits = model.bag_logits(prepared.bags) if use_bags else None
        if logits is not None and not bool(logits.isnan().any()):
            probs[prepared.bags.docs.to(probs.device)] = torch.sigmoid(logits.float()).to(probs.device)
        else:
            batches = prepared.batches if prepared is not None else eval_batches(
                split, model.pad_id, batch_tokens=batch_tokens, max_tokens=max_tokens, device=device, ctx=ctx)
            _score_batches(model, batches, probs, device, autocast_dtype)
    finally:
        model.train(was_training)
    return sum_over_ranks(probs, ctx).cpu().numpy()


def _score_batches(model: DocumentAttentionClassifier, batches: list[EvalBatch], probs: torch.Tensor,
                   device: torch.device, autocast_dtype: torch.dtype | None) -> None:
    """Each batch's probabilities into ``probs``, token by token (``forward``)."""
    table = None  # every word's values, made once for the batches that read them
    for docs, ids, mask, distinct in batches:
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            reads_table = distinct is not None or model.takes_whole_table(ids)
            if reads_table and table is None:
                table = model.table_values()
            logits, _ = model(ids, mask, table if reads_table else None, distinct)
        probs[torch.from_numpy(docs).to(probs.device)] = torch.sigmoid(logits.float()).to(probs.device)


def evaluate(model: DocumentAttentionClassifier, split: TokenizedSplit, **kwargs) -> tuple[np.ndarray, dict[str, float] | None]:
    """Probabilities and, when the split has labels, f1/precision/recall/accuracy at 0.5."""
    probs = predict(model, split, **kwargs)
    metrics = binary_metrics(split.labels, probs >= 0.5) if split.has_labels else None
    return probs, metrics
