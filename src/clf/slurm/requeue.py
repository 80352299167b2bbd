"""Requeue the running job, and learn from Slurm whether the requeue really happened.

``scontrol requeue`` runs inside the job it requeues. A successful request makes Slurm kill the
job's processes, and that kill can reach ``scontrol`` before it exits (seen on the local cluster:
exit status -15, nothing on stderr); on a busy controller its reply can also time out while the
request goes through. Its exit status therefore does not tell whether the job was requeued. The
job's own record does: every requeue increments its restart count (``Restarts=`` in ``scontrol
show job``) and leaves it REQUEUED or PENDING. After a failed call this module reads that record,
retries the request with backoff while the job still runs unrequeued (a retry of a requeue that
did happen is refused as "pending" and changes nothing), and only gives up, with every error it
saw, when the job was still not requeued at the deadline.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("clf.slurm.requeue")

# states a job shows once a requeue of it went through (job_state_string in Slurm's protocol defs)
REQUEUED_STATES = frozenset({"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PENDING"})
SCONTROL_TIMEOUT_S = 30
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 8.0

Runner = Callable[[list[str]], subprocess.CompletedProcess]


class RequeueFailed(RuntimeError):
    """Slurm did not requeue the job: every request failed and its record never showed a requeue."""


@dataclass(frozen=True)
class RequeueOutcome:
    """How the requeue went: the requests made, what the failed ones said, and how it was confirmed."""

    tries: int
    errors: tuple[str, ...] = field(default_factory=tuple)
    confirmed_by: str = "scontrol requeue"

    def record(self) -> dict[str, object]:
        """The fields attempts.jsonl keeps when the first request did not simply succeed."""
        if not self.errors:
            return {}
        return {"requeue": {"tries": self.tries, "errors": list(self.errors), "confirmed_by": self.confirmed_by}}


def _run(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=SCONTROL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"no answer within {SCONTROL_TIMEOUT_S} s")
    except OSError as exc:
        return subprocess.CompletedProcess(command, 127, "", str(exc))


def _describe(result: subprocess.CompletedProcess) -> str:
    """One line for a failed call: its exit status (or the signal that killed it) and its words."""
    code = result.returncode
    status = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    words = " ".join(f"{result.stderr or ''} {result.stdout or ''}".split())
    return f"{status}: {words}" if words else f"{status}, nothing printed"


def parse_job_record(text: str) -> dict[str, str]:
    """``scontrol show job --oneliner``'s ``Key=Value`` fields (values without spaces suffice here)."""
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def requeue_seen(record: dict[str, str], restarts_before: int) -> str | None:
    """Why ``record`` shows the job requeued since it started (None: it does not)."""
    restarts, state = record.get("Restarts", ""), record.get("JobState", "")
    if restarts.isdigit() and int(restarts) > restarts_before:
        return f"scontrol show job: Restarts={restarts} (was {restarts_before}), JobState={state}"
    if state in REQUEUED_STATES:
        return f"scontrol show job: JobState={state}"
    return None


def requeue_job(job_id: str, restarts_before: int, deadline_s: float = 30.0, run: Runner = _run,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> RequeueOutcome:
    """Requeue ``job_id`` (restarted ``restarts_before`` times when it started); raises
    ``RequeueFailed`` when Slurm still shows it unrequeued after ``deadline_s`` seconds of retries."""
    started, delay, errors, tries = clock(), FIRST_BACKOFF_S, [], 0
    while True:
        tries += 1
        result = run(["scontrol", "requeue", job_id])
        if result.returncode == 0:
            return RequeueOutcome(tries, tuple(errors))
        errors.append(f"scontrol requeue {job_id}: {_describe(result)}")
        shown = run(["scontrol", "show", "job", job_id, "--oneliner"])
        if shown.returncode == 0:
            seen = requeue_seen(parse_job_record(shown.stdout), restarts_before)
            if seen:
                log.warning("%s; yet Slurm requeued the job (%s)", errors[-1], seen)
                return RequeueOutcome(tries, tuple(errors), seen)
        else:
            errors.append(f"scontrol show job {job_id}: {_describe(shown)}")
        if clock() - started + delay > deadline_s:
            raise RequeueFailed(f"Slurm did not requeue job {job_id} in {tries} tries over "
                                f"{clock() - started:.0f} s ({'; '.join(errors[-2:])})")
        log.warning("%s; the job is not requeued yet, trying again in %.0f s", errors[-1], delay)
        sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
