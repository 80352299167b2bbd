"""A file system that fills up (a real, small tmpfs) under a run, a sweep, ``clf submit``, the
aggregator and the word2vec stage: one line naming the file, the free space and what to do, exit
status 2 (a run in a sweep: ``failed`` with that reason in ``clf status``), no traceback, no temp
file left, nothing written before lost or torn; once space is freed the run resumes and ends
bit-equal to an uninterrupted one.

Mounting a tmpfs needs root: without it these tests skip, and fail in CI (which runs as root).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import (LONG_TRAIN, TINY, popen_clf, run_clf, same_weights, wait_final,
                     wait_for)

from clf.train import checkpoint

FS_SIZE = "16m"


@pytest.fixture
def small_fs(tmp_path):
    """A fresh 16 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a tmpfs needs root (CI runs as root)")
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def fill(fs: Path) -> Path:
    """A filler file that takes every free block of ``fs`` (what a full quota leaves a run)."""
    filler = fs / "filler"
    chunk = b"\1" * (1 << 16)
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    assert os.statvfs(fs).f_bavail == 0
    return filler


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp-*")]


def assert_disk_full_line(result: subprocess.CompletedProcess, command: str, under: Path, fs: Path) -> str:
    """exit 2, the one error line (after any log lines) naming a file under ``under`` and the free
    space of ``fs``, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr, result.stderr
    line = [ln for ln in result.stderr.splitlines() if ln.strip()][-1]
    assert line.startswith(f"clf {command}: error: {under}"), line
    assert "no space left on device while writing it" in line and f"free of 16.0 MB on {fs})" in line
    assert "free space" in line and "run the same command again" in line
    return line


def checkpoint_step(run_dir: Path) -> int:
    return checkpoint.read(run_dir / "checkpoints" / "last.pt")["state"]["step"]


@pytest.mark.timeout(1200)  # waits: 120 + 300 + 300 s (the rerun), the reference run's 300 s
def test_a_run_whose_disk_fills_stops_with_one_line_and_resumes_exactly(small_fs, disk_data, disk_reference):
    data = disk_data
    run_dir = small_fs / "run"
    args = ["train", *data.overrides, *TINY, *LONG_TRAIN, f"run_dir={run_dir}"]
    process = popen_clf(*args)
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists() and checkpoint_step(run_dir) >= 100, 120,
             "a checkpoint past step 100")
    filler = fill(small_fs)
    _, stderr = process.communicate(timeout=300)
    result = subprocess.CompletedProcess(args, process.returncode, "", stderr)
    assert_disk_full_line(result, "train", run_dir, small_fs)
    assert temp_files(small_fs) == []
    step = checkpoint_step(run_dir)  # the last checkpoint is whole, and so is metrics.json
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "running" and metrics["steps"] >= 100 and step >= 100
    filler.unlink()
    run_clf(*args, check=True)
    assert f"resuming {run_dir} at step {step}" in (run_dir / "train.log").read_text()
    same_weights(disk_reference, run_dir)
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, disk_reference))
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert ours[key] == theirs[key], key


def test_a_full_disk_is_one_line_for_submit_aggregate_and_w2v(small_fs, disk_data, tiny_run):
    data = disk_data
    fill(small_fs)
    sweep = small_fs / "sweep"
    submitted = run_clf("submit", "cluster=local", f"sweep_dir={sweep}", *data.overrides, *TINY)
    assert_disk_full_line(submitted, "submit", sweep, small_fs)
    assert not (sweep / "sweep.json").exists() and temp_files(small_fs) == []

    out = small_fs / "results" / "table"
    aggregated = run_clf("aggregate", str(tiny_run.parent), "--out", str(out))
    assert_disk_full_line(aggregated, "aggregate", out.parent, small_fs)
    assert temp_files(small_fs) == []

    vectors = small_fs / "w2v"
    w2v = run_clf("w2v", *data.overrides, "vector_size=8", "min_count=1", "epochs=1", f"out={vectors}")
    assert_disk_full_line(w2v, "w2v", vectors, small_fs)
    assert not (vectors / "word2vec.pt").exists() and temp_files(small_fs) == []


@pytest.mark.timeout(1500)  # waits: 180 + 300 + 300 s, the reference run's 300 s
def test_a_run_in_a_sweep_fails_with_the_reason_in_status_and_resubmits_exactly(small_fs, disk_data,
                                                                                 disk_reference):
    """On the local runner; on Slurm: test_slurm_faults.py."""
    sweep_fills_up(small_fs, disk_data, disk_reference, ["cluster=local"])


def sweep_fills_up(fs: Path, data, reference: Path, cluster: list[str]) -> None:
    """A one-run sweep on ``fs`` whose disk fills mid-run: the run's record says disk-full, status
    says what to do, and `clf resubmit --failed` continues it from its checkpoint, exactly."""
    sweep = fs / "sweep"
    run_clf("submit", *cluster, f"sweep_dir={sweep}", *data.overrides, *TINY, *LONG_TRAIN, check=True)
    try:
        run_dir = sweep / "runs" / "run"
        wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists() and checkpoint_step(run_dir) >= 100, 180,
                 "a checkpoint past step 100")
        filler = fill(fs)
        assert wait_final(sweep, 300) == {"run": "failed"}
        ended = [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text().splitlines()]
        assert [a.get("reason") for a in ended if a["event"] == "end"] == ["disk-full"]
        row = json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)["runs"][0]
        assert row["state"] == "failed" and "no space left on device" in row["detail"]
        assert f"clf resubmit --failed {sweep}" in row["detail"]
        assert temp_files(run_dir) == []
        filler.unlink()
        run_clf("resubmit", "--failed", str(sweep), check=True)
        assert wait_final(sweep, 300) == {"run": "completed"}
        same_weights(reference, run_dir)
    finally:
        run_clf("cancel", str(sweep))
