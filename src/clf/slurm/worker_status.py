"""Where the runs of a worker submission stand (``cluster.workers``): from the run's own files, its
claim in the submission's queue (``clf.slurm.claims``: which worker holds it, its heartbeat) and
whether the workers still live (squeue's rows for the worker array; locally, the runner and the
holder's process). Like ``clf.slurm.status``, one rule table decides; the first rule that holds
gives the run's state.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from clf.slurm.claims import Board, Claim, local_holder_alive
from clf.slurm.jobfiles import CANCELLED, COMPLETED, FAILED, INTERRUPTED, PENDING, REQUEUED, RUNNING
from clf.slurm.manifest import Manifest, RunEntry, Submission
from clf.slurm.queue import QueueInfo, explain
from clf.slurm.status import ACTIVE, STOPPED, RunFiles, RunStatus, Rule, Verdict, row_status, decide, runner_alive

LIVE = ("RUNNING", "COMPLETING", "CONFIGURING")
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED")


@dataclass(frozen=True)
class WorkerSources:
    """What is known of one run of a worker submission."""

    recorded: str | None          # status.json's state (this submission's only)
    error: str | None             # status.json's error (a crash's account, a failure)
    holder: str | None            # the worker whose claim holds the run (None: not claimed)
    holder_alive: bool | None     # None: unknown (squeue did not answer, another host)
    workers_left: int | None      # workers running or queued (None: unknown)
    waiting: str                  # the workers' states, in words


def _pending(s: WorkerSources) -> Verdict:
    return Verdict(PENDING, f"waiting for a worker ({s.waiting})" if s.waiting else "waiting for a worker")


def _resumes(s: WorkerSources) -> Verdict:
    why = f"{s.error}; " if s.error else ""
    return Verdict(REQUEUED, f"{why}resumes from its checkpoint when a worker claims it ({s.waiting})")


WORKER_RULES: tuple[Rule, ...] = (
    Rule("the run recorded 'completed'", lambda s: s.recorded == COMPLETED, lambda s: Verdict(COMPLETED)),
    Rule("the run recorded 'failed'", lambda s: s.recorded == FAILED,
         lambda s: Verdict(FAILED, s.error or "failed", failure=True)),
    Rule("a live worker holds its claim", lambda s: s.holder is not None and s.holder_alive is True,
         lambda s: Verdict(RUNNING, f"on worker {s.holder}")),
    Rule("whether workers live is unknown", lambda s: s.workers_left is None,
         lambda s: Verdict(s.recorded if s.recorded in ACTIVE else PENDING,
                           f"held by worker {s.holder}" if s.holder else "")),
    Rule("workers are left and the run has trained before", lambda s: bool(s.workers_left) and (
        s.holder is not None or s.recorded in (RUNNING, REQUEUED, INTERRUPTED)), _resumes),
    Rule("workers are left", lambda s: bool(s.workers_left), _pending),
    Rule("no worker is left; the run stopped at a checkpoint", lambda s: s.recorded in (INTERRUPTED, REQUEUED),
         lambda s: Verdict(CANCELLED, STOPPED)),
    Rule("no worker is left; it was training", lambda s: s.holder is not None or s.recorded == RUNNING,
         lambda s: Verdict(FAILED, "its worker ended while it trained (killed?); `clf resubmit` resumes it",
                           failure=True)),
    Rule("otherwise: no worker is left to run it", lambda s: True,
         lambda s: Verdict(CANCELLED, "no worker is left to run it; `clf resubmit` runs it")),
)


@dataclass(frozen=True)
class Workers:
    """What is known of a submission's workers."""

    alive: dict[str, bool | None]    # worker -> whether it runs now (None: unknown)
    left: int | None                 # workers running or queued
    waiting: str                     # their states in words

    @classmethod
    def slurm(cls, submission: Submission, info: QueueInfo) -> "Workers":
        if info.squeue is None:
            return cls({}, None, "squeue did not answer")
        arrays = set(submission.job_ids)
        rows = {job: row for job, row in info.squeue.items() if job.split("_")[0] in arrays}
        running = [job for job, row in rows.items() if row.state in LIVE]
        queued = [(job, row) for job, row in rows.items() if row.state in QUEUED]
        words = [f"{len(running)} worker(s) running"] if running else []
        if queued:
            reasons = sorted({explain(row.reason) for _, row in queued} - {""})
            words.append(f"{len(queued)} queued" + (f": {'; '.join(reasons)}" if reasons else ""))
        return cls({job: True for job in running}, len(running) + len(queued), ", ".join(words))

    @classmethod
    def local(cls, submission: Submission) -> "Workers":
        alive = runner_alive(submission.runner)
        if alive is None:
            return cls({}, None, f"its runner runs on {(submission.runner or {}).get('host')}")
        return cls({}, submission.workers if alive else 0, "local workers" if alive else "")

    def holder_alive(self, claim: Claim, dead_after_s: float) -> bool | None:
        holder = claim.holder
        if holder is None or time.time() - claim.heartbeat > dead_after_s:
            return False if holder is not None else None
        if holder.worker.startswith("local-"):
            return local_holder_alive(holder)
        if not self.alive and self.left is None:
            return None
        return self.alive.get(holder.worker, False)


