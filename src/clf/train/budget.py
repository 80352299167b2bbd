"""How many optimizer steps a run takes: its budget, which adapts to the size of the training set.

``train.epochs=null`` (the default) trains ``train.min_epochs`` epochs, or ``train.min_steps``
steps when that is more: 1,000 documents at batch 128 are 8 steps an epoch, and 2 epochs (16
steps) stop long before dev F1 does (issue 12). ``min_steps`` counts only until the run has
trained on ``train.min_steps_tokens`` tokens: a set of long documents (5,000 IMDB reviews, 2M
tokens an epoch) learns from its text, not from its number of steps, so it is not held to as many
steps as 18,000 tweets (0.4M tokens an epoch); IMDB's 20,000 reviews then train ``min_epochs``
(issue 21, bench/RESULTS.md). The LR schedule is defined over this budget, and the best-dev
checkpoint is what a run reports. An explicit ``train.epochs=N`` is exactly N epochs;
``train.max_steps`` overrides both.
"""

from __future__ import annotations

import math


def total_steps(train_cfg, batches_per_epoch: int, tokens_per_epoch: int) -> int:
    """The run's budget in optimizer steps (``train_cfg``: the ``train`` group of the config)."""
    if train_cfg.max_steps is not None:
        return int(train_cfg.max_steps)
    if train_cfg.epochs is not None:
        return int(train_cfg.epochs) * batches_per_epoch
    min_steps = int(train_cfg.min_steps)
    if train_cfg.min_steps_tokens is not None and tokens_per_epoch > 0:
        tokens_per_step = tokens_per_epoch / batches_per_epoch
        min_steps = min(min_steps, math.ceil(int(train_cfg.min_steps_tokens) / tokens_per_step))
    return max(int(train_cfg.min_epochs) * batches_per_epoch, min_steps)
