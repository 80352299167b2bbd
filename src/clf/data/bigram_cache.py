"""The training text's bigram vocabulary, cached beside the token ids (``data.tokenizer.ngrams=2``).

Counting IMDB's 4.6 million adjacent pairs and serialising the 245,000-entry vocabulary that
results took about two seconds of every run; an entry keeps both. It is a directory
``vocab/bigrams-KEY`` (KEY: the training file's content, the tokenizer, the word vocabulary, the
bigram settings) holding ``pairs.npy`` (the word ids of each bigram, in vocabulary order), the
vocabulary's two homework files, and ``meta.json`` with the key and a CRC of each. It is
cached like a token-cache entry (``clf.data.cache.cached_entry``); one that does not match its
key or CRCs is rebuilt, never trusted.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from clf.data.cache import CacheInvalid, cached_entry
from clf.data.ngrams import split_vocab, with_bigrams
from clf.data.vocab import INDEX_TO_WORD, WORD_TO_INDEX, SourceFiles, Vocab

FORMAT = 1


def cached_bigram_vocab(root: Path, key: str, words: Vocab, build: Callable[[], Vocab]) -> Vocab:
    """The vocabulary of ``key`` from the cache under ``root``, or ``build()`` it and cache it."""
    return cached_entry(root, f"bigrams-{key}", "bigram vocabulary cache", lambda entry: _load(entry, key, words),
                        lambda directory, vocab: _write(directory, key, vocab), build, use_stored=False)


def _files(vocab: Vocab) -> dict[str, bytes]:
    _, bigrams = split_vocab(vocab)
    pairs = np.zeros((0, 2), dtype=np.int64) if bigrams is None else bigrams.pairs
    files = vocab.file_bytes()
    vocab.files = files  # serialised once: the run directory's copy writes these bytes
    npy = io.BytesIO()
    np.save(npy, np.ascontiguousarray(pairs, dtype=np.int64), allow_pickle=False)
    return {"pairs.npy": npy.getvalue(), WORD_TO_INDEX: files.word_to_index, INDEX_TO_WORD: files.index_to_word}


def _write(directory: Path, key: str, vocab: Vocab) -> None:
    files = _files(vocab)
    meta = {"format": FORMAT, "key": key, "size": vocab.size, "crc": {name: zlib.crc32(data) for name, data in files.items()}}
    for name, data in [*files.items(), ("meta.json", json.dumps(meta).encode())]:
        with open(directory / name, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def _load(entry: Path, key: str, words: Vocab) -> Vocab:
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            raise CacheInvalid("key mismatch")
        data = {name: (entry / name).read_bytes() for name in ("pairs.npy", WORD_TO_INDEX, INDEX_TO_WORD)}
        for name, content in data.items():
            if zlib.crc32(content) != meta["crc"][name]:
                raise CacheInvalid(f"{name} checksum mismatch")
        pairs = np.load(io.BytesIO(data["pairs.npy"]), allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheInvalid(str(exc)) from None
    if (pairs.dtype != np.int64 or pairs.ndim != 2 or pairs.shape[1] != 2 or words.size + len(pairs) != meta["size"]
            or (len(pairs) and not (0 <= pairs.min() and pairs.max() < words.size))):
        raise CacheInvalid("inconsistent shapes")
    return with_bigrams(words, pairs, SourceFiles(meta["size"], data[WORD_TO_INDEX], data[INDEX_TO_WORD]))
