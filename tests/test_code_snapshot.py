"""Edits to the checkout never reach a submitted sweep: its jobs import clf from the submission's
code snapshot, the git SHA and the uncommitted diff are recorded per submission and per attempt,
and ``clf resubmit --code current`` opts into the code as it is now.

Each test runs ``clf`` from a throw-away checkout (a git repository holding a copy of src/ and
conf/, first on PYTHONPATH), so that breaking its ``model.py`` leaves this repository alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import TINY, make_dataset, run_clf
from test_sweep import wait_final, wait_for

REPO = Path(__file__).resolve().parents[1]
BROKEN = "raise RuntimeError('the checkout was broken after submit')\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "src", root / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "conf", root / "conf")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "submitted code")
    return root


def clf_from(checkout: Path, *args, **kwargs):
    return run_clf(*args, env={"PYTHONPATH": str(checkout / "src")}, **kwargs)


def attempts(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text().splitlines()]


def metrics_steps(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "metrics.json").read_text()).get("steps", 0)
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_preempted_job_resumes_with_the_submitted_code_after_the_checkout_broke(checkout, tmp_path):
    data = make_dataset(tmp_path / "data", n_train=2000)
    sweep, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "runs" / "run"
    clf_from(checkout, "submit", f"sweep_dir={sweep}", *data.overrides, *TINY, "train.max_steps=2500",
             "train.checkpoint_every=20", "train.eval_every=100", check=True)
    wait_for(lambda: metrics_steps(run_dir) >= 100, 180, "the run to pass step 100")
    (checkout / "src" / "clf" / "model.py").write_text(BROKEN)
    pid = attempts(run_dir)[0]["pid"]
    os.kill(pid, signal.SIGUSR2)  # a preemption's warning: checkpoint, requeue, start again
    assert wait_final(sweep, timeout=300) == {"run": "completed"}
    starts = [a for a in attempts(run_dir) if a["event"] == "start"]
    ends = [a for a in attempts(run_dir) if a["event"] == "end"]
    assert len(starts) == 2 and ends[0]["reason"] == "requeued-preempt" and starts[1]["pid"] != pid
    head = git(checkout, "rev-parse", "HEAD")
    for start in starts:
        assert start["code"]["dir"] == str(sweep / "code" / "0") and start["code"]["git_sha"] == head
        assert start["code"]["dirty"] is False
    assert "resuming" in (run_dir / "train.log").read_text()
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["submissions"][0]["code"]["dir"] == str(sweep / "code" / "0")
    assert (sweep / "code" / "0" / "clf" / "conf" / "config.yaml").is_file()  # the config tree goes with it


@pytest.mark.timeout(1000)  # three submissions' runs, 300 each
@pytest.mark.slow
def test_resubmit_keeps_the_sweeps_code_unless_code_current(checkout, tmp_path):
    data = make_dataset(tmp_path / "data", n_train=60, n_dev=20, n_test=20)
    sweep, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "runs" / "run"
    held_back = data.train.rename(tmp_path / "held-back.csv")
    clf_from(checkout, "submit", f"sweep_dir={sweep}", *data.overrides, *TINY, "train.epochs=1", check=True)
    assert wait_final(sweep) == {"run": "failed"}
    model = checkout / "src" / "clf" / "model.py"
    model.write_text(model.read_text() + "SNAPSHOT_MARKER = 1\n")  # an uncommitted edit
    clf_from(checkout, "resubmit", sweep, check=True)  # still failing (no train file), with the sweep's code
    assert wait_final(sweep) == {"run": "failed"}
    held_back.rename(data.train)
    clf_from(checkout, "resubmit", sweep, "--code", "current", check=True)
    assert wait_final(sweep) == {"run": "completed"}
    codes = [s["code"] for s in json.loads((sweep / "sweep.json").read_text())["submissions"]]
    assert [c["dir"] for c in codes] == [str(sweep / "code" / n) for n in ("0", "0", "2")]
    assert codes[0]["diff"] is None and codes[2]["dirty"] is True
    assert "+SNAPSHOT_MARKER = 1" in Path(codes[2]["diff"]).read_text()
    assert "SNAPSHOT_MARKER" in (sweep / "code" / "2" / "clf" / "model.py").read_text()
    assert "SNAPSHOT_MARKER" not in (sweep / "code" / "0" / "clf" / "model.py").read_text()
    starts = [a["code"]["dir"] for a in attempts(run_dir) if a["event"] == "start"]
    assert starts == [str(sweep / "code" / n) for n in ("0", "0", "2")]
