"""Seed ensembles: the average of the predicted probabilities of a group's runs, scored and written.

A Kaggle user's best submission is often such an average. Each run keeps its probabilities in
``predictions/<split>.proba.csv`` (``inst_id,probability``); the gold labels are read again from
the data the runs name in ``config.yaml``, so the ensemble is scored exactly as a run is.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from clf.errors import ClfError
from clf.metrics import binary_metrics
from clf.results.runs import CONFIG
from clf.train.outputs import probabilities_path, write_predictions

log = logging.getLogger(__name__)
SPLITS = ("dev", "test")
ENSEMBLE_COLUMNS = {split: f"ensemble_{split}_f1" for split in SPLITS}


@dataclass
class SplitEnsemble:
    """One split of one group: the runs averaged, their mean probability per document, and its F1."""

    runs: int
    inst_ids: np.ndarray
    probabilities: np.ndarray
    f1: float | None


@dataclass
class GroupEnsemble:
    label: str
    splits: dict[str, SplitEnsemble] = field(default_factory=dict)


def read_probabilities(run_dir: Path, split: str) -> pd.DataFrame | None:
    """A run's ``inst_id,probability`` for ``split``; None (logged) when it has none or it is unreadable."""
    path = probabilities_path(Path(run_dir) / "predictions" / f"{split}.csv")
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        log.warning("skipping %s: %s", path, exc)
        return None
    if list(frame.columns) != ["inst_id", "probability"] or frame["probability"].isna().any():
        log.warning("skipping %s: not an inst_id,probability file", path)
        return None
    return frame


def gold_labels(run_dir: Path, split: str) -> pd.Series | None:
    """``inst_id -> label`` of ``split`` in the data the run was trained on; None if unknown."""
    from omegaconf import OmegaConf

    from clf.data.sources import split_sources

    try:
        data_cfg = OmegaConf.load(Path(run_dir) / CONFIG).data
        source = split_sources(data_cfg).get(split)
        records = source.read() if source is not None else None
    except (ClfError, OSError, ValueError, AttributeError) as exc:
        log.warning("no %s labels for the ensemble of %s: %s", split, run_dir, exc)
        return None
    if records is None or records.labels is None:
        return None
    return pd.Series(np.asarray(records.labels), index=np.asarray(records.inst_ids))


def average(frames: Sequence[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Document ids and mean probability; ClfError when the runs predicted different documents."""
    ids = frames[0]["inst_id"].to_numpy()
    for frame in frames[1:]:
        if len(frame) != len(ids) or not np.array_equal(frame["inst_id"].to_numpy(), ids):
            raise ClfError("the runs of a group predicted different documents (different data?)")
    return ids, np.mean([f["probability"].to_numpy(dtype=np.float64) for f in frames], axis=0)


def split_ensemble(members: Sequence[str], split: str) -> SplitEnsemble | None:
    """The ensemble of ``members`` on ``split``; None when no member kept probabilities for it."""
    frames = [f for f in (read_probabilities(Path(m), split) for m in members) if f is not None]
    if not frames:
        return None
    if len(frames) < len(members):
        log.warning("%s ensemble: only %d of %d runs kept probabilities", split, len(frames), len(members))
    ids, probabilities = average(frames)
    labels = gold_labels(Path(members[0]), split)
    f1 = None
    if labels is not None:
        if not pd.Index(ids).isin(labels.index).all():
            raise ClfError(f"the {split} predictions name documents the {split} data does not hold", members[0])
        f1 = binary_metrics(labels.loc[ids].to_numpy(), probabilities >= 0.5)["f1"]
    return SplitEnsemble(len(frames), ids, probabilities, f1)


def group_dir_name(label: str) -> str:
    """A group label (``model.num_heads=4, optim.lr=0.001``) as one safe directory name."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", label.replace(", ", ",")).strip("-.") or "group"


def ensembles(groups: pd.DataFrame, labels: Sequence[str]) -> list[GroupEnsemble]:
    """One ensemble per group (``labels`` name the groups, in order)."""
    out = []
    for label, (_, group) in zip(labels, groups.iterrows()):
        result = GroupEnsemble(label)
        for split in SPLITS:
            try:
                found = split_ensemble(group["members"], split)
            except ClfError as exc:
                log.warning("no %s ensemble for %s: %s", split, label, exc)
                found = None
            if found is not None:
                result.splits[split] = found
        out.append(result)
    return out


def with_f1_columns(groups: pd.DataFrame, found: Sequence[GroupEnsemble]) -> pd.DataFrame:
    """``groups`` with ``ensemble_dev_f1`` and ``ensemble_test_f1`` (NaN where unknown)."""
    groups = groups.copy()
    for split, column in ENSEMBLE_COLUMNS.items():
        values = [e.splits[split].f1 if split in e.splits else None for e in found]
        groups[column] = pd.Series([np.nan if v is None else v for v in values], index=groups.index, dtype=float)
    return groups


def write_ensembles(found: Sequence[GroupEnsemble], directory: Path) -> list[Path]:
    """``directory/<group>/<split>.csv`` (Kaggle: ``inst_id,predicted_label``) and ``<split>.proba.csv``."""
    written = []
    for ensemble in found:
        for split, result in ensemble.splits.items():
            path = directory / group_dir_name(ensemble.label) / f"{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_predictions(path, result.inst_ids, result.probabilities)
            written.append(path)
    return written
