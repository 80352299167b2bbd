"""Run directories as ``clf train`` leaves them (minus checkpoints), for tests and benchmarks.

Files are written by the training code's own writers: ``metrics.json`` by ``write_metrics``,
TensorBoard events by ``SummaryWriter`` (same tags) and the HParams entry by ``write_hparams``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

from clf.atomic import atomic_write_json, atomic_write_text
from clf.names import COMPLETED, CONFIG, JOB_STATUS, RUNNING, TENSORBOARD
from clf.train.outputs import write_metrics

LOSS_TAGS = ("Loss/train_sum", "Loss/train_mean", "LR", "Throughput/docs_per_second")


def base_config(overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The composed default config (``conf/``) as a plain dict."""
    from clf.config.compose import compose, to_container

    return to_container(compose(list(overrides)))


def with_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with dotted keys set: ``{"model.num_heads": 8}``."""
    out = copy.deepcopy(dict(config))
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = value
    return out


def completed_metrics(config: Mapping[str, Any], dev_f1: float, test_f1: float | None, best_step: int,
                      steps: int, train_seconds: float) -> dict[str, Any]:
    """What a finished run writes (precision/recall/accuracy derived simply from F1)."""
    metrics: dict[str, Any] = {"status": COMPLETED}
    for split, f1 in (("dev", dev_f1), ("test", test_f1)):
        for name in ("f1", "precision", "recall", "accuracy"):
            metrics[f"{split}_{name}"] = None if f1 is None else float(f1)
    metrics.update(best_step=best_step, steps=steps, epochs=2, train_seconds=train_seconds, config=dict(config))
    return metrics


def running_metrics(config: Mapping[str, Any], dev_f1: float | None, best_step: int | None, steps: int,
                    total_steps: int, status: str = RUNNING) -> dict[str, Any]:
    return {"status": status, "dev_f1": dev_f1, "best_step": best_step, "steps": steps, "total_steps": total_steps,
            "epochs": 0, "train_seconds": 1.0, "config": dict(config)}


def write_events(tb_dir: Path, config: Mapping[str, Any], dev_curve: Iterable[tuple[int, float]],
                 metrics: Mapping[str, Any] | None = None, log_steps: Iterable[int] = ()) -> None:
    """``F1/dev`` at each (step, value), the training scalars at ``log_steps``, and HParams if finished."""
    from omegaconf import OmegaConf
    from torch.utils.tensorboard import SummaryWriter

    from clf.train.tensorboard import write_hparams

    writer = SummaryWriter(str(tb_dir))
    for step in log_steps:
        for tag in LOSS_TAGS:
            writer.add_scalar(tag, 1.0 / (1 + step), step)
    for step, value in dev_curve:
        writer.add_scalar("F1/dev", value, step)
        writer.add_scalar("Accuracy/dev", value, step)
    if metrics is not None and metrics.get("status") == COMPLETED:
        write_hparams(writer, OmegaConf.create(dict(config)), dict(metrics))
    writer.close()


def write_run(run_dir: Path, config: Mapping[str, Any], metrics: Mapping[str, Any] | None = None,
              dev_curve: Iterable[tuple[int, float]] | None = None, job: Mapping[str, Any] | None = None,
              log_steps: Iterable[int] = ()) -> Path:
    """A run directory: ``config.yaml``, and optionally ``metrics.json``, ``tb/`` and ``status.json``."""
    from omegaconf import OmegaConf

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG, OmegaConf.to_yaml(OmegaConf.create(dict(config))))
    if metrics is not None:
        write_metrics(run_dir, dict(metrics))
    if dev_curve is not None:
        write_events(run_dir / TENSORBOARD, config, dev_curve, metrics, log_steps)
    if job is not None:
        atomic_write_json(run_dir / JOB_STATUS, dict(job))
    return run_dir
