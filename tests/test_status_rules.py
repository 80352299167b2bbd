"""The merge rules of ``clf status`` (clf/slurm/status.py), fed canned squeue and sacct output as
those commands print it (submitit's own tests mock the Slurm commands the same way). The real
cluster's answers are tested in test_slurm.py and test_greatlakes.py.
"""

from __future__ import annotations

import pytest

from clf.slurm.queue import parse_sacct, parse_squeue
from clf.slurm.status import LOCAL_RULES, SLURM_RULES, LocalSources, SlurmSources, Verdict, decide

# `squeue --noheader --array --format "%i|%T|%r|%M|%N"` and
# `sacct --noheader --parsable2 --allocations --format JobID,State,ExitCode,Elapsed,NodeList`
SQUEUE = """\
41_[3-5%2]|PENDING|JobArrayTaskLimit|0:00|
41_1|RUNNING|None|1:05|gl3002
41_2|PENDING|BeginTime|0:00|
42|PENDING|AssocGrpGRES|0:00|
43|PENDING|Dependency|0:00|
"""
SACCT = """\
41_0|COMPLETED|0:0|00:00:09|gl3001
41_1|RUNNING|0:0|00:01:05|gl3002
41_2|PENDING|0:0|00:00:00|None assigned
41_6|FAILED|1:0|00:00:04|gl3003
41_7|CANCELLED by 0|0:15|00:00:02|gl3001
41_8|COMPLETED|0:0|00:00:09|gl3001
41_9|NODE_FAIL|0:0|00:00:30|gl3001
41_[3-5%2]|PENDING|0:0|00:00:00|None assigned
44|PENDING|0:0|00:00:00|None assigned
"""


def rows(text: str) -> list[list[str]]:
    return [line.split("|") for line in text.splitlines()]


def test_squeue_rows_expand_pending_array_ranges():
    queued = parse_squeue(rows(SQUEUE))
    assert {job: row.state for job, row in queued.items()} == {
        "41_3": "PENDING", "41_4": "PENDING", "41_5": "PENDING", "41_1": "RUNNING", "41_2": "PENDING",
        "42": "PENDING", "43": "PENDING"}
    assert queued["41_4"].reason == "JobArrayTaskLimit" and queued["41_1"].node == "gl3002"


def test_sacct_states_lose_their_by_clause():
    accounted = parse_sacct(rows(SACCT))
    assert accounted["41_7"].state == "CANCELLED" and accounted["41_6"].exit_code == "1:0"
    assert accounted["41_0"].node == "gl3001" and {"41_3", "41_4", "41_5"} <= set(accounted)


QUEUED, ACCOUNTED = parse_squeue(rows(SQUEUE)), parse_sacct(rows(SACCT))


def slurm(job: str | None, recorded: str | None = None, squeue: bool = True, sacct: bool = True,
          cancelled: str | None = None) -> SlurmSources:
    """The sources of a run whose job is ``job``, as squeue/sacct above answer (or not at all);
    ``cancelled``: when clf cancel's record says it cancelled the job."""
    return SlurmSources(recorded=recorded, queued=QUEUED.get(job or "") if squeue else None,
                        accounted=ACCOUNTED.get(job or "") if sacct else None, squeue_answered=squeue, job_id=job,
                        cancelled=cancelled, sacct_answered=sacct)


AT = "2026-12-07T10:00:00+0000"
BY_CANCEL = f"cancelled by clf cancel at {AT}"


