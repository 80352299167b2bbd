"""Hand runs to an executor: Slurm job arrays (one ``sbatch`` call each), or a detached local
runner. Shared by ``clf submit`` and ``clf resubmit``.

A submission is one array unless it has more runs than the cluster's MaxArraySize: then it is
split into pieces of at most that size, each piece waiting (``afterany``) for the one before,
so that ``array_parallelism`` still bounds the whole sweep.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from clf.config.schema import ClusterConfig
from clf.errors import ClfError, one_line
from clf.slurm import jobfiles, profile
from clf.slurm.job import RunSpec
from clf.slurm.manifest import KIND_TRAIN, MANIFEST, Manifest, RunEntry, Submission, now_iso
from clf.slurm.queue import max_array_size, scancel

_JOB_ID = re.compile(r"\d+(_\d+)?")
AFTER_KINDS = ("afterok", "afterany")


def make_spec(manifest: Manifest, run: RunEntry, cluster: ClusterConfig, submission: int) -> RunSpec:
    return RunSpec(sweep_dir=manifest.sweep_dir, name=run.name, run_dir=str(manifest.run_dir(run)),
                   submission=submission, kind=run.kind, config=run.config, argv=tuple(run.argv),
                   timeout_min=cluster.timeout_min, signal_delay_s=cluster.signal_delay_s,
                   max_num_timeout=cluster.max_num_timeout, max_num_preempt=cluster.max_num_preempt,
                   requeue_window_s=cluster.requeue_window_s,
                   cpus_per_task=cluster.cpus_per_task, workdir=manifest.submit_dir)


def task_of(specs: list[RunSpec], runs_per_task: int) -> list[tuple[Callable[[Any], Any], Any]]:
    """What each array task calls: ``run_job(spec)``, or ``run_task`` of ``runs_per_task`` runs."""
    from clf.slurm.job import run_job
    from clf.slurm.pack import TaskSpec, chunks, run_task

    if runs_per_task == 1:
        return [(run_job, spec) for spec in specs]
    return [(run_task, TaskSpec(tuple(group))) for group in chunks(specs, runs_per_task)]


def worker_count(cluster: ClusterConfig, runs: list[RunEntry]) -> int:
    """How many worker jobs drain these runs (0: none; one task per run or group). Only training
    runs go through workers: a ``clf <command>`` job or a halving decision is one job."""
    if not cluster.workers or any(run.kind != KIND_TRAIN for run in runs):
        return 0
    return max(1, min(cluster.workers, -(-len(runs) // cluster.runs_per_worker)))


def worker_tasks(manifest: Manifest, specs: list[RunSpec], cluster: ClusterConfig, index: int,
                 count: int) -> list[tuple[Callable[[Any], Any], Any]]:
    """``count`` worker tasks, each draining the submission's whole queue (``clf.slurm.worker``)."""
    from clf.slurm.claims import Board
    from clf.slurm.worker import WorkerSpec, run_worker

    Board.of(manifest.sweep_dir, index).create()
    spec = WorkerSpec(sweep_dir=manifest.sweep_dir, submission=index, runs=tuple(specs),
                      slots=cluster.runs_per_worker, heartbeat_s=cluster.worker_heartbeat_s,
                      dead_after_s=cluster.worker_dead_after_s, max_crashes=cluster.max_crashes,
                      seconds_per_step=cluster.worker_seconds_per_step, timeout_min=cluster.timeout_min,
                      signal_delay_s=cluster.signal_delay_s,
                      max_requeues=cluster.max_num_timeout + cluster.max_num_preempt)
    return [(run_worker, spec)] * count


def submission_tasks(manifest: Manifest, runs: list[RunEntry], specs: list[RunSpec], cluster: ClusterConfig,
                     index: int) -> tuple[list[tuple[Callable[[Any], Any], Any]], Callable[[int], int]]:
    """The tasks a submission's job array runs, and which task trains the i-th run (workers: all
    of them; the first task's job id stands for the array)."""
    workers = worker_count(cluster, runs)
    if workers:
        return worker_tasks(manifest, specs, cluster, index, workers), lambda i: 0
    return task_of(specs, cluster.runs_per_task), lambda i: i // cluster.runs_per_task


def resolve_after(after: dict[str, list[str]], executor: str) -> str | None:
    """``--after``/``--after-any`` values (sweep directories or Slurm job ids) -> sbatch's
    ``--dependency`` (Slurm), or None (local: the runner waits for the sweeps itself)."""
    parts = []
    for kind in AFTER_KINDS:
        ids: list[str] = []
        for value in after.get(kind, []):
            if _JOB_ID.fullmatch(value):
                if executor != "slurm":
                    raise ClfError(f"--after {value}: a job id needs a Slurm profile; with cluster=local give the "
                                   "sweep directory")
                ids.append(value)
                continue
            other = Manifest.load(value)
            if other.executor != executor:
                raise ClfError(f"--after {value}: that sweep runs on {other.executor}, this one on {executor}")
            ids += sorted({r.array_job_id for r in other.runs if r.array_job_id})
        if ids:
            parts.append(f"{kind}:" + ":".join(ids))
    return ",".join(parts) if executor == "slurm" and parts else None


def runs_dependency(manifest: Manifest, names: list[str]) -> str | None:
    """sbatch's ``afterany`` on the current jobs of these runs of the sweep (None: none submitted)."""
    ids = sorted({manifest.run(name).array_job_id or "" for name in names} - {""}, key=int)
    return "afterany:" + ":".join(ids) if ids else None


