"""``clf.data.encode.encode`` (the vectorised path) gives the ids of RegexpTokenizer + vocabulary.

The reference is ``[vocab.index.get(t, unk) for t in RegexpTokenizer(r'\\w+').tokenize(text)]``
per document, over a large random corpus built to hit the fast path's edge cases: ASCII tokens
of exactly 8/9/16/17 characters (the packing boundaries) that share prefixes with vocabulary
words, tokens longer than 16 characters, non-ASCII word characters inside otherwise ASCII
tokens, code points whose low byte is an ASCII letter, and tokens glued by no separator.
See test_tokenizer.py for why nltk is pinned below 3.10.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from helpers import make_corpus, make_vocab
from test_tokenizer import NLTK  # the homework's tokenizer (importing nltk takes 2 s: only where used)

from clf.data import encode as encode_module
from clf.data.encode import encode
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab


def reference_ids(texts, vocab: Vocab, tokenize=NLTK.tokenize) -> list[list[int]]:
    return [[vocab.index.get(t, vocab.unk_id) for t in tokenize(text)] for text in texts]


def split_ids(ids: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    assert offsets.dtype == np.int64 and ids.dtype == np.int32
    assert offsets[0] == 0 and offsets[-1] == len(ids)
    assert np.all(np.diff(offsets) >= 0)
    return [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def test_corpus_exercises_the_edge_cases(corpus):
    vocab, texts = corpus
    tokens = [t for text in texts for t in NLTK.tokenize(text)]
    lengths = {len(t) for t in tokens if t.isascii()}
    assert {8, 9, 16, 17} <= lengths and max(lengths) > 17
    known = [t for t in tokens if t in vocab.index]
    assert len(known) > 0.15 * len(tokens)
    assert len(tokens) - len(known) > 0.3 * len(tokens)
    assert any(not t.isascii() and t in vocab.index for t in tokens)
    assert any(not t.isascii() and t not in vocab.index for t in tokens)
    assert any(len(t) == 17 and t.isascii() and t in vocab.index for t in tokens)
    assert any(len(t) in (8, 16) and t.isascii() and t not in vocab.index for t in tokens)


def test_encode_equals_regexp_tokenizer_and_vocab(corpus):
    vocab, texts = corpus
    ids, offsets = encode(texts, Tokenizer(), vocab)
    assert len(offsets) == len(texts) + 1
    got = split_ids(ids, offsets)
    expected = reference_ids(texts, vocab)
    for text, g, e in zip(texts, got, expected):
        assert g == e, repr(text)


def test_encode_equals_tokenizer_class(corpus):
    vocab, texts = corpus
    tokenizer = Tokenizer()
    ids, offsets = encode(texts, tokenizer, vocab)
    assert split_ids(ids, offsets) == reference_ids(texts, vocab, tokenizer)


def test_encode_with_combining_marks_equals_nltk():
    rng = random.Random(5)
    vocab, words = make_vocab(rng)
    marks = ["e\u0301", "\u0301", "a\u0308b", "x²", "a\u200db", "हिन्दी", "a‿b", "Ⓐ"]
    texts = make_corpus(rng, words + marks * 20, 500)
    ids, offsets = encode(texts, Tokenizer(), vocab)
    assert split_ids(ids, offsets) == reference_ids(texts, vocab)


def test_encode_across_chunks(corpus, monkeypatch):
    """Documents are encoded in chunks of CHUNK_CHARS characters; boundaries change nothing."""
    vocab, texts = corpus
    texts = texts[:1500] + texts[-8:]
    whole = encode(texts, Tokenizer(), vocab)
    for chunk_chars in (1, 7, 100, 5000):
        monkeypatch.setattr(encode_module, "CHUNK_CHARS", chunk_chars)
        ids, offsets = encode(texts, Tokenizer(), vocab)
        np.testing.assert_array_equal(ids, whole[0])
        np.testing.assert_array_equal(offsets, whole[1])


@pytest.mark.parametrize("lowercase,strip_html", [(True, False), (False, True), (True, True)])
def test_encode_options_equal_tokenizer(corpus, lowercase, strip_html):
    vocab, texts = corpus
    texts = texts[:1500] + ["Great<br />MOVIE <b>Bold</b> ABCDEFGHIJKLMNOPQ ÜBER Straße"]
    lower_vocab = Vocab.from_words(sorted({w.lower() for w in vocab.words if w != UNK}) + [UNK])
    tokenizer = Tokenizer(lowercase=lowercase, strip_html=strip_html)
    for v in (vocab, lower_vocab):
        ids, offsets = encode(texts, tokenizer, v)
        assert split_ids(ids, offsets) == reference_ids(texts, v, tokenizer)
    assert reference_ids(["Great<br />MOVIE"], lower_vocab, tokenizer)[0] != []


def test_encode_other_pattern(corpus):
    vocab, texts = corpus
    tokenizer = Tokenizer(pattern=r"[a-z]+|\d")
    ids, offsets = encode(texts[:500], tokenizer, vocab)
    assert split_ids(ids, offsets) == reference_ids(texts[:500], vocab, tokenizer)


def test_encode_edge_inputs():
    vocab = Vocab.from_words(["a", "bb", UNK])
    ids, offsets = encode([], Tokenizer(), vocab)
    assert ids.tolist() == [] and offsets.tolist() == [0]
    ids, offsets = encode(["", "!!!", "a bb c", "😀a😀"], Tokenizer(), vocab)
    assert split_ids(ids, offsets) == [[], [], [0, 1, 2], [0]]


def test_vocabulary_without_short_ascii_words():
    vocab = Vocab.from_words(["東京", "a" * 30, UNK])
    texts = ["東京 " + "a" * 30 + " b 東京x"]
    ids, offsets = encode(texts, Tokenizer(), vocab)
    assert split_ids(ids, offsets) == [[0, 1, 2, 2]]


@pytest.mark.parametrize("options", [{}, {"lowercase": True}, {"strip_html": True}, {"pattern": r"[a-z]+"}])
def test_count_tokens_equals_counter_of_tokenizer(corpus, monkeypatch, options):
    """The vocabulary is built from ``count_tokens``: it must count exactly the tokenizer's tokens."""
    from collections import Counter

    from clf.data.encode import count_tokens

    _, texts = corpus
    tokenizer = Tokenizer(**options)
    want = Counter(t for text in texts for t in tokenizer(text))
    assert count_tokens(texts, tokenizer) == want
    monkeypatch.setattr(encode_module, "CHUNK_CHARS", 997)
    assert count_tokens(texts, tokenizer) == want
    assert count_tokens([], tokenizer) == Counter()
