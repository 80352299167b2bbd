"""Where a run computes: the device, the processes of a distributed run, autocast's dtype.

Everything about the device is decided here, before any data is read, so that a wrong
``device=`` or ``precision=`` fails in the first second.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from clf.device import select_device
from clf.errors import ClfError
from clf.train.distributed import Dist, init_distributed


def autocast_dtype(cfg: DictConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "bf16":
        if device.type != "cuda":
            raise ClfError("precision=bf16 needs a CUDA device")
        return torch.bfloat16
    return None


def setup_device(cfg: DictConfig) -> tuple[torch.device, Dist, torch.dtype | None]:
    """This process's device (its local GPU under data parallelism), its rank, autocast's dtype."""
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = select_device(cfg.device)  # the CUDA preflight (clf.device)
    ctx = init_distributed(device.type == "cuda")
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device, ctx, autocast_dtype(cfg, device)
