"""torch's private names clf's optimizer uses (tested with torch 2.13.0; pyproject pins <2.14).

* ``torch._fused_adamw_``: the fused AdamW kernel ``torch.optim.AdamW(fused=True)`` runs, called
  on the gathered rows of a sparse gradient (the public optimizer only takes whole parameters).
* ``Tensor._coalesced_``: sets a sparse tensor's "coalesced" flag without sorting it again.
* ``Tensor._indices``: the indices of a sparse tensor not (yet) flagged coalesced.
* ``torch._compile._disable_dynamo``'s per-function cache (``fn.__dynamo_disable``): see
  ``eager_optimizer_methods``.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import torch
import torch._compile

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


_DYNAMO_CACHE = "__dynamo_disable"   # where torch._compile._disable_dynamo caches a function's wrapper


def _disabled_functions(cls: type) -> list[tuple[Callable[..., Any], bool]]:
    """(undecorated function, recursive) of each method of ``cls`` decorated ``@torch._disable_dynamo``."""
    marker = torch._compile._disable_dynamo(lambda: None).__code__
    found = []
    for attr in vars(cls).values():
        if getattr(attr, "__code__", None) is marker:
            cells = dict(zip(attr.__code__.co_freevars, (c.cell_contents for c in attr.__closure__)))
            found.append((cells["fn"], cells["recursive"]))
    return found


def _eager_until_dynamo(fn: Callable[..., Any], recursive: bool) -> Callable[..., Any]:
    """``fn`` itself while torch._dynamo is not imported (nothing can be compiling then, so
    ``torch._dynamo.disable(fn)`` would just call it); torch's own wrapper once it is."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if "torch._dynamo" not in sys.modules:
            return fn(*args, **kwargs)
        import torch._dynamo

        disabled = torch._dynamo.disable(fn, recursive, wrapping=False)
        setattr(fn, _DYNAMO_CACHE, disabled)  # from now on torch's path, as without this adapter
        return disabled(*args, **kwargs)
    return run


def eager_optimizer_methods() -> int:
    """Let ``torch.optim.Optimizer``'s methods run without importing ``torch._dynamo``; the number
    of methods this covers (0: torch changed the mechanism; tests/test_compat.py says so).

    ``Optimizer.__init__``, ``add_param_group``, ``zero_grad``, ``state_dict`` and
    ``load_state_dict`` are decorated ``@torch._disable_dynamo``, whose first call imports
    torch._dynamo (sympy and all: as long as importing torch itself, 1-3 s) only to mark them as
    not to be compiled. clf never compiles; filling the decorator's cache with
    ``_eager_until_dynamo`` skips that import, and hands over to torch's wrapper the moment
    anything else imports torch._dynamo. Idempotent.
    """
    found = _disabled_functions(torch.optim.Optimizer)
    for fn, recursive in found:
        if getattr(fn, _DYNAMO_CACHE, None) is None:
            setattr(fn, _DYNAMO_CACHE, _eager_until_dynamo(fn, recursive))
    return len(found)
