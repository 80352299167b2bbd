"""The token-id cache: hits are memory-mapped and identical, stale or corrupt entries are rebuilt,
and concurrent builders publish exactly one entry."""

from __future__ import annotations

import json
import logging
import multiprocessing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from helpers import HOMEWORK_TOKENS, make_dataset, make_rows, write_csv

from clf.config.compose import compose
from clf.data.cache import TokenizedSplit, load_or_build
from clf.data.dataset import cache_root, load_dataset, tokenize_split
from clf.data.encode import encode
from clf.data.sources import split_sources
from clf.data.tokenizer import Tokenizer


class Counting:
    """Wraps a SplitSource's reader and counts the calls (a call = a cache miss)."""

    def __init__(self, source):
        self.calls = 0
        self.source = replace(source, read=self)
        self._read = source.read

    def __call__(self):
        self.calls += 1
        return self._read()


def setup_split(data, cache_dir: Path, split: str = "train"):
    cfg = compose([*data.overrides, *HOMEWORK_TOKENS, "data.min_count=1", f"data.cache_dir={cache_dir}"])
    vocab = load_dataset(cfg.data, splits=()).vocab
    source = split_sources(cfg.data)[split]
    return cfg, vocab, source


def expected_split(source, vocab):
    records = source.read()
    ids, offsets = encode(records.texts, Tokenizer(), vocab)
    return ids, offsets, records.labels, records.inst_ids


def assert_split_equals(split: TokenizedSplit, expected) -> None:
    for array, want in zip((split.ids, split.offsets, split.labels, split.inst_ids), expected):
        np.testing.assert_array_equal(np.asarray(array), want)
        assert array.dtype == want.dtype


def entries(cache_dir: Path, split: str) -> list[Path]:
    return sorted((cache_dir / "tokens").glob(f"{split}-*"))


def test_second_load_is_a_memory_mapped_hit(tmp_path, dataset):
    cfg, vocab, source = setup_split(dataset, tmp_path / "cache")
    counting = Counting(source)
    first = tokenize_split(counting.source, Tokenizer(), vocab, tmp_path / "cache")
    assert counting.calls == 1
    second = tokenize_split(counting.source, Tokenizer(), vocab, tmp_path / "cache")
    assert counting.calls == 1  # no rebuild
    for name in ("ids", "offsets", "labels", "inst_ids"):
        array = getattr(second, name)
        assert isinstance(array, np.memmap), name
        assert Path(array.filename).parent == entries(tmp_path / "cache", "train")[0]
    expected = expected_split(source, vocab)
    assert_split_equals(first, expected)
    assert_split_equals(second, expected)
    assert len(entries(tmp_path / "cache", "train")) == 1


def test_load_dataset_uses_cache_dir_from_env(dataset, cache_dir):
    cfg = compose([*dataset.overrides, *HOMEWORK_TOKENS, "data.min_count=1"])
    assert cache_root(cfg.data) == cache_dir
    first = load_dataset(cfg.data)
    names = sorted(p.name.split("-")[0] for p in (cache_dir / "tokens").iterdir())
    assert names == ["dev", "test", "train"]
    assert len(list((cache_dir / "vocab").iterdir())) == 1
    second = load_dataset(cfg.data)
    assert second.vocab.words == first.vocab.words
    for split in ("train", "dev", "test"):
        assert isinstance(second[split].ids, np.memmap)
        np.testing.assert_array_equal(second[split].ids, first[split].ids)
        np.testing.assert_array_equal(second[split].offsets, first[split].offsets)


def test_changed_file_content_gives_a_new_entry(tmp_path, dataset):
    cache = tmp_path / "cache"
    cfg, vocab, source = setup_split(dataset, cache, "dev")
    old = tokenize_split(source, Tokenizer(), vocab, cache)
    old_ids = np.array(old.ids)
    write_csv(dataset.dev, make_rows(120, seed=99, first_id=100_000))  # same path, new content
    _, _, new_source = setup_split(dataset, cache, "dev")
    assert new_source.fingerprint != source.fingerprint
    new = tokenize_split(new_source, Tokenizer(), vocab, cache)
    assert len(entries(cache, "dev")) == 2
    assert_split_equals(new, expected_split(new_source, vocab))
    assert not np.array_equal(np.asarray(new.ids), old_ids)
    # other tokenizer options or another vocabulary are other entries too
    tokenize_split(new_source, Tokenizer(lowercase=True), vocab, cache)
    assert len(entries(cache, "dev")) == 3


