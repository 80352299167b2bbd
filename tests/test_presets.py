"""Every preset of conf/experiment/ and every profile of conf/cluster/ composes and is accepted by
``clf submit --dry-run`` (nothing submitted, nothing written), so a broken one fails here, not on
a login node."""

from __future__ import annotations

import math

import pytest
import yaml
from helpers import REPO

from clf.cli import main as clf_main
from clf.config.compose import compose

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
PROFILES = sorted(p.stem for p in (REPO / "conf" / "cluster").glob("*.yaml") if not p.stem.startswith("_"))
VECTORS = "embeddings.dir=/nonexistent/vectors"  # presets of word2vec runs need one; a dry run reads nothing


def grid_size(preset: str) -> int:
    """Runs of a preset's grid: the product of its sweeper params' value counts (lists or range(n))."""
    params = yaml.safe_load((REPO / "conf" / "experiment" / f"{preset}.yaml").read_text())["hydra"]["sweeper"]["params"]
    sizes = []
    for value in map(str, params.values()):
        sizes.append(len(range(*map(int, value[6:-1].split(",")))) if value.startswith("range(") else
                     len(value.split(",")))
    return math.prod(sizes)


def dry_run(capsys, tmp_path, *overrides: str) -> str:
    code = clf_main(["submit", "--dry-run", f"sweep_dir={tmp_path / 'sweep'}", *overrides])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert not (tmp_path / "sweep").exists()
    return out


def test_there_are_presets_and_profiles():
    assert len(PRESETS) >= 5 and {"local", "slurm"} <= set(PROFILES)


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_and_dry_runs_its_grid(preset, capsys, tmp_path):
    cfg = compose([f"experiment={preset}", VECTORS])
    assert cfg.name == preset
    out = dry_run(capsys, tmp_path, f"experiment={preset}", VECTORS)
    assert out.startswith(f"sweep {preset}: {grid_size(preset)} run(s) in {tmp_path / 'sweep'}")


@pytest.mark.parametrize("profile", PROFILES)
def test_each_cluster_profile_composes_and_dry_runs(profile, capsys, tmp_path):
    cluster = compose([f"cluster={profile}", "cluster.account=si630f25_class"]).cluster
    assert cluster.name == profile
    out = dry_run(capsys, tmp_path, f"cluster={profile}", "cluster.account=si630f25_class", "seed=0,1")
    assert f"2 run(s) in {tmp_path / 'sweep'} on cluster={profile} ({cluster.executor})" in out
    if cluster.executor == "slurm":
        assert "#SBATCH --array=0-1%" in out and f"#SBATCH --time={cluster.timeout_min}" in out
    else:
        assert "#SBATCH" not in out
