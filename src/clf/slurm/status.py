"""Where a sweep stands: one row per run, merged from squeue, sacct and the run's own files
(``status.json``, ``metrics.json``), or, for local sweeps, from the files and process liveness.

Precedence: a run that recorded 'completed' is completed; otherwise squeue (live jobs, with
the pending reason in words), then sacct (finished jobs), then ``status.json``. A
``status.json`` written by an earlier submission of the run is ignored.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clf.slurm import jobfiles
from clf.slurm.jobfiles import CANCELLED, COMPLETED, FAILED, INTERRUPTED, PENDING, REQUEUED, RUNNING
from clf.slurm.manifest import Manifest, RunEntry
from clf.slurm.queue import QueueInfo, QueueRow, explain, query

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
        return {"sweep_dir": m.sweep_dir, "name": m.name, "profile": m.profile, "executor": m.executor,
                "counts": self.counts(), "notes": self.notes, "runs": [asdict(r) for r in self.runs]}


def own_status(manifest: Manifest, run: RunEntry) -> dict[str, Any] | None:
    """The run's ``status.json`` if its current submission wrote it."""
    record = jobfiles.read_status(manifest.run_dir(run))
    if record is None or record.get("submission") != run.submission:
        return None
    return record


def _progress(status: RunStatus, run_dir: Path, own: dict[str, Any] | None) -> None:
    metrics = jobfiles.read_json(run_dir / "metrics.json") or {}
    status.steps, status.total_steps = metrics.get("steps"), metrics.get("total_steps")
    dev_f1 = metrics.get("dev_f1")
    status.dev_f1 = float(dev_f1) if isinstance(dev_f1, (int, float)) else None
    if own:
        status.restarts = int(own.get("restarts") or 0)
        elapsed = float(own.get("elapsed_s") or 0.0)
        if status.state == RUNNING and own.get("state") == RUNNING and own.get("attempt_started"):
            try:
                started = datetime.strptime(own["attempt_started"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
                elapsed += max(0.0, time.time() - started)
            except ValueError:
                pass
        status.elapsed_s = elapsed


def _failure(status: RunStatus, own: dict[str, Any] | None, manifest: Manifest, fallback: str) -> None:
    error = (own or {}).get("error") if (own or {}).get("state") == FAILED else None
    status.detail = error or fallback
    log = (own or {}).get("log")
    if not log and status.job_id:
        log = str(manifest.jobs_dir / f"{status.job_id}_0_log.err")
    status.log = log


def _merge_slurm(manifest: Manifest, run: RunEntry, own: dict[str, Any] | None, info: QueueInfo) -> RunStatus:
    status = RunStatus(run.name, run.label or run.name, UNKNOWN, run.job_id)
    own_state = (own or {}).get("state")
    live: QueueRow | None = (info.squeue or {}).get(run.job_id or "")
    done: QueueRow | None = (info.sacct or {}).get(run.job_id or "")
    if own_state == COMPLETED:
        status.state = COMPLETED
    elif live is not None:
        status.state, status.detail = SLURM_STATES.get(live.state, (UNKNOWN, live.state))
        if status.state == PENDING:
            status.detail = explain(live.reason)
            if own_state in (REQUEUED, INTERRUPTED):  # requeued by clf (USR2) or by Slurm (SIGTERM)
                status.state = REQUEUED
        if status.state == REQUEUED:
            why = "" if live.reason in ("BeginTime", "None", "") else f"; {explain(live.reason)}"
            status.detail = f"resumes from its checkpoint when it starts again{why}"
    elif done is not None and done.state not in ("PENDING", "RUNNING", "REQUEUED"):
        state, detail = SLURM_STATES.get(done.state, (UNKNOWN, done.state))
        if state == COMPLETED:  # the job ended well but the run did not record completion
            state, detail = FAILED, f"the job ended but the run did not complete (status.json: {own_state or 'none'})"
        status.state = state
        if state == FAILED:
            _failure(status, own, manifest, detail or f"exit code {done.exit_code}")
        else:
            status.detail = detail
    elif done is not None:
        status.state, status.detail = SLURM_STATES[done.state][0], ""
    elif own_state in (FAILED, CANCELLED):
        status.state = own_state
        _failure(status, own, manifest, own_state)
    elif own_state is not None and info.squeue is not None and own_state in ACTIVE:
        status.state = FAILED
        _failure(status, own, manifest, f"left the queue while {own_state} (killed?)")
    elif own_state == INTERRUPTED:
        status.state, status.detail = CANCELLED, STOPPED
    elif own_state is not None:
        status.state = RUNNING if own_state in ACTIVE else CANCELLED
    elif run.job_id is None:
        status.detail = "never submitted"
    else:
        status.detail = f"Slurm does not know job {run.job_id}"
    _progress(status, manifest.run_dir(run), own)
    return status


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


def _merge_local(manifest: Manifest, run: RunEntry, own: dict[str, Any] | None) -> RunStatus:
    status = RunStatus(run.name, run.label or run.name, UNKNOWN, (own or {}).get("job_id"))
    runner = manifest.submissions[run.submission].runner if run.submission < len(manifest.submissions) else None
    alive = runner_alive(runner)
    own_state = (own or {}).get("state")
    if own_state is None:
        status.state = PENDING if alive is not False else CANCELLED
        status.detail = (f"queued in the local runner (pid {runner['pid']})" if alive and runner else
                         "" if alive is None else "the local runner stopped before starting it")
    elif own_state in ACTIVE:
        here = own.get("node") == socket.gethostname()  # type: ignore[union-attr]
        working = (not here or _alive(own.get("job_id"), "submitit") or  # type: ignore[union-attr]
                   _alive(own.get("pid"), "submitit"))  # type: ignore[union-attr]
        if working or (own_state == REQUEUED and alive):
            status.state = own_state
        else:
            status.state = FAILED
            _failure(status, own, manifest, f"its process is gone while {own_state} (killed?)")
    elif own_state == INTERRUPTED:
        status.state, status.detail = CANCELLED, STOPPED
    elif own_state == FAILED:
        status.state = FAILED
        _failure(status, own, manifest, "failed")
    else:
        status.state = own_state
        status.detail = (own or {}).get("error") or ""
    _progress(status, manifest.run_dir(run), own)
    return status


def sweep_status(manifest: Manifest) -> SweepStatus:
    owns = {run.name: own_status(manifest, run) for run in manifest.runs}
    if manifest.executor != "slurm":
        return SweepStatus(manifest, [_merge_local(manifest, run, owns[run.name]) for run in manifest.runs])
    info = query([run.job_id for run in manifest.runs if run.job_id])
    notes = list(info.notes)
    if info.sacct is None:
        notes.append("without sacct, finished jobs' states come from the runs' own status.json")
    rows = [_merge_slurm(manifest, run, owns[run.name], info) for run in manifest.runs]
    return SweepStatus(manifest, rows, notes)


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
    lines += [f"note: {note}" for note in status.notes]
    return "\n".join(line.rstrip() for line in lines)


def load_status(sweep_dir: str | Path) -> SweepStatus:
    return sweep_status(Manifest.load(sweep_dir))
