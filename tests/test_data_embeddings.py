"""Vocabulary and the homework's word2vec artifacts (word2vec.pt + the two index files)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import HOMEWORK_TOKENS, corpus_words, make_dataset, popen_clf, train_args, write_homework_word2vec

from clf.config.compose import compose
from clf.data.dataset import load_dataset
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab
from clf.embeddings import load_word2vec
from clf.errors import ClfError
from clf.model import build_model
from clf.train.loop import prepare_data


@pytest.fixture
def w2v(tmp_path, dataset):
    directory = tmp_path / "w2v"
    words = corpus_words(dataset)
    vectors = write_homework_word2vec(directory, words)
    return directory, words, vectors


def test_loads_homework_files_unchanged(w2v):
    directory, words, vectors = w2v
    assert json.loads((directory / "index_to_word.txt").read_text())["0"] == UNK
    vocab, loaded = load_word2vec(directory)
    assert vocab.words == words
    assert vocab.unk_id == 0 and vocab.pad_id == len(words)
    assert torch.equal(loaded, vectors)


def test_model_starts_from_target_vectors(w2v, dataset, tmp_path):
    directory, words, vectors = w2v
    cfg = compose([*dataset.overrides, *HOMEWORK_TOKENS, "embeddings=word2vec", f"embeddings.dir={directory}"])
    data, loaded = prepare_data(cfg)
    assert data.vocab.words == words
    model = build_model(cfg, data.vocab.size, loaded)
    weight = model.embeddings.weight.detach()
    assert weight.shape == (len(words) + 1, vectors.shape[1])
    assert torch.equal(weight[: len(words)], vectors)
    assert torch.equal(weight[len(words)], torch.zeros(vectors.shape[1]))  # padding row
    # tokens missing from word_to_index map to <UNK>
    train_ids = data["train"].ids
    assert (train_ids == 0).any() and (train_ids < len(words)).all()


def test_vocab_from_training_text_honours_min_count_and_max_size(dataset):
    base = [*dataset.overrides, *HOMEWORK_TOKENS, "data.min_count=1"]
    full = load_dataset(compose(base).data).vocab
    counts = Counter(t for text in pd.read_csv(dataset.train)["text"] for t in Tokenizer()(text))
    assert set(full.words) == set(counts) | {UNK}
    min5 = load_dataset(compose([*base, "data.min_count=5"]).data).vocab
    assert set(min5.words) == {w for w, c in counts.items() if c >= 5} | {UNK}
    assert len(min5.words) < len(full.words)
    small = load_dataset(compose([*base, "data.max_size=10"]).data).vocab
    assert small.size == 10 and UNK in small.index
    most_common = sorted(counts, key=lambda w: (-counts[w], w))[:9]
    assert small.words[:9] == most_common
    # unknown tokens map to <UNK>
    data = load_dataset(compose([*base, "data.max_size=10"]).data)
    assert (data["dev"].ids == small.unk_id).sum() > 0
    assert set(data["dev"].ids.tolist()) <= set(range(10))


def test_vocab_build_unit():
    docs = [["a", "b", "b", "c", UNK], ["b", "c", "d"]]
    assert Vocab.build(docs, min_count=1).words == ["b", "c", "a", "d", UNK]
    assert Vocab.build(docs, min_count=2).words == ["b", "c", UNK]
    assert Vocab.build(docs, min_count=1, max_size=3).words == ["b", "c", UNK]
    assert Vocab.build([], min_count=1).words == [UNK]
    vocab = Vocab.build(docs, min_count=2)
    assert vocab.unk_id == 2 and vocab.pad_id == 3 and vocab.index["c"] == 1
    with pytest.raises(ClfError, match="<UNK>"):
        Vocab.from_words(["a", "b"])


def test_vocab_save_and_load_round_trip(tmp_path):
    vocab = Vocab.from_words(["naïve", "東京", UNK, "b"])
    vocab.save(tmp_path)
    again = Vocab.load(tmp_path)
    assert again.words == vocab.words and again.index == vocab.index
    assert again.fingerprint() == vocab.fingerprint()
    assert Vocab.from_words(["b", "naïve", "東京", UNK]).fingerprint() != vocab.fingerprint()


def test_loaded_vocab_saves_the_bytes_it_was_read_from(tmp_path):
    words = ["naïve", "東京", UNK, "b"]
    source, copy, changed = tmp_path / "source", tmp_path / "copy", tmp_path / "changed"
    write_homework_word2vec(source, words)  # json.dump's layout (ASCII escapes), not Vocab.save's
    vocab = Vocab.load(source)
    vocab.save(copy)
    for name in ("word_to_index.txt", "index_to_word.txt"):
        assert (copy / name).read_bytes() == (source / name).read_bytes()
    vocab.words.append("new")  # no longer the files' words: serialised, so nothing stale is written
    vocab.index["new"] = len(words)
    vocab.save(changed)
    again = Vocab.load(changed)
    assert again.words == words + ["new"] and again.index == vocab.index


def _rows_mismatch(d: Path, words):
    torch.save({"target_embeddings.weight": torch.randn(len(words) + 1, 10),
                "context_embeddings.weight": torch.randn(len(words) + 1, 10)}, d / "word2vec.pt")


def _missing_key(d: Path, words):
    torch.save({"embeddings.weight": torch.randn(len(words), 10)}, d / "word2vec.pt")


def _not_a_state_dict(d: Path, words):
    torch.save([torch.randn(len(words), 10)], d / "word2vec.pt")


def _truncated(d: Path, words):
    data = (d / "word2vec.pt").read_bytes()
    (d / "word2vec.pt").write_bytes(data[: len(data) // 2])


def _missing_file(d: Path, words):
    (d / "word2vec.pt").unlink()


def _nan_vectors(d: Path, words):
    target = torch.randn(len(words), 10)
    target[3, 2] = float("nan")
    torch.save({"target_embeddings.weight": target}, d / "word2vec.pt")


def _indexes_disagree(d: Path, words):
    i2w = json.loads((d / "index_to_word.txt").read_text())
    i2w["1"], i2w["2"] = i2w["2"], i2w["1"]
    (d / "index_to_word.txt").write_text(json.dumps(i2w))


def _index_sizes_differ(d: Path, words):
    i2w = json.loads((d / "index_to_word.txt").read_text())
    del i2w[str(len(words) - 1)]
    (d / "index_to_word.txt").write_text(json.dumps(i2w))


def _no_unk(d: Path, words):
    w2i = {("<unk>" if w == UNK else w): i for i, w in enumerate(words)}
    (d / "word_to_index.txt").write_text(json.dumps(w2i))
    (d / "index_to_word.txt").write_text(json.dumps({i: w for w, i in w2i.items()}))


def _bad_json(d: Path, words):
    (d / "word_to_index.txt").write_text('{"a": 0, ')


def _duplicate_ids(d: Path, words):
    w2i = {w: i for i, w in enumerate(words)}
    w2i[words[1]] = 0
    (d / "word_to_index.txt").write_text(json.dumps(w2i))


BREAKAGES = {
    "rows differ from vocabulary": (_rows_mismatch, "word2vec.pt", "rows but the vocabulary"),
    "missing key": (_missing_key, "word2vec.pt", "target_embeddings.weight"),
    "not a state dict": (_not_a_state_dict, "word2vec.pt", "not a state dict"),
    "truncated": (_truncated, "word2vec.pt", "cannot be read"),
    "missing word2vec.pt": (_missing_file, "word2vec.pt", "no such file"),
    "NaN vectors": (_nan_vectors, "word2vec.pt", "NaN"),
    "index files disagree": (_indexes_disagree, "index_to_word.txt", "disagrees"),
    "index files differ in size": (_index_sizes_differ, "index_to_word.txt", "entries"),
    "no <UNK>": (_no_unk, "word_to_index.txt", "<UNK>"),
    "bad JSON": (_bad_json, "word_to_index.txt", "not valid JSON"),
    "duplicate ids": (_duplicate_ids, "word_to_index.txt", "id 0 is given to both"),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_broken_artifacts_give_one_line_error(tmp_path, name):
    break_it, file_name, needle = BREAKAGES[name]
    words = [UNK] + [f"w{i}" for i in range(30)]
    write_homework_word2vec(tmp_path, words)
    break_it(tmp_path, words)
    with pytest.raises(ClfError) as info:
        load_word2vec(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / file_name)), message
    assert needle in message


@pytest.mark.slow
def test_broken_artifacts_exit_2_through_clf_train(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=100, n_dev=20, n_test=20)
    words = [UNK] + [f"w{i}" for i in range(30)]
    processes = {}
    for name in ("rows differ from vocabulary", "truncated", "no <UNK>"):
        directory = tmp_path / name.replace(" ", "_").replace("<", "").replace(">", "")
        write_homework_word2vec(directory, words)
        BREAKAGES[name][0](directory, words)
        run_dir = tmp_path / f"run-{directory.name}"
        processes[name] = (popen_clf(*train_args(data, run_dir, "embeddings=word2vec", f"embeddings.dir={directory}")),
                           directory, run_dir)
    for name, (process, directory, run_dir) in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, stderr
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, stderr
        assert lines[0].startswith(f"clf train: error: {directory / BREAKAGES[name][1]}"), lines[0]
        assert BREAKAGES[name][2] in lines[0]
        assert not (run_dir / "checkpoints").exists()


def test_word2vec_needs_dir(tmp_path):
    with pytest.raises(ClfError, match="embeddings.dir"):
        compose(["embeddings=word2vec"])
    with pytest.raises(ClfError, match="not a directory"):
        load_word2vec(tmp_path / "nope")


@pytest.mark.parametrize("lowercase", [True, False])
def test_case_kept_vectors_under_lowercased_tokens_get_a_warning(tmp_path, dataset, caplog, lowercase):
    """The defaults lowercase tokens; the homework's vectors are case-kept, so their capitalised
    words would never be matched: the run says so, naming the directory and the fix."""
    words = corpus_words(dataset)
    capitalised = [f"Capital{i}" for i in range(20)]  # words the corpus does not hold
    directory = tmp_path / "w2v-cased"
    write_homework_word2vec(directory, words + capitalised)
    cfg = compose([*dataset.overrides, "embeddings=word2vec", f"embeddings.dir={directory}",
                   f"data.tokenizer.lowercase={str(lowercase).lower()}", "data.tokenizer.ngrams=1"])
    with caplog.at_level("WARNING", logger="clf.train"):
        prepare_data(cfg)
    warned = [r.getMessage() for r in caplog.records if "have capitals" in r.getMessage()]
    if lowercase:
        assert len(warned) == 1 and str(directory) in warned[0] and "data.tokenizer.lowercase=false" in warned[0]
        expected = sum(1 for w in words + capitalised if w != UNK and w != w.lower())
        assert expected >= len(capitalised) and f"{expected} of the {len(words) + len(capitalised)} words" in warned[0]
    else:
        assert warned == []
