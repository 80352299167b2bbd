"""``clf w2v``, start to finish: corpus -> gensim -> output directory (skipped if up to date)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from clf.config.compose import to_container
from clf.errors import ClfError
from clf.w2v import config as w2v_config
from clf.w2v.corpus import Corpus, corpus_key, corpus_sources, load_corpus
from clf.w2v.scale import with_scaled_settings
from clf.w2v.output import check_out, read_info, write_output
from clf.w2v.train import Vectors, train_vectors

log = logging.getLogger("clf.w2v")


def output_dir(cfg: DictConfig) -> Path:
    if not cfg.out:
        raise ClfError("clf w2v needs out=DIR (where word2vec.pt and the index files go)")
    return Path(cfg.out).expanduser().resolve()


def _info(cfg: DictConfig, key: str, corpus: Corpus, vectors: Vectors, workers: int,
          seconds: dict[str, float]) -> dict[str, Any]:
    import gensim

    return {
        "kind": "trained",
        "key": key,
        "config": to_container(cfg),
        "engine": {"name": "gensim.models.Word2Vec", "version": gensim.__version__, "mode": "corpus_iterable",
                   "sg": 1, "hs": 0, "workers": workers, "deterministic": bool(cfg.deterministic)},
        "corpus": {"splits": [s.name for s in corpus.splits], "docs": corpus.n_docs, "tokens": corpus.n_tokens,
                   "tokens_in_vocabulary": corpus.n_known},
        "vocabulary_size": corpus.vocab.size,
        "unk": {"id": corpus.vocab.unk_id, "row": "zeros (words under min_count are skipped, as gensim does)"},
        "dim": int(cfg.vector_size),
        "seconds": seconds,
    }


def run(cfg: DictConfig) -> Path:
    """Train and write ``cfg.out``; returns it. A complete output of the same config and text is kept."""
    start = time.perf_counter()
    out = output_dir(cfg)
    check_out(out)
    sources = corpus_sources(cfg)
    key = corpus_key(cfg, sources)
    previous = read_info(out)
    if previous is not None and previous.get("key") == key:
        log.info("%s is up to date (same config and text); delete it to train again", out)
        return out
    cfg = with_scaled_settings(cfg, sources)
    corpus = load_corpus(cfg, sources)
    seconds = {"corpus": round(time.perf_counter() - start, 3)}
    log.info("corpus: %d documents, %d tokens (%d in the vocabulary of %d words) in %.1f s",
             corpus.n_docs, corpus.n_tokens, corpus.n_known, corpus.vocab.size, seconds["corpus"])
    workers = w2v_config.workers(cfg)
    vectors = train_vectors(corpus, cfg, workers)
    write_start = time.perf_counter()
    seconds.update(sentences=round(vectors.seconds_sentences, 3), train=round(vectors.seconds_train, 3),
                   until_write=round(write_start - start, 3))
    info = _info(cfg, key, corpus, vectors, workers, seconds)
    write_output(out, corpus.vocab, vectors.target, vectors.context, info, list(cfg.probes), cfg.neighbours)
    log.info("wrote %s in %.1f s (%.1f s in all)", out, time.perf_counter() - write_start,
             time.perf_counter() - start)
    return out
