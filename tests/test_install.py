"""``pip install .`` gives a working ``clf``: the wheel ships ``conf/`` as package data, and users'
own config directories are found through ``$CLF_CONFIG_PATH``.

The end-to-end test builds the wheel from a copy of the sources (offline: no build isolation, no
index), installs it into a fresh virtual environment whose dependencies come from this one (a
``.pth`` line, so nothing is downloaded; this checkout's editable install is not visible there),
and runs ``clf train`` and ``clf submit cluster=<a user's profile>`` from another directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import TINY, make_dataset, one_line_error, run_clf

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "src", "conf")


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of this checkout's sources (links kept, as git keeps them)."""
    copy = tmp_path / "source"
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy2(source, copy / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp_path / "dist", copy)
    wheels = list((tmp_path / "dist").glob("clf-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A new venv holding the wheel; its dependencies are this environment's site-packages."""
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    return venv


def installed_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CLF_CONF_DIR", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "CLF_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", **extra}


def test_wheel_ships_the_config_tree(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"clf/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)


@pytest.mark.timeout(2000)  # pip wheel, venv, pip install, clf train 300 each + status --wait 600
@pytest.mark.slow
def test_installed_wheel_trains_and_submits_from_another_directory(tmp_path, cache_dir):
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    users = tmp_path / "my-conf"
    (users / "cluster").mkdir(parents=True)
    (users / "cluster" / "mine.yaml").write_text("defaults:\n  - local\n  - _self_\nname: mine\n"
                                                 "array_parallelism: 1\ncpus_per_task: 1\n")
    env = installed_env(cache_dir, CLF_CONFIG_PATH=str(users))
    clf = venv / "bin" / "clf"
    where = _run(venv / "bin" / "python", "-c", "import clf, clf.config as c; print(clf.__file__); print(c.config_dir())",
                 cwd=elsewhere, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    data = make_dataset(elsewhere / "data", n_train=120, n_dev=40, n_test=40)
    tiny = [*data.overrides, *TINY, "train.epochs=1"]
    _run(clf, "train", *tiny, "run_dir=run", cwd=elsewhere, env=env)
    assert json.loads((elsewhere / "run" / "metrics.json").read_text())["status"] == "completed"
    _run(clf, "submit", "cluster=mine", "sweep_dir=sweep", "seed=0,1", *tiny, cwd=elsewhere, env=env)
    manifest = json.loads((elsewhere / "sweep" / "sweep.json").read_text())
    assert manifest["cluster"]["name"] == "mine"
    status = _run(clf, "status", "--wait", "--json", "sweep", cwd=elsewhere, env=env, timeout=600)
    assert [run["state"] for run in json.loads(status.stdout)["runs"]] == ["completed", "completed"]


def test_users_config_dirs_add_profiles_and_presets(tmp_path, compose_cfg, monkeypatch):
    mine = tmp_path / "conf"
    (mine / "experiment").mkdir(parents=True)
    (mine / "experiment" / "wide.yaml").write_text("# @package _global_\nmodel:\n  num_heads: 7\n")
    monkeypatch.setenv("CLF_CONFIG_PATH", f"{tmp_path / 'empty'}{os.pathsep}{mine}")
    (tmp_path / "empty").mkdir()
    assert compose_cfg("experiment=wide").model.num_heads == 7


def test_a_missing_users_config_dir_is_one_line(tmp_path):
    result = run_clf("train", "--cfg", env={"CLF_CONFIG_PATH": str(tmp_path / "nope")})
    assert result.returncode == 2
    assert "CLF_CONFIG_PATH" in one_line_error(result) and str(tmp_path / "nope") in one_line_error(result)
