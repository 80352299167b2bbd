"""Sweeps on Slurm (or this machine): ``clf submit``, ``clf status``, ``clf cancel``, ``clf resubmit``.

Modules, from the login node to the job:

* ``profile``: cluster profiles (``conf/cluster/*.yaml``), checks on every value that reaches
  ``sbatch``, and the submitit parameters they become;
* ``expand``: overrides in Hydra's sweep syntax (and a preset's grid) -> one config per run;
* ``manifest``: ``SWEEP_DIR/sweep.json``, what was submitted and which job runs which run;
* ``launch``: one job array per submission (Slurm) or a detached local runner (``local_runner``);
* ``job``: what runs inside a job: resume, checkpoint on USR2, requeue, ``status.json``;
* ``jobfiles``: a run's ``status.json`` and ``attempts.jsonl``;
* ``queue`` and ``status``: squeue/sacct merged with the runs' own files, one row per run.

``status``, ``queue``, ``manifest`` and ``jobfiles`` import neither torch nor Hydra, so that
``clf status`` and ``clf cancel`` answer quickly.
"""
