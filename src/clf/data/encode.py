"""Texts -> flat token ids + offsets, exactly as ``tokenizer`` then ``vocab`` would give.

For the homework's pattern ``\\w+`` there is a vectorised path with no Python object per
token: a chunk of documents becomes one array of code points, word characters are found with
a lookup table (non-ASCII code points are classified by the regex itself, once each), tokens
are runs of word characters, and ASCII tokens of up to 16 characters are packed into two
integers and looked up in an open-addressing hash table held in numpy arrays. The rare rest
(non-ASCII or longer tokens) is sliced out of the text and looked up in a dict. Other
patterns go through the tokenizer token by token. A test proves both give the same ids as
``RegexpTokenizer`` + the vocabulary.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

import numpy as np

from clf.data.tokenizer import NLTK_FLAGS, Tokenizer
from clf.data.vocab import Vocab

_ASCII_WORD = np.zeros(129, dtype=bool)      # index 128 stands for every non-ASCII code point
_ASCII_WORD[list((string.ascii_letters + string.digits + "_").encode())] = True
_WORD_CHAR = re.compile(r"\w", NLTK_FLAGS)
_PACKED = 16                       # tokens up to this many ASCII chars are hashed in numpy
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)
_MUL1 = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xC2B2AE3D27D4EB4F)
CHUNK_CHARS = 1 << 23


def _windows(buf: np.ndarray) -> np.ndarray:
    """``w[p]`` = little-endian uint64 of ``buf[p:p+8]`` (an overlapping strided view)."""
    padded = np.concatenate([buf, np.zeros(16, dtype=np.uint8)])
    return np.ndarray(shape=(len(buf) + 8,), dtype="<u8", buffer=padded, offset=0, strides=(1,))


def _pack(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two uint64 per token: its first 8 bytes and its next 8, zero-padded."""
    win = _windows(buf)
    low = win[starts] & _BYTE_MASKS[np.minimum(lengths, 8)]
    high = win[starts + 8] & _BYTE_MASKS[np.clip(lengths - 8, 0, 8)]
    return low, high


