"""``clf status`` against the local Slurm cluster calls the real squeue and sacct once per look,
for a sweep split over several arrays (some runs resubmitted into another) and a second sweep.

squeue and sacct are wrapped on PATH by scripts that log each call and exec the real command;
``scontrol show config`` is wrapped to say MaxArraySize=100, so that ``clf submit`` splits a
300-run sweep into 3 arrays as it would on a site with small arrays. Every job is held (nothing
runs) and cancelled at the end. The unit tests with canned output are in test_status_scale.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import FAKE_MAX_ARRAY_SIZE, counting_path, logged_calls, make_dataset, run_clf, wait_for
from test_slurm import SLURM, slurm  # noqa: F401 (the autouse fixture: skip without a cluster)

pytestmark = [pytest.mark.slurm]


@pytest.fixture
def counted(tmp_path) -> tuple[dict[str, str], Path]:
    """(an environment that logs every squeue and sacct call and caps MaxArraySize at 100, the log)."""
    log = tmp_path / "calls.log"
    return {**counting_path(tmp_path / "bin", log), FAKE_MAX_ARRAY_SIZE: "100"}, log


def status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_clf("status", "--json", *args, env=env)


def counts(env: dict[str, str], *sweeps: Path) -> list[dict[str, int]]:
    data = json.loads(status(env, *map(str, sweeps)).stdout)
    return [sweep["counts"] for sweep in (data if len(sweeps) > 1 else [data])]


def test_status_of_several_arrays_and_sweeps_calls_squeue_and_sacct_once(tmp_path, counted):
    env, log = counted
    data = make_dataset(tmp_path / "data").overrides
    big, small = tmp_path / "big", tmp_path / "small"
    try:
        for sweep, seeds in ((big, 300), (small, 20)):
            run_clf("submit", *SLURM, f"sweep_dir={sweep}", "+cluster.additional_parameters.hold=true", *data,
                    f"seed=range({seeds})", env=env, check=True)
        manifest = json.loads((big / "sweep.json").read_text())
        arrays = manifest["submissions"][0]["job_ids"]
        assert len(arrays) == 3 and len(manifest["runs"]) == 300
        # tasks 10-19 of each array are cancelled before they start: Slurm keeps no record of them
        subprocess.run(["scancel", *(f"{array}_[10-19]" for array in arrays)], check=True)
        wait_for(lambda: counts(env, big) == [{"pending": 270, "unknown": 30}], 60, "30 unknown runs")
        run_clf("resubmit", str(big), env=env, check=True)
        manifest = json.loads((big / "sweep.json").read_text())
        resubmission = manifest["submissions"][1]["job_ids"]
        small_arrays = json.loads((small / "sweep.json").read_text())["submissions"][0]["job_ids"]
        assert len(resubmission) == 1 and resubmission[0] not in arrays

        log.write_text("")
        result = status(env, str(big), str(small))
        assert result.returncode == 0, result.stderr
        assert sorted(call[0] for call in logged_calls(log)) == ["sacct", "squeue"]
        for call in logged_calls(log):
            assert call[call.index("--jobs") + 1].split(",") == sorted(arrays + resubmission + small_arrays, key=int)
        big_status, small_status = json.loads(result.stdout)
        assert big_status["counts"] == {"pending": 300} and small_status["counts"] == {"pending": 20}
        moved = {run["name"]: run for run in manifest["runs"] if run["submission"] == 1}
        assert len(moved) == 30 and all(run["job_id"].startswith(f"{resubmission[0]}_") for run in moved.values())
        assert all(run["history"][0].split("_")[0] in arrays for run in moved.values())
        assert all(run["state"] == "pending" and run["job_id"] == moved[run["name"]]["job_id"]
                   for run in big_status["runs"] if run["name"] in moved)
    finally:
        run_clf("cancel", str(big), str(small), env=env)
    wait_for(lambda: counts(env, big, small) == [{"cancelled": 300}, {"cancelled": 20}], 60, "every run cancelled")
    log.write_text("")
    waited = run_clf("status", "--wait", "--json", str(big), str(small), env=env)
    assert waited.returncode == 1, waited.stderr  # every run ended, none completed
    assert sorted(call[0] for call in logged_calls(log)) == ["sacct", "squeue"]
