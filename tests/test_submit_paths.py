"""Relative paths given to ``clf submit`` mean the same files in every job: a run's config and a
``--job`` command's arguments are made absolute at submit, the submit directory is recorded, and
``clf resubmit`` from another directory reruns failed runs against the same files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import TINY, make_dataset, run_clf
from test_sweep import wait_final

from clf.slurm.expand import plan
from clf.slurm.paths import absolute_job_args


def test_every_path_of_a_runs_config_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = plan(["data=csv", "data.train=d/train.csv", "data.dev=d/dev.csv", "data.test='~/t.csv'",
                   "data.cache_dir=cache", "embeddings=word2vec", "embeddings.dir=../vectors", "sweep_dir=s",
                   "seed=0,1"])
    for run in result.runs:
        data = run.config["data"]
        assert data["train"] == str(tmp_path / "d" / "train.csv") and data["dev"] == str(tmp_path / "d" / "dev.csv")
        assert data["test"] == str(Path.home() / "t.csv") and data["cache_dir"] == str(tmp_path / "cache")
        assert run.config["embeddings"]["dir"] == str(tmp_path.parent / "vectors")
        assert run.config["run_dir"] == str(tmp_path / "s" / "runs" / run.name)


def test_job_arguments_that_are_paths_become_absolute(tmp_path):
    (tmp_path / "sweeps" / "heads").mkdir(parents=True)
    args = ["sweeps/heads", "--out", "results/heads", "--by", "model.num_heads", "data.dir=imdb", "out=v",
            "--out=r", "vector_size=100", "some words of a review", "/abs/path"]
    assert absolute_job_args(args, tmp_path) == [
        str(tmp_path / "sweeps" / "heads"), "--out", str(tmp_path / "results" / "heads"), "--by", "model.num_heads",
        f"data.dir={tmp_path / 'imdb'}", f"out={tmp_path / 'v'}", f"--out={tmp_path / 'r'}", "vector_size=100",
        "some words of a review", "/abs/path"]


@pytest.mark.timeout(1300)  # four sweeps' ends, 300 each
def test_resubmit_from_another_directory_uses_the_submit_directorys_files(tmp_path, tiny_run):
    """A run whose test file is missing and an aggregate job over an empty directory fail; once
    the files are there, ``clf resubmit`` run elsewhere completes both, reading and writing the
    files relative to where ``clf submit`` ran."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = make_dataset(home / "data", n_train=60, n_dev=20, n_test=20)
    test_csv = data.test.rename(home / "data" / "held-back.csv")
    relative = ["data=csv", "data.train=data/sentiment.train.csv", "data.dev=data/sentiment.dev.csv",
                "data.test=data/sentiment.test.csv", *TINY, "train.epochs=1"]
    run_clf("submit", "sweep_dir=sweep", *relative, cwd=home, check=True)
    (home / "found").mkdir()
    run_clf("submit", "sweep_dir=agg", "name=agg", "--job", "aggregate", "--", "found", "--out", "tables/found",
            "--no-plots", cwd=home, check=True)
    assert wait_final(home / "sweep") == {"run": "failed"} and wait_final(home / "agg") == {"aggregate": "failed"}
    manifest = json.loads((home / "sweep" / "sweep.json").read_text())
    assert manifest["submit_dir"] == str(home)
    assert manifest["runs"][0]["config"]["data"]["test"] == str(home / "data" / "sentiment.test.csv")

    test_csv.rename(data.test)
    shutil.copytree(tiny_run, home / "found" / "tiny")
    for sweep in ("sweep", "agg"):
        run_clf("resubmit", home / sweep, cwd=elsewhere, check=True)
    assert wait_final(home / "sweep") == {"run": "completed"} and wait_final(home / "agg") == {"aggregate": "completed"}
    assert (home / "tables" / "found.csv").is_file()
    assert not any(elsewhere.iterdir())  # nothing was read from or written to where resubmit ran
    submissions = json.loads((home / "sweep" / "sweep.json").read_text())["submissions"]
    assert [s["directory"] for s in submissions] == [str(home), str(elsewhere)]
