"""CUDA: the same numbers as on the CPU, and training runs (fp32 and bf16 autocast).

Skipped where no GPU is present (CI has none); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import run_clf, train_args

from clf.model import DocumentAttentionClassifier
from clf.optim import LazyAdamW

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _batch(vocab: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([7, 1, 12, 0, 5])
    width = int(lengths.max())
    mask = torch.arange(width)[None, :] < lengths[:, None]
    ids = torch.where(mask, torch.randint(0, vocab, (len(lengths), width), generator=generator), vocab)
    return ids, mask


@pytest.mark.parametrize("hidden_layers,positional", [(0, False), (0, True), (1, False)])
def test_forward_matches_cpu(hidden_layers: int, positional: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = DocumentAttentionClassifier(50, 16, 3, hidden_layers=hidden_layers, positional=positional).eval()
    ids, mask = _batch(50, generator)
    with torch.no_grad():
        cpu_logits, cpu_attention = model(ids, mask)
        gpu = model.cuda()
        gpu_logits, gpu_attention = gpu(ids.cuda(), mask.cuda())
    assert torch.allclose(cpu_logits, gpu_logits.cpu(), atol=1e-5)
    assert torch.allclose(cpu_attention, gpu_attention.cpu(), atol=1e-6)
    assert torch.isfinite(gpu_logits).all()


def test_lazy_adamw_matches_dense_adamw_on_gpu() -> None:
    torch.manual_seed(0)
    start = torch.randn(30, 4, device="cuda")
    lazy, dense = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    lazy_opt, dense_opt = LazyAdamW([lazy], lr=0.01), torch.optim.AdamW([dense], lr=0.01)
    for _ in range(5):
        grad = torch.randn(30, 4, device="cuda")
        lazy.grad, dense.grad = grad.to_sparse(), grad.clone()
        lazy_opt.step()
        dense_opt.step()
    assert torch.allclose(lazy, dense, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_gpu(dataset, tmp_path, precision: str) -> None:
    run_dir = tmp_path / precision
    result = run_clf(*train_args(dataset, run_dir, "device=cuda", f"precision={precision}"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["dev_f1"] > 0.8 and np.isfinite(metrics["test_f1"])
    again = run_clf(*train_args(dataset, run_dir, "device=cuda", f"precision={precision}"))
    assert again.returncode == 0 and json.loads((run_dir / "metrics.json").read_text())["steps"] == metrics["steps"]


def test_rng_state_of_the_runs_device_round_trips() -> None:
    """Only the run's device's CUDA state is stored, and restoring it repeats its stream."""
    from clf.train.rng import rng_state, set_rng_state

    device = torch.device("cuda", torch.cuda.device_count() - 1)
    torch.cuda.manual_seed_all(7)
    state = rng_state(device)
    assert state["cuda"]["device"] == device.index
    first = torch.rand(16, device=device)
    torch.cuda.manual_seed_all(8)
    set_rng_state(state, device)
    assert torch.equal(first, torch.rand(16, device=device))
