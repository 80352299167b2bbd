"""Resuming with fewer visible GPUs than the checkpoint was written with: only the run's own
device's CUDA random state is stored and restored.

There is no GPU here, so torch.cuda's state functions are replaced by recorders that behave as
torch does on a machine with ``visible`` GPUs (``set_rng_state_all`` with more states than GPUs
fails); tests/test_cuda.py checks the round trip on a real GPU.
"""

from __future__ import annotations

import torch

from clf.train.rng import rng_state, set_rng_state


class FakeCuda:
    def __init__(self, monkeypatch, visible: int) -> None:
        self.visible, self.restored = visible, []
        monkeypatch.setattr(torch.cuda, "get_rng_state", self.get)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [self.get(i) for i in range(self.visible)])
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set)
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.set_all)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)

    def get(self, index: int = 0) -> torch.Tensor:
        assert index < self.visible, f"invalid device ordinal {index}"
        return torch.full((8,), index, dtype=torch.uint8)

    def set(self, state: torch.Tensor, index: int = 0) -> None:
        assert index < self.visible, f"invalid device ordinal {index}"
        self.restored.append((index, int(state[0])))

    def set_all(self, states) -> None:
        for index, state in enumerate(states):
            self.set(state, index)


def test_only_the_runs_own_device_is_stored(monkeypatch):
    FakeCuda(monkeypatch, visible=4)
    state = rng_state(torch.device("cuda", 2))
    assert state["cuda"]["device"] == 2 and int(state["cuda"]["state"][0]) == 2
    assert "cuda" not in rng_state(torch.device("cpu"))


def test_resume_with_fewer_visible_gpus(monkeypatch):
    FakeCuda(monkeypatch, visible=4)
    written = rng_state(torch.device("cuda", 0))
    fake = FakeCuda(monkeypatch, visible=1)
    set_rng_state(written, torch.device("cuda", 0))
    assert fake.restored == [(0, 0)]


def test_old_checkpoints_with_every_devices_state_resume_on_one_gpu(monkeypatch):
    old = {**rng_state(), "cuda": [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]}
    fake = FakeCuda(monkeypatch, visible=1)
    set_rng_state(old, torch.device("cuda"))
    assert fake.restored == [(0, 0)]


def test_cpu_streams_round_trip():
    torch.manual_seed(5)
    state = rng_state(torch.device("cpu"))
    first = torch.rand(4)
    torch.manual_seed(6)
    set_rng_state(state, torch.device("cpu"))
    assert torch.equal(first, torch.rand(4))
