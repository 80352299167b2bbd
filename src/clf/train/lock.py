"""One trainer per run directory: an exclusive lock on ``RUN_DIR/.train.lock`` while training.

The lock is a POSIX record lock (``fcntl.lockf``): the kind NFS (through its lock manager),
Lustre and GPFS enforce between nodes, where ``flock`` may be node-local. The kernel, or the
file server once the holder's node stops renewing it, releases the lock when its holder dies, so
a killed job never leaves a stale lock behind. The file names its holder (host, pid, time) for
the refusal message only; the lock itself is what counts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from clf.errors import ClfError

LOCK_FILE = ".train.lock"
# the variables a launcher sets to a process's global rank (torchrun, submitit's local executor, srun)
RANK_VARIABLES = ("RANK", "SUBMITIT_LOCAL_GLOBALID", "SLURM_PROCID")


def check_run_dir(run_dir: Path) -> None:
    """ClfError (one line) when ``run_dir`` exists but is not a directory."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ClfError("run_dir is an existing file, not a directory; give a directory with run_dir=", run_dir)


def process_rank() -> int:
    """This process's rank in a multi-process run as its launcher set it (0 when alone)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


@contextmanager
def hold_run_dir(run_dir: Path, rank: int | None = None) -> Iterator[bool]:
    """Hold ``run_dir``'s lock for the block (rank 0 only; other ranks train under rank 0's
    lock); yields whether this process holds it. ClfError, one line, if another process does."""
    check_run_dir(run_dir)
    if (process_rank() if rank is None else rank) != 0:
        yield False
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise ClfError(f"cannot lock {LOCK_FILE}: {exc.strerror}", run_dir) from None
            raise ClfError(f"another process is training this run ({_holder(fd)}); wait for it to end or use "
                           "another run_dir=", run_dir) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield True
    finally:
        os.close(fd)  # releases the lock


def held_elsewhere(run_dir: Path) -> bool:
    """Whether another process holds ``run_dir``'s lock now (a worker's check before it takes over
    a run whose holder looked dead: a holder that only stopped its heartbeat still trains)."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EACCES, errno.EAGAIN)
    finally:
        os.close(fd)  # releases the lock if this probe took it
    return False