def merge(manifest: Manifest, runs: list[tuple[RunEntry, RunFiles]], submission: Submission, index: int,
          info: QueueInfo) -> list[RunStatus]:
    """The rows of the runs of worker submission ``index``."""
    board = Board.of(manifest.sweep_dir, index)
    claimed = board.claimed()
    workers = Workers.slurm(submission, info) if manifest.executor == "slurm" else Workers.local(submission)
    dead_after = float(manifest.cluster.get("worker_dead_after_s") or 600)
    rows = []
    for run, files in runs:
        claim = board.claim_of(run.name) if run.name in claimed else None
        record = files.recorded or {}
        sources = WorkerSources(recorded=record.get("state"), error=record.get("error"),
                                holder=claim.holder.worker if claim and claim.holder else None,
                                holder_alive=workers.holder_alive(claim, dead_after) if claim else None,
                                workers_left=workers.left, waiting=workers.waiting)
        verdict = decide(WORKER_RULES, sources)
        job = sources.holder if verdict.state == RUNNING else run.job_id
        rows.append(row_status(manifest, run, job, files, verdict))
    return rows


def summary(manifest: Manifest, rows: list[RunStatus]) -> list[str]:
    """Lines for ``clf status``: each worker of the latest worker submission, and the time left."""
    index = next((i for i in range(len(manifest.submissions) - 1, -1, -1) if manifest.submissions[i].workers), None)
    if index is None:
        return []
    board = Board.of(manifest.sweep_dir, index)
    names = set(manifest.submissions[index].runs)
    mine = [row for row in rows if row.name in names]
    lines = [f"workers of submission {index}:"]
    now = time.time()
    records = sorted(board.worker_records(), key=lambda r: str(r.get("worker")))
    for record in records:
        holding = ", ".join(record.get("holding") or []) or "nothing"
        pace = record.get("pace_s_per_step")
        pace_text = f"{pace:.3f} s/step{'' if record.get('pace_measured') else ' (first guess)'}" if pace else "-"
        age = now - float(record.get("updated") or now)
        lines.append(f"  {record.get('worker')} on {record.get('node')}: {record.get('why')}; holds {holding}; "
                     f"{record.get('runs_done', 0)} done; pace {pace_text}; updated {age:.0f} s ago")
    if not records:
        lines.append("  none has started yet")
    left = [row for row in mine if row.state not in (COMPLETED, FAILED, CANCELLED)]
    done = [row.elapsed_s for row in mine if row.state == COMPLETED and row.elapsed_s]
    slots = sum(int(r.get("slots") or 1) for r in records if r.get("holding")) or 1
    eta = f", about {statistics.median(done) * len(left) / slots / 60:.1f} min to go at the pace so far" \
        if left and done else ""
    lines.append(f"  {len(left)} of {len(mine)} run(s) left{eta}")
    return lines


def is_worker_run(manifest: Manifest, run: RunEntry) -> bool:
    return run.submission < len(manifest.submissions) and manifest.submissions[run.submission].workers > 0


def merge_all(manifest: Manifest, files: list[RunFiles], info: QueueInfo) -> dict[str, RunStatus]:
    """Rows of every run of the sweep whose submission has workers, by name."""
    by_submission: dict[int, list[tuple[RunEntry, RunFiles]]] = {}
    for run, f in zip(manifest.runs, files):
        if is_worker_run(manifest, run):
            by_submission.setdefault(run.submission, []).append((run, f))
    rows: dict[str, RunStatus] = {}
    for index, runs in by_submission.items():
        for row in merge(manifest, runs, manifest.submissions[index], index, info):
            rows[row.name] = row
    return rows
