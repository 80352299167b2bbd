"""The training text as token ids: the classifier's tokenizer, vocabulary builder and token cache.

The vocabulary is every token seen ``min_count`` times in the chosen splits (most frequent
first, ``<UNK>`` last); the ids of each split come from the same token-id cache the
classifier reads, so a later ``clf train embeddings.dir=OUT`` finds its training split there.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from clf.config.compose import to_container
from clf.data.cache import TokenizedSplit
from clf.data.dataset import build_vocab, cache_root, tokenize_split
from clf.data.sources import SplitSource, split_sources
from clf.data.tokenizer import Tokenizer
from clf.data.vocab import Vocab
from clf.errors import ClfError

# config keys that change where or how fast the stage runs, not the vectors it makes
NOT_IN_KEY = ("out", "workers", "probes", "neighbours")
NOT_IN_DATA_KEY = ("dir", "train", "dev", "test", "unlabeled", "cache_dir", "min_count", "max_size",
                   "bigram_min_count", "bigram_max_size")


@dataclass
class Corpus:
    """Token ids of the training splits and how often each vocabulary id occurs."""

    vocab: Vocab
    splits: list[TokenizedSplit]
    counts: np.ndarray          # int64 [V]; counts[vocab.unk_id]: tokens outside the vocabulary

    @property
    def n_docs(self) -> int:
        return sum(len(split) for split in self.splits)

    @property
    def n_tokens(self) -> int:
        return int(self.counts.sum())

    @property
    def n_known(self) -> int:
        """Tokens with a vector of their own (not ``<UNK>``): what skip-gram trains on."""
        return self.n_tokens - int(self.counts[self.vocab.unk_id])


def corpus_sources(cfg: DictConfig) -> list[SplitSource]:
    """The splits of ``cfg.splits`` the data source has (at least one)."""
    sources = split_sources(cfg.data)
    chosen = [sources[name] for name in cfg.splits if name in sources]
    if not chosen:
        raise ClfError(f"data={cfg.data.source} has none of the splits {list(cfg.splits)}")
    return chosen


def corpus_key(cfg: DictConfig, sources: list[SplitSource]) -> str:
    """Identifies the vectors a config makes: its settings and the content of the text."""
    settings = {k: v for k, v in to_container(cfg).items() if k not in NOT_IN_KEY}
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in NOT_IN_DATA_KEY}
    settings["data"]["tokenizer"].pop("ngrams", None)     # vectors are of words: bigrams play no part
    text = json.dumps({"settings": settings, "sources": [s.fingerprint for s in sources]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def word_tokenizer(data: DictConfig) -> Tokenizer:
    """The classifier's tokenizer without bigrams (``data.tokenizer.ngrams`` is for the classifier)."""
    return Tokenizer.from_config(data.tokenizer).words_only()


def _read_once(source: SplitSource) -> SplitSource:
    """The same source whose file is parsed at most once (vocabulary and ids both need the text)."""
    return dataclasses.replace(source, read=functools.cache(source.read))


def corpus_vocab(cfg: DictConfig, sources: list[SplitSource]) -> Vocab:
    """Tokens seen ``min_count`` times in ``sources`` (most frequent first), then ``<UNK>`` (cached)."""
    data = cfg.data
    vocab = build_vocab(sources, word_tokenizer(data), cfg.min_count, None, cache_root(data),
                        data.train_limit)
    if vocab.size < 2:
        raise ClfError(f"no token occurs min_count={cfg.min_count} times in the {'+'.join(s.name for s in sources)} "
                       "text; lower min_count= or use more text")
    return vocab


def load_corpus(cfg: DictConfig, sources: list[SplitSource]) -> Corpus:
    """Vocabulary and token ids of ``sources``, from the cache when there."""
    data = cfg.data
    tokenizer = word_tokenizer(data)
    root = cache_root(data)
    sources = [_read_once(s) for s in sources]
    vocab = corpus_vocab(cfg, sources)
    splits = []
    for source in sources:
        split = tokenize_split(source, tokenizer, vocab, root)
        if source.name == "train" and data.train_limit is not None:
            split = split.head(data.train_limit)
        splits.append(split)
    counts = np.zeros(vocab.size, dtype=np.int64)
    for split in splits:
        counts += np.bincount(split.ids, minlength=vocab.size)
    return Corpus(vocab, splits, counts)
