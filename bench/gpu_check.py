"""GPU check (issue 19): the stages that bench/gpu_check.sh runs, each in its own process under its
own time limit, and the one table the script ends with.

    python bench/gpu_check.py stages       # "NAME LIMIT_S" per line, in order (gpu_check.sh reads it)
    python bench/gpu_check.py stage NAME --work DIR --imdb DIR --w2v DIR [--small DIR] [--limit S] [--cpu-only]
    python bench/gpu_check.py table --work DIR [--outcome NAME=RC:LIMIT ...] [--not-run NAME=WHY ...] ...

A stage writes WORK/NAME.json (its rows of the table) and exits 1 when one of them failed. Without
a CUDA device (or with ``--cpu-only``, which hides the GPUs from torch) every GPU stage still
builds and checks what it would run (the composed configurations of its runs, core_bench's
arguments, pytest's collection of tests/test_cuda.py), then reports "skipped: no CUDA device";
the preflight checks its CPU path instead (``device=cuda`` stops in one line naming the torch
build). With a GPU, a failed stage makes the table's exit status 1; a figure that misses its goal
is reported as "not met" and fails nothing (the goals are an H100's/H200's).

The top level imports only the standard library, so that ``table`` runs under any python3, also
when setup left no interpreter with torch (then the table says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SKIP = "no CUDA device"
EPOCH_GOAL_S = 0.05  # an IMDB epoch at batch 256 on an H100/H200
EVAL_GOAL_S = 0.01   # scoring IMDB's 25k test documents
SMALL_STEPS = 300    # steps of the bf16 run and of each concurrent run on the small dataset
DEV_F1_FLOOR = 0.8   # the small dataset is learnable: tests/test_cuda.py asks the same of its runs
# why a stage did not run (gpu_check.sh passes one of these names)
NOT_RUN = {"budget": "not run: the time budget was spent",
           "setup": "not run: no working Python environment (see the setup and environment rows)"}


@dataclass
class Row:
    """One line of the table: a stage's result, and its figure against its goal where it has one."""

    stage: str
    status: str             # pass | fail | skipped
    detail: str = ""        # what was checked (pass), or why not (fail, skipped)
    figure: str = ""
    goal: str = ""
    met: bool | None = None  # None: no figure measured against a goal


@dataclass(frozen=True)
class Context:
    """What a stage works on: its directory, the data, and whether GPUs are to be ignored."""

    work: Path
    imdb: Path
    w2v: Path
    small: Path
    cpu_only: bool
    limit: int  # this stage's seconds; its subprocesses' timeouts stay under it


# -- helpers shared by the stages --

def gpu_name(ctx: Context) -> str | None:
    """'NAME (compute capability X.Y)' of the GPU this check uses; None without one (or --cpu-only)."""
    if ctx.cpu_only:
        return None
    from clf.device import visible_gpu

    gpu = visible_gpu()
    if gpu is None:
        return None
    name, capability = gpu
    return f"{name} (compute capability {capability[0]}.{capability[1]})" if capability else name


def cuda_unusable(ctx: Context) -> tuple[str, str] | None:
    """(status, why) when a GPU stage cannot run: skipped without a GPU, failed when CUDA does not
    work on the one there is (clf's preflight says why); None when it can."""
    if gpu_name(ctx) is None:
        return "skipped", SKIP
    from clf.device import select_device
    from clf.errors import ClfError

    try:
        select_device("cuda")
    except ClfError as exc:
        return "fail", f"CUDA does not work (the preflight row says the same): {exc}"
    return None


def subprocess_timeout(ctx: Context) -> float:
    """Seconds a stage's subprocess may take: the stage's limit less a margin for the stage itself."""
    return max(1.0, ctx.limit - min(10.0, ctx.limit / 5))


def small_run(ctx: Context, run_dir: Path, *extra: str) -> list[str]:
    """Overrides of a short ``clf train`` on the small dataset, on the GPU, with the shipped defaults."""
    data = [f"data.{split}={ctx.small / f'sentiment.{split}.csv'}" for split in ("train", "dev", "test")]
    return ["data=csv", *data, "embeddings=random", "device=cuda", "train.progress=none",
            f"train.max_steps={SMALL_STEPS}", f"run_dir={run_dir}", *extra]


def checked(overrides: list[str]) -> list[str]:
    """``overrides`` once clf's config accepts them (a ClfError naming the bad one otherwise)."""
    from clf.config import compose

    compose(overrides)
    return overrides


