"""Which run a worker may take in the time it has left (HyperQueue's ``--time-request`` against a
worker's remaining lifetime, with the request measured instead of guessed).

A run's predicted time is its steps left times the worker's pace: the wall seconds per step of
the runs this worker has trained (start, data, evaluation and writes included), or the sweep's
first guess (``cluster.worker_seconds_per_step``) before it has trained one. A worker takes a
run that ends before Slurm's warning (``signal_delay_s`` before its end, with a margin). A
worker with (nearly) a whole time limit ahead takes any run: no worker can do better, and the
warning makes the run checkpoint, so it resumes in the next one. Otherwise it leaves the run to
a worker with more time; one with no time even to start a run and checkpoint it takes nothing.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime

FRESH_FRACTION = 0.9        # a worker with this much of its time limit left counts as fresh
STARTUP_S = 10.0            # a run's start (imports are paid once per slot; data, model) before its pace applies


@dataclass
class Pace:
    """Wall seconds per step, measured over the runs a worker trained (its first guess before)."""

    guess: float
    seconds: float = 0.0
    steps: int = 0

    def add(self, seconds: float, steps: int) -> None:
        if steps > 0 and seconds > 0:
            self.seconds += seconds
            self.steps += steps

    @property
    def per_step(self) -> float:
        return self.seconds / self.steps if self.steps else self.guess

    @property
    def measured(self) -> bool:
        return self.steps > 0


@dataclass(frozen=True)
class Lifetime:
    """A worker's time: when it ends (its job's time limit) and how long that limit is."""

    end: float
    limit_s: float
    warning_s: float           # Slurm's USR2 this long before the end (cluster.signal_delay_s)
    margin_s: float            # and this much more to checkpoint and release what it holds

    def left(self, now: float | None = None) -> float:
        """Seconds until the warning, less the margin: the time a run may use."""
        return self.end - (time.time() if now is None else now) - self.warning_s - self.margin_s

    def fresh(self, now: float | None = None) -> bool:
        return self.end - (time.time() if now is None else now) >= FRESH_FRACTION * self.limit_s


@dataclass(frozen=True)
class Decision:
    take: bool
    why: str


def predicted_s(steps_left: int | None, pace: Pace) -> float | None:
    return None if steps_left is None else STARTUP_S + max(0, steps_left) * pace.per_step


def decide(run: str, steps_left: int | None, pace: Pace, life: Lifetime, now: float | None = None) -> Decision:
    """Whether this worker takes ``run`` now (see the module's docstring)."""
    left = life.left(now)
    need = predicted_s(steps_left, pace)
    if need is not None and need <= left:
        return Decision(True, f"{run}: ~{need:.0f} s of {left:.0f} s left")
    if life.fresh(now) and left > STARTUP_S:
        length = "its length is not known yet" if need is None else f"~{need:.0f} s, longer than {left:.0f} s"
        return Decision(True, f"{run}: {length}; a fresh worker takes it: at the warning it checkpoints and "
                              "resumes in the next worker")
    what = f"~{need:.0f} s" if need is not None else "an unknown time"
    return Decision(False, f"{run} needs {what}, {max(0.0, left):.0f} s left: left to a worker with more time")


_END = re.compile(r"^\s*(\S+)\s*$")


def slurm_end_time(job_id: str) -> float | None:
    """The job's end (its start plus its time limit, as the controller has it now), or None."""
    try:
        out = subprocess.run(["squeue", "--noheader", "--jobs", job_id, "--format", "%e"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _END.match(out.stdout.splitlines()[0] if out.stdout.strip() else "")
    if out.returncode != 0 or not match:
        return None
    try:
        return datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:  # N/A, Unknown: no limit known
        return None
