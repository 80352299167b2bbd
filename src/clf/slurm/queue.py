"""What Slurm says about sweeps' jobs: one ``squeue`` and one ``sacct`` call for all of them, however
many runs and arrays (each names every job: ``--jobs 41,42,57``), run at the same time and while
the caller reads the runs' files. Both commands ask the shared controller / accounting database,
which big clusters rate-limit (submitit issue 1759, "too many sacct requests"), so never one call
per run or array. Either may be missing (no Slurm here, accounting disabled): the caller then
knows less.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

TIMEOUT_S = 20
# the longest --jobs value: Linux caps one argument at 128 KiB (MAX_ARG_STRLEN); 100,000 characters
# hold about 11,000 distinct jobs, so only sweeps with more than that cost a second call
MAX_JOBS_CHARS = 100_000
_RANGE = re.compile(r"(?P<main>\d+)_\[(?P<ranges>[\d,\-]+)(%\d+)?\]")

# Slurm's pending reasons, in words (https://slurm.schedmd.com/job_reason_codes.html)
REASONS = {
    "Priority": "waiting for jobs with a higher priority",
    "Resources": "waiting for free nodes / GPUs",
    "Dependency": "waiting for the jobs it depends on (--after)",
    "DependencyNeverSatisfied": "a job it depends on failed, so it will never start: clf cancel, then resubmit",
    "JobArrayTaskLimit": "waiting for a free slot: the sweep runs cluster.array_parallelism runs at a time",
    "AssocGrpGRES": "your account's GPU limit is in use (class accounts: 1 GPU per student): starts when your "
                    "other GPU job ends",
    "AssocGrpBillingMinutes": "your account's compute budget (billing minutes) is used up: it will not start "
                              "until the account owner (instructor / PI) adds more",
    "AssocGrpBilling": "your account's billing limit is reached: starts when its running jobs end",
    "AssocGrpCpuLimit": "your account's CPU limit is in use: starts when its running jobs end",
    "AssocGrpMemLimit": "your account's memory limit is in use: starts when its running jobs end",
    "AssocGrpJobsLimit": "your account's running-job limit is reached: starts when one of its jobs ends",
    "AssocMaxJobsLimit": "your running-job limit is reached (class accounts: 2 running jobs): starts when one ends",
    "AssocGrpGRESMinutes": "your account's GPU-minutes budget is used up: ask the account owner",
    "AssocGrpCPUMinutesLimit": "your account's CPU-minutes budget is used up: ask the account owner",
    "QOSMaxJobsPerUserLimit": "you already run as many jobs as the QOS allows",
    "QOSMaxGRESPerUser": "you already use as many GPUs as the QOS allows",
    "QOSGrpGRES": "the QOS's GPUs are all in use",
    "ReqNodeNotAvail": "the nodes it needs are down, drained or reserved (maintenance?)",
    "PartitionTimeLimit": "its time limit exceeds the partition's: cancel and resubmit with a smaller "
                          "cluster.timeout_min",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "BeginTime": "waiting for its start time",
    "JobHeldUser": "held by you: scontrol release JOBID",
    "JobHeldAdmin": "held by an administrator",
    "BadConstraints": "its constraints can never be met",
    "InvalidAccount": "the account is not valid for this partition: check cluster.account",
    "InvalidQOS": "the QOS is not valid: check cluster.qos",
    "launch failed requeued held": "Slurm could not start it and held it: scontrol release JOBID",
}


def explain(reason: str) -> str:
    if not reason or reason == "None":
        return ""
    return REASONS.get(reason, reason)


@dataclass(frozen=True)
class QueueRow:
    state: str            # Slurm's state, first word (RUNNING, PENDING, COMPLETED, CANCELLED, ...)
    reason: str = ""      # squeue's pending reason
    elapsed: str = ""
    exit_code: str = ""
    node: str = ""


@dataclass
class QueueInfo:
    squeue: dict[str, QueueRow] | None    # jobs in the queue, by job id (None: squeue unavailable)
    sacct: dict[str, QueueRow] | None     # accounting records, by job id (None: sacct unavailable)
    notes: list[str]


def _expand(job_id: str) -> list[str]:
    """``12_[3-5,8%2]`` -> ``12_3 12_4 12_5 12_8``; other ids unchanged."""
    match = _RANGE.fullmatch(job_id)
    if not match:
        return [job_id]
    ids = []
    for part in match["ranges"].split(","):
        low, _, high = part.partition("-")
        ids += [f"{match['main']}_{i}" for i in range(int(low), int(high or low) + 1)]
    return ids


def _start(command: list[str]) -> subprocess.Popen[str] | None:
    if shutil.which(command[0]) is None:
        return None
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str] | None, name: str, notes: list[str]) -> list[list[str]] | None:
    if process is None:
        notes.append(f"{name} not found")
        return None
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        notes.append(f"{name} did not answer in {TIMEOUT_S} s")
        return None
    if process.returncode != 0 and not out.strip():
        message = " ".join(err.split())
        if "Invalid job id" in message:  # every job has left squeue
            return []
        notes.append(f"{name} failed: {message[:160]}")
        return None
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _finish_all(processes: list[subprocess.Popen[str] | None], name: str,
                notes: list[str]) -> list[list[str]] | None:
    """Every call's rows; None if one of them did not answer (a part would pass for the whole)."""
    answers = [_finish(process, name, notes) for process in processes]
    if any(answer is None for answer in answers):
        return None
    return [row for answer in answers if answer is not None for row in answer]


