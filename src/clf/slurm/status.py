"""Where a sweep stands: one row per run, merged from squeue, sacct and the run's own files
(``status.json``, ``metrics.json``), or, for local sweeps, from the files and process liveness.

The merge rules are two tables, ``SLURM_RULES`` and ``LOCAL_RULES``: the first rule that holds
decides. In short: a run that recorded 'completed' is completed; otherwise squeue (jobs in the
queue, with the pending reason in words), then sacct (finished jobs), then what ``clf cancel``
recorded (``cancelled.json``: what says cancelled when sacct cannot), then ``status.json``. A
``status.json`` written by an earlier submission of the run is ignored.

However many runs, arrays and sweeps, one ``clf status`` asks Slurm once: one ``squeue`` and one
``sacct`` for every job of every sweep (``clf.slurm.queue``), started before the runs' files are
read so that Slurm answers meanwhile.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from clf.names import JOB_STATUS, METRICS
from clf.names import STOPPED as STOPPED_AT_BUDGET
from clf.slurm import cancels, jobfiles
from clf.slurm.jobfiles import CANCELLED, COMPLETED, FAILED, INTERRUPTED, PENDING, REQUEUED, RUNNING
from clf.slurm.manifest import Manifest, RunEntry
from clf.slurm.queue import QueueInfo, QueueRow, explain, start

UNKNOWN = "unknown"
LABEL_WIDTH = 60
STOPPED = "stopped by a signal after a checkpoint; resubmit resumes it"
ACTIVE = (PENDING, RUNNING, REQUEUED)
STATE_ORDER = (COMPLETED, RUNNING, REQUEUED, PENDING, FAILED, CANCELLED, UNKNOWN)
SLURM_STATES: dict[str, tuple[str, str]] = {
    "PENDING": (PENDING, ""), "CONFIGURING": (RUNNING, "starting"), "RUNNING": (RUNNING, ""),
    "COMPLETING": (RUNNING, "finishing"), "SUSPENDED": (RUNNING, "suspended"), "STOPPED": (RUNNING, "stopped"),
    "RESIZING": (RUNNING, ""), "SIGNALING": (RUNNING, ""), "STAGE_OUT": (RUNNING, "finishing"),
    "REQUEUED": (REQUEUED, ""), "REQUEUE_FED": (REQUEUED, ""),
    "REQUEUE_HOLD": (REQUEUED, "requeued and held: scontrol release JOBID"),
    "COMPLETED": (COMPLETED, ""), "FAILED": (FAILED, ""), "TIMEOUT": (FAILED, "time limit reached"),
    "OUT_OF_MEMORY": (FAILED, "out of memory: raise cluster.mem_gb"), "NODE_FAIL": (FAILED, "node failure"),
    "BOOT_FAIL": (FAILED, "node boot failure"), "DEADLINE": (FAILED, "deadline reached"),
    "PREEMPTED": (CANCELLED, "preempted"), "CANCELLED": (CANCELLED, "cancelled"), "REVOKED": (CANCELLED, "revoked"),
}


@dataclass
class RunStatus:
    name: str
    label: str
    state: str
    job_id: str | None = None
    restarts: int = 0
    steps: int | None = None
    total_steps: int | None = None
    dev_f1: float | None = None
    elapsed_s: float | None = None
    detail: str = ""
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Its fields (all flat): ``dataclasses.asdict`` deep-copies each, 0.1 s for 5,000 runs."""
        return dict(vars(self))


@dataclass
class SweepStatus:
    manifest: Manifest
    runs: list[RunStatus]
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {state: sum(1 for r in self.runs if r.state == state) for state in STATE_ORDER}
        return {state: n for state, n in counts.items() if n}

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        from clf.slurm.halving import Halving

        halving = Halving.load(m.sweep_dir)
        return {"sweep_dir": m.sweep_dir, "name": m.name, "profile": m.profile, "executor": m.executor,
                "counts": self.counts(), "notes": self.notes, "runs": [r.to_json() for r in self.runs],
                "halving": asdict(halving) if halving else None}


