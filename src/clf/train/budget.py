"""How many optimizer steps a run takes: its budget, which adapts to the size of the training set.

``train.epochs=null`` (the default) trains ``AUTO_EPOCHS`` epochs, or ``train.min_steps`` steps
when that is more: 1,000 documents at batch 64 are 16 steps an epoch, and 3 epochs (48 steps)
stop long before dev F1 does (issue 12). The LR schedule is defined over this budget, and the
best-dev checkpoint is what a run reports. An explicit ``train.epochs=N`` is exactly N epochs;
``train.max_steps`` overrides both.
"""

from __future__ import annotations

AUTO_EPOCHS = 3


def total_steps(train_cfg, batches_per_epoch: int) -> int:
    """The run's budget in optimizer steps (``train_cfg``: the ``train`` group of the config)."""
    if train_cfg.max_steps is not None:
        return int(train_cfg.max_steps)
    if train_cfg.epochs is not None:
        return int(train_cfg.epochs) * batches_per_epoch
    return max(AUTO_EPOCHS * batches_per_epoch, int(train_cfg.min_steps))
