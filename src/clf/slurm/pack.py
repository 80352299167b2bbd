"""Packing (``cluster.runs_per_task=K``): one array task trains K runs of a sweep one after the
other, in one process, so that they share its start (queue wait, modules, Python's imports, the
CUDA context) and the data it loaded (``clf.train.reuse``).

Each run keeps everything it has alone: its run dir, ``status.json`` and ``attempts.jsonl``
(written by ``clf.slurm.job.run_one`` exactly as for a task of its own), its row in
``clf status`` (its job id is the task's), ``clf resubmit --failed``. A run that fails is
recorded failed and the task goes on with the next one; the task then exits non-zero. A
signal stops the current run at a checkpoint as for a task of its own: USR2 requeues the task,
which, started again, skips the runs this submission already completed and resumes the current
one from its checkpoint; SIGTERM ends the task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

from clf.slurm import jobfiles
from clf.slurm.job import RunSpec, ignore_late_warnings, run_one, start_task

log = logging.getLogger("clf.slurm.job")
T = TypeVar("T")


@dataclass(frozen=True)
class TaskSpec:
    """The runs of one array task, in the order they train (pickled by submitit)."""

    runs: tuple[RunSpec, ...]


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive groups of at most ``size`` items (the runs of each task)."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def completed_here(spec: RunSpec) -> bool:
    """The run completed in this submission (an earlier attempt of this task trained it)."""
    record = jobfiles.read_status(Path(spec.run_dir)) or {}
    return record.get("state") == jobfiles.COMPLETED and record.get("submission") == spec.submission


def run_task(task: TaskSpec) -> dict[str, Any]:
    """Train the task's runs in turn; see the module's docstring."""
    started = time.time()
    stop, info = start_task()
    from clf.train.reuse import reusing_data

    failed: list[str] = []
    with reusing_data():
        for spec in task.runs:
            if completed_here(spec):
                continue
            try:
                result = run_one(spec, info, stop, started)
            except Exception:  # recorded in its status.json by run_one; the next run goes on
                failed.append(spec.name)
                continue
            if result["status"] != jobfiles.COMPLETED:  # stopped by SIGTERM/SIGINT: the task ends here
                return result
    ignore_late_warnings()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(task.runs)} runs of this task failed: {', '.join(failed)}")
    log.info("task done: %d run(s) completed", len(task.runs))
    return {"status": jobfiles.COMPLETED, "runs": [spec.run_dir for spec in task.runs]}
