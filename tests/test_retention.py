"""Disk: a completed run keeps best.pt and a small final record by default
(``train.keep_checkpoints=best``), everything with ``all``; temp files of killed writes are removed
when the run next starts."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest
from helpers import TINY, make_dataset, run_clf

from clf.api import load_run
from clf.errors import ClfError
from clf.train import checkpoint

DEFAULT_KEEP = [o for o in TINY if not o.startswith("train.keep_checkpoints=")]


def train(data, run_dir, *extra):
    return run_clf("train", *data.overrides, *DEFAULT_KEEP, f"run_dir={run_dir}", *extra, check=True)


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data", n_train=200, n_dev=40, n_test=40)


def test_completed_run_keeps_best_and_a_final_record_by_default(data, tmp_path):
    run_dir = tmp_path / "run"
    # best.pt in full precision: the tiny model's fp16 table is smaller than the record's config text
    train(data, run_dir, "train.checkpoint_every=5", "train.best_precision=fp32")
    ckpts = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.pt", "last.pt"]
    last, best = checkpoint.read(ckpts / "last.pt"), checkpoint.read(ckpts / "best.pt")
    assert set(last) == {"format", "state", "config_yaml", "vocab_fingerprint"} and last["state"]["finished"]
    assert (ckpts / "last.pt").stat().st_size < (ckpts / "best.pt").stat().st_size / 2
    assert load_run(run_dir).step == best["step"]  # explain and the api read best.pt
    with pytest.raises(ClfError, match="no model weights"):
        load_run(run_dir, checkpoint="last")
    again = train(data, run_dir, "train.checkpoint_every=5", "train.best_precision=fp32")  # a rerun (or resubmit) sees a finished run
    assert "not retraining" in again.stderr


@pytest.mark.timeout(700)  # two clf train runs, 300 each
def test_a_run_stopped_after_its_final_record_makes_its_outputs_from_best_pt(data, tmp_path):
    """The final record is written before metrics.json and the predictions: a run killed between
    them, run again, writes the same outputs without training."""
    run_dir = tmp_path / "run"
    train(data, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    predictions = {p.name: p.read_bytes() for p in (run_dir / "predictions").iterdir()}
    (run_dir / "metrics.json").unlink()
    shutil.rmtree(run_dir / "predictions")
    again = train(data, run_dir)
    assert f"at step {metrics['steps']} (" in again.stderr  # resumed at its last step: nothing trained
    redone = json.loads((run_dir / "metrics.json").read_text())
    assert {k: redone[k] for k in ("status", "dev_f1", "test_f1", "best_step", "steps")} == \
        {k: metrics[k] for k in ("status", "dev_f1", "test_f1", "best_step", "steps")}
    assert {p.name: p.read_bytes() for p in (run_dir / "predictions").iterdir()} == predictions


def test_keep_all_keeps_every_checkpoint(data, tmp_path):
    run_dir = tmp_path / "run"
    train(data, run_dir, "train.checkpoint_every=5", "train.keep_checkpoints=all")
    ckpts = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.pt", "last.pt", "previous.pt"]
    assert {"model", "optimizer", "scheduler", "rng"} <= set(checkpoint.read(ckpts / "last.pt"))


def test_bad_keep_value_is_one_line(data, tmp_path):
    result = run_clf("train", *data.overrides, *DEFAULT_KEEP, f"run_dir={tmp_path / 'r'}", "train.keep_checkpoints=some")
    assert result.returncode == 2 and "train.keep_checkpoints='some' is not one of best, all" in result.stderr


def killed_write(path) -> None:
    """An atomic write of ``path`` killed (SIGKILL) halfway: its temp file stays behind."""
    code = ("import sys, time; from clf.atomic import atomic_write\n"
            "def write(f):\n    f.write(b'x' * 1000); f.flush(); print('writing', flush=True); time.sleep(600)\n"
            "atomic_write(sys.argv[1], write)")
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    writer.stdout.close()


def test_temp_files_of_killed_writes_are_removed_on_the_next_start(data, tmp_path):
    run_dir = tmp_path / "run"
    for name in ("checkpoints/last.pt", "metrics.json", "predictions/dev.csv", "status.json"):
        killed_write(run_dir / name)
    left = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob(".*.tmp-*"))
    assert len(left) == 4, left
    train(data, run_dir)
    remaining = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob(".*.tmp-*"))
    assert len(remaining) == 1 and remaining[0].startswith(".status.json.tmp-")  # the job's file, not the trainer's
