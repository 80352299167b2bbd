"""One training run, start to finish, resumable at any step.

The whole loop is in ``train``; the helpers around it prepare data and model, save and
restore state, and write outputs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from clf.atomic import atomic_write_text
from clf.config.compose import from_yaml, to_container, to_yaml
from clf.data.batching import collate, epoch_plan
from clf.data.dataset import Dataset, load_dataset
from clf.embeddings import load_word2vec
from clf.errors import ClfError
from clf.evaluate import evaluate
from clf.model import DocumentAttentionClassifier, build_model
from clf.optim import build_optimizer, build_scheduler, clip_gradients
from clf.train import budget
from clf.train import checkpoint
from clf.train.outputs import METRICS, STATUS_COMPLETED, split_metrics, write_metrics, write_predictions
from clf.train.progress import Progress
from clf.train.distributed import (Dist, any_rank, barrier, gather_objects, init_distributed, shard,
                                   sum_gradients, sum_over_ranks)
from clf.train.signals import StopRequest
from clf.train.tensorboard import write_hparams

log = logging.getLogger("clf.train")

# config keys that may differ when a run resumes (where and how it runs, not what it computes)
RESUMABLE_CHANGES = ("run_dir", "sweep_dir", "device", "cluster", "name", "train.progress", "train.num_threads",
                     "train.checkpoint_every", "train.checkpoint_seconds", "data.cache_dir", "data.dir",
                     "data.train", "data.dev", "data.test", "data.unlabeled", "embeddings.dir")
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped on request with a checkpoint; run again to resume


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


@dataclass
class RunResult:
    status: str
    metrics: dict[str, Any]
    run_dir: Path

    @property
    def exit_code(self) -> int:
        return 0 if self.status == STATUS_COMPLETED else EXIT_INTERRUPTED


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ClfError(f"device={name} but no CUDA device is available (use device=cpu or device=auto)")
    return torch.device(name)


def default_run_dir() -> Path:
    base = Path("runs") / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


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
    allowed = lambda key: any(key == k or key.startswith(k + ".") for k in RESUMABLE_CHANGES)  # noqa: E731
    return sorted(k for k in set(a) | set(b) if not allowed(k) and a.get(k) != b.get(k))


def prepare_data(cfg: DictConfig) -> tuple[Dataset, torch.Tensor | None]:
    """Dataset (vocabulary from the embeddings, else built from train) and pre-trained vectors."""
    vocab, vectors = None, None
    if cfg.embeddings.kind == "word2vec":
        vocab, vectors = load_word2vec(cfg.embeddings.dir)
    dataset = load_dataset(cfg.data, vocab)
    for name in ("train", "dev"):
        if not dataset[name].has_labels:
            raise ClfError(f"the {name} split has no labels")
    return dataset, vectors


def _autocast_dtype(cfg: DictConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "bf16":
        if device.type != "cuda":
            raise ClfError("precision=bf16 needs a CUDA device")
        return torch.bfloat16
    return None


def _payload(state: TrainState, model, optimizer, scheduler, cfg, dataset: Dataset, rng: list) -> dict[str, Any]:
    return {"state": asdict(state), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng, "config_yaml": to_yaml(cfg),
            "vocab_fingerprint": dataset.vocab.fingerprint()}


def _check_same_config(ckpt: dict[str, Any], cfg: DictConfig) -> None:
    differences = config_differences(from_yaml(ckpt["config_yaml"]), cfg)
    if differences:
        raise ClfError(f"run_dir holds a checkpoint of another config ({', '.join(differences[:6])} differ); "
                       "use a new run_dir= or the same overrides")


def _restore(ckpt: dict[str, Any], model, optimizer, scheduler, cfg: DictConfig, dataset: Dataset,
             ctx: Dist) -> TrainState:
    if ckpt["vocab_fingerprint"] != dataset.vocab.fingerprint():
        raise ClfError("run_dir holds a checkpoint trained with another vocabulary")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    rng = ckpt["rng"]
    if len(rng) != ctx.world:
        log.warning("checkpoint was written by %d processes, resuming with %d: random streams differ", len(rng),
                    ctx.world)
    checkpoint.set_rng_state(rng[ctx.rank % len(rng)])
    state = TrainState(**ckpt["state"])
    if not ctx.is_main:
        state.loss_sum = 0.0  # the stored sum is over all ranks; rank 0 carries it
    return state


def total_steps(cfg: DictConfig, batches_per_epoch: int) -> int:
    return budget.total_steps(cfg.train, batches_per_epoch)


class _NoWriter:
    """Stands in for the SummaryWriter on ranks other than 0."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def train(cfg: DictConfig, run_dir: Path, stop: StopRequest | None = None) -> RunResult:
    """Train (or resume, or just report) the run in ``run_dir``."""
    stop = stop or StopRequest()
    ckpt_dir = run_dir / "checkpoints"
    try:
        ckpt = checkpoint.load_latest(ckpt_dir)
    except checkpoint.CheckpointError as exc:
        raise ClfError(f"cannot resume: {exc}") from None
    if ckpt is not None:
        _check_same_config(ckpt, cfg)
    done = _completed_metrics(run_dir)
    if ckpt is not None and ckpt["state"].get("finished") and done is not None:
        log.info("%s already finished at step %d; not retraining", run_dir, ckpt["state"]["step"])
        return RunResult(STATUS_COMPLETED, done, run_dir)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = pick_device(cfg.device)
    ctx = init_distributed(device.type == "cuda")
    if ctx.enabled and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    amp = _autocast_dtype(cfg, device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    dataset, vectors = prepare_data(cfg)
    model = build_model(cfg, dataset.vocab.size, vectors).to(device)
    del vectors
    train_split = dataset["train"]
    lengths = np.minimum(train_split.lengths, cfg.model.max_tokens or np.iinfo(np.int64).max)
    batches_per_epoch = -(-len(train_split) // cfg.train.batch_size)
    total = total_steps(cfg, batches_per_epoch)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, total)
    state = TrainState()
    if ckpt is not None:
        state = _restore(ckpt, model, optimizer, scheduler, cfg, dataset, ctx)
        log.info("resuming %s at step %d (epoch %d, batch %d)", run_dir, state.step, state.epoch, state.batch_in_epoch)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dataset.vocab.save(run_dir)
        atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    eval_kwargs = dict(batch_tokens=cfg.train.eval_batch_tokens, max_tokens=cfg.model.max_tokens, device=device,
                       autocast_dtype=amp, ctx=ctx)
    if state.finished:  # killed after the final checkpoint, before metrics.json
        return _finish(cfg, run_dir, model, dataset, state, eval_kwargs, writer=None)

    labels = torch.from_numpy(train_split.labels.astype(np.float32))
    params = [p for p in model.parameters() if p.requires_grad]
    # hide what a killed run logged after its checkpoint: steps > state.step (its own step's
    # loss and dev F1 were logged before the checkpoint was written, and are kept)
    writer = (SummaryWriter(str(run_dir / "tb"), purge_step=state.step + 1 if ckpt is not None else None)
              if ctx.is_main else _NoWriter())
    progress = Progress(cfg.train.progress if ctx.is_main else "none", total, state.step)
    plateau = cfg.optim.schedule == "plateau"
    running_loss = torch.tensor(state.loss_sum, dtype=torch.float64, device=device)
    t_log, docs_since_log = time.perf_counter(), 0
    t_ckpt = time.monotonic()

    def save_checkpoint() -> None:
        nonlocal t_ckpt
        state.loss_sum = float(sum_over_ranks(running_loss, ctx))
        rng = gather_objects(checkpoint.rng_state(), ctx)
        if ctx.is_main:
            checkpoint.save_last(ckpt_dir, _payload(state, model, optimizer, scheduler, cfg, dataset, rng))
            writer.flush()
        barrier(ctx)
        t_ckpt = time.monotonic()

    def run_eval() -> bool:
        """Dev F1 -> TensorBoard, best.pt, scheduler, early stopping; True if training should stop."""
        _, dev = evaluate(model, dataset["dev"], **eval_kwargs)
        state.last_eval_step = state.step
        writer.add_scalar("F1/dev", dev["f1"], state.step)
        writer.add_scalar("Accuracy/dev", dev["accuracy"], state.step)
        if dev["f1"] > state.best_f1:
            state.best_f1, state.best_step, state.evals_without_improvement = dev["f1"], state.step, 0
            if ctx.is_main:
                checkpoint.save_best(ckpt_dir, {"model": model.state_dict(), "step": state.step, "dev_f1": dev["f1"]})
        else:
            state.evals_without_improvement += 1
        if plateau:
            scheduler.step(dev["f1"])
        if ctx.is_main:
            write_metrics(run_dir, _running_metrics(cfg, state, total))
        patience = cfg.train.early_stopping_patience
        return patience is not None and state.evals_without_improvement >= patience

    model.train()
    stop_early = False
    while state.step < total and not stop_early:
        plan = epoch_plan(lengths, cfg.train.batch_size, cfg.train.bucket_batches, cfg.seed, state.epoch)
        while state.batch_in_epoch < len(plan) and state.step < total:
            t_step = time.perf_counter()
            docs = plan[state.batch_in_epoch]
            mine = shard(docs, ctx)
            ids, mask = collate(train_split, mine, model.pad_id, cfg.model.max_tokens)
            target = labels[mine].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits, _ = model(ids.to(device, non_blocking=True), mask.to(device, non_blocking=True))
            # mean over the global batch: ranks' gradients are then summed
            loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum") / len(docs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            sum_gradients(params, ctx)
            clip_gradients(params, cfg.optim.grad_clip)
            optimizer.step()
            if not plateau:
                scheduler.step()
            running_loss += loss.detach()
            state.step += 1
            state.batch_in_epoch += 1
            state.loss_steps += 1
            docs_since_log += len(docs)
            state.train_seconds += time.perf_counter() - t_step
            if state.step % cfg.train.log_every == 0:
                loss_sum = float(sum_over_ranks(running_loss, ctx))
                now = time.perf_counter()
                writer.add_scalar("Loss/train_sum", loss_sum, state.step)
                writer.add_scalar("Loss/train_mean", loss_sum / state.loss_steps, state.step)
                writer.add_scalar("LR", optimizer.param_groups[0]["lr"], state.step)
                writer.add_scalar("Throughput/docs_per_second", docs_since_log / max(now - t_log, 1e-9), state.step)
                progress.update(state.step, loss=loss_sum / state.loss_steps)
                running_loss.zero_()
                state.loss_steps, t_log, docs_since_log = 0, now, 0
            else:
                progress.update(state.step)
            # an epoch's (or the run's) last step is evaluated here, before its checkpoint: a run
            # resumed from that checkpoint must not evaluate, and log F1/dev for, that step again
            if (state.step % cfg.train.eval_every == 0 or state.batch_in_epoch == len(plan)
                    or state.step == total):
                stop_early = run_eval()
            time_due = time.monotonic() - t_ckpt >= cfg.train.checkpoint_seconds
            stopping, time_due = any_rank([stop.requested, time_due], ctx, device)
            if state.step % cfg.train.checkpoint_every == 0 or time_due or stopping or stop_early:
                save_checkpoint()
            if stopping:
                progress.close()
                writer.close()
                log.warning("stopped by %s at step %d; checkpoint saved; run again to resume",
                            stop.signal_name or "another rank's signal", state.step)
                metrics = _running_metrics(cfg, state, total, status="interrupted")
                if ctx.is_main:
                    write_metrics(run_dir, metrics)
                return RunResult("interrupted", metrics, run_dir)
            if stop_early:
                log.info("early stopping at step %d: %d evaluations without a better dev F1", state.step,
                         state.evals_without_improvement)
                break
        if state.batch_in_epoch >= len(plan):
            state.epoch += 1
            state.batch_in_epoch = 0
            if state.last_eval_step != state.step:
                stop_early = run_eval()
    if state.last_eval_step != state.step:
        run_eval()
    progress.close()
    state.finished = True
    save_checkpoint()
    return _finish(cfg, run_dir, model, dataset, state, eval_kwargs, writer)


def _completed_metrics(run_dir: Path) -> dict[str, Any] | None:
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("status") == STATUS_COMPLETED else None


def _running_metrics(cfg: DictConfig, state: TrainState, total: int, status: str = "running") -> dict[str, Any]:
    return {"status": status, "dev_f1": state.best_f1 if state.best_step >= 0 else None,
            "best_step": state.best_step if state.best_step >= 0 else None, "steps": state.step,
            "total_steps": total, "epochs": state.epoch, "train_seconds": round(state.train_seconds, 3),
            "config": to_container(cfg)}


def _finish(cfg: DictConfig, run_dir: Path, model: DocumentAttentionClassifier, dataset: Dataset,
            state: TrainState, eval_kwargs: dict[str, Any], writer: SummaryWriter | _NoWriter | None) -> RunResult:
    """Best-dev weights -> dev and test predictions and metrics.json; HParams entry."""
    ctx: Dist = eval_kwargs["ctx"]
    best = checkpoint.read(run_dir / "checkpoints" / checkpoint.BEST)
    model.load_state_dict(best["model"])
    metrics: dict[str, Any] = {"status": STATUS_COMPLETED}
    for name in ("dev", "test"):
        if name not in dataset.splits:
            metrics.update(split_metrics(name, None))
            continue
        probs, split_scores = evaluate(model, dataset[name], **eval_kwargs)
        if ctx.is_main:
            write_predictions(run_dir / "predictions" / f"{name}.csv", dataset[name].inst_ids, probs)
        metrics.update(split_metrics(name, split_scores))
    metrics.update(best_step=state.best_step, steps=state.step, epochs=state.epoch,
                   train_seconds=round(state.train_seconds, 3), train_documents=len(dataset["train"]),
                   config=to_container(cfg))
    if ctx.is_main:
        if isinstance(writer, SummaryWriter):
            write_hparams(writer, cfg, metrics)
        write_metrics(run_dir, metrics)
        log.info("done: dev F1 %.4f, test F1 %s (best step %d) -> %s", metrics["dev_f1"],
                 "n/a" if metrics["test_f1"] is None else f"{metrics['test_f1']:.4f}", state.best_step, run_dir)
    if writer is not None:
        writer.close()
    barrier(ctx)
    return RunResult(STATUS_COMPLETED, metrics, run_dir)
