"""Packing (``cluster.runs_per_task=K``) on the local executor: K runs in one process, each with
its own records; a failed run fails alone; a preemption (USR2) in the middle of a task requeues
it, the runs it completed are skipped and the current one resumes exactly. The same on Slurm is
in test_slurm.py (test_packed_task_preempted_in_its_middle_resumes_exactly).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from helpers import TINY, make_dataset, run_clf, runs_with, same_weights, wait_final, wait_for

from clf.errors import ClfError
from clf.slurm.pack import chunks
from clf.slurm.profile import check_cluster, cluster_from

pytestmark = pytest.mark.slow
LONG = ["train.max_steps=1500", "train.eval_every=100", "train.checkpoint_every=20", "train.log_every=50"]


def record(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text()) if (run_dir / name).exists() else {}


def attempts(run_dir: Path) -> list[dict]:
    path = run_dir / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def end_reasons(run_dir: Path) -> list[str]:
    return [a["reason"] for a in attempts(run_dir) if a["event"] == "end"]


def run_names(sweep: Path) -> list[str]:
    return [run["name"] for run in json.loads((sweep / "sweep.json").read_text())["runs"]]


def test_chunks_and_the_setting_is_checked():
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([1], 8)) == [[1]]
    with pytest.raises(ClfError, match="runs_per_task=0 must be at least 1"):
        check_cluster(cluster_from({"executor": "local", "runs_per_task": 0}))


@pytest.mark.timeout(700)  # runs 300 + a run alone 300
def test_packed_runs_share_a_process_and_each_equals_a_run_of_its_own(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *dataset.overrides, *TINY, "seed=0,1,2", "cluster.runs_per_task=2",
            check=True)
    names = run_names(sweep)
    assert wait_final(sweep) == {name: "completed" for name in names}
    dirs = [sweep / "runs" / name for name in names]
    pids = [record(d, "status.json")["pid"] for d in dirs]
    assert pids[0] == pids[1] != pids[2]  # two tasks: runs 0 and 1 together, run 2 alone
    for run_dir in dirs:
        assert end_reasons(run_dir) == ["completed"]
        assert record(run_dir, "metrics.json")["status"] == "completed"
        log = (run_dir / "train.log").read_text()
        assert log.count("done: dev F1") == 1  # each run's log holds its own run only
    alone = tmp_path / "alone"  # the second run of the pack, trained by a process of its own
    run_clf("train", *dataset.overrides, *TINY, "seed=1", f"run_dir={alone}", check=True)
    same_weights(alone, dirs[1])
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert record(alone, "metrics.json")[key] == record(dirs[1], "metrics.json")[key], key
    assert "3 runs: 3 completed" in run_clf("status", str(sweep), check=True).stdout


@pytest.mark.timeout(700)  # runs 300 + rerun 300
def test_a_failed_run_fails_alone_in_its_task_and_resubmit_failed_reruns_it(dataset, tmp_path):
    sweep, missing = tmp_path / "s", tmp_path / "later" / "train.csv"
    copy = shutil.copy(dataset.train, tmp_path / "copy.csv")
    run_clf("submit", f"sweep_dir={sweep}", *dataset.overrides, *TINY, f"data.train={dataset.train},{missing},{copy}",
            "cluster.runs_per_task=3", check=True)
    names = run_names(sweep)
    [bad] = runs_with(sweep, f"data.train={missing}")
    assert names.index(bad) == 1  # the middle one of the task
    assert wait_final(sweep) == {name: "failed" if name == bad else "completed" for name in names}
    assert "train.csv" in record(sweep / "runs" / bad, "status.json")["error"]
    missing.parent.mkdir()
    shutil.copy(dataset.train, missing)
    result = run_clf("resubmit", str(sweep), "--failed", check=True)
    assert "resubmitted 1 run(s)" in result.stdout
    assert wait_final(sweep) == {name: "completed" for name in names}
    for name in names:
        assert end_reasons(sweep / "runs" / name) == (["failed", "completed"] if name == bad else ["completed"])


@pytest.mark.timeout(1100)  # step 200 300 + end 400 + reference 300
def test_usr2_in_the_middle_of_a_task_requeues_it_and_the_current_run_resumes_exactly(tmp_path):
    data = make_dataset(tmp_path / "long-data", n_train=2000)
    overrides = [*data.overrides, *TINY, *LONG]
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *overrides, "seed=0,1,2", "cluster.runs_per_task=3", check=True)
    names = run_names(sweep)
    first, middle, last = (sweep / "runs" / name for name in names)

    def middle_at(step: int) -> dict | None:
        status = record(middle, "status.json")
        return status if status.get("state") == "running" and record(middle, "metrics.json").get("steps", 0) >= step \
            else None

    pid = wait_for(lambda: middle_at(200), 300, "the task's second run to pass step 200")["pid"]
    os.kill(pid, signal.SIGUSR2)  # Slurm's warning before a preemption
    assert wait_final(sweep, 400) == {name: "completed" for name in names}
    assert end_reasons(first) == ["completed"]  # trained once: skipped when the task restarted
    assert end_reasons(middle) == ["requeued-preempt", "completed"]
    assert end_reasons(last) == ["completed"]
    stopped = next(a for a in attempts(middle) if a["event"] == "end")
    assert "resuming" in (middle / "train.log").read_text()
    assert record(last, "status.json")["pid"] == record(middle, "status.json")["pid"] != stopped["pid"]
    reference = tmp_path / "reference"
    run_clf("train", *overrides, "seed=1", f"run_dir={reference}", check=True)
    same_weights(reference, middle)
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert record(reference, "metrics.json")[key] == record(middle, "metrics.json")[key], key
