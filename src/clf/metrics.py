"""Binary classification metrics (positive class 1), as sklearn's defaults compute them."""

from __future__ import annotations

import numpy as np


def binary_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """f1, precision, recall, accuracy; 0.0 where a denominator is zero."""
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    tp = int(np.sum(labels & predicted))
    fp = int(np.sum(~labels & predicted))
    fn = int(np.sum(labels & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    accuracy = float(np.mean(labels == predicted)) if len(labels) else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy}
