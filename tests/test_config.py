"""Config composition: Hydra overrides, ``--cfg``, and one-line errors before any work."""

from __future__ import annotations

import pytest
import yaml

from helpers import one_line_error, run_clf

from clf.config.compose import compose, from_yaml, to_yaml
from clf.errors import ClfError


def test_overrides_land_in_composed_config():
    cfg = compose(["optim.lr=1e-3", "model.num_heads=8", "train.max_steps=7", "model.max_tokens=null"])
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.model.num_heads == 8
    assert cfg.train.max_steps == 7
    assert cfg.model.max_tokens is None
    # untouched keys keep their conf/ defaults
    assert cfg.optim.beta1 == pytest.approx(0.9)
    assert cfg.data.source == "demo"


def test_group_choice_switches_defaults():
    cfg = compose(["data=csv", "data.train=a.csv", "data.dev=b.csv", "embeddings=word2vec", "embeddings.dir=w"])
    assert cfg.data.source == "csv"
    assert cfg.data.train == "a.csv"
    assert cfg.embeddings.kind == "word2vec"


def test_composed_config_round_trips_through_yaml():
    cfg = compose(["model.num_heads=3", "optim.schedule=cosine"])
    again = from_yaml(to_yaml(cfg))
    assert to_yaml(again) == to_yaml(cfg)


def test_cfg_flag_prints_composed_config(tmp_path):
    result = run_clf("train", "--cfg", "optim.lr=1e-3", "model.num_heads=8", f"run_dir={tmp_path / 'run'}",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["optim"]["lr"] == pytest.approx(1e-3)
    assert printed["model"]["num_heads"] == 8
    assert printed["run_dir"] == str(tmp_path / "run")
    assert set(printed) >= {"data", "embeddings", "model", "optim", "train", "seed"}
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "runs").exists()


BAD_OVERRIDES = {
    "unknown key": (["model.nosuch=1"], "nosuch"),
    "unknown group key": (["nosuch.key=1"], "nosuch"),
    "appended unknown key": (["+model.nosuch=1"], "nosuch"),
    "wrong type": (["model.num_heads=abc"], "num_heads"),
    "wrong type float": (["optim.lr=fast"], "lr"),
    "bad choice": (["optim.schedule=bogus"], "optim.schedule"),
    "bad group option": (["data=nosuch"], "data/nosuch"),
    "not positive": (["model.num_heads=0"], "model.num_heads"),
    "out of range": (["model.dropout=1.5"], "model.dropout"),
    "bad device": (["device=gpu"], "device"),
    "csv without a dev path": (["data.dev=null"], "data.dev=PATH"),
    "bad syntax": (["model.num_heads==3="], "override"),
}


@pytest.mark.parametrize("name", BAD_OVERRIDES)
def test_bad_override_is_one_line_exit_2_before_any_work(tmp_path, name, dataset):
    overrides, needle = BAD_OVERRIDES[name]
    run_dir = tmp_path / "run"
    result = run_clf("train", *dataset.overrides, *overrides, f"run_dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert line.startswith("clf train: error: ")
    assert needle in line
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["unknown key", "appended unknown key", "wrong type", "bad choice", "bad group option"])
def test_bad_override_in_process_raises_clf_error(name):
    overrides, needle = BAD_OVERRIDES[name]
    with pytest.raises(ClfError, match=needle.replace(".", r"\.")):
        compose(overrides)


def test_group_files_agree_with_schema_defaults(compose_cfg):
    """conf/model, optim and train list every knob; their values are the schema's defaults."""
    from omegaconf import OmegaConf

    from clf.config.schema import Config

    composed = compose_cfg()
    schema = OmegaConf.structured(Config)
    for group in ("model", "optim", "train", "embeddings"):
        assert OmegaConf.to_container(composed[group]) == OmegaConf.to_container(schema[group]), group
