"""Faults of a real cluster, on the local one: ``scontrol requeue`` that fails while the request
goes through (a busy controller's lost reply, or the requeue's own kill reaching scontrol), fails
without it going through, or never goes through; a sweep's file system that fills up mid-run;
slurmdbd down (sacct failing) under status, submit, cancel and a halving search; slurmctld
restarted while a sweep runs and queues.

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
from helpers import REPO, TINY, make_dataset, run_clf, search_ended, wait_final, wait_for
from test_disk_full import small_fs, sweep_fills_up  # noqa: F401 (fixtures)
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
        # a requeue that never happens is retried for cluster.requeue_window_s: the shortest there is
        window = ["cluster.requeue_window_s=10"] if mode == "never" else []
        run_clf("submit", *SLURM, f"sweep_dir={sweep}", *data.overrides, *TINY, *LONG, "train.max_steps=3000",
                *window, env={"PATH": path}, check=True)
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


@pytest.mark.timeout(2100)  # the fixture's waits: 3 x 240 + 3 x 420 s (most run at once)
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


@pytest.mark.timeout(2100)  # the same fixture (any of the three may set it up)
def test_a_requeue_that_failed_without_going_through_is_retried(requeues):
    sweep, final = requeues["lost"]
    assert final == {"run": "completed"}
    first, last = end_records(sweep)
    assert (first["reason"], last["reason"]) == ("requeued-preempt", "completed")
    assert first["requeue"]["tries"] == 2 and first["requeue"]["confirmed_by"] == "scontrol requeue"
    assert "Socket timed out" in first["requeue"]["errors"][0]


@pytest.mark.timeout(2100)  # the same fixture (any of the three may set it up)
def test_a_requeue_that_never_happens_fails_with_the_advice(requeues):
    sweep, final = requeues["never"]
    assert final == {"run": "failed"}
    (only,) = end_records(sweep)
    assert only["reason"] == "requeue-failed"
    assert "did not requeue job" in only["error"] and "presently disabled" in only["error"]
    assert f"clf resubmit {sweep}" in only["error"]
    row = json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)["runs"][0]
    assert row["state"] == "failed" and "clf resubmit" in row["detail"]


@pytest.mark.timeout(1500)  # waits: 180 + 300 + 300 s, the reference run's 300 s
def test_a_slurm_run_whose_disk_fills_fails_with_the_reason_and_resubmits_exactly(small_fs, disk_data,  # noqa: F811
                                                                                   disk_reference):
    sweep_fills_up(small_fs, disk_data, disk_reference, SLURM)


# -- the controller and accounting restarted or down (maintenance on a real cluster) --

STATE_DIR = Path(os.environ.get("CLF_SLURM_STATE", "/var/lib/clf-slurm"))  # slurm/local/lib.sh


def stop_daemon(name: str) -> None:
    """Stop one daemon of the local cluster (slurmctld, slurmdbd) and wait until it is gone."""
    pid = int((STATE_DIR / "run" / f"{name}.pid").read_text().strip())
    os.kill(pid, 15)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(),
             60, f"{name} (pid {pid}) to stop")


def start_cluster() -> None:
    """slurm/local/start.sh: starts what is not running and waits until every node is usable."""
    subprocess.run(["bash", str(REPO / "slurm" / "local" / "start.sh")], check=True, capture_output=True,
                   timeout=300)


def counts(sweep: Path) -> tuple[dict, list[str]]:
    table = json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)
    return table["counts"], table["notes"]


def status_table(sweep: Path) -> dict:
    return json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)


def all_cancelled_by_clf(sweep: Path, n: int) -> bool:
    """Every one of the ``n`` runs cancelled, by clf cancel's record, and status says sacct failed."""
    table = status_table(sweep)
    return (table["counts"] == {"cancelled": n} and any(n.startswith("sacct failed") for n in table["notes"])
            and all(r["detail"].startswith("cancelled by clf cancel at ") for r in table["runs"]))


# a small successive-halving search: 2 configurations, rungs of 10 and 20 steps (one run promoted)
SMALL_HALVING = ["search=halving", "search.eta=2", "search.min_steps=10", "train.max_steps=20", "model.num_heads=1,2"]


