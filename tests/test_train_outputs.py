"""What one short ``clf train`` run leaves behind, and that a finished run is not retrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from helpers import make_dataset, run_clf, train_args

LOG_EVERY, EVAL_EVERY, STEPS_PER_EPOCH, EPOCHS = 5, 10, 25, 2  # 400 documents, batches of 16


def tensorboard(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def scalar_steps(accumulator: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in accumulator.Scalars(tag)]


def tb_files(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_size for p in (run_dir / "tb").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    data = make_dataset(root / "data")
    run_dir = root / "run"
    result = run_clf(*train_args(data, run_dir, f"train.log_every={LOG_EVERY}", f"train.eval_every={EVAL_EVERY}",
                                 f"train.epochs={EPOCHS}"), cwd=root)
    assert result.returncode == 0, result.stderr
    return data, run_dir


def test_metrics_json(finished_run):
    data, run_dir = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("dev_f1", "dev_precision", "dev_recall", "dev_accuracy", "test_f1", "test_precision",
                "test_recall", "test_accuracy", "train_seconds"):
        assert isinstance(metrics[key], float) and metrics[key] >= 0, key
    assert metrics["status"] == "completed"
    assert metrics["steps"] == STEPS_PER_EPOCH * EPOCHS
    assert metrics["epochs"] == EPOCHS
    assert metrics["train_documents"] == sum(1 for _ in data.train.open()) - 1  # rows without the header
    assert isinstance(metrics["best_step"], int) and 0 < metrics["best_step"] <= metrics["steps"]
    config = metrics["config"]
    assert config["run_dir"] == str(run_dir)
    assert config["model"]["num_heads"] == 2 and config["embeddings"]["dim"] == 12
    assert config["data"]["train"] == str(data.train)
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == config


def test_learned_model_beats_chance(finished_run):
    data, run_dir = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    labels = pd.read_csv(data.dev)["label"].to_numpy()
    positive_rate = labels.mean()
    trivial_f1 = 2 * positive_rate / (1 + positive_rate)  # predict 1 for everything
    assert metrics["dev_f1"] > max(0.9, trivial_f1 + 0.2)
    assert metrics["dev_accuracy"] > 0.9
    assert metrics["test_f1"] > 0.85


def test_predictions_files(finished_run):
    data, run_dir = finished_run
    for split, path in (("dev", data.dev), ("test", data.test)):
        file = run_dir / "predictions" / f"{split}.csv"
        assert file.read_text().splitlines()[0] == "inst_id,predicted_label"
        predictions = pd.read_csv(file)
        assert predictions["inst_id"].tolist() == pd.read_csv(path)["inst_id"].tolist()
        assert set(predictions["predicted_label"].unique()) <= {0, 1}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    predicted = pd.read_csv(run_dir / "predictions" / "dev.csv")["predicted_label"].to_numpy()
    labels = pd.read_csv(data.dev)["label"].to_numpy()
    assert np.mean(predicted == labels) == pytest.approx(metrics["dev_accuracy"])


def test_run_dir_holds_vocab_config_checkpoints(finished_run):
    _, run_dir = finished_run
    for name in ("word_to_index.txt", "index_to_word.txt", "config.yaml", "train.log",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    assert "<UNK>" in json.loads((run_dir / "word_to_index.txt").read_text())


def test_tensorboard_scalars(finished_run):
    _, run_dir = finished_run
    acc = tensorboard(run_dir)
    total = STEPS_PER_EPOCH * EPOCHS
    log_steps = list(range(LOG_EVERY, total + 1, LOG_EVERY))
    assert scalar_steps(acc, "Loss/train_sum") == log_steps
    assert scalar_steps(acc, "Loss/train_mean") == log_steps
    assert scalar_steps(acc, "LR") == log_steps
    assert scalar_steps(acc, "Throughput/docs_per_second") == log_steps
    for sum_event, mean_event in zip(acc.Scalars("Loss/train_sum"), acc.Scalars("Loss/train_mean")):
        assert mean_event.value == pytest.approx(sum_event.value / LOG_EVERY, rel=1e-5)
        assert 0 < sum_event.value < LOG_EVERY * 2
    assert all(e.value > 0 for e in acc.Scalars("Throughput/docs_per_second"))
    assert all(e.value == pytest.approx(0.03) for e in acc.Scalars("LR"))
    # dev F1 every eval_every steps and at each epoch end
    eval_steps = sorted(set(range(EVAL_EVERY, total + 1, EVAL_EVERY)) | {STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)})
    assert scalar_steps(acc, "F1/dev") == eval_steps
    f1 = [e.value for e in acc.Scalars("F1/dev")]
    assert all(0 <= v <= 1 for v in f1) and f1[-1] > f1[0] - 0.05
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert max(f1) == pytest.approx(metrics["dev_f1"], abs=1e-6)
    assert metrics["best_step"] == eval_steps[f1.index(max(f1))]


def test_tensorboard_hparams(finished_run):
    _, run_dir = finished_run
    acc = tensorboard(run_dir)
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in content and "_hparams_/session_start_info" in content
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model.num_heads"].number_value == 2
    assert start.hparams["optim.schedule"].string_value == "none"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"hparam/dev_f1", "hparam/test_f1"}


def test_finished_run_is_not_retrained(finished_run, tmp_path):
    data, run_dir = finished_run
    metrics_before = (run_dir / "metrics.json").read_bytes()
    tb_before = tb_files(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    last_before = (last.stat().st_mtime_ns, last.read_bytes())
    predictions_before = (run_dir / "predictions" / "test.csv").read_bytes()
    # its data moved away: a run that trained or evaluated again would fail to read it
    away = data.directory.rename(data.directory.with_name(data.directory.name + "-away"))
    try:
        result = run_clf(*train_args(data, run_dir, f"train.log_every={LOG_EVERY}", f"train.eval_every={EVAL_EVERY}",
                                     f"train.epochs={EPOCHS}"), cwd=tmp_path)
    finally:
        away.rename(data.directory)
    assert result.returncode == 0, result.stderr
    assert "not retraining" in result.stderr
    assert (run_dir / "metrics.json").read_bytes() == metrics_before
    assert tb_files(run_dir) == tb_before  # no new event files or steps
    assert (last.stat().st_mtime_ns, last.read_bytes()) == last_before
    assert (run_dir / "predictions" / "test.csv").read_bytes() == predictions_before