def submit(manifest: Manifest, runs: list[RunEntry], cluster: ClusterConfig, kind: str,
           after: dict[str, list[str]] | None = None, after_runs: list[str] | None = None) -> Submission:
    """Submit ``runs`` as one submission; updates the runs and the manifest and saves it.
    ``after_runs``: runs of this sweep whose current jobs must end first (whatever their state)."""
    started = time.perf_counter()
    after = {kind: [value if _JOB_ID.fullmatch(value) else str(Path(value).absolute()) for value in values]
             for kind, values in (after or {}).items() if values}
    index = len(manifest.submissions)
    submission = Submission(time=now_iso(), kind=kind, runs=[r.name for r in runs], after=after, directory=os.getcwd(),
                            after_runs=list(after_runs or []))
    submission.dependency = resolve_after(after, cluster.executor)
    if after_runs and cluster.executor == "slurm":
        parts = [part for part in (submission.dependency, runs_dependency(manifest, after_runs)) if part]
        submission.dependency = ",".join(parts) or None
    specs = [make_spec(manifest, run, cluster, index) for run in runs]
    for run in runs:
        if run.job_id:
            run.history.append(run.job_id)
        run.set_job(None)
        run.submission = index
        if kind != "submit":  # replace the earlier submission's final state (aggregate, the local runner read it)
            record = {"state": jobfiles.PENDING, "error": None, "submission": index}
            jobfiles.write_status(manifest.run_dir(run), record)
    manifest.submissions.append(submission)
    submission.workers = worker_count(cluster, runs)
    if cluster.executor == "slurm":
        tasks, task_index = submission_tasks(manifest, runs, specs, cluster, index)
        task_ids = _submit_slurm(manifest, tasks, cluster, submission.dependency)
        job_ids = [task_ids[task_index(i)] for i in range(len(runs))]
        if submission.workers:  # a worker run is trained by whichever worker claims it: the array stands for it
            job_ids = [job_id.split("_")[0] for job_id in job_ids]
        for run, job_id in zip(runs, job_ids):
            run.set_job(job_id)
        submission.job_ids = sorted({j.split("_")[0] for j in job_ids}, key=int)
        submission.sbatch_calls = len(submission.job_ids)
        submission.seconds = round(time.perf_counter() - started, 3)
        try:
            manifest.save()
        except BaseException:  # (a full disk) jobs the sweep's manifest does not know must not run
            scancel(submission.job_ids)
            raise
    else:
        manifest.save()  # the runner reads its runs from the manifest
        submission.runner = _start_local_runner(manifest, index)
        submission.seconds = round(time.perf_counter() - started, 3)
        manifest.save()
    return submission


def pieces(count: int, max_array_size: int | None) -> list[range]:
    """Consecutive index ranges of at most ``max_array_size`` runs (one array each)."""
    size = max_array_size or count or 1
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def piece_dependency(dependency: str | None, previous: str | None) -> str | None:
    """The user's ``--after`` dependency, and after the previous piece (all must hold)."""
    parts = [part for part in (dependency, previous and f"afterany:{previous}") if part]
    return ",".join(parts) or None


def _submit_slurm(manifest: Manifest, tasks: list[tuple[Callable[[Any], Any], Any]], cluster: ClusterConfig,
                  dependency: str | None) -> list[str]:
    """Job arrays of ``tasks`` (a plain job when there is one), one ``sbatch`` call per piece;
    the job id of each task."""
    import submitit

    try:
        executor = submitit.SlurmExecutor(folder=manifest.jobs_dir, max_num_timeout=cluster.max_num_timeout)
    except RuntimeError as exc:
        raise ClfError(f"cluster={cluster.name} needs Slurm ({exc}); use cluster=local on this machine") from None
    os.environ[profile.VENV_VARIABLE] = sys.prefix  # jobs inherit the environment: setup lines can use it
    name = profile.job_name(manifest.name)
    job_ids: list[str] = []
    for piece in pieces(len(tasks), max_array_size() if len(tasks) > 1 else None):
        previous = job_ids[-1].split("_")[0] if job_ids else None
        executor.update_parameters(**profile.slurm_parameters(cluster, name, piece_dependency(dependency, previous)))
        try:  # submitit also prints sbatch's refusal: it is in the one-line error instead
            with contextlib.redirect_stderr(io.StringIO()), executor.batch():
                jobs = [executor.submit(*tasks[i]) for i in piece]
        except Exception as exc:  # sbatch's refusal (bad partition, account, limits, ...)
            if job_ids:  # no half-submitted sweep: the pieces already queued go
                scancel(sorted({j.split("_")[0] for j in job_ids}))
            raise ClfError(f"sbatch refused the job: {_sbatch_error(exc)}") from None
        job_ids += [job.job_id for job in jobs]
    return job_ids


def _sbatch_error(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower()]
    return " ".join(lines[:2]) if lines else one_line(exc)


def _start_local_runner(manifest: Manifest, index: int) -> dict[str, object]:
    """A detached ``clf.slurm.local_runner`` (own session, output to jobs/runner-N.log)."""
    manifest.jobs_dir.mkdir(parents=True, exist_ok=True)
    log_path = manifest.jobs_dir / f"runner-{index}.log"
    with open(log_path, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "clf.slurm.local_runner", manifest.sweep_dir, str(index)],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True)
    return {"pid": process.pid, "host": socket.gethostname(), "log": str(log_path)}


def check_sweep_paths(sweep_dir: Path, executor: str) -> None:
    """Paths that reach the sbatch script (logs under the sweep, the python executable)."""
    if executor == "slurm":
        profile.check_script_path(sweep_dir / "jobs", "sweep_dir")
        profile.check_python()
    if (sweep_dir / MANIFEST).exists():
        raise ClfError(f"{sweep_dir} already holds a sweep ({MANIFEST}): `clf resubmit {sweep_dir}` reruns its "
                       "unfinished runs; use another sweep_dir= for a new sweep")
