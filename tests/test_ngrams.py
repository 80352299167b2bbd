"""Bigram tokens (``data.tokenizer.ngrams=2``): the vocabulary, the token ids, word2vec rows, and a
real run that resumes, predicts and explains with them (issue 12)."""

from __future__ import annotations

import signal
from collections import Counter

import pandas as pd
import pytest
import torch

from helpers import (HOMEWORK_TOKENS, corpus_words, make_dataset, one_line_error, popen_clf, run_clf, same_weights,
                     train_args, wait_for_checkpoint, write_homework_word2vec)

from clf.api import load_run
from clf.config.compose import compose
from clf.data.dataset import load_dataset
from clf.data.ngrams import split_vocab
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab
from clf.errors import ClfError
from clf.train.loop import prepare_data

# the references below tokenize with Tokenizer() (case kept), so these tests pin the case; WORDS: no bigrams
CASE_KEPT = ["data.tokenizer.lowercase=false"]
WORDS = [*HOMEWORK_TOKENS, "data.min_count=1"]
BIGRAMS = ["data.tokenizer.ngrams=2", *CASE_KEPT, "data.min_count=1", "data.bigram_min_count=2"]


def reference_tokens(text: str, vocab: Vocab) -> list[int]:
    """What a document should read, from strings: its words, then its known words' pairs in the vocabulary."""
    words = Tokenizer()(text)
    ids = [vocab.index.get(w, vocab.unk_id) for w in words]
    pairs = [f"{a} {b}" for a, b, ia, ib in zip(words, words[1:], ids, ids[1:])
             if ia != vocab.unk_id and ib != vocab.unk_id]
    return ids + [vocab.index[p] for p in pairs if p in vocab.index]


