"""Schema of ``conf/w2v.yaml`` (the primary config of ``clf w2v``) and the checks types cannot express."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict

from clf.config.compose import compose
from clf.config.schema import DataConfig
from clf.config.validate import CHOICES
from clf.errors import ClfError

SCHEMA_NAME = "w2v_base_config"
CORPUS_SPLITS = ("train", "unlabeled")   # dev and test text never trains vectors
DEFAULT_PROBES = ["good", "bad", "terrible", "movie", "great", "boring", "actor", "funny"]


@dataclass
class W2VConfig:
    """Skip-gram with negative sampling on the text of ``data``'s ``splits``; output in ``out``."""

    data: DataConfig = field(default_factory=DataConfig)
    out: Optional[str] = None
    splits: list[str] = field(default_factory=lambda: list(CORPUS_SPLITS))
    vector_size: int = 50
    window: int = 5
    min_count: Optional[int] = None   # null: scaled to the corpus (clf.w2v.scale); IMDB: 5
    negative: int = 5
    sample: float = 1e-3
    epochs: Optional[int] = None      # null: scaled to the corpus (clf.w2v.scale); IMDB: 5
    workers: Optional[int] = None
    seed: int = 1
    deterministic: bool = False
    probes: list[str] = field(default_factory=lambda: list(DEFAULT_PROBES))
    neighbours: int = 10


POSITIVE = ("vector_size", "window", "min_count", "negative", "epochs", "workers", "neighbours")


def compose_w2v(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``conf/w2v.yaml`` with Hydra ``overrides``, checked; ClfError (one line) if invalid."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=W2VConfig)
    cfg = compose(overrides, config_name="w2v")
    check(cfg)
    return cfg


def _check_data(data: DictConfig, splits: list[str]) -> None:
    if data.source not in CHOICES["data.source"]:
        raise ClfError(f"data.source={data.source!r} is not one of {', '.join(CHOICES['data.source'])}")
    if data.source == "imdb" and (OmegaConf.is_missing(data, "dir") or not data.dir):
        raise ClfError("data=imdb needs data.dir=DIR (the layout of shared/data/imdb)")
    if data.source == "csv" and (OmegaConf.is_missing(data, "train") or not data.train):
        raise ClfError("data=csv needs data.train=PATH (and data.unlabeled=PATH for more text)")
    with open_dict(data):
        for split in ("train", "dev", "test", "unlabeled"):   # splits the corpus does not read are optional
            if OmegaConf.is_missing(data, split):
                data[split] = None
    if data.train_limit is not None and data.train_limit <= 0:
        raise ClfError(f"data.train_limit={data.train_limit} must be positive")


def check(cfg: DictConfig) -> None:
    """Raise ClfError naming the first offending key."""
    for key in POSITIVE:
        value = cfg[key]
        if value is not None and value <= 0:
            raise ClfError(f"{key}={value} must be positive")
    if cfg.sample < 0:
        raise ClfError(f"sample={cfg.sample} must not be negative")
    splits = list(cfg.splits)
    if not splits or len(set(splits)) != len(splits) or not set(splits) <= set(CORPUS_SPLITS):
        raise ClfError(f"splits={splits} must name distinct splits out of {', '.join(CORPUS_SPLITS)} "
                       "(dev and test text is never used for word vectors)")
    _check_data(cfg.data, splits)


def workers(cfg: DictConfig) -> int:
    """Worker threads: 1 when ``deterministic``, else ``workers``, else the CPUs this process may use."""
    if cfg.deterministic:
        return 1
    if cfg.workers:
        return int(cfg.workers)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