def clf_trains(commands: list[list[str]], timeout: float) -> list[int]:
    """Exit statuses of ``python -m clf train OVERRIDES`` for each of ``commands``, all started at
    once (their output goes to this stage's log); one still running after ``timeout`` seconds is
    killed (its status is then negative)."""
    processes = [subprocess.Popen([sys.executable, "-m", "clf", "train", *overrides], stdin=subprocess.DEVNULL)
                 for overrides in commands]
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [process.returncode for process in processes]


def run_result(run_dir: Path, returncode: int) -> tuple[dict[str, Any] | None, str]:
    """(metrics.json, "") of a run that completed on CUDA with finite scores, else (None, why not)."""
    if returncode < 0:
        return None, f"clf train was stopped by signal {-returncode} (killed at this stage's time limit?)"
    if returncode != 0:
        return None, f"clf train exited {returncode} (this stage's log has its output)"
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        return None, f"no readable metrics.json in {run_dir}: {exc}"
    problems = []
    if metrics.get("status") != "completed":
        problems.append(f"status {metrics.get('status')!r}")
    if (metrics.get("device") or {}).get("type") != "cuda":
        problems.append(f"trained on {metrics.get('device')}")
    for key in ("dev_f1", "test_f1"):
        if not isinstance(metrics.get(key), (int, float)) or not math.isfinite(metrics[key]):
            problems.append(f"{key} {metrics.get(key)!r}")
    if not (run_dir / "predictions" / "test.csv").is_file():
        problems.append("no predictions/test.csv")
    return (None, "; ".join(problems)) if problems else (metrics, "")