def training_pairs(path, known: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in pd.read_csv(path)["text"]:
        words = Tokenizer()(text)
        counts.update(f"{a} {b}" for a, b in zip(words, words[1:]) if a in known and b in known)
    return counts


def test_vocabulary_holds_the_training_pairs_after_the_words(dataset):
    words_only = load_dataset(compose([*dataset.overrides, *WORDS]).data).vocab
    vocab = load_dataset(compose([*dataset.overrides, *BIGRAMS]).data).vocab
    assert vocab.words[: words_only.size] == words_only.words          # a word keeps its id
    counts = training_pairs(dataset.train, set(words_only.words) - {UNK})
    expected = {pair for pair, count in counts.items() if count >= 2}
    bigrams = vocab.words[words_only.size:]
    assert set(bigrams) == expected and len(bigrams) == len(expected) > 0
    assert [counts[b] for b in bigrams] == sorted((counts[b] for b in bigrams), reverse=True)


def test_max_size_keeps_the_most_frequent_pairs(dataset):
    full = load_dataset(compose([*dataset.overrides, *BIGRAMS]).data).vocab
    capped = load_dataset(compose([*dataset.overrides, *BIGRAMS, "data.bigram_max_size=7"]).data).vocab
    words, _ = split_vocab(full)
    assert capped.words == full.words[: words.size + 7]


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_token_ids_are_the_words_then_the_known_pairs(dataset, split):
    data = load_dataset(compose([*dataset.overrides, *BIGRAMS]).data)
    texts = pd.read_csv(getattr(dataset, split))["text"].tolist()
    tokens = data[split]
    assert len(tokens) == len(texts)
    for i, text in enumerate(texts):
        assert tokens.ids[tokens.offsets[i]:tokens.offsets[i + 1]].tolist() == reference_tokens(text, data.vocab), i


def test_cached_ids_are_kept_apart_from_word_ids(dataset):
    words = load_dataset(compose([*dataset.overrides, *WORDS]).data)
    with_bigrams = load_dataset(compose([*dataset.overrides, *BIGRAMS]).data)
    again = load_dataset(compose([*dataset.overrides, *BIGRAMS]).data)         # from the cache
    assert len(with_bigrams["train"].ids) > len(words["train"].ids)
    assert (again["train"].ids == with_bigrams["train"].ids).all()
    assert (load_dataset(compose([*dataset.overrides, *WORDS]).data)["train"].ids
            == words["train"].ids).all()


def test_the_bigram_vocabulary_is_cached_and_a_damaged_entry_rebuilt(dataset, cache_dir, caplog):
    cfg = compose([*dataset.overrides, *BIGRAMS])
    built = load_dataset(cfg.data).vocab
    entries = list((cache_dir / "vocab").glob("bigrams-*"))
    assert len(entries) == 1 and {p.name for p in entries[0].iterdir()} == \
        {"pairs.npy", "word_to_index.txt", "index_to_word.txt", "meta.json"}
    cached = load_dataset(cfg.data).vocab
    assert cached.words == built.words and cached.fingerprint() == built.fingerprint()
    assert split_vocab(cached)[1].pairs.tolist() == split_vocab(Vocab.from_words(built.words))[1].pairs.tolist()
    assert Vocab.load(entries[0]).words == built.words              # the run dir's copy: these bytes
    (entries[0] / "word_to_index.txt").write_text("{}")
    with caplog.at_level("WARNING"):
        rebuilt = load_dataset(cfg.data).vocab
    assert "bigram vocabulary cache" in caplog.text and "checksum mismatch" in caplog.text
    assert rebuilt.words == built.words and Vocab.load(entries[0]).words == built.words
    other = load_dataset(compose([*dataset.overrides, *BIGRAMS, "data.bigram_min_count=3"]).data).vocab
    assert other.size < built.size and len(list((cache_dir / "vocab").glob("bigrams-*"))) == 2


def test_word2vec_bigram_rows_are_the_mean_of_their_words(dataset, tmp_path):
    words = corpus_words(dataset)
    vectors = write_homework_word2vec(tmp_path / "w2v", words)
    cfg = compose([*dataset.overrides, "embeddings=word2vec", f"embeddings.dir={tmp_path / 'w2v'}",
                   "data.tokenizer.ngrams=2", *CASE_KEPT, "data.bigram_min_count=1"])
    data, table = prepare_data(cfg)
    assert data.vocab.words[: len(words)] == words and data.vocab.size > len(words)
    assert torch.equal(table[: len(words)], vectors)
    for row in range(len(words), data.vocab.size):
        a, b = data.vocab.words[row].split(" ")
        assert torch.allclose(table[row], (vectors[words.index(a)] + vectors[words.index(b)]) / 2)


def test_homework_files_load_unchanged_with_ngrams_1(dataset, tmp_path):
    words = corpus_words(dataset)
    vectors = write_homework_word2vec(tmp_path / "w2v", words)
    data, table = prepare_data(compose([*dataset.overrides, "embeddings=word2vec", f"embeddings.dir={tmp_path / 'w2v'}",
                                        *HOMEWORK_TOKENS]))
    assert data.vocab.words == words and torch.equal(table, vectors)


def test_homework_experiment_pins_words_and_case():
    cfg = compose(["experiment=homework", "data=csv", "data.train=x.csv", "data.dev=y.csv", "embeddings.dir=w"])
    assert cfg.data.tokenizer.ngrams == 1 and cfg.data.tokenizer.lowercase is False and cfg.model.num_heads == 4
    assert cfg.train.batch_size == 1 and cfg.train.epochs == 1 and cfg.train.best_precision == "fp32"


def test_the_defaults_are_lowercased_words_and_bigrams_with_8_heads():
    cfg = compose(["data=csv", "data.train=x.csv", "data.dev=y.csv"])
    assert cfg.data.tokenizer.ngrams == 2 and cfg.data.tokenizer.lowercase is True and cfg.model.num_heads == 8
    assert cfg.data.bigram_max_size == 50_000 and cfg.train.best_precision == "fp16"   # issue 21


def test_bad_ngrams_settings_are_one_line_errors(dataset, tmp_path):
    for override, words in (("data.tokenizer.ngrams=3", "data.tokenizer.ngrams=3"),
                            ("data.bigram_min_count=0", "data.bigram_min_count=0")):
        result = run_clf(*train_args(dataset, tmp_path / "run", override))
        assert result.returncode == 2 and words in one_line_error(result)
        assert not (tmp_path / "run").exists()
    result = run_clf(*train_args(dataset, tmp_path / "run", "data.tokenizer.ngrams=2", "data.tokenizer.pattern='[^,]+'"))
    assert result.returncode == 2 and "matches spaces" in one_line_error(result)


def test_a_vocabulary_with_a_word_after_the_bigrams_is_refused():
    with pytest.raises(ClfError, match="neither a word"):
        split_vocab(Vocab.from_words(["a", "b", UNK, "a b", "c"]))


@pytest.mark.timeout(1100)  # reference 300 + step 40 300 + kill 60 + resume 300
@pytest.mark.slow
def test_a_bigram_run_resumes_exactly_and_reloads_with_its_bigrams(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=400)
    extra = [*BIGRAMS, "train.epochs=6", "train.batch_size=8", "train.checkpoint_every=5",
             "train.checkpoint_seconds=3600"]
    reference = tmp_path / "A"
    run_clf(*train_args(data, reference, *extra), check=True)
    killed = tmp_path / "B"
    process = popen_clf(*train_args(data, killed, *extra))
    wait_for_checkpoint(process, killed, 40)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    result = run_clf(*train_args(data, killed, *extra), check=True)
    assert "resuming" in result.stderr
    same_weights(reference, killed)
    assert (reference / "predictions" / "test.csv").read_bytes() == (killed / "predictions" / "test.csv").read_bytes()

    run = load_run(killed)
    words, bigrams = split_vocab(run.vocab)
    assert bigrams is not None and len(bigrams.pairs) > 0
    probabilities = pd.read_csv(next((killed / "predictions").glob("dev*prob*.csv")))["probability"].to_numpy()
    texts = pd.read_csv(data.dev)["text"].tolist()
    assert abs(run.predict(texts) - probabilities).max() < 1e-5
    text = max(texts, key=lambda t: len(reference_tokens(t, run.vocab)) - len(Tokenizer()(t)))
    tokens, weights, _ = run.attention(text)
    words_of_text = Tokenizer()(text)
    bigram_tokens = [run.vocab.words[i] for i in reference_tokens(text, run.vocab) if i >= words.size]
    assert bigram_tokens and tokens == words_of_text + bigram_tokens
    assert weights.shape[0] == len(tokens)
    explained = run_clf("explain", str(killed), text, "--out", str(tmp_path / "heatmap.png"), check=True)
    assert f"{len(tokens)} tokens" in explained.stdout
