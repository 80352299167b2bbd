"""What a run's checkpoints hold and restore, in one object (timm's ``CheckpointSaver`` is the model).

``checkpoints/last.pt`` holds everything a resumed run needs to continue bit for bit:

=====================  ==============================================================
``state``              ``TrainState``: step, epoch, batch in the epoch, best dev F1 and
                       early-stopping counters, the running train loss, seconds trained
``model``              the model's state dict
``optimizer``          the optimizer's state dict (LazyAdamW's pending weight decay included)
``scheduler``          the learning-rate scheduler's state dict
``rng``                every RNG (python, numpy, torch; CUDA: the rank's own device's) of every
                       rank, in rank order (``clf.train.rng``)
``config_yaml``        the resolved config: a resumed run must match it but for the keys
                       of ``clf.names.RESUMABLE_CHANGES``
``vocab_fingerprint``  the vocabulary's fingerprint: a resumed run must have the same one
=====================  ==============================================================

A finished run under ``train.keep_checkpoints=best`` writes ``last.pt`` as its final record only
(``clf.train.retention``); a run stopped after it and before its outputs makes them from ``best.pt``.

``best.pt`` holds the model's state dict at the best dev F1 (with its ``step`` and ``dev_f1``), its
embedding table in ``train.best_precision`` (``clf.train.compact``: half precision by default). An
improvement is kept in memory and written just before the next ``last.pt`` (a run improves at
most evaluations, often at a third of them): every ``last.pt`` on disk finds the weights of its
``best_step`` in ``best.pt``, and the run's end writes both.
The files are written atomically by ``clf.train.checkpoint`` (``last.pt``'s predecessor stays
as ``previous.pt``, the fallback when ``last.pt`` is unreadable).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from clf.config.compose import from_yaml, to_container, to_yaml
from clf.data.vocab import Vocab
from clf.errors import ClfError
from clf.names import BEST, CHECKPOINTS, RESUMABLE_CHANGES, key_in
from clf.train import checkpoint
from clf.train.compact import inference_weights
from clf.train.distributed import Dist, barrier, gather_objects
from clf.train.retention import final_record, is_record_only
from clf.train.rng import rng_state, set_rng_state

log = logging.getLogger("clf.train")


@dataclass
class TrainState:
    """Where the run is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_f1: float = -1.0
    best_step: int = -1
    evals_without_improvement: int = 0
    last_eval_step: int = -1
    loss_sum: float = 0.0
    loss_steps: int = 0
    train_seconds: float = 0.0
    finished: bool = False


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(stored: DictConfig, current: DictConfig) -> list[str]:
    """Keys that differ between two configs, ignoring those a resumed run may change."""
    a, b = _flatten(to_container(stored)), _flatten(to_container(current))
    return sorted(k for k in set(a) | set(b) if not key_in(k, RESUMABLE_CHANGES) and a.get(k) != b.get(k))


def load_resumable(run_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The newest readable checkpoint of ``run_dir`` (None: a new run); ClfError when it cannot be
    read or was written for another config."""
    try:
        ckpt = checkpoint.load_latest(run_dir / CHECKPOINTS)
    except checkpoint.CheckpointError as exc:
        raise ClfError(f"cannot resume: {exc}") from None
    if ckpt is not None:
        differences = config_differences(from_yaml(ckpt["config_yaml"]), cfg)
        if differences:
            raise ClfError(f"run_dir holds a checkpoint of another config ({', '.join(differences[:6])} differ); "
                           "use a new run_dir= or the same overrides")
    return ckpt


class CheckpointSaver:
    """Saves and restores what the module's docstring lists; ``save`` is collective (every rank
    calls it, rank 0 writes)."""

    def __init__(self, run_dir: Path, cfg: DictConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, vocab: Vocab, ctx: Dist) -> None:
        self.directory = run_dir / CHECKPOINTS
        self.cfg, self.model, self.optimizer, self.scheduler = cfg, model, optimizer, scheduler
        self.vocab, self.ctx = vocab, ctx
        self.device = next(model.parameters()).device  # whose CUDA random stream the checkpoint keeps
        self._best: dict[str, Any] | None = None     # the best weights, not yet in best.pt
        # the run's config is fixed from here on: its YAML once, not at every checkpoint (each
        # to_yaml cost 4-5 CPU-ms, measured on the 2-core machine)
        self._config_yaml = to_yaml(cfg)

    def restore(self, ckpt: dict[str, Any]) -> TrainState:
        """Load a checkpoint (from ``load_resumable``) into the model, optimizer, scheduler and RNGs."""
        if ckpt["vocab_fingerprint"] != self.vocab.fingerprint():
            raise ClfError("run_dir holds a checkpoint trained with another vocabulary")
        if is_record_only(ckpt):  # finished; stopped before its outputs were written, they come from best.pt
            if not (ckpt["state"].get("finished") and (self.directory / BEST).is_file()):
                raise ClfError("run_dir holds a finished run whose training state was dropped "
                               "(train.keep_checkpoints=best) and no best.pt; train it again in a new run_dir=")
            return TrainState(**ckpt["state"])
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        rng, ctx = ckpt["rng"], self.ctx
        if len(rng) != ctx.world:
            log.warning("checkpoint was written by %d processes, resuming with %d: random streams differ", len(rng),
                        ctx.world)
        set_rng_state(rng[ctx.rank % len(rng)], self.device)
        state = TrainState(**ckpt["state"])
        if not ctx.is_main:
            state.loss_sum = 0.0  # the stored sum is over all ranks; rank 0 carries it
        return state

    def save(self, state: TrainState) -> None:
        """``last.pt`` (the one it replaces becomes ``previous.pt``); ``state.loss_sum`` summed over ranks.
        A finished run under ``keep_checkpoints=best`` gets its final record at once (writing the
        whole state only for retention to read it back and drop it cost seconds)."""
        rng = gather_objects(rng_state(self.device), self.ctx)
        if self.ctx.is_main:
            self._write_best()
            payload = {"state": asdict(state), "model": self.model.state_dict(),
                       "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "rng": rng,
                       "config_yaml": self._config_yaml, "vocab_fingerprint": self.vocab.fingerprint()}
            if state.finished and self.cfg.train.keep_checkpoints == "best":
                payload = final_record(payload)
            checkpoint.save_last(self.directory, payload)
        barrier(self.ctx)

    def save_best(self, state: TrainState) -> None:
        """Keep the weights of ``state.best_step`` for ``best.pt``, as ``best.pt`` holds them (rank 0
        only: the weights are the same on every rank); written by the next ``save``."""
        if self.ctx.is_main:
            weights = inference_weights(self.model.state_dict(), self.cfg.train.best_precision)
            self._best = {"model": weights, "step": state.best_step, "dev_f1": state.best_f1}

    def _write_best(self) -> None:
        if self._best is not None:
            checkpoint.save_best(self.directory, self._best)
            self._best = None

    def load_best(self) -> None:
        """Put the best dev F1's weights into the model (after the final ``save``: from ``best.pt``)."""
        self.model.load_state_dict(checkpoint.read(self.directory / BEST)["model"])