def junit_counts(path: Path) -> dict[str, int] | None:
    """{tests, failures, errors, skipped} of pytest's JUnit XML report; None without one."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}


def seconds(value: float) -> str:
    return f"{value:.4f} s"


# -- the stages --

def environment(ctx: Context) -> list[Row]:
    """The interpreter gpu_check.sh chose: torch and this checkout's clf import; the GPU it sees;
    the small dataset (tests/helpers.make_dataset) when none was given."""
    import torch

    import clf
    from clf.device import torch_build

    source = Path(clf.__file__).resolve().parent
    if not source.is_relative_to(REPO / "src"):
        return [Row("environment", "fail", f"clf is imported from {source}, not from this checkout's {REPO / 'src'}")]
    if not (ctx.small / "sentiment.train.csv").is_file():
        sys.path.insert(0, str(REPO / "tests"))
        from helpers import make_dataset

        make_dataset(ctx.small, n_train=1000, n_dev=300, n_test=300)
    gpu = gpu_name(dataclasses.replace(ctx, cpu_only=False))
    info = {"gpu": gpu, "used": gpu is not None and not ctx.cpu_only, "torch": torch_build(),
            "cuda_available": torch.cuda.is_available(), "nvidia_smi": shutil.which("nvidia-smi") is not None}
    (ctx.work / "environment.info.json").write_text(json.dumps(info))
    return [Row("environment", "pass", f"{sys.executable}; {torch_build()}; clf from {source}; "
                                       f"small dataset {ctx.small}")]


def cuda_tests(ctx: Context) -> list[Row]:
    """tests/test_cuda.py under pytest: with a GPU every test must run and pass; without one every
    test must be collected and skipped (so the file imports and is wired)."""
    report = ctx.work / "cuda-tests.xml"
    goal = "every test passes, none skipped"
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "tests" / "test_cuda.py"), "-q",
                               "-p", "no:cacheprovider", f"--junitxml={report}"], cwd=REPO, stdin=subprocess.DEVNULL,
                              timeout=subprocess_timeout(ctx))
    except subprocess.TimeoutExpired:
        return [Row("cuda-tests", "fail", f"pytest timed out after {subprocess_timeout(ctx):.0f} s", goal=goal)]
    counts = junit_counts(report)
    if counts is None:
        return [Row("cuda-tests", "fail", f"pytest wrote no report (exit status {done.returncode})", goal=goal)]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    summary = (f"pytest: {counts['tests']} tests, {passed} passed, {counts['failures'] + counts['errors']} failed, "
               f"{counts['skipped']} skipped (exit status {done.returncode})")
    unusable = cuda_unusable(ctx)
    if unusable is not None and unusable[0] == "skipped":
        wired = done.returncode == 0 and counts["tests"] > 0 and counts["skipped"] == counts["tests"]
        return [Row("cuda-tests", "skipped" if wired else "fail", f"{SKIP} ({summary})", goal=goal)]
    ok = done.returncode == 0 and counts["tests"] > 0 and passed == counts["tests"]
    return [Row("cuda-tests", "pass" if ok else "fail", summary, goal=goal)]


def preflight(ctx: Context) -> list[Row]:
    """clf's CUDA preflight (clf.device.select_device): with a GPU its test kernel runs; without
    one, its CPU path: ``device=cuda`` stops with one line naming the torch build."""
    from clf.device import describe_device, select_device, torch_build
    from clf.errors import ClfError

    gpu = gpu_name(ctx)
    try:
        device = select_device("cuda")
    except ClfError as exc:
        line = str(exc)
        if gpu is not None:
            return [Row("preflight", "fail", line, goal="a test kernel runs on the GPU")]
        one_line = "\n" not in line and torch_build() in line
        return [Row("preflight", "pass" if one_line else "fail",
                    f"CPU path ({SKIP}): device=cuda stops in one line: {line}",
                    goal="without a GPU: device=cuda stops in one line naming the torch build")]
    if gpu is None:
        return [Row("preflight", "fail", f"device=cuda was accepted although this check uses no GPU ({device})")]
    info = describe_device(device)
    return [Row("preflight", "pass", f"a test kernel ran on {info['name']} (compute capability {info['capability']}); "
                                     f"{torch_build()}", goal="a test kernel runs on the GPU")]


def bf16_run(ctx: Context) -> list[Row]:
    """One ``clf train precision=bf16`` (autocast) on the small dataset, through the CLI."""
    run_dir = ctx.work / "bf16-run"
    overrides = checked(small_run(ctx, run_dir, "precision=bf16"))
    goal = f"completes on CUDA, dev F1 > {DEV_F1_FLOOR}"
    unusable = cuda_unusable(ctx)
    if unusable is not None:
        return [Row("bf16-run", *unusable, goal=goal)]
    (code,) = clf_trains([overrides], subprocess_timeout(ctx))
    metrics, why = run_result(run_dir, code)
    if metrics is None:
        return [Row("bf16-run", "fail", why, goal=goal)]
    figure = (f"dev F1 {metrics['dev_f1']:.4f}, test F1 {metrics['test_f1']:.4f}, {metrics['steps']} steps "
              f"in {metrics['train_seconds']:.2f} s")
    ok = metrics["dev_f1"] > DEV_F1_FLOOR and metrics["config"]["precision"] == "bf16"
    return [Row("bf16-run", "pass" if ok else "fail", f"precision={metrics['config']['precision']}", figure, goal)]


def core_figures(ctx: Context, defaults: bool) -> list[Row]:
    """bench/core_bench.py's GPU figures, by its own functions: the median IMDB epoch at batch 256
    (3 epochs; the clf train code path, no evaluation) and the median scoring of the 25k test
    documents, for the shipped defaults or for the homework's model (core_bench's CORE_CONFIG)."""
    import core_bench

    which = "defaults" if defaults else "homework model"
    tmp = ctx.work / ("bench-defaults" if defaults else "bench-homework")
    args = core_bench.parse_args(["--data", str(ctx.imdb), "--w2v", str(ctx.w2v), "--device", "cuda",
                                  "--repeats", "3", *(["--defaults"] if defaults else [])])
    checked(core_bench.overrides(args, tmp / "cache", tmp / "wiring"))
    names = (f"epoch at batch 256, {which}", f"evaluate 25k test docs, {which}")
    goals = (f"<= {EPOCH_GOAL_S} s", f"<= {EVAL_GOAL_S} s")
    unusable = cuda_unusable(ctx)
    missing = [str(path) for path in (ctx.imdb, ctx.w2v) if not path.is_dir()]
    if unusable is None and missing:
        unusable = ("fail", f"no data at {', '.join(missing)} (--imdb DIR, --w2v DIR)")
    if unusable is not None:
        return [Row(name, *unusable, goal=goal) for name, goal in zip(names, goals)]
    epoch = core_bench.bench_epochs(args, tmp, [256])[256]
    scoring = core_bench.bench_eval(args, tmp)
    epoch_s, eval_s = float(epoch["epoch_s"]), float(scoring["eval_s"])
    return [Row(names[0], "pass", f"median of {epoch['all_s']} s; test F1 after it {epoch['test_f1']:.4f}",
                seconds(epoch_s), goals[0], epoch_s <= EPOCH_GOAL_S),
            Row(names[1], "pass", f"median of 5; {scoring['docs']} documents", seconds(eval_s), goals[1],
                eval_s <= EVAL_GOAL_S)]


def concurrent_runs(ctx: Context) -> list[Row]:
    """Two ``clf train`` processes on the one GPU at once (seeds 0 and 1, own run dirs, the CPU
    cores shared between them), both completing with their metrics and predictions."""
    threads = max(1, (os.cpu_count() or 2) // 2)  # torch's threads of the two runs within the cores (README)
    runs = [(ctx.work / f"concurrent-{seed}", [f"seed={seed}", f"train.num_threads={threads}"]) for seed in (0, 1)]
    commands = [checked(small_run(ctx, run_dir, *extra)) for run_dir, extra in runs]
    goal = "both complete on CUDA with their results"
    unusable = cuda_unusable(ctx)
    if unusable is not None:
        return [Row("concurrent-runs", *unusable, goal=goal)]
    start = time.perf_counter()
    codes = clf_trains(commands, subprocess_timeout(ctx))
    wall = time.perf_counter() - start
    results = [run_result(run_dir, code) for (run_dir, _), code in zip(runs, codes)]
    failed = [f"seed {seed}: {why}" for seed, (metrics, why) in enumerate(results) if metrics is None]
    if failed:
        return [Row("concurrent-runs", "fail", "; ".join(failed), goal=goal)]
    done = [metrics for metrics, _ in results if metrics is not None]
    train_seconds = ", ".join(f"{m['train_seconds']:.2f}" for m in done)
    test_f1 = ", ".join(f"{m['test_f1']:.4f}" for m in done)
    figure = f"2 of 2 completed in {wall:.1f} s wall; train_seconds {train_seconds}; test F1 {test_f1}"
    return [Row("concurrent-runs", "pass", f"{threads} CPU thread{'s' if threads > 1 else ''} each", figure, goal)]


@dataclass(frozen=True)
class Stage:
    """A stage of the check: its function and the most seconds it may take (less when the
    budget left is smaller)."""

    name: str
    limit: int
    run: Callable[[Context], list[Row]]


STAGES = (
    Stage("environment", 90, environment),
    Stage("cuda-tests", 150, cuda_tests),
    Stage("preflight", 60, preflight),
    Stage("bf16-run", 90, bf16_run),
    Stage("bench-defaults", 150, lambda ctx: core_figures(ctx, defaults=True)),
    Stage("bench-homework", 150, lambda ctx: core_figures(ctx, defaults=False)),
    Stage("concurrent-runs", 120, concurrent_runs),
)
STAGE_NAMES = ("setup", *(stage.name for stage in STAGES))  # setup: gpu_check.sh's own


def run_stage(args: argparse.Namespace) -> int:
    """Run one stage, write WORK/NAME.json; 1 when a row failed."""
    if args.cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: torch then sees no GPU
    ctx = Context(work=args.work, imdb=args.imdb, w2v=args.w2v, small=args.small or args.work / "small",
                  cpu_only=args.cpu_only, limit=args.limit)
    stage = next(s for s in STAGES if s.name == args.name)
    rows = stage.run(ctx)
    (ctx.work / f"{stage.name}.json").write_text(json.dumps([dataclasses.asdict(row) for row in rows], indent=1))
    for row in rows:
        print(f"{row.stage}: {row.status}{': ' + row.detail if row.detail else ''}"
              f"{'; ' + row.figure if row.figure else ''}", flush=True)
    return int(any(row.status == "fail" for row in rows))


# -- the table --

def load_rows(path: Path, stage: str) -> list[Row] | None:
    """A stage's rows as it wrote them; None when it wrote none (it crashed or was killed)."""
    try:
        records = json.loads(path.read_text())
        rows = [Row(**record) for record in records]
    except (OSError, ValueError, TypeError):
        return None
    if not rows or any(row.status not in ("pass", "fail", "skipped") for row in rows):
        return [Row(stage, "fail", f"{path} holds no valid rows")]
    return rows


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def outcome_row(name: str, code: int, limit: int, work: Path, setup_via: str) -> Row:
    """The row of a stage that left no rows of its own: setup, or one that was killed or crashed."""
    log = work / f"{name}.log"
    if code in (124, 137):
        return Row(name, "fail", f"timed out after {limit} s (log: {log})")
    if name == "setup":
        return Row(name, "pass" if code == 0 else "fail",
                   setup_via if code == 0 else f"{setup_via} exited {code}: {last_line(log)} (log: {log})")
    return Row(name, "fail", f"exited {code} without its result: {last_line(log)} (log: {log})")


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def gpu_line(work: Path, smi_gpu: str) -> str:
    """Which GPU the check ran on: as the environment stage saw it, else as nvidia-smi listed it."""
    try:
        info = json.loads((work / "environment.info.json").read_text())
    except (OSError, ValueError):
        return f"GPU: {smi_gpu or 'none listed by nvidia-smi'} (the environment stage did not report)"
    if info.get("gpu") is None:
        smi = "nvidia-smi lists none" if info.get("nvidia_smi") else "no nvidia-smi"
        return f"GPU: none ({smi}, torch.cuda.is_available() is {info.get('cuda_available')}); {info.get('torch')}"
    used = "" if info.get("used") else " (not used: --cpu-only)"
    return f"GPU: {info['gpu']}{used}; {info.get('torch')}"