def job_lists(job_ids: list[str], limit: int = MAX_JOBS_CHARS) -> list[str]:
    """``--jobs`` values naming the jobs (arrays) of ``job_ids``, each at most ``limit`` characters:
    one value, unless the jobs are too many for one argument."""
    lists: list[str] = []
    for job in sorted({j.split("_")[0] for j in job_ids}, key=int):
        if lists and len(lists[-1]) + 1 + len(job) <= limit:
            lists[-1] += f",{job}"
        else:
            lists.append(job)
    return lists


SQUEUE_FORMAT = "%i|%T|%r|%M|%N"                                # job id, state, reason, elapsed, nodes
SACCT_FORMAT = "JobID,State,ExitCode,Elapsed,NodeList"


def parse_squeue(lines: list[list[str]]) -> dict[str, QueueRow]:
    """``squeue --format SQUEUE_FORMAT`` rows, split at ``|`` -> a row per job / array task."""
    return {job: QueueRow(fields[1], reason=fields[2], elapsed=fields[3], node=fields[4])
            for fields in lines if len(fields) >= 5 for job in _expand(fields[0])}


def parse_sacct(lines: list[list[str]]) -> dict[str, QueueRow]:
    """``sacct --format SACCT_FORMAT`` rows -> a row per job / array task (``CANCELLED by 0`` -> CANCELLED)."""
    return {job: QueueRow(fields[1].split()[0] if fields[1] else "", exit_code=fields[2], elapsed=fields[3],
                          node=fields[4])
            for fields in lines if len(fields) >= 5 for job in _expand(fields[0])}


@dataclass
class Query:
    """squeue and sacct, started: Slurm answers while the caller reads files; ``answer`` waits."""

    squeue: list[subprocess.Popen[str] | None]
    sacct: list[subprocess.Popen[str] | None]

    def answer(self) -> QueueInfo:
        notes: list[str] = []
        squeue_lines = _finish_all(self.squeue, "squeue", notes)
        sacct_lines = _finish_all(self.sacct, "sacct", notes)
        return QueueInfo(None if squeue_lines is None else parse_squeue(squeue_lines),
                         None if sacct_lines is None else parse_sacct(sacct_lines), list(dict.fromkeys(notes)))


def start(job_ids: list[str]) -> Query:
    """squeue (jobs in the queue, pending reasons) and sacct (finished ones) for ``job_ids``' jobs,
    started: one call of each (more only past ``MAX_JOBS_CHARS``); none without job ids."""
    lists = job_lists(job_ids)
    return Query([_start(["squeue", "--noheader", "--array", "--jobs", jobs, "--format", SQUEUE_FORMAT])
                  for jobs in lists],
                 [_start(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", jobs, "--format",
                          SACCT_FORMAT]) for jobs in lists])


def query(job_ids: list[str]) -> QueueInfo:
    """``start``, then wait for the answer."""
    return start(job_ids).answer()


def max_array_size() -> int | None:
    """The cluster's MaxArraySize (``scontrol show config``): an array holds at most that many
    tasks. None when scontrol does not say (sbatch then decides)."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)\s*$", out.stdout, re.MULTILINE)
    return int(match[1]) if match and int(match[1]) > 0 else None


def scancel(job_ids: list[str]) -> subprocess.CompletedProcess[str]:
    """One ``scancel`` for all of ``job_ids``."""
    return subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=TIMEOUT_S)
