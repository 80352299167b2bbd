"""A worker job (``cluster.workers=N``): drains its submission's queue on shared storage
(``clf.slurm.claims``), ``cluster.runs_per_worker`` runs at a time, until nothing is left.

Each of the N workers loops: claim the next pending run in sweep order that fits the time it has
left (``clf.slurm.fit``), hand it to a free slot (``clf.slurm.slot``: a process of its own, so a
crash or an OOM takes only that run down), and claim the next. Meanwhile it touches its claims
(the heartbeat), keeps its record in ``queue/N/workers/``, and takes over the claims of dead
holders: a claim whose heartbeat is older than ``3 x cluster.worker_heartbeat_s`` is checked
with Slurm (its worker's job is no longer running: a lost node, ``scancel``, a SIGKILL), or on
this host with the process table; one older than ``cluster.worker_dead_after_s`` is dead
whatever Slurm says (a hung node). The run it held resumes from its checkpoint; a run whose
process died ``cluster.max_crashes`` times is failed with that reason.

A worker does not end while other workers hold claims (it is their safety net), nor while a run
it could take is pending. At Slurm's warning (USR2) its slots checkpoint and release their runs,
and the worker requeues itself when runs are left; SIGTERM (``clf cancel``) releases them and
ends. When the runs left do not fit its remaining time, it requeues itself for a fresh time limit.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, IO

from clf.slurm import jobfiles
from clf.slurm.claims import Board, Claim, Holder, local_holder_alive
from clf.slurm.fit import Decision, Lifetime, Pace, decide, slurm_end_time
from clf.slurm.job import CRASH_REASONS, CRASHED, TIME_LIMIT_MARGIN_S, JobInfo, RunSpec, ignore_late_warnings, \
    start_task
from clf.slurm.requeue import RequeueFailed, requeue_job
from clf.stop import EXIT_RESUMABLE, LOCAL_REQUEUE_EXIT, StopRequest
from clf.train.lock import held_elsewhere

log = logging.getLogger("clf.slurm.worker")
POLL_S = 0.5
SUSPECT_HEARTBEATS = 3      # a claim this many heartbeats old is checked with Slurm / the process table
END_TIME_EVERY_S = 60       # how often a worker asks Slurm for its job's end time again


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker of a submission gets (pickled by submitit; plain data only)."""

    sweep_dir: str
    submission: int
    runs: tuple[RunSpec, ...]          # in sweep order
    slots: int = 1                     # cluster.runs_per_worker
    heartbeat_s: float = 15.0
    dead_after_s: float = 600.0
    max_crashes: int = 5
    seconds_per_step: float = 0.05     # the first guess of the pace
    timeout_min: int = 60
    signal_delay_s: int = 120
    max_requeues: int = 6              # cluster.max_num_timeout + max_num_preempt


