"""Stop requests: SIGTERM, SIGUSR2 (Slurm's warning before preemption or a time limit) and a
first Ctrl-C ask the loop to checkpoint at the next step boundary and exit; a second Ctrl-C
interrupts at once."""

from __future__ import annotations

import logging
import signal
from types import FrameType

log = logging.getLogger("clf.train")


class StopRequest:
    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, name: str) -> None:
        if self.signal_name is None:
            log.warning("%s received: checkpointing at the next step, then exiting", name)
        self.signal_name = name

    def install(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)) -> "StopRequest":
        for sig in signals:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)
