"""Workers (``cluster.workers``): the claim race between processes on real files, the time fit,
the status rules, and sweeps through local workers (each run equal to a run of its own; a run
whose process dies retried up to ``cluster.max_crashes``, then failed). The same on Slurm, with
lost nodes, is in test_workers_slurm.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from helpers import TINY, run_clf, same_weights, wait_final, wait_for

from clf.errors import ClfError
from clf.slurm import jobfiles
from clf.slurm.claims import Board
from clf.slurm.fit import Lifetime, Pace, decide
from clf.slurm.job import JobInfo, RunSpec
from clf.slurm.profile import check_cluster, cluster_from
from clf.slurm.status import decide as decide_rule
from clf.slurm.worker import Worker, WorkerSpec, final
from clf.slurm.worker_status import WORKER_RULES, WorkerSources
from clf.stop import StopRequest

LONG = ["train.max_steps=1500", "train.eval_every=100", "train.checkpoint_every=20", "train.log_every=50"]


def worker_for(sweep: Path, names: list[str], **settings) -> Worker:
    """A worker of a local submission (not started: its claims are taken by calling its methods)."""
    specs = tuple(RunSpec(sweep_dir=str(sweep), name=n, run_dir=str(sweep / "runs" / n), submission=0, kind="train",
                          config={"train": {"max_steps": 100}}) for n in names)
    info = JobInfo("local", str(os.getpid()), None, None, 0, "this-host", None, None)
    return Worker(WorkerSpec(sweep_dir=str(sweep), submission=0, runs=specs, **settings), info, StopRequest(),
                  time.time())


def drain(sweep: str, names: list[str], start, trained: str) -> None:
    """One racing worker: claim, 'train' (append its pid to the run's file), record, finish."""
    worker = worker_for(Path(sweep), names)
    start.wait()
    while (name := worker._claim_next()) is not None:
        run_dir = Path(sweep) / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / trained, "a") as out:
            out.write(f"{os.getpid()}\n")
        time.sleep(random.random() / 500)
        jobfiles.write_status(run_dir, {"state": "completed", "submission": 0})
        worker.board.finish(name)


