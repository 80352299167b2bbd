"""Workers on the local Slurm cluster configured like Great Lakes: a sweep drained by 2 worker jobs
on the class account (one sbatch call; every run equal to a run of its own; a sweep ``--after``
it); a GPU profile's workers run one at a time under the class's 1-GPU limit and status says
why; a worker's node lost mid-run (set DOWN, or its slurmd and processes killed): its run is
taken over and ends equal to an uninterrupted run. Claim races, the time fit and crash limits
are in test_workers.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, clf_env, command_log, run_clf, same_weights, wait_final, wait_for
from test_greatlakes import CLASS, cluster_env, kill_node, nodes_restored, raw_job_id  # noqa: F401 (fixture)
from test_slurm import LONG, attempts, cleanup, data, run_record, slurm  # noqa: F401 (fixtures)

from clf.slurm.claims import Board

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
FAST = ["cluster.worker_heartbeat_s=2", "cluster.worker_dead_after_s=60"]


def names(sweep: Path) -> list[str]:
    return [run["name"] for run in json.loads((sweep / "sweep.json").read_text())["runs"]]


def ends(run_dir: Path) -> list[str]:
    return [a["reason"] for a in attempts(run_dir) if a["event"] == "end"]


@pytest.mark.timeout(1200)  # two sweeps 300 + 300, references 4 x 100
def test_two_workers_on_the_class_account_drain_a_sweep_and_a_sweep_after_it(data, cleanup, tmp_path):
    small, _ = data
    env, calls = command_log(tmp_path / "bin", "sbatch")
    sweep, after = tmp_path / "w", tmp_path / "after"
    common = [*small.overrides, *TINY]
    cleanup += [sweep, after]
    run_clf("submit", "cluster=greatlakes-standard", f"cluster.account={CLASS}", "cluster.workers=2", *FAST,
            f"sweep_dir={sweep}", *common, "seed=0,1,2,3", env=env, check=True)
    assert len(calls("sbatch")) == 1  # one array of 2 workers for 4 runs
    run_clf("submit", "cluster=greatlakes-standard", f"cluster.account={CLASS}", "cluster.workers=1",
            f"sweep_dir={after}", "--after", str(sweep), *common, "seed=7", check=True)
    runs = names(sweep)
    assert wait_final(sweep) == {name: "completed" for name in runs}
    assert wait_final(after) == {"run": "completed"}  # a sweep of one run names it "run"
    first_ends = [a["end"] for name in runs for a in attempts(sweep / "runs" / name) if a["event"] == "end"]
    assert min(a["time"] for a in attempts(after / "runs" / "run") if a["event"] == "start") >= max(first_ends)
    workers = {run_record(sweep / "runs" / name, "status.json")["job_id"] for name in runs}
    assert 1 <= len(workers) <= 2 and all("_" in job for job in workers)  # tasks of the worker array
    for i, name in enumerate(runs):
        assert ends(sweep / "runs" / name) == ["completed"]
        alone = tmp_path / f"alone{i}"
        run_clf("train", *common, name, f"run_dir={alone}", check=True)
        same_weights(alone, sweep / "runs" / name)
        assert run_record(alone, "metrics.json")["test_f1"] == run_record(sweep / "runs" / name, "metrics.json")["test_f1"]
    table = run_clf("status", str(sweep), check=True).stdout
    assert "4 runs: 4 completed" in table and "workers of submission 0:" in table
    started = min(time.mktime(time.strptime(a["time"][:19], "%Y-%m-%dT%H:%M:%S")) for name in runs
                  for a in attempts(sweep / "runs" / name) if a["event"] == "start")
    for worker in Board.of(sweep, 0).worker_records():  # each knows its end from Slurm: 120 min after its start
        assert abs(worker["end"] - (started + 120 * 60)) < 60, worker


@pytest.mark.timeout(900)
def test_gpu_workers_run_one_at_a_time_on_the_class_account_and_status_says_why(data, cleanup, tmp_path):
    _, long = data
    sweep = tmp_path / "gpu"
    cleanup.append(sweep)
    run_clf("submit", "cluster=greatlakes-gpu", f"cluster.account={CLASS}", "cluster.workers=2",
            "cluster.array_parallelism=2", "device=cpu", f"sweep_dir={sweep}", *long.overrides, *TINY, *LONG,
            "train.max_steps=1000", "seed=0,1,2", check=True)
    wait_for(lambda: "your account's GPU limit is in use" in run_clf("status", str(sweep)).stdout, 300,
             "the second worker to wait for the class's GPU")
    assert wait_final(sweep) == {name: "completed" for name in names(sweep)}
    holders = {run_record(sweep / "runs" / name, "status.json")["job_id"] for name in names(sweep)}
    assert len(holders) == 1  # the one worker the GPU limit admits drained the queue alone


@pytest.mark.timeout(1500)  # step 200 180 + end 600 + reference 300 + start.sh 300
@pytest.mark.parametrize("how", ["down", "killed"])
def test_a_lost_worker_node_hands_its_run_to_another_worker_and_it_ends_equal(nodes_restored, data, cleanup,
                                                                              tmp_path, how):
    _, long = data
    overrides = [*long.overrides, *TINY, *LONG, "train.max_steps=1500"]
    reference = subprocess.Popen([sys.executable, "-m", "clf", "train", *overrides, "seed=0",
                                  f"run_dir={tmp_path / 'ref'}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, env=clf_env())
    sweep = tmp_path / "lost"
    cleanup.append(sweep)
    run_clf("submit", "cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1",
            "cluster.workers=2", *FAST, f"sweep_dir={sweep}", *overrides, "seed=0,1", check=True)
    run_dir = sweep / "runs" / "seed=0"
    status = wait_for(lambda: (lambda s: s if s.get("state") == "running" and run_record(
        run_dir, "metrics.json").get("steps", 0) >= 200 else None)(run_record(run_dir, "status.json")),
        180, "seed=0 to pass step 200")
    node, worker = status["node"], status["job_id"]
    lost_at = time.monotonic()
    if how == "down":
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=clf-test"], check=True)
    else:
        kill_node(node, raw_job_id(worker))
    assert wait_final(sweep, 600) == {"seed=0": "completed", "seed=1": "completed"}
    records = attempts(run_dir)
    starts = [a for a in records if a["event"] == "start"]
    print(f"node {how}: seed=0 again on {starts[-1]['node']} ({starts[-1]['job_id']}) after "
          f"{time.monotonic() - lost_at:.1f} s")
    assert starts[0]["node"] == node
    # the other worker (on any node: this cluster's nodes share one machine) or the lost worker's
    # job requeued by Slurm on a live node took it over
    taken_over = (starts[-1]["job_id"], starts[-1]["restarts"]) != (worker, starts[0]["restarts"])
    assert taken_over and (starts[-1]["job_id"] != worker or starts[-1]["node"] != node)
    assert ends(run_dir) == ["node-down" if how == "down" else "lost", "completed"]
    assert "resuming" in (run_dir / "train.log").read_text()
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    same_weights(tmp_path / "ref", run_dir)
    assert run_record(run_dir, "metrics.json")["dev_f1"] == run_record(tmp_path / "ref", "metrics.json")["dev_f1"]


@pytest.mark.timeout(1300)  # step 200 300 + end 600 + reference 300
def test_a_worker_warned_of_its_time_limit_releases_its_run_requeues_and_the_run_resumes_exactly(data, cleanup,
                                                                                                  tmp_path):
    _, long = data
    overrides = [*long.overrides, *TINY, *LONG, "train.max_steps=1500"]
    sweep = tmp_path / "warned"
    cleanup.append(sweep)
    run_clf("submit", "cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1",
            "cluster.workers=1", *FAST, f"sweep_dir={sweep}", *overrides, "seed=0,1", check=True)
    first = sweep / "runs" / "seed=0"
    status = wait_for(lambda: (lambda s: s if s.get("state") == "running" and run_record(
        first, "metrics.json").get("steps", 0) >= 200 else None)(run_record(first, "status.json")),
        300, "seed=0 to pass step 200")
    subprocess.run(["scancel", "--signal=USR2", status["job_id"]], check=True)  # Slurm's warning, early
    assert wait_final(sweep, 600) == {"seed=0": "completed", "seed=1": "completed"}
    assert ends(first) == ["released", "completed"] and ends(sweep / "runs" / "seed=1") == ["completed"]
    starts = [a for a in attempts(first) if a["event"] == "start"]
    assert starts[1]["restarts"] == starts[0]["restarts"] + 1  # the worker requeued itself and claimed it again
    assert "resuming" in (first / "train.log").read_text()
    reference = tmp_path / "reference"
    run_clf("train", *overrides, "seed=0", f"run_dir={reference}", check=True)
    same_weights(reference, first)
    assert run_record(reference, "metrics.json")["test_f1"] == run_record(first, "metrics.json")["test_f1"]
