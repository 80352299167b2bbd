"""``clf cancel SWEEP_DIR...``: cancel every job of a sweep (one scancel, recorded in the sweep's
``cancelled.json``: clf.slurm.cancels), or stop its local runner."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from clf.errors import ClfError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="clf cancel", description=__doc__,
        epilog="Running runs get SIGTERM: they checkpoint, so `clf resubmit` resumes them.")
    parser.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR", help="directories made by clf submit")
    return parser.parse_args(argv)


def cancel_slurm(sweep: str) -> str:
    """One scancel for the sweep's current jobs, recorded first in ``cancelled.json`` (so that
    ``clf status`` knows them cancelled without sacct, and never sees them gone unrecorded); taken
    back if Slurm refuses. Under the manifest's lock: a decision job or resubmit that submits
    meanwhile has its jobs cancelled too, not left running."""
    from clf.slurm import cancels
    from clf.slurm.manifest import Manifest, locked, now_iso
    from clf.slurm.queue import scancel

    with locked(sweep):
        manifest = Manifest.load(sweep)
        cancelling = cancels.current_jobs(manifest, now_iso())
        if not cancelling:
            return "no Slurm jobs to cancel"
        job_ids = sorted(cancelling, key=int)
        before = cancels.load(sweep)
        cancels.save(sweep, {**before, **cancelling})
        result = scancel(job_ids)
        if result.returncode != 0:
            cancels.save(sweep, before)
            raise ClfError(f"scancel {' '.join(job_ids)} failed: {' '.join(result.stderr.split())}")
    return f"scancel {' '.join(job_ids)}"


def cancel_local(manifest) -> str:
    from clf.slurm.status import runner_alive

    stopped = []
    for submission in manifest.submissions:
        runner = submission.runner
        alive = runner_alive(runner)
        if alive is None:
            raise ClfError(f"the local runner of {manifest.sweep_dir} runs on {runner['host']}: cancel it there")
        if alive:
            os.killpg(int(runner["pid"]), signal.SIGTERM)  # the runner's session: its jobs and their tasks
            stopped.append(str(runner["pid"]))
    return f"stopped local runner(s) {' '.join(stopped)}" if stopped else "no local runner is running"


def main(argv: list[str]) -> int:
    args = parse(argv)
    from clf.slurm.manifest import Manifest

    for sweep in args.sweeps:
        manifest = Manifest.load(sweep)
        done = cancel_slurm(sweep) if manifest.executor == "slurm" else cancel_local(manifest)
        print(f"{sweep}: {done}", file=sys.stdout)
    return 0