@pytest.mark.timeout(1500)  # waits: 300 + 240 + 120 + 60 + 300 + 120 s, start.sh's 300 s
def test_with_accounting_down_status_submit_cancel_and_halving_keep_working(tmp_path):
    data = make_dataset(tmp_path / "data")
    done = tmp_path / "done"
    run_clf("submit", *SLURM, f"sweep_dir={done}", *data.overrides, *TINY, "seed=0,1", check=True)
    assert set(wait_final(done, 300).values()) == {"completed"}
    stop_daemon("slurmdbd")
    long, search = tmp_path / "long", tmp_path / "search"
    try:
        assert subprocess.run(["sacct", "--noheader"], capture_output=True).returncode != 0
        # status: what the runs recorded, and a note naming the missing source
        now, notes = counts(done)
        assert now == {"completed": 2} and any(n.startswith("sacct failed") for n in notes), notes
        # submit needs only the controller: a sweep that runs and queues, and a halving search whose
        # decision jobs all run while sacct fails
        run_clf("submit", *SLURM, "cluster.array_parallelism=2", f"sweep_dir={long}", *data.overrides, *TINY, *LONG,
                "train.max_steps=100000", "seed=0,1,2", check=True)
        run_clf("submit", *SLURM, f"sweep_dir={search}", *data.overrides, *TINY, *SMALL_HALVING, check=True)
        wait_for(lambda: counts(long)[0] == {"running": 2, "pending": 1}, 240, "2 long runs to run and 1 to queue")
        # cancel: the running runs end 'interrupted' (or die before they say so), the queued one
        # never starts, and sacct cannot say CANCELLED: clf cancel's own record does
        run_clf("cancel", str(long), check=True)
        wait_for(lambda: all_cancelled_by_clf(long, 3), 120, "the 3 long runs to show cancelled by clf cancel")
        waited = run_clf("status", "--wait", "--json", str(long))
        assert waited.returncode == 1 and json.loads(waited.stdout)["counts"] == {"cancelled": 3}  # --wait ends
        # resubmitted (held), the runs are no longer cancelled: the record covers the jobs it cancelled
        run_clf("resubmit", str(long), "cluster.additional_parameters={hold: true}", check=True)
        assert counts(long)[0] == {"pending": 3}
        run_clf("cancel", str(long), check=True)
        wait_for(lambda: all_cancelled_by_clf(long, 3), 60, "the resubmitted runs to show cancelled")
        # the user's own scancel of queued tasks: only sacct could say cancelled, so unknown, never failed
        run_clf("resubmit", str(long), "cluster.additional_parameters={hold: true}", check=True)
        subprocess.run(["scancel", *sorted({job.split("_")[0] for job in job_ids(long)})], check=True)
        wait_for(lambda: counts(long)[0] == {"unknown": 3}, 60, "the runs scancelled by hand to show unknown")
        assert all("left the queue before it started; sacct" in r["detail"] for r in status_table(long)["runs"])
        # successive halving decides from the runs' metrics.json: every run reached its rung, one won
        record = wait_for(lambda: search_ended(search), 300, "the search to end")
        assert [len(rung["runs"]) for rung in record["rungs"]] == [2, 1], record
        assert all(score is not None for rung in record["rungs"] for score in rung["scores"].values()), record
        assert record["winner"] == record["rungs"][1]["runs"][0]
        final = wait_final(search, 120)
        assert set(final.values()) == {"completed"} and len(final) == 2 + 2, final  # 2 runs, 2 decision jobs
        assert any(n.startswith("sacct failed") for n in counts(search)[1])
    finally:
        for sweep in (long, search):  # nothing of a failed test runs on
            if (sweep / "sweep.json").exists():
                run_clf("cancel", str(sweep))
        start_cluster()
    assert counts(done)[0] == {"completed": 2} and counts(search)[0] == {"completed": 4}
    # accounting back: slurmctld hands it the jobs that ended meanwhile, and sacct says cancelled
    wait_for(lambda: counts(long)[0] == {"cancelled": 3}, 120, "sacct to record the scancelled runs")


@pytest.mark.timeout(1500)  # waits: 240 + 120 + 600 s, start.sh's 300 s
def test_a_restarted_controller_loses_no_run_of_a_running_and_queued_sweep(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=2000)
    sweep = tmp_path / "sweep"
    run_clf("submit", *SLURM, "cluster.array_parallelism=2", f"sweep_dir={sweep}", *data.overrides, *TINY, *LONG,
            "train.max_steps=1500", "seed=0,1,2,3", check=True)
    wait_for(lambda: counts(sweep)[0] == {"running": 2, "pending": 2}, 240, "2 runs to run and 2 to queue")
    stop_daemon("slurmctld")
    try:
        assert subprocess.run(["squeue"], capture_output=True).returncode != 0
        # status from sacct and the runs' own files; nothing is taken for failed
        now, notes = counts(sweep)
        assert any(n.startswith("squeue failed") for n in notes), notes
        # queued array tasks are not yet in accounting one by one: without squeue they are unknown
        assert set(now) <= {"running", "pending", "completed", "unknown"} and "failed" not in now, now
    finally:
        start_cluster()
    assert set(wait_final(sweep, 600).values()) == {"completed"}
    for run_dir in (sweep / "runs").iterdir():
        assert run_record(run_dir, "metrics.json")["steps"] == 1500
        assert "lost" not in [a.get("reason") for a in attempts(run_dir)]
