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


class LazyAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction); sparse gradients update their rows only."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = float(state["step"])
                bias1 = 1 - beta1 ** step
                bias2_sqrt = math.sqrt(1 - beta2 ** step)
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                    self._update(p, rows, values, state, lr, beta1, beta2, eps, wd, bias1, bias2_sqrt)
                else:
                    self._update(p, None, p.grad, state, lr, beta1, beta2, eps, wd, bias1, bias2_sqrt)
        return None

    @staticmethod
    def _update(p, rows, grad, state, lr, beta1, beta2, eps, wd, bias1, bias2_sqrt) -> None:
        if rows is None:
            param, exp_avg, exp_avg_sq = p, state["exp_avg"], state["exp_avg_sq"]
        else:
            param, exp_avg, exp_avg_sq = (t.index_select(0, rows) for t in (p, state["exp_avg"], state["exp_avg_sq"]))
        param.mul_(1 - lr * wd)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / bias1)
        if rows is not None:
            p.index_copy_(0, rows, param)
            state["exp_avg"].index_copy_(0, rows, exp_avg)
            state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)


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
            p.grad = p.grad.coalesce()
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
