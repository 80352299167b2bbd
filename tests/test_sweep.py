"""``clf submit`` without Slurm: grid expansion, presets, run names, profile checks, and sweeps on
the local executor (non-blocking submit, status, failure, cancel, resubmit, the pipeline recipe).

The same commands against a real Slurm cluster are in test_slurm.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import (REPO, TINY, runs_with, attempt_times, clf_env, make_dataset, one_line_error, run_clf, same_weights, states,
                     wait_final, wait_for)

from clf.config.compose import compose, to_container
from clf.errors import ClfError
from clf.slurm.expand import plan, run_name
from clf.slurm.profile import check_cluster, cluster_from, local_parameters
from clf.slurm.status import load_status, runner_alive
from clf.train import checkpoint

PLACE_KEYS = ("run_dir", "sweep_dir")


# ------------------------------------------------------------------ expansion and names ---

def test_grid_expands_into_named_runs(tmp_path):
    result = plan(["model.num_heads=1,2", "seed=range(3)", f"sweep_dir={tmp_path / 's'}", "train.max_steps=5"])
    assert [r.name for r in result.runs] == [f"model.num_heads={h},seed={s}" for h in (1, 2) for s in range(3)]
    assert result.sweep_dir == tmp_path / "s" and result.name == "clf" and result.cluster["name"] == "local"
    for run in result.runs:
        heads, seed = (int(part.split("=")[1]) for part in run.name.split(","))
        assert (run.config["model"]["num_heads"], run.config["seed"]) == (heads, seed)
        assert run.config["train"]["max_steps"] == 5
        assert run.config["run_dir"] == str(tmp_path / "s" / "runs" / run.name)
        assert run.label == f"model.num_heads={heads} seed={seed}"


def test_each_run_equals_hydra_composing_its_overrides(tmp_path):
    """The fast path (compose once per group choice, then apply values) equals compose() per run."""
    result = plan(["optim=adamw", "optim.schedule=linear,cosine", "model.positional=true,false", "data.min_count=3",
                   "+cluster.additional_parameters.comment=x", f"sweep_dir={tmp_path}"])
    assert len(result.runs) == 4
    for run in result.runs:
        expected = to_container(compose(run.overrides))
        got = dict(run.config)
        assert {k: got.pop(k) for k in PLACE_KEYS} == {"run_dir": str(tmp_path / "runs" / run.name),
                                                        "sweep_dir": str(tmp_path)}
        assert got == {k: v for k, v in expected.items() if k not in PLACE_KEYS}


def test_preset_grid_expands_and_the_command_line_wins(tmp_path):
    vectors = f"embeddings.dir={tmp_path / 'vectors'}"  # the presets start from word2vec vectors
    where = f"sweep_dir={tmp_path}"
    full = plan(["experiment=heads", vectors, where])
    assert len(full.runs) == 15 and full.name == "heads"
    assert {r.config["model"]["num_heads"] for r in full.runs} == {1, 2, 4, 8, 16}
    assert {r.config["embeddings"]["kind"] for r in full.runs} == {"word2vec"}
    one_seed = plan(["experiment=heads", vectors, "seed=5", where])
    assert [r.config["seed"] for r in one_seed.runs] == [5] * 5
    assert [r.name for r in one_seed.runs] == [f"model.num_heads={h}" for h in (1, 2, 4, 8, 16)]
    narrowed = plan(["experiment=heads", vectors, "model.num_heads=3", "seed=0,1", where])
    assert [(r.config["model"]["num_heads"], r.config["seed"]) for r in narrowed.runs] == [(3, 0), (3, 1)]
    # `clf train` accepts the preset too (and ignores its grid)
    assert compose(["experiment=heads", vectors]).name == "heads"


def test_default_sweep_dir_has_the_name_and_a_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = plan(["experiment=heads", "seed=0", "embeddings.dir=vectors"])
    assert result.sweep_dir.parent == tmp_path / "sweeps" and result.sweep_dir.name.startswith("heads-20")


def test_run_names_are_safe_and_distinct():
    assert run_name([]) == "run"
    assert run_name([("model.num_heads", "4"), ("seed", "1")]) == "model.num_heads=4,seed=1"
    odd = [run_name([("data.train", value)]) for value in ("a/b.csv", "a_b.csv", "a b.csv", "../x", "x" * 200)]
    assert len(set(odd)) == len(odd)
    assert odd[1] == "data.train=a_b.csv"
    for name in odd[:1] + odd[2:]:
        assert "/" not in name and " " not in name and not name.startswith(".") and len(name) <= 90


@pytest.mark.parametrize("overrides, message", [
    (["seed=1,1"], "same run more than once"),
    (["model.num_heads=abc"], "model.num_heads=abc"),
    (["model.nosuch=1,2"], "nosuch"),
    (["model.num_heads=0,1"], "must be positive"),
    (["cluster.cpus_per_task=1,2"], "cluster settings must be the same"),
    (["experiment=nosuch"], "nosuch"),
])
def test_bad_sweeps_fail_with_one_line(tmp_path, overrides, message):
    result = run_clf("submit", "--dry-run", f"sweep_dir={tmp_path / 's'}", *overrides)
    assert result.returncode == 2
    assert message in one_line_error(result)
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------- profiles ---

GREAT_LAKES = {
    "greatlakes-gpu": ["--partition=gpu", "--gpus-per-node=1", "--array=0-1%1"],
    "greatlakes-spgpu": ["--partition=spgpu", "--gpus-per-node=1", "--array=0-1%1"],
    "greatlakes-mig40": ["--partition=gpu_mig40", "--gres=gpu:nvidia_a100_80gb_pcie_3g.40gb:1", "--array=0-1%1"],
    "greatlakes-standard": ["--partition=standard", "--array=0-1%2"],
    "greatlakes-debug": ["--partition=debug", "--array=0-1%1"],
}


@pytest.mark.parametrize("name", list(GREAT_LAKES))
def test_great_lakes_profiles(tmp_path, name):
    missing = run_clf("submit", "--dry-run", f"cluster={name}", f"sweep_dir={tmp_path / 's'}")
    assert missing.returncode == 2 and "needs cluster.account=ACCOUNT" in one_line_error(missing)
    result = run_clf("submit", "--dry-run", f"cluster={name}", "cluster.account=si630f25_class", "seed=0,1",
                     f"sweep_dir={tmp_path / 's'}", check=True)
    script = result.stdout
    for flag in GREAT_LAKES[name] + ["--account=si630f25_class", "--mem=", "--time=", "--signal=USR2@180",
                                     "--open-mode=append"]:
        assert f"#SBATCH {flag}" in script, flag
    if "gres" in script:
        assert "--gpus-per-node" not in script
    assert "module load python/3.11.5" in script and "source $CLF_VENV/bin/activate" in script
    cluster = cluster_from(compose([f"cluster={name}"]).cluster)
    assert cluster.signal_delay_s >= 120 and cluster.max_num_timeout >= 3 and cluster.mem_gb >= 4
    assert not (tmp_path / "s").exists()


MALICIOUS = {
    "partition": "gpu\ntouch /tmp/pwned",
    "account": "acct;touch /tmp/pwned",
    "qos": "$(touch /tmp/pwned)",
    "gres": "gpu:1`touch /tmp/pwned`",
}


@pytest.mark.parametrize("key", list(MALICIOUS))
def test_profile_strings_that_could_run_commands_are_refused(key):
    cluster = cluster_from({"executor": "slurm", key: MALICIOUS[key]})
    with pytest.raises(ClfError, match=f"cluster.{key}=.* is not allowed"):
        check_cluster(cluster)


@pytest.mark.parametrize("setting, value", [
    ("setup", ["module load python", "echo hi; touch /tmp/pwned"]),
    ("setup", ["echo $(touch /tmp/pwned)"]),
    ("setup", ["echo ok\ntouch /tmp/pwned"]),
    ("additional_parameters", {"comment": "x\ntouch /tmp/pwned"}),
    ("additional_parameters", {"comment": "$(touch /tmp/pwned)"}),
    ("additional_parameters", {"bad key": "1"}),
    ("additional_parameters", {"output": "/tmp/elsewhere"}),
])
def test_setup_lines_and_extra_flags_are_checked(setting, value):
    with pytest.raises(ClfError, match="not allowed|set by clf itself"):
        check_cluster(cluster_from({"executor": "slurm", setting: value}))


def test_sane_profiles_and_values_pass():
    check_cluster(cluster_from({"executor": "slurm", "partition": "standard,debug", "account": "si630f25_class",
                                "setup": ["module load python/3.11.5", "source ${HOME}/venv/bin/activate"],
                                "additional_parameters": {"mail-type": "END", "mail-user": "me@umich.edu",
                                                          "hold": True}}))


@pytest.mark.parametrize("visible, expected", [("3,1", (3, 1)), ("", ())])
def test_local_runs_see_the_gpus_the_submitter_sees(monkeypatch, visible, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    params = local_parameters(cluster_from({"executor": "local", "gpus_per_node": 0}))
    assert (params["gpus_per_node"], params["visible_gpus"]) == (len(expected), expected)
    assert local_parameters(cluster_from({"executor": "local", "gpus_per_node": 1}))["gpus_per_node"] == 1


def test_a_time_limit_shorter_than_the_signal_delay_is_refused():
    with pytest.raises(ClfError, match="signal_delay_s"):
        check_cluster(cluster_from({"executor": "slurm", "timeout_min": 2, "signal_delay_s": 120}))


# ------------------------------------------------------------------ the local executor ---

def tiny(data, *extra: str) -> list[str]:
    return [*data.overrides, *TINY, *extra]


@pytest.fixture
def long_data(tmp_path):
    return make_dataset(tmp_path / "long-data", n_train=2000)


LONG = ["train.max_steps=2500", "train.eval_every=100", "train.checkpoint_every=20", "train.log_every=50"]


@pytest.mark.slow
def test_local_sweep_returns_at_once_then_completes(dataset, tmp_path):
    sweep = tmp_path / "s"
    result = run_clf("submit", f"sweep_dir={sweep}", *tiny(dataset), "model.num_heads=1,2", check=True)
    assert "started 2 run(s) on this machine" in result.stdout
    # it did not wait for the runs: none has ended, and the runner it started goes on with them
    assert set(states(sweep).values()) <= {"pending", "running"}
    assert runner_alive(json.loads((sweep / "sweep.json").read_text())["submissions"][0]["runner"])
    assert wait_final(sweep) == {"model.num_heads=1": "completed", "model.num_heads=2": "completed"}
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["profile"] == "local" and manifest["executor"] == "local"
    assert manifest["code"]["git_sha"] and isinstance(manifest["code"]["dirty"], bool)
    assert [r["name"] for r in manifest["runs"]] == ["model.num_heads=1", "model.num_heads=2"]
    for run in manifest["runs"]:
        run_dir = sweep / "runs" / run["name"]
        assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
        assert list((run_dir / "tb").glob("events.out.tfevents.*"))
        events = [json.loads(line)["event"] for line in (run_dir / "attempts.jsonl").read_text().splitlines()]
        assert events == ["start", "end"]
    table = run_clf("status", str(sweep), check=True).stdout
    assert "2 runs: 2 completed" in table and "model.num_heads=1" in table


@pytest.mark.slow
def test_submitting_into_an_existing_sweep_is_refused(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *tiny(dataset), check=True)
    again = run_clf("submit", f"sweep_dir={sweep}", *tiny(dataset))
    assert again.returncode == 2 and "already holds a sweep" in one_line_error(again)
    wait_final(sweep)


@pytest.mark.timeout(1000)  # status --wait 300 + runs 300 + rerun 300
@pytest.mark.slow
def test_local_failure_is_reported_and_resubmit_failed_reruns_only_it(dataset, tmp_path):
    sweep, missing = tmp_path / "s", tmp_path / "later" / "train.csv"
    run_clf("submit", f"sweep_dir={sweep}", *tiny(dataset), f"data.train={dataset.train},{missing}", check=True)
    assert run_clf("status", "--wait", str(sweep)).returncode == 1  # one run failed
    final = wait_final(sweep)
    [bad] = runs_with(sweep, f"data.train={missing}")
    [good] = set(final) - {bad}
    assert (final[good], final[bad]) == ("completed", "failed")
    row = next(r for r in load_status(sweep).runs if r.name == bad)
    assert "train.csv" in row.detail and row.log and Path(row.log).exists()
    status = json.loads((sweep / "runs" / bad / "status.json").read_text())
    assert status["state"] == "failed" and "train.csv" in status["error"]
    missing.parent.mkdir()
    shutil.copy(dataset.train, missing)
    result = run_clf("resubmit", str(sweep), "--failed", check=True)
    assert "resubmitted 1 run(s)" in result.stdout and bad in result.stdout and good not in result.stdout
    assert wait_final(sweep) == {good: "completed", bad: "completed"}
    nothing = run_clf("resubmit", str(sweep), check=True)
    assert "nothing to resubmit" in nothing.stdout


@pytest.mark.timeout(1200)  # step 200 180 + cancel 300 + rerun 300 + reference 300
@pytest.mark.slow
def test_local_cancel_then_resubmit_resumes_exactly(long_data, tmp_path):
    sweep, reference = tmp_path / "s", tmp_path / "reference"
    overrides = tiny(long_data, *LONG)
    ref = subprocess.Popen([sys.executable, "-m", "clf", "train", *overrides, f"run_dir={reference}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clf_env())
    run_clf("submit", f"sweep_dir={sweep}", *overrides, check=True)
    run_dir = sweep / "runs" / "run"
    wait_for(lambda: (json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists()
                      else {}).get("steps", 0) >= 200, 180, "the run to pass step 200")
    result = run_clf("cancel", str(sweep), check=True)
    assert "stopped local runner" in result.stdout
    assert wait_final(sweep) == {"run": "cancelled"}
    stopped = checkpoint.read(run_dir / "checkpoints" / "last.pt")["state"]["step"]
    assert 200 <= stopped < 2500
    run_clf("resubmit", str(sweep), check=True)
    assert wait_final(sweep) == {"run": "completed"}
    assert f"resuming {run_dir} at step {stopped}" in (run_dir / "train.log").read_text()
    _, stderr = ref.communicate(timeout=300)
    assert ref.returncode == 0, stderr
    same_weights(reference, run_dir)
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert json.loads((reference / "metrics.json").read_text())[key] == \
            json.loads((run_dir / "metrics.json").read_text())[key]


@pytest.mark.timeout(1400)  # pipeline.sh 120 + three stages 400 each
@pytest.mark.slow
def test_local_pipeline_runs_its_stages_in_order(dataset, tmp_path):
    out = tmp_path / "pipeline"
    env = dict(clf_env(), CLF=f"{sys.executable} -m clf", W2V_ARGS="vector_size=12 min_count=1 epochs=1")
    subprocess.run(["bash", str(REPO / "launch" / "pipeline.sh"), str(out), *dataset.overrides, *TINY[1:],
                    "model.num_heads=1,2"], check=True, env=env, capture_output=True, text=True, timeout=120)
    for stage in ("w2v", "sweep", "aggregate"):
        assert set(wait_final(out / stage, timeout=400).values()) == {"completed"}, stage
    ends = {stage: attempt_times(out / stage) for stage in ("w2v", "sweep", "aggregate")}
    assert max(ends["w2v"][1]) <= min(ends["sweep"][0])
    assert max(ends["sweep"][1]) <= min(ends["aggregate"][0])
    assert (out / "results" / "sweep.csv").exists() and (out / "w2v" / "vectors" / "word2vec.pt").exists()
    config = json.loads((out / "sweep" / "sweep.json").read_text())["runs"][0]["config"]
    assert config["embeddings"]["kind"] == "word2vec"


@pytest.mark.slow
def test_status_imports_neither_torch_nor_hydra(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *tiny(dataset), check=True)
    code = ("import sys; from clf.cli import main; main(['status', sys.argv[1]]); "
            "print(sorted(m for m in ('torch', 'hydra', 'omegaconf', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(sweep)], capture_output=True, text=True, env=clf_env(),
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    wait_final(sweep)


def test_status_and_cancel_of_a_missing_sweep_fail_with_one_line(tmp_path):
    for command in ("status", "cancel", "resubmit"):
        result = run_clf(command, str(tmp_path))
        assert result.returncode == 2 and "no sweep.json" in one_line_error(result)
