"""Data validation through ``clf train data=csv ...`` and the data pipeline end to end.

Bad input files: exit status 2, one line on stderr naming the file (and the row) and the
problem, and nothing half-written: no checkpoints or metrics in the run dir, no cache entry for
the bad split, no temp files in the cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import TINY, communicate_all, make_dataset, one_line_error, popen_clf, run_clf, train_args, write_csv

from clf.config.compose import compose
from clf.data.cache import load as load_entry
from clf.data.dataset import load_dataset
from clf.train.evaluate import predict
from clf.model import build_model
from clf.train import checkpoint
from clf.train.loop import prepare_data, train

HEADER = b"inst_id,text,label\n"

# name -> (split, file name, content, words the one-line message must contain)
BAD_INPUTS = {
    "missing column": ("train", "train.csv", b"inst_id,text\n1,good movie\n2,bad movie\n",
                       ["missing column 'label'"]),
    "empty text": ("train", "train.csv", HEADER + b"1,good movie,1\n2,,0\n", ["row 2", "inst_id=2", "empty"]),
    "NaN text (short row)": ("train", "train.csv", HEADER + b"1,good movie,1\n2\n", ["row 2", "empty"]),
    "label not 0/1": ("dev", "dev.csv", HEADER + b"1,good,1\n2,bad,-1\n", ["row 2", "label '-1'", "not 0 or 1"]),
    "duplicate inst_id": ("dev", "dev.csv", HEADER + b"5,good,1\n6,bad,0\n5,ok,1\n",
                          ["duplicate inst_id 5", "rows 1 and 3"]),
    "undecodable bytes": ("test", "test.csv", HEADER + b"1,good,1\n2,b\xffd,0\n", ["line 3", "0xff", "utf-8"]),
    "empty file": ("train", "train.csv", b"", ["empty"]),
    "header only": ("test", "test.csv", HEADER, ["no data rows"]),
    "malformed CSV": ("dev", "dev.csv", HEADER + b'1,"good movie,1\n2,bad,0\n', ["malformed CSV"]),
    "gzip name, not gzip": ("train", "train.csv.gz", HEADER + b"1,good,1\n", ["not a valid gzip file"]),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """All bad-input runs, started at once (each its own run dir and cache)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    good = make_dataset(root / "good", n_train=200, n_dev=50, n_test=50)
    runs = {}
    for i, (name, (split, file_name, content, _)) in enumerate(BAD_INPUTS.items()):
        case = root / f"case{i}"
        bad = case / file_name
        bad.parent.mkdir(parents=True)
        bad.write_bytes(content)
        paths = {"train": good.train, "dev": good.dev, "test": good.test, split: bad}
        run_dir, cache = case / "run", case / "cache"
        args = ["train", "data=csv", *(f"data.{s}={p}" for s, p in paths.items()), *TINY, f"run_dir={run_dir}"]
        runs[name] = (popen_clf(*args, env={"CLF_CACHE_DIR": str(cache)}), bad, run_dir, cache)
    ended = communicate_all({name: process for name, (process, *_) in runs.items()}, timeout=300)
    return {name: (*ended[name], bad, run_dir, cache) for name, (_, bad, run_dir, cache) in runs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_exit_2_one_line_nothing_half_written(bad_runs, name):
    split, _, _, needles = BAD_INPUTS[name]
    returncode, stderr, bad, run_dir, cache = bad_runs[name]
    assert returncode == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(f"clf train: error: {bad}: "), line
    for needle in needles:
        assert needle in line, line
    # nothing half-written: no checkpoints or metrics, no entry for the bad split, no temp files
    assert not (run_dir / "checkpoints").exists()
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / "predictions").exists()
    entries = list((cache / "tokens").iterdir()) if (cache / "tokens").exists() else []
    assert not any(e.name.startswith(".") for e in entries), entries
    assert not any(e.name.startswith(f"{split}-") for e in entries), entries
    if (cache / "vocab").exists():
        assert not any(p.name.startswith(".") for p in (cache / "vocab").iterdir())
    if split == "train":
        assert entries == []
    for entry in entries:  # whatever was published for the good splits is complete and valid
        meta = json.loads((entry / "meta.json").read_text())
        load_entry(entry, meta["key"], entry.name.split("-")[0])