# (sources, state, words in the detail, failure): one case per rule at least, in the table's order
SLURM_CASES = [
    (slurm("41_8", "completed"), "completed", "", False),
    (slurm("41_0", "completed"), "completed", "", False),  # sacct agrees
    (slurm("41_1", "running"), "running", "", False),
    (slurm("41_4"), "pending", "array_parallelism runs at a time", False),
    (slurm("42"), "pending", "GPU limit is in use", False),
    (slurm("41_2", "interrupted"), "requeued", "resumes from its checkpoint", False),
    (slurm("41_2", "requeued"), "requeued", "resumes from its checkpoint when it starts again", False),
    (slurm("41_6", "failed"), "failed", "exit code 1:0", True),
    (slurm("41_8", "running"), "failed", "the job ended but the run did not complete (status.json: running)", True),
    (slurm("41_7", "running"), "cancelled", "cancelled", False),
    (slurm("41_9", "running"), "failed", "node failure", True),
    # clf cancel's record (cancelled.json), as when sacct fails or has no record of a task that never started
    (slurm("41_99", "interrupted", sacct=False, cancelled=AT), "cancelled",
     f"{BY_CANCEL}; `clf resubmit` resumes it from its checkpoint", False),
    (slurm("41_99", "running", sacct=False, cancelled=AT), "cancelled", BY_CANCEL, False),  # killed before its record
    (slurm("41_99", "pending", sacct=False, cancelled=AT), "cancelled", BY_CANCEL, False),  # resubmit's record
    (slurm("41_99", sacct=False, cancelled=AT), "cancelled", BY_CANCEL, False),  # a task that never started
    (slurm("41_99", cancelled=AT), "cancelled", BY_CANCEL, False),  # ... and has no accounting record
    (slurm("44", cancelled=AT), "cancelled", BY_CANCEL, False),  # sacct's stale PENDING, gone from squeue
    (slurm("44"), "pending", "", False),  # (without the record: sacct's state)
    (slurm("41_99", "completed", sacct=False, cancelled=AT), "completed", "", False),
    (slurm("41_7", "interrupted", cancelled=AT), "cancelled", "cancelled", False),  # sacct's own word first
    (slurm("41_1", "running", sacct=False, cancelled=AT), "running", "", False),  # still in squeue: ending
    (slurm("41_99", "failed", sacct=False, cancelled=AT), "failed", "failed", True),  # it failed by itself
    (slurm("41_99", "running", squeue=False, sacct=False, cancelled=AT), "running", "", False),  # may still run
    (slurm("41_1", "running", squeue=False), "running", "", False),
    (slurm("41_6", "failed", squeue=False, sacct=False), "failed", "failed", True),
    (slurm("41_99", "running"), "failed", "left the queue while running (killed?)", True),
    # sacct down (slurmdbd stopped): a job gone from squeue is not taken for failed, nor for ended
    (slurm("41_99", "running", sacct=False), "unknown", "job 41_99 left the queue while running; sacct", False),
    (slurm("41_99", "requeued", sacct=False), "unknown", "left the queue while requeued", False),
    (slurm("41_99", sacct=False), "unknown", "left the queue before it started; sacct", False),
    (slurm("41_99", "pending", sacct=False), "unknown", "left the queue before it started", False),  # resubmitted
    (slurm("41_99", "interrupted"), "cancelled", "stopped by a signal after a checkpoint", False),
    (slurm("41_99", "requeued", squeue=False, sacct=False), "running", "", False),
    (slurm(None), "unknown", "never submitted", False),
    (slurm("41_99"), "unknown", "Slurm does not know job 41_99", False),
]


def first_rule(rules, sources) -> str:
    return next(rule.when for rule in rules if rule.holds(sources))


@pytest.mark.parametrize("sources, state, words, failure", SLURM_CASES)
def test_slurm_rules(sources, state, words, failure):
    verdict = decide(SLURM_RULES, sources)
    assert (verdict.state, verdict.failure) == (state, failure)
    assert words in verdict.detail


def test_every_slurm_rule_is_exercised():
    assert {first_rule(SLURM_RULES, case[0]) for case in SLURM_CASES} == {rule.when for rule in SLURM_RULES}


def local(recorded: str | None, runner: bool | None = True, working: bool = True) -> LocalSources:
    return LocalSources(recorded=recorded, runner=runner, runner_pid=4242, working=working, error=None)


