"""launch/pipeline.sh and launch/experiments.sh send their CPU-only stages (word2vec, aggregate,
explain) to a CPU profile with the sweep's account, never to the sweep's GPU profile.

CLF names a recorder standing in for ``clf`` (one line of arguments per call); the local-executor
pipeline end to end is in test_sweep.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "cluster.account=si630f25_class"


def recorded_calls(tmp_path: Path, script: str, *args: str, env: dict[str, str] | None = None) -> list[list[str]]:
    log = tmp_path / "calls.txt"
    recorder = tmp_path / "clf-recorder"
    recorder.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {log}\n')
    recorder.chmod(0o755)
    result = subprocess.run(["bash", str(REPO / "launch" / script), *args], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "CLF": str(recorder), **(env or {})})
    assert result.returncode == 0, result.stderr
    return [line.split() for line in log.read_text().splitlines()]


def stage(calls: list[list[str]], marker: str) -> list[str]:
    return next(call for call in calls if any(marker in arg for arg in call))


@pytest.mark.parametrize("gpu_profile", ["greatlakes-gpu", "greatlakes-mig40", "greatlakes-spgpu"])
def test_pipeline_cpu_stages_leave_the_gpu_profile(tmp_path, gpu_profile):
    out = tmp_path / "p"
    calls = recorded_calls(tmp_path, "pipeline.sh", str(out), f"cluster={gpu_profile}", ACCOUNT,
                           "cluster.timeout_min=50", "data=imdb", "model.num_heads=2,4")
    sweep = stage(calls, f"sweep_dir={out}/sweep")
    assert f"cluster={gpu_profile}" in sweep and "cluster.timeout_min=50" in sweep
    for name in ("w2v", "aggregate"):
        cpu = stage(calls, f"sweep_dir={out}/{name}")
        assert "cluster=greatlakes-standard" in cpu and ACCOUNT in cpu, cpu
        assert not any(a.startswith(f"cluster={gpu_profile}") or a == "cluster.timeout_min=50" for a in cpu)


def test_cpu_profile_is_configurable_and_gpu_settings_never_reach_cpu_stages(tmp_path):
    out = tmp_path / "p"
    calls = recorded_calls(tmp_path, "pipeline.sh", str(out), "cluster=slurm", "cluster.partition=gpu",
                           "cluster.gpus_per_node=1", "cluster.account=lab",
                           env={"CPU_CLUSTER": "cluster=slurm cluster.partition=standard"})
    w2v = stage(calls, f"sweep_dir={out}/w2v")
    assert w2v[:4] == ["submit", "cluster=slurm", "cluster.partition=standard", "cluster.account=lab"]
    (tmp_path / "second").mkdir()
    calls = recorded_calls(tmp_path / "second", "pipeline.sh", str(out), "cluster=slurm", "cluster.gpus_per_node=1",
                           "cluster.gres=gpu:1", "cluster.account=lab")
    aggregate = stage(calls, f"sweep_dir={out}/aggregate")
    assert "cluster=slurm" in aggregate and "cluster.account=lab" in aggregate
    assert not any(a.startswith(("cluster.gpus_per_node", "cluster.gres")) for a in aggregate)


def test_experiments_cpu_jobs_leave_the_gpu_profile(tmp_path):
    (tmp_path / "imdb").mkdir()
    calls = recorded_calls(tmp_path, "experiments.sh", "cluster=greatlakes-gpu", ACCOUNT,
                           env={"DATA": str(tmp_path / "imdb"), "WORK": str(tmp_path / "w"),
                                "RESULTS": str(tmp_path / "r"), "PRESETS": "heads homework defaults"})
    jobs = [call for call in calls if "--job" in call]
    sweeps = [call for call in calls if "--job" not in call]
    assert {call[call.index("--job") + 1] for call in jobs} == {"w2v", "aggregate", "explain"}
    assert len(sweeps) == 3 and all("cluster=greatlakes-gpu" in call for call in sweeps)
    for call in jobs:
        assert "cluster=greatlakes-standard" in call and ACCOUNT in call and "cluster=greatlakes-gpu" not in call
    (w2v,) = [call for call in jobs if call[call.index("--job") + 1] == "w2v"]   # the homework's word2vec settings
    assert {"data.tokenizer.lowercase=false", "epochs=5", "min_count=5"} <= set(w2v)
