"""``clf submit`` / ``status`` / ``cancel`` / ``resubmit`` against a real Slurm cluster (the local
one: slurm/local/start.sh). Without Slurm these tests skip, and fail when CI=true.

1. a 4-run sweep array completes; manifest, status.json, metrics.json, TensorBoard files; status
   says 4 completed (also without sacct); an aggregate job after it (raw job id, afterany) runs;
2. a running job preempted twice (scancel --signal=USR2, then scontrol requeue) resumes from its
   checkpoint and ends equal to an uninterrupted run;
3. a job whose time limit is shorter than its training completes through requeues (timeouts);
4. a run that raises ends FAILED with its error, the others complete, resubmit --failed reruns it;
5. the pipeline recipe (word2vec -> sweep afterok -> aggregate afterany) runs in order;
6. a 2-task DDP job through srun on gloo matches the 1-process result;
7. values that could inject commands are refused and nothing runs;
8. a 100-run sweep is submitted with one sbatch call; status answers for every run with one squeue
   and one sacct call (the times they take: bench/slurm_bench.py).

Long scenarios (1, 3, 6) are submitted together when the module starts and checked later; every
wait polls a state (status.json, sacct), never sleeps a fixed time. Slurm checks time limits (and
sends the USR2 warning) every 30 s: with ``timeout_min=1`` and ``signal_delay_s=10`` the warning
comes 20-50 s after a start and the kill 60-90 s after it, so each attempt of the timeout scenario
trains for 10-40 s and the scenario takes 2-3 minutes (alongside the others).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import (REPO, TINY, runs_with, assert_weights_close, attempt_times, checkpoint_step, clf_env, command_log, finish,
                     make_dataset, one_line_error, require_slurm, run_clf, same_weights, states, torchrun, wait_final,
                     wait_for)

# the local cluster's ordinary account (no class limits): slurm/local/USAGE.md
SLURM = ["cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1",
         "cluster.array_parallelism=4"]
LONG = ["train.eval_every=100", "train.checkpoint_every=50", "train.log_every=50"]


@pytest.fixture(scope="module", autouse=True)
def slurm():
    require_slurm()


pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def manifest(sweep: Path) -> dict:
    return json.loads((sweep / "sweep.json").read_text())


def job_ids(sweep: Path) -> list[str]:
    return [run["job_id"] for run in manifest(sweep)["runs"]]


def sacct_states(job: str) -> dict[str, str]:
    out = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job.split("_")[0],
                          "--format", "JobID,State"], capture_output=True, text=True, check=True).stdout
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if "|" in line}


def settled_sacct(jobs: list[str], timeout: float = 120) -> dict[str, str]:
    """sacct's states of ``jobs`` (tasks of one array) once every one of them is listed in a final
    state (the runs' own files say so a moment before the jobs end, and sacct may list some tasks
    before others reach the database)."""
    active = {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING"}

    def settled() -> dict[str, str] | None:
        now = sacct_states(jobs[0])
        ours = {job: now.get(job) for job in jobs}
        return ours if all(state and state not in active for state in ours.values()) else None

    return wait_for(settled, timeout, f"sacct to show jobs {', '.join(jobs)} ended")


def status_json(sweep: Path, env: dict | None = None) -> dict:
    return json.loads(run_clf("status", "--json", str(sweep), env=env, check=True).stdout)


def run_record(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text()) if (run_dir / name).exists() else {}


def attempts(run_dir: Path) -> list[dict]:
    path = run_dir / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def cleanup():
    """Sweeps whose jobs are cancelled when the module ends (if still queued)."""
    sweeps: list[Path] = []
    yield sweeps
    for sweep in sweeps:
        if (sweep / "sweep.json").exists():
            run_clf("cancel", str(sweep))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm-data")
    return make_dataset(root / "small"), make_dataset(root / "long", n_train=2000)


def submit(sweep: Path, cleanup: list, *overrides: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cleanup.append(sweep)
    # options last: they may end in `--job COMMAND -- ARGS`
    return run_clf("submit", *SLURM, f"sweep_dir={sweep}", *overrides, *options, check=True)


@pytest.fixture(scope="module")
def early(tmp_path_factory, data, cleanup):
    """The long scenarios, submitted together: a 4-run sweep, a job that outlives its time limit,
    a 2-task DDP job (and its 1-process reference, trained here meanwhile)."""
    small, long = data
    root = tmp_path_factory.mktemp("slurm-early")
    submit(root / "four", cleanup, *small.overrides, *TINY, "model.num_heads=1,2", "seed=0,1")
    # 40,000 steps (about 65 s on the quiet 2-core machine) outlast an attempt's 20-50 s before its
    # warning (6,000 once finished in one attempt); up to 30 requeues leave room for a loaded machine
    submit(root / "timeout", cleanup, *long.overrides, *TINY, *LONG, "train.max_steps=40000", "seed=0,1",
           "cluster.timeout_min=1", "cluster.signal_delay_s=10", "cluster.max_num_timeout=30")
    submit(root / "ddp", cleanup, *small.overrides, *TINY, "train.max_steps=40", "cluster.tasks_per_node=2")
    reference = run_clf("train", *small.overrides, *TINY, "train.max_steps=40", f"run_dir={root / 'ddp-reference'}")
    assert reference.returncode == 0, reference.stderr
    return root


@pytest.mark.timeout(1100)  # early's reference run 300 + runs 300 + sacct 120 + aggregate 300
def test_four_run_sweep_completes_with_its_records(early, cleanup, tmp_path):
    sweep = early / "four"
    ids = job_ids(sweep)
    assert len({i.split("_")[0] for i in ids}) == 1 and sorted(int(i.split("_")[1]) for i in ids) == [0, 1, 2, 3]
    results = tmp_path / "results" / "four"
    submit(tmp_path / "aggregate", cleanup, options=("--after-any", ids[0].split("_")[0], "--job", "aggregate",
                                                     "--", str(sweep), "--out", str(results)))
    assert wait_final(sweep, 300) == {f"model.num_heads={h},seed={s}": "completed" for h in (1, 2) for s in (0, 1)}
    m = manifest(sweep)
    assert m["profile"] == "slurm" and m["executor"] == "slurm" and m["name"] == "clf"
    assert m["code"]["git_sha"] and m["submissions"][0]["sbatch_calls"] == 1
    for run in m["runs"]:
        run_dir = sweep / "runs" / run["name"]
        status = run_record(run_dir, "status.json")
        assert status["state"] == "completed" and status["job_id"] == run["job_id"] and status["restarts"] == 0
        assert status["array_job_id"] == run["job_id"].split("_")[0]
        metrics = run_record(run_dir, "metrics.json")
        assert metrics["status"] == "completed" and metrics["steps"] == 50 and metrics["dev_f1"] > 0.8
        assert metrics["config"]["model"]["num_heads"] == int(run["name"].split(",")[0].split("=")[1])
        assert list((run_dir / "tb").glob("events.out.tfevents.*"))
        assert [a["event"] for a in attempts(run_dir)] == ["start", "end"]
    assert set(settled_sacct(ids).values()) == {"COMPLETED"}
    table = status_json(sweep)
    assert table["counts"] == {"completed": 4}
    assert all(r["dev_f1"] and r["steps"] == 50 for r in table["runs"])
    # without sacct: the runs' own files say completed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").symlink_to(shutil.which("squeue"))
    no_sacct = status_json(sweep, env={"PATH": str(bin_dir)})
    assert no_sacct["counts"] == {"completed": 4} and any("sacct" in note for note in no_sacct["notes"])
    # the aggregate job ran after the array (afterany on its raw job id)
    aggregate = tmp_path / "aggregate"
    assert wait_final(aggregate, 300) == {"aggregate": "completed"}
    assert manifest(aggregate)["submissions"][0]["dependency"] == f"afterany:{ids[0].split('_')[0]}"
    assert (results.parent / "four.csv").exists()
    assert max(attempt_times(sweep)[1]) <= min(attempt_times(aggregate)[0])


@pytest.mark.timeout(1200)  # steps 180 + requeue 120 + steps 180 + end 300 + reference 300
def test_preempted_twice_resumes_and_equals_an_uninterrupted_run(data, cleanup, tmp_path):
    _, long = data
    overrides = [*long.overrides, *TINY, *LONG, "train.max_steps=4000"]
    reference = subprocess.Popen([sys.executable, "-m", "clf", "train", *overrides, f"run_dir={tmp_path / 'ref'}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clf_env())
    sweep = tmp_path / "preempt"
    submit(sweep, cleanup, *overrides)
    run_dir, job = sweep / "runs" / "run", job_ids(sweep)[0]

    def steps_at_least(n: int, restarts: int):
        return lambda: (run_record(run_dir, "status.json").get("restarts") == restarts
                        and run_record(run_dir, "status.json").get("state") == "running"
                        and run_record(run_dir, "metrics.json").get("steps", 0) >= n)

    wait_for(steps_at_least(200, 0), 180, "the first attempt to pass step 200")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_for(lambda: run_record(run_dir, "status.json").get("state") == "requeued", 120, "the requeue")
    first = checkpoint_step(run_dir / "checkpoints" / "last.pt")
    wait_for(steps_at_least(first + 200, 1), 180, "the second attempt to pass 200 more steps")
    subprocess.run(["scontrol", "requeue", job], check=True)
    assert wait_final(sweep, 300) == {"run": "completed"}
    records = attempts(run_dir)
    assert [a.get("reason") for a in records if a["event"] == "end"] == \
        ["requeued-preempt", "stopped-SIGTERM", "completed"]
    assert [a["restarts"] for a in records if a["event"] == "start"] == [0, 1, 2]
    log = (run_dir / "train.log").read_text()
    assert f"resuming {run_dir} at step {first}" in log and log.count("resuming") == 2
    assert status_json(sweep)["runs"][0]["restarts"] == 2
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    same_weights(tmp_path / "ref", run_dir)
    ref_metrics, metrics = run_record(tmp_path / "ref", "metrics.json"), run_record(run_dir, "metrics.json")
    for key in ("dev_f1", "test_f1", "dev_accuracy", "best_step", "steps"):
        assert ref_metrics[key] == metrics[key], key


@pytest.mark.timeout(800)  # runs 300 + sacct 120 + rerun 300
def test_a_run_that_raises_fails_alone_and_resubmit_failed_reruns_only_it(data, cleanup, tmp_path):
    small, _ = data
    missing = tmp_path / "later" / "train.csv"
    copy = shutil.copy(small.train, tmp_path / "copy.csv")
    sweep = tmp_path / "fails"
    submit(sweep, cleanup, *small.overrides, *TINY, f"data.train={small.train},{copy},{missing}")
    final = wait_final(sweep, 300)
    [bad] = runs_with(sweep, f"data.train={missing}")
    assert final == {name: "failed" if name == bad else "completed" for name in final}
    row = next(r for r in status_json(sweep)["runs"] if r["name"] == bad)
    assert "train.csv" in row["detail"] and Path(row["log"]).exists()
    assert "train.csv" in run_record(sweep / "runs" / bad, "status.json")["error"]
    old = {run["name"]: run["job_id"] for run in manifest(sweep)["runs"]}
    ended = settled_sacct(list(old.values()))
    assert ended == {job: "FAILED" if job == old[bad] else "COMPLETED" for job in old.values()}
    table = run_clf("status", str(sweep), check=True).stdout
    assert "1 failed" in table and "train.csv" in table
    missing.parent.mkdir()
    shutil.copy(small.train, missing)
    result = run_clf("resubmit", str(sweep), "--failed", check=True)
    assert "resubmitted 1 run(s)" in result.stdout
    new = {run["name"]: run["job_id"] for run in manifest(sweep)["runs"]}
    assert {n for n in new if new[n] != old[n]} == {bad}
    assert manifest(sweep)["runs"][[r["name"] for r in manifest(sweep)["runs"]].index(bad)]["history"] == [old[bad]]
    assert set(wait_final(sweep, 300).values()) == {"completed"}
    assert "nothing to resubmit" in run_clf("resubmit", str(sweep), check=True).stdout


# a loaded machine needs many 1-minute attempts (18 at load 20): the wait, and pytest's own
# timeout above it, allow all 30 (pytest's default 600 s once cut the wait short at 37,423 steps);
# run alone (-k), this test also sets up early (its reference run: 300 s)
@pytest.mark.timeout(700)  # early's reference run 300 + the job 300
def test_ddp_job_with_two_tasks_matches_one_process(early):
    sweep = early / "ddp"
    assert wait_final(sweep, 300) == {"run": "completed"}
    run_dir = sweep / "runs" / "run"
    job = job_ids(sweep)[0]
    for rank in (0, 1):
        log = (sweep / "jobs" / f"{job}_{rank}_log.err").read_text()
        assert f"rank {rank} of 2 (gloo)" in log
    assert_weights_close(early / "ddp-reference", run_dir)
    assert run_record(run_dir, "metrics.json")["steps"] == 40


@pytest.mark.timeout(1200)  # step 150 180 + end 300 + reference (torchrun) 600
def test_ddp_job_preempted_resumes_equal_to_an_uninterrupted_two_rank_run(data, cleanup, tmp_path):
    """USR2 reaches both tasks; they agree on a step, rank 0 checkpoints and requeues the job."""
    _, long = data
    overrides = [*long.overrides, *TINY, *LONG, "train.max_steps=600"]
    reference = torchrun("train", *overrides, f"run_dir={tmp_path / 'ref'}")
    sweep = tmp_path / "ddp"
    submit(sweep, cleanup, *overrides, "cluster.tasks_per_node=2")
    run_dir, job = sweep / "runs" / "run", job_ids(sweep)[0]
    wait_for(lambda: run_record(run_dir, "metrics.json").get("steps", 0) >= 150, 180, "step 150")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    assert wait_final(sweep, 300) == {"run": "completed"}
    reasons = [a["reason"] for a in attempts(run_dir) if a["event"] == "end"]
    assert reasons == ["requeued-preempt", "completed"]
    assert "rank 1 of 2 (gloo)" in (sweep / "jobs" / f"{job}_1_log.err").read_text()
    finish(reference)
    assert_weights_close(tmp_path / "ref", run_dir, atol=0)


@pytest.mark.timeout(1400)  # pipeline.sh 120 + three stages 400 each
def test_pipeline_stages_run_in_dependency_order(data, cleanup, tmp_path):
    small, _ = data
    out = tmp_path / "pipeline"
    cleanup += [out / "w2v", out / "sweep", out / "aggregate"]
    env = dict(clf_env(), CLF=f"{sys.executable} -m clf", W2V_ARGS="vector_size=12 min_count=1 epochs=1")
    subprocess.run(["bash", str(REPO / "launch" / "pipeline.sh"), str(out), *SLURM, *small.overrides, *TINY[1:],
                    "model.num_heads=1,2"], check=True, env=env, capture_output=True, text=True, timeout=120)
    w2v_job = manifest(out / "w2v")["runs"][0]["job_id"]
    sweep_array = manifest(out / "sweep")["submissions"][0]["job_ids"][0]
    assert manifest(out / "sweep")["submissions"][0]["dependency"] == f"afterok:{w2v_job}"
    assert manifest(out / "aggregate")["submissions"][0]["dependency"] == f"afterany:{sweep_array}"
    for stage in ("w2v", "sweep", "aggregate"):
        assert set(wait_final(out / stage, 400).values()) == {"completed"}, stage
    assert max(attempt_times(out / "w2v")[1]) <= min(attempt_times(out / "sweep")[0])
    assert max(attempt_times(out / "sweep")[1]) <= min(attempt_times(out / "aggregate")[0])
    assert (out / "results" / "sweep.csv").exists()


INJECTIONS = [
    "cluster.partition='debug\ntouch {pwned}'",
    "cluster.account='clf;touch {pwned}'",
    "cluster.qos='$(touch {pwned})'",
    "cluster.setup=['touch {pwned}; true']",
    "cluster.setup=['echo `touch {pwned}`']",
    "+cluster.additional_parameters.comment='x\ntouch {pwned}'",
    "name='x$(touch {pwned})'",
]


def our_jobs(name: str) -> str:
    live = subprocess.run(["squeue", "--noheader", "--name", name], capture_output=True, text=True).stdout
    done = subprocess.run(["sacct", "--noheader", "--allocations", "--name", name, "--starttime", "now-1hour"],
                          capture_output=True, text=True).stdout
    return (live + done).strip()


@pytest.mark.parametrize("injection", INJECTIONS)
def test_injected_commands_are_refused_and_nothing_runs(data, tmp_path, injection):
    small, _ = data
    pwned, tag = tmp_path / "pwned", uuid.uuid4().hex[:8]
    name = f"inj-{tag}"
    result = run_clf("submit", *SLURM, f"sweep_dir={tmp_path / 's'}", f"name={name}", *small.overrides,
                     injection.format(pwned=pwned))
    assert result.returncode == 2 and "is not allowed" in one_line_error(result)
    assert not (tmp_path / "s").exists() and not pwned.exists()
    assert our_jobs(f"clf-{name}") == ""


def test_injection_through_a_profile_file_is_refused(data, tmp_path, cleanup):
    """A malicious conf/cluster/*.yaml, and a benign twin that does reach Slurm (held, then cancelled)."""
    small, _ = data
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    pwned, name = tmp_path / "pwned", f"inj-{uuid.uuid4().hex[:8]}"
    (conf / "cluster" / "evil.yaml").write_text(
        f'name: evil\nexecutor: slurm\naccount: clf\nmem_gb: 1\ncpus_per_task: 1\npartition: "debug\\ntouch {pwned}"\n')
    (conf / "cluster" / "benign.yaml").write_text(
        "name: benign\nexecutor: slurm\naccount: clf\nmem_gb: 1\ncpus_per_task: 1\npartition: debug\n"
        "additional_parameters: {hold: true}\n")
    env = {"CLF_CONF_DIR": str(conf)}
    evil = run_clf("submit", "cluster=evil", f"sweep_dir={tmp_path / 'evil'}", f"name={name}", *small.overrides,
                   env=env)
    assert evil.returncode == 2 and "cluster.partition" in one_line_error(evil)
    cleanup.append(tmp_path / "benign")
    run_clf("submit", "cluster=benign", f"sweep_dir={tmp_path / 'benign'}", f"name={name}", *small.overrides,
            env=env, check=True)
    assert f"clf-{name}" in subprocess.run(["squeue", "--noheader", "--format=%j", "--name", f"clf-{name}"],
                                           capture_output=True, text=True).stdout
    run_clf("cancel", str(tmp_path / "benign"), check=True)
    assert not pwned.exists() and not (tmp_path / "evil").exists()


def test_hundred_runs_one_sbatch_call_and_one_query_of_each_kind_for_status(data, cleanup, tmp_path):
    """How long they take is measured by bench/slurm_bench.py (bench/RESULTS_slurm.md)."""
    small, _ = data
    env, calls = command_log(tmp_path / "bin", "sbatch", "squeue", "sacct")
    sweep = tmp_path / "hundred"
    cleanup.append(sweep)
    result = run_clf("submit", *SLURM, f"sweep_dir={sweep}", "+cluster.additional_parameters.hold=true",
                     *small.overrides, "model.num_heads=1,2,4,8", "seed=range(25)", env=env)
    assert result.returncode == 0, result.stderr
    assert len(calls("sbatch")) == 1 and manifest(sweep)["submissions"][0]["sbatch_calls"] == 1
    ids = job_ids(sweep)
    assert len(ids) == 100 and len({i.split("_")[0] for i in ids}) == 1
    before = {command: len(calls(command)) for command in ("squeue", "sacct")}
    table = run_clf("status", str(sweep), env=env, check=True).stdout
    # every run's state, from one squeue and one sacct call for the whole array (not one per run)
    assert "100 runs: 100 pending" in table and table.count("held by you") == 100
    assert {command: len(calls(command)) - before[command] for command in before} == {"squeue": 1, "sacct": 1}
    array = ids[0].split("_")[0]
    assert all(f"--jobs {array} " in line for line in calls("squeue")[before["squeue"]:] + calls("sacct")[before["sacct"]:])
    run_clf("cancel", str(sweep), check=True)
    assert wait_for(lambda: status_json(sweep)["counts"] == {"cancelled": 100}, 60, "100 cancelled runs")
    assert states(sweep) == {name: "cancelled" for name in states(sweep)}


@pytest.mark.timeout(2500)  # early's reference run 300 + requeues 1950 + sacct 120
def test_time_limits_are_survived_through_requeues(early):
    """Two array tasks, each requeued (same task id, same pickle) until its training is done. Last
    in the module: its minutes of time limits pass while the tests above run."""
    sweep = early / "timeout"
    assert wait_final(sweep, 1950) == {"seed=0": "completed", "seed=1": "completed"}
    for run, job in zip(("seed=0", "seed=1"), job_ids(sweep)):
        run_dir = sweep / "runs" / run
        records = attempts(run_dir)
        reasons = [a["reason"] for a in records if a["event"] == "end"]
        assert reasons[-1] == "completed" and len(reasons) >= 2
        assert set(reasons[:-1]) == {"requeued-timeout"}
        assert {a["job_id"] for a in records} == {job} and "_" in job
        assert [a["restarts"] for a in records if a["event"] == "start"] == list(range(len(reasons)))
        assert run_record(run_dir, "status.json")["restarts"] == len(reasons) - 1
        assert run_record(run_dir, "metrics.json")["steps"] == 40000
        assert (run_dir / "train.log").read_text().count("resuming") == len(reasons) - 1
    assert set(settled_sacct(job_ids(sweep)).values()) == {"COMPLETED"}
