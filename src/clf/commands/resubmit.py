"""``clf resubmit SWEEP_DIR [--failed] [cluster.KEY=VALUE...]``: rerun a sweep's unfinished runs in
their own run directories, so that they resume from their checkpoints. Completed runs, and runs
still queued or running, are never resubmitted."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clf.errors import ClfError

EPILOG = """examples:
  clf resubmit sweeps/heads                 # every failed, cancelled or lost run
  clf resubmit sweeps/heads --failed        # only the failed ones
  clf resubmit sweeps/heads cluster.timeout_min=240 cluster.mem_gb=16   # with more time / memory
  clf resubmit sweeps/heads --code current  # with the checkout's code as it is now (recorded)

Jobs import clf from the sweep's code snapshot (SWEEP_DIR/code/N), not from the checkout;
--code current takes a new snapshot of the code clf runs from now."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clf resubmit", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", metavar="SWEEP_DIR", help="a directory made by clf submit")
    parser.add_argument("--failed", action="store_true", help="only runs that failed (not cancelled or lost ones)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be resubmitted")
    parser.add_argument("--code", choices=("sweep", "current"), default="sweep",
                        help="sweep: the code the sweep was submitted with (default); current: a new snapshot")
    parser.add_argument("settings", nargs="*", metavar="cluster.KEY=VALUE", help="change the profile for these jobs")
    return parser.parse_intermixed_args(argv)


def updated_cluster(cluster: dict, settings: list[str]) -> dict:
    """The sweep's profile with ``cluster.KEY=VALUE`` changes (YAML values)."""
    import yaml

    cluster = dict(cluster)
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key.startswith("cluster.") or key.count(".") != 1:
            raise ClfError(f"{setting!r}: only cluster.KEY=VALUE settings can change on resubmit")
        name = key.split(".", 1)[1]
        if name not in cluster:
            raise ClfError(f"{key}: no such cluster setting")
        cluster[name] = yaml.safe_load(value) if value else None
    return cluster


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.perf_counter()
    from clf.slurm import launch, snapshot
    from clf.slurm.jobfiles import CANCELLED, FAILED
    from clf.slurm.manifest import Manifest, locked
    from clf.slurm.profile import check_cluster, cluster_from
    from clf.slurm.status import UNKNOWN, sweep_status

    with locked(args.sweep):
        manifest = Manifest.load(args.sweep)
        wanted = (FAILED,) if args.failed else (FAILED, CANCELLED, UNKNOWN)
        rows = sweep_status(manifest).runs
        chosen = [manifest.run(row.name) for row in rows if row.state in wanted]
        if not chosen:
            print(f"nothing to resubmit in {args.sweep}: " + ", ".join(f"{r.name} {r.state}" for r in rows[:5])
                  + (" ..." if len(rows) > 5 else ""))
            return 0
        cluster_dict = updated_cluster(manifest.cluster, args.settings)
        cluster = cluster_from(cluster_dict)
        check_cluster(cluster)
        if args.dry_run:
            print("would resubmit: " + " ".join(run.name for run in chosen))
            return 0
        manifest.cluster = cluster_dict
        code = snapshot.take(Path(manifest.sweep_dir), len(manifest.submissions)) if args.code == "current" else \
            snapshot.latest(manifest)
        snapshot.use(code)
        submission = launch.submit(manifest, chosen, cluster, "resubmit")
        submission.code = code
        manifest.save()
    where = f"Slurm job {' '.join(submission.job_ids)}" if submission.job_ids else \
        f"the local runner (pid {submission.runner['pid']})"
    print(f"resubmitted {len(chosen)} run(s) as {where} in {time.perf_counter() - started:.1f} s: "
          + " ".join(run.name for run in chosen))
    return 0
