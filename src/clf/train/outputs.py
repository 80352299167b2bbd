"""What a run leaves behind: metrics.json and Kaggle-style prediction files (all atomic)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clf.atomic import atomic_write_bytes, atomic_write_json
from clf.names import METRICS

PROBABILITIES_SUFFIX = ".proba.csv"   # predictions/dev.csv -> predictions/dev.proba.csv


def probabilities_path(predictions: Path) -> Path:
    """Where the probabilities behind a Kaggle file are kept (seed ensembles average them)."""
    return predictions.with_name(predictions.name.removesuffix(".csv") + PROBABILITIES_SUFFIX)


def _write_frame(path: Path, frame: pd.DataFrame, float_format: str | None = None) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=float_format)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_predictions(path: Path, inst_ids: np.ndarray, probabilities: np.ndarray) -> None:
    """``inst_id,predicted_label`` (the homework's Kaggle format), and ``inst_id,probability`` beside it."""
    ids, probabilities = np.asarray(inst_ids), np.asarray(probabilities, dtype=np.float64)
    _write_frame(probabilities_path(path), pd.DataFrame({"inst_id": ids, "probability": probabilities}), "%.7g")
    _write_frame(path, pd.DataFrame({"inst_id": ids, "predicted_label": (probabilities >= 0.5).astype(int)}))


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    atomic_write_json(run_dir / METRICS, {**metrics, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def split_metrics(prefix: str, metrics: dict[str, float] | None) -> dict[str, float | None]:
    """``{"f1": .9}`` -> ``{"dev_f1": .9}``; None values when the split has no labels."""
    names = ("f1", "precision", "recall", "accuracy")
    return {f"{prefix}_{k}": (None if metrics is None else float(metrics[k])) for k in names}
