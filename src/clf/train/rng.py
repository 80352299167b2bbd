"""Every random stream a run uses, saved in its checkpoints and restored on resume.

Of CUDA, only the run's own device's generator is stored: a checkpoint written while 4 GPUs
were visible must resume where 1 is (``torch.cuda.set_rng_state_all`` with 4 states fails
there), and a run uses one device per process anyway. Checkpoints of older versions hold every
visible device's state; the run's own device's entry is taken from them when there is one.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Python, numpy and torch CPU states, and ``device``'s CUDA state when it is a CUDA device
    (tensors and plain values: safe for ``weights_only``)."""
    np_name, np_key, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": np_name, "key": torch.from_numpy(np_key.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        state["cuda"] = {"device": index, "state": torch.cuda.get_rng_state(index)}
    return state


def _cuda_state(stored: Any, index: int) -> torch.Tensor | None:
    """This device's state from a checkpoint's ``cuda`` entry (this format, or a list of every
    visible device's state, as older checkpoints hold)."""
    if isinstance(stored, dict):
        return stored["state"]
    if isinstance(stored, (list, tuple)) and index < len(stored):
        return stored[index]
    return None


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore ``rng_state``'s streams; the CUDA one onto ``device`` (the run's own device)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" not in state or device is None or device.type != "cuda":
        return
    index = torch.cuda.current_device() if device.index is None else device.index
    cuda = _cuda_state(state["cuda"], index)
    if cuda is None:
        log.warning("the checkpoint holds no CUDA random state for device %d: its stream starts afresh", index)
        return
    torch.cuda.set_rng_state(cuda, index)
