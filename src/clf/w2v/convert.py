"""``clf w2v import``: published vectors -> the homework's directory, optionally restricted to
the vocabulary of a data source. The files hold input vectors only, so the context vectors
are zeros; ``<UNK>`` is the file's own ``<UNK>`` if it has one, else a zero row added last."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from clf.config.compose import to_container
from clf.data.vocab import UNK, Vocab
from clf.errors import ClfError
from clf.w2v.corpus import corpus_sources, corpus_vocab
from clf.w2v.scale import with_scaled_settings
from clf.w2v.importers import Imported, read_vectors
from clf.w2v.output import check_out, write_output

log = logging.getLogger("clf.w2v")


def with_unk(imported: Imported) -> tuple[Vocab, np.ndarray]:
    """The imported words as a vocabulary, ``<UNK>`` added (zero row) when the file lacks it."""
    words, vectors = imported.words, imported.vectors
    if UNK not in words:
        words = words + [UNK]
        vectors = np.concatenate([vectors, np.zeros((1, vectors.shape[1]), dtype=np.float32)])
    return Vocab.from_words(words), vectors


def run_import(path: Path, fmt: str, out: Path, cfg: DictConfig, restrict: bool, limit: int | None) -> Path:
    """Convert ``path`` (probes from ``cfg``); with ``restrict`` keep only words of ``cfg.data``'s vocabulary."""
    start = time.perf_counter()
    out = out.expanduser().resolve()
    check_out(out)
    if restrict:
        sources = corpus_sources(cfg)
        data_vocab = corpus_vocab(with_scaled_settings(cfg, sources), sources)
    else:
        data_vocab = None
    keep = None if data_vocab is None else data_vocab.index.__contains__
    imported = read_vectors(path, fmt, keep, limit)
    if not imported.words:
        raise ClfError(f"none of the {imported.entries} words is in the vocabulary of data={cfg.data.source} "
                       "(GloVe is lowercase: try data.tokenizer.lowercase=true)", path)
    vocab, target = with_unk(imported)
    log.info("read %d entries of %s, kept %d words of dimension %d", imported.entries, path, len(imported.words),
             target.shape[1])
    info: dict[str, Any] = {
        "kind": "imported",
        "source": {"file": str(Path(path).expanduser().resolve()), "format": fmt, "entries_read": imported.entries,
                   "limit": limit},
        "vocabulary_size": vocab.size,
        "dim": int(target.shape[1]),
        "unk": {"id": vocab.unk_id, "row": "from the file" if UNK in imported.words else "zeros (added)"},
        "context": "zeros (the file holds input vectors only)",
    }
    if data_vocab is not None:
        info["vocab_from"] = {"config": to_container(cfg), "vocabulary_size": data_vocab.size,
                              "covered": len(imported.words) - (UNK in imported.words),
                              "coverage": round((len(imported.words) - (UNK in imported.words))
                                                / max(data_vocab.size - 1, 1), 4)}
    info["seconds"] = {"until_write": round(time.perf_counter() - start, 3)}
    write_output(out, vocab, target, np.zeros_like(target), info, list(cfg.probes), cfg.neighbours)
    log.info("wrote %s (%d words) in %.1f s", out, vocab.size, time.perf_counter() - start)
    return out
