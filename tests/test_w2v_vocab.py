"""Fast vocabulary building (``count_tokens`` + ``Vocab.from_counts``) gives exactly what the
homework's tokenizer + ``Counter`` gives, on test_encode's edge-case corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from test_tokenizer import NLTK  # the homework tokenizer (nltk is imported only where used)

from clf.data import encode as encode_module
from clf.data.dataset import build_vocab
from clf.data.encode import count_tokens
from clf.data.sources import SplitSource
from clf.data.records import Records
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab


def reference_counts(texts, tokenize) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def test_count_tokens_equals_regexp_tokenizer(corpus):  # noqa: F811
    _, texts = corpus
    counts = count_tokens(texts, Tokenizer())
    assert counts == reference_counts(texts, NLTK.tokenize)
    assert any(len(w) > 16 for w in counts) and any(not w.isascii() for w in counts)
    assert any(len(w) == 8 for w in counts) and any(len(w) == 16 for w in counts)


def test_count_tokens_across_chunks(corpus, monkeypatch):  # noqa: F811
    _, texts = corpus
    texts = texts[:800]
    expected = reference_counts(texts, NLTK.tokenize)
    for chunk_chars in (1, 50, 3000):
        monkeypatch.setattr(encode_module, "CHUNK_CHARS", chunk_chars)
        assert count_tokens(texts, Tokenizer()) == expected


@pytest.mark.parametrize("tokenizer", [Tokenizer(lowercase=True), Tokenizer(strip_html=True),
                                       Tokenizer(pattern=r"[a-z]+|\d")], ids=["lowercase", "strip_html", "pattern"])
def test_count_tokens_with_options(corpus, tokenizer):  # noqa: F811
    _, texts = corpus
    texts = texts[:800] + ["Great<br />MOVIE <b>Bold</b> ABCDEFGHIJKLMNOPQ ÜBER"]
    assert count_tokens(texts, tokenizer) == reference_counts(texts, tokenizer)


def test_count_tokens_edge_inputs():
    assert count_tokens([], Tokenizer()) == Counter()
    assert count_tokens(["", "!!!", "😀"], Tokenizer()) == Counter()
    assert count_tokens(["a a b", "東京 a"], Tokenizer()) == Counter({"a": 3, "b": 1, "東京": 1})


def test_vocab_from_counts_equals_build(corpus):  # noqa: F811
    _, texts = corpus
    documents = [NLTK.tokenize(t) for t in texts]
    for min_count, max_size in ((1, None), (2, None), (3, 50)):
        built = Vocab.build(documents, min_count, max_size)
        assert Vocab.from_counts(count_tokens(texts, Tokenizer()), min_count, max_size).words == built.words
    assert Vocab.from_counts({UNK: 9, "a": 1}).words == ["a", UNK]


def test_build_vocab_uses_the_fast_counts(corpus, tmp_path):  # noqa: F811
    _, texts = corpus
    records = Records(inst_ids=None, texts=texts, labels=None)
    source = SplitSource("train", tmp_path / "x.csv", "fp", lambda: records)
    vocab = build_vocab([source], Tokenizer(), 2, None, tmp_path)
    assert vocab.words == Vocab.build((NLTK.tokenize(t) for t in texts), 2).words