def print_table(args: argparse.Namespace) -> int:
    """The one table: the GPU, then every stage's rows; 1 when a row failed."""
    outcomes = dict(args.outcome)
    not_run = dict(args.not_run)
    rows: list[Row] = []
    for name in STAGE_NAMES:
        own = load_rows(args.work / f"{name}.json", name)
        if own is not None:
            rows += own
        elif name in outcomes:
            rows.append(outcome_row(name, *outcomes[name], args.work, args.setup_via))
        elif name in not_run:
            rows.append(Row(name, "fail", NOT_RUN[not_run[name]]))
        else:
            rows.append(Row(name, "fail", "not run (gpu_check.sh recorded no outcome for it)"))
    print()
    print(f"GPU check, {time.strftime('%Y-%m-%d %H:%M')}: {gpu_line(args.work, args.smi_gpu)}; "
          f"{args.elapsed} s of a {args.budget} s budget; work dir {args.work}")
    print()
    print("| stage | result | figure | goal | met |")
    print("| --- | --- | ---: | --- | --- |")
    for row in rows:
        result = row.status + (f": {row.detail}" if row.detail else "")
        met = "" if row.met is None else ("met" if row.met else "not met")
        print(f"| {cell(row.stage)} | {cell(result)} | {cell(row.figure)} | {cell(row.goal)} | {met} |")
    counts = {status: sum(row.status == status for row in rows) for status in ("pass", "fail", "skipped")}
    goals = [row.met for row in rows if row.met is not None]
    print()
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped; "
          f"goals met: {sum(goals)} of {len(goals)}")
    return int(counts["fail"] > 0)


