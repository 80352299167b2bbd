"""``clf aggregate --ensemble``: each group's seeds averaged into one model, scored and written as Kaggle files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clf.cli import main as clf_main
from clf.metrics import binary_metrics
from clf.results.aggregate import aggregate, report
from clf.results.synthetic import base_config, completed_metrics, with_values, write_run
from clf.train.outputs import probabilities_path, write_predictions

from helpers import TINY, make_dataset

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def trained_sweep(tmp_path_factory) -> tuple[Path, object]:
    """Three seeds of two head counts, trained by clf's own loop on generated data (made hard with few docs)."""
    from clf.config.compose import compose
    from clf.train.loop import train

    base = tmp_path_factory.mktemp("ens")
    data = make_dataset(base / "data", n_train=80, n_dev=60, n_test=60, seed=11)
    for heads in (1, 2):
        for seed in SEEDS:
            run_dir = base / "sweep" / f"h{heads}-s{seed}"
            cfg = compose([*data.overrides, *TINY, f"model.num_heads={heads}", "train.epochs=1",
                           f"data.cache_dir={base / 'cache'}", f"run_dir={run_dir}", f"seed={seed}"])
            assert train(cfg, run_dir).status == "completed"
    return base / "sweep", data


def mean_probabilities(runs: list[Path], split: str) -> pd.DataFrame:
    frames = [pd.read_csv(probabilities_path(r / "predictions" / f"{split}.csv")) for r in runs]
    return frames[0].assign(probability=np.mean([f["probability"] for f in frames], axis=0))


def test_a_run_keeps_the_probabilities_behind_its_kaggle_file(trained_sweep):
    sweep, data = trained_sweep
    run = sweep / "h1-s0"
    for split, path in (("dev", data.dev), ("test", data.test)):
        labels = pd.read_csv(run / "predictions" / f"{split}.csv")
        probs = pd.read_csv(probabilities_path(run / "predictions" / f"{split}.csv"))
        assert probs.columns.tolist() == ["inst_id", "probability"]
        assert probs["inst_id"].tolist() == labels["inst_id"].tolist() == pd.read_csv(path)["inst_id"].tolist()
        assert probs["probability"].between(0, 1).all()
        assert ((probs["probability"] >= 0.5).astype(int) == labels["predicted_label"]).all()


