"""What a run leaves behind: metrics.json and Kaggle-style prediction files (all atomic)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from clf.atomic import atomic_write_bytes, atomic_write_json
from clf.names import METRICS

PROBABILITIES_SUFFIX = ".proba.csv"   # predictions/dev.csv -> predictions/dev.proba.csv


def probabilities_path(predictions: Path) -> Path:
    """Where the probabilities behind a Kaggle file are kept (seed ensembles average them)."""
    return predictions.with_name(predictions.name.removesuffix(".csv") + PROBABILITIES_SUFFIX)


def _write_rows(path: Path, header: list[str], rows: Iterable[tuple[Any, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_predictions(path: Path, inst_ids: np.ndarray, probabilities: np.ndarray) -> None:
    """``inst_id,predicted_label`` (the homework's Kaggle format), and ``inst_id,probability`` beside it
    (written with ``csv``: pandas costs a run more to import than the files take to write)."""
    ids, probabilities = np.asarray(inst_ids).tolist(), np.asarray(probabilities, dtype=np.float64)
    _write_rows(probabilities_path(path), ["inst_id", "probability"],
                zip(ids, (f"{p:.7g}" for p in probabilities.tolist())))
    _write_rows(path, ["inst_id", "predicted_label"], zip(ids, (probabilities >= 0.5).astype(int).tolist()))


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    atomic_write_json(run_dir / METRICS, {**metrics, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def split_metrics(prefix: str, metrics: dict[str, float] | None) -> dict[str, float | None]:
    """``{"f1": .9}`` -> ``{"dev_f1": .9}``; None values when the split has no labels."""
    names = ("f1", "precision", "recall", "accuracy")
    return {f"{prefix}_{k}": (None if metrics is None else float(metrics[k])) for k in names}
