"""Training options end to end (in-process): frozen and dense embedding updates, max_steps,
early stopping, and a run killed after its final checkpoint but before metrics.json."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import corpus_words, train_args, write_homework_word2vec

from clf.config.compose import compose
from clf.train import checkpoint
from clf.train.loop import train


def run(dataset, run_dir, *extra):
    cfg = compose(train_args(dataset, run_dir, *extra)[1:])
    result = train(cfg, run_dir)
    assert result.status == "completed"
    return result.metrics, checkpoint.read(run_dir / "checkpoints" / "last.pt")


@pytest.mark.parametrize("update", ["lazy", "dense"])
def test_frozen_embeddings_do_not_change(tmp_path, dataset, update):
    words = corpus_words(dataset)
    vectors = write_homework_word2vec(tmp_path / "w2v", words, dim=12)
    metrics, last = run(dataset, tmp_path / "run", "embeddings=word2vec", f"embeddings.dir={tmp_path / 'w2v'}",
                        "embeddings.freeze=true", f"optim.embedding_update={update}")
    weight = last["model"]["embeddings.weight"]
    assert torch.equal(weight[: len(words)], vectors)
    assert (weight[len(words)] == 0).all()
    assert metrics["steps"] > 0


@pytest.mark.parametrize("update", ["lazy", "dense"])
def test_embeddings_train_from_word2vec(tmp_path, dataset, update):
    words = corpus_words(dataset)
    vectors = write_homework_word2vec(tmp_path / "w2v", words, dim=12)
    metrics, last = run(dataset, tmp_path / "run", "embeddings=word2vec", f"embeddings.dir={tmp_path / 'w2v'}",
                        f"optim.embedding_update={update}")
    weight = last["model"]["embeddings.weight"]
    assert not torch.equal(weight[: len(words)], vectors)
    assert torch.equal(weight[len(words)], torch.zeros(12))  # padding row never moves
    assert metrics["dev_f1"] > 0.85


def test_dense_update_trains(tmp_path, dataset):
    metrics, last = run(dataset, tmp_path / "run", "optim.embedding_update=dense")
    assert metrics["dev_f1"] > 0.85
    assert type(last["optimizer"]["state"]) is dict and last["optimizer"]["state"]


def test_max_steps(tmp_path, dataset):
    metrics, last = run(dataset, tmp_path / "run", "train.max_steps=7", "train.epochs=0")
    assert metrics["steps"] == 7 and last["state"]["step"] == 7
    assert metrics["best_step"] == 7  # evaluated at the end


def test_early_stopping(tmp_path, dataset):
    # lr 0: dev F1 never improves after the first evaluation
    metrics, _ = run(dataset, tmp_path / "run", "optim.lr=1e-12", "train.early_stopping_patience=2",
                     "train.eval_every=3", "train.epochs=5")
    assert metrics["best_step"] == 3
    assert metrics["steps"] == 9  # evaluations at 3 (best), 6 and 9 (two without improvement)


def test_killed_after_final_checkpoint_before_metrics(tmp_path, dataset):
    run_dir = tmp_path / "run"
    metrics, _ = run(dataset, run_dir)
    predictions = (run_dir / "predictions" / "test.csv").read_bytes()
    (run_dir / "metrics.json").unlink()
    (run_dir / "predictions" / "test.csv").unlink()
    last_before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    again, _ = run(dataset, run_dir)
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == last_before  # not retrained
    for key in ("dev_f1", "test_f1", "best_step", "steps", "epochs"):
        assert again[key] == metrics[key], key
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert (run_dir / "predictions" / "test.csv").read_bytes() == predictions