def test_racing_workers_never_train_a_run_twice(tmp_path):
    """Six processes drain 30 runs, 15 rounds: every run is trained exactly once."""
    context = multiprocessing.get_context("fork")
    names = [f"run{i}" for i in range(30)]
    for round_ in range(15):
        sweep = tmp_path / f"round{round_}"
        start = context.Barrier(6)
        workers = [context.Process(target=drain, args=(str(sweep), names, start, "trained")) for _ in range(6)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(60)
            assert process.exitcode == 0
        counts = {n: len((sweep / "runs" / n / "trained").read_text().split()) for n in names}
        assert counts == {n: 1 for n in names}, f"round {round_}"
        assert Board.of(sweep, 0).finished() == set(names) and not Board.of(sweep, 0).claimed()


def test_the_last_run_raced_for_many_times_is_trained_once(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_ in range(80):
        sweep = tmp_path / f"r{round_}"
        start = context.Barrier(6)
        workers = [context.Process(target=drain, args=(str(sweep), ["last"], start, "trained")) for _ in range(6)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(60)
        assert (sweep / "runs" / "last" / "trained").read_text().count("\n") == 1, f"round {round_}"


def test_a_claim_of_a_finished_run_is_given_up(tmp_path):
    worker = worker_for(tmp_path, ["a", "b"])
    jobfiles.write_status(tmp_path / "runs" / "a", {"state": "completed", "submission": 0})  # finished elsewhere
    assert worker._claim_next() == "b"
    assert worker.board.finished() == {"a"} and worker.board.claimed() == {"b"}
    assert final(worker.specs["a"]) and not final(worker.specs["b"])


def hold_lock(run_dir: str, held, release) -> None:
    from clf.train.lock import hold_run_dir

    with hold_run_dir(Path(run_dir), rank=0):
        held.set()
        release.wait(60)


def test_a_run_whose_trainer_still_holds_its_lock_is_neither_taken_over_nor_claimed(tmp_path):
    """A holder whose heartbeat stopped but whose trainer lives (a hung file server, say) keeps its run."""
    import socket
    import subprocess
    import sys

    from clf.slurm.claims import Holder

    taker, claimer = worker_for(tmp_path, ["a"]), worker_for(tmp_path, ["b"])  # two workers, one queue
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = Holder(worker="local-1", incarnation=0, host=socket.gethostname(), pid=int(gone.stdout))
    assert taker.board.try_claim("a", dead)
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    trainers = [context.Process(target=hold_lock, args=(str(tmp_path / "runs" / n), held, release)) for n in "ab"]
    try:
        for trainer in trainers:
            held.clear()
            trainer.start()
            assert held.wait(30)
        assert taker._claim_next() is None  # a's holder is dead, but its run's lock is held
        assert taker.board.claim_of("a").holder == dead  # given back to its holder
        assert not (tmp_path / "runs" / "a" / "attempts.jsonl").exists()
        assert claimer._claim_next() is None  # b: claimed, found locked, released
        assert taker.board.claimed() == {"a"}
    finally:
        release.set()
        for trainer in trainers:
            trainer.join(30)
    assert taker._claim_next() == "a" and claimer._claim_next() == "b"  # the trainers are gone


# ------------------------------------------------------------------------ time fit ---

def test_a_run_is_taken_only_if_it_fits_or_the_worker_is_fresh():
    now = 1_000_000.0
    pace = Pace(guess=0.5)
    fresh = Lifetime(end=now + 3600, limit_s=3600, warning_s=120, margin_s=60)
    late = Lifetime(end=now + 600, limit_s=3600, warning_s=120, margin_s=60)      # 420 s before the warning
    assert decide("a", 100, pace, late, now).take                                 # 10 + 50 s
    assert not decide("a", 1000, pace, late, now).take                            # 510 s > 420 s
    assert "left to a worker with more time" in decide("a", 1000, pace, late, now).why
    assert decide("a", 100_000, pace, fresh, now).take                            # longer than any limit
    assert "resumes in the next worker" in decide("a", 100_000, pace, fresh, now).why
    assert "not known yet" in decide("a", None, pace, fresh, now).why
    assert not decide("a", None, pace, late, now).take                            # an unknown length
    pace.add(seconds=20.0, steps=1000)                                            # measured: 0.02 s per step
    assert decide("a", 1000, pace, late, now).take and pace.measured
    gone = Lifetime(end=now + 150, limit_s=3600, warning_s=120, margin_s=60)
    assert not decide("a", 1, pace, gone, now).take                               # no time to start and checkpoint


def test_a_worker_with_too_little_time_left_claims_nothing(tmp_path):
    worker = worker_for(tmp_path, ["a", "b"], seconds_per_step=0.5)  # 100 steps: ~60 s
    worker.life = Lifetime(end=time.time() + 200, limit_s=3600, warning_s=120, margin_s=60)
    assert worker._claim_next() is None
    assert not worker.board.claimed() and "left to a worker with more time" in worker.state.why
    assert worker._should_end()  # not fresh, nothing fits: it ends (and requeues itself)
    worker.life = Lifetime(end=time.time() + 3600, limit_s=3600, warning_s=120, margin_s=60)
    assert worker._claim_next() == "a"


def test_worker_settings_are_checked():
    def check(**settings):
        check_cluster(cluster_from({"executor": "local", **settings}))

    check(workers=2, runs_per_worker=2)
    with pytest.raises(ClfError, match="runs_per_task > 1 exclude each other"):
        check(workers=2, runs_per_task=4)
    with pytest.raises(ClfError, match="single-process runs"):
        check(workers=2, tasks_per_node=2)
    with pytest.raises(ClfError, match="cluster.runs_per_worker=0 must be at least 1"):
        check(workers=1, runs_per_worker=0)
    with pytest.raises(ClfError, match="must be more than 3 heartbeats"):
        check(worker_heartbeat_s=30, worker_dead_after_s=60)
    with pytest.raises(ClfError, match="cluster.workers=-1 must not be negative"):
        check(workers=-1)


# --------------------------------------------------------------------- status rules ---

@pytest.mark.parametrize("sources, state, detail", [
    (dict(recorded="completed"), "completed", ""),
    (dict(recorded="failed", error="boom"), "failed", "boom"),
    (dict(recorded="running", holder="12_1", holder_alive=True), "running", "on worker 12_1"),
    (dict(recorded=None, workers_left=2, waiting="2 worker(s) running"), "pending", "waiting for a worker"),
    (dict(recorded="running", holder="12_1", holder_alive=False, workers_left=1), "requeued", "resumes"),
    (dict(recorded="requeued", error="its process died (signal SIGKILL) (1 of 5 crashes)", workers_left=1),
     "requeued", "its process died"),
    (dict(recorded="requeued", workers_left=0), "cancelled", "resubmit resumes it"),
    (dict(recorded="running", holder="12_1", holder_alive=False, workers_left=0), "failed", "its worker ended"),
    (dict(recorded=None, workers_left=0), "cancelled", "no worker is left"),
    (dict(recorded="running", holder="12_1", holder_alive=None, workers_left=None), "running", "held by worker"),
])
def test_worker_rules(sources, state, detail):
    fields = dict(recorded=None, error=None, holder=None, holder_alive=None, workers_left=None, waiting="")
    verdict = decide_rule(WORKER_RULES, WorkerSources(**{**fields, **sources}))
    assert verdict.state == state and detail in verdict.detail


# ------------------------------------------------------------- local worker sweeps ---

def record(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name).read_text()) if (run_dir / name).exists() else {}


def ends(run_dir: Path) -> list[str]:
    path = run_dir / "attempts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [a["reason"] for a in map(json.loads, lines) if a["event"] == "end"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # sweep 300 + 5 references x 100
def test_two_local_workers_of_two_slots_train_every_run_equal_to_a_run_of_its_own(dataset, tmp_path):
    sweep = tmp_path / "s"
    common = [*dataset.overrides, *TINY]  # one thread per run, as in a slot of a 2-slot worker
    out = run_clf("submit", f"sweep_dir={sweep}", *common, "seed=0,1,2,3,4", "cluster.workers=2",
                  "cluster.runs_per_worker=2", check=True).stdout
    assert "started 5 run(s) on this machine through 2 worker(s) (2 run(s) at a time each" in out
    names = [run["name"] for run in json.loads((sweep / "sweep.json").read_text())["runs"]]
    assert wait_final(sweep) == {name: "completed" for name in names}
    dirs = [sweep / "runs" / name for name in names]
    slots = {record(d, "status.json")["pid"] for d in dirs}
    assert 2 <= len(slots) <= 4  # 2 workers x 2 slots; a slot trains run after run
    board = Board.of(sweep, 0)
    assert board.finished() == set(names) and not board.claimed()
    assert {r["runs_done"] for r in board.worker_records()} <= set(range(6))
    assert sum(r["runs_done"] for r in board.worker_records()) == 5
    for i, (name, run_dir) in enumerate(zip(names, dirs)):
        assert ends(run_dir) == ["completed"]
        first = json.loads((run_dir / "attempts.jsonl").read_text().splitlines()[0])
        assert first["code"]["dir"] == str(sweep / "code" / "0")  # slots import the sweep's code snapshot
        alone = tmp_path / f"alone{i}"
        run_clf("train", *common, name, f"run_dir={alone}", check=True)
        same_weights(alone, run_dir)
        for key in ("dev_f1", "test_f1", "best_step", "steps"):
            assert record(alone, "metrics.json")[key] == record(run_dir, "metrics.json")[key], (name, key)
    table = run_clf("status", str(sweep), check=True).stdout
    assert "5 runs: 5 completed" in table and "workers of submission 0:" in table and "0 of 5 run(s) left" in table


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_whose_process_dies_is_retried_up_to_the_crash_limit_then_failed(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *dataset.overrides, *TINY, *LONG, "seed=0,1", "cluster.workers=1",
            "cluster.max_crashes=2", check=True)
    doomed, other = (sweep / "runs" / name for name in ("seed=0", "seed=1"))
    killed: list[int] = []
    for attempt in range(2):  # each time the run trains in a new process, that process is killed
        status = wait_for(lambda: (lambda s: s if s.get("state") == "running" and s.get("pid") not in killed
                                   else None)(record(doomed, "status.json")), 300, f"attempt {attempt + 1} to start")
        os.kill(status["pid"], signal.SIGKILL)
        killed.append(status["pid"])
    assert wait_final(sweep) == {"seed=0": "failed", "seed=1": "completed"}
    assert ends(doomed) == ["crashed", "crashed"] and ends(other) == ["completed"]
    error = record(doomed, "status.json")["error"]
    assert "its process died (signal SIGKILL)" in error and "died 2 times (cluster.max_crashes=2)" in error
    table = run_clf("status", str(sweep), check=True).stdout
    assert "died 2 times" in table and "1 failed" in table
    out = run_clf("resubmit", str(sweep), "--failed", check=True).stdout  # new workers for the failed run
    assert "resubmitted 1 run(s)" in out and "seed=0" in out
    assert wait_final(sweep) == {"seed=0": "completed", "seed=1": "completed"}
    assert ends(doomed) == ["crashed", "crashed", "completed"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cancel_checkpoints_a_workers_runs_and_resubmit_resumes_them(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *dataset.overrides, *TINY, *LONG, "seed=0,1,2", "cluster.workers=1",
            "cluster.runs_per_worker=2", check=True)
    dirs = [sweep / "runs" / f"seed={i}" for i in range(3)]
    wait_for(lambda: all(record(d, "metrics.json").get("steps", 0) >= 40 for d in dirs[:2]), 300,
             "two runs to train at once past step 40")
    assert record(dirs[2], "status.json") == {}  # the third waits for a free slot
    run_clf("cancel", str(sweep), check=True)
    assert wait_final(sweep) == {"seed=0": "cancelled", "seed=1": "cancelled", "seed=2": "cancelled"}
    table = run_clf("status", str(sweep), check=True).stdout
    assert table.count("stopped by a signal after a checkpoint") == 2 and "no worker is left to run it" in table
    assert not Board.of(sweep, 0).claimed()  # released: nothing is held by a worker that is gone
    run_clf("resubmit", str(sweep), check=True)
    assert wait_final(sweep) == {"seed=0": "completed", "seed=1": "completed", "seed=2": "completed"}
    assert ends(dirs[0]) == ["stopped-SIGTERM", "completed"] and ends(dirs[2]) == ["completed"]
    assert "resuming" in (dirs[0] / "train.log").read_text()
