"""Faults of a real cluster, on the local one: ``scontrol requeue`` that fails while the request
goes through (a busy controller's lost reply, or the requeue's own kill reaching scontrol), fails
without it going through, or never goes through; a sweep's file system that fills up mid-run.

Each scenario's job finds a ``scontrol`` wrapper first on its PATH (sbatch exports the submitting
environment): it fails the chosen way and hands every other call to the real scontrol. The three
sweeps are submitted together, each is preempted (``scancel --signal=USR2``) once it trains, and
the tests then read what each run recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import TINY, make_dataset, run_clf, wait_final, wait_for
from test_disk_full import disk_data, reference, small_fs, sweep_fills_up  # noqa: F401 (fixtures)
from test_slurm import LONG, SLURM, attempts, job_ids, run_record, slurm  # noqa: F401 (slurm: autouse fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# how the wrapper answers `scontrol requeue`: the first call only, or every call
WRAPPER_MODES = {
    "went-through": 'if [ ! -e "$MARK" ]; then touch "$MARK"; "$REAL" "$@" >/dev/null 2>&1; exit 1; fi',
    "lost": 'if [ ! -e "$MARK" ]; then touch "$MARK"; '
            'echo "scontrol: error: Socket timed out on send/recv operation" >&2; exit 1; fi',
    "never": 'echo "Requested operation is presently disabled for job $2" >&2; exit 1',
}


def scontrol_wrapper(directory: Path, mode: str) -> Path:
    """A bin directory whose ``scontrol`` fails ``requeue`` the ``mode`` way (see WRAPPER_MODES)."""
    real = shutil.which("scontrol")
    assert real, "scontrol not on PATH"
    directory.mkdir(parents=True)
    script = directory / "scontrol"
    script.write_text(f'#!/bin/bash\nREAL={real}\nMARK={directory / "failed-once"}\n'
                      f'if [ "$1" = requeue ]; then {WRAPPER_MODES[mode]}; fi\nexec "$REAL" "$@"\n')
    script.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def requeues(tmp_path_factory):
    """The three scenarios submitted together, each preempted once it passed step 100; their sweeps."""
    root = tmp_path_factory.mktemp("requeue-faults")
    data = make_dataset(root / "data", n_train=2000)
    sweeps = {mode: root / mode for mode in WRAPPER_MODES}
    for mode, sweep in sweeps.items():
        bin_dir = scontrol_wrapper(root / f"bin-{mode}", mode)
        path = f"{bin_dir}:{os.environ['PATH']}"
        run_clf("submit", *SLURM, f"sweep_dir={sweep}", *data.overrides, *TINY, *LONG, "train.max_steps=3000",
                env={"PATH": path}, check=True)
    try:
        for sweep in sweeps.values():
            run_dir = sweep / "runs" / "run"
            wait_for(lambda: (run_record(run_dir, "status.json").get("state") == "running"
                              and run_record(run_dir, "metrics.json").get("steps", 0) >= 100), 240,
                     f"{sweep.name} to pass step 100")
            subprocess.run(["scancel", "--signal=USR2", job_ids(sweep)[0]], check=True)
        yield {mode: (sweep, wait_final(sweep, 420)) for mode, sweep in sweeps.items()}
    finally:
        for sweep in sweeps.values():
            run_clf("cancel", str(sweep))


def end_records(sweep: Path) -> list[dict]:
    return [a for a in attempts(sweep / "runs" / "run") if a["event"] == "end"]


@pytest.mark.timeout(1200)
def test_a_requeue_whose_scontrol_failed_but_went_through_is_recorded_as_a_requeue(requeues):
    sweep, final = requeues["went-through"]
    assert final == {"run": "completed"}
    first, last = end_records(sweep)
    assert (first["reason"], last["reason"]) == ("requeued-preempt", "completed")
    assert first["error"] is None
    job = job_ids(sweep)[0]
    assert first["requeue"]["errors"][0] == f"scontrol requeue {job}: exit status 1, nothing printed"
    # confirmed by the job's record, read at once or (when Slurm's kill of the requeued job also hit
    # that read) after a retry that Slurm refused as pending: never by a second requeue
    assert "Restarts=1 (was 0)" in first["requeue"]["confirmed_by"]
    assert run_record(sweep / "runs" / "run", "metrics.json")["steps"] == 3000


@pytest.mark.timeout(1200)
def test_a_requeue_that_failed_without_going_through_is_retried(requeues):
    sweep, final = requeues["lost"]
    assert final == {"run": "completed"}
    first, last = end_records(sweep)
    assert (first["reason"], last["reason"]) == ("requeued-preempt", "completed")
    assert first["requeue"]["tries"] == 2 and first["requeue"]["confirmed_by"] == "scontrol requeue"
    assert "Socket timed out" in first["requeue"]["errors"][0]


@pytest.mark.timeout(1200)
def test_a_requeue_that_never_happens_fails_with_the_advice(requeues):
    sweep, final = requeues["never"]
    assert final == {"run": "failed"}
    (only,) = end_records(sweep)
    assert only["reason"] == "requeue-failed"
    assert "did not requeue job" in only["error"] and "presently disabled" in only["error"]
    assert f"clf resubmit {sweep}" in only["error"]
    row = json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)["runs"][0]
    assert row["state"] == "failed" and "clf resubmit" in row["detail"]


@pytest.mark.timeout(900)
def test_a_slurm_run_whose_disk_fills_fails_with_the_reason_and_resubmits_exactly(small_fs, disk_data,  # noqa: F811
                                                                                   reference):  # noqa: F811
    sweep_fills_up(small_fs, disk_data, reference, SLURM)
