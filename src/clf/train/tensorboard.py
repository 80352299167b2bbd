"""The run's HParams entry (one per run, written when it finishes)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from clf.config.compose import to_container
from clf.names import NOT_HPARAMS, key_in

HPARAM_GROUPS = ("data", "embeddings", "model", "optim", "train")


def hparams_of(cfg: DictConfig) -> dict[str, Any]:
    """Flat ``group.key -> value`` of what shapes the result (None shown as 'null')."""
    container = to_container(cfg)
    flat: dict[str, Any] = {"seed": cfg.seed}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}"
            if isinstance(value, dict):
                walk(value, name)
            elif not key_in(name, NOT_HPARAMS) and not isinstance(value, list):
                flat[name] = "null" if value is None else value

    for group in HPARAM_GROUPS:
        walk(container[group], group)
    return flat


def write_hparams(writer: SummaryWriter, cfg: DictConfig, metrics: dict[str, Any]) -> None:
    scores = {f"hparam/{k}": float(v) for k, v in metrics.items()
              if k.startswith(("dev_", "test_")) and isinstance(v, (int, float))}
    device = {f"device.{k}": v for k, v in (metrics.get("device") or {}).items() if v is not None}
    writer.add_hparams({**hparams_of(cfg), **device}, scores, run_name=".")
