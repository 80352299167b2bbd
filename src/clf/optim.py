"""AdamW with lazy embedding-row updates, gradient clipping and learning-rate schedules.

A dense AdamW step touches every row of a 55k x 50 embedding matrix, although a batch uses a
few thousand rows: at batch size 1 that update is nearly all of the homework loop's time.
``LazyAdamW`` applies AdamW to the rows a sparse gradient names and the ordinary AdamW step to
dense parameters. ``optim.embedding_update=dense`` uses ``torch.optim.AdamW``.

How a lazy row differs from dense AdamW. Weight decay is exact: a row outside a batch owes the
decay of the steps it missed, ``prod(1 - lr_s * wd)``, kept as a running sum of logarithms and
applied when the row is next used, and to every row by ``settle_weights`` (the training loop calls
it before each evaluation, so dev/test scores, ``best.pt`` and predictions see exact weights;
``last.pt``/``previous.pt`` hold the owed decay in the optimizer's state). The moments of a row
outside a batch are left as they are and its Adam update is skipped, as in
``torch.optim.SparseAdam`` (dense AdamW keeps moving such a row along its old momentum).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from clf.compat.torch import eager_optimizer_methods, fused_adamw_, mark_coalesced, uncoalesced_indices

# LazyAdamW's state for weight decay owed by rows outside the last batches
DECAY_LOG = "decay_log"        # sum over this parameter's steps of log(1 - lr*wd) (a float)
DECAY_LOG_AT = "decay_log_at"  # per row, DECAY_LOG when the row was last brought up to date (float64)


def coalesced(grad: torch.Tensor) -> torch.Tensor:
    """A sparse row gradient, coalesced; cheap when its row indices are already strictly increasing.

    Autograd drops the "coalesced" flag of the gradient the model builds (distinct sorted rows),
    and ``coalesce()`` would sort it again; checking the order is enough to restore the flag.
    """
    if grad.is_coalesced():
        return grad
    rows = uncoalesced_indices(grad)[0]
    if rows.numel() < 2 or bool((rows[1:] > rows[:-1]).all()):
        return mark_coalesced(grad)
    return grad.coalesce()


class LazyAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction); sparse gradients update their rows only
    (see the module's docstring for what that means exactly).

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
                    _settle(p, state)
                    state.pop(DECAY_LOG, None), state.pop(DECAY_LOG_AT, None)
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
        if DECAY_LOG not in state:
            state[DECAY_LOG] = 0.0
            state[DECAY_LOG_AT] = torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
        full = (p, state["exp_avg"], state["exp_avg_sq"])
        part = [t.index_select(0, rows) for t in full]
        owed = (state[DECAY_LOG] - state[DECAY_LOG_AT].index_select(0, rows)).exp_()
        part[0].mul_(owed.to(p.dtype).view(-1, *([1] * (p.dim() - 1))))
        _adamw(group, [part[0]], [grad.values()], [part[1]], [part[2]], [state["step"]])
        for whole, piece in zip(full, part):
            whole.index_copy_(0, rows, piece)
        state[DECAY_LOG] += math.log1p(-group["lr"] * group["weight_decay"])
        state[DECAY_LOG_AT].index_fill_(0, rows, state[DECAY_LOG])

    @torch.no_grad()
    def settle_weights(self) -> None:
        """Apply the weight decay every row owes (the weights then equal dense AdamW's decay)."""
        for group in self.param_groups:
            for p in group["params"]:
                _settle(p, self.state.get(p, {}))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As torch's, but the per-row decay state keeps its float64 (torch casts state to the
        parameter's dtype, which would lose the running sums' precision)."""
        kept = {i: s[DECAY_LOG_AT] for i, s in state_dict["state"].items() if DECAY_LOG_AT in s}
        super().load_state_dict(state_dict)
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for i, p in zip(saved_ids, params):
            if i in kept:
                self.state[p][DECAY_LOG_AT] = kept[i].to(device=p.device, dtype=torch.float64)


def _settle(p: torch.Tensor, state: dict) -> None:
    """Bring every row of ``p`` up to date with the weight decay it owes."""
    if DECAY_LOG not in state:
        return
    owed = (state[DECAY_LOG] - state[DECAY_LOG_AT]).exp_()
    p.mul_(owed.to(p.dtype).view(-1, *([1] * (p.dim() - 1))))
    state[DECAY_LOG_AT].fill_(state[DECAY_LOG])


def settle_weights(optimizer: torch.optim.Optimizer) -> None:
    """Weights as a reader should see them (LazyAdamW's owed decay applied; others: as they are)."""
    if isinstance(optimizer, LazyAdamW):
        optimizer.settle_weights()


def _adamw(group: dict, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
    """AdamW updates in place (lists of tensors): p -= lr*wd*p; moments m, v;
    p -= lr/(1-b1^t) * m/(sqrt(v/(1-b2^t))+eps)."""
    beta1, beta2 = group["betas"]
    fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                 weight_decay=group["weight_decay"], eps=group["eps"])


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    eager_optimizer_methods()  # no torch._dynamo import (1-3 s) for an optimizer nothing compiles
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