def _flip_last_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(1, 5):
        data[-i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CORRUPTIONS = {
    "flipped ids.npy": ("ids.npy", _flip_last_bytes),
    "flipped offsets.npy": ("offsets.npy", _flip_last_bytes),
    "truncated ids.npy": ("ids.npy", _truncate),
    "truncated meta.json": ("meta.json", _truncate),
    "missing labels.npy": ("labels.npy", lambda p: p.unlink()),
    "meta.json of another key": ("meta.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "key": "other"}))),
    "inconsistent n_docs": ("meta.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "n_docs": 3}))),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_entry_is_rebuilt_never_trusted(tmp_path, dataset, caplog, name):
    file_name, corrupt = CORRUPTIONS[name]
    cache = tmp_path / "cache"
    cfg, vocab, source = setup_split(dataset, cache)
    tokenize_split(source, Tokenizer(), vocab, cache)
    (entry,) = entries(cache, "train")
    corrupt(entry / file_name)
    counting = Counting(source)
    with caplog.at_level(logging.WARNING, logger="clf.data.cache"):
        rebuilt = tokenize_split(counting.source, Tokenizer(), vocab, cache)
    assert counting.calls == 1
    assert any("invalid" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records), caplog.text
    expected = expected_split(source, vocab)
    assert_split_equals(rebuilt, expected)
    assert entries(cache, "train") == [entry]
    assert not [p for p in (cache / "tokens").iterdir() if p.name.startswith(".")]
    # the rebuilt entry is a clean hit now
    caplog.clear()
    counting.calls = 0
    with caplog.at_level(logging.WARNING, logger="clf.data.cache"):
        again = tokenize_split(counting.source, Tokenizer(), vocab, cache)
    assert counting.calls == 0 and not caplog.records
    assert_split_equals(again, expected)


def test_corrupt_vocab_cache_is_rebuilt(dataset, cache_dir, caplog):
    cfg = compose([*dataset.overrides, *HOMEWORK_TOKENS, "data.min_count=1"])
    words = load_dataset(cfg.data, splits=()).vocab.words
    (path,) = (cache_dir / "vocab").iterdir()
    path.write_text('["a", "b"]')  # valid JSON, but no <UNK>
    with caplog.at_level(logging.WARNING):
        assert load_dataset(cfg.data, splits=()).vocab.words == words
    assert "invalid" in caplog.text
    path.write_text('["a", ')
    assert load_dataset(cfg.data, splits=()).vocab.words == words


def _concurrent_builder(root: str, key: str, barrier, texts: list[str], words: list[str], out: str) -> None:
    from clf.data.vocab import Vocab

    vocab = Vocab.from_words(words)

    def build() -> TokenizedSplit:
        ids, offsets = encode(texts, Tokenizer(), vocab)
        split = TokenizedSplit("train", ids, offsets, np.arange(len(texts), dtype=np.int8) % 2,
                               np.arange(len(texts), dtype=np.int64))
        barrier.wait(timeout=60)  # every builder has built before any publishes
        return split

    split = load_or_build(Path(root), key, "train", build)
    np.savez(out, ids=split.ids, offsets=split.offsets, labels=split.labels, inst_ids=split.inst_ids,
             memmap=isinstance(split.ids, np.memmap))


@pytest.mark.parametrize("corrupt_entry_first", [False, True])
def test_concurrent_builders_publish_one_entry(tmp_path, corrupt_entry_first):
    builders = 4
    data = make_dataset(tmp_path / "data", n_train=2000, n_dev=10, n_test=10)
    cfg = compose([*data.overrides, *HOMEWORK_TOKENS, "data.min_count=1"])
    texts = split_sources(cfg.data)["train"].read().texts
    words = load_dataset(cfg.data, splits=()).vocab.words
    root, key = tmp_path / "cache" / "tokens", "train-0123456789abcdef"
    if corrupt_entry_first:  # all builders find it invalid and race to replace it
        (root / key).mkdir(parents=True)
        (root / key / "meta.json").write_text("{")
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(builders)
    outs = [tmp_path / f"out{i}.npz" for i in range(builders)]
    processes = [context.Process(target=_concurrent_builder, args=(str(root), key, barrier, texts, words, str(out)))
                 for out in outs]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0
    from clf.data.vocab import Vocab

    want_ids, want_offsets = encode(texts, Tokenizer(), Vocab.from_words(words))
    for out in outs:
        got = np.load(out)
        np.testing.assert_array_equal(got["ids"], want_ids)
        np.testing.assert_array_equal(got["offsets"], want_offsets)
        np.testing.assert_array_equal(got["inst_ids"], np.arange(len(texts)))
        if not corrupt_entry_first:
            assert bool(got["memmap"])  # each got the published, memory-mapped copy
    assert sorted(p.name for p in root.iterdir()) == [key]  # one entry, no temp or stale dirs
    assert sorted(p.name for p in (root / key).iterdir()) == [
        "ids.npy", "inst_ids.npy", "labels.npy", "meta.json", "offsets.npy"]
    meta = json.loads((root / key / "meta.json").read_text())
    published = load_or_build(root, key, "train", build=lambda: pytest.fail("published entry is not valid"))
    assert meta["n_docs"] == len(texts) and isinstance(published.ids, np.memmap)
    np.testing.assert_array_equal(published.ids, want_ids)
