"""Successive halving on the local Slurm cluster: each rung is a job array and each decision a
dependent Slurm job (afterany on its rung) that submits the next rung from a compute node; the
winner equals an uninterrupted run of its config. Packed (3 runs per array task)."""

from __future__ import annotations

import json

import pytest
from helpers import (FULL, TINY, check_rungs, manifest_runs, reference_run, run_clf, same_weights, search_ended,
                     require_slurm, wait_final, wait_for)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SLURM = ["cluster=slurm", "cluster.account=clf", "cluster.cpus_per_task=1", "cluster.mem_gb=1",
         "cluster.array_parallelism=4"]


@pytest.fixture(scope="module", autouse=True)
def slurm():
    require_slurm()


@pytest.mark.timeout(2500)  # search 1500 + runs 600 + reference run 300
def test_slurm_halving_sweep_with_dependent_decision_jobs(dataset, tmp_path):
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *SLURM, "cluster.runs_per_task=3", *dataset.overrides, *TINY,
            "search=halving", "search.eta=3", "search.min_steps=10", *FULL, "optim.lr=0.003,0.01,0.03",
            "model.num_heads=1,2,4", check=True)
    record = wait_for(lambda: search_ended(sweep), 1500, "the search to end")
    final = wait_final(sweep, timeout=600)
    assert set(final.values()) == {"completed"} and len(final) == 9 + 3
    check_rungs(sweep, record, [9, 3, 1])
    manifest = json.loads((sweep / "sweep.json").read_text())
    runs = manifest_runs(sweep)
    for rung in record["rungs"]:  # the decision job waited for its rung's Slurm jobs
        rung_jobs = {runs[name]["history"][rung["index"] - 1] if len(runs[name]["history"]) >= rung["index"]
                     else runs[name]["job_id"] for name in rung["runs"]}
        decision = manifest["submissions"][runs[rung["decision"]]["submission"]]
        assert decision["kind"] == "decision" and decision["job_ids"]
        assert decision["dependency"] == "afterany:" + ":".join(sorted({j.split("_")[0] for j in rung_jobs}, key=int))
    winner = record["winner"]
    same_weights(reference_run(tmp_path, sweep, winner), sweep / "runs" / winner)
    assert f"winner: {winner}" in run_clf("status", str(sweep), check=True).stdout
