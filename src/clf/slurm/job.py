"""What runs inside a job (Slurm or local): one run of a sweep, with its record.

submitit unpickles a ``RunSpec`` and calls ``run_job(spec)`` in every task of the job. The run
resumes from its run directory when a checkpoint is there. submitit's own USR2 handler would
checkpoint from inside the signal handler, in the middle of a training step; instead, jobs
follow clf's one stop protocol (``clf.stop``): ``StopRequest`` replaces submitit's handlers, the
training loop checkpoints at the next step boundary and returns 'interrupted', and then, for USR2
(Slurm's warning before a time limit or a preemption), rank 0 records the attempt and requeues
the job (``clf.slurm.requeue``: a failed ``scontrol requeue`` is checked against the job's record
and retried). The requeued task reruns the same pickled ``RunSpec``. Requeues are capped by
``max_num_timeout`` and ``max_num_preempt``. SIGTERM (``scancel``, or Slurm requeueing the job
itself) checkpoints and ends the attempt without a requeue.

An exception ends the job FAILED (submitit re-raises it, the task exits non-zero) with
``status.json`` 'failed' and the error's message. ``clf <command>`` jobs (``clf submit --job``)
run the same way, without checkpoints: USR2 interrupts and requeues them from the start.
A packed task (``cluster.runs_per_task``, ``clf.slurm.pack``) calls ``run_one`` for each of its runs.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clf.diskfull import DiskFull, as_disk_full
from clf.slurm import jobfiles
from clf.names import STOPPED
from clf.slurm.manifest import KIND_TRAIN
from clf.slurm.requeue import RequeueFailed, requeue_job
from clf.stop import EXIT_RESUMABLE, LOCAL_REQUEUE_EXIT, Stopped, StopRequest

log = logging.getLogger("clf.slurm.job")
TIME_LIMIT_MARGIN_S = 60      # Slurm checks time limits (and sends the USR2 warning) every ~30 s
REQUEUE_MIN_WINDOW_S = 10     # retries of a failed `scontrol requeue` stop after cluster.requeue_window_s or,
                              # near the time limit, at the limit (but try this long)
RELEASED = "released"         # a worker's run stopped at a checkpoint and went back to its queue
CRASHED = "crashed"           # a worker's run whose process died (the worker recorded it)
CRASH_REASONS = ("lost", CRASHED, "node-down")   # attempts that count towards cluster.max_crashes


@dataclass(frozen=True)
class RunSpec:
    """Everything a job needs (pickled by submitit; plain data only)."""

    sweep_dir: str
    name: str
    run_dir: str
    submission: int
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    timeout_min: int = 60
    signal_delay_s: int = 120
    max_num_timeout: int = 3
    max_num_preempt: int = 3
    requeue_window_s: int = 60   # cluster.requeue_window_s (the default for pickles made before it)
    cpus_per_task: int = 1
    workdir: str = ""         # clf <command> jobs run in the directory `clf submit` ran in


@dataclass(frozen=True)
class JobInfo:
    """Who and where this task is (from submitit's job environment)."""

    executor: str
    job_id: str
    array_job_id: str | None
    array_index: int | None
    rank: int
    node: str
    restarts: int | None      # Slurm's SLURM_RESTART_COUNT; None: count attempts
    log: str | None

    @classmethod
    def current(cls) -> "JobInfo":
        import submitit

        host = os.environ.get("SLURMD_NODENAME") or socket.gethostname()  # Slurm's node name
        try:
            env = submitit.JobEnvironment()
        except RuntimeError:  # not inside a submitit job (called directly)
            return cls("none", str(os.getpid()), None, None, 0, host, None, None)
        task = env.array_task_id
        restarts = os.environ.get("SLURM_RESTART_COUNT")
        return cls(env.cluster, env.job_id, env.array_job_id, int(task) if task is not None else None,
                   env.global_rank, host, int(restarts) if restarts else (0 if env.cluster == "slurm" else None),
                   str(env.paths.stderr))


class Journal:
    """Rank 0's ``status.json`` and ``attempts.jsonl`` for this attempt."""

    def __init__(self, spec: RunSpec, info: JobInfo) -> None:
        self.spec, self.info = spec, info
        self.run_dir = Path(spec.run_dir)
        self.started = time.time()
        self.previous = jobfiles.read_attempts(self.run_dir)
        mine = [a for a in self.previous if a.get("event") == "start" and a.get("job_id") == info.job_id]
        self.restarts = info.restarts if info.restarts is not None else len(mine)
        self.elapsed_before = sum(float(a.get("seconds") or 0) for a in self.previous if a.get("event") == "end")

    def _identity(self) -> dict[str, Any]:
        i = self.info
        return {"job_id": i.job_id, "array_job_id": i.array_job_id, "array_index": i.array_index,
                "executor": i.executor, "node": i.node, "pid": os.getpid(), "restarts": self.restarts,
                "submission": self.spec.submission}

    def start(self) -> None:
        from clf.slurm.snapshot import running_code

        last = self.previous[-1] if self.previous else {}
        if last.get("event") == "start":  # that attempt never ended: its node went down, or a SIGKILL
            jobfiles.append_attempt(self.run_dir, {**last, "event": "end", "start": last.get("time"),
                                                   "end": _iso(self.started), "reason": "lost"})
        jobfiles.append_attempt(self.run_dir, {"event": "start", **self._identity(), "time": _iso(self.started),
                                               "code": running_code()})
        self.status(jobfiles.RUNNING)
        jobfiles.reserve_room(self.run_dir)

    def status(self, state: str, error: str | None = None, seconds: float | None = None) -> None:
        elapsed = self.elapsed_before + (seconds if seconds is not None else 0.0)
        jobfiles.write_status(self.run_dir, {"state": state, "error": error, **self._identity(),
                                             "attempt_started": _iso(self.started), "elapsed_s": round(elapsed, 1),
                                             "log": self.info.log})

    def end(self, state: str, reason: str, error: str | None = None, extra: dict[str, Any] | None = None) -> None:
        ended = time.time()
        seconds = ended - self.started
        jobfiles.release_room(self.run_dir)
        jobfiles.append_attempt(self.run_dir, {"event": "end", **self._identity(), "start": _iso(self.started),
                                               "end": _iso(ended), "seconds": round(seconds, 2), "reason": reason,
                                               "error": error, **(extra or {})})
        self.status(state, error, seconds)

    def requeues(self, kind: str) -> int:
        """Requeues of this kind (timeout, preempt) already done for this job id."""
        return sum(1 for a in self.previous if a.get("event") == "end" and a.get("job_id") == self.info.job_id
                   and a.get("reason") == f"requeued-{kind}")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def error_text(exc: BaseException) -> str:
    """The exception as one line (a ClfError's message, else ``Type: message``)."""
    from clf.errors import ClfError, one_line

    text = one_line(exc)
    return text if isinstance(exc, ClfError) else f"{type(exc).__name__}: {text}"


def _record_failure(journal: Journal, spec: RunSpec, exc: BaseException) -> None:
    """The failure in the run's record; a full disk in its own words, also when the record itself
    cannot be written (then the job's log has the line, and Slurm's accounting the failure)."""
    full = as_disk_full(exc, spec.run_dir)
    if isinstance(full, DiskFull):
        message = full.in_sweep(spec.sweep_dir)
        log.error("run %s failed: %s", spec.name, message)
        try:
            journal.end(jobfiles.FAILED, "disk-full", message)
        except DiskFull as again:
            log.error("run %s: its record could not be written either: %s", spec.name, again.in_sweep(spec.sweep_dir))
        return
    journal.end(jobfiles.FAILED, "failed", error_text(exc))
    log.error("run %s failed:\n%s", spec.name, traceback.format_exc())


def _add_file_log(spec: RunSpec, info: JobInfo) -> logging.Handler | None:
    """Rank 0 of a training run logs to its ``train.log`` (removed after the run: a task may run more)."""
    if spec.kind != KIND_TRAIN or info.rank != 0:
        return None
    from clf.commands.train import add_file_log

    return add_file_log(Path(spec.run_dir))


def _train(spec: RunSpec, stop: StopRequest) -> tuple[str, str | None]:
    """Train or resume; ('completed' | 'interrupted', the signal that stopped it)."""
    from clf.config.compose import from_yaml
    from clf.train.loop import train

    cfg = from_yaml(json.dumps(spec.config))  # JSON is YAML
    if cfg.train.num_threads is None:
        cfg.train.num_threads = max(1, spec.cpus_per_task)
    result = train(cfg, Path(spec.run_dir), stop)
    return result.status, stop.signal_name


def _command(spec: RunSpec, stop: StopRequest) -> tuple[str, str | None]:
    """``clf <argv>`` in this process, stopped at once by a signal; a non-zero exit status raises."""
    name, *args = spec.argv
    if spec.workdir:
        os.chdir(spec.workdir)
    try:
        with stop.raising():
            code = importlib.import_module(f"clf.commands.{name.replace('-', '_')}").main(list(args))
    except KeyboardInterrupt as stopped:  # clf.stop.Stopped, or a second Ctrl-C
        return jobfiles.INTERRUPTED, stopped.signal_name if isinstance(stopped, Stopped) else "SIGINT"
    if code:
        raise RuntimeError(f"clf {' '.join(spec.argv)} exited with status {code}")
    return jobfiles.COMPLETED, None


def _near_time_limit(spec: RunSpec, started: float) -> bool:
    left = spec.timeout_min * 60 - (time.time() - started)
    return left <= spec.signal_delay_s + TIME_LIMIT_MARGIN_S


def _requeue(info: JobInfo, spec: RunSpec, task_started: float) -> dict[str, Any]:
    """Ask Slurm to requeue this job and confirm it did (``clf.slurm.requeue``); the fields for
    attempts.jsonl. Locally, exiting with LOCAL_REQUEUE_EXIT is the request."""
    if info.executor != "slurm":
        return {}
    left = spec.timeout_min * 60 - (time.time() - task_started)  # Slurm kills the job at its limit
    deadline = max(REQUEUE_MIN_WINDOW_S, min(spec.requeue_window_s, left - TIME_LIMIT_MARGIN_S / 2))
    return requeue_job(info.job_id, info.restarts or 0, deadline_s=deadline).record()


def _node_down(node: str) -> bool:
    try:
        out = subprocess.run(["scontrol", "show", "node", node, "--oneliner"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(r"\bState=\S*DOWN", out) is not None


def _after_interrupt(spec: RunSpec, info: JobInfo, journal: Journal | None, signal_name: str | None,
                     task_started: float, requeue: bool = True) -> dict[str, Any]:
    """USR2: requeue (within the caps; exits) or give up (raises); SIGTERM/SIGINT: end the attempt.
    ``requeue=False`` (a worker's slot): USR2 ends the attempt too; the worker releases the run."""
    if signal_name == "SIGUSR2" and not requeue:
        if journal:
            journal.end(jobfiles.REQUEUED, RELEASED)
        return {"status": jobfiles.INTERRUPTED, "signal": signal_name}
    if signal_name != "SIGUSR2":
        if journal:
            lost = info.executor == "slurm" and _node_down(info.node)  # Slurm kills (SIGTERM) a DOWN node's jobs
            journal.end(jobfiles.INTERRUPTED, "node-down" if lost else f"stopped-{signal_name or 'signal'}")
        return {"status": jobfiles.INTERRUPTED, "signal": signal_name}
    if journal is None:  # ranks > 0: rank 0 requeues the job (and this task with it)
        raise SystemExit(EXIT_RESUMABLE)
    kind = "timeout" if _near_time_limit(spec, task_started) else "preempt"
    limit = spec.max_num_timeout if kind == "timeout" else spec.max_num_preempt
    done = journal.requeues(kind)
    if done >= limit:
        message = (f"{'time limit' if kind == 'timeout' else 'preemption'} after {done} requeues "
                   f"(cluster.max_num_{kind}={limit}); `clf resubmit {spec.sweep_dir}` continues from the checkpoint")
        journal.end(jobfiles.FAILED, f"gave-up-{kind}", message)
        raise RuntimeError(message)
    log.warning("requeueing %s after %s (%d of %d)", info.job_id, kind, done + 1, limit)
    try:
        how = _requeue(info, spec, task_started)
    except RequeueFailed as exc:
        journal.end(jobfiles.FAILED, "requeue-failed",
                    f"{exc}; `clf resubmit {spec.sweep_dir}` continues from the checkpoint")
        raise
    journal.end(jobfiles.REQUEUED, f"requeued-{kind}", extra=how)
    raise SystemExit(LOCAL_REQUEUE_EXIT if info.executor == "local" else EXIT_RESUMABLE)


def start_task() -> tuple[StopRequest, JobInfo]:
    """The stop protocol installed (first of all: Slurm's warning can come seconds after the
    start, and submitit's handlers must not see it), logging, and who this task is."""
    stop = StopRequest().install()
    from clf.cli import setup_logging

    setup_logging()
    return stop, JobInfo.current()


def ignore_late_warnings() -> None:
    """The task's outcome is decided: a late USR2 (Slurm's warning) must not kill the process while
    Python shuts down, which restores SIG_DFL for handled signals (not for ignored ones); seen as a
    FAILED job that had completed."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def run_one(spec: RunSpec, info: JobInfo, stop: StopRequest, task_started: float,
            requeue: bool = True) -> dict[str, Any]:
    """Run (or resume) one run with its record: returns when it completed, raises when it failed,
    requeues (SystemExit) or returns 'interrupted' when a signal stopped it (``requeue=False``:
    returns 'interrupted' after USR2 as well)."""
    journal = Journal(spec, info) if info.rank == 0 else None
    if journal:
        journal.start()
    log_handler = _add_file_log(spec, info)
    try:
        state, signal_name = _train(spec, stop) if spec.kind == KIND_TRAIN else _command(spec, stop)
    except BaseException as exc:
        if journal and not isinstance(exc, SystemExit):
            _record_failure(journal, spec, exc)
        raise
    finally:
        if log_handler is not None:
            logging.getLogger().removeHandler(log_handler)
            log_handler.close()
    if state in (jobfiles.COMPLETED, STOPPED):  # stopped: the job trained to its rung's budget, as asked
        if journal:
            journal.end(jobfiles.COMPLETED, "completed" if state == jobfiles.COMPLETED else "stopped-at-budget")
        return {"status": jobfiles.COMPLETED, "run_dir": spec.run_dir}
    if requeue:
        ignore_late_warnings()
    return _after_interrupt(spec, info, journal, signal_name, task_started, requeue)


def run_job(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume) one run of a sweep inside a job; see the module's docstring."""
    started = time.time()
    stop, info = start_task()
    result = run_one(spec, info, stop, started)
    ignore_late_warnings()
    return result
