"""How every clf job stops before its end: one protocol for training runs, ``clf <command>`` jobs
and commands run by hand.

Who asks. SIGTERM (``kill``, ``scancel``, Slurm before it requeues a job), SIGUSR2 (Slurm's warning
before a time limit or a preemption; ``clf submit`` asks for it) and a first Ctrl-C (SIGINT).
``StopRequest.install()`` turns each into a *request*: it records the signal's name and
interrupts nothing. A second Ctrl-C interrupts at once (``KeyboardInterrupt``).

How work stops. Work with step boundaries polls the request; work without them raises:

1. The training loop reads ``stop.requested`` after every step (all ranks agree on it), writes a
   checkpoint and returns the status 'interrupted'; ``clf train`` then exits ``EXIT_RESUMABLE``
   (75, EX_TEMPFAIL): the same command resumes the run.
2. Work without step boundaries (word2vec, ``clf <command>`` jobs) runs inside
   ``stop.raising()``: there a stop signal raises ``Stopped`` at once. ``Stopped`` is a
   ``KeyboardInterrupt``, so ``finally`` blocks and context managers remove temp files on the
   way out and nothing half-written is left; ``clf`` exits ``EXIT_INTERRUPTED`` (130).
3. In a submitted job (``clf.slurm.job``) either way ends the attempt 'interrupted'. After
   SIGUSR2, rank 0 requeues the job (``scontrol requeue`` on Slurm, then exit
   ``EXIT_RESUMABLE``; locally, exit ``LOCAL_REQUEUE_EXIT``, which submitit's local controller
   restarts) and ranks > 0 exit ``EXIT_RESUMABLE``; the requeued task resumes from the
   checkpoint. After SIGTERM or SIGINT the attempt just ends.
"""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

log = logging.getLogger("clf.stop")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)
EXIT_RESUMABLE = 75         # EX_TEMPFAIL: stopped after a checkpoint (or requeued); run again to resume
EXIT_INTERRUPTED = 130      # stopped at once, without a checkpoint (128 + SIGINT, the shell's convention)
LOCAL_REQUEUE_EXIT = 144    # submitit's local controller restarts a task that exits with this


class Stopped(KeyboardInterrupt):
    """A stop signal raised where there is no step boundary to wait for (see ``StopRequest.raising``)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class StopRequest:
    """The stop signals received so far; see the module's docstring."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, name: str) -> None:
        if self.signal_name is None:
            log.warning("%s received: checkpointing at the next step, then exiting", name)
        self.signal_name = name

    def install(self, signals: tuple[int, ...] = STOP_SIGNALS) -> "StopRequest":
        for sig in signals:
            signal.signal(sig, self._handle)
        return self

    @contextmanager
    def raising(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR2)) -> Iterator["StopRequest"]:
        """Inside, ``signals`` raise ``Stopped`` at once (a request already received raises on entry);
        on the way out the previous handlers come back, so a late signal cannot interrupt the cleanup."""
        previous = {sig: signal.signal(sig, self._raise) for sig in signals}
        try:
            if self.requested:
                raise Stopped(self.signal_name or "")
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        raise Stopped(self.signal_name)
