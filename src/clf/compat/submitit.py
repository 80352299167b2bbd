"""submitit's private names clf uses (tested with submitit 1.5.4; pyproject pins <1.6).

* ``_make_sbatch_string``: the sbatch script submitit would submit (``clf submit --dry-run``
  prints it; submitit has no public way to render it without submitting), with the command
  its executor writes into it (``submitit.core._submit``).
* ``LocalJob._process``: the controller process of a local job, which forwards SIGTERM to its
  tasks (``LocalJob.cancel()`` sends SIGINT, which the controller does not forward).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

TESTED = ">=1.5.1,<1.6"


def sbatch_script(folder: Path, map_count: int, **parameters: Any) -> str:
    """The sbatch script of a job array of ``map_count`` tasks whose submitit folder is ``folder``."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command=f"python -u -m submitit.core._submit {folder}", folder=folder,
                               map_count=map_count, **parameters)


def local_process(job: Any) -> subprocess.Popen | None:
    """The controller process of a ``submitit.LocalJob`` (None before it started)."""
    return job._process
