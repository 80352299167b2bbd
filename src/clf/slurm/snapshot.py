"""A copy of the ``clf`` package per submission, which every job of the sweep imports.

With an editable install, a job that starts, is requeued or is resubmitted after the user edited
``src/clf/`` would run the edited code, and a checkpoint would resume under other code. So
``clf submit`` copies the package it runs from into ``SWEEP_DIR/code/<submission>/clf`` (its
config tree included), with ``code.json`` (git SHA, dirty flag, where it was copied from) and
``uncommitted.diff`` (``git diff HEAD`` of the checkout, when there are changes), and puts that
directory first on ``PYTHONPATH`` for the jobs: Slurm jobs and the local runner inherit the
environment of ``clf submit`` (a requeued Slurm job keeps it), and ``PYTHONPATH`` comes before
an editable install's finder. ``clf resubmit`` reuses the sweep's latest snapshot;
``clf resubmit --code current`` takes a new one. Each attempt records the code it ran
(``attempts.jsonl``: ``code``). The idea follows submitit's ``RsyncSnapshot`` helper, which
copies a repository and changes into it; copying just the package keeps data and runs out of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import clf
from clf.diskfull import writing_into
from clf.slurm.manifest import Manifest, code_version

CODE_DIR = "code"
CODE_JSON = "code.json"
DIFF = "uncommitted.diff"


def package_dir() -> Path:
    """The ``clf`` package this process imported (a checkout's src/clf, site-packages/clf or a snapshot)."""
    return Path(clf.__file__).resolve().parent


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def take(sweep_dir: Path, index: int) -> dict[str, Any]:
    """Copy the running package into ``SWEEP_DIR/code/<index>``; its record (also ``code.json``)."""
    source = package_dir()
    target = Path(sweep_dir).absolute() / CODE_DIR / str(index)
    record: dict[str, Any] = {"dir": str(target), "source": str(source), **code_version(), "diff": None}
    toplevel = _git(source, "rev-parse", "--show-toplevel")
    diff = _git(Path(toplevel.strip()), "diff", "HEAD") if toplevel else None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index}.tmp-", dir=target.parent))
    try:  # copied beside, then renamed: a copy cut short (a full disk) leaves nothing behind
        with writing_into(target):
            _copy_package(source, tmp / "clf")
            if diff:
                (tmp / DIFF).write_text(diff)
                record["diff"] = str(target / DIFF)
            (tmp / CODE_JSON).write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _copy_package(source: Path, target: Path) -> None:
    """The package's files without bytecode; the first failed copy raises (``shutil.copytree``
    would collect every file's error into one ``shutil.Error``)."""
    for directory, subdirs, files in os.walk(source, followlinks=True):  # as copytree(symlinks=False)
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        into = target / Path(directory).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not name.endswith(".pyc"):
                shutil.copy2(Path(directory) / name, into / name)


def discard(sweep_dir: Path) -> None:
    """Remove the snapshots of a submission that failed before any job existed."""
    shutil.rmtree(Path(sweep_dir) / CODE_DIR, ignore_errors=True)


def latest(manifest: Manifest) -> dict[str, Any] | None:
    """The record of the sweep's most recent snapshot (None for sweeps made before snapshots)."""
    for submission in reversed(manifest.submissions):
        if submission.code:
            return submission.code
    return None


def use(record: dict[str, Any] | None) -> None:
    """Make the jobs this process starts from now on import clf from the snapshot ``record``."""
    if not record:
        return
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([record["dir"], *(p for p in path.split(os.pathsep) if p)])


def running_code() -> dict[str, Any]:
    """What this process runs: the snapshot's record when clf comes from one, else the package's
    own location and git state (for ``attempts.jsonl``)."""
    try:
        return json.loads((package_dir().parent / CODE_JSON).read_text())
    except (OSError, ValueError):
        return {"dir": None, "source": str(package_dir()), **code_version()}
