"""Nearest neighbours (cosine) of a few probe words: a quick look at what the vectors learned."""

from __future__ import annotations

import numpy as np

from clf.data.vocab import Vocab

Neighbours = dict[str, list[tuple[str, float]] | None]


def nearest(vocab: Vocab, vectors: np.ndarray, probes: list[str], k: int) -> Neighbours:
    """For each probe in the vocabulary, its ``k`` most similar words (``<UNK>`` and itself excluded);
    None for a probe the vocabulary lacks."""
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = np.inf                       # zero rows (such as <UNK>) are never neighbours
    result: Neighbours = {}
    for probe in probes:
        i = vocab.index.get(probe)
        if i is None or i == vocab.unk_id or not np.isfinite(norms[i]):
            result[probe] = None
            continue
        sims = (vectors @ vectors[i]) / (norms * norms[i])
        sims[[i, vocab.unk_id]] = -np.inf
        top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        result[probe] = [(vocab.words[j], round(float(sims[j]), 4)) for j in top if np.isfinite(sims[j])]
    return result


def format_neighbours(neighbours: Neighbours) -> str:
    """One line per probe: ``probe: word (0.812), word (0.790), ...``."""
    lines = []
    for probe, near in neighbours.items():
        text = "(not in the vocabulary)" if near is None else ", ".join(f"{w} ({s:.3f})" for w, s in near)
        lines.append(f"{probe}: {text}")
    return "\n".join(lines) + "\n"
