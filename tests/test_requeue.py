"""``clf.slurm.requeue`` with canned scontrol answers: a failed ``scontrol requeue`` is judged by
the job's record (restart count, state), retried with backoff, and only a requeue that Slurm never
shows is a failure. The same paths against the real cluster: test_slurm_faults.py."""

from __future__ import annotations

import subprocess

import pytest

from clf.slurm.requeue import RequeueFailed, parse_job_record, requeue_job, requeue_seen

RUNNING = "JobId=41 ArrayJobId=40 ArrayTaskId=1 JobName=x JobState=RUNNING Reason=None Restarts=2 BatchFlag=1"
REQUEUED = RUNNING.replace("JobState=RUNNING", "JobState=REQUEUED").replace("Restarts=2", "Restarts=3")


class FakeScontrol:
    """Answers each call with the next canned (returncode, stdout, stderr) for its subcommand."""

    def __init__(self, requeue: list[tuple[int, str]], show: list[tuple[int, str]]) -> None:
        self.answers = {"requeue": list(requeue), "show": list(show)}
        self.calls: list[list[str]] = []
        self.slept: list[float] = []
        self.now = 0.0

    def run(self, command: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(command)
        code, text = self.answers[command[1]].pop(0)
        return subprocess.CompletedProcess(command, code, text if code == 0 else "", "" if code == 0 else text)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def requeue(self, deadline_s: float = 30.0):
        return requeue_job("40_1", 2, deadline_s=deadline_s, run=self.run, sleep=self.sleep, clock=lambda: self.now)


def test_a_request_that_succeeds_is_not_checked_again():
    fake = FakeScontrol(requeue=[(0, "")], show=[])
    outcome = fake.requeue()
    assert (outcome.tries, outcome.errors, outcome.record()) == (1, (), {})
    assert fake.calls == [["scontrol", "requeue", "40_1"]]


def test_a_failed_request_that_went_through_is_a_requeue():
    """scontrol killed by the job's own requeue (-15, nothing printed): the record shows Restarts=3."""
    fake = FakeScontrol(requeue=[(-15, "")], show=[(0, REQUEUED)])
    outcome = fake.requeue()
    assert outcome.tries == 1 and fake.slept == []
    assert outcome.errors == ("scontrol requeue 40_1: killed by signal 15, nothing printed",)
    assert "Restarts=3 (was 2)" in outcome.confirmed_by
    assert outcome.record()["requeue"]["tries"] == 1


def test_a_failed_request_that_did_not_go_through_is_retried_with_backoff():
    fake = FakeScontrol(requeue=[(1, "Socket timed out on send/recv operation"), (1, "Unable to contact slurm controller"),
                                 (0, "")],
                        show=[(0, RUNNING), (1, "slurm_load_jobs error: Unable to contact slurm controller")])
    outcome = fake.requeue()
    assert outcome.tries == 3 and fake.slept == [1.0, 2.0]
    assert outcome.confirmed_by == "scontrol requeue"
    assert [e.split(":")[0] for e in outcome.errors] == ["scontrol requeue 40_1", "scontrol requeue 40_1",
                                                         "scontrol show job 40_1"]


def test_a_retry_refused_as_pending_is_confirmed_by_the_record():
    """The first reply was lost; the retry is refused because the job already pends again."""
    pending = RUNNING.replace("JobState=RUNNING", "JobState=PENDING")  # restart count not yet shown
    fake = FakeScontrol(requeue=[(1, ""), (1, "Job is pending execution for job 40_1")],
                        show=[(1, "Socket timed out"), (0, pending)])
    outcome = fake.requeue()
    assert outcome.tries == 2 and outcome.confirmed_by == "scontrol show job: JobState=PENDING"


def test_a_requeue_that_never_happens_fails_at_the_deadline_with_what_slurm_said():
    fake = FakeScontrol(requeue=[(1, "Requested operation is presently disabled for job 40_1")] * 10,
                        show=[(0, RUNNING)] * 10)
    with pytest.raises(RequeueFailed, match=r"did not requeue job 40_1 in 4 tries .*presently disabled"):
        fake.requeue(deadline_s=10)
    assert fake.slept == [1.0, 2.0, 4.0] and sum(fake.slept) <= 10


@pytest.mark.parametrize("record, seen", [
    ({"JobState": "RUNNING", "Restarts": "2"}, None),
    ({"JobState": "COMPLETING", "Restarts": "2"}, None),
    ({"JobState": "RUNNING", "Restarts": "3"}, "Restarts=3"),
    ({"JobState": "REQUEUE_HOLD", "Restarts": "2"}, "JobState=REQUEUE_HOLD"),
    ({}, None),
])
def test_what_counts_as_requeued(record, seen):
    found = requeue_seen(record, 2)
    assert (found is None) if seen is None else (seen in found)


def test_job_records_are_parsed_from_the_oneliner():
    fields = parse_job_record(REQUEUED + " Command=/bin/sh WorkDir=/tmp/x y")
    assert (fields["JobState"], fields["Restarts"], fields["JobId"]) == ("REQUEUED", "3", "41")
