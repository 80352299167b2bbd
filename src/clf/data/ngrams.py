"""Bigram tokens (``data.tokenizer.ngrams=2``): a document is its words, then its adjacent word
pairs that the vocabulary holds; the attention runs over both.

A bigram is the word ``"a b"`` (its two words joined by a space, which a token of the
tokenizer's pattern never holds). The vocabulary lists every word first and the bigrams after
them, so a word keeps its id with or without bigrams and word2vec's rows stay where they are; a
run directory's ``word_to_index.txt`` then holds the bigrams too, and a run reloads with them.
A pair enters the vocabulary when both its words are in it (not ``<UNK>``) and it occurs
``data.bigram_min_count`` times in the training text (the ``data.bigram_max_size`` most frequent).
A pair outside the vocabulary is left out of the document, not mapped to ``<UNK>``: a document
has one ``<UNK>`` per unknown word, as without bigrams. Bigrams follow the words (not
interleaved), so ``model.max_tokens`` cuts bigrams before words. Everything here is numpy over
token ids: pairs are keys ``first * W + second`` (W: the number of words).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clf.data.cache import TokenizedSplit
from clf.data.vocab import SourceFiles, Vocab
from clf.errors import ClfError

SEPARATOR = " "


def bigram_word(first: str, second: str) -> str:
    return f"{first}{SEPARATOR}{second}"


@dataclass(frozen=True)
class Bigrams:
    """The bigram part of a vocabulary: ids ``words..size-1``; ``pairs[i]``: the word ids of bigram ``words + i``."""

    words: int                  # ids below this are words
    pairs: np.ndarray           # int64 [B, 2]
    keys: np.ndarray            # int64 [B], sorted pair keys
    ids: np.ndarray             # int64 [B], the vocabulary id of each key

    @classmethod
    def from_pairs(cls, words: int, pairs: np.ndarray) -> "Bigrams":
        keys = pairs[:, 0] * words + pairs[:, 1]
        order = np.argsort(keys, kind="stable")
        return cls(words, pairs, keys[order], (words + order).astype(np.int64))


def split_vocab(vocab: Vocab) -> tuple[Vocab, Bigrams | None]:
    """The word vocabulary (the leading words without a separator) and the bigrams after it (None if
    none); worked out once per vocabulary (a run asks for it several times)."""
    if "split" not in vocab.derived:
        vocab.derived["split"] = _split(vocab)
    return vocab.derived["split"]


def _split(vocab: Vocab) -> tuple[Vocab, Bigrams | None]:
    n = next((i for i, w in enumerate(vocab.words) if SEPARATOR in w), vocab.size)
    if n == vocab.size:
        return vocab, None
    words = Vocab(words=vocab.words[:n], index={w: i for i, w in enumerate(vocab.words[:n])})
    pairs = np.zeros((vocab.size - n, 2), dtype=np.int64)
    for row, bigram in enumerate(vocab.words[n:]):
        parts = bigram.split(SEPARATOR)
        ids = [words.index.get(p) for p in parts]
        if len(parts) != 2 or None in ids or words.unk_id in ids:
            raise ClfError(f"vocabulary entry {n + row} {bigram!r} is neither a word (it follows the bigrams) "
                           "nor a pair of two known words")
        pairs[row] = ids
    return words, Bigrams.from_pairs(n, pairs)


def _pair_keys(split: TokenizedSplit, words: int, unk: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of the adjacent pairs inside each document with no ``<UNK>``, and the document of each."""
    ids = np.asarray(split.ids, dtype=np.int64)
    offsets = np.asarray(split.offsets)
    if len(ids) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    valid = (ids[:-1] != unk) & (ids[1:] != unk)
    starts = offsets[1:-1]
    valid[starts[(starts > 0) & (starts < len(ids))] - 1] = False      # no pair across two documents
    position = np.flatnonzero(valid)
    doc = np.searchsorted(offsets, position, side="right") - 1
    return ids[position] * words + ids[position + 1], doc


def add_bigrams(vocab: Vocab, train: TokenizedSplit, min_count: int, max_size: int | None) -> Vocab:
    """``vocab`` (words only) followed by the training text's pairs seen ``min_count`` times, most frequent first."""
    keys, _ = _pair_keys(train, vocab.size, vocab.unk_id)
    unique, counts = np.unique(keys, return_counts=True)
    kept = counts >= min_count
    unique, counts = unique[kept], counts[kept]
    order = np.lexsort((unique, -counts))[:max_size]        # ties: by key, so the order is reproducible
    return with_bigrams(vocab, np.stack(np.divmod(unique[order], vocab.size), axis=1))


def with_bigrams(words: Vocab, pairs: np.ndarray, files: SourceFiles | None = None) -> Vocab:
    """``words`` followed by the bigrams of ``pairs`` (int64 [B, 2] word ids); ``files``: its two
    files' bytes, if already made."""
    first, second = pairs[:, 0].tolist(), pairs[:, 1].tolist()
    vocab = Vocab.from_words(words.words + [bigram_word(words.words[a], words.words[b]) for a, b in zip(first, second)])
    vocab.files = files
    vocab.derived["split"] = (words, Bigrams.from_pairs(words.size, pairs)) if len(pairs) else (vocab, None)
    return vocab


def append_bigrams(split: TokenizedSplit, bigrams: Bigrams, unk: int) -> TokenizedSplit:
    """Each document's word ids followed by the ids of its pairs that ``bigrams`` holds, in text order."""
    keys, doc = _pair_keys(split, bigrams.words, unk)
    slot = np.minimum(np.searchsorted(bigrams.keys, keys), max(len(bigrams.keys) - 1, 0))
    found = bigrams.keys[slot] == keys if len(bigrams.keys) else np.zeros(len(keys), dtype=bool)
    n = len(split)
    word_doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(np.asarray(split.offsets)))
    all_doc = np.concatenate([word_doc, doc[found]])
    order = np.argsort(all_doc, kind="stable")                 # words first in each document, then its bigrams
    ids = np.concatenate([np.asarray(split.ids, dtype=np.int32), bigrams.ids[slot[found]].astype(np.int32)])[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_doc, minlength=n), out=offsets[1:])
    return TokenizedSplit(split.name, ids, offsets, split.labels, split.inst_ids)


def bigram_vectors(vectors: torch.Tensor, bigrams: Bigrams) -> torch.Tensor:
    """Word vectors [W, D] followed by one row per bigram: the mean of its two words' vectors."""
    pairs = torch.from_numpy(bigrams.pairs)
    return torch.cat([vectors, (vectors[pairs[:, 0]] + vectors[pairs[:, 1]]) / 2])