LOCAL_CASES = [
    (local(None), Verdict("pending", "queued in the local runner (pid 4242)")),
    (local(None, runner=None), Verdict("pending", "")),
    (local(None, runner=False), Verdict("cancelled", "the local runner stopped before starting it")),
    (local("running"), Verdict("running")),
    (local("requeued", working=False), Verdict("requeued")),
    (local("requeued", runner=False, working=False),
     Verdict("failed", "its process is gone while requeued (killed?)", failure=True)),
    (local("running", working=False), Verdict("failed", "its process is gone while running (killed?)", failure=True)),
    (local("interrupted"), Verdict("cancelled", "stopped by a signal after a checkpoint; resubmit resumes it")),
    (local("failed"), Verdict("failed", "failed", failure=True)),
    (local("completed", runner=False), Verdict("completed")),
]


@pytest.mark.parametrize("sources, verdict", LOCAL_CASES)
def test_local_rules(sources, verdict):
    assert decide(LOCAL_RULES, sources) == verdict


def test_every_local_rule_is_exercised():
    assert {first_rule(LOCAL_RULES, case[0]) for case in LOCAL_CASES} == {rule.when for rule in LOCAL_RULES}


def test_the_cancel_record_covers_the_cancelled_submission_only(tmp_path):
    """A resubmitted run (a new job of a new submission) is not covered; nor a reused job id of
    another submission; the record survives a save and load, and a damaged one reads as none."""
    from clf.slurm import cancels
    from clf.slurm.manifest import RunEntry

    run = RunEntry("run", "", [])
    run.set_job("57_3")
    cancels.save(tmp_path, {"57": cancels.Cancelled(AT, 0)})
    record = cancels.load(tmp_path)
    assert cancels.covering(record, run) == cancels.Cancelled(AT, 0)
    run.submission = 1
    assert cancels.covering(record, run) is None  # job id 57 again, of another submission
    run.set_job("58_0")
    assert cancels.covering(record, run) is None  # resubmitted
    (tmp_path / "cancelled.json").write_text('{"57": {"time": ')
    assert cancels.load(tmp_path) == {}


def fake_scancel(bin_dir, exit_status: int, message: str = ""):
    """A PATH whose ``scancel`` prints ``message`` and exits ``exit_status`` (Slurm's own is not
    asked: the sweep's job ids below are made up)."""
    import os

    bin_dir.mkdir()
    (bin_dir / "scancel").write_text(f"#!/bin/sh\necho '{message}' >&2\nexit {exit_status}\n")
    (bin_dir / "scancel").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def slurm_sweep(sweep_dir):
    """A Slurm sweep's manifest whose two runs are tasks of job 9999991 (submission 0)."""
    from clf.slurm.manifest import Manifest, RunEntry, Submission

    runs = [RunEntry(f"seed={i}", f"seed={i}", [f"seed={i}"]) for i in range(2)]
    for i, run in enumerate(runs):
        run.set_job(f"9999991_{i}")
    manifest = Manifest("clf", "slurm", "slurm", str(sweep_dir), "2026-12-07T10:00:00+0000", {}, [], {},
                        [Submission(AT, "submit", [r.name for r in runs], ["9999991"])], runs)
    sweep_dir.mkdir()
    manifest.save()
    return manifest


def test_cancel_records_what_slurm_cancelled_and_takes_it_back_when_scancel_fails(tmp_path):
    from helpers import one_line_error, run_clf

    from clf.slurm import cancels

    sweep = tmp_path / "sweep"
    slurm_sweep(sweep)
    refused = run_clf("cancel", str(sweep), env=fake_scancel(tmp_path / "refuses", 1, "scancel: error: Access denied"))
    assert refused.returncode != 0
    assert one_line_error(refused).endswith("scancel 9999991 failed: scancel: error: Access denied")
    assert cancels.load(sweep) == {}  # nothing is taken for cancelled that Slurm refused
    run_clf("cancel", str(sweep), env=fake_scancel(tmp_path / "accepts", 0), check=True)
    (entry,) = cancels.load(sweep).values()
    assert list(cancels.load(sweep)) == ["9999991"] and entry.submission == 0
