"""What a run skips to cut its overhead (issue 11, part 1) changes none of its results: dev,
prepared once per run, scores as batches collated at each evaluation do (exactly, or from word
bags up to float32 rounding), and a training process never imports torch._dynamo
(clf.compat.torch.eager_optimizer_methods)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY, clf_env, make_dataset, one_line_error, run_clf

from clf.config.compose import compose
from clf.model import build_model
from clf.train.evaluate import PreparedSplit, evaluate
from clf.train.loop import prepare_data


def prepared_dev(tmp_path, max_tokens: int | None, *model_overrides: str):
    data = make_dataset(tmp_path / "data", n_train=200, n_dev=150, n_test=20)
    cfg = compose([*data.overrides, *TINY, f"model.max_tokens={max_tokens or 'null'}", "train.eval_batch_tokens=300",
                   *model_overrides])
    dataset, vectors = prepare_data(cfg)
    torch.manual_seed(3)
    model = build_model(cfg, dataset.vocab.size, vectors)
    dev = dataset["dev"]
    kwargs = dict(batch_tokens=cfg.train.eval_batch_tokens, max_tokens=max_tokens)
    return model, dev, kwargs, PreparedSplit(dev, model.pad_id, **kwargs)


@pytest.mark.parametrize("max_tokens", [None, 9])
def test_dev_batches_made_once_score_as_batches_made_each_time(tmp_path, max_tokens):
    """A model that cannot score word bags (here: a hidden layer) scores a run's dev, prepared
    once (``_Run.dev``), from batches with their distinct ids found: exactly as from batches
    collated at each evaluation."""
    model, dev, kwargs, prepared = prepared_dev(tmp_path, max_tokens, "model.hidden_layers=1")
    assert not model.scores_word_bags
    assert len(prepared.batches) > 3 and all(b.distinct is not None for b in prepared.batches)
    assert sorted(np.concatenate([b.docs for b in prepared.batches]).tolist()) == list(range(len(dev)))
    fresh_probs, fresh = evaluate(model, dev, **kwargs)
    for _ in range(2):  # prepared once, used at each evaluation
        probs, scores = evaluate(model, dev, prepared=prepared, **kwargs)
        assert np.array_equal(probs, fresh_probs) and scores == fresh
    assert model.training  # evaluation puts the model back in training mode
    assert "bags" not in vars(prepared)  # never made for a model that cannot use them


@pytest.mark.parametrize("max_tokens", [None, 9])
def test_dev_as_word_bags_scores_as_batches_do(tmp_path, max_tokens):
    """The default model scores a run's dev from word bags: the probabilities of batches up to
    float32 rounding, the same predictions and metrics, and no batches made."""
    model, dev, kwargs, prepared = prepared_dev(tmp_path, max_tokens)
    assert model.scores_word_bags
    fresh_probs, fresh = evaluate(model, dev, **kwargs)
    probs, scores = evaluate(model, dev, prepared=prepared, **kwargs)
    np.testing.assert_allclose(probs, fresh_probs, rtol=0, atol=1e-6)
    assert np.array_equal(probs >= 0.5, fresh_probs >= 0.5) and scores == fresh
    assert sorted(prepared.bags.docs.tolist()) == list(range(len(dev)))
    assert "batches" not in vars(prepared)


def test_dev_is_scored_token_by_token_when_a_word_bag_is_not_trusted(tmp_path):
    """A word whose scores are 200 above every other makes the bags of documents without it
    untrusted (``bag_logits``: NaN): dev is then scored from its batches, exactly as usual."""
    model, dev, kwargs, prepared = prepared_dev(tmp_path, None)
    top = int(prepared.bags.rows[0])
    with torch.no_grad():
        model.embeddings.weight[top] = torch.linalg.pinv(model.heads.T) @ torch.full((model.num_heads,), 200.0)
        assert model.bag_logits(prepared.bags).isnan().any()
    fresh_probs, fresh = evaluate(model, dev, **kwargs)
    probs, scores = evaluate(model, dev, prepared=prepared, **kwargs)
    assert np.array_equal(probs, fresh_probs) and scores == fresh
    assert "batches" in vars(prepared)


RUN_AND_REPORT_IMPORTS = """
import json, sys
from pathlib import Path
from clf.config.compose import compose
from clf.train.loop import train
run_dir = Path(sys.argv[1])
result = train(compose(sys.argv[2:] + [f"run_dir={run_dir}"]), run_dir)
print(json.dumps({"status": result.status, "dynamo": "torch._dynamo" in sys.modules}))
"""


@pytest.mark.timeout(700)  # the run 600
def test_a_training_run_never_imports_dynamo(tmp_path):
    """torch._dynamo costs as long to import as torch; a run (with checkpoints, resume state,
    evaluations, predictions and retention) has no use for it."""
    data = make_dataset(tmp_path / "data")
    overrides = [*data.overrides, *TINY, "train.keep_checkpoints=best"]
    out = subprocess.run([sys.executable, "-c", RUN_AND_REPORT_IMPORTS, str(tmp_path / "run"), *overrides],
                         capture_output=True, text=True, env=clf_env(), timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"status": "completed", "dynamo": False}


EXIT_PROBE = """
import atexit, sys, threading
from pathlib import Path
from clf import cli
marker = Path(sys.argv[1])
atexit.register(marker.write_text, "interpreter exited the usual way")
if sys.argv[2] == "with-thread":  # a non-daemon thread that finishes its work after clf decided how to exit
    decided, check = threading.Event(), cli.nothing_else_running
    def checked():
        try:
            return check()
        finally:
            decided.set()
    cli.nothing_else_running = checked
    def work():
        decided.wait()
        (marker.parent / "thread-done").write_text("yes")
    threading.Thread(target=work).start()
sys.argv = ["clf", "train", "--cfg", "model.num_heads=3"]
cli.run()
"""


@pytest.mark.parametrize("other_thread", [False, True])
def test_the_command_exits_at_once_only_when_nothing_else_runs(tmp_path, other_thread):
    """``clf`` skips the interpreter's teardown (about 0.6 s with torch loaded) after its work,
    yet its piped output is complete and its exit status kept; a live non-daemon thread makes it
    exit the usual way, which waits for that thread."""
    marker = tmp_path / "atexit"
    out = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(marker), "with-thread" if other_thread else "alone"],
                         capture_output=True, text=True, env=clf_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)  # the whole composed config came through the pipe
    assert printed["model"]["num_heads"] == 3 and "train" in printed and "optim" in printed
    assert marker.exists() == other_thread
    assert (tmp_path / "thread-done").exists() == other_thread


def test_the_exit_status_survives_the_quick_exit(tmp_path):
    bad = run_clf("train", "model.num_heads=zero", f"run_dir={tmp_path / 'run'}")
    assert bad.returncode == 2 and "model.num_heads" in one_line_error(bad)
    assert not (tmp_path / "run").exists()

