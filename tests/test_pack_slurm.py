"""Packing on a real Slurm cluster (the local one): a task of three runs gets Slurm's warning
(``scancel --signal=USR2``) while its second run trains; the task requeues itself, skips the
run it completed, resumes the second run from its checkpoint (equal to an uninterrupted run)
and trains the third. The local executor's counterparts are in test_pack.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import TINY, make_dataset, popen_clf, run_clf, same_weights, wait_final, wait_for
from test_slurm import LONG, SLURM, slurm  # noqa: F401 (slurm: the module's autouse skip-or-fail fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def record(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text()) if (run_dir / name).exists() else {}


def end_reasons(run_dir: Path) -> list[str]:
    path = run_dir / "attempts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [a["reason"] for a in map(json.loads, lines) if a["event"] == "end"]


@pytest.mark.timeout(1100)  # step 200 300 + end 400 + reference 300
def test_packed_task_preempted_in_its_middle_resumes_exactly(tmp_path):
    data = make_dataset(tmp_path / "long-data", n_train=2000)
    overrides = [*data.overrides, *TINY, *LONG, "train.max_steps=1500"]
    reference = tmp_path / "reference"  # trained meanwhile (the job uses one of the two cores)
    uninterrupted = popen_clf("train", *overrides, "seed=1", f"run_dir={reference}")
    sweep = tmp_path / "packed"
    run_clf("submit", *SLURM, f"sweep_dir={sweep}", *overrides, "seed=0,1,2", "cluster.runs_per_task=3", check=True)
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    try:
        assert len({run["job_id"] for run in runs}) == 1  # one array task runs the three
        first, middle, last = (sweep / run["run_dir"] for run in runs)
        wait_for(lambda: record(middle, "status.json").get("state") == "running"
                 and record(middle, "metrics.json").get("steps", 0) >= 200, 300, "the second run to pass step 200")
        subprocess.run(["scancel", "--signal=USR2", runs[0]["job_id"]], check=True)
        assert wait_final(sweep, 400) == {run["name"]: "completed" for run in runs}
    finally:
        run_clf("cancel", str(sweep))
    assert end_reasons(first) == ["completed"] and end_reasons(last) == ["completed"]
    assert end_reasons(middle) == ["requeued-preempt", "completed"]
    assert "resuming" in (middle / "train.log").read_text()
    _, stderr = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, stderr
    same_weights(reference, middle)
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert record(reference, "metrics.json")[key] == record(middle, "metrics.json")[key], key
