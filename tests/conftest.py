"""Shared fixtures (plain helpers are in helpers.py, imported by the test modules):

* ``cache_dir`` (autouse): ``$CLF_CACHE_DIR`` points at a fresh temp dir for every test, so no
  test reads or writes ``~/.cache/clf`` and subprocesses inherit the same cache.
* ``dataset``: a small learnable dataset (``helpers.make_dataset``).
* ``tiny_run``: a run trained once per session.
* ``disk_data``, ``disk_reference``: the full-disk tests' data and uninterrupted run (once per session).
* ``compose_cfg(*overrides)``: the composed, validated config (in-process).
* ``corpus`` (per module): a vocabulary and texts full of tokenizer edge cases.
* ``base``, ``sweep`` (per module): aggregate's synthetic config and sweep directory.

A failing test marked ``slurm`` gets the cluster's state and its jobs' log tails in its report
(a CI log is all there is to read afterwards).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from helpers import (HEADS, LONG_TRAIN, LRS, SEEDS, TINY, DatasetPaths, curve_of, dev_f1_of, make_corpus, make_dataset,
                     make_vocab, run_clf, slurm_diagnosis)

from clf.results.synthetic import base_config, completed_metrics, running_metrics, with_values, write_run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call" and item.get_closest_marker("slurm"):
        tmp = item.funcargs.get("tmp_path")
        report.sections.append(("slurm diagnosis", slurm_diagnosis([tmp] if tmp else [])))
    return report


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory):
    """$CLF_CACHE_DIR for module- and session-scoped fixtures (tests get their own below)."""
    old = os.environ.get("CLF_CACHE_DIR")
    os.environ["CLF_CACHE_DIR"] = str(tmp_path_factory.mktemp("clf-session-cache"))
    yield
    if old is None:
        os.environ.pop("CLF_CACHE_DIR", None)
    else:
        os.environ["CLF_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """A fresh token cache for each test, inherited by subprocesses through $CLF_CACHE_DIR."""
    path = tmp_path_factory.mktemp("clf-cache")
    monkeypatch.setenv("CLF_CACHE_DIR", str(path))
    return path


@pytest.fixture
def dataset(tmp_path) -> DatasetPaths:
    """A small learnable dataset (400 train, 120 dev, 120 test documents) in tmp_path/data."""
    return make_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run trained once per session by clf's own loop on learnable data (4 heads)."""
    from clf.config.compose import compose
    from clf.train.loop import train

    base = tmp_path_factory.mktemp("tiny")
    run_dir = base / "tiny-run"
    data = make_dataset(base / "tiny-data", n_train=240, n_dev=60, n_test=60, seed=630)
    cfg = compose([*data.overrides, *TINY, "model.num_heads=4", "embeddings.dim=16", "train.epochs=4",
                   f"data.cache_dir={base / 'tiny-cache'}", f"run_dir={run_dir}", "seed=1"])
    assert train(cfg, run_dir).status == "completed"
    return run_dir


@pytest.fixture(scope="session")
def disk_data(tmp_path_factory) -> DatasetPaths:
    """2,000 training documents: long enough runs (LONG_TRAIN) to fill a disk in their middle."""
    return make_dataset(tmp_path_factory.mktemp("disk-full-data"), n_train=2000)


@pytest.fixture(scope="session")
def disk_reference(disk_data, tmp_path_factory) -> Path:
    """An uninterrupted LONG_TRAIN run on an ordinary file system: what the runs whose disk filled
    must equal once resumed (test_disk_full.py, test_slurm_faults.py: trained once for both)."""
    run_dir = tmp_path_factory.mktemp("disk-full-ref") / "run"
    run_clf("train", *disk_data.overrides, *TINY, *LONG_TRAIN, f"run_dir={run_dir}", check=True)
    return run_dir


@pytest.fixture
def compose_cfg():
    """``compose_cfg(*overrides)`` -> validated config (conf/ of this checkout)."""
    from clf.config.compose import compose

    return lambda *overrides: compose(list(overrides))


@pytest.fixture(scope="module")
def base() -> dict:
    return base_config()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, base) -> Path:
    """A sweep dir (sweep.json + runs/): 12 completed runs and one of every kind of unfinished run."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "sweep.json").write_text(json.dumps({"runs": []}))
    for heads in HEADS:
        for lr in LRS:
            for seed in SEEDS:
                run_dir = root / "runs" / f"h{heads}-lr{lr}-s{seed}"
                cfg = with_values(base, {"model.num_heads": heads, "optim.lr": lr, "seed": seed,
                                         "run_dir": str(run_dir)})
                f1 = dev_f1_of(heads, lr, seed)
                metrics = completed_metrics(cfg, f1, f1 - 0.05, best_step=20 + seed, steps=30, train_seconds=10.0 + seed)
                write_run(run_dir, cfg, metrics, dev_curve=curve_of(f1), log_steps=(5, 15, 25))
    cfg = with_values(base, {"model.num_heads": 8, "optim.lr": 1e-3, "seed": 5})
    runs = root / "runs"
    write_run(runs / "failed", cfg, job={"state": "failed", "error": "Traceback (most recent call last):\n"
                                                                      "RuntimeError: out of memory"})
    write_run(runs / "running", cfg, running_metrics(cfg, 0.5, 10, 12, 30), dev_curve=[(10, 0.5)])
    write_run(runs / "pending", cfg, job={"state": "pending"})
    write_run(runs / "interrupted", cfg, running_metrics(cfg, 0.5, 10, 12, 30, status="interrupted"))
    write_run(runs / "half-written", cfg, completed_metrics(cfg, 0.9, 0.9, 1, 1, 1.0))
    text = (runs / "half-written" / "metrics.json").read_text()
    (runs / "half-written" / "metrics.json").write_text(text[: len(text) // 2])
    write_run(runs / "empty-metrics", cfg)
    (runs / "empty-metrics" / "metrics.json").write_bytes(b"")
    write_run(runs / "list-metrics", cfg)
    (runs / "list-metrics" / "metrics.json").write_text("[1, 2]")
    write_run(runs / "bad-status", cfg, completed_metrics(cfg, 0.99, 0.99, 1, 1, 1.0))
    (runs / "bad-status" / "status.json").write_bytes(b"\x00\xff{")
    write_run(runs / "started", cfg)
    write_run(runs / "done-without-metrics", cfg, job={"state": "completed"})
    (runs / "started" / "tb").mkdir()
    return root


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(630)
    vocab, words = make_vocab(rng)
    texts = make_corpus(rng, words, 4000)
    return vocab, texts
