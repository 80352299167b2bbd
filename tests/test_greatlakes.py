"""clf against the local cluster configured like Great Lakes (slurm/local/start.sh): several
nodes, Great Lakes' partitions with (counted, fake) GPUs, enforced accounting with the class
account's limits.

1. every ``greatlakes-*`` profile is accepted and completes a 2-run sweep on the class account;
2. a job without an account, or on an account root is not in, is refused by Slurm itself;
3. a GPU sweep with more parallelism than the class allows runs one job at a time, and
   ``clf status`` gives Slurm's reason in words;
4. a sweep larger than MaxArraySize is split into several arrays (one sbatch call each);
   array_parallelism bounds the whole sweep; status, cancel and resubmit work across them;
5. one run trained by ranks on two nodes (2x1, 2x2) equals a one-process run;
6. a node lost while a run trains (set DOWN; or its slurmd and the job killed): Slurm requeues
   the job, it resumes on another node and ends equal to an uninterrupted run.

Every wait polls for the expected set of jobs or runs in the expected state, with a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, clf_env, command_log, make_dataset, one_line_error, run_clf
from test_ddp import assert_weights_close
from test_slurm import (LONG, SLURM, attempts, cleanup, data, job_ids, manifest, run_record,  # noqa: F401
                        slurm, status_json, submit)
from test_sweep import REPO, same_weights, wait_final, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLASS = "si630f25_class"
PROFILES = sorted(p.stem for p in (REPO / "conf" / "cluster").glob("greatlakes-*.yaml"))
START = REPO / "slurm" / "local" / "start.sh"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}


def sacct_rows(job: str, fields: str) -> dict[str, list[str]]:
    """``sacct -X`` rows of ``job``'s array (or job): task id -> the fields' values."""
    out = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job,
                          "--format", f"JobID,{fields}"], capture_output=True, text=True, check=True).stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines() if "|" in line}


def hostnames(nodelist: str) -> list[str]:
    """A Slurm node list (``gl[3001-3002]``) as host names; none for an empty or unassigned list."""
    if not nodelist or nodelist.startswith("None"):
        return []
    return subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                          check=True).stdout.split()


def cluster_env(**settings: str) -> None:
    """Run slurm/local/start.sh with these settings (it reconfigures, or repairs, the cluster)."""
    result = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **settings))
    assert result.returncode == 0, result.stderr[-2000:]


def max_overlap(sweep: Path) -> int:
    """The most attempts of a sweep's runs that ran at the same time (from attempts.jsonl)."""
    intervals = []
    for path in (sweep / "runs").glob("*/attempts.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        intervals += [(r["start"], r["end"]) for r in records if r["event"] == "end"]
    return max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)


# ------------------------------------------------------------------------------ profiles ---

@pytest.fixture(scope="module")
def profile_sweeps(tmp_path_factory, data, cleanup):
    """A 2-run sweep per greatlakes-* profile on the class account, all submitted at once."""
    small, _ = data
    root = tmp_path_factory.mktemp("greatlakes")
    for name in PROFILES:
        cleanup.append(root / name)
        run_clf("submit", f"cluster={name}", f"cluster.account={CLASS}", "device=cpu", f"sweep_dir={root / name}",
                *small.overrides, *TINY, "seed=0,1", check=True)
    return root


@pytest.mark.parametrize("name", PROFILES)
def test_every_great_lakes_profile_completes_a_two_run_sweep(profile_sweeps, name):
    sweep = profile_sweeps / name
    assert wait_final(sweep, 400) == {"seed=0": "completed", "seed=1": "completed"}
    profile = manifest(sweep)["cluster"]
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 and all(v[0] in FINAL for v in r.values()) else None)(
        sacct_rows(job_ids(sweep)[0].split("_")[0], "State,Partition,Account,AllocTRES%80")), 60, "sacct rows")
    for state, partition, account, tres in rows.values():
        assert (state, partition, account) == ("COMPLETED", profile["partition"], CLASS)
        gpus = 1 if profile["gpus_per_node"] or profile["gres"] else 0
        assert (f"gres/gpu={gpus}" in tres) == bool(gpus), tres


