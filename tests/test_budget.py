"""The training budget: ``train.min_epochs`` epochs or ``train.min_steps`` steps (``train.epochs=null``), the
latter counted until ``train.min_steps_tokens`` tokens; exact epochs, max_steps."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from clf.errors import ClfError
from clf.train.budget import total_steps

from helpers import make_dataset, run_clf, train_args


def train_group(**values):
    return OmegaConf.create({"epochs": None, "min_epochs": 3, "min_steps": 900, "min_steps_tokens": None,
                             "max_steps": None, **values})


TOKEN_CAP = {"min_epochs": 2, "min_steps": 450, "min_steps_tokens": 15_000_000}


@pytest.mark.parametrize("values, batches, tokens, expected", [
    (TOKEN_CAP, 157, 7_860_000, 314),    # IMDB at batch 128 (393 tokens a review): the cap ends min_steps, 2 epochs
    (TOKEN_CAP, 145, 370_000, 450),      # 18,500 tweets: min_steps (3.1 epochs), far under the cap
    (TOKEN_CAP, 40, 1_965_000, 306),     # 5,000 reviews: min_steps until 15M tokens (306 steps, 7.7 epochs)
    (TOKEN_CAP, 8, 0, 450),              # no tokens at all: min_steps
    ({**TOKEN_CAP, "min_steps_tokens": None}, 157, 7_860_000, 450),   # null: min_steps always
])
def test_min_steps_counts_until_the_token_cap(values, batches, tokens, expected):
    assert total_steps(train_group(**values), batches, tokens) == expected


@pytest.mark.parametrize("values, batches, expected", [
    ({}, 16, 900),                                   # 1,000 docs at batch 64: min_steps, not 48 steps
    ({}, 313, 3 * 313),                              # IMDB at batch 64: 3 epochs (939 steps)
    ({}, 1000, 3 * 1000),                            # large sets: min_epochs
    ({"min_epochs": 2, "min_steps": 300}, 157, 314),  # 2 epochs when they are more than min_steps
    ({"min_epochs": 2, "min_steps": 300}, 8, 300),
    ({"epochs": 2}, 16, 32),                         # an explicit epoch count is exact
    ({"epochs": 0, "max_steps": 7}, 16, 7),
    ({"epochs": 5, "max_steps": 7}, 16, 7),          # max_steps overrides both
    ({"min_steps": 0}, 16, 3 * 16),
])
def test_total_steps(values, batches, expected):
    assert total_steps(train_group(**values), batches, 1000 * batches) == expected


def test_defaults_adapt_and_the_homework_recipe_stays_one_epoch(compose_cfg):
    cfg = compose_cfg()
    assert cfg.train.epochs is None and cfg.train.batch_size == 128
    imdb_batches = -(-20_000 // cfg.train.batch_size)
    assert total_steps(cfg.train, imdb_batches, 20_000 * 393) == 2 * imdb_batches     # IMDB: 2 epochs
    assert total_steps(cfg.train, 8, 1_000 * 393) == 306       # 1,000 reviews: min_steps up to 15M tokens (38 epochs)
    assert total_steps(cfg.train, 145, 18_500 * 20) == cfg.train.min_steps            # tweets: min_steps
    homework = compose_cfg("experiment=homework", "embeddings.dir=x")
    assert total_steps(homework.train, 20_000, 20_000 * 230) == 20_000   # batch 1: one epoch of 20k documents


def test_negative_min_steps_is_refused(compose_cfg):
    with pytest.raises(ClfError, match="train.min_steps"):
        compose_cfg("train.min_steps=-1")


def test_min_epochs_must_be_positive(compose_cfg):
    with pytest.raises(ClfError, match="train.min_epochs=0 must be positive"):
        compose_cfg("train.min_epochs=0")


def test_a_small_training_set_trains_min_steps(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=64, n_dev=40, n_test=40, seed=7)   # 4 batches of 16
    run_dir = tmp_path / "run"
    result = run_clf(*train_args(data, run_dir, "train.epochs=null", "train.min_steps=30"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 30
    assert metrics["epochs"] >= 7    # 30 steps of 4 batches an epoch


def test_the_token_cap_ends_min_steps(tmp_path):
    """64 documents of 5-17 words: min_steps=30 counts only until 200 tokens, so min_epochs=2 (8 steps) rule."""
    data = make_dataset(tmp_path / "data", n_train=64, n_dev=40, n_test=40, seed=7)   # 4 batches of 16
    run_dir = tmp_path / "run"
    result = run_clf(*train_args(data, run_dir, "train.epochs=null", "train.min_steps=30", "train.min_epochs=2",
                                 "train.min_steps_tokens=200"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["epochs"] == 2
