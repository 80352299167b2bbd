"""``clf status SWEEP_DIR... [--json] [--wait]``: where a sweep stands, one row per run, then counts
per state."""

from __future__ import annotations

import argparse
import json
import time

EPILOG = """States: pending (with Slurm's reason in words), running, requeued (after a time limit or a
preemption; it resumes from its checkpoint), completed, failed (with its error and log),
cancelled, unknown. STEP and DEV F1 (best so far) come from the run's metrics.json.
Works without sacct (less detail; runs that clf cancel cancelled are cancelled from its own record,
SWEEP_DIR/cancelled.json) and for local sweeps (cluster=local). A successive-halving sweep
(search=halving) also lists its rungs: budget, runs, the runs kept, the winner; a run that
stopped at a rung's budget is completed, with "stopped at step N" in DETAIL (--json: "halving").
With --wait: exit status 0 when every run completed, 1 when some failed or were cancelled; it polls
Slurm at most every 30 s (backing off to 2 min: the controller is shared), local sweeps every 1-5 s.
Each look at Slurm is one squeue and one sacct call for every job of the sweeps given, however many
runs and arrays they have."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf status", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR", help="directories made by clf submit")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--wait", action="store_true", help="first wait until every run has ended (scripts)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    from clf.slurm.jobfiles import COMPLETED, FINAL_STATES
    from clf.slurm.polling import poll_intervals
    from clf.slurm.status import load_statuses, render

    statuses = load_statuses(args.sweeps)  # one squeue and one sacct call for all the sweeps' jobs
    intervals = poll_intervals(s.manifest.executor for s in statuses)  # Slurm: at most every 30 s, backing off
    while args.wait and any(run.state not in FINAL_STATES for s in statuses for run in s.runs):
        time.sleep(next(intervals))
        statuses = load_statuses(args.sweeps)
    if args.json:
        data = [s.to_json() for s in statuses]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        print("\n\n".join(render(s) for s in statuses))
    if args.wait:
        return 0 if all(run.state == COMPLETED for s in statuses for run in s.runs) else 1
    return 0
