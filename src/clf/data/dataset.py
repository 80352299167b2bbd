"""Turn a data config into token-id splits and a vocabulary, through the token-id cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clf.atomic import atomic_write_text
from clf.data.bigram_cache import cached_bigram_vocab
from clf.data.cache import TokenizedSplit, default_cache_root, load_or_build
from clf.data.encode import count_tokens, encode
from clf.data.ngrams import add_bigrams, append_bigrams, split_vocab
from clf.data.sources import SplitSource, split_sources
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import Vocab
from clf.errors import ClfError

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    vocab: Vocab
    splits: dict[str, TokenizedSplit]

    def __getitem__(self, name: str) -> TokenizedSplit:
        return self.splits[name]


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


def cache_root(data_cfg) -> Path:
    return Path(data_cfg.cache_dir).expanduser() if data_cfg.cache_dir else default_cache_root()


def tokenize_split(source: SplitSource, tokenizer: Tokenizer, vocab: Vocab, root: Path) -> TokenizedSplit:
    """Token ids of one split, from the cache or freshly encoded (and then cached).

    With ``tokenizer.ngrams == 2`` the words are encoded (and cached) with the word part of
    ``vocab``, then the bigrams of ``vocab`` are appended (``clf.data.ngrams``), cached under a key
    that holds the whole vocabulary and ``ngrams``.
    """

    def build() -> TokenizedSplit:
        if tokenizer.ngrams == 2:
            words, bigrams = split_vocab(vocab)
            split = tokenize_split(source, tokenizer.words_only(), words, root)
            return split if bigrams is None else append_bigrams(split, bigrams, words.unk_id)
        records = source.read()
        ids, offsets = encode(records.texts, tokenizer, vocab)
        return TokenizedSplit(source.name, ids, offsets, records.labels, records.inst_ids)

    key = f"{source.name}-{_key(source.fingerprint, tokenizer.fingerprint(), vocab.fingerprint())}"
    return load_or_build(root / "tokens", key, source.name, build)


def encode_texts(texts: list[str], tokenizer: Tokenizer, vocab: Vocab, name: str = "texts") -> TokenizedSplit:
    """Texts (no file, no cache) as a split of token ids, bigrams included when ``tokenizer.ngrams == 2``."""
    words, bigrams = split_vocab(vocab) if tokenizer.ngrams == 2 else (vocab, None)
    ids, offsets = encode(texts, tokenizer.words_only(), words)
    split = TokenizedSplit(name, ids, offsets, None, np.arange(len(texts)))
    return split if bigrams is None else append_bigrams(split, bigrams, words.unk_id)


def with_training_bigrams(data_cfg, source: SplitSource, tokenizer: Tokenizer, vocab: Vocab, root: Path) -> Vocab:
    """``vocab`` as is with ``ngrams=1`` or when it already holds bigrams (a run directory's); else its
    words followed by the bigrams of the training text (``data.bigram_min_count``, ``data.bigram_max_size``),
    cached (``clf.data.bigram_cache``)."""
    if tokenizer.ngrams == 1:
        return vocab
    words, bigrams = split_vocab(vocab)
    if bigrams is not None:
        return vocab

    def build() -> Vocab:
        train = tokenize_split(source, tokenizer.words_only(), words, root)
        if data_cfg.train_limit is not None:
            train = train.head(data_cfg.train_limit)
        return add_bigrams(words, train, data_cfg.bigram_min_count, data_cfg.bigram_max_size)

    key = _key(source.fingerprint, tokenizer.fingerprint(), words.fingerprint(), data_cfg.bigram_min_count,
               data_cfg.bigram_max_size, data_cfg.train_limit)
    return cached_bigram_vocab(root / "vocab", key, words, build)


def build_vocab(sources: list[SplitSource], tokenizer: Tokenizer, min_count: int, max_size: int | None,
                root: Path, limit: int | None = None) -> Vocab:
    """Vocabulary of the given splits' text (cached as a JSON word list)."""
    key = _key(*(s.fingerprint for s in sources), tokenizer.fingerprint(), min_count, max_size, limit, "v1")
    path = root / "vocab" / f"{key}.json"
    if path.is_file():
        try:
            return Vocab.from_words(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, ClfError) as exc:
            log.warning("vocabulary cache %s is invalid (%s); rebuilding it", path, exc)
    documents = []
    for source in sources:
        texts = source.read().texts
        documents.extend(texts[:limit] if limit is not None and source.name == "train" else texts)
    vocab = Vocab.from_counts(count_tokens(documents, tokenizer), min_count=min_count, max_size=max_size)
    try:
        atomic_write_text(path, json.dumps(vocab.words, ensure_ascii=False))
    except OSError as exc:
        log.warning("could not cache the vocabulary in %s (%s)", path, exc)
    return vocab


def load_dataset(data_cfg, vocab: Vocab | None = None, splits: tuple[str, ...] = ("train", "dev", "test"),
                 vocab_splits: tuple[str, ...] = ("train",)) -> Dataset:
    """The requested splits (those the source has) as token ids.

    With no ``vocab`` (no pre-trained embeddings), one is built from ``vocab_splits``; with
    ``data.tokenizer.ngrams=2`` the training text's bigrams are added to it (``clf.data.ngrams``).
    """
    sources = split_sources(data_cfg)
    tokenizer = Tokenizer.from_config(data_cfg.tokenizer)
    root = cache_root(data_cfg)
    if vocab is None:
        chosen = [sources[s] for s in vocab_splits if s in sources]
        vocab = build_vocab(chosen, tokenizer.words_only(), data_cfg.min_count, data_cfg.max_size, root,
                            data_cfg.train_limit)
    vocab = with_training_bigrams(data_cfg, sources["train"], tokenizer, vocab, root)
    wanted = [name for name in splits if name in sources]
    # splits are read and encoded side by side: gzip, pandas' parser and numpy release the GIL
    with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(tokenize_split, sources[name], tokenizer, vocab, root) for name in wanted}
        result = {name: future.result() for name, future in futures.items()}
    if data_cfg.train_limit is not None and "train" in result:
        result["train"] = result["train"].head(data_cfg.train_limit)
    return Dataset(vocab=vocab, splits=result)
