"""Skip-gram with negative sampling by gensim's ``Word2Vec`` on a ``Corpus``.

gensim gets the documents as lists of words (``sentences``), the input its own examples use.
(Its ``corpus_file`` mode, a text file read by C++ threads, took 31% more CPU time on IMDB
here: 518 CPU seconds against 394.) Our vocabulary, with its counts, is handed to gensim as is
(``build_vocab_from_freq``), so gensim keeps exactly the words the classifier's vocabulary
has, and skips its own vocabulary scan.

Repeatability: gensim seeds the initial vectors and its samplers from ``seed``; instead of
Python's per-process salted ``hash`` we pass a stable hash, so PYTHONHASHSEED plays no part.
With one worker a run repeats bit for bit; with several, thread scheduling decides the order
of updates.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from clf.errors import ClfError
from clf.w2v.corpus import Corpus
from clf.w2v.sentences import sentences

log = logging.getLogger("clf.w2v")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (gensim's ``hashfxn``)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


@dataclass
class Vectors:
    """Input (target) and output (context) vectors, [V, D] float32 in vocabulary order."""

    target: np.ndarray
    context: np.ndarray
    seconds_sentences: float
    seconds_train: float


def _epoch_logger(epochs: int):
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochLog(CallbackAny2Vec):
        def __init__(self) -> None:
            self.epoch, self.start = 0, time.perf_counter()

        def on_epoch_end(self, model) -> None:
            self.epoch += 1
            log.info("epoch %d/%d done (%.1f s)", self.epoch, epochs, time.perf_counter() - self.start)

    return EpochLog()


def _model(cfg: DictConfig, workers: int):
    from gensim.models import Word2Vec

    logging.getLogger("gensim").setLevel(logging.WARNING)
    return Word2Vec(vector_size=cfg.vector_size, window=cfg.window, min_count=1, negative=cfg.negative, hs=0,
                    sg=1, sample=cfg.sample, epochs=cfg.epochs, workers=workers, seed=cfg.seed,
                    hashfxn=stable_hash)


def _rows(model, corpus: Corpus, matrix: np.ndarray) -> np.ndarray:
    """gensim's rows reordered to our vocabulary; ``<UNK>`` gets a zero row."""
    vocab = corpus.vocab
    ours = np.array([i for i in range(vocab.size) if i != vocab.unk_id], dtype=np.int64)
    try:
        theirs = np.array([model.wv.key_to_index[vocab.words[i]] for i in ours], dtype=np.int64)
    except KeyError as exc:
        raise ClfError(f"gensim dropped the word {exc.args[0]!r} of the vocabulary") from None
    out = np.zeros((vocab.size, matrix.shape[1]), dtype=np.float32)
    out[ours] = matrix[theirs]
    return out


def train_vectors(corpus: Corpus, cfg: DictConfig, workers: int) -> Vectors:
    """Train on ``corpus`` with ``workers`` threads."""
    start = time.perf_counter()
    documents = sentences(corpus.splits, corpus.vocab)
    words = sum(map(len, documents))
    if words == 0:
        raise ClfError("the training text has no word of the vocabulary")
    seconds_sentences = time.perf_counter() - start
    model = _model(cfg, workers)
    known = {corpus.vocab.words[i]: int(c) for i, c in enumerate(corpus.counts.tolist())
             if i != corpus.vocab.unk_id}
    model.build_vocab_from_freq(known, corpus_count=len(documents))
    log.info("training %d-dim skip-gram on %d words (%d documents), vocabulary %d, %d epochs, %d worker%s",
             cfg.vector_size, words, corpus.n_docs, corpus.vocab.size, cfg.epochs, workers,
             "" if workers == 1 else "s")
    model.train(corpus_iterable=documents, total_examples=len(documents), total_words=words, epochs=cfg.epochs,
                callbacks=[_epoch_logger(cfg.epochs)])
    seconds_train = time.perf_counter() - start - seconds_sentences
    return Vectors(_rows(model, corpus, model.wv.vectors), _rows(model, corpus, model.syn1neg),
                   seconds_sentences, seconds_train)
