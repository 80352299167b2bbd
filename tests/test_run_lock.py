"""One trainer per run_dir: a second ``clf train`` on a run_dir being trained refuses with one line;
the lock goes with its holder's death; a run_dir that is a file is a one-line error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import make_dataset, one_line_error, popen_clf, run_clf, train_args

from clf.errors import ClfError
from clf.train.lock import LOCK_FILE, hold_run_dir


def wait_for_holder(run_dir, pid: int, process, timeout: float = 120) -> None:
    """Poll until process ``pid`` has written itself into the run's lock file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the first trainer ended early: {process.stderr.read()}"
        try:
            if json.loads((run_dir / LOCK_FILE).read_text() or "{}").get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for pid {pid} to hold {run_dir / LOCK_FILE}")


def test_second_trainer_refuses_and_the_lock_dies_with_its_holder(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=400)
    run_dir = tmp_path / "run"
    args = train_args(data, run_dir, "train.epochs=2000")
    first = popen_clf(*args)
    try:
        wait_for_holder(run_dir, first.pid, first)
        second = run_clf(*args)
        assert second.returncode == 2
        line = one_line_error(second)
        assert "another process is training this run" in line and f"pid {first.pid}" in line and str(run_dir) in line
        assert first.poll() is None  # the first one goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        first.stderr.close()
    with hold_run_dir(run_dir):  # the dead holder's lock is gone
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_lock_held_by_another_process_refuses_in_process_callers(tmp_path):
    run_dir = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; from clf.train.lock import hold_run_dir\n"
            "with hold_run_dir(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)")
    other = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(ClfError, match="another process is training this run"):
            with hold_run_dir(run_dir):
                pass
        with hold_run_dir(run_dir, rank=1):  # other ranks of a multi-process run train under rank 0's lock
            pass
    finally:
        other.kill()
        other.wait(timeout=60)
        other.stdout.close()


def test_run_dir_that_is_a_file_is_one_line(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=40, n_dev=20, n_test=20)
    run_dir = tmp_path / "notes.txt"
    run_dir.write_text("my notes\n")
    result = run_clf(*train_args(data, run_dir))
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(run_dir) in line and "is an existing file" in line
    assert run_dir.read_text() == "my notes\n"
