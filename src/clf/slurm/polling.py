"""How often ``clf status --wait`` asks where a sweep stands.

On Slurm each poll runs ``squeue`` and ``sacct`` against the cluster's shared controller (every
user's commands queue there), so it polls at most every 30 s, backing off by half each time to
once every 2 minutes; runs take minutes to hours, so a result is seen soon enough. A local
sweep's state is in files: 1 s, backing off to 5 s.
"""

from __future__ import annotations

from typing import Iterable, Iterator

SLURM_FIRST_S, SLURM_MAX_S = 30.0, 120.0
LOCAL_FIRST_S, LOCAL_MAX_S = 1.0, 5.0
BACKOFF = 1.5


def poll_intervals(executors: Iterable[str]) -> Iterator[float]:
    """Endless seconds to wait between polls of sweeps run by ``executors``."""
    slurm = "slurm" in set(executors)
    delay, cap = (SLURM_FIRST_S, SLURM_MAX_S) if slurm else (LOCAL_FIRST_S, LOCAL_MAX_S)
    while True:
        yield delay
        delay = min(cap, delay * BACKOFF)
