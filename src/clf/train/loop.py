"""One training run, start to finish, resumable at any step.

``train`` reads top to bottom, one commented block per phase (nanoGPT's train.py is the model):
resume or report, device, data and model, then one loop whose body is a step, its logging, its
evaluation, its checkpoint and a stop on request (``clf.stop``). What a checkpoint holds is
``clf.train.saver``; what the run shows while it trains, ``clf.train.monitor``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from clf.atomic import atomic_write_text
from clf.config.compose import to_container, to_yaml
from clf.data.batching import collate, epoch_plan
from clf.data.dataset import Dataset, load_dataset
from clf.data.ngrams import bigram_vectors, split_vocab
from clf.device import describe_device
from clf.diskfull import writing_into
from clf.embeddings import capitalised_words, load_word2vec
from clf.errors import ClfError
from clf.model import DocumentAttentionClassifier, build_model
from clf.names import CHECKPOINTS, COMPLETED, CONFIG, INTERRUPTED, METRICS, PREDICTIONS, RUNNING, STOPPED
from clf.optim import build_optimizer, build_scheduler, clip_gradients, settle_weights
from clf.stop import EXIT_RESUMABLE, StopRequest
from clf.train import budget, reuse
from clf.train.device import setup_device
from clf.train.distributed import Dist, any_rank, barrier, shard, sum_gradients
from clf.train.evaluate import PreparedSplit, evaluate
from clf.train.lock import hold_run_dir
from clf.train.monitor import Monitor
from clf.train.outputs import split_metrics, write_metrics, write_predictions
from clf.train.retention import apply_retention, remove_stale_temp_files
from clf.train.saver import CheckpointSaver, TrainState, load_resumable
from clf.train.tensorboard import write_hparams

log = logging.getLogger("clf.train")


@dataclass
class RunResult:
    status: str
    metrics: dict[str, Any]
    run_dir: Path

    @property
    def exit_code(self) -> int:
        return 0 if self.status in (COMPLETED, STOPPED) else EXIT_RESUMABLE


@dataclass
class _Run:
    """The parts of a run that its phases share (built once, by ``_build``)."""

    cfg: DictConfig
    run_dir: Path
    device: torch.device
    ctx: Dist
    amp: torch.dtype | None          # autocast's dtype (None: full precision)
    dataset: Dataset
    lengths: np.ndarray              # train documents' lengths after truncation (for the batch plan)
    model: DocumentAttentionClassifier
    optimizer: torch.optim.Optimizer
    scheduler: Any
    saver: CheckpointSaver
    total: int                       # optimizer steps of the whole run

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        return dict(batch_tokens=self.cfg.train.eval_batch_tokens, max_tokens=self.cfg.model.max_tokens,
                    device=self.device, autocast_dtype=self.amp, ctx=self.ctx)

    @cached_property
    def dev(self) -> PreparedSplit:
        """Dev, prepared once per run: it is scored every eval_every steps."""
        return PreparedSplit(self.dataset["dev"], self.model.pad_id, batch_tokens=self.cfg.train.eval_batch_tokens,
                             max_tokens=self.cfg.model.max_tokens, device=self.device, ctx=self.ctx)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved config as plain data, made once (metrics.json holds it at each evaluation)."""
        return to_container(self.cfg)


def default_run_dir() -> Path:
    base = Path("runs") / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def prepare_data(cfg: DictConfig) -> tuple[Dataset, torch.Tensor | None]:
    """Dataset (vocabulary from the embeddings, else built from train) and pre-trained vectors."""
    vocab, vectors = None, None
    if cfg.embeddings.kind == "word2vec":
        vocab, vectors = load_word2vec(cfg.embeddings.dir)
        capitalised = capitalised_words(vocab)
        if cfg.data.tokenizer.lowercase and capitalised >= 0.01 * vocab.size:
            log.warning("%s: %d of the %d words of its vocabulary have capitals, which lowercased tokens "
                        "(data.tokenizer.lowercase=true, the default) never match; vectors trained on "
                        "case-kept text (the homework's) want data.tokenizer.lowercase=false",
                        cfg.embeddings.dir, capitalised, vocab.size)
    dataset = load_dataset(cfg.data, vocab)
    if vectors is not None and dataset.vocab.size > len(vectors):   # the bigrams' rows (clf.data.ngrams)
        vectors = bigram_vectors(vectors, split_vocab(dataset.vocab)[1])
    for name in ("train", "dev"):
        if not dataset[name].has_labels:
            raise ClfError(f"the {name} split has no labels")
    return dataset, vectors