@dataclass
class Slot:
    """A slot process and the run it trains now."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    results: IO[str] | None = None
    run: str | None = None
    started: float = 0.0
    steps_before: int = 0
    exit_code: int = 0

    @property
    def busy(self) -> bool:
        return self.run is not None


@dataclass
class WorkerState:
    why: str = "starting"
    runs_done: int = 0
    requeues: int = 0
    stopping: str | None = None          # the signal that stops this worker
    released: list[str] = field(default_factory=list)


def _steps(run_dir: str) -> tuple[int, int | None]:
    """(steps done, the run's total if it started) from its metrics.json."""
    metrics = jobfiles.read_json(os.path.join(run_dir, "metrics.json")) or {}
    steps, total = metrics.get("steps"), metrics.get("total_steps")
    return (int(steps) if isinstance(steps, int) else 0), (int(total) if isinstance(total, int) else None)


def steps_left(spec: RunSpec, known_total: int | None) -> int | None:
    """Steps the run still has to train: from its metrics, else its config, else the other runs."""
    done, total = _steps(spec.run_dir)
    train = spec.config.get("train", {})
    target = train.get("stop_at_step") or total or train.get("max_steps") or known_total
    return None if target is None else max(0, int(target) - done)


def crashes(spec: RunSpec) -> int:
    """Attempts of this submission that ended with the run's process gone."""
    return sum(1 for a in jobfiles.read_attempts(Path(spec.run_dir))
               if a.get("event") == "end" and a.get("submission") == spec.submission
               and a.get("reason") in CRASH_REASONS)


def record_crash(spec: RunSpec, how: str, max_crashes: int) -> bool:
    """End the run's unfinished attempt as crashed (or lost); True when it reached the crash limit,
    and then it is failed with that reason."""
    run_dir = Path(spec.run_dir)
    attempts = jobfiles.read_attempts(run_dir)
    last = attempts[-1] if attempts else {}
    if last.get("event") == "start":
        jobfiles.append_attempt(run_dir, {**last, "event": "end", "start": last.get("time"), "end": _iso(),
                                          "reason": CRASHED if how.startswith("its process") else "lost",
                                          "error": how})
    count = crashes(spec)
    status = jobfiles.read_status(run_dir) or {}
    if count >= max_crashes:
        error = (f"{how}: its process died {count} times (cluster.max_crashes={max_crashes}); "
                 "`clf resubmit --failed` tries again")
        jobfiles.write_status(run_dir, {**status, "state": jobfiles.FAILED, "error": error,
                                        "submission": spec.submission})
        return True
    jobfiles.write_status(run_dir, {**status, "state": jobfiles.REQUEUED, "submission": spec.submission,
                                    "error": f"{how} ({count} of {max_crashes} crashes); another attempt resumes it"})
    return False


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def final(spec: RunSpec) -> bool:
    record = jobfiles.read_status(spec.run_dir) or {}
    return record.get("submission") == spec.submission and record.get("state") in (jobfiles.COMPLETED,
                                                                                     jobfiles.FAILED)


class Worker:
    """One worker job's loop (see the module's docstring)."""

    def __init__(self, spec: WorkerSpec, info: JobInfo, stop: StopRequest, started: float) -> None:
        self.spec, self.info, self.stop = spec, info, stop
        self.board = Board.of(spec.sweep_dir, spec.submission)
        self.board.create()
        self.order = [run.name for run in spec.runs]
        self.specs = {run.name: run for run in spec.runs}
        name = info.job_id if info.executor == "slurm" else f"local-{os.getpid()}"
        self.holder = Holder(worker=name, incarnation=info.restarts or 0, host=info.node, pid=os.getpid())
        self.pace = Pace(spec.seconds_per_step)
        self.life = self._lifetime(started)
        self.slots = [Slot(i) for i in range(spec.slots)]
        self.selector = selectors.DefaultSelector()
        self.state = WorkerState(requeues=int((self._previous_record() or {}).get("requeues") or 0))
        self.totals: list[int] = []
        self.last_beat = 0.0

    # ----------------------------------------------------------------- lifetime ---
    def _lifetime(self, started: float) -> Lifetime:
        """The job's end as Slurm has it (an administrator may change a running job's limit), else
        its start plus its time limit."""
        end = slurm_end_time(self.info.job_id) if self.info.executor == "slurm" else None
        limit = self.spec.timeout_min * 60.0
        self.life_read = time.time()
        return Lifetime(end=end or started + limit, limit_s=limit, warning_s=self.spec.signal_delay_s,
                        margin_s=TIME_LIMIT_MARGIN_S)

    def _refresh_lifetime(self) -> None:
        if self.info.executor == "slurm" and time.time() - self.life_read > END_TIME_EVERY_S:
            self.life = self._lifetime(self.life.end - self.life.limit_s)

    def _previous_record(self) -> dict[str, Any] | None:
        return next((r for r in self.board.worker_records() if r.get("worker") == self.holder.worker), None)

    # ----------------------------------------------------------------- the loop ---
    def run(self) -> dict[str, Any]:
        log.info("worker %s: %d run(s) in the queue %s, %d slot(s)", self.holder.worker, len(self.order),
                 self.board.root, len(self.slots))
        self._take_over_my_previous_claims()
        while True:
            self._collect()
            if self.stop.requested and not self.state.stopping:
                self._stop_slots(self.stop.signal_name or "SIGTERM")
            if not self.state.stopping:
                self._fill_slots()
            self._beat()
            if not any(slot.busy for slot in self.slots) and self._should_end():
                break
            self._wait()
        return self._end()

    def _should_end(self) -> bool:
        if self.state.stopping:
            return True
        pending = self.board.pending(self.order)
        if pending:  # pending, yet nothing fits: _fill_slots said why
            return not self.life.fresh()
        others = [c for c in self.board.active_claims() if c.holder and c.holder.worker != self.holder.worker]
        if others:
            self.state.why = f"waiting: {len(others)} run(s) held by other workers (taking over if one dies)"
            return False
        self.state.why = "done: nothing left to claim"
        return True

    def _wait(self) -> None:
        """Until a slot answers, or POLL_S (the queue and the stop request are polled)."""
        if self.selector.get_map():
            self.selector.select(timeout=POLL_S)
        else:
            time.sleep(POLL_S)

    # ------------------------------------------------------------------ claims ---
    def _fill_slots(self) -> None:
        for slot in self.slots:
            if slot.busy:
                continue
            name = self._claim_next()
            if name is None:
                return
            self._assign(slot, name)

    def _claim_next(self) -> str | None:
        """Claim the first pending run that fits this worker's time; take over dead claims first
        when nothing is pending."""
        self._refresh_lifetime()
        for attempt in range(2):
            pending = self.board.pending(self.order)
            if not pending and attempt == 0:
                self._take_over_dead_claims()
                continue
            first_no: Decision | None = None
            for name in pending:
                spec = self.specs[name]
                decision = decide(name, steps_left(spec, self._known_total()), self.pace, self.life)
                if not decision.take:
                    first_no = first_no or decision
                    continue
                if not self.board.try_claim(name, self.holder):
                    continue  # another worker was faster
                if final(spec):  # finished by another worker between the listing and the claim
                    self.board.finish(name)
                    continue
                if held_elsewhere(Path(spec.run_dir)):  # a trainer whose claim was taken away still trains it
                    self.board.release(name, self.holder)
                    continue
                log.info("claimed %s (%s)", name, decision.why)
                return name
            if first_no:
                self.state.why = f"waiting: {first_no.why}"
            return None
        return None

    def _known_total(self) -> int | None:
        return sorted(self.totals)[len(self.totals) // 2] if self.totals else None

    def _take_over_my_previous_claims(self) -> None:
        """Claims this worker left in an earlier incarnation (before a requeue or a node failure)."""
        for claim in self.board.active_claims():
            if claim.holder and claim.holder.worker == self.holder.worker and claim.holder != self.holder:
                self._break(claim, "its worker was requeued while it ran")

    def _take_over_dead_claims(self) -> None:
        now = time.time()
        suspects = [c for c in self.board.active_claims()
                    if (c.holder is None or c.holder.worker != self.holder.worker)
                    and (now - c.heartbeat > SUSPECT_HEARTBEATS * self.spec.heartbeat_s
                         or (c.holder is not None and local_holder_alive(c.holder) is False))]
        if not suspects:
            return
        running = self._running_slurm_jobs([c.holder.worker for c in suspects if c.holder])
        for claim in suspects:
            why = self._dead(claim, now, running)
            if why:
                self._break(claim, why)

    def _running_slurm_jobs(self, workers: list[str]) -> set[str] | None:
        jobs = [w for w in workers if not w.startswith("local-")]
        if self.info.executor != "slurm" or not jobs:
            return set()
        from clf.slurm.queue import query

        squeue = query(jobs).squeue
        if squeue is None:
            return None
        return {job for job, row in squeue.items() if row.state in ("RUNNING", "COMPLETING", "CONFIGURING")}

    def _dead(self, claim: Claim, now: float, running: set[str] | None) -> str | None:
        """Why the claim's holder is dead, or None while it may live."""
        age = now - claim.heartbeat
        holder = claim.holder
        if age > self.spec.dead_after_s:
            return f"no heartbeat from its worker for {age:.0f} s (cluster.worker_dead_after_s)"
        if holder is None:
            return None
        alive = local_holder_alive(holder)
        if alive is False:
            return f"its worker's process (pid {holder.pid} on {holder.host}) is gone"
        if not holder.worker.startswith("local-") and running is not None and holder.worker not in running:
            return f"its worker's job {holder.worker} is no longer running"
        return None

    def _break(self, claim: Claim, why: str) -> None:
        spec = self.specs.get(claim.run)
        if spec is None or not self.board.break_claim(claim.run):
            return
        if held_elsewhere(Path(spec.run_dir)):  # its trainer lives (only its heartbeat stopped): the claim is its
            log.warning("%s: %s, but its trainer still holds the run's lock; leaving it", claim.run, why)
            if claim.holder is not None:
                self.board.try_claim(claim.run, claim.holder)
            return
        log.warning("took over %s: %s", claim.run, why)
        if record_crash(spec, why, self.spec.max_crashes):
            self.board.finish(claim.run)

    # ------------------------------------------------------------------- slots ---
    def _start_slot(self, slot: Slot) -> None:
        read_fd, write_fd = os.pipe()
        package_root = str(Path(__import__("clf").__file__).resolve().parents[1])  # the sweep's code snapshot
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                            if p)}
        slot.process = subprocess.Popen([sys.executable, "-m", "clf.slurm.slot", str(write_fd)],
                                        stdin=subprocess.PIPE, pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        slot.results = os.fdopen(read_fd, "r")
        self.selector.register(slot.results, selectors.EVENT_READ, slot)

    def _assign(self, slot: Slot, name: str) -> None:
        if slot.process is None or slot.process.poll() is not None:
            self._start_slot(slot)
        spec = self.specs[name]
        threads = max(1, spec.cpus_per_task // len(self.slots))
        line = json.dumps({**asdict(replace(spec, cpus_per_task=threads)), "argv": list(spec.argv)}) + "\n"
        assert slot.process is not None and slot.process.stdin is not None
        slot.run, slot.started, slot.steps_before = name, time.time(), _steps(spec.run_dir)[0]
        try:
            slot.process.stdin.write(line.encode())
            slot.process.stdin.flush()
        except BrokenPipeError:  # the slot died between runs: the next _collect sees it
            pass
        self.state.why = "training"
        self._write_record()

    def _collect(self) -> None:
        """Results of finished runs; slots that died (their pipe closed without an answer)."""
        for slot in self.slots:
            if not slot.busy:
                continue
            line = self._answer_line(slot)
            if line:
                self._done(slot, json.loads(line))
            elif line == "" or (slot.process is not None and slot.process.poll() is not None):
                self._crashed(slot)

    def _answer_line(self, slot: Slot) -> str | None:
        """The slot's answer, "" when its pipe closed, None while it trains."""
        if slot.results is None:
            return ""
        if not any(key.data is slot for key, _ in self.selector.select(timeout=0)):
            return None
        return slot.results.readline()

    def _done(self, slot: Slot, answer: dict[str, Any]) -> None:
        name = slot.run
        assert name is not None
        spec = self.specs[name]
        steps, total = _steps(spec.run_dir)
        self.pace.add(time.time() - slot.started, steps - slot.steps_before)
        if total:
            self.totals.append(total)
        slot.run = None
        if answer["status"] == jobfiles.INTERRUPTED:
            self.board.release(name, self.holder)
            self.state.released.append(name)
            log.info("%s: stopped at a checkpoint (%s), back in the queue", name, answer.get("signal"))
        else:
            self.board.finish(name)
            self.state.runs_done += 1
            log.info("%s: %s in %.1f s", name, answer["status"], answer.get("seconds", 0.0))
        self._write_record()

    def _crashed(self, slot: Slot) -> None:
        name = slot.run
        assert name is not None and slot.process is not None
        self._close_slot(slot)  # waits for the process: its exit status
        code = slot.exit_code
        how = f"its process died ({'signal ' + signal.Signals(-code).name if code < 0 else f'exit code {code}'})"
        slot.run = None
        log.error("%s: %s", name, how)
        if record_crash(self.specs[name], how, self.spec.max_crashes):
            self.board.finish(name)
        else:
            self.board.release(name, self.holder)
        self._write_record()

    def _close_slot(self, slot: Slot) -> None:
        if slot.results is not None:
            self.selector.unregister(slot.results)
            slot.results.close()
            slot.results = None
        if slot.process is not None and slot.process.poll() is None and slot.process.stdin:
            slot.process.stdin.close()
        if slot.process is not None:
            slot.exit_code = slot.process.wait()
        slot.process = None

    def _stop_slots(self, signal_name: str) -> None:
        """Forward the stop signal to the busy slots (they checkpoint and answer 'interrupted')."""
        self.state.stopping = signal_name
        self.state.why = f"stopping ({signal_name})"
        for slot in self.slots:
            if slot.busy and slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(getattr(signal, signal_name))

    # ---------------------------------------------------------------- heartbeat ---
    def _beat(self) -> None:
        now = time.time()
        if now - self.last_beat < self.spec.heartbeat_s:
            return
        self.last_beat = now
        held = [slot.run for slot in self.slots if slot.run]
        for name in self.board.heartbeat(held, self.holder):
            log.warning("%s: its claim was taken over by another worker", name)
        self._write_record()

    def _write_record(self) -> None:
        try:
            self.board.write_worker(self.holder.worker, {
                "worker": self.holder.worker, "incarnation": self.holder.incarnation, "node": self.holder.host,
                "pid": self.holder.pid, "why": self.state.why, "slots": len(self.slots),
                "holding": [slot.run for slot in self.slots if slot.run], "runs_done": self.state.runs_done,
                "pace_s_per_step": round(self.pace.per_step, 5), "pace_measured": self.pace.measured,
                "end": self.life.end, "requeues": self.state.requeues, "log": self.info.log})
        except OSError as exc:  # a full disk must not stop the runs; the next beat tries again
            log.warning("worker record not written: %s", exc)

    # --------------------------------------------------------------------- end ---
    def _end(self) -> dict[str, Any]:
        for slot in self.slots:
            self._close_slot(slot)
        ignore_late_warnings()
        left = self.board.pending(self.order)
        requeue = left and self.state.stopping in (None, "SIGUSR2") and self.state.requeues < self.spec.max_requeues
        if requeue:
            self.state.requeues += 1
            self.state.why = f"requeued for a fresh time limit: {len(left)} run(s) left"
        elif self.state.stopping:
            self.state.why = f"ended ({self.state.stopping})"
        self._write_record()
        if requeue:
            self._requeue()
        log.info("worker %s ends: %s", self.holder.worker, self.state.why)
        return {"status": jobfiles.COMPLETED, "runs_done": self.state.runs_done}

    def _requeue(self) -> None:
        if self.info.executor != "slurm":
            raise SystemExit(LOCAL_REQUEUE_EXIT)
        try:
            requeue_job(self.info.job_id, self.info.restarts or 0, deadline_s=30).record()
        except RequeueFailed as exc:
            log.error("worker %s: %s; `clf resubmit %s` runs what is left", self.holder.worker, exc,
                      self.spec.sweep_dir)
            return
        raise SystemExit(EXIT_RESUMABLE)


def run_worker(spec: WorkerSpec) -> dict[str, Any]:
    """A worker job's entry point (what submitit calls in each task of the worker array)."""
    started = time.time()
    stop, info = start_task()
    return Worker(spec, info, stop, started).run()