def _slots(low: np.ndarray, high: np.ndarray, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((low * _MUL1) ^ (high * _MUL2)) >> np.uint64(64 - bits)


class _HashedVocab:
    """Open-addressing hash table (linear probing) of the vocabulary's short ASCII words."""

    def __init__(self, vocab: Vocab) -> None:
        words = [(w, i) for i, w in enumerate(vocab.words) if w.isascii() and 0 < len(w) <= _PACKED]
        self.bits = max(10, (4 * len(words)).bit_length())
        size = 1 << self.bits
        self.low = np.zeros(size, dtype=np.uint64)
        self.high = np.zeros(size, dtype=np.uint64)
        self.ids = np.zeros(size, dtype=np.int32)
        if not words:
            return
        buf = np.frombuffer("".join(w for w, _ in words).encode("ascii"), dtype=np.uint8)
        lengths = np.array([len(w) for w, _ in words], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        low, high = _pack(buf, starts, lengths)
        mask = size - 1
        for slot, lo, hi, (_, idx) in zip(_slots(low, high, self.bits).tolist(), low.tolist(), high.tolist(), words):
            while self.low[slot] != 0:
                slot = (slot + 1) & mask
            self.low[slot], self.high[slot], self.ids[slot] = lo, hi, idx

    def lookup(self, low: np.ndarray, high: np.ndarray, unk: int) -> np.ndarray:
        out = np.full(len(low), unk, dtype=np.int32)
        slots = _slots(low, high, self.bits).astype(np.int64)
        pending = np.arange(len(low))
        mask = len(self.low) - 1
        while len(pending):
            s = slots[pending]
            table_low = self.low[s]
            found = (table_low == low[pending]) & (self.high[s] == high[pending])
            out[pending[found]] = self.ids[s[found]]
            pending = pending[~found & (table_low != 0)]
            slots[pending] = (slots[pending] + 1) & mask
        return out


class _Lookup(dict):
    """word -> id where a missing word reads as the unknown-word id (lookups stay in C)."""

    def __init__(self, vocab: Vocab) -> None:
        super().__init__(vocab.index)
        self.unk = vocab.unk_id

    def __missing__(self, key: str) -> int:
        return self.unk


def _word_mask(points: np.ndarray) -> np.ndarray:
    """True where a code point is a ``\\w`` character (non-ASCII ones asked of ``re``)."""
    word = _ASCII_WORD[np.minimum(points, 128)]
    other = np.flatnonzero(points >= 128)
    if len(other):
        unique, inverse = np.unique(points[other], return_inverse=True)
        word[other] = np.array([_WORD_CHAR.match(chr(c)) is not None for c in unique.tolist()])[inverse]
    return word


@dataclass
class _Tokens:
    """The ``\\w+`` tokens of one joined chunk: spans, the short ASCII ones packed, the rest."""

    joined: str
    starts: np.ndarray
    ends: np.ndarray
    packed: np.ndarray          # indices of tokens packed into (low, high)
    other: np.ndarray           # indices of the rest (non-ASCII or longer than _PACKED)
    low: np.ndarray
    high: np.ndarray

    def strings(self, which: np.ndarray) -> list[str]:
        return [self.joined[s:e] for s, e in zip(self.starts[which].tolist(), self.ends[which].tolist())]


def _find_tokens(joined: str) -> _Tokens:
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    word = _word_mask(points).view(np.int8)
    edges = np.diff(word, prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    lengths = ends - starts
    packable = lengths <= _PACKED
    non_ascii_word_chars = np.flatnonzero((points >= 128) & word.view(bool))
    packable[np.searchsorted(starts, non_ascii_word_chars, side="right") - 1] = False
    packed = np.flatnonzero(packable)
    low, high = _pack(points.astype(np.uint8), starts[packed], lengths[packed])
    return _Tokens(joined, starts, ends, packed, np.flatnonzero(~packable), low, high)


def _encode_chunk(texts: list[str], table: _HashedVocab, lookup: _Lookup) -> tuple[np.ndarray, np.ndarray]:
    """``\\w+`` tokens of ``texts`` as ids; returns (ids, tokens per document)."""
    tokens = _find_tokens("\n".join(texts))
    ids = np.empty(len(tokens.starts), dtype=np.int32)
    ids[tokens.packed] = table.lookup(tokens.low, tokens.high, lookup.unk)
    ids[tokens.other] = [lookup[word] for word in tokens.strings(tokens.other)]
    doc_starts = np.cumsum([0] + [len(t) + 1 for t in texts])
    counts = np.diff(np.searchsorted(tokens.starts, doc_starts))
    return ids, counts


def _chunks(texts: list[str]):
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text) + 1
        if size >= CHUNK_CHARS:
            yield texts[start:i + 1]
            start, size = i + 1, 0
    if start < len(texts):
        yield texts[start:]


def _prepared(texts: list[str], tokenizer: Tokenizer) -> list[str]:
    """Texts as the pattern sees them (HTML stripped, lowercased, as configured)."""
    if tokenizer.strip_html:
        texts = [tokenizer.preprocess(t) for t in texts]
    if tokenizer.lowercase:
        texts = [t.lower() for t in texts]
    return texts


def encode(texts: list[str], tokenizer: Tokenizer, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all documents, concatenated (int32), and offsets (int64, len(texts)+1)."""
    lookup = _Lookup(vocab)
    texts = _prepared(texts, tokenizer)
    pieces: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    if tokenizer.pattern == r"\w+":
        table = _HashedVocab(vocab)
        for chunk in _chunks(texts):
            ids, chunk_counts = _encode_chunk(chunk, table, lookup)
            pieces.append(ids)
            counts.append(chunk_counts)
    else:
        plain = Tokenizer(pattern=tokenizer.pattern)
        for text in texts:
            tokens = plain(text)
            pieces.append(np.fromiter(map(lookup.__getitem__, tokens), dtype=np.int32, count=len(tokens)))
            counts.append(np.array([len(tokens)]))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if texts:
        np.cumsum(np.concatenate(counts), out=offsets[1:])
    flat = np.concatenate(pieces).astype(np.int32, copy=False) if pieces else np.zeros(0, dtype=np.int32)
    return flat, offsets


def _tally(low: np.ndarray, high: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (low, high) keys and the summed weights of each."""
    if not len(low):
        return low, high, weights
    order = np.lexsort((high, low))
    low, high, weights = low[order], high[order], weights[order]
    first = np.flatnonzero(np.concatenate([[True], (low[1:] != low[:-1]) | (high[1:] != high[:-1])]))
    return low[first], high[first], np.add.reduceat(weights, first)


def count_tokens(texts: list[str], tokenizer: Tokenizer) -> Counter[str]:
    """How often each token occurs: ``Counter`` over ``tokenizer(text)`` for all texts, vectorised.

    For ``\\w+`` the short ASCII tokens are counted as packed integers (no Python object per
    token) and turned back into strings once per distinct token.
    """
    texts = _prepared(texts, tokenizer)
    counts: Counter[str] = Counter()
    if tokenizer.pattern != r"\w+":
        plain = Tokenizer(pattern=tokenizer.pattern)
        for text in texts:
            counts.update(plain(text))
        return counts
    lows, highs, weights = [], [], []
    for chunk in _chunks(texts):
        tokens = _find_tokens("\n".join(chunk))
        counts.update(tokens.strings(tokens.other))
        short = tokens.high == 0            # up to 8 characters: one integer, a plain sort
        low, weight = np.unique(tokens.low[short], return_counts=True)
        lows += [low, tokens.low[~short]]
        highs += [np.zeros_like(low), tokens.high[~short]]
        weights += [weight, np.ones(int((~short).sum()), dtype=np.int64)]
    if lows:
        low, high, weight = _tally(np.concatenate(lows), np.concatenate(highs), np.concatenate(weights))
        keys = np.stack([low, high], axis=1).astype("<u8").view("S16").ravel()
        counts.update(dict(zip((key.decode("ascii") for key in keys.tolist()), weight.tolist())))
    return counts
