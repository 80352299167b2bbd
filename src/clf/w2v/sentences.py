"""Token ids -> the word lists gensim's ``Word2Vec`` trains on: one list per document,
``<UNK>`` tokens left out, documents longer than gensim's limit cut into pieces.

Leaving ``<UNK>`` out is what gensim does with words under ``min_count`` (they are skipped
before the context window is applied). The lists hold the vocabulary's own ``str`` objects
(one shared object per word type), made with numpy a split at a time.
"""

from __future__ import annotations

import numpy as np

from clf.data.cache import TokenizedSplit
from clf.data.vocab import Vocab

MAX_WORDS = 10_000   # gensim's MAX_WORDS_IN_BATCH: a longer sentence would be truncated, so it is cut


def _split_sentences(split: TokenizedSplit, words: np.ndarray, unk: int) -> list[list[str]]:
    ids = np.asarray(split.ids)
    keep = ids != unk
    kept_before = np.concatenate([[0], np.cumsum(keep)])        # kept tokens before each position
    bounds = kept_before[np.asarray(split.offsets)]              # each document's span in the kept tokens
    tokens = words[ids[keep]].tolist()
    sentences = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        for piece in range(start, end, MAX_WORDS):
            sentences.append(tokens[piece:min(piece + MAX_WORDS, end)])
    return sentences


def sentences(splits: list[TokenizedSplit], vocab: Vocab) -> list[list[str]]:
    """The documents of ``splits`` as word lists (empty documents are left out)."""
    words = np.array(vocab.words, dtype=object)
    return [s for split in splits for s in _split_sentences(split, words, vocab.unk_id)]
