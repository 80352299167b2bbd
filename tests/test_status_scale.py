"""``clf status`` of a 5,000-run sweep split over several arrays, some runs resubmitted: one squeue
and one sacct call per look, whatever the number of runs, arrays and sweeps (big clusters
rate-limit both: submitit issue 1759, "too many sacct requests"), and each run's state right.

squeue and sacct are mocked, as submitit's tests mock them: ``subprocess.Popen`` answers with
canned output in Slurm 22.05's formats (as the local cluster prints it: squeue ``--array`` lists
each task, sacct lists a pending array's tasks as one ``JOB_[RANGES%LIMIT]`` row) and records each
call. tests/test_status_scale_slurm.py counts the calls of the real commands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clf.commands import status as status_command
from clf.slurm import queue
from clf.slurm.manifest import Manifest, RunEntry, Submission

ARRAY_SIZE, ARRAYS, FIRST_ARRAY, RESUBMISSION = 1000, 5, 7001, "7010"


@dataclass(frozen=True)
class Group:
    """Runs alike: what Slurm and their own files say of them, and the state ``clf status`` gives."""

    runs: range
    expected: str
    squeue: tuple[str, str] | None = None     # state, reason (the current job)
    sacct: tuple[str, str] | None = None      # state, exit code (the current job)
    recorded: str | None = None               # status.json's state
    resubmitted: tuple[str, str] | None = None  # its first job's sacct row (state, exit code): it was resubmitted


# 5 arrays of 1,000 runs (7001-7005, each after the one before); 250 runs of 7002 were resubmitted
# as array 7010 after failing or timing out there
GROUPS = (
    Group(range(0, 1750), "completed", sacct=("COMPLETED", "0:0"), recorded="completed"),
    Group(range(1750, 1800), "running", squeue=("RUNNING", "None"), sacct=("RUNNING", "0:0"), recorded="running",
          resubmitted=("FAILED", "1:0")),
    Group(range(1800, 2000), "pending", squeue=("PENDING", "JobArrayTaskLimit"), recorded="pending",
          resubmitted=("TIMEOUT", "0:0")),
    Group(range(2000, 2850), "completed", sacct=("COMPLETED", "0:0"), recorded="completed"),
    Group(range(2850, 2900), "failed", sacct=("FAILED", "1:0"), recorded="failed"),
    Group(range(2900, 3000), "running", squeue=("RUNNING", "None"), sacct=("RUNNING", "0:0"), recorded="running"),
    Group(range(3000, 5000), "pending", squeue=("PENDING", "Dependency")),
)
EXPECTED_COUNTS = {"completed": 2600, "running": 150, "pending": 2200, "failed": 50}


def first_job(i: int) -> str:
    return f"{FIRST_ARRAY + i // ARRAY_SIZE}_{i % ARRAY_SIZE}"


def ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (Slurm's array ranges)."""
    parts, start = [], None
    for k, i in enumerate(indices):
        start = i if start is None else start
        if k + 1 == len(indices) or indices[k + 1] != i + 1:
            parts.append(f"{start}-{i}" if i > start else str(i))
            start = None
    return ",".join(parts)


class FakeProcess:
    def __init__(self, out: str) -> None:
        self.out, self.returncode = out, 0

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        return self.out, ""

    def kill(self) -> None:
        pass


