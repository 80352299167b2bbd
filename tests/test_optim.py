"""LazyAdamW, gradient clipping and learning-rate schedules."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pytest
import torch

from clf.optim import LazyAdamW, build_optimizer, build_scheduler, clip_gradients

HYPER = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)


def assert_matches_adamw(shape: tuple[int, int], lazy_grad, steps: int, seed: int) -> None:
    """LazyAdamW fed ``lazy_grad(grad)`` tracks torch's AdamW fed ``grad`` at every step."""
    torch.manual_seed(seed)
    start = torch.randn(*shape)
    lazy_p, ref_p = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    lazy, ref = LazyAdamW([lazy_p], **HYPER), torch.optim.AdamW([ref_p], **HYPER)
    for step in range(steps):
        grad = torch.randn(*shape) * (step + 1)
        lazy_p.grad, ref_p.grad = lazy_grad(grad), grad.clone()
        lazy.step()
        ref.step()
        torch.testing.assert_close(lazy_p.detach(), ref_p.detach(), atol=1e-5, rtol=1e-6)
    assert not torch.equal(lazy_p.detach(), start)


def sparse_grad(dense: torch.Tensor, rows: list[int]) -> torch.Tensor:
    index = torch.tensor(sorted(rows))
    return torch.sparse_coo_tensor(index.unsqueeze(0), dense[index], dense.shape, check_invariants=True).coalesce()


def test_dense_parameters_match_torch_adamw():
    assert_matches_adamw((7, 5), torch.clone, steps=12, seed=0)


def test_sparse_with_every_row_present_matches_adamw():
    assert_matches_adamw((6, 3), lambda grad: sparse_grad(grad, list(range(6))), steps=10, seed=2)


def test_element_sparse_gradient_matches_adamw():
    """A gradient sparse in both dims (``dense.to_sparse()``) is applied row-wise, not misread."""
    assert_matches_adamw((30, 4), lambda grad: grad.to_sparse(), steps=5, seed=0)


def test_sparse_gradient_updates_exactly_its_rows():
    torch.manual_seed(1)
    start = torch.randn(10, 4)
    p = torch.nn.Parameter(start.clone())
    optimizer = LazyAdamW([p], **HYPER)
    touched: set[int] = set()
    for rows in ([1, 3], [3, 7, 8], [0]):
        before = p.detach().clone()
        p.grad = sparse_grad(torch.randn(10, 4), rows)
        optimizer.step()
        changed = (p.detach() != before).any(dim=1).nonzero().flatten().tolist()
        assert changed == sorted(rows)
        touched |= set(rows)
    untouched = sorted(set(range(10)) - touched)
    assert torch.equal(p.detach()[untouched], start[untouched])  # their weight decay waits for their next use
    state = optimizer.state[p]
    assert (state["exp_avg"][untouched] == 0).all() and (state["exp_avg_sq"][untouched] == 0).all()


def test_sparse_rows_follow_adamw_formula_with_their_own_step_count():
    """A row present at some steps only gets AdamW's update for those gradients (bias correction
    uses the global step, as in torch.optim.SparseAdam); the weight decay of the steps it missed
    is applied when it is next used."""
    torch.manual_seed(3)
    start = torch.randn(4, 2)
    p = torch.nn.Parameter(start.clone())
    optimizer = LazyAdamW([p], **HYPER)
    lr, (b1, b2), eps, wd = HYPER["lr"], HYPER["betas"], HYPER["eps"], HYPER["weight_decay"]
    m = torch.zeros(2)
    v = torch.zeros(2)
    row = start[2].clone()
    owed = 1.0
    for step, rows in enumerate(([0, 2], [1], [2, 3], [2]), start=1):
        grad = torch.randn(4, 2)
        p.grad = sparse_grad(grad, rows)
        optimizer.step()
        owed *= 1 - lr * wd  # AdamW decays every row at every step
        if 2 in rows:
            g = grad[2]
            row, owed = row * owed, 1.0
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            row = row - lr * (m / (1 - b1 ** step)) / ((v / (1 - b2 ** step)).sqrt() + eps)
        torch.testing.assert_close(p.detach()[2], row, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("settle_every", [None, 3])
def test_weight_decay_of_rows_outside_batches_matches_torch_adamw(settle_every):
    """With betas (0, 0) dense AdamW moves a row without a gradient by its weight decay only, so
    LazyAdamW, once its owed decay is settled, must equal it, under a changing learning rate too;
    settling in between changes nothing."""
    torch.manual_seed(5)
    hyper = dict(HYPER, betas=(0.0, 0.0), weight_decay=0.5)
    start = torch.randn(40, 3)
    lazy_p, ref_p = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    lazy, ref = LazyAdamW([lazy_p], **hyper), torch.optim.AdamW([ref_p], **hyper)
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, lambda step: 1.0 / (1 + step)) for o in (lazy, ref)]
    for step in range(1, 31):
        grad = torch.randn(40, 3)
        rows = torch.randperm(40)[:5].tolist()
        lazy_p.grad, ref_p.grad = sparse_grad(grad, rows), sparse_grad(grad, rows).to_dense()
        for optimizer, schedule in zip((lazy, ref), schedules):
            optimizer.step()
            schedule.step()
        torch.testing.assert_close(lazy_p.detach()[rows], ref_p.detach()[rows], atol=1e-6, rtol=1e-5)
        if settle_every and step % settle_every == 0:
            lazy.settle_weights()
            torch.testing.assert_close(lazy_p.detach(), ref_p.detach(), atol=1e-6, rtol=1e-5)
    lazy.settle_weights()
    torch.testing.assert_close(lazy_p.detach(), ref_p.detach(), atol=1e-6, rtol=1e-5)
    assert not torch.isclose(lazy_p.detach(), start).any()  # every row decayed, those never in a batch too


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(4)
    grads = [torch.randn(5, 3) for _ in range(6)]
    p1 = torch.nn.Parameter(torch.randn(5, 3))
    p2 = torch.nn.Parameter(p1.detach().clone())
    o1 = LazyAdamW([p1], **HYPER)
    for g in grads[:3]:
        p1.grad = sparse_grad(g, [0, 2, 4])
        o1.step()
    o2 = LazyAdamW([p2], **HYPER)
    with torch.no_grad():
        p2.copy_(p1)
    buffer = io.BytesIO()  # through bytes, as a checkpoint does (load_state_dict would share tensors)
    torch.save(o1.state_dict(), buffer)
    buffer.seek(0)
    o2.load_state_dict(torch.load(buffer, weights_only=True))
    for g in grads[3:]:
        for p, o in ((p1, o1), (p2, o2)):
            p.grad = sparse_grad(g, [1, 2])
            o.step()
    assert torch.equal(p1.detach(), p2.detach())


