"""Where a run computes: the device, the processes of a distributed run, autocast's dtype.

Everything about the device is decided here, before any data is read, so that a wrong
``device=`` or ``precision=`` fails in the first second.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from clf.errors import ClfError
from clf.train.distributed import Dist, init_distributed


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClfError(f"device={name} but no CUDA device is available (use device=cpu or device=auto)")
    return torch.device(name)


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
    device = pick_device(cfg.device)
    ctx = init_distributed(device.type == "cuda")
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device, ctx, autocast_dtype(cfg, device)
