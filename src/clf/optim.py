"""AdamW with lazy embedding-row updates, gradient clipping and learning-rate schedules.

A dense AdamW step touches every row of a 55k x 50 embedding matrix, although a batch uses a
few thousand rows: at batch size 1 that update is nearly all of the homework loop's time.
``LazyAdamW`` applies the exact AdamW formula to the rows a sparse gradient names (the moments
of the other rows are left as they are, as in ``torch.optim.SparseAdam``) and the ordinary
AdamW step to dense parameters. ``optim.embedding_update=dense`` uses ``torch.optim.AdamW``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def coalesced(grad: torch.Tensor) -> torch.Tensor:
    """A sparse row gradient, coalesced; cheap when its row indices are already strictly increasing.

    Autograd drops the "coalesced" flag of the gradient the model builds (distinct sorted rows),
    and ``coalesce()`` would sort it again; checking the order is enough to restore the flag.
    """
    if grad.is_coalesced():
        return grad
    rows = grad._indices()[0]
    if rows.numel() < 2 or bool((rows[1:] > rows[:-1]).all()):
        return grad._coalesced_(True)
    return grad.coalesce()


class LazyAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction); sparse gradients update their rows only.

    The arithmetic is torch's fused AdamW kernel (the one ``AdamW(fused=True)`` runs), applied
    to the gathered rows of a sparse gradient and then scattered back.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            dense: list[list[torch.Tensor]] = [[], [], [], [], []]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                if p.grad.is_sparse:
                    self._sparse_step(group, p, state)
                else:
                    for bucket, t in zip(dense, (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])):
                        bucket.append(t)
            if dense[0]:
                _adamw(group, *dense)
        return None

    @staticmethod
    def _sparse_step(group: dict, p: torch.Tensor, state: dict) -> None:
        grad = p.grad
        if grad.sparse_dim() != 1:  # e.g. dense.to_sparse(): one value per element, not per row
            grad = grad.to_dense().to_sparse(1)
        grad = coalesced(grad)
        rows = grad.indices()[0]
        full = (p, state["exp_avg"], state["exp_avg_sq"])
        part = [t.index_select(0, rows) for t in full]
        _adamw(group, [part[0]], [grad.values()], [part[1]], [part[2]], [state["step"]])
        for whole, piece in zip(full, part):
            whole.index_copy_(0, rows, piece)


def _adamw(group: dict, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
    """AdamW updates in place (lists of tensors): p -= lr*wd*p; moments m, v;
    p -= lr/(1-b1^t) * m/(sqrt(v/(1-b2^t))+eps)."""
    beta1, beta2 = group["betas"]
    torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=group["lr"], beta1=beta1,
                        beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False,
                        maximize=False)


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.embedding_update == "dense":
        return torch.optim.AdamW(params, **kwargs)
    return LazyAdamW(params, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, total_steps: int):
    """A per-step LambdaLR (none, linear, cosine) or ReduceLROnPlateau (stepped per evaluation)."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    warmup, total = cfg.warmup_steps, max(total_steps, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "none":
            return 1.0
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        if cfg.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(params: list[torch.Tensor], max_norm: float | None) -> torch.Tensor:
    """Global L2 norm of all gradients (sparse ones included), scaled down to ``max_norm``."""
    squares = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = coalesced(p.grad)
            squares.append(p.grad.values().pow(2).sum())
        else:
            squares.append(p.grad.pow(2).sum())
    if not squares:
        return torch.zeros(())
    norm = torch.stack(squares).sum().sqrt()
    if max_norm is not None:
        scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
        for p in params:
            if p.grad is not None:
                if p.grad.is_sparse:
                    p.grad.values().mul_(scale)
                else:
                    p.grad.mul_(scale)
    return norm
