"""Atomic writes and checkpoint files: a write that fails or is killed half-way leaves the
previous good file; a truncated last.pt falls back to previous.pt."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import signal

import numpy as np
import pytest
import torch

from clf.atomic import atomic_directory, atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text
from clf.train import checkpoint, rng


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


def test_writer_that_raises_midway_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "state.bin"
    atomic_write_text(path, "old good content")

    def write(f):
        f.write(b"new partial " * 1000)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, write)
    assert path.read_text() == "old good content"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]


def test_interrupt_midway_leaves_old_file(tmp_path):
    path = tmp_path / "state.bin"
    atomic_write_text(path, "old")

    def write(f):
        f.write(b"x" * 100)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write)
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def _killed_writer(path: str, ready) -> None:
    def write(f):
        f.write(b"\x00" * 4096)
        f.flush()
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the write

    atomic_write(path, write)


def test_process_killed_midway_leaves_old_file_readable(tmp_path):
    path = tmp_path / "last.pt"
    atomic_torch_save(path, {"step": 3, "w": torch.arange(5.0)})
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_killed_writer, args=(str(path), ready))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL and ready.is_set()
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(5.0))
    # a killed writer cannot clean up: its temp file is a hidden sibling, never the target
    assert all(name.startswith(".last.pt.tmp-") for name in leftovers(tmp_path))


def test_atomic_json_and_torch_save(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1, "b": [1.5, None]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1, "b": [1.5, None]}
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "m.json", {"a": float("nan")})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1, "b": [1.5, None]}
    assert leftovers(tmp_path) == []
    atomic_torch_save(tmp_path / "sub" / "t.pt", {"x": torch.ones(2)})
    assert torch.equal(torch.load(tmp_path / "sub" / "t.pt", weights_only=True)["x"], torch.ones(2))


def test_atomic_directory(tmp_path):
    target = tmp_path / "entry"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_directory(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_save_last_keeps_previous_and_load_latest_falls_back(tmp_path, caplog):
    directory = tmp_path / "checkpoints"
    assert checkpoint.load_latest(directory) is None
    checkpoint.save_last(directory, {"state": {"step": 1}})
    checkpoint.save_last(directory, {"state": {"step": 2}})
    assert checkpoint.read(directory / "previous.pt")["state"]["step"] == 1
    assert checkpoint.load_latest(directory)["state"]["step"] == 2
    data = (directory / "last.pt").read_bytes()
    (directory / "last.pt").write_bytes(data[:100])
    with caplog.at_level(logging.WARNING):
        assert checkpoint.load_latest(directory)["state"]["step"] == 1
    assert "falling back" in caplog.text and "previous.pt" in caplog.text
    # killed between moving last.pt aside and writing the new one
    (directory / "last.pt").unlink()
    assert checkpoint.load_latest(directory)["state"]["step"] == 1
    (directory / "previous.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="previous.pt"):
        checkpoint.load_latest(directory)


def test_read_rejects_foreign_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "foreign.pt")  # no format marker
    with pytest.raises(checkpoint.CheckpointError, match="not a clf checkpoint"):
        checkpoint.read(tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no such file"):
        checkpoint.read(tmp_path / "none.pt")


def test_rng_state_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    state = rng.rng_state()
    atomic_torch_save(tmp_path / "rng.pt", state)
    first = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    rng.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    second = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(3))
    assert first[:3] == second[:3] and torch.equal(first[3], second[3])
