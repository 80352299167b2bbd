"""The work queue of a worker submission (``cluster.workers``): files on the shared storage the
sweep lives on, and no server anywhere.

``SWEEP/queue/<submission>/`` holds

* ``claims/<run>``: the run is being trained. A worker takes a run by creating this file with
  ``O_CREAT | O_EXCL``, which NFS (v3 and later), Lustre and GPFS make atomic between nodes: of
  two workers racing for one run exactly one creates it. The file names its holder (worker, node,
  pid, incarnation); its modification time is the holder's heartbeat (``touch`` every
  ``cluster.worker_heartbeat_s``).
* ``done/<run>``: the run has its final record (completed or failed); its claim was renamed here.
* ``broken/<run>.<id>``: claims of dead holders, renamed away by whoever found them dead (a
  rename succeeds once, so one worker takes over a dead claim).
* ``workers/<worker>.json``: each worker's own record, for ``clf status`` (what it holds, why it
  waits, its pace).

A run is pending when it has neither a claim nor a ``done`` entry. A claim released after a
checkpoint (a worker stopping at its time limit) is removed: the run is pending again and
resumes from its checkpoint in whichever worker claims it next.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clf.atomic import atomic_write_json

QUEUE_DIR = "queue"
CLAIMS, DONE, BROKEN, WORKERS = "claims", "done", "broken", "workers"


@dataclass(frozen=True)
class Holder:
    """Who holds a claim: a worker (its Slurm job, or ``local-PID``) in one incarnation (requeues
    start a new one), on a node, and the slot that trains the run."""

    worker: str
    incarnation: int
    host: str
    pid: int
    slot: int = 0
    time: float = 0.0

    @classmethod
    def read(cls, path: Path) -> "Holder | None":
        try:
            data = json.loads(path.read_bytes() or b"{}")
            return cls(**{k: data[k] for k in ("worker", "incarnation", "host", "pid", "slot", "time")})
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Claim:
    run: str
    holder: Holder | None      # None: the file is being written, or unreadable
    heartbeat: float           # the file's modification time


def queue_dir(sweep_dir: str | Path, submission: int) -> Path:
    return Path(sweep_dir) / QUEUE_DIR / str(submission)


class Board:
    """The claims of one worker submission (see the module's docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.claims, self.done, self.broken, self.workers = (root / CLAIMS, root / DONE, root / BROKEN,
                                                              root / WORKERS)

    @classmethod
    def of(cls, sweep_dir: str | Path, submission: int) -> "Board":
        return cls(queue_dir(sweep_dir, submission))

    def create(self) -> None:
        for path in (self.claims, self.done, self.broken, self.workers):
            path.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading ---
    def claimed(self) -> set[str]:
        return set(_names(self.claims))

    def finished(self) -> set[str]:
        return set(_names(self.done))

    def pending(self, order: list[str]) -> list[str]:
        """The runs of ``order`` nobody holds and none finished, in that order."""
        taken = self.claimed() | self.finished()
        return [name for name in order if name not in taken]

    def claim_of(self, run: str) -> Claim | None:
        path = self.claims / run
        try:
            heartbeat = path.stat().st_mtime
        except FileNotFoundError:
            return None
        return Claim(run, Holder.read(path), heartbeat)

    def active_claims(self) -> list[Claim]:
        return [claim for name in sorted(self.claimed()) if (claim := self.claim_of(name)) is not None]

    def worker_records(self) -> list[dict[str, Any]]:
        records = []
        for name in _names(self.workers):
            if name.endswith(".json"):
                try:
                    records.append(json.loads((self.workers / name).read_bytes()))
                except (OSError, ValueError):
                    continue
        return records

    # ------------------------------------------------------------------ writing ---
    def try_claim(self, run: str, holder: Holder) -> bool:
        """Take ``run`` (exclusive create); False if another worker holds it."""
        path = self.claims / run
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(asdict(holder)).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def holds(self, run: str, holder: Holder) -> bool:
        claim = self.claim_of(run)
        return claim is not None and claim.holder == holder

    def heartbeat(self, runs: list[str], holder: Holder) -> list[str]:
        """Touch the claims ``holder`` still holds; the runs it no longer holds (taken over)."""
        lost = []
        for run in runs:
            if self.holds(run, holder):
                try:
                    os.utime(self.claims / run)
                    continue
                except FileNotFoundError:
                    pass
            lost.append(run)
        return lost

    def release(self, run: str, holder: Holder) -> None:
        """Give ``run`` back (it is pending again), if ``holder`` still holds it."""
        if self.holds(run, holder):
            _unlink(self.claims / run)

    def finish(self, run: str) -> None:
        """``run`` has its final record: its claim (whoever's) moves to ``done``."""
        try:
            os.replace(self.claims / run, self.done / run)
        except FileNotFoundError:  # taken over meanwhile, or finished by its new holder
            if not (self.done / run).exists():
                (self.done / run).touch()

    def break_claim(self, run: str) -> bool:
        """Take a dead holder's claim away (rename: exactly one caller succeeds)."""
        try:
            os.rename(self.claims / run, self.broken / f"{run}.{uuid.uuid4().hex[:12]}")
        except FileNotFoundError:
            return False
        return True

    def write_worker(self, worker: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.workers / f"{worker}.json", {**record, "updated": time.time()})


def local_holder_alive(holder: Holder) -> bool | None:
    """On this host, whether the holder's process lives (None: it is on another host)."""
    if holder.host != socket.gethostname():
        return None
    try:
        stat = Path(f"/proc/{holder.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
