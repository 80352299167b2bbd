"""bench/gpu_check.sh (issue 19) on a machine without a GPU: it prints its one table, every GPU
stage is skipped with the reason after its runs' configurations were checked, the preflight's CPU
path passes, and the exit status is 0; a stage that cannot run fails the check (exit status 1),
and the table is still printed.

The script runs with ``--cpu-only`` where a GPU is visible, so that this test stays quick there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_dataset

from clf.device import visible_gpu

REPO = Path(__file__).resolve().parents[1]
GPU_ROWS = ["cuda-tests", "bf16-run", "epoch at batch 256, defaults", "evaluate 25k test docs, defaults",
            "epoch at batch 256, homework model", "evaluate 25k test docs, homework model", "concurrent-runs"]
STAGES = ["setup", "environment", "cuda-tests", "preflight", "bf16-run", "bench-defaults", "bench-homework",
          "concurrent-runs"]


def gpu_check(tmp_path: Path, *args: str, python: str = sys.executable,
              path: str = os.environ["PATH"]) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the script on a small generated dataset; (the process, {row name: its result cell})."""
    small = tmp_path / "small"
    if not small.exists():
        make_dataset(small, n_train=60, n_dev=20, n_test=20)
    cpu_only = ["--cpu-only"] if visible_gpu() else []
    env = dict(os.environ, CLF_PYTHON=python, PYTHONPATH=str(REPO / "src"), PATH=path)
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--small", str(small), "--work",
                             str(tmp_path / "work"), *cpu_only, *args], capture_output=True, text=True, env=env,
                            timeout=240, stdin=subprocess.DEVNULL)
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("stage", "---"):
            rows[cells[0]] = cells[1]
    return result, rows


def test_without_a_gpu_the_gpu_stages_skip_with_the_reason_and_the_check_passes(tmp_path):
    result, rows = gpu_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("GPU check"))
    assert "GPU: none" in header or "not used: --cpu-only" in header, header
    assert list(rows) == ["setup", "environment", "cuda-tests", "preflight", *GPU_ROWS[1:]], result.stdout
    for name in GPU_ROWS:
        assert rows[name].startswith("skipped: no CUDA device"), (name, rows[name])
    # the CUDA tests were collected and every one skipped (not an empty or broken file)
    assert "pytest: 7 tests, 0 passed, 0 failed, 7 skipped" in rows["cuda-tests"], rows["cuda-tests"]
    assert rows["preflight"].startswith("pass: CPU path"), rows["preflight"]
    assert "device=cuda" in rows["preflight"] and "torch " in rows["preflight"]
    assert rows["environment"].startswith("pass") and str(REPO / "src" / "clf") in rows["environment"]
    assert "3 passed, 0 failed, 7 skipped" in result.stdout
    for stage in STAGES[1:]:  # every stage ran in its own process and wrote its rows
        assert (tmp_path / "work" / f"{stage}.json").is_file(), stage


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU-only build of torch")
def test_a_gpu_that_torch_cannot_use_fails_the_gpu_stages_instead_of_skipping_them(tmp_path):
    """nvidia-smi lists a GPU (a stand-in here), the CPU-only torch cannot use it: a machine set up
    wrongly, which the check must not pass as one without a GPU."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text('#!/bin/sh\necho "NVIDIA H100 80GB HBM3, 9.0"\n')
    (bin_dir / "nvidia-smi").chmod(0o755)
    result, rows = gpu_check(tmp_path, path=f"{bin_dir}:{os.environ['PATH']}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "GPU: NVIDIA H100 80GB HBM3 (compute capability 9.0)" in result.stdout
    assert rows["preflight"].startswith("fail: CUDA does not work on NVIDIA H100 80GB HBM3"), rows["preflight"]
    assert "CUDA 12.8 build" in rows["preflight"]
    for name in GPU_ROWS:
        assert rows[name].startswith("fail"), (name, rows[name])


def test_a_stage_that_cannot_run_fails_the_check_and_the_table_is_still_printed(tmp_path):
    """An interpreter without torch: the environment stage fails, the others are not run, exit 1."""
    bare = "/usr/bin/python3"
    if not Path(bare).exists() or subprocess.run([bare, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip(f"needs a {bare} without torch")
    result, rows = gpu_check(tmp_path, python=bare)
    assert result.returncode == 1, result.stdout + result.stderr
    assert rows["setup"].startswith("pass")
    assert rows["environment"].startswith("fail: exited 1 without its result") and "torch" in rows["environment"]
    for name in STAGES[2:]:
        assert rows[name].startswith("fail: not run: no working Python environment"), (name, rows[name])
    assert "1 passed, 7 failed, 0 skipped" in result.stdout


def test_a_spent_budget_fails_the_stages_it_left_out(tmp_path):
    result, rows = gpu_check(tmp_path, "--budget", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    for name in STAGES[1:]:
        assert rows[name] == "fail: not run: the time budget was spent", (name, rows[name])


def test_bad_arguments_stop_before_any_stage(tmp_path):
    result, _ = gpu_check(tmp_path, "--budget", "soon")
    assert result.returncode == 2 and "--budget needs whole seconds" in result.stderr
    assert not (tmp_path / "work").exists()
