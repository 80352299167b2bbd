"""The private APIs behind clf.compat still exist and behave as the adapters expect, and the
installed libraries lie in the ranges pyproject.toml pins. A failure names the adapter to fix."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pytest
import torch
from packaging.requirements import Requirement

from clf.compat.submitit import local_process, sbatch_script
from clf.compat.torch import eager_optimizer_methods, fused_adamw_, mark_coalesced, uncoalesced_indices
from clf.stop import LOCAL_REQUEUE_EXIT

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@contextmanager
def private_api(library: str, name: str, adapter: str) -> Iterator[None]:
    """Turn a moved or changed private name into one clear failure."""
    try:
        yield
    except (AttributeError, ImportError, TypeError, RuntimeError) as exc:
        pytest.fail(f"{library} {version(library)}: the private {name} moved or changed ({exc}); "
                    f"adapt {adapter} and the {library} pin in pyproject.toml", pytrace=False)


@pytest.mark.parametrize("library", ["torch", "hydra-core", "submitit"])
def test_installed_versions_lie_in_the_pinned_ranges(library):
    pins = {Requirement(r).name: Requirement(r) for r in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]}
    specifier = pins[library].specifier
    assert any(spec.operator == "<" for spec in specifier), f"{library} has no upper bound in pyproject.toml"
    assert specifier.contains(version(library).split("+")[0]), f"{library} {version(library)} is outside {specifier}"


def test_sbatch_script_renders_a_job_array():
    with private_api("submitit", "submitit.slurm.slurm._make_sbatch_string", "clf/compat/submitit.py"):
        script = sbatch_script(Path("/x/jobs"), 3, job_name="clf-test", time=30, partition="standard",
                               signal_delay_s=120)
    assert script.startswith("#!/bin/bash")
    assert "#SBATCH --array=0-2" in script and "#SBATCH --partition=standard" in script
    assert "#SBATCH --signal=USR2@120" in script and "python -u -m submitit.core._submit /x/jobs" in script


def test_local_job_exposes_its_controller_process_and_requeue_code(tmp_path):
    import submitit
    from submitit.local import local

    with private_api("submitit", "LocalJob._process", "clf/compat/submitit.py"):
        job = submitit.LocalExecutor(folder=tmp_path).submit(int, "7")
        process = local_process(job)
        assert isinstance(process, subprocess.Popen)
        assert job.result() == 7 and process.poll() == 0
    assert LOCAL_REQUEUE_EXIT == local.LOCAL_REQUEUE_RETURN_CODE, "clf.stop.LOCAL_REQUEUE_EXIT differs from submitit's"


def test_fused_adamw_matches_torch_adamw():
    torch.manual_seed(0)
    start, grad = torch.randn(6, 4), torch.randn(6, 4)
    hyper = dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.3)
    ref = torch.nn.Parameter(start.clone())
    ref.grad = grad.clone()
    torch.optim.AdamW([ref], **hyper).step()
    p, m, v, step = start.clone(), torch.zeros(6, 4), torch.zeros(6, 4), torch.ones(())
    with private_api("torch", "torch._fused_adamw_", "clf/compat/torch.py"):
        fused_adamw_([p], [grad], [m], [v], [step], lr=0.05, beta1=0.8, beta2=0.9, weight_decay=0.3, eps=1e-6)
    torch.testing.assert_close(p, ref.detach())


def test_mark_coalesced_sets_the_flag_without_reordering():
    grad = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), torch.ones(2, 3), (6, 3), check_invariants=True)
    assert not grad.is_coalesced()
    with private_api("torch", "Tensor._indices and Tensor._coalesced_", "clf/compat/torch.py"):
        assert uncoalesced_indices(grad).tolist() == [[1, 4]]
        marked = mark_coalesced(grad)
    assert marked.is_coalesced() and marked.indices().tolist() == [[1, 4]]


# in a fresh interpreter: build clf's optimizer, step it, save and restore its state, zero its
# gradients; then import torch._dynamo and do it again (torch's own wrappers from then on)
EAGER_OPTIMIZER = """
import sys, torch
from torch import nn
from clf.optim import build_optimizer
from clf.compat.torch import eager_optimizer_methods

def use():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 3, sparse=True)
    opt = build_optimizer(emb, type("Cfg", (), dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                                                      embedding_update="lazy"))())
    emb(torch.tensor([1, 2])).sum().backward()
    opt.step()
    state = opt.state_dict()
    opt.load_state_dict(state)
    opt.zero_grad()
    return emb.weight.detach().clone()

before = use()
print("dynamo imported by the optimizer:", "torch._dynamo" in sys.modules)
import torch._dynamo
after = use()
print("same weights after torch._dynamo:", torch.equal(before, after))
fn = torch.optim.Optimizer.zero_grad.__wrapped__
print("torch's wrapper now:", getattr(fn, "__dynamo_disable").__module__ != "clf.compat.torch")
"""


def test_optimizer_methods_run_without_importing_dynamo():
    with private_api("torch", "torch._compile._disable_dynamo's cache", "clf/compat/torch.py"):
        covered = eager_optimizer_methods()
    assert covered >= 4, ("torch.optim.Optimizer has no methods decorated @torch._disable_dynamo any more: "
                          "adapt eager_optimizer_methods in clf/compat/torch.py")
    out = subprocess.run([sys.executable, "-c", EAGER_OPTIMIZER], capture_output=True, text=True, check=True).stdout
    assert "dynamo imported by the optimizer: False" in out, out
    assert "same weights after torch._dynamo: True" in out, out
    assert "torch's wrapper now: True" in out, out
