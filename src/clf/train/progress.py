"""Progress for people: a tqdm bar on a terminal, plain periodic lines in Slurm logs."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("clf.train")


class Progress:
    """``update(step, **fields)`` each step; shows a bar or logs a line every ``every_s`` seconds."""

    def __init__(self, mode: str, total: int, initial: int, every_s: float = 30.0) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode, self.total, self.every_s = mode, total, every_s
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True) if mode == "bar" else None
        self.last_line = time.monotonic()
        self.step = initial

    def update(self, step: int, **fields: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.step)
            if fields:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in fields.items()}, refresh=False)
        elif self.mode == "log" and (time.monotonic() - self.last_line >= self.every_s or step >= self.total):
            self.last_line = time.monotonic()
            extra = " ".join(f"{k}={v:.4g}" for k, v in fields.items())
            log.info("step %d/%d (%.0f%%) %s", step, self.total, 100.0 * step / max(self.total, 1), extra)
        self.step = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
