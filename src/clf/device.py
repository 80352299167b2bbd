"""Which device a run trains on, checked before any work: GPU jobs never fall back to the CPU.

* A run submitted with a GPU profile trains on ``device=cuda`` unless its overrides name a
  device (``clf.slurm.profile.implied_device``).
* ``select_device`` runs one small CUDA kernel before any data is read (``preflight``). A torch
  build without kernels for the GPU (torch >= 2.11's CUDA 12.8/13.0 wheels and Volta, sm_70, the
  V100s of Great Lakes' ``gpu`` partition), a CPU-only build, a driver too old for the build or
  a job without a GPU then end the run with one line naming the GPU, its compute capability,
  the torch build and which build to install.
* ``describe_device`` is what the run records (train.log, metrics.json, TensorBoard HParams).
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import shutil
import subprocess
from typing import Any

import torch

from clf.errors import ClfError, one_line

log = logging.getLogger(__name__)

TORCH_INDEX = "https://download.pytorch.org/whl"
# the newest CUDA build of torch with kernels for a compute capability below the key
# (torch >= 2.11 builds its CUDA 12.8 and 13.0 wheels without Volta, sm_70: pytorch#172352)
LEGACY_BUILDS = ((7, 5, "cu126", "CUDA 12.6"),)
CURRENT_BUILD = ("cu128", "CUDA 12.8")
# where launchers put a process's rank on its node (torchrun, srun, submitit's local executor)
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID", "SUBMITIT_LOCAL_LOCALID")


def build_for(capability: tuple[int, int] | None) -> tuple[str, str]:
    """(index tag, words) of the torch build to install for a GPU of this compute capability."""
    for major, minor, tag, words in LEGACY_BUILDS:
        if capability is not None and capability < (major, minor):
            return tag, words
    return CURRENT_BUILD


def _nvidia_smi_gpu() -> tuple[str, tuple[int, int] | None] | None:
    """(name, capability) of the first visible GPU from nvidia-smi, for when torch cannot see it."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []
    if not lines:
        return None
    name, _, cap = lines[0].rpartition(",")
    try:
        major, minor = (int(p) for p in cap.strip().split("."))
        return name.strip(), (major, minor)
    except ValueError:
        return lines[0].strip(), None


def visible_gpu(index: int = 0) -> tuple[str, tuple[int, int] | None] | None:
    """(name, compute capability) of GPU ``index`` as torch or nvidia-smi sees it; None: no GPU."""
    try:
        if torch.cuda.is_available() and torch.cuda.device_count() > index:
            return torch.cuda.get_device_name(index), tuple(torch.cuda.get_device_capability(index))  # type: ignore[return-value]
    except Exception:  # a driver too old for the build raises here
        pass
    return _nvidia_smi_gpu()


def torch_build() -> str:
    """``torch 2.13.0+cu128 (CUDA 12.8, kernels sm_75 sm_80 ...)`` or ``... (a CPU-only build)``."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} (a CPU-only build)"
    arches = " ".join(a for a in torch.cuda.get_arch_list() if a.startswith("sm_"))
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}, kernels {arches or 'unknown'})"


def failure_message(gpu: tuple[str, tuple[int, int] | None] | None, build: str, error: str) -> str:
    """The one line that ends a run whose CUDA device does not work."""
    if gpu is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return (f"device=cuda but this job sees no GPU (CUDA_VISIBLE_DEVICES={visible!r}; {build}): request one "
                "(a GPU profile, cluster.gpus_per_node=1 or cluster.gres) or use device=cpu")
    name, capability = gpu
    cc = f"{capability[0]}.{capability[1]}" if capability else "unknown"
    tag, words = build_for(capability)
    return (f"CUDA does not work on {name} (compute capability {cc}) with {build}: {error}; install the {words} "
            f"build of torch: pip install torch --index-url {TORCH_INDEX}/{tag} (bash launch/setup.sh --partition "
            f"PARTITION picks it; see slurm/README.md), or use device=cpu")


def _own_gpu(device: torch.device) -> torch.device:
    """``cuda`` without an index -> this process's GPU: its local rank's in a multi-process run
    (so that the ranks' preflights do not all open a context on GPU 0), else GPU 0."""
    if device.index is not None:
        return device
    for name in LOCAL_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and torch.cuda.is_available() and int(value) < torch.cuda.device_count():
            return torch.device("cuda", int(value))
    return torch.device("cuda", 0)


def preflight(device: torch.device) -> None:
    """Run one small kernel on ``device``; ClfError (one line) if CUDA does not work there."""
    if device.type != "cuda":
        return
    device = _own_gpu(device)
    error = ""
    if torch.version.cuda is None:
        error = "torch has no CUDA support"
    elif not torch.cuda.is_available():
        error = "torch.cuda.is_available() is False"
    else:
        try:
            x = torch.arange(64, dtype=torch.float32, device=device)
            if float((x * 2 + 1).sum().item()) != 4096.0:
                error = "a test kernel computed a wrong result"
        except Exception as exc:  # no kernel image, driver too old, out of memory, ...
            error = one_line(exc)[:200]
    if error:
        raise ClfError(failure_message(visible_gpu(device.index or 0), torch_build(), error))


def select_device(name: str) -> torch.device:
    """``device=`` -> a checked torch device: ``cuda`` must work (else ClfError); ``auto`` is
    CUDA when it works, else the CPU (with a warning when a GPU is there but unusable)."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        try:
            preflight(torch.device("cuda"))
        except ClfError as exc:
            log.warning("device=auto: training on the CPU: %s", exc)
            return torch.device("cpu")
        return torch.device("cuda")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ClfError(f"device={name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    preflight(device)
    return device


@functools.lru_cache(maxsize=8)
def _describe(device: str) -> tuple[tuple[str, Any], ...]:
    info: dict[str, Any] = {"type": torch.device(device).type, "torch": torch.__version__, "cuda": torch.version.cuda}
    if info["type"] == "cuda":
        index = torch.device(device).index or 0
        name, capability = torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index)
        info.update(name=name, capability=f"{capability[0]}.{capability[1]}")
    else:
        info.update(name=platform.processor() or platform.machine(), capability=None)
    return tuple(info.items())


def describe_device(device: torch.device) -> dict[str, Any]:
    """What the run trained on: type, name (GPU or CPU), compute capability, torch and CUDA versions."""
    return dict(_describe(str(device)))
