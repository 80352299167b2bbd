"""Checkpoints that survive a kill at any instant.

``last.pt`` is replaced atomically; before that, the previous one is kept as ``previous.pt``.
Loading tries ``last.pt`` and, if it is missing or unreadable (a truncated file, say), falls
back to ``previous.pt`` with a warning. Files are read with ``weights_only=True``: they hold
tensors, numbers, strings and plain containers only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from clf.atomic import atomic_torch_save, fsync_dir
from clf.names import BEST, LAST, PREVIOUS  # noqa: F401 (BEST: re-exported)

log = logging.getLogger(__name__)
FORMAT = 1


class CheckpointError(Exception):
    pass


def save_last(directory: Path, payload: dict[str, Any]) -> Path:
    """Write ``last.pt`` atomically, keeping the one it replaces as ``previous.pt``.

    The old ``last.pt`` is hard-linked as ``previous.pt`` (renamed where links are not supported),
    so that ``last.pt`` exists at every instant on file systems with links.
    """
    directory.mkdir(parents=True, exist_ok=True)
    last, previous = directory / LAST, directory / PREVIOUS
    if last.exists():
        link = previous.with_name(previous.name + ".link")
        link.unlink(missing_ok=True)
        try:
            os.link(last, link)
            os.replace(link, previous)
        except OSError:
            os.replace(last, previous)
        fsync_dir(directory)
    return atomic_torch_save(last, {"format": FORMAT, **payload})


def save_best(directory: Path, payload: dict[str, Any]) -> Path:
    return atomic_torch_save(directory / BEST, {"format": FORMAT, **payload})


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file's content; CheckpointError if it is missing, truncated or foreign."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a clf checkpoint")
    return obj


def load_latest(directory: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``directory`` (``last.pt``, else ``previous.pt``), or None."""
    last, previous = directory / LAST, directory / PREVIOUS
    if not last.exists() and not previous.exists():
        return None
    try:
        return read(last)
    except CheckpointError as exc:
        if not previous.exists():
            raise
        log.warning("%s; falling back to %s", exc, previous)
        return read(previous)
