"""Per-head statistics over a split: which token types get the attention mass, where heads disagree.

A head's attention over a document sums to 1, so over a split of N documents each head hands
out N units of mass; a token type's share is the mass its occurrences received over N. Two
heads disagree on a document by the total variation distance between their attention
distributions (half the L1 distance: 0 = same weights, 1 = no token in common); a document's
disagreement is the mean over all pairs of heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from clf.api import Run
from clf.data.cache import TokenizedSplit


@dataclass
class TokenMass:
    word: str
    share: float    # of the head's total mass over the split
    count: int      # occurrences in the split


@dataclass
class Disagreement:
    inst_id: object
    label: int | None
    probability: float
    score: float
    heads: list[list[tuple[str, float]]]  # per head: the document's top token types and their weights


@dataclass
class HeadReport:
    split: str
    documents: int
    top: list[list[TokenMass]]       # per head, most mass first
    disagreements: list[Disagreement]


def head_disagreement(attention: np.ndarray) -> np.ndarray:
    """[B, T, H] -> [B]: mean total variation distance between pairs of heads (0 with one head)."""
    pairs = list(combinations(range(attention.shape[2]), 2))
    if not pairs:
        return np.zeros(attention.shape[0])
    total = sum(np.abs(attention[:, :, h] - attention[:, :, g]).sum(axis=1) for h, g in pairs)
    return 0.5 * total / len(pairs)


def _top_tokens(run: Run, ids: np.ndarray, weights: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` token types of one document with the most weight (repeats summed)."""
    types, where = np.unique(ids, return_inverse=True)
    summed = np.bincount(where, weights=weights, minlength=len(types))
    order = np.argsort(-summed, kind="stable")[:k]
    return list(zip(run.words(types[order]), summed[order].tolist()))


def _disagreement(run: Run, split: TokenizedSplit, doc: int, score: float, k: int) -> Disagreement:
    batch = run.forward(split, np.array([doc]))
    real = batch.mask[0]
    ids, attention = batch.ids[0][real], batch.attention[0][real]
    label = None if split.labels is None else int(split.labels[doc])
    inst_id = split.inst_ids[doc]
    return Disagreement(inst_id.item() if hasattr(inst_id, "item") else inst_id, label,
                        float(batch.probabilities[0]), score,
                        [_top_tokens(run, ids, attention[:, h], k) for h in range(attention.shape[1])])


def analyze_split(run: Run, split: TokenizedSplit, top: int = 20, documents: int = 3,
                  tokens_per_head: int = 3) -> HeadReport:
    """Top ``top`` token types by attention mass per head, and the ``documents`` with most disagreement."""
    heads, table = run.num_heads, run.vocab.size + 1
    mass = np.zeros((heads, table))
    counts = np.zeros(table, dtype=np.int64)
    scores = np.zeros(len(split))
    for batch in run.batches(split):
        ids = batch.ids[batch.mask]
        weights = batch.attention[batch.mask]           # [tokens, H]
        counts += np.bincount(ids, minlength=table)
        for h in range(heads):
            mass[h] += np.bincount(ids, weights=weights[:, h], minlength=table)
        scores[batch.docs] = head_disagreement(batch.attention)
    total = np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)
    top_lists = []
    for h in range(heads):
        order = np.argsort(-mass[h], kind="stable")[:top]
        order = order[mass[h, order] > 0]
        top_lists.append([TokenMass(w, float(mass[h, i] / total[h, 0]), int(counts[i]))
                          for w, i in zip(run.words(order), order.tolist())])
    chosen = np.argsort(-scores, kind="stable")[:documents] if heads > 1 else np.array([], dtype=np.int64)
    disagreements = [_disagreement(run, split, int(d), float(scores[d]), tokens_per_head) for d in chosen]
    return HeadReport(split.name, len(split), top_lists, disagreements)


def mass_table(report: HeadReport) -> tuple[list[str], list[list[str]]]:
    """Rank, then per head ``word share%`` (Markdown-ready cells)."""
    heads = len(report.top)
    rows = []
    for rank in range(max((len(t) for t in report.top), default=0)):
        cells = [f"{t[rank].word} {100 * t[rank].share:.1f}%" if rank < len(t) else "" for t in report.top]
        rows.append([str(rank + 1), *cells])
    return ["rank", *(f"head {h}" for h in range(heads))], rows


def disagreement_table(report: HeadReport) -> tuple[list[str], list[list[str]]]:
    """Per document: id, label, probability, disagreement, then per head its top tokens."""
    heads = len(report.top)
    rows = []
    for d in report.disagreements:
        label = "n/a" if d.label is None else str(d.label)
        cells = [", ".join(f"{w} {a:.2f}" for w, a in tokens) for tokens in d.heads]
        rows.append([str(d.inst_id), label, f"{d.probability:.3f}", f"{d.score:.3f}", *cells])
    return ["inst_id", "label", "P(1)", "disagreement", *(f"head {h}" for h in range(heads))], rows