def recorded_status(manifest: Manifest, run: RunEntry) -> dict[str, Any] | None:
    """The run's ``status.json`` if its current submission wrote it."""
    record = jobfiles.read_json(manifest.run_file(run, JOB_STATUS))
    if record is None or record.get("submission") != run.submission:
        return None
    return record


@dataclass(frozen=True)
class RunFiles:
    """What a run wrote: its ``status.json`` (its current submission's only) and ``metrics.json``."""

    recorded: dict[str, Any] | None
    metrics: dict[str, Any]

    @classmethod
    def read(cls, manifest: Manifest, run: RunEntry) -> "RunFiles":
        return cls(recorded_status(manifest, run), jobfiles.read_json(manifest.run_file(run, METRICS)) or {})


def _progress(status: RunStatus, metrics: dict[str, Any], recorded: dict[str, Any] | None) -> None:
    status.steps, status.total_steps = metrics.get("steps"), metrics.get("total_steps")
    if metrics.get("status") == STOPPED_AT_BUDGET and status.state == COMPLETED:
        status.detail = status.detail or f"stopped at step {status.steps} (its last rung's budget)"
    dev_f1 = metrics.get("dev_f1")
    status.dev_f1 = float(dev_f1) if isinstance(dev_f1, (int, float)) else None
    if recorded:
        status.restarts = int(recorded.get("restarts") or 0)
        elapsed = float(recorded.get("elapsed_s") or 0.0)
        if status.state == RUNNING and recorded.get("state") == RUNNING and recorded.get("attempt_started"):
            try:
                started = datetime.strptime(recorded["attempt_started"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
                elapsed += max(0.0, time.time() - started)
            except ValueError:
                pass
        status.elapsed_s = elapsed


def _failure(status: RunStatus, recorded: dict[str, Any] | None, manifest: Manifest, fallback: str) -> None:
    """A failed run's detail: its recorded error (else ``fallback``), and its log file."""
    error = (recorded or {}).get("error") if (recorded or {}).get("state") == FAILED else None
    status.detail = error or fallback
    log = (recorded or {}).get("log")
    if not log and status.job_id:
        log = str(manifest.jobs_dir / f"{status.job_id}_0_log.err")
    status.log = log


# ------------------------------------------------------------------------ merge rules ---
# Where a run stands is decided from named sources by rule tables: the first rule whose
# condition holds gives the run's state and detail. A reader checks a table row by row; the
# unit tests (tests/test_status_rules.py) feed each row canned squeue/sacct rows.


@dataclass(frozen=True)
class Verdict:
    state: str
    detail: str = ""
    failure: bool = False     # the detail is a fallback: the run's recorded error, and its log, win


@dataclass(frozen=True)
class SlurmSources:
    """What is known of one run of a Slurm sweep."""

    recorded: str | None          # status.json's state, written by the run (this submission's only)
    queued: QueueRow | None       # its squeue row: the job is still in Slurm's queue
    accounted: QueueRow | None    # its sacct row: Slurm's accounting record
    squeue_answered: bool         # squeue answered, so a missing row means the job left the queue
    job_id: str | None            # the job that runs it now (None: never submitted)
    cancelled: str | None = None  # when clf cancel cancelled that job (clf.slurm.cancels)
    sacct_answered: bool = True   # sacct answered, so a missing row means Slurm has no record of the job


@dataclass(frozen=True)
class LocalSources:
    """What is known of one run of a local sweep."""

    recorded: str | None          # status.json's state, written by the run (this submission's only)
    runner: bool | None           # its local runner lives (None: it runs on another machine)
    runner_pid: Any               # the runner's pid (for the detail)
    working: bool                 # the recorded process lives (or runs on another machine)
    error: str | None             # status.json's error


@dataclass(frozen=True)
class Rule:
    when: str                                   # the condition, in words
    holds: Callable[[Any], bool]
    verdict: Callable[[Any], Verdict]


def _queued(s: SlurmSources) -> Verdict:
    """The job is in squeue: its state there, a pending reason in words; requeued if the run said so."""
    row = s.queued
    assert row is not None
    state, detail = SLURM_STATES.get(row.state, (UNKNOWN, row.state))
    if state == PENDING:
        detail = explain(row.reason)
        if s.recorded in (REQUEUED, INTERRUPTED):  # requeued by clf (USR2) or by Slurm (SIGTERM)
            state = REQUEUED
    if state == REQUEUED:
        why = "" if row.reason in ("BeginTime", "None", "") else f"; {explain(row.reason)}"
        detail = f"resumes from its checkpoint when it starts again{why}"
    return Verdict(state, detail)


def _accounted_final(s: SlurmSources) -> Verdict:
    """sacct's final state; a job that ended well without the run recording completion failed."""
    row = s.accounted
    assert row is not None
    state, detail = SLURM_STATES.get(row.state, (UNKNOWN, row.state))
    if state == COMPLETED:
        return Verdict(FAILED, f"the job ended but the run did not complete (status.json: {s.recorded or 'none'})",
                       failure=True)
    if state == FAILED:
        return Verdict(FAILED, detail or f"exit code {row.exit_code}", failure=True)
    return Verdict(state, detail)


def _cancelled(s: SlurmSources) -> Verdict:
    """clf cancel's own record: sacct may be down, or have no record of a task that never started;
    the run's 'interrupted' or 'running' (killed before it could say more) is then no failure."""
    resumes = "; `clf resubmit` resumes it from its checkpoint" if s.recorded == INTERRUPTED else ""
    return Verdict(CANCELLED, f"cancelled by clf cancel at {s.cancelled}{resumes}")


SLURM_ACTIVE = ("PENDING", "RUNNING", "REQUEUED")
NO_ACCOUNTING = "sacct (Slurm's accounting) did not answer, and only it can say how the job ended"


def _left_unaccounted(s: SlurmSources) -> Verdict:
    """Gone from the queue while sacct is down: scancel, a kill or the end; not taken for a failure."""
    how = "before it started" if s.recorded in (None, PENDING) else f"while {s.recorded}"
    return Verdict(UNKNOWN, f"job {s.job_id} left the queue {how}; {NO_ACCOUNTING} (cancelled? killed?): "
                            "`clf status` tells once accounting is back")

SLURM_RULES: tuple[Rule, ...] = (
    Rule("the run recorded 'completed'", lambda s: s.recorded == COMPLETED, lambda s: Verdict(COMPLETED)),
    Rule("squeue lists the job", lambda s: s.queued is not None, _queued),
    Rule("sacct has a final state", lambda s: s.accounted is not None and s.accounted.state not in SLURM_ACTIVE,
         _accounted_final),
    Rule("clf cancel cancelled its job, which left the queue, and the run did not record a failure",
         lambda s: s.cancelled is not None and s.squeue_answered and s.recorded != FAILED, _cancelled),
    Rule("sacct has an active state (squeue has not listed it)", lambda s: s.accounted is not None,
         lambda s: Verdict(SLURM_STATES[s.accounted.state][0])),
    Rule("the run recorded 'failed' or 'cancelled'", lambda s: s.recorded in (FAILED, CANCELLED),
         lambda s: Verdict(s.recorded, s.recorded, failure=True)),
    Rule("the run recorded an active state, squeue answered without it, sacct has no record",
         lambda s: s.recorded in ACTIVE and s.squeue_answered and s.sacct_answered,
         lambda s: Verdict(FAILED, f"left the queue while {s.recorded} (killed?)", failure=True)),
    Rule("the run recorded 'interrupted'", lambda s: s.recorded == INTERRUPTED, lambda s: Verdict(CANCELLED, STOPPED)),
    Rule("the run recorded a state, squeue did not answer", lambda s: s.recorded is not None and not s.squeue_answered,
         lambda s: Verdict(RUNNING if s.recorded in ACTIVE else CANCELLED)),
    Rule("the run was never submitted", lambda s: s.job_id is None, lambda s: Verdict(UNKNOWN, "never submitted")),
    Rule("squeue answered without the job, sacct did not answer", lambda s: s.squeue_answered and not s.sacct_answered,
         _left_unaccounted),
    Rule("otherwise", lambda s: True, lambda s: Verdict(UNKNOWN, f"Slurm does not know job {s.job_id}")),
)


def _not_started(s: LocalSources) -> Verdict:
    if s.runner is False:
        return Verdict(CANCELLED, "the local runner stopped before starting it")
    return Verdict(PENDING, f"queued in the local runner (pid {s.runner_pid})" if s.runner else "")


LOCAL_RULES: tuple[Rule, ...] = (
    Rule("the run recorded nothing yet", lambda s: s.recorded is None, _not_started),
    Rule("the run recorded an active state and its process (or runner, for a requeue) lives",
         lambda s: s.recorded in ACTIVE and (s.working or (s.recorded == REQUEUED and bool(s.runner))),
         lambda s: Verdict(s.recorded)),
    Rule("the run recorded an active state, its process is gone", lambda s: s.recorded in ACTIVE,
         lambda s: Verdict(FAILED, f"its process is gone while {s.recorded} (killed?)", failure=True)),
    Rule("the run recorded 'interrupted'", lambda s: s.recorded == INTERRUPTED, lambda s: Verdict(CANCELLED, STOPPED)),
    Rule("the run recorded 'failed'", lambda s: s.recorded == FAILED,
         lambda s: Verdict(FAILED, "failed", failure=True)),
    Rule("otherwise: the recorded state", lambda s: True, lambda s: Verdict(s.recorded, s.error or "")),
)


def decide(rules: tuple[Rule, ...], sources: Any) -> Verdict:
    """The verdict of the first rule that holds (the last rule of each table always holds)."""
    return next(rule.verdict(sources) for rule in rules if rule.holds(sources))


def row_status(manifest: Manifest, run: RunEntry, job_id: str | None, files: RunFiles, verdict: Verdict) -> RunStatus:
    status = RunStatus(run.name, run.label or run.name, verdict.state, job_id, detail=verdict.detail)
    if verdict.failure:
        _failure(status, files.recorded, manifest, verdict.detail)
    _progress(status, files.metrics, files.recorded)
    return status


def _merge_slurm(manifest: Manifest, run: RunEntry, files: RunFiles, info: QueueInfo,
                 cancelled: cancels.Record) -> RunStatus:
    entry = cancels.covering(cancelled, run)
    sources = SlurmSources(recorded=(files.recorded or {}).get("state"),
                           queued=(info.squeue or {}).get(run.job_id or ""),
                           accounted=(info.sacct or {}).get(run.job_id or ""),
                           squeue_answered=info.squeue is not None, job_id=run.job_id,
                           cancelled=entry.time if entry else None, sacct_answered=info.sacct is not None)
    return row_status(manifest, run, run.job_id, files, decide(SLURM_RULES, sources))


def _alive(pid: Any, marker: str) -> bool:
    """A live process ``pid`` whose command line holds ``marker`` (on this machine)."""
    try:
        pid = int(pid)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (TypeError, ValueError, OSError):
        return False
    return marker in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def runner_alive(runner: dict[str, Any] | None) -> bool | None:
    """Whether a local runner still runs (None: it runs on another machine)."""
    if not runner:
        return False
    if runner.get("host") != socket.gethostname():
        return None
    return _alive(runner.get("pid"), "clf.slurm.local_runner")


def _merge_local(manifest: Manifest, run: RunEntry, files: RunFiles) -> RunStatus:
    runner = manifest.submissions[run.submission].runner if run.submission < len(manifest.submissions) else None
    record = files.recorded or {}
    here = record.get("node") == socket.gethostname()
    working = not here or _alive(record.get("job_id"), "submitit") or _alive(record.get("pid"), "submitit")
    sources = LocalSources(recorded=record.get("state"), runner=runner_alive(runner),
                           runner_pid=(runner or {}).get("pid"), working=working, error=record.get("error"))
    return row_status(manifest, run, record.get("job_id"), files, decide(LOCAL_RULES, sources))


def _merged(manifest: Manifest, files: list[RunFiles], info: QueueInfo, cancelled: cancels.Record) -> SweepStatus:
    from clf.slurm.worker_status import merge_all

    by_workers = merge_all(manifest, files, info) if any(s.workers for s in manifest.submissions) else {}
    if manifest.executor != "slurm":
        return SweepStatus(manifest, [by_workers.get(run.name) or _merge_local(manifest, run, f)
                                      for run, f in zip(manifest.runs, files)])
    notes = list(info.notes)
    if info.sacct is None:
        notes.append("without sacct, finished jobs' states come from the runs' own status.json and "
                     "what clf cancel recorded")
    return SweepStatus(manifest, [by_workers.get(run.name) or _merge_slurm(manifest, run, f, info, cancelled)
                                  for run, f in zip(manifest.runs, files)], notes)


def sweep_statuses(manifests: list[Manifest]) -> list[SweepStatus]:
    """Where each sweep stands: one squeue and one sacct call for the jobs of all Slurm sweeps, which
    answer while the runs' files are read."""
    query = start([run.job_id for m in manifests if m.executor == "slurm" for run in m.runs if run.job_id])
    files = [[RunFiles.read(m, run) for run in m.runs] for m in manifests]
    cancelled = [cancels.load(m.sweep_dir) if m.executor == "slurm" else {} for m in manifests]
    info = query.answer()
    return [_merged(m, f, info, c) for m, f, c in zip(manifests, files, cancelled)]


def sweep_status(manifest: Manifest) -> SweepStatus:
    return sweep_statuses([manifest])[0]


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _row(run: RunStatus) -> list[str]:
    step = "-" if run.steps is None else f"{run.steps}/{run.total_steps}" if run.total_steps else str(run.steps)
    detail = run.detail + (f" (log: {run.log})" if run.log and run.state == FAILED else "")
    label = run.label if len(run.label) <= LABEL_WIDTH else run.label[:LABEL_WIDTH - 3] + "..."
    return [label, run.state, str(run.restarts), step, "-" if run.dev_f1 is None else f"{run.dev_f1:.4f}",
            _elapsed(run.elapsed_s), run.job_id or "-", detail]


def render(status: SweepStatus) -> str:
    """The table, then the counts per state."""
    m = status.manifest
    code = m.code.get("git_sha") or m.code.get("version") or "?"
    code = f"{str(code)[:10]}{'+dirty' if m.code.get('dirty') else ''}"
    lines = [f"sweep {m.name} in {m.sweep_dir}: {len(m.runs)} runs on {m.profile} ({m.executor}), "
             f"submitted {m.created}, code {code}"]
    header = ["RUN", "STATE", "RESTARTS", "STEP", "DEV F1", "ELAPSED", "JOB", "DETAIL"]
    rows = [header] + [_row(r) for r in status.runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    counts = status.counts()
    lines.append(f"{len(status.runs)} runs: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    lines += _halving_lines(status)
    lines += _worker_lines(status)
    lines += [f"note: {note}" for note in status.notes]
    return "\n".join(line.rstrip() for line in lines)


def _worker_lines(status: SweepStatus) -> list[str]:
    """A worker submission's workers and the time left (``clf.slurm.worker_status.summary``)."""
    from clf.slurm.worker_status import summary

    return summary(status.manifest, status.runs)


def _halving_lines(status: SweepStatus) -> list[str]:
    """A successive-halving sweep's rungs (``clf.slurm.halving.summary``); none for a grid."""
    from clf.slurm.halving import Halving, summary

    halving = Halving.load(status.manifest.sweep_dir)
    return summary(halving, {run.name: run.state for run in status.runs}) if halving else []


def load_statuses(sweep_dirs: Sequence[str | Path]) -> list[SweepStatus]:
    """The sweeps' statuses, from one squeue and one sacct call for all of them."""
    return sweep_statuses([Manifest.load(sweep) for sweep in sweep_dirs])


def load_status(sweep_dir: str | Path) -> SweepStatus:
    return load_statuses([sweep_dir])[0]
