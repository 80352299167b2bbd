"""The training budget: 3 epochs or ``train.min_steps`` steps (``train.epochs=null``), exact epochs, max_steps."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from clf.errors import ClfError
from clf.train.budget import AUTO_EPOCHS, total_steps

from helpers import make_dataset, run_clf, train_args


def train_group(**values):
    return OmegaConf.create({"epochs": None, "min_steps": 900, "max_steps": None, **values})


@pytest.mark.parametrize("values, batches, expected", [
    ({}, 16, 900),                                   # 1,000 docs at batch 64: min_steps, not 48 steps
    ({}, 313, AUTO_EPOCHS * 313),                    # IMDB at batch 64: 3 epochs (939 steps), as before
    ({}, 1000, AUTO_EPOCHS * 1000),                  # large sets: 3 epochs
    ({"epochs": 2}, 16, 32),                         # an explicit epoch count is exact
    ({"epochs": 0, "max_steps": 7}, 16, 7),
    ({"epochs": 5, "max_steps": 7}, 16, 7),          # max_steps overrides both
    ({"min_steps": 0}, 16, AUTO_EPOCHS * 16),
])
def test_total_steps(values, batches, expected):
    assert total_steps(train_group(**values), batches) == expected


def test_defaults_adapt_and_the_homework_recipe_stays_one_epoch(compose_cfg):
    cfg = compose_cfg()
    assert cfg.train.epochs is None and cfg.train.min_steps == 900
    imdb_batches = -(-20_000 // cfg.train.batch_size)
    assert total_steps(cfg.train, imdb_batches) == 3 * imdb_batches   # IMDB's budget is what it was
    homework = compose_cfg("experiment=homework", "embeddings.dir=x")
    assert total_steps(homework.train, 20_000) == 20_000   # batch 1: one epoch of 20k documents


def test_negative_min_steps_is_refused(compose_cfg):
    with pytest.raises(ClfError, match="train.min_steps"):
        compose_cfg("train.min_steps=-1")


def test_a_small_training_set_trains_min_steps(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=64, n_dev=40, n_test=40, seed=7)   # 4 batches of 16
    run_dir = tmp_path / "run"
    result = run_clf(*train_args(data, run_dir, "train.epochs=null", "train.min_steps=30"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 30
    assert metrics["epochs"] >= 7    # 30 steps of 4 batches an epoch
