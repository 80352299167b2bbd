"""Data-parallel training across processes (one per GPU, or CPU processes with gloo).

The process group comes from torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, ...) or,
inside a Slurm/submitit job with several tasks, from submitit's
``TorchDistributedEnvironment``. Every global batch is split across ranks (disjoint and
deterministic); each rank's loss is divided by the global batch size and gradients are
summed, so the update equals a one-process run on the whole batch. The embedding gradient
is sparse: ranks agree on the union of touched rows and sum just those rows. With one
process every function here is a no-op.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from clf.optim import coalesced

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# rank 0's rendezvous port: below Linux's default ephemeral range (32768-60999), which submitit's
# own choice (20000-60000) mostly falls in, so that no outgoing connection on the first node (any
# process's, on a shared node) can hold it: seen as EADDRINUSE, with the other ranks left waiting
MASTER_PORTS = (20000, 32767)


def master_port(job_id: str) -> int:
    """The same port on every rank of a job (each derives it from the job's id), another per job."""
    return random.Random(f"clf-master-port-{job_id}").randint(*MASTER_PORTS)


def _export_job_environment() -> None:
    """Inside a Slurm/submitit job with several tasks, set the env:// variables (MASTER_PORT, if
    not set already, from ``master_port``)."""
    if "WORLD_SIZE" in os.environ or int(os.environ.get("SLURM_NTASKS", os.environ.get("SUBMITIT_LOCAL_NTASKS", "1"))) <= 1:
        return
    try:
        from submitit import JobEnvironment
        from submitit.helpers import TorchDistributedEnvironment

        os.environ.setdefault("MASTER_PORT", str(master_port(JobEnvironment().job_id)))
        # overwrite: MASTER_PORT is set above (submitit refuses to replace a variable otherwise)
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    except RuntimeError as exc:  # not inside a job submitit recognises
        log.warning("several tasks but no job environment to initialise torch.distributed from: %s", exc)


def init_distributed(use_cuda: bool) -> Dist:
    """Join (or create) the process group; a single process gets ``Dist()``."""
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    _export_job_environment()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://")
    info = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    log.info("torch.distributed: rank %d of %d (%s)", info.rank, info.world, dist.get_backend())
    return info


def shard(docs: np.ndarray, ctx: Dist) -> np.ndarray:
    """This rank's documents of a global batch (every world-th one, starting at its rank)."""
    return docs[ctx.rank::ctx.world] if ctx.enabled else docs


def sum_gradients(params: list[torch.Tensor], ctx: Dist) -> None:
    """Sum every parameter's gradient over ranks (sparse ones over the union of their rows)."""
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is not None and p.grad.is_sparse:
            p.grad = _sum_sparse(coalesced(p.grad))
        else:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)


def _sum_sparse(grad: torch.Tensor) -> torch.Tensor:
    rows, values = grad.indices()[0], grad.values()
    touched = torch.zeros(grad.shape[0], dtype=torch.uint8, device=values.device)
    touched[rows] = 1
    dist.all_reduce(touched, op=dist.ReduceOp.MAX)
    union = touched.nonzero().squeeze(1)
    position = torch.zeros(grad.shape[0], dtype=torch.long, device=values.device)
    position[union] = torch.arange(len(union), device=values.device)
    summed = torch.zeros(len(union), *values.shape[1:], dtype=values.dtype, device=values.device)
    summed.index_add_(0, position[rows], values)
    dist.all_reduce(summed)
    return torch.sparse_coo_tensor(union.unsqueeze(0), summed, grad.shape, is_coalesced=True, check_invariants=False)


def any_rank(flags: list[bool], ctx: Dist, device: torch.device) -> list[bool]:
    """Element-wise OR of boolean flags over ranks (all ranks must take the same decision)."""
    if not ctx.enabled:
        return flags
    tensor = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def sum_over_ranks(value: torch.Tensor, ctx: Dist) -> torch.Tensor:
    if ctx.enabled:
        value = value.clone()
        dist.all_reduce(value)
    return value


def gather_objects(obj: Any, ctx: Dist) -> list[Any]:
    """Every rank's ``obj`` (in rank order) on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Dist) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: Dist) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
