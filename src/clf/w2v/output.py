"""The output directory: the homework's three files, ``w2v.json`` and ``neighbours.txt``,
all replaced together (``atomic_directory``), so a killed job leaves the old directory or the
new one and never a mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clf.atomic import atomic_directory, atomic_write_json, atomic_write_text
from clf.data.vocab import INDEX_TO_WORD, WORD_TO_INDEX, Vocab
from clf.embeddings import WORD2VEC, save_word2vec
from clf.errors import ClfError
from clf.w2v.report import format_neighbours, nearest

INFO = "w2v.json"
NEIGHBOURS = "neighbours.txt"
FILES = (WORD_TO_INDEX, INDEX_TO_WORD, WORD2VEC, INFO, NEIGHBOURS)


def check_out(out: Path) -> None:
    """``out`` may be replaced only if it is missing, empty, or an earlier output of ours."""
    if out.exists() and not out.is_dir():
        raise ClfError("out= is a file, not a directory", out)
    if out.is_dir() and any(out.iterdir()) and not (out / INFO).is_file():
        raise ClfError(f"out= exists and is not a clf w2v output (no {INFO}); choose another out= or empty it", out)


def read_info(out: Path) -> dict[str, Any] | None:
    """``w2v.json`` of a complete earlier output, else None."""
    try:
        info = json.loads((out / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and all((out / name).is_file() for name in FILES) else None


def write_output(out: Path, vocab: Vocab, target: np.ndarray, context: np.ndarray, info: dict[str, Any],
                 probes: list[str], k: int) -> dict[str, Any]:
    """Write everything into ``out`` at once; returns ``info`` with the neighbours added."""
    neighbours = nearest(vocab, target, list(probes), k)
    info = dict(info, neighbours=neighbours)
    with atomic_directory(out) as tmp:
        save_word2vec(tmp, vocab, torch.from_numpy(target), torch.from_numpy(context))
        atomic_write_text(tmp / NEIGHBOURS, format_neighbours(neighbours))
        atomic_write_json(tmp / INFO, info)
    return info
