"""torch's private names clf's optimizer uses (tested with torch 2.13.0; pyproject pins <2.14).

* ``torch._fused_adamw_``: the fused AdamW kernel ``torch.optim.AdamW(fused=True)`` runs, called
  on the gathered rows of a sparse gradient (the public optimizer only takes whole parameters).
* ``Tensor._coalesced_``: sets a sparse tensor's "coalesced" flag without sorting it again.
* ``Tensor._indices``: the indices of a sparse tensor not (yet) flagged coalesced.
"""

from __future__ import annotations

import torch

TESTED = ">=2.4,<2.14"


def fused_adamw_(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                 exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], *, lr: float, beta1: float,
                 beta2: float, weight_decay: float, eps: float) -> None:
    """AdamW in place: p -= lr*wd*p; moments m, v; p -= lr/(1-b1^t) * m/(sqrt(v/(1-b2^t))+eps)."""
    torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=beta1, beta2=beta2,
                        weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)


def uncoalesced_indices(grad: torch.Tensor) -> torch.Tensor:
    """The [sparse_dim, nnz] indices of a sparse tensor, whether or not it is flagged coalesced."""
    return grad._indices()


def mark_coalesced(grad: torch.Tensor) -> torch.Tensor:
    """``grad`` flagged as coalesced; the caller has checked that its indices are sorted and distinct."""
    return grad._coalesced_(True)
