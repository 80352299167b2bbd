"""Data-parallel training with real torch.distributed (gloo, CPU), launched by torchrun.

* 2 ranks equal 1 rank with the same global batch (weights allclose 1e-5);
* 2 ranks SIGKILLed mid-run and started again end equal to an uninterrupted 2-rank run;
* USR2 to one rank only: every rank checkpoints and exits 75, and the resumed run is equal too.

The Slurm variant (2 tasks through srun) is in test_slurm.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import (assert_weights_close, checkpoint_step, finish, make_dataset, run_clf, torchrun, train_args,
                     wait_for_checkpoint)

pytestmark = pytest.mark.slow

# 800 documents, global batch 16: 50 steps an epoch. The equality of 1 and 2 ranks is checked
# after SHORT steps (summation order differs, so float differences grow with steps); the
# kill-and-resume runs are LONG enough to be stopped mid-run (the 440 or more steps after the
# checkpoint the tests wait for take seconds; a run that ends first fails the test, never passes
# it), and must match bit for bit.
SHORT, LONG = 40, 500
COMMON = ["train.eval_every=100", "train.checkpoint_every=20", "train.checkpoint_seconds=3600"]


def ranks(process: subprocess.Popen, run_dir: Path) -> list[int]:
    """The pids of torchrun's two workers (each in a session of its own) of the run in ``run_dir``."""
    found = subprocess.run(["pgrep", "-f", "--", f"clf train .*run_dir={run_dir}( |$)"], capture_output=True,
                           text=True).stdout.split()
    pids = [int(pid) for pid in found if int(pid) != process.pid]
    assert len(pids) == 2, found
    return pids


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def args(data, run_dir: Path, steps: int) -> list[str]:
    return train_args(data, run_dir, *COMMON, f"train.max_steps={steps}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The data, and uninterrupted runs: 1 process and 2 ranks of SHORT steps, 2 ranks of LONG."""
    root = tmp_path_factory.mktemp("ddp")
    data = make_dataset(root / "data", n_train=800)
    two = {steps: torchrun(*args(data, root / f"two-{steps}", steps)) for steps in (SHORT, LONG)}
    one = run_clf(*args(data, root / "one", SHORT), timeout=600)
    assert one.returncode == 0, one.stderr
    for process in two.values():
        assert "rank 1 of 2 (gloo)" in finish(process)
    return data, root / "one", root / f"two-{SHORT}", root / f"two-{LONG}"


@pytest.mark.timeout(1900)  # runs (if first): 600 + two torchruns 600 each
def test_two_ranks_equal_one_rank_with_the_same_global_batch(runs):
    _, one, two, _ = runs
    assert metrics(one)["steps"] == metrics(two)["steps"] == SHORT
    assert_weights_close(one, two)
    assert abs(metrics(one)["dev_f1"] - metrics(two)["dev_f1"]) < 1e-6


@pytest.mark.timeout(2900)  # runs 1800 + step 60 300 + kill 60 + resume 600
def test_two_ranks_killed_and_resumed_equal_an_uninterrupted_run(runs, tmp_path):
    data, _, _, two = runs
    run_dir = tmp_path / "killed"
    process = torchrun(*args(data, run_dir, LONG))
    wait_for_checkpoint(process, run_dir, 60)
    for pid in ranks(process, run_dir) + [process.pid]:
        os.kill(pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert checkpoint_step(run_dir / "checkpoints" / "last.pt") < LONG, "finished before the kill"
    stderr = finish(torchrun(*args(data, run_dir, LONG)))
    assert "resuming" in stderr
    assert_weights_close(two, run_dir, atol=0)
    assert {k: metrics(two)[k] for k in ("dev_f1", "test_f1", "best_step")} == \
        {k: metrics(run_dir)[k] for k in ("dev_f1", "test_f1", "best_step")}


@pytest.mark.timeout(2900)  # runs 1800 + step 40 300 + stop 120 + resume 600
def test_usr2_to_one_rank_stops_every_rank_and_resumes_equal(runs, tmp_path):
    data, _, _, two = runs
    run_dir = tmp_path / "usr2"
    process = torchrun(*args(data, run_dir, LONG))
    wait_for_checkpoint(process, run_dir, 40)
    os.kill(max(ranks(process, run_dir)), signal.SIGUSR2)  # one rank only
    _, stderr = process.communicate(timeout=120)
    assert "stopped by" in stderr and stderr.count("checkpoint saved") == 2, stderr
    stopped_at = checkpoint_step(run_dir / "checkpoints" / "last.pt")
    assert stopped_at < LONG
    stderr = finish(torchrun(*args(data, run_dir, LONG)))
    assert f"at step {stopped_at}" in stderr
    assert_weights_close(two, run_dir, atol=0)


@pytest.mark.timeout(1300)  # one rank 600 + two ranks 600
def test_two_ranks_equal_one_rank_with_bigram_tokens(tmp_path):
    """The defaults' tokens (lowercased words and their bigrams): both ranks build the same
    vocabulary and train the same model. Tolerance 1e-4: a bigram row whose batch gradient
    nearly cancels gets Adam's first update g / |g|, so a 1e-9 change of g from the ranks'
    summation order moves that row by up to ~2e-5 (3 of 2,316 rows here); every other weight
    agrees to 2e-7."""
    data = make_dataset(tmp_path / "data", n_train=800)
    bigrams = [*COMMON, "train.max_steps=10", "data.tokenizer.ngrams=2", "data.tokenizer.lowercase=true",
               "data.bigram_min_count=2"]
    two = torchrun(*train_args(data, tmp_path / "two", *bigrams))
    one = run_clf(*train_args(data, tmp_path / "one", *bigrams), timeout=600)
    assert one.returncode == 0, one.stderr
    assert "rank 1 of 2 (gloo)" in finish(two)
    vocab = (tmp_path / "one" / "word_to_index.txt").read_text()
    assert vocab == (tmp_path / "two" / "word_to_index.txt").read_text()
    assert any(" " in token for token in json.loads(vocab))  # bigrams in it
    assert_weights_close(tmp_path / "one", tmp_path / "two", atol=1e-4)
    assert metrics(tmp_path / "one")["dev_f1"] == metrics(tmp_path / "two")["dev_f1"]


TORCH_DISTRIBUTED_VARS = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
SLURM_TASK_ENV = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0",
                  "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gl[3001-3002]", "SLURM_JOB_NUM_NODES": "2"}


def test_a_slurm_job_rendezvous_port_is_below_the_ephemeral_range_and_the_same_on_every_rank(monkeypatch):
    """Rank 0's port must not be one an outgoing connection on its node may hold (EADDRINUSE
    once failed a two-node job here, its other rank waiting); every rank derives the same one."""
    from clf.train.distributed import MASTER_PORTS, _export_job_environment, master_port

    for name in TORCH_DISTRIBUTED_VARS:  # set, then removed: monkeypatch removes what export() sets, at the end
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in SLURM_TASK_ENV.items():
        monkeypatch.setenv(name, value)
    _export_job_environment()
    port = int(os.environ["MASTER_PORT"])
    low, high = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert MASTER_PORTS[0] <= port <= MASTER_PORTS[1] < low and port == master_port("4242")
    assert os.environ["RANK"] == "1" and os.environ["WORLD_SIZE"] == "2" and os.environ["MASTER_ADDR"] == "gl3001"
    assert len({master_port(str(job)) for job in range(1000, 1100)}) > 90  # jobs side by side rarely share one

    for name in TORCH_DISTRIBUTED_VARS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MASTER_PORT", "29555")  # the user's own choice is kept
    _export_job_environment()
    assert os.environ["MASTER_PORT"] == "29555"


def test_the_rendezvous_test_leaves_no_torch_distributed_variable_behind():
    """Later tests' clf processes inherit this process's environment: a WORLD_SIZE left here
    would make each of them wait for ranks that never come."""
    assert not set(TORCH_DISTRIBUTED_VARS) & set(os.environ)
