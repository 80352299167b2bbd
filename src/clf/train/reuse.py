"""Loaded data kept for the next run of the same process (packing: ``clf.slurm.pack``).

The runs of a packed task often read the same data and vectors (a sweep over model and
optimizer settings); inside ``reusing_data()`` the last loaded one is kept and handed to the next
run whose ``data`` and ``embeddings`` configs are the same. Outside it (``clf train``, tests)
every run loads its own, so a file changed between two runs is always read again.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from omegaconf import DictConfig

from clf.config.compose import to_yaml

T = TypeVar("T")
_kept: dict[str, Any] | None = None     # None: not reusing; else {key: value} of the last load


@contextmanager
def reusing_data() -> Iterator[None]:
    global _kept
    _kept = {}
    try:
        yield
    finally:
        _kept = None


def data(cfg: DictConfig, load: Callable[[DictConfig], T]) -> T:
    """``load(cfg)``, or what it returned for the previous run with the same data and embeddings."""
    if _kept is None:
        return load(cfg)
    key = to_yaml(cfg.data) + to_yaml(cfg.embeddings)
    if key not in _kept:
        _kept.clear()  # one at a time: free the previous data before loading the next
        _kept[key] = load(cfg)
    return _kept[key]