def total_steps(cfg: DictConfig, lengths: np.ndarray) -> int:
    """The run's budget for training documents of these lengths (``clf.train.budget``)."""
    return budget.total_steps(cfg.train, -(-len(lengths) // cfg.train.batch_size), int(lengths.sum()))


def train(cfg: DictConfig, run_dir: Path, stop: StopRequest | None = None) -> RunResult:
    """Train (or resume, or just report) the run in ``run_dir``, holding its lock (one trainer per
    run); a completed run then keeps the checkpoints of ``train.keep_checkpoints``."""
    with hold_run_dir(run_dir) as holder, writing_into(run_dir):  # a full disk: DiskFull names the file
        if holder:  # rank 0: temp files of a killed write go
            remove_stale_temp_files(run_dir)
        result = _train(cfg, run_dir, stop or StopRequest())
        if holder and result.status == COMPLETED:
            apply_retention(run_dir / CHECKPOINTS, cfg.train.keep_checkpoints)
        return result


def _train(cfg: DictConfig, run_dir: Path, stop: StopRequest) -> RunResult:
    """The run itself, phase by phase (see the module's docstring)."""
    # -- resume or report: the newest checkpoint (refused if written for another config) --
    ckpt = load_resumable(run_dir, cfg)
    done = _completed_metrics(run_dir)
    if ckpt is not None and ckpt["state"].get("finished") and done is not None:
        log.info("%s already finished at step %d; not retraining", run_dir, ckpt["state"]["step"])
        return RunResult(COMPLETED, done, run_dir)

    # -- device and processes (clf.train.device; the CUDA preflight runs before any data is read), seeds --
    device, ctx, amp = setup_device(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    # -- data, model, optimizer, schedule; the checkpoint's state over them --
    run = _build(cfg, run_dir, device, ctx, amp)
    log.info("device: %s", ", ".join(f"{k} {v}" for k, v in describe_device(device).items() if v is not None))
    state = run.saver.restore(ckpt) if ckpt is not None else TrainState()
    if ckpt is not None:
        log.info("resuming %s at step %d (epoch %d, batch %d)", run_dir, state.step, state.epoch, state.batch_in_epoch)
    if state.finished:  # killed after the final checkpoint, before metrics.json
        return _finish(run, state, monitor=None)
    if _at_budget(cfg.train.stop_at_step, state.step, run.total):  # already at its stop step (a rung run again)
        return _stopped(run, state, None)

    # -- the loop: one optimizer step per iteration --
    model, optimizer, train_split = run.model, run.optimizer, run.dataset["train"]
    monitor = Monitor(cfg, run_dir, state, run.total, ckpt is not None, ctx, device)
    labels = torch.from_numpy(train_split.labels.astype(np.float32))
    params = [p for p in model.parameters() if p.requires_grad]
    plan = epoch_plan(run.lengths, cfg.train.batch_size, cfg.train.bucket_batches, cfg.seed, state.epoch)
    # the settings every step reads, read once (a DictConfig lookup costs tens of microseconds)
    max_tokens, step_schedule, stop_at = cfg.model.max_tokens, cfg.optim.schedule != "plateau", cfg.train.stop_at_step
    grad_clip = cfg.optim.grad_clip
    eval_every, ckpt_every, ckpt_seconds = cfg.train.eval_every, cfg.train.checkpoint_every, cfg.train.checkpoint_seconds
    t_ckpt, stop_early = time.monotonic(), False
    model.train()
    while state.step < run.total:
        # next batch; a run resumed at an epoch's end starts the next epoch
        if state.batch_in_epoch >= len(plan):
            plan = _next_epoch(run, state)
        t_step = time.perf_counter()
        docs = plan[state.batch_in_epoch]
        mine = shard(docs, ctx)
        ids, mask = collate(train_split, mine, model.pad_id, max_tokens)
        target = labels[mine].to(device, non_blocking=True)

        # forward, backward (mean over the global batch: the ranks' gradients are then summed), update
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits, _ = model(ids.to(device, non_blocking=True), mask.to(device, non_blocking=True))
        loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum") / len(docs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sum_gradients(params, ctx)
        clip_gradients(params, grad_clip)
        optimizer.step()
        if step_schedule:  # plateau steps per evaluation
            run.scheduler.step()
        state.step += 1
        state.batch_in_epoch += 1
        state.train_seconds += time.perf_counter() - t_step

        # log: train loss, learning rate, throughput
        monitor.step(state, loss, len(docs), optimizer.param_groups[0]["lr"])

        # evaluate every eval_every steps and at an epoch's or the run's last step; the latter
        # before its checkpoint, so that a run resumed from it does not evaluate that step again
        if state.step % eval_every == 0 or state.batch_in_epoch == len(plan) or state.step == run.total:
            stop_early = _evaluate_dev(run, state, monitor)

        # checkpoint every checkpoint_every steps or checkpoint_seconds, and before stopping
        time_due = time.monotonic() - t_ckpt >= ckpt_seconds
        stopping, time_due = any_rank([stop.requested, time_due], ctx, device)
        at_budget = _at_budget(stop_at, state.step, run.total)
        if state.step % ckpt_every == 0 or time_due or stopping or stop_early or at_budget:
            _checkpoint(run, state, monitor)
            t_ckpt = time.monotonic()

        # stop on request (clf.stop): the checkpoint is written, run again to resume
        if stopping:
            return _interrupted(run, state, monitor, stop)

        # an epoch's end; early stopping
        if state.batch_in_epoch == len(plan):
            plan = _next_epoch(run, state)
        if stop_early:
            log.info("early stopping at step %d: %d evaluations without a better dev F1", state.step,
                     state.evals_without_improvement)
            break
        if at_budget:  # a halving rung's budget: checkpointed at an evaluation step, resumable
            return _stopped(run, state, monitor)

    # -- the end: a last evaluation if the last step had none, the final checkpoint, outputs --
    if state.last_eval_step != state.step:
        _evaluate_dev(run, state, monitor)
    monitor.progress.close()
    state.finished = True
    _checkpoint(run, state, monitor)
    return _finish(run, state, monitor)


def _build(cfg: DictConfig, run_dir: Path, device: torch.device, ctx: Dist, amp: torch.dtype | None) -> _Run:
    """Data, model, optimizer, schedule and checkpoint saver; the run's config and vocabulary written."""
    dataset, vectors = reuse.data(cfg, prepare_data)
    model = build_model(cfg, dataset.vocab.size, vectors).to(device)
    train_split = dataset["train"]
    lengths = np.minimum(train_split.lengths, cfg.model.max_tokens or np.iinfo(np.int64).max)
    total = total_steps(cfg, lengths)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, total)
    saver = CheckpointSaver(run_dir, cfg, model, optimizer, scheduler, dataset.vocab, ctx)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dataset.vocab.save(run_dir)
        atomic_write_text(run_dir / CONFIG, to_yaml(cfg))
    return _Run(cfg, run_dir, device, ctx, amp, dataset, lengths, model, optimizer, scheduler, saver, total)


def _checkpoint(run: _Run, state: TrainState, monitor: Monitor) -> None:
    """``last.pt`` (collective), after the TensorBoard events it covers are on disk."""
    state.loss_sum = monitor.loss_sum()
    monitor.flush()
    run.saver.save(state)


def _interrupted(run: _Run, state: TrainState, monitor: Monitor, stop: StopRequest) -> RunResult:
    monitor.close()
    log.warning("stopped by %s at step %d; checkpoint saved; run again to resume",
                stop.signal_name or "another rank's signal", state.step)
    metrics = _running_metrics(run, state, status=INTERRUPTED)
    if run.ctx.is_main:
        write_metrics(run.run_dir, metrics)
    return RunResult(INTERRUPTED, metrics, run.run_dir)


def _at_budget(stop_at: int | None, step: int, total: int) -> bool:
    """The run reached ``train.stop_at_step`` before its full budget (validated: an evaluation step)."""
    return stop_at is not None and stop_at <= step < total


def _stopped(run: _Run, state: TrainState, monitor: Monitor | None) -> RunResult:
    """Paused at ``train.stop_at_step``: metrics.json says 'stopped' with the run's dev F1 so far;
    a larger stop step (a promotion) resumes it from ``last.pt``."""
    if monitor is not None:
        monitor.close()
    log.info("stopped at step %d (train.stop_at_step), best dev F1 %.4f; a larger stop step resumes it",
             state.step, state.best_f1)
    metrics = _running_metrics(run, state, status=STOPPED)
    if run.ctx.is_main:
        write_metrics(run.run_dir, metrics)
    return RunResult(STOPPED, metrics, run.run_dir)


def _next_epoch(run: _Run, state: TrainState) -> np.ndarray:
    """Move ``state`` to the next epoch's start; that epoch's batch order."""
    state.epoch += 1
    state.batch_in_epoch = 0
    cfg = run.cfg
    return epoch_plan(run.lengths, cfg.train.batch_size, cfg.train.bucket_batches, cfg.seed, state.epoch)


def _evaluate_dev(run: _Run, state: TrainState, monitor: Monitor) -> bool:
    """Dev F1 -> TensorBoard, best.pt, the plateau schedule, metrics.json; True when early stopping is due."""
    settle_weights(run.optimizer)  # LazyAdamW: the weight decay rows outside recent batches owe
    _, dev = evaluate(run.model, run.dataset["dev"], prepared=run.dev, **run.eval_kwargs)
    state.last_eval_step = state.step
    monitor.dev(state.step, dev)
    if dev["f1"] > state.best_f1:
        state.best_f1, state.best_step, state.evals_without_improvement = dev["f1"], state.step, 0
        run.saver.save_best(state)
    else:
        state.evals_without_improvement += 1
    if run.cfg.optim.schedule == "plateau":
        run.scheduler.step(dev["f1"])
    if run.ctx.is_main:
        write_metrics(run.run_dir, _running_metrics(run, state))
    patience = run.cfg.train.early_stopping_patience
    return patience is not None and state.evals_without_improvement >= patience


def _completed_metrics(run_dir: Path) -> dict[str, Any] | None:
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("status") == COMPLETED else None


def _running_metrics(run: _Run, state: TrainState, status: str = RUNNING) -> dict[str, Any]:
    return {"status": status, "dev_f1": state.best_f1 if state.best_step >= 0 else None,
            "best_step": state.best_step if state.best_step >= 0 else None, "steps": state.step,
            "total_steps": run.total, "epochs": state.epoch, "train_seconds": round(state.train_seconds, 3),
            "train_documents": len(run.dataset["train"]),  # a stopped run's data.train_limit=null in aggregate
            "device": describe_device(run.device), "config": run.config}


def _finish(run: _Run, state: TrainState, monitor: Monitor | None) -> RunResult:
    """Best-dev weights -> dev and test predictions and metrics.json; HParams entry (when ``monitor``)."""
    ctx, dataset = run.ctx, run.dataset
    run.saver.load_best()
    metrics: dict[str, Any] = {"status": COMPLETED}
    for name in ("dev", "test"):
        if name not in dataset.splits:
            metrics.update(split_metrics(name, None))
            continue
        prepared = run.dev if name == "dev" else None
        probs, split_scores = evaluate(run.model, dataset[name], prepared=prepared, **run.eval_kwargs)
        if ctx.is_main:
            write_predictions(run.run_dir / PREDICTIONS / f"{name}.csv", dataset[name].inst_ids, probs)
        metrics.update(split_metrics(name, split_scores))
    metrics.update(best_step=state.best_step, steps=state.step, epochs=state.epoch,
                   train_seconds=round(state.train_seconds, 3), train_documents=len(dataset["train"]),
                   device=describe_device(run.device), config=run.config)
    if ctx.is_main:
        if monitor is not None:
            write_hparams(monitor.writer, run.cfg, metrics)
        write_metrics(run.run_dir, metrics)
        log.info("done: dev F1 %.4f, test F1 %s (best step %d) -> %s", metrics["dev_f1"],
                 "n/a" if metrics["test_f1"] is None else f"{metrics['test_f1']:.4f}", state.best_step, run.run_dir)
    if monitor is not None:
        monitor.close()
    barrier(ctx)
    return RunResult(COMPLETED, metrics, run.run_dir)
