"""Issue 10 on a real Slurm cluster (the local one: slurm/local/start.sh, Great-Lakes-like: a `gpu`
partition with GPUs that are only counted, accounting enforced). Without Slurm these tests skip,
and fail when CI=true.

1. a GPU-profile job without device=cpu ends FAILED with the one-line CUDA message and leaves no
   trained run (this machine's torch is a CPU build); the same job with device=cpu completes;
2. a submitted job survives an edit that breaks src/clf/model.py in the checkout after a
   preemption (scancel --signal=USR2): it resumes under the submitted code and completes.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import TINY, make_dataset, run_clf
from test_code_snapshot import BROKEN, attempts, checkout, clf_from, metrics_steps  # noqa: F401 (fixture)
from test_slurm import slurm  # noqa: F401 (autouse: skip without Slurm, fail in CI)
from test_sweep import wait_final, wait_for

ACCOUNT = "cluster.account=si630f25_class"
SLURM = ["cluster=slurm", ACCOUNT, "cluster.cpus_per_task=1", "cluster.mem_gb=1"]
GPU = [*SLURM, "cluster.partition=gpu", "cluster.gpus_per_node=1"]
NO_DEVICE = [o for o in TINY if not o.startswith("device=")]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.mark.timeout(700)  # two jobs, 300 each
def test_gpu_profile_job_fails_with_the_cuda_line_before_training(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=60, n_dev=20, n_test=20)
    failing, explicit = tmp_path / "gpu", tmp_path / "gpu-cpu"
    run_clf("submit", *GPU, f"sweep_dir={failing}", *data.overrides, *NO_DEVICE, check=True)
    run_clf("submit", *GPU, f"sweep_dir={explicit}", *data.overrides, *NO_DEVICE, "device=cpu", check=True)
    try:
        assert wait_final(failing, 300) == {"run": "failed"}
        run_dir = failing / "runs" / "run"
        error = json.loads((run_dir / "status.json").read_text())["error"]
        assert "device=cuda" in error and "torch" in error and "\n" not in error
        assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
        assert wait_final(explicit, 300) == {"run": "completed"}
    finally:
        for sweep in (failing, explicit):
            run_clf("cancel", sweep)


@pytest.mark.timeout(1000)  # step 200 300 + end 600
def test_preempted_job_survives_a_broken_checkout(checkout, tmp_path):  # noqa: F811 (fixture)
    data = make_dataset(tmp_path / "data", n_train=2000)
    sweep, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "runs" / "run"
    clf_from(checkout, "submit", *SLURM, f"sweep_dir={sweep}", *data.overrides, *TINY, "train.max_steps=4000",
             "train.checkpoint_every=20", "train.eval_every=100", check=True)
    try:
        job = json.loads((sweep / "sweep.json").read_text())["runs"][0]["job_id"]
        wait_for(lambda: metrics_steps(run_dir) >= 200, 300, "the first attempt to pass step 200")
        (checkout / "src" / "clf" / "model.py").write_text(BROKEN)
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        assert wait_final(sweep, 600) == {"run": "completed"}
        starts = [a for a in attempts(run_dir) if a["event"] == "start"]
        assert len(starts) == 2 and all(a["code"]["dir"] == str(sweep / "code" / "0") for a in starts)
        assert "resuming" in (run_dir / "train.log").read_text()
    finally:
        run_clf("cancel", sweep)