@dataclass
class FakeSlurm:
    """squeue and sacct of a cluster whose jobs are ``queued`` (task -> state, reason) and
    ``accounted`` (task -> state, exit code); each call's argv is kept in ``calls``."""

    queued: dict[str, tuple[str, str]] = field(default_factory=dict)
    accounted: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def popen(self, argv: list[str], **_: object) -> FakeProcess:
        self.calls.append(list(argv))
        jobs = set(argv[argv.index("--jobs") + 1].split(","))
        ours = sorted((task for task in self.queued if task.split("_")[0] in jobs), key=_order)
        rows = self._squeue(ours) if argv[0] == "squeue" else self._sacct(ours, jobs)
        return FakeProcess("".join(row + "\n" for row in rows))

    def _squeue(self, tasks: list[str]) -> list[str]:
        """``--array``: a row per task."""
        rows = []
        for task in tasks:
            state, reason = self.queued[task]
            running = state == "RUNNING"
            rows.append(f"{task}|{state}|{reason}|{'1:05' if running else '0:00'}|{'gl3001' if running else ''}")
        return rows

    def _sacct(self, queued: list[str], jobs: set[str]) -> list[str]:
        """A row per task that started; one per array for its tasks that never did."""
        rows = [f"{task}|{state}|{code}|00:01:05|gl3001" for task, (state, code) in sorted(self.accounted.items())
                if task.split("_")[0] in jobs]
        waiting: dict[str, list[int]] = {}
        for task in queued:
            if self.queued[task][0] == "PENDING" and task not in self.accounted:
                job, _, index = task.partition("_")
                waiting.setdefault(job, []).extend([int(index)] if index else [])
        return rows + [f"{job}{f'_[{ranges(indices)}%100]' if indices else ''}|PENDING|0:0|00:00:00|None assigned"
                       for job, indices in waiting.items()]

    def count(self, command: str) -> int:
        return sum(1 for call in self.calls if call[0] == command)

    def jobs_arguments(self) -> list[str]:
        return [call[call.index("--jobs") + 1] for call in self.calls]


def _order(task: str) -> tuple[int, int]:
    job, _, index = task.partition("_")
    return int(job), int(index or -1)


