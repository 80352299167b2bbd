"""``clf w2v epochs=null min_count=null``: word2vec settings scaled to the corpus (issue 12)."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

from helpers import make_dataset

from clf.data.tokenizer import Tokenizer
from clf.data.vocab import Vocab
from clf.w2v.config import compose_w2v
from clf.w2v.scale import MAX_EPOCHS, MIN_EPOCHS, scaled_epochs, scaled_min_count
from clf.w2v.stage import run


def test_small_corpora_get_more_epochs_and_a_lower_min_count_imdb_keeps_5_and_5():
    sizes = [1_000, 300_000, 1_500_000, 3_000_000, 19_000_000, 10**9]
    epochs = [scaled_epochs(n) for n in sizes]
    counts = [scaled_min_count(n) for n in sizes]
    assert epochs == sorted(epochs, reverse=True) and counts == sorted(counts)
    assert epochs[0] == MAX_EPOCHS and epochs[-1] == MIN_EPOCHS
    assert (scaled_epochs(19_000_000), scaled_min_count(19_000_000)) == (5, 5)   # IMDB's train + unlabeled


def test_null_settings_are_resolved_from_the_corpus_and_recorded(tmp_path):
    """null epochs and min_count (the defaults), and lowercased words (the default tokenizer)."""
    data = make_dataset(tmp_path / "data", n_train=300)
    cfg = compose_w2v(["data=csv", f"data.train={data.train}", f"out={tmp_path / 'vec'}", "vector_size=8", "workers=1"])
    assert cfg.epochs is None and cfg.min_count is None and cfg.data.tokenizer.lowercase is True
    out = run(cfg)
    documents = [Tokenizer(lowercase=True)(t) for t in pd.read_csv(data.train)["text"]]
    tokens = sum(map(len, documents))
    info = json.loads((out / "w2v.json").read_text())
    assert info["corpus"]["tokens"] == tokens
    assert info["config"]["epochs"] == scaled_epochs(tokens) and info["config"]["min_count"] == scaled_min_count(tokens)
    counts = Counter(t for doc in documents for t in doc)
    assert Vocab.load(out).words == Vocab.from_counts(counts, min_count=scaled_min_count(tokens)).words
