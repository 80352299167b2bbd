"""The sweep manifest ``SWEEP_DIR/sweep.json``: what was submitted, with which code and profile,
where each run lives and which job runs it. Written atomically by ``clf submit`` and
``clf resubmit`` only (jobs never write it); read by ``clf status``, ``clf cancel``, the local
runner and ``--after``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from clf import __version__
from clf.atomic import atomic_write_json
from clf.errors import ClfError
from clf.names import SWEEP_MANIFEST

MANIFEST = SWEEP_MANIFEST
JOBS_DIR = "jobs"      # submitit's pickles and logs (and the local runner's log)
RUNS_DIR = "runs"      # one directory per run: runs/<name>
FORMAT = 1
KIND_TRAIN, KIND_COMMAND = "train", "command"


@dataclass
class RunEntry:
    name: str
    label: str                               # the overrides that vary across the sweep
    overrides: list[str]                     # every override of the run
    kind: str = KIND_TRAIN                   # train: a training run; command: `clf <argv>`
    argv: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)   # train runs: the resolved config
    run_dir: str = ""                        # relative to the sweep directory: runs/<name>
    job_id: str | None = None                # Slurm: 123_4 (array task) or 123; local runs: None
    array_job_id: str | None = None
    array_index: int | None = None
    submission: int = 0                      # index of its latest submission in Manifest.submissions
    history: list[str] = field(default_factory=list)       # job ids of earlier submissions

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir or f"{RUNS_DIR}/{self.name}"

    def set_job(self, job_id: str | None) -> None:
        """The Slurm job (``123`` or array task ``123_4``) that runs it now."""
        self.job_id = job_id
        self.array_job_id = job_id.split("_")[0] if job_id else None
        self.array_index = int(job_id.split("_")[1]) if job_id and "_" in job_id else None


@dataclass
class Submission:
    time: str
    kind: str                                # submit | resubmit | rung | decision (clf.slurm.halving)
    runs: list[str]                          # run names
    job_ids: list[str] = field(default_factory=list)          # Slurm job (array) ids
    after: dict[str, list[str]] = field(default_factory=dict)  # {"afterok": [dir or id], "afterany": [...]}
    dependency: str | None = None            # the --dependency given to sbatch
    after_runs: list[str] = field(default_factory=list)      # runs of this sweep whose jobs must end first (afterany)
    runner: dict[str, Any] | None = None     # local executor: {"pid": ..., "host": ...}
    sbatch_calls: int = 0
    seconds: float = 0.0
    directory: str = ""                      # where `clf submit` / `clf resubmit` ran
    code: dict[str, Any] | None = None       # the code snapshot its jobs import (clf.slurm.snapshot)
    workers: int = 0                         # > 0: worker jobs drain its runs' queue (clf.slurm.worker)


@dataclass
class Manifest:
    name: str
    profile: str
    executor: str
    sweep_dir: str
    created: str
    code: dict[str, Any]
    argv: list[str]
    cluster: dict[str, Any]
    submissions: list[Submission] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    format: int = FORMAT
    submit_dir: str = ""                     # where `clf submit` ran: --job commands run there

    @property
    def path(self) -> Path:
        return Path(self.sweep_dir) / MANIFEST

    @property
    def jobs_dir(self) -> Path:
        return Path(self.sweep_dir) / JOBS_DIR

    def run_dir(self, run: RunEntry) -> Path:
        return Path(self.sweep_dir) / run.run_dir

    def run_file(self, run: RunEntry, name: str) -> str:
        """The path of file ``name`` in the run's directory, as a string: ``clf status`` opens two
        per run, and pathlib's parsing of 10,000 paths cost it 0.2 s."""
        return os.path.join(self.sweep_dir, run.run_dir, name)

    def run(self, name: str) -> RunEntry:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(name)

    def save(self) -> None:
        atomic_write_json(self.path, asdict(self))

    @classmethod
    def load(cls, sweep_dir: str | Path) -> "Manifest":
        path = Path(sweep_dir) / MANIFEST
        try:
            data = json.loads(path.read_bytes() or b"null")
        except FileNotFoundError:
            raise ClfError(f"no {MANIFEST}: not a sweep directory (made by clf submit)", sweep_dir) from None
        except (OSError, ValueError) as exc:
            raise ClfError(f"{MANIFEST} is unreadable ({exc})", sweep_dir) from None
        if data is None:
            raise ClfError(f"{MANIFEST} is empty: the sweep is being submitted, or its submission failed", sweep_dir)
        try:
            data["submissions"] = [Submission(**s) for s in data.get("submissions", [])]
            data["runs"] = [RunEntry(**r) for r in data.get("runs", [])]
            manifest = cls(**data)
        except TypeError as exc:
            raise ClfError(f"{MANIFEST} is not a clf sweep manifest ({exc})", sweep_dir) from None
        # the directory may have been moved or copied since: trust where it is now
        manifest.sweep_dir = str(Path(sweep_dir).absolute())
        return manifest


def claim(sweep_dir: Path) -> Path:
    """Create an empty ``sweep.json`` exclusively, so that two submissions never share a
    directory; ClfError if one exists. The caller fills it in, or calls ``release``."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / MANIFEST
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise ClfError(f"{sweep_dir} already holds a sweep ({MANIFEST}): `clf resubmit {sweep_dir}` reruns its "
                       "unfinished runs; use another sweep_dir= for a new sweep") from None
    return path


@contextmanager
def locked(sweep_dir: str | Path) -> Iterator[None]:
    """Serialise read-modify-write of a sweep's manifest (two ``clf resubmit`` at once)."""
    if not (Path(sweep_dir) / MANIFEST).is_file():
        raise ClfError(f"no {MANIFEST}: not a sweep directory (made by clf submit)", sweep_dir)
    with open(Path(sweep_dir) / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def release(path: Path) -> None:
    """Remove a claimed, still empty ``sweep.json`` after a failed submission."""
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except FileNotFoundError:
        pass


def now_iso(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def code_version() -> dict[str, Any]:
    """Git commit and dirty flag of the checkout this package runs from (None outside git)."""
    root = Path(__file__).resolve().parents[3]
    version: dict[str, Any] = {"version": __version__, "git_sha": None, "dirty": None}
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return version
    if out.returncode == 0 and out.stdout.strip():
        text = out.stdout.strip()
        version.update(git_sha=text.removesuffix("-dirty").rsplit("-g", 1)[-1], dirty=text.endswith("-dirty"))
    return version