@pytest.fixture
def slurm(monkeypatch) -> FakeSlurm:
    fake = FakeSlurm()
    monkeypatch.setattr(queue.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(queue.subprocess, "Popen", fake.popen)
    return fake


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def new_manifest(sweep: Path, runs: list[RunEntry], submissions: list[Submission]) -> Manifest:
    manifest = Manifest(name="clf", profile="slurm", executor="slurm", sweep_dir=str(sweep), created="2026-01-01",
                        code={}, argv=[], cluster={}, submissions=submissions, runs=runs)
    sweep.mkdir(parents=True, exist_ok=True)
    manifest.save()
    return manifest


def build_sweep(sweep: Path, slurm: FakeSlurm) -> Manifest:
    """The 5,000-run sweep of ``GROUPS``: its manifest, its runs' files, and Slurm's jobs."""
    runs, resubmitted = [], []
    for group in GROUPS:
        for i in group.runs:
            run = RunEntry(name=f"seed={i}", label=f"seed={i}", overrides=[f"seed={i}"])
            run.set_job(first_job(i))
            if group.resubmitted:
                slurm.accounted[run.job_id] = group.resubmitted
                run.history.append(run.job_id)
                run.set_job(f"{RESUBMISSION}_{len(resubmitted)}")
                run.submission = 1
                resubmitted.append(run.name)
            if group.squeue:
                slurm.queued[run.job_id] = group.squeue
            if group.sacct:
                slurm.accounted[run.job_id] = group.sacct
            if group.recorded:
                write_json(sweep / run.run_dir / "status.json", {"state": group.recorded, "submission": run.submission,
                                                                 "restarts": 0, "elapsed_s": 65.0})
                write_json(sweep / run.run_dir / "metrics.json", {"steps": 900, "total_steps": 900, "dev_f1": 0.8})
            runs.append(run)
    submissions = [Submission(time="2026-01-01", kind="submit", runs=[r.name for r in runs],
                              job_ids=[str(FIRST_ARRAY + k) for k in range(ARRAYS)]),
                   Submission(time="2026-01-02", kind="resubmit", runs=resubmitted, job_ids=[RESUBMISSION])]
    return new_manifest(sweep, runs, submissions)


def status_json(capsys, *args: str) -> tuple[int, object]:
    code = status_command.main(["--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_a_5000_run_sweep_over_six_arrays_costs_one_squeue_and_one_sacct(tmp_path, slurm, capsys):
    build_sweep(tmp_path / "sweep", slurm)
    code, data = status_json(capsys, str(tmp_path / "sweep"))
    assert code == 0 and slurm.count("squeue") == 1 and slurm.count("sacct") == 1
    assert slurm.jobs_arguments() == ["7001,7002,7003,7004,7005,7010"] * 2
    assert data["counts"] == EXPECTED_COUNTS
    runs = {run["name"]: run for run in data["runs"]}
    for group in GROUPS:
        assert {runs[f"seed={i}"]["state"] for i in group.runs} == {group.expected}, group
    assert runs["seed=1750"]["job_id"] == "7010_0" and runs["seed=1999"]["job_id"] == "7010_249"
    assert "array_parallelism" in runs["seed=1800"]["detail"] and "depends on" in runs["seed=4999"]["detail"]
    assert runs["seed=2850"]["detail"] == "exit code 1:0" and runs["seed=0"]["dev_f1"] == 0.8


def test_several_sweeps_share_the_one_squeue_and_sacct_call(tmp_path, slurm, capsys):
    build_sweep(tmp_path / "big", slurm)
    small = []
    for i in range(10):
        run = RunEntry(name=f"lr={i}", label=f"lr={i}", overrides=[])
        run.set_job(f"7100_{i}")
        slurm.queued[run.job_id] = ("PENDING", "Priority")
        small.append(run)
    new_manifest(tmp_path / "small", small, [Submission(time="2026-01-03", kind="submit", runs=[], job_ids=["7100"])])
    code, data = status_json(capsys, str(tmp_path / "big"), str(tmp_path / "small"))
    assert code == 0 and slurm.count("squeue") == 1 and slurm.count("sacct") == 1
    assert slurm.jobs_arguments() == ["7001,7002,7003,7004,7005,7010,7100"] * 2
    assert [sweep["counts"] for sweep in data] == [EXPECTED_COUNTS, {"pending": 10}]


def test_wait_polls_within_the_limits_with_one_squeue_and_sacct_per_look(tmp_path, slurm, capsys, monkeypatch):
    manifest = build_sweep(tmp_path / "sweep", slurm)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the sweep ends during the third wait
        slept.append(seconds)
        if len(slept) == 3:
            for run in manifest.runs:
                slurm.queued.pop(run.job_id, None)
                slurm.accounted[run.job_id] = ("COMPLETED", "0:0")
                write_json(tmp_path / "sweep" / run.run_dir / "status.json",
                           {"state": "completed", "submission": run.submission})

    monkeypatch.setattr(status_command.time, "sleep", sleep)
    code, data = status_json(capsys, "--wait", str(tmp_path / "sweep"))
    assert code == 0 and data["counts"] == {"completed": 5000}
    assert len(slept) == 3 and all(30 <= s <= 120 for s in slept) and slept == sorted(slept)
    assert slurm.count("squeue") == slurm.count("sacct") == 4  # the first look, then one after each wait


def test_the_jobs_list_is_split_only_past_one_arguments_limit(slurm):
    few = [f"{1_000_000 + k}_0" for k in range(5000)] * 2
    assert queue.job_lists(few) == [",".join(str(1_000_000 + k) for k in range(5000))]
    many = [str(1_000_000 + k) for k in range(20_000)]  # 20,000 distinct jobs: 160,000 characters
    lists = queue.job_lists(many)
    assert len(lists) == 2 and all(len(value) <= queue.MAX_JOBS_CHARS for value in lists)
    assert ",".join(lists).split(",") == many
    slurm.queued.update({many[0]: ("PENDING", "Priority"), many[-1]: ("RUNNING", "None")})
    info = queue.query(many)
    assert slurm.count("squeue") == 2 and slurm.count("sacct") == 2
    assert info.squeue is not None and {many[0], many[-1]} <= set(info.squeue)


def test_no_job_ids_no_calls(slurm):
    info = queue.query([])
    assert slurm.calls == [] and info.squeue == {} and info.sacct == {}


def test_a_failed_part_of_a_split_call_leaves_that_command_unanswered(slurm, monkeypatch):
    """Half of sacct's answer would pass for all of it: finished jobs would look unknown."""
    many = [str(1_000_000 + k) for k in range(20_000)]
    slurm.queued.update({many[0]: ("PENDING", "Priority"), many[-1]: ("RUNNING", "None")})
    answer = slurm.popen

    def popen(argv: list[str], **kwargs: object) -> FakeProcess:
        process = answer(argv, **kwargs)
        if argv[0] == "sacct" and slurm.count("sacct") == 2:
            process.out, process.returncode = "", 1
        return process

    monkeypatch.setattr(queue.subprocess, "Popen", popen)
    info = queue.query(many)
    assert slurm.count("squeue") == 2 and slurm.count("sacct") == 2
    assert info.squeue is not None and {many[0], many[-1]} <= set(info.squeue) and info.sacct is None
    assert info.notes == ["sacct failed: "]
