"""GPU jobs never train on the CPU by surprise: a GPU profile implies device=cuda, a preflight kernel
fails the run with one line (GPU, compute capability, torch build, what to install) before any data
is read, and the device used is recorded in train.log, metrics.json and the TensorBoard HParams.

This machine has a CPU-only torch build, so the preflight's failure is real here; the message for
a GPU the build has no kernels for (a V100 with a CUDA 12.8 build) is checked with canned values.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_dataset, one_line_error, run_clf, train_args
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_sweep import wait_final

from clf.device import build_for, describe_device, failure_message
from clf.slurm.expand import plan

REPO = Path(__file__).resolve().parents[1]
ON_CPU_BUILD = pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU-only build of torch")
NO_DEVICE = [o for o in TINY if not o.startswith("device=")]


@pytest.mark.parametrize("profile, extra, device", [
    ("greatlakes-gpu", [], "cuda"),
    ("greatlakes-mig40", [], "cuda"),            # the GPU comes through gres
    ("greatlakes-gpu", ["device=cpu"], "cpu"),   # explicit: honoured (the test cluster's GPUs are only counted)
    ("greatlakes-gpu", ["device=auto"], "auto"),
    ("greatlakes-standard", [], "auto"),
    ("local", [], "auto"),
])
def test_gpu_profile_implies_cuda_unless_a_device_is_given(tmp_path, profile, extra, device):
    runs = plan([f"cluster={profile}", "cluster.account=acct", f"sweep_dir={tmp_path}", "seed=0,1", *extra]).runs
    assert [run.config["device"] for run in runs] == [device, device]


def test_volta_gets_the_cuda_12_6_build():
    line = failure_message(("Tesla V100-SXM2-16GB", (7, 0)), "torch 2.13.0+cu128 (CUDA 12.8, kernels sm_75 sm_80)",
                           "CUDA error: no kernel image is available for execution on the device")
    assert "Tesla V100-SXM2-16GB (compute capability 7.0)" in line and "torch 2.13.0+cu128" in line
    assert "install the CUDA 12.6 build" in line and "download.pytorch.org/whl/cu126" in line
    assert "\n" not in line
    assert build_for((8, 0))[0] == build_for((8, 6))[0] == build_for((9, 0))[0] == "cu128"
    assert build_for((7, 0))[0] == "cu126"


@ON_CPU_BUILD
def test_cuda_on_a_cpu_build_is_one_line_before_any_data_is_read(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=40, n_dev=20, n_test=20)
    run_dir = tmp_path / "run"
    result = run_clf("train", *data.overrides, *NO_DEVICE, f"data.train={tmp_path / 'missing.csv'}",
                     "device=cuda", f"run_dir={run_dir}")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "device=cuda" in line and f"torch {torch.__version__} (a CPU-only build)" in line, line
    assert "missing.csv" not in line  # the data was never read
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()


@ON_CPU_BUILD
def test_gpu_profile_job_ends_failed_with_the_cuda_line_and_no_trained_run(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=40, n_dev=20, n_test=20)
    sweep = tmp_path / "sweep"
    run_clf("submit", "cluster=local", "cluster.gpus_per_node=1", f"sweep_dir={sweep}", *data.overrides, *NO_DEVICE,
            check=True)
    assert wait_final(sweep, timeout=240) == {"run": "failed"}
    run_dir = sweep / "runs" / "run"
    error = json.loads((run_dir / "status.json").read_text())["error"]
    assert "device=cuda" in error and "CPU-only build" in error and "\n" not in error
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()


def test_device_is_recorded_in_log_metrics_and_hparams(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=40, n_dev=20, n_test=20)
    tiny_run = tmp_path / "run"
    run_clf(*train_args(data, tiny_run, "train.epochs=1"), check=True)
    expected = describe_device(torch.device("cpu"))
    assert expected["type"] == "cpu" and expected["torch"] == torch.__version__
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["device"] == expected
    assert f"device: type cpu, torch {torch.__version__}" in (tiny_run / "train.log").read_text()
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(tiny_run / "tb"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["device.type"].string_value == "cpu"
    assert hparams["device.torch"].string_value == torch.__version__


@pytest.mark.parametrize("partition, index", [("gpu", "cu126"), ("spgpu", "cu128"), ("gpu_mig40", "cu128"),
                                              ("standard", "cpu")])
def test_setup_script_picks_the_torch_build_of_a_partition(partition, index):
    out = subprocess.run(["bash", str(REPO / "launch" / "setup.sh"), "--partition", partition, "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"https://download.pytorch.org/whl/{index}" in out.stdout
    bad = subprocess.run(["bash", str(REPO / "launch" / "setup.sh"), "--partition", "nosuch", "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nosuch" in bad.stderr