@pytest.mark.slow
def test_csv_gz_and_custom_column_names(tmp_path):
    names = {"inst_id": "id", "text": "review", "label": "sentiment"}
    data = make_dataset(tmp_path / "data", n_train=300, gz=True, rename=names)
    assert data.train.name.endswith(".csv.gz") and data.train.read_bytes()[:2] == b"\x1f\x8b"
    run_dir = tmp_path / "run"
    result = run_clf(*train_args(data, run_dir, "data.id_column=id", "data.text_column=review",
                                 "data.label_column=sentiment"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["dev_f1"] > 0.8
    expected_ids = pd.read_csv(data.test)["id"].tolist()
    assert pd.read_csv(run_dir / "predictions" / "test.csv")["inst_id"].tolist() == expected_ids
    # the default column names do not exist in these files
    result = run_clf(*train_args(data, tmp_path / "run2"))
    assert result.returncode == 2
    assert "missing column 'inst_id'" in one_line_error(result)


def test_test_file_without_labels(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=300, test_labels=False)
    assert pd.read_csv(data.test).columns.tolist() == ["inst_id", "text"]
    cfg = compose(train_args(data, tmp_path / "run")[1:])
    result = train(cfg, tmp_path / "run")
    assert result.status == "completed"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_f1"] is None and metrics["test_accuracy"] is None
    assert metrics["dev_f1"] is not None
    predictions = pd.read_csv(tmp_path / "run" / "predictions" / "test.csv")
    assert predictions.columns.tolist() == ["inst_id", "predicted_label"]
    assert predictions["inst_id"].tolist() == pd.read_csv(data.test)["inst_id"].tolist()
    assert set(predictions["predicted_label"]) <= {0, 1}


def test_dev_file_without_labels_is_an_error(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=100)
    write_csv(data.dev, [{"inst_id": 1, "text": "good"}], columns=["inst_id", "text"])
    result = run_clf(*train_args(data, tmp_path / "run"))
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(data.dev) in line and "missing column 'label'" in line


def _with_zero_token_docs(path: Path, first_id: int) -> None:
    frame = pd.read_csv(path)
    extra = pd.DataFrame({"inst_id": [first_id, first_id + 1, first_id + 2],
                          "text": ["!!! ...", "—", "?!?! :-) ;-)"], "label": [1, 0, 1]})
    pd.concat([frame, extra]).to_csv(path, index=False)


def test_zero_token_documents_train_and_predict_finite(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=300)
    for path, first in ((data.train, 90_000), (data.dev, 190_000), (data.test, 290_000)):
        _with_zero_token_docs(path, first)
    run_dir = tmp_path / "run"
    overrides = train_args(data, run_dir, "train.batch_size=4")[1:]  # small batches: some all-empty
    cfg = compose(overrides)
    result = train(cfg, run_dir)
    assert result.status == "completed"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["dev_f1"]) and math.isfinite(metrics["test_f1"])
    last = checkpoint.read(run_dir / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    dataset, vectors = prepare_data(cfg)
    model = build_model(cfg, dataset.vocab.size, vectors)
    model.load_state_dict(last["model"])
    for name in ("train", "dev", "test"):
        split = dataset[name]
        empty = np.flatnonzero(split.lengths == 0)
        assert len(empty) == 3, name
        probs = predict(model, split, batch_tokens=64)
        assert np.isfinite(probs).all()
        assert ((probs > 0) & (probs < 1)).all()
        # a batch of only zero-token documents
        alone = predict(model, split.head(len(split)), batch_tokens=1)
        np.testing.assert_allclose(alone[empty], probs[empty], atol=1e-6)
    assert len(pd.read_csv(run_dir / "predictions" / "test.csv")) == len(dataset["test"])


def test_train_limit_and_splits(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=200, n_dev=30, n_test=20)
    cfg = compose([*data.overrides, "data.train_limit=50", "data.min_count=1"])
    dataset = load_dataset(cfg.data)
    assert len(dataset["train"]) == 50 and len(dataset["dev"]) == 30 and len(dataset["test"]) == 20
    assert dataset["train"].inst_ids.tolist() == list(range(50))
    cfg = compose(["data=csv", f"data.train={data.train}", f"data.dev={data.dev}"])
    assert set(load_dataset(cfg.data).splits) == {"train", "dev"}