def test_ensemble_f1_and_kaggle_files_per_group(trained_sweep, tmp_path, capsys):
    sweep, data = trained_sweep
    out = tmp_path / "results" / "heads"
    assert clf_main(["aggregate", str(sweep), "--ensemble", "--no-plots", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ensemble dev F1" in printed and "ensemble test F1" in printed
    agg = aggregate([sweep], ensemble=True)
    assert agg.keys == ["model.num_heads"]
    for _, group in agg.groups.iterrows():
        heads = int(group["model.num_heads"])
        runs = [sweep / f"h{heads}-s{seed}" for seed in SEEDS]
        for split, path in (("dev", data.dev), ("test", data.test)):
            expected = mean_probabilities(runs, split)
            gold = pd.read_csv(path).set_index("inst_id").loc[expected["inst_id"], "label"].to_numpy()
            f1 = binary_metrics(gold, expected["probability"].to_numpy() >= 0.5)["f1"]
            assert group[f"ensemble_{split}_f1"] == pytest.approx(f1)
            kaggle = pd.read_csv(out.with_name("heads.ensemble") / f"model.num_heads={heads}" / f"{split}.csv")
            assert kaggle.columns.tolist() == ["inst_id", "predicted_label"]
            assert kaggle["inst_id"].tolist() == pd.read_csv(path)["inst_id"].tolist()
            assert kaggle["predicted_label"].tolist() == (expected["probability"] >= 0.5).astype(int).tolist()
            assert f"{f1:.4f}" in printed


def test_aggregate_without_ensemble_writes_no_ensemble(trained_sweep, tmp_path, capsys):
    sweep, _ = trained_sweep
    assert clf_main(["aggregate", str(sweep), "--no-plots", "--out", str(tmp_path / "plain")]) == 0
    assert "ensemble" not in capsys.readouterr().out
    assert not (tmp_path / "plain.ensemble").exists()


def synthetic_seeds(root: Path, data, probabilities: list[np.ndarray], split: str = "test") -> list[Path]:
    """Runs of one config whose ``split`` probabilities are given (no training: exact cases)."""
    ids = pd.read_csv(getattr(data, split))["inst_id"].to_numpy()
    base = base_config(data.overrides)
    runs = []
    for seed, probs in enumerate(probabilities):
        run_dir = root / f"s{seed}"
        cfg = with_values(base, {"seed": seed, "run_dir": str(run_dir)})
        write_run(run_dir, cfg, completed_metrics(cfg, 0.5, 0.5, best_step=1, steps=1, train_seconds=1.0))
        write_predictions(run_dir / "predictions" / f"{split}.csv", ids, probs)
        runs.append(run_dir)
    return runs


def test_averaging_fixes_what_each_seed_gets_wrong(tmp_path):
    """Three seeds, each confidently wrong on a different third of the documents: the average is right."""
    data = make_dataset(tmp_path / "data", n_train=30, n_dev=30, n_test=30, seed=3)
    labels = pd.read_csv(data.test)["label"].to_numpy()
    seeds = []
    for k in range(3):
        probs = np.where(labels == 1, 0.9, 0.1)
        wrong = np.arange(len(labels)) % 3 == k
        probs[wrong] = 1 - probs[wrong]
        seeds.append(probs)
    synthetic_seeds(tmp_path / "sweep", data, seeds)
    agg = aggregate([tmp_path / "sweep"], ensemble=True)
    single = [binary_metrics(labels, p >= 0.5)["f1"] for p in seeds]
    assert max(single) < 1.0
    assert agg.groups["ensemble_test_f1"].iat[0] == 1.0
    assert np.isnan(agg.groups["ensemble_dev_f1"].iat[0])   # no dev probabilities were kept
    assert "ensemble test F1" in report(agg)


def test_test_split_without_labels_gets_a_file_but_no_f1(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=30, n_dev=30, n_test=30, seed=4, test_labels=False)
    n = len(pd.read_csv(data.test))
    first_half = np.arange(n) < n // 2
    seeds = [np.where(first_half, 0.9, 0.4), np.where(first_half, 0.3, 0.45), np.where(first_half, 0.4, 0.7)]
    synthetic_seeds(tmp_path / "sweep", data, seeds)
    agg = aggregate([tmp_path / "sweep"], ensemble=True)
    assert np.isnan(agg.groups["ensemble_test_f1"].iat[0])
    from clf.results.aggregate import write_tables

    write_tables(agg, tmp_path / "out")
    kaggle = pd.read_csv(tmp_path / "out.ensemble" / "all-runs" / "test.csv")
    # means 0.533 and 0.517: every seed but one disagrees with the average on some document
    assert kaggle["predicted_label"].tolist() == [1] * n


def test_runs_that_predicted_different_documents_are_not_averaged(tmp_path, caplog):
    data = make_dataset(tmp_path / "data", n_train=30, n_dev=30, n_test=30, seed=5)
    n = len(pd.read_csv(data.test))
    runs = synthetic_seeds(tmp_path / "sweep", data, [np.full(n, 0.7), np.full(n, 0.8)])
    path = probabilities_path(runs[1] / "predictions" / "test.csv")
    pd.read_csv(path).iloc[:-1].to_csv(path, index=False)
    with caplog.at_level(logging.WARNING):
        agg = aggregate([tmp_path / "sweep"], ensemble=True)
    assert np.isnan(agg.groups["ensemble_test_f1"].iat[0])
    assert "different documents" in caplog.text
    assert agg.ensembles is not None and "test" not in agg.ensembles[0].splits
