"""The local executor's runner: ``python -m clf.slurm.local_runner SWEEP_DIR SUBMISSION``.

``clf submit cluster=local`` starts it detached (its own session, output to
``jobs/runner-N.log``) and returns at once. It waits for the sweeps named by ``--after``, then
starts the submission's runs through submitit's ``LocalExecutor``, ``array_parallelism`` at a
time (each with ``tasks_per_node`` processes; the executor's controller sends USR2 before
``timeout_min`` and restarts a task that asks to be requeued). SIGTERM (``clf cancel``, sent to
its whole process group) stops it: running runs checkpoint and stop, queued ones are marked
cancelled.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from clf.compat.submitit import local_process
from clf.slurm import jobfiles
from clf.slurm.launch import make_spec, submission_tasks, task_of
from clf.slurm.manifest import Manifest, RunEntry
from clf.slurm.pack import chunks
from clf.slurm.profile import cluster_from, local_parameters
from clf.slurm.status import ACTIVE, recorded_status, sweep_status

POLL_S = 0.5
DEPENDENCY_POLL_S = 2.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _mark(manifest: Manifest, run: RunEntry, state: str, error: str) -> None:
    jobfiles.write_status(manifest.run_dir(run), {"state": state, "error": error, "submission": run.submission,
                                                  "executor": "local"})


def dependency_state(after: dict[str, list[str]]) -> tuple[bool, str]:
    """(ready, why not ready or why never): afterok needs every run completed, afterany ended."""
    for kind in ("afterok", "afterany"):
        for sweep_dir in after.get(kind, []):
            states = [run.state for run in sweep_status(Manifest.load(sweep_dir)).runs]
            bad = sum(1 for s in states if s in (jobfiles.FAILED, jobfiles.CANCELLED))
            if kind == "afterok" and bad:
                return False, f"never: {bad} run(s) of {sweep_dir} did not complete"
            if any(s not in jobfiles.FINAL_STATES for s in states):
                return False, f"waiting for {sweep_dir}"
    return True, ""


def runs_ended(sweep_dir: str, names: list[str]) -> tuple[bool, str]:
    """(whether these runs of the sweep have all ended, whatever their state; what is awaited)."""
    if not names:
        return True, ""
    ended = {run.name for run in sweep_status(Manifest.load(sweep_dir)).runs if run.state in jobfiles.FINAL_STATES}
    waiting = [name for name in names if name not in ended]
    return not waiting, f"waiting for {len(waiting)} run(s) of this sweep"


def wait_for_dependencies(after: dict[str, list[str]], stop: threading.Event, sweep_dir: str = "",
                          after_runs: list[str] | None = None) -> str | None:
    """None when the sweeps in ``after`` and the runs ``after_runs`` of this sweep allow starting;
    else why this submission never starts."""
    while not stop.is_set():
        ready, why = dependency_state(after)
        if ready:
            ready, why = runs_ended(sweep_dir, after_runs or [])
        if ready:
            return None
        if why.startswith("never"):
            return f"dependency failed ({why[7:]})"
        stop.wait(DEPENDENCY_POLL_S)
    return "cancelled before it started"


def _finished(manifest: Manifest, run: RunEntry, exit_code: Any) -> None:
    """A run whose controller ended without a final record (killed, crashed) is failed."""
    recorded = recorded_status(manifest, run)
    state = (recorded or {}).get("state")
    if recorded is None or state in ACTIVE:
        _mark(manifest, run, jobfiles.FAILED, f"the job exited (code {exit_code}) without recording a result")
    say(f"{run.name}: {(recorded_status(manifest, run) or {}).get('state')}")


def run_submission(manifest: Manifest, index: int, stop: threading.Event) -> None:
    import submitit

    submission = manifest.submissions[index]
    cluster = cluster_from(manifest.cluster)
    runs = [manifest.run(name) for name in submission.runs]
    blocked = wait_for_dependencies(submission.after, stop, manifest.sweep_dir, submission.after_runs)
    if blocked:
        say(f"not starting {len(runs)} run(s): {blocked}")
        for run in runs:
            _mark(manifest, run, jobfiles.CANCELLED, blocked)
        return
    executor = submitit.LocalExecutor(folder=manifest.jobs_dir, max_num_timeout=cluster.max_num_timeout)
    executor.update_parameters(**local_parameters(cluster))
    specs = [make_spec(manifest, run, cluster, index) for run in runs]
    if submission.workers:  # every worker drains the whole queue; they all run at once
        tasks, _ = submission_tasks(manifest, runs, specs, cluster, index)
        queue = deque(([], task) for task in tasks)
        parallel = len(tasks)
    else:
        queue = deque(zip(chunks(runs, cluster.runs_per_task), task_of(specs, cluster.runs_per_task)))
        parallel = cluster.array_parallelism
    running: list[tuple[list[RunEntry], Any]] = []
    while queue or running:
        if stop.is_set():
            for group, _ in queue:
                for run in group:
                    _mark(manifest, run, jobfiles.CANCELLED, "cancelled before it started")
            queue.clear()
        while queue and len(running) < parallel:
            group, task = queue.popleft()
            job = executor.submit(*task)
            say(f"{', '.join(run.name for run in group) or 'worker'}: started (job {job.job_id})")
            running.append((group, job))
        for item in list(running):
            group, job = item
            process = local_process(job)
            if stop.is_set() and process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)  # the controller forwards it to the tasks
            if job.done():
                running.remove(item)
                for run in group:
                    _finished(manifest, run, process.returncode if process else None)
        stop.wait(POLL_S)


def main(argv: list[str]) -> int:
    sweep_dir, index = Path(argv[0]), int(argv[1])
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        say(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handle)
    say(f"runner for {sweep_dir}, submission {index}")
    run_submission(Manifest.load(sweep_dir), index, stop)
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
