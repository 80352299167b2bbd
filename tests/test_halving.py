"""Successive halving (``search=halving``): a run paused at a rung's budget and promoted ends
bit for bit equal to an uninterrupted run of its config; a local sweep of 9 configurations runs
9/3/1 runs per rung, driven by its decision jobs, with the winner equal to an uninterrupted run
(also under packing); a failed run does not stop the search and ``resubmit --failed`` brings it
to its rung's budget with the bookkeeping intact; the selection rules; the settings' checks.
The same on the local Slurm cluster: test_halving_slurm.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import (FULL, runs_with, GRID9, HALVING, TINY, check_rungs, halving_record, make_dataset, manifest_runs, metrics,
                     one_line_error, popen_clf, reference_run, run_clf, same_weights, search_ended, train_args, wait_final,
                     wait_for)

from clf.slurm.halving import keep_count, rung_budgets, rung_score, select



# one thread a run (TINY): two at a time keep both cores busy and halve the sweeps' wall time
LOCAL_PARALLEL = ("cluster.array_parallelism=2",)


# --------------------------------------------------------------------------- selection ---

def test_budgets_grow_eta_fold_up_to_the_full_budget():
    assert rung_budgets(100, 3, 900) == [100, 300, 900]
    assert rung_budgets(100, 3, 1000) == [100, 300, 900, 1000]
    assert rung_budgets(50, 2, 120) == [50, 100, 120]
    assert [keep_count(n, 3) for n in (27, 9, 3, 1, 10, 4)] == [9, 3, 1, 1, 4, 2]


def test_select_keeps_the_best_excludes_failed_runs_and_breaks_ties_by_sweep_order():
    order = ["a", "b", "c", "d", "e"]
    scores = {"a": 0.5, "b": 0.9, "c": None, "d": 0.7, "e": 0.9}
    assert select(scores, 2, order) == ["b", "e"]            # a tie: b comes first in the sweep
    assert select(scores, 2, ["e", "d", "c", "b", "a"]) == ["e", "b"]
    assert select(scores, 4, order) == ["b", "e", "d", "a"]  # c failed: never kept, even with room
    assert select({"a": None, "b": None}, 1, order) == []


def test_rung_score_needs_the_budget_reached(tmp_path):
    def write(status: str, steps: int) -> Path:
        run_dir = tmp_path / f"{status}-{steps}"
        run_dir.mkdir()
        (run_dir / "metrics.json").write_text(json.dumps({"status": status, "steps": steps, "dev_f1": 0.8}))
        return run_dir

    assert rung_score(write("stopped", 30), 30) == 0.8
    assert rung_score(write("stopped", 10), 30) is None       # failed before reaching this rung's budget
    assert rung_score(write("running", 20), 30) is None
    assert rung_score(write("completed", 25), 30) == 0.8      # ended early (early stopping): final
    assert rung_score(tmp_path / "missing", 30) is None


# ---------------------------------------------------------------------------- settings ---

@pytest.mark.parametrize("overrides, message", [
    (["train.max_steps=90", "train.stop_at_step=25"], "train.stop_at_step=25 must be a multiple of train.eval_every=10"),
    (["search=halving", "train.max_steps=90"], "search=halving needs search.min_steps=N"),
    (["search=halving", "search.min_steps=10"], "search=halving needs train.max_steps=N"),
    (["search=halving", "search.min_steps=15", "train.max_steps=90"], "search.min_steps=15 must be a positive multiple"),
    (["search=halving", "search.min_steps=90", "train.max_steps=90"], "search.min_steps=90 must be less than"),
    (["search=halving", "search.min_steps=10", "search.eta=1", "train.max_steps=90"], "search.eta=1 must be at least 2"),
])
def test_bad_settings_are_one_line_errors(dataset, tmp_path, overrides, message):
    result = run_clf("submit", f"sweep_dir={tmp_path / 's'}", *dataset.overrides, *TINY, *overrides)
    assert result.returncode == 2
    assert message in one_line_error(result)
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------ exact resume ---

@pytest.mark.parametrize("extra", [[], ["model.hidden_layers=1", "model.dropout=0.3", "optim.schedule=plateau",
                                        "optim.plateau_patience=0", "train.early_stopping_patience=6"]],
                         ids=["linear-lazy", "plateau-dropout-early-stopping"])
@pytest.mark.timeout(1600)  # five clf train runs, 300 each
def test_a_run_paused_at_rungs_and_resumed_equals_an_uninterrupted_run(dataset, tmp_path, extra):
    uninterrupted, paused = tmp_path / "A", tmp_path / "B"
    reference = popen_clf(*train_args(dataset, uninterrupted, *FULL, *extra))  # meanwhile, on the other core
    for stop, steps in (("20", 20), ("50", 50)):  # 50: an epoch's last step
        result = run_clf(*train_args(dataset, paused, *FULL, *extra, f"train.stop_at_step={stop}"), check=True)
        assert result.returncode == 0
        record = metrics(paused)
        assert (record["status"], record["steps"], record["total_steps"]) == ("stopped", steps, 90)
        assert record["dev_f1"] is not None and record["best_step"] <= steps and "test_f1" not in record
        assert record["train_documents"] == 400  # aggregate: data.train_limit=null is all 400 documents
    again = run_clf(*train_args(dataset, paused, *FULL, *extra, "train.stop_at_step=50"), check=True)
    assert "stopped at step 50" in again.stderr and metrics(paused)["steps"] == 50  # run again: stays there
    run_clf(*train_args(dataset, paused, *FULL, *extra), check=True)
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    same_weights(uninterrupted, paused)
    a, b = metrics(uninterrupted), metrics(paused)
    assert b["status"] == "completed"
    for key in ("dev_f1", "test_f1", "best_step", "steps"):
        assert a[key] == b[key], key


# --------------------------------------------------------------------------- sweeps ---

@pytest.mark.timeout(1600)  # search 900 + runs 300 + reference run 300
@pytest.mark.slow
@pytest.mark.parametrize("how", [["cluster.runs_per_task=3"], ["cluster.workers=2"]], ids=["packed", "workers"])
def test_local_halving_sweep_9_3_1_and_the_winner_equals_an_uninterrupted_run(dataset, tmp_path, how):
    """Packed (3 runs per task) and through workers (each rung's runs are a queue two workers
    drain); unpacked local halving: the failed-run test below."""
    sweep = tmp_path / "s"
    result = run_clf("submit", f"sweep_dir={sweep}", *dataset.overrides, *TINY, *HALVING, *GRID9,
                     *how, *LOCAL_PARALLEL, check=True)
    assert "successive halving: rung 1 of 3 (10 / 30 / 90 steps, eta 3)" in result.stdout
    record = wait_for(lambda: search_ended(sweep), 900, "the search to end")
    final = wait_final(sweep, timeout=300)
    assert set(final.values()) == {"completed"} and len(final) == 9 + 3  # 9 runs, 3 decision jobs
    check_rungs(sweep, record, [9, 3, 1])
    winner = record["winner"]
    assert record["rungs"][2]["runs"] == [winner]
    # each run stopped at its last rung's budget, with its metrics there; the winner completed
    last_rung = {name: rung["budget"] for rung in record["rungs"] for name in rung["runs"]}
    for name, budget in last_rung.items():
        m = metrics(sweep / "runs" / name)
        assert (m["status"], m["steps"]) == (("completed", 90) if name == winner else ("stopped", budget)), name
    same_weights(reference_run(tmp_path, sweep, winner), sweep / "runs" / winner)
    status = run_clf("status", str(sweep), check=True).stdout
    assert "successive halving: eta 3, budgets 10 / 30 / 90 steps" in status
    assert "rung 1: 10 steps, 9 run(s) (9 reached the budget); kept " in status
    assert "rung 3: 90 steps, 1 run(s) (1 reached the budget)" in status and f"winner: {winner}" in status
    assert status.count("stopped at step 10 (its last rung's budget)") == 6
    assert status.count("stopped at step 30 (its last rung's budget)") == 2
    assert json.loads(run_clf("status", "--json", str(sweep), check=True).stdout)["halving"] == record
    run_clf("aggregate", str(sweep), "--out", str(tmp_path / "agg"), "--no-plots", check=True)
    report = (tmp_path / "agg.md").read_text()
    assert "9 runs: 1 completed, 8 stopped at a successive-halving budget, 0 not completed" in report
    assert "### Stopped at a budget (8)" in report
    import pandas as pd
    table = pd.read_csv(tmp_path / "agg.csv").set_index("run")
    for name, budget in last_rung.items():
        row = table.loc[f"s/runs/{name}"]
        assert row["budget"] == budget and row["state"] == ("completed" if name == winner else "stopped")
        assert pd.isna(row["test_f1"]) == (name != winner)


@pytest.mark.timeout(1600)  # search 900 + runs 300 + rerun 300
@pytest.mark.slow
def test_a_failed_run_does_not_stop_the_search_and_resubmit_failed_reruns_it_to_its_rung(tmp_path):
    data = make_dataset(tmp_path / "data")
    missing = tmp_path / "later" / "train.csv"
    sweep = tmp_path / "s"
    run_clf("submit", f"sweep_dir={sweep}", *data.overrides, *TINY, *HALVING, "seed=0,1,2",
            f"data.train={data.train},{missing}", *LOCAL_PARALLEL, check=True)
    record = wait_for(lambda: search_ended(sweep), 900, "the search to end")
    runs = [name for name in manifest_runs(sweep) if not name.startswith("halving-")]
    bad = sorted(runs_with(sweep, f"data.train={missing}"))
    assert len(runs) == 6 and len(bad) == 3
    first = record["rungs"][0]
    assert all(first["scores"][name] is None for name in bad)
    assert len(first["kept"]) == 2 and not set(first["kept"]) & set(bad)   # ceil(6/3) of the 3 that ran
    assert [len(rung["runs"]) for rung in record["rungs"]] == [6, 2, 1] and record["winner"]
    final = wait_final(sweep)
    assert {name for name, state in final.items() if state == "failed"} == set(bad)
    status = run_clf("status", str(sweep), check=True).stdout
    assert "rung 1: 10 steps, 6 run(s) (3 reached the budget, 3 failed or short of it); kept" in status
    missing.parent.mkdir()
    shutil.copy(data.train, missing)
    result = run_clf("resubmit", str(sweep), "--failed", check=True)
    assert "resubmitted 3 run(s)" in result.stdout
    final = wait_final(sweep)
    assert set(final.values()) == {"completed"}
    for name in bad:  # rerun to the budget of the rung it failed in, and stopped there
        m = metrics(sweep / "runs" / name)
        assert (m["status"], m["steps"]) == ("stopped", 10)
    assert halving_record(sweep) == record  # the decisions stand
    status = run_clf("status", str(sweep), check=True).stdout
    # at 10 steps: the one good run rung 1 dropped and the 3 resubmitted; at 30: the one rung 2 dropped
    assert status.count("stopped at step 10 (its last rung's budget)") == 1 + 3
    assert status.count("stopped at step 30 (its last rung's budget)") == 1
    assert f"winner: {record['winner']}" in status
