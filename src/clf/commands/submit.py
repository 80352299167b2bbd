"""``clf submit cluster=NAME [sweep_dir=DIR] [--after DIR|JOBID] [overrides...]``: submit a sweep
as one job array and return (it never waits for the jobs).
``clf submit cluster=NAME --job COMMAND -- ARGS...``: submit one ``clf COMMAND ARGS`` job."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clf.errors import ClfError

EPILOG = """examples:
  clf submit cluster=greatlakes-gpu cluster.account=si630f25_class model.num_heads=1,2,4,8 seed=0,1,2
  clf submit cluster=greatlakes-mig40 cluster.account=ACCOUNT experiment=heads sweep_dir=sweeps/heads
  clf submit model.num_heads=2,4                        # cluster=local: this machine, no Slurm
  clf submit cluster=slurm --after sweeps/w2v embeddings=word2vec embeddings.dir=sweeps/w2v/vectors
  clf submit cluster=slurm sweep_dir=sweeps/agg --after-any sweeps/heads --job aggregate -- sweeps/heads
  clf submit --dry-run cluster=greatlakes-gpu cluster.account=A seed=0,1   # print the runs and the script
  clf submit search=halving search.min_steps=100 train.max_steps=900 optim.lr=1e-3,3e-3,1e-2 model.num_heads=1,4,8
        # successive halving: every run to 100 steps, the best third to 300, the best of those to 900

Overrides use Hydra's sweep syntax (a,b,c  range(0,5)  ...); every combination is one run, in
SWEEP_DIR/runs/<its overrides>. A preset's grid (hydra.sweeper.params in conf/experiment/NAME.yaml)
is expanded too; a key given here replaces the preset's. Default sweep_dir: sweeps/<name>-<time>.
--after / --after-any take a sweep directory (every job of that sweep) or a Slurm job id; with
cluster=local the runner waits for the sweep directories itself.
then: clf status SWEEP_DIR, clf cancel SWEEP_DIR, clf resubmit SWEEP_DIR"""

FORBIDDEN_JOBS = ("submit", "status", "cancel", "resubmit")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(options and overrides, the --job command's arguments after ``--``)."""
    command_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="clf submit", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--after", action="append", default=[], metavar="DIR|JOBID",
                        help="start only after every job of this sweep (or this job) completed (afterok)")
    parser.add_argument("--after-any", action="append", default=[], metavar="DIR|JOBID",
                        help="start after this sweep's jobs ended, whatever their state (afterany)")
    parser.add_argument("--job", metavar="COMMAND",
                        help="submit one `clf COMMAND ARGS` job (ARGS after --), e.g. --job w2v -- out=DIR data=imdb")
    parser.add_argument("--dry-run", action="store_true", help="print the runs (and the sbatch script); submit nothing")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, sweep syntax allowed: model.num_heads=1,2,4")
    args = parser.parse_intermixed_args(argv)
    if command_args and not args.job:
        raise ClfError("arguments after -- belong to --job COMMAND")
    return args, command_args


def _command_run(args: argparse.Namespace, command_args: list[str]):
    """The one run of a ``--job`` submission (its config: just where it runs)."""
    from clf.cli import COMMANDS
    from clf.slurm.expand import plan

    if args.job not in COMMANDS or args.job in FORBIDDEN_JOBS:
        allowed = ", ".join(c for c in COMMANDS if c not in FORBIDDEN_JOBS)
        raise ClfError(f"--job {args.job!r} is not a clf command that runs as a job ({allowed})")
    result = plan(args.overrides)
    if len(result.runs) != 1:
        raise ClfError("--job submits one job: sweep syntax (a,b) is not allowed in its overrides")
    run = result.runs[0]
    run.name, run.label = args.job, " ".join(["clf", args.job, *command_args])
    return result