def test_build_optimizer_kinds():
    model = torch.nn.Linear(3, 1)
    cfg = SimpleNamespace(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, embedding_update="lazy")
    assert isinstance(build_optimizer(model, cfg), LazyAdamW)
    cfg.embedding_update = "dense"
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)


def test_clip_gradients_counts_sparse_rows():
    torch.manual_seed(5)
    a = torch.nn.Parameter(torch.zeros(6, 2))
    b = torch.nn.Parameter(torch.zeros(3))
    dense_a = torch.zeros(6, 2)
    dense_a[[1, 4]] = torch.randn(2, 2) * 10
    a.grad = sparse_grad(dense_a, [1, 4])
    b.grad = torch.randn(3) * 10
    want_norm = torch.cat([dense_a.flatten(), b.grad]).norm()
    norm = clip_gradients([a, b], max_norm=1.0)
    torch.testing.assert_close(norm, want_norm)
    clipped = torch.cat([a.grad.to_dense().flatten(), b.grad]).norm()
    torch.testing.assert_close(clipped, torch.tensor(1.0), atol=1e-5, rtol=0)
    # below the limit nothing changes; max_norm=None only measures
    before = b.grad.clone()
    clip_gradients([b], max_norm=1e6)
    assert torch.equal(b.grad, before)
    clip_gradients([b], max_norm=None)
    assert torch.equal(b.grad, before)


def schedule_cfg(schedule: str, warmup: int = 0, **kwargs) -> SimpleNamespace:
    return SimpleNamespace(schedule=schedule, warmup_steps=warmup, plateau_factor=kwargs.get("factor", 0.5),
                           plateau_patience=kwargs.get("patience", 2))


def lrs(schedule: str, warmup: int, total: int, steps: int, base: float = 0.1) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = build_scheduler(optimizer, schedule_cfg(schedule, warmup), total)
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])  # the lr optimizer step k uses
        optimizer.step()
        scheduler.step()
    return values


def test_linear_warmup_and_decay():
    got = lrs("linear", warmup=4, total=20, steps=21)
    want = [0.1 * (k + 1) / 4 for k in range(4)] + [0.1 * (1 - (k - 4) / 16) for k in range(4, 21)]
    assert got == pytest.approx(want)
    assert got[3] == pytest.approx(0.1) and got[12] == pytest.approx(0.05) and got[20] == pytest.approx(0.0)


def test_cosine_warmup_and_decay():
    got = lrs("cosine", warmup=2, total=12, steps=13)
    assert got[:2] == pytest.approx([0.05, 0.1])
    for k in range(2, 13):
        assert got[k] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * (k - 2) / 10))), k
    assert got[7] == pytest.approx(0.05) and got[12] == pytest.approx(0.0, abs=1e-12)


def test_none_schedule_is_constant_after_warmup():
    assert lrs("none", warmup=0, total=10, steps=5) == pytest.approx([0.1] * 5)
    assert lrs("none", warmup=2, total=10, steps=5) == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1])


def test_plateau_reduces_after_patience_evaluations_without_improvement():
    """torch's ReduceLROnPlateau semantics: with patience P, P evaluations without a better dev
    F1 are tolerated and the next one (P+1 in a row) multiplies the lr by the factor."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build_scheduler(optimizer, schedule_cfg("plateau", patience=2, factor=0.5), 100)
    lr = lambda: optimizer.param_groups[0]["lr"]  # noqa: E731
    for f1 in (0.5, 0.6, 0.7):  # improving
        scheduler.step(f1)
        assert lr() == pytest.approx(0.1)
    scheduler.step(0.7)
    scheduler.step(0.65)
    assert lr() == pytest.approx(0.1)  # 2 evaluations without improvement: still tolerated
    scheduler.step(0.69)
    assert lr() == pytest.approx(0.05)  # the 3rd: reduced
    scheduler.step(0.8)  # improvement resets the count
    scheduler.step(0.8)
    scheduler.step(0.8)
    assert lr() == pytest.approx(0.05)
    scheduler.step(0.8)
    assert lr() == pytest.approx(0.025)
    assert scheduler.state_dict()["mode"] == "max"