def test_slurm_refuses_a_job_without_an_account_or_on_an_account_not_ours(data, tmp_path):
    small, _ = data
    for account, refusal in ((None, "no account given"), ("otherlab", "Invalid account")):
        setting = [f"cluster.account={account}"] if account else []
        result = run_clf("submit", "cluster=slurm", *setting, f"sweep_dir={tmp_path / str(account)}", *small.overrides)
        assert result.returncode == 2 and refusal in one_line_error(result)
        assert not (tmp_path / str(account) / "sweep.json").exists()


def test_class_limit_runs_one_gpu_job_at_a_time_and_status_says_why(data, cleanup, tmp_path):
    small, _ = data
    sweep = tmp_path / "limited"
    cleanup.append(sweep)
    run_clf("submit", "cluster=greatlakes-spgpu", f"cluster.account={CLASS}", "cluster.array_parallelism=4",
            f"sweep_dir={sweep}", *small.overrides, *TINY, "seed=0,1,2,3", check=True)

    def waiting_for_the_gpu() -> list[dict] | None:
        runs = status_json(sweep)["runs"]
        pending = [r for r in runs if r["state"] == "pending" and "GPU limit" in r["detail"]]
        return runs if pending and sum(r["state"] == "running" for r in runs) == 1 else None

    wait_for(waiting_for_the_gpu, 120, "one running run and the others waiting for the class's GPU")
    assert "your account's GPU limit is in use" in run_clf("status", str(sweep), check=True).stdout
    assert set(wait_final(sweep, 400).values()) == {"completed"}
    assert max_overlap(sweep) == 1


# ---------------------------------------------------------------------- MaxArraySize ---

@pytest.fixture
def small_max_array_size():
    """MaxArraySize=3 for one test, then the default again."""
    cluster_env(CLF_SLURM_MAX_ARRAY_SIZE="3")
    yield 3
    cluster_env()


@pytest.mark.timeout(1200)  # start.sh 300 before and 300 after + runs 400 + cancels 60 + 60
def test_a_sweep_larger_than_max_array_size_is_split_and_handled_as_one(small_max_array_size, data, cleanup,
                                                                         tmp_path):
    small, _ = data
    env, calls = command_log(tmp_path / "bin", "sbatch")
    sweep = tmp_path / "split"
    cleanup.append(sweep)
    two_at_a_time = [*(o for o in SLURM if not o.startswith("cluster.array_parallelism=")),
                     "cluster.array_parallelism=2"]
    run_clf("submit", *two_at_a_time, f"sweep_dir={sweep}", *small.overrides, *TINY,
            "seed=range(4)", env=env, check=True)
    submission = manifest(sweep)["submissions"][0]
    assert submission["sbatch_calls"] == 2 == len(submission["job_ids"]) == len(calls("sbatch"))
    arrays = [j.split("_")[0] for j in job_ids(sweep)]
    assert [arrays.count(a) for a in submission["job_ids"]] == [3, 1]
    assert set(wait_final(sweep, 400).values()) == {"completed"}
    assert max_overlap(sweep) <= 2  # array_parallelism bounds the whole sweep, across the arrays
    # held, cancelled and resubmitted across the pieces
    held = tmp_path / "held"
    cleanup.append(held)
    run_clf("submit", *SLURM, f"sweep_dir={held}", "+cluster.additional_parameters.hold=true", *small.overrides,
            "seed=range(7)", check=True)
    assert status_json(held)["counts"] == {"pending": 7}
    run_clf("cancel", str(held), check=True)
    wait_for(lambda: status_json(held)["counts"] == {"cancelled": 7}, 60, "7 cancelled runs")
    result = run_clf("resubmit", str(held), "cluster.additional_parameters={hold: true}", check=True)
    assert "resubmitted 7 run(s)" in result.stdout
    assert len(manifest(held)["submissions"][1]["job_ids"]) == 3
    assert status_json(held)["counts"] == {"pending": 7}
    run_clf("cancel", str(held), check=True)
    wait_for(lambda: status_json(held)["counts"] == {"cancelled": 7}, 60, "7 cancelled runs again")


# ------------------------------------------------------------------------ multi-node ---

