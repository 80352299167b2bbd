"""What a run leaves behind: metrics.json and Kaggle-style prediction files (all atomic)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from clf.atomic import atomic_write_bytes, atomic_write_json
from clf.names import METRICS



def write_predictions(path: Path, inst_ids: np.ndarray, probabilities: np.ndarray) -> None:
    """``inst_id,predicted_label`` (the homework's Kaggle format)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["inst_id", "predicted_label"])
    writer.writerows(zip(np.asarray(inst_ids).tolist(), (probabilities >= 0.5).astype(int).tolist()))
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    atomic_write_json(run_dir / METRICS, {**metrics, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def split_metrics(prefix: str, metrics: dict[str, float] | None) -> dict[str, float | None]:
    """``{"f1": .9}`` -> ``{"dev_f1": .9}``; None values when the split has no labels."""
    names = ("f1", "precision", "recall", "accuracy")
    return {f"{prefix}_{k}": (None if metrics is None else float(metrics[k])) for k in names}