def main(argv: list[str]) -> int:
    args, command_args = parse(argv)
    started = time.perf_counter()
    from clf.slurm import launch, snapshot
    from clf.slurm.expand import plan
    from clf.slurm.halving import launch_rung
    from clf.slurm.halving import start as start_halving
    from clf.slurm.paths import absolute_job_args
    from clf.slurm.manifest import KIND_COMMAND, KIND_TRAIN, Manifest, RunEntry, claim, code_version, now_iso, release
    from clf.slurm.profile import check_cluster, cluster_from, job_name

    result = _command_run(args, command_args) if args.job else plan(args.overrides)
    cluster = cluster_from(result.cluster)
    check_cluster(cluster)
    job_name(result.name)
    launch.check_sweep_paths(result.sweep_dir, cluster.executor)
    after = {"afterok": args.after, "afterany": args.after_any}
    launch.resolve_after(after, cluster.executor)  # check before claiming the directory
    kind = KIND_COMMAND if args.job else KIND_TRAIN
    runs = [RunEntry(name=r.name, label=r.label, overrides=r.overrides, kind=kind,
                     argv=[args.job, *absolute_job_args(command_args, Path.cwd())] if args.job else [],
                     config={} if args.job else r.config)
            for r in result.runs]
    halving = None if args.job else start_halving(runs)  # search=halving: rung 1 stops at search.min_steps
    if args.dry_run:
        if halving:
            print(_halving_line(halving))
        return _dry_run(result.sweep_dir, runs, cluster, result.name)
    path = claim(result.sweep_dir)
    manifest = Manifest(name=result.name, profile=cluster.name, executor=cluster.executor,
                        sweep_dir=str(result.sweep_dir), created=now_iso(), code=code_version(),
                        argv=list(argv), cluster=result.cluster, runs=runs, submit_dir=str(Path.cwd()))
    try:
        code = snapshot.take(result.sweep_dir, 0)
        snapshot.use(code)  # every job of the sweep imports clf from this copy
        if halving:
            submission = launch_rung(manifest, halving, runs, cluster, "submit", code, after)[0]
        else:
            submission = launch.submit(manifest, runs, cluster, "submit", after)
    except BaseException:
        snapshot.discard(result.sweep_dir)
        release(path)
        raise
    submission.code = code
    manifest.save()
    print(_summary(manifest, submission, cluster, time.perf_counter() - started))
    if halving:
        print(_halving_line(halving))
    return 0


def _halving_line(halving) -> str:
    return (f"successive halving: rung 1 of {len(halving.budgets)} ({' / '.join(map(str, halving.budgets))} steps, "
            f"eta {halving.eta}); a decision job after each rung submits the next")


def _summary(manifest, submission, cluster, seconds: float) -> str:
    n = len(submission.runs)
    where = Path(manifest.sweep_dir)
    try:
        where = where.relative_to(Path.cwd())
    except ValueError:
        pass
    if cluster.executor == "slurm":
        target = ", ".join(f"{k} {getattr(cluster, k)}" for k in ("partition", "account") if getattr(cluster, k))
        if submission.workers:
            head = (f"submitted {n} run(s) to {submission.workers} worker(s) ({cluster.runs_per_worker} run(s) "
                    f"at a time each) as Slurm job {' '.join(submission.job_ids)}"
                    f"{' (' + target + ')' if target else ''}")
        else:
            head = (f"submitted {n} run(s) as Slurm job {' '.join(submission.job_ids)} "
                    f"({cluster.array_parallelism} at a time{', ' + target if target else ''})")
    elif submission.workers:
        head = (f"started {n} run(s) on this machine through {submission.workers} worker(s) "
                f"({cluster.runs_per_worker} run(s) at a time each; runner pid {submission.runner['pid']})")
    else:
        head = (f"started {n} run(s) on this machine ({cluster.array_parallelism} at a time; "
                f"runner pid {submission.runner['pid']})")
    if submission.dependency or submission.after:
        head += f", after {submission.dependency or submission.after}"
    return f"{head} in {seconds:.1f} s\nsweep: {where}\n  clf status {where}\n  clf cancel {where}"


def _dry_run(sweep_dir: Path, runs, cluster, name: str) -> int:
    print(f"sweep {name}: {len(runs)} run(s) in {sweep_dir} on cluster={cluster.name} ({cluster.executor})")
    for run in runs:
        print(f"  runs/{run.name}: {run.label or ' '.join(run.overrides) or '(defaults)'}")
    if cluster.executor == "slurm":
        from clf.compat.submitit import sbatch_script
        from clf.slurm.profile import job_name, slurm_parameters

        from clf.slurm.launch import worker_count

        params = slurm_parameters(cluster, job_name(name), None)
        workers = worker_count(cluster, runs)
        if workers:
            print(f"{workers} worker job(s) drain the {len(runs)} run(s) ({cluster.runs_per_worker} at a time each)")
        print(sbatch_script(sweep_dir / "jobs", workers or len(runs), **params))
    return 0
