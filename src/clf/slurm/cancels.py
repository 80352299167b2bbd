"""What ``clf cancel`` cancelled: ``SWEEP_DIR/cancelled.json``, ``{job id: {"time", "submission"}}``.

Only Slurm's accounting says that a job was CANCELLED. While slurmdbd is down (sacct fails), and
for array tasks that never started, nothing else does: a running run records 'interrupted' (or,
killed before that, 'running'), a queued one nothing, and ``clf status`` could only guess. So
``clf cancel`` writes down the jobs it cancels before it asks Slurm to, and ``clf status`` reads
this as one more source. Each entry names the submission whose job it cancelled: a later
``clf resubmit`` gives the run a new job and submission, which the entry does not cover.

Kept beside sweep.json rather than in it: jobs of a sweep import its code snapshot, which may be
older than this file's format and reads the manifest strictly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clf.atomic import atomic_write_json
from clf.names import CANCEL_RECORD
from clf.slurm import jobfiles
from clf.slurm.manifest import Manifest, RunEntry


@dataclass(frozen=True)
class Cancelled:
    time: str             # when clf cancel asked Slurm
    submission: int       # the manifest's submission whose job (array) it cancelled


Record = dict[str, Cancelled]   # by Slurm job (array) id


def load(sweep_dir: str | Path) -> Record:
    """The sweep's record (empty when none; a damaged one is read as none, as status.json is)."""
    data = jobfiles.read_json(Path(sweep_dir) / CANCEL_RECORD) or {}
    record: Record = {}
    for job_id, entry in data.items():
        if isinstance(entry, dict) and isinstance(entry.get("time"), str) and isinstance(entry.get("submission"), int):
            record[job_id] = Cancelled(entry["time"], entry["submission"])
    return record


def save(sweep_dir: str | Path, record: Record) -> None:
    """Written atomically; the caller holds the manifest's lock (``clf.slurm.manifest.locked``)."""
    atomic_write_json(Path(sweep_dir) / CANCEL_RECORD,
                      {job: {"time": c.time, "submission": c.submission} for job, c in record.items()})


def current_jobs(manifest: Manifest, when: str) -> Record:
    """Entries for the job (array) of every run's current submission, cancelled at ``when``."""
    return {run.array_job_id: Cancelled(when, run.submission) for run in manifest.runs if run.array_job_id}


def covering(record: Record, run: RunEntry) -> Cancelled | None:
    """The entry for the run's current job, if clf cancel cancelled that job of that submission."""
    entry = record.get(run.array_job_id or "")
    return entry if entry is not None and entry.submission == run.submission else None