@pytest.mark.timeout(800)  # reference 300 + the job 300 + sacct 60
@pytest.mark.parametrize("tasks_per_node", [1, 2])
def test_one_run_on_two_nodes_equals_one_process(data, cleanup, tmp_path, tasks_per_node):
    small, _ = data
    overrides = [*small.overrides, *TINY, "train.max_steps=30"]
    reference = run_clf("train", *overrides, f"run_dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr
    sweep = tmp_path / "nodes"
    submit(sweep, cleanup, *overrides, "cluster.nodes=2", f"cluster.tasks_per_node={tasks_per_node}")
    assert wait_final(sweep, 300) == {"run": "completed"}
    job = job_ids(sweep)[0]
    world = 2 * tasks_per_node
    for rank in range(world):
        assert f"rank {rank} of {world} (gloo)" in (sweep / "jobs" / f"{job}_{rank}_log.err").read_text()
    # slurmdbd may still hold a partial node list: wait for the expected two hosts, not the first answer
    wait_for(lambda: len(hostnames((sacct_rows(job, "NodeList").get(job) or [""])[0])) == 2, 60,
             "sacct to list the job's two nodes")
    run_dir = sweep / "runs" / "run"
    assert_weights_close(tmp_path / "ref", run_dir)
    ours, theirs = run_record(run_dir, "metrics.json"), run_record(tmp_path / "ref", "metrics.json")
    assert ours["steps"] == theirs["steps"] == 30
    assert ours["dev_f1"] == pytest.approx(theirs["dev_f1"], abs=0.01)


# ------------------------------------------------------------------------- lost node ---

def raw_job_id(job: str) -> str:
    """Slurm's own id of a job or array task (``12_3`` -> e.g. ``15``)."""
    return subprocess.run(["squeue", "--noheader", "--jobs", job, "--format", "%A"], capture_output=True,
                          text=True, check=True).stdout.split()[0]


def job_processes(raw: str) -> list[int]:
    """The slurmstepd and task processes of job ``raw`` on this machine."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if cmdline.startswith(f"slurmstepd: [{raw}.") or f"SLURM_JOB_ID={raw}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def kill_node(node: str, raw: str) -> None:
    """The node's slurmd and the job's processes die (SIGKILL), as when a node crashes."""
    pid = int(Path(f"/var/lib/clf-slurm/run/slurmd-{node}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    for pid in job_processes(raw):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def nodes_restored():
    """Whatever a test did to the nodes, start.sh brings every one back afterwards."""
    yield
    cluster_env()


@pytest.mark.timeout(1500)  # step 200 180 + again 240 + end 400 + reference 300 + start.sh after 300
@pytest.mark.parametrize("how", ["down", "killed"])
def test_a_lost_node_requeues_the_run_which_resumes_elsewhere_equal(nodes_restored, data, cleanup, tmp_path, how):
    _, long = data
    overrides = [*long.overrides, *TINY, *LONG, "train.max_steps=1500"]
    reference = subprocess.Popen([sys.executable, "-m", "clf", "train", *overrides, f"run_dir={tmp_path / 'ref'}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clf_env())
    sweep = tmp_path / "lost"
    submit(sweep, cleanup, *overrides)
    run_dir, job = sweep / "runs" / "run", job_ids(sweep)[0]
    status = wait_for(lambda: (lambda s: s if s.get("state") == "running" and run_record(
        run_dir, "metrics.json").get("steps", 0) >= 200 else None)(run_record(run_dir, "status.json")),
        180, "the run to pass step 200")
    node = status["node"]
    lost_at = time.monotonic()
    if how == "down":
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=clf-test"], check=True)
    else:
        kill_node(node, raw_job_id(job))
    again = wait_for(lambda: (lambda s: s if s.get("restarts") == 1 and s.get("state") == "running" else None)(
        run_record(run_dir, "status.json")), 240, "the run to run again")
    print(f"node {how}: training again on {again['node']} after {time.monotonic() - lost_at:.1f} s")
    assert again["node"] != node
    table = status_json(sweep)["runs"][0]
    assert table["restarts"] == 1
    assert wait_final(sweep, 400) == {"run": "completed"}
    records = attempts(run_dir)
    assert [(a["event"], a["node"]) for a in records] == [("start", node), ("end", node), ("start", again["node"]),
                                                           ("end", again["node"])]
    assert [a["reason"] for a in records if a["event"] == "end"] == \
        ["node-down" if how == "down" else "lost", "completed"]
    assert "resuming" in (run_dir / "train.log").read_text()
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    same_weights(tmp_path / "ref", run_dir)
    assert run_record(run_dir, "metrics.json")["dev_f1"] == run_record(tmp_path / "ref", "metrics.json")["dev_f1"]