# -- the command line --

def stage_name(text: str) -> str:
    if text not in STAGE_NAMES:
        raise argparse.ArgumentTypeError(f"unknown stage {text!r} ({', '.join(STAGE_NAMES)})")
    return text


def outcome(text: str) -> tuple[str, tuple[int, int]]:
    """NAME=RC:LIMIT -> (NAME, (RC, LIMIT)), each part checked."""
    name, _, rest = text.partition("=")
    code, _, limit = rest.partition(":")
    if not (code.isdigit() and limit.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=RC:LIMIT")
    return stage_name(name), (int(code), int(limit))


def not_run(text: str) -> tuple[str, str]:
    """NAME=WHY -> (NAME, WHY), WHY one of NOT_RUN."""
    name, _, why = text.partition("=")
    if why not in NOT_RUN:
        raise argparse.ArgumentTypeError(f"{text!r}: WHY is one of {', '.join(NOT_RUN)}")
    return stage_name(name), why


def positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stages", help="list the stages and their time limits")
    stage = commands.add_parser("stage", help="run one stage")
    stage.add_argument("name", choices=[s.name for s in STAGES])
    stage.add_argument("--work", type=Path, required=True)
    stage.add_argument("--imdb", type=Path, required=True, help="IMDB in the layout of shared/data/imdb")
    stage.add_argument("--w2v", type=Path, required=True, help="the word2vec files of shared/data/imdb-w2v")
    stage.add_argument("--small", type=Path, help="sentiment.{train,dev,test}.csv (default: generated in WORK/small)")
    stage.add_argument("--limit", type=positive, default=600, help="this stage's time limit")
    stage.add_argument("--cpu-only", action="store_true", help="use no GPU, as on a machine without one")
    table = commands.add_parser("table", help="print the table of the stages' results")
    table.add_argument("--work", type=Path, required=True)
    table.add_argument("--outcome", type=outcome, action="append", default=[], metavar="NAME=RC:LIMIT")
    table.add_argument("--not-run", type=not_run, action="append", default=[], metavar="NAME=WHY")
    table.add_argument("--setup-via", default="", help="how setup found the interpreter")
    table.add_argument("--smi-gpu", default="", help="the GPU nvidia-smi lists (for when no stage reported)")
    table.add_argument("--elapsed", type=int, default=0)
    table.add_argument("--budget", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "stages":
        print("\n".join(f"{s.name} {s.limit}" for s in STAGES))
        return 0
    if args.command == "stage":
        return run_stage(args)
    return print_table(args)


if __name__ == "__main__":
    sys.exit(main())
