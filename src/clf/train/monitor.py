"""What a run shows while it trains: TensorBoard scalars and the progress bar (rank 0 only).

The train loss is summed on the device and read back every ``train.log_every`` steps only, so
that logging does not synchronise every step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from clf.names import TENSORBOARD
from clf.train.distributed import Dist, sum_over_ranks
from clf.train.progress import Progress
from clf.train.saver import TrainState
from clf.train.tb_resume import prepare_resumed_logdir


class _NoWriter:
    """Stands in for the SummaryWriter on ranks other than 0."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class Monitor:
    """``Loss/train_sum``, ``Loss/train_mean``, ``LR``, ``Throughput/docs_per_second``, ``F1/dev``,
    ``Accuracy/dev``; the progress bar."""

    def __init__(self, cfg: DictConfig, run_dir: Path, state: TrainState, total: int, resumed: bool, ctx: Dist,
                 device: torch.device) -> None:
        # what a killed run logged after its checkpoint (steps > state.step) leaves the event files;
        # its own step's loss and dev F1 were logged before the checkpoint was written, and are kept.
        # purge_step (a SessionLog.START; step 0 for a new run, so that a resume's counts as a
        # restart) is for a TensorBoard already running: clf.train.tb_resume says why both
        self.writer: SummaryWriter | _NoWriter = _NoWriter()
        if ctx.is_main:
            tb_dir = run_dir / TENSORBOARD
            if resumed:
                prepare_resumed_logdir(tb_dir, state.step)
            self.writer = SummaryWriter(str(tb_dir), purge_step=state.step + 1 if resumed else 0)
        self.progress = Progress(cfg.train.progress if ctx.is_main else "none", total, state.step)
        self.log_every, self.ctx = cfg.train.log_every, ctx
        self.running_loss = torch.tensor(state.loss_sum, dtype=torch.float64, device=device)
        self.t_log, self.docs_since_log = time.perf_counter(), 0

    def loss_sum(self) -> float:
        """The train loss summed since the last log line, over all ranks (collective)."""
        return float(sum_over_ranks(self.running_loss, self.ctx))

    def step(self, state: TrainState, loss: torch.Tensor, docs: int, lr: float) -> None:
        """Count a finished step (``state.step`` already advanced); log every ``log_every`` steps."""
        self.running_loss += loss.detach()
        state.loss_steps += 1
        self.docs_since_log += docs
        if state.step % self.log_every != 0:
            self.progress.update(state.step)
            return
        loss_sum, now = self.loss_sum(), time.perf_counter()
        self.writer.add_scalar("Loss/train_sum", loss_sum, state.step)
        self.writer.add_scalar("Loss/train_mean", loss_sum / state.loss_steps, state.step)
        self.writer.add_scalar("LR", lr, state.step)
        self.writer.add_scalar("Throughput/docs_per_second", self.docs_since_log / max(now - self.t_log, 1e-9),
                               state.step)
        self.progress.update(state.step, loss=loss_sum / state.loss_steps)
        self.running_loss.zero_()
        state.loss_steps, self.t_log, self.docs_since_log = 0, now, 0

    def dev(self, step: int, scores: dict[str, float]) -> None:
        self.writer.add_scalar("F1/dev", scores["f1"], step)
        self.writer.add_scalar("Accuracy/dev", scores["accuracy"], step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.progress.close()
        self.writer.close()
