"""Length-bucketed batches, deterministic for a (seed, epoch), and padded tensors."""

from __future__ import annotations

import numpy as np
import torch

from clf.data.cache import TokenizedSplit


def epoch_plan(lengths: np.ndarray, batch_size: int, bucket_batches: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Document indices of every batch of an epoch.

    Shuffle, sort by length inside windows of ``bucket_batches`` batches (little padding),
    cut into batches, shuffle the batches. The same (seed, epoch) always gives the same plan,
    which is how a resumed run finds its place.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        if batch_size > 1:
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_plan(lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """All documents sorted by length, in batches of at most ``max_tokens`` padded tokens."""
    order = np.argsort(lengths, kind="stable")
    widths = np.maximum(lengths[order], 1).tolist()
    batches, start = [], 0
    while start < len(order):
        stop = start + 1
        # sorted ascending: the newest document is the batch's longest
        while stop < len(order) and widths[stop] * (stop - start + 1) <= max_tokens:
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


def collate(split: TokenizedSplit, docs: np.ndarray, pad_id: int, max_tokens: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids [B, T] (int64) and mask [B, T] of documents ``docs`` (truncated to max_tokens)."""
    starts = split.offsets[docs]
    lengths = split.offsets[docs + 1] - starts
    if max_tokens is not None:
        lengths = np.minimum(lengths, max_tokens)
    width = max(int(lengths.max(initial=0)), 1)
    cols = np.arange(width)
    mask = cols[None, :] < lengths[:, None]
    positions = np.where(mask, starts[:, None] + cols[None, :], 0)
    ids = np.where(mask, np.asarray(split.ids)[positions] if len(split.ids) else 0, pad_id)
    return torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask)


def count_words(split: TokenizedSplit, docs: np.ndarray, max_tokens: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Documents ``docs`` (truncated to max_tokens) as bags of word counts, in ``docs``' order:
    per (document, word) pair, grouped by document, the word's id and its count (int64);
    ``offsets``: where each document's pairs start."""
    starts = split.offsets[docs]
    lengths = split.offsets[docs + 1] - starts
    if max_tokens is not None:
        lengths = np.minimum(lengths, max_tokens)
    first = np.cumsum(lengths) - lengths  # each document's first token among the kept ones
    ids = np.asarray(split.ids)[np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))]
    width = int(ids.max(initial=0)) + 1
    token_doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    pairs, counts = torch.unique(torch.from_numpy(token_doc * width + ids), sorted=True, return_counts=True)
    offsets = torch.searchsorted(pairs // width, torch.arange(len(docs)))
    return pairs % width, offsets, counts
