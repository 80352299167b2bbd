"""Exact resume: a run killed at any step and started again ends bitwise equal to an uninterrupted
one (weights, best weights, metrics, predictions, TensorBoard curves), on CPU.

Each scenario compares with an uninterrupted run ``A`` of the same config. The interrupted runs
wait for a state (a checkpoint of at least some step on disk), never for a fixed time.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import (checkpoint_step, communicate_all, make_dataset, popen_clf, run_clf, train_args,
                     wait_for_checkpoint)

from clf.config.compose import compose
from clf.train import checkpoint
from clf.train.loop import train

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CLF_TEST_SEED", time.time_ns() % 1_000_000))
# 400 documents in batches of 8: 50 steps an epoch, 300 steps; checkpoints at every log step so
# that a resume from any checkpoint also checks the log (and, every 3rd, the dev F1) at its step
COMMON = ["train.batch_size=8", "train.epochs=6", "train.log_every=5", "train.eval_every=15",
          "train.checkpoint_every=5", "train.checkpoint_seconds=3600"]
CONFIGS = {
    "plain": [],
    "dropout-plateau": ["model.hidden_layers=1", "model.hidden_size=8", "model.dropout=0.3",
                        "optim.schedule=plateau", "optim.plateau_patience=0"],
    "cosine-positional": ["optim.schedule=cosine", "optim.warmup_steps=20", "model.positional=true",
                          "optim.embedding_update=dense"],
}
TOTAL_STEPS = 300


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """The uninterrupted run A of every config (started together)."""
    root = tmp_path_factory.mktemp("resume")
    data = make_dataset(root / "data")
    processes = {}
    for name, extra in CONFIGS.items():
        run_dir = root / f"A-{name}"
        processes[name] = (popen_clf(*train_args(data, run_dir, *COMMON, *extra)), run_dir)
    ended = communicate_all({name: process for name, (process, _) in processes.items()}, timeout=600)
    for name, (returncode, stderr) in ended.items():
        assert returncode == 0, f"{name}: {stderr}"
    return data, {name: run_dir for name, (_, run_dir) in processes.items()}


def start(data, run_dir: Path, config: str) -> subprocess.Popen:
    return popen_clf(*train_args(data, run_dir, *COMMON, *CONFIGS[config]))


def finish(data, run_dir: Path, config: str) -> subprocess.CompletedProcess:
    result = run_clf(*train_args(data, run_dir, *COMMON, *CONFIGS[config]))
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    return result


def kill_at_random_step(data, run_dir: Path, config: str, rng: random.Random, low: int = 6, high: int = 120) -> int:
    """Start a run, SIGKILL it once a checkpoint of a random step is on disk; return that step."""
    process = start(data, run_dir, config)
    target = rng.randint(low, high)
    wait_for_checkpoint(process, run_dir, target, every=0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return target


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def assert_same_run(a: Path, b: Path) -> None:
    """B ended exactly where A did: weights, optimizer, best weights, metrics, predictions, curves."""
    for name in ("last.pt", "best.pt"):
        wa = checkpoint.read(a / "checkpoints" / name)
        wb = checkpoint.read(b / "checkpoints" / name)
        assert wa["model"].keys() == wb["model"].keys()
        for key in wa["model"]:
            assert torch.equal(wa["model"][key], wb["model"][key]), f"{name}: {key} differs"
    last_a = checkpoint.read(a / "checkpoints" / "last.pt")
    last_b = checkpoint.read(b / "checkpoints" / "last.pt")
    for pid, state in last_a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(last_b["optimizer"]["state"][pid][key])), key
    assert last_a["scheduler"] == last_b["scheduler"]
    ma = json.loads((a / "metrics.json").read_text())
    mb = json.loads((b / "metrics.json").read_text())
    assert mb["status"] == "completed"
    for key in ("dev_f1", "test_f1", "dev_precision", "dev_recall", "dev_accuracy", "best_step", "steps", "epochs"):
        assert ma[key] == mb[key], key
    assert ma["steps"] == TOTAL_STEPS
    for split in ("dev", "test"):
        assert (a / "predictions" / f"{split}.csv").read_bytes() == (b / "predictions" / f"{split}.csv").read_bytes()
    for tag in ("Loss/train_sum", "Loss/train_mean", "LR", "F1/dev"):
        curve_a, curve_b = scalars(a, tag), scalars(b, tag)
        steps_b = [step for step, _ in curve_b]
        assert len(steps_b) == len(set(steps_b)), f"{tag}: duplicated steps after resume"
        assert curve_a == curve_b, tag


@pytest.mark.timeout(1700)  # reference_runs 600 + two kills (300 + 60 each) + resume 300
@pytest.mark.parametrize("config", list(CONFIGS))
def test_sigkill_at_random_step_then_resume_is_exact(reference_runs, tmp_path, config):
    data, runs = reference_runs
    rng = random.Random(f"{SEED}-{config}")
    run_dir = tmp_path / "B"
    killed_at = kill_at_random_step(data, run_dir, config, rng)
    if config == "plain":  # killed twice: the second run resumes, and is killed again
        killed_at = kill_at_random_step(data, run_dir, config, rng, low=killed_at + 6, high=killed_at + 80)
    assert checkpoint_step(run_dir / "checkpoints" / "last.pt") < TOTAL_STEPS
    finish(data, run_dir, config)
    assert_same_run(runs[config], run_dir), f"seed {SEED}, killed at {killed_at}"


@pytest.mark.timeout(1400)  # reference_runs 600 + kill 300 + 60 + resume 300
def test_truncated_last_checkpoint_falls_back_to_previous(reference_runs, tmp_path):
    data, runs = reference_runs
    run_dir = tmp_path / "B"
    process = start(data, run_dir, "plain")
    wait_for_checkpoint(process, run_dir, random.Random(SEED).randint(20, 100), every=0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    last, previous = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "previous.pt"
    assert previous.exists()
    previous_step = checkpoint_step(previous)
    data_bytes = last.read_bytes()
    last.write_bytes(data_bytes[: len(data_bytes) // 3])
    result = finish(data, run_dir, "plain")
    assert "falling back to" in result.stderr and "previous.pt" in result.stderr
    assert f"at step {previous_step}" in result.stderr
    assert_same_run(runs["plain"], run_dir)


@pytest.mark.timeout(1400)  # reference_runs 600 + stop 300 + 120 + resume 300
@pytest.mark.parametrize("sig,config", [(signal.SIGTERM, "plain"), (signal.SIGUSR2, "dropout-plateau")])
def test_stop_signal_checkpoints_exits_75_and_resumes_exactly(reference_runs, tmp_path, sig, config):
    data, runs = reference_runs
    run_dir = tmp_path / "B"
    process = start(data, run_dir, config)
    wait_for_checkpoint(process, run_dir, random.Random(f"{SEED}-{sig}").randint(6, 120), every=0.002)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 75, stderr
    assert f"stopped by {sig.name}" in stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    stopped_at = checkpoint_step(run_dir / "checkpoints" / "last.pt")
    assert metrics["steps"] == stopped_at < TOTAL_STEPS  # checkpointed at the step it stopped
    finish(data, run_dir, config)
    assert_same_run(runs[config], run_dir)


def test_resume_with_another_config_is_refused(tmp_path, dataset):
    from clf.errors import ClfError
    from clf.stop import StopRequest

    run_dir = tmp_path / "run"
    stop = StopRequest()
    stop.request("SIGTERM")  # stop (with a checkpoint) after the first step
    result = train(compose(train_args(dataset, run_dir)[1:]), run_dir, stop)
    assert result.status == "interrupted" and result.exit_code == 75
    assert checkpoint_step(run_dir / "checkpoints" / "last.pt") == 1
    with pytest.raises(ClfError, match=r"another config \(model\.num_heads differ\)"):
        train(compose(train_args(dataset, run_dir, "model.num_heads=3")[1:]), run_dir)
    # where and how it runs may change
    again = train(compose(train_args(dataset, run_dir, "train.checkpoint_every=3", "train.progress=log")[1:]), run_dir)
    assert again.status == "completed"


@pytest.mark.parametrize("case", ["epoch end", "max_steps mid-epoch"])
def test_killed_after_an_evaluation_that_follows_a_checkpoint(tmp_path, dataset, monkeypatch, case):
    """A checkpoint written at an epoch's last step (or at max_steps) must already hold that
    step's dev evaluation: a run killed after the evaluation but before the next checkpoint
    resumes from it without evaluating (and logging F1/dev for) that step twice.

    Simulated in-process: a complete run whose last.pt is then replaced by the checkpoint it
    wrote at that step, as if it had been killed just before finishing.
    """
    # 400 documents in batches of 16: 25 steps an epoch
    extra = (["train.epochs=2", "train.checkpoint_every=25", "train.eval_every=1000"] if case == "epoch end"
             else ["train.max_steps=20", "train.epochs=0", "train.checkpoint_every=10", "train.eval_every=1000"])
    at_step = 25 if case == "epoch end" else 20
    cfg = compose(train_args(dataset, tmp_path / "run", *extra)[1:])
    snapshot = tmp_path / "snapshot.pt"
    save_last = checkpoint.save_last

    def recording_save_last(directory, payload):
        path = save_last(directory, payload)
        if payload["state"]["step"] == at_step and not payload["state"]["finished"] and not snapshot.exists():
            snapshot.write_bytes(path.read_bytes())
        return path

    monkeypatch.setattr(checkpoint, "save_last", recording_save_last)
    run_dir = tmp_path / "run"
    train(cfg, run_dir)
    reference = tmp_path / "reference"
    shutil.copytree(run_dir, reference)
    f1_steps = [step for step, _ in scalars(reference, "F1/dev")]
    assert at_step in f1_steps
    (run_dir / "metrics.json").unlink()
    (run_dir / "checkpoints" / "previous.pt").unlink()
    shutil.copy(snapshot, run_dir / "checkpoints" / "last.pt")
    monkeypatch.setattr(checkpoint, "save_last", save_last)
    train(compose(train_args(dataset, run_dir, *extra)[1:]), run_dir)
    steps = [step for step, _ in scalars(run_dir, "F1/dev")]
    assert steps == f1_steps, "F1/dev logged twice for a step"
    assert scalars(run_dir, "Loss/train_sum") == scalars(reference, "Loss/train_sum")
    for name in ("last.pt", "best.pt"):
        a = checkpoint.read(reference / "checkpoints" / name)["model"]
        b = checkpoint.read(run_dir / "checkpoints" / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), name
