"""What a run skips to cut its overhead (issue 11, part 1) changes none of its results: the dev
batches collated once score exactly as batches collated at each evaluation, and a training
process never imports torch._dynamo (clf.compat.torch.eager_optimizer_methods)."""

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
from clf.train.evaluate import eval_batches, evaluate
from clf.train.loop import prepare_data


@pytest.mark.parametrize("max_tokens,distinct", [(None, False), (9, False), (None, True), (9, True)])
def test_dev_batches_made_once_score_as_batches_made_each_time(tmp_path, max_tokens, distinct):
    """A run's dev batches (``distinct``: with their distinct ids found, as ``_Run.dev_batches``
    makes them) score exactly as batches collated at each evaluation."""
    data = make_dataset(tmp_path / "data", n_train=200, n_dev=150, n_test=20)
    cfg = compose([*data.overrides, *TINY, f"model.max_tokens={max_tokens or 'null'}", "train.eval_batch_tokens=300"])
    dataset, vectors = prepare_data(cfg)
    torch.manual_seed(3)
    model = build_model(cfg, dataset.vocab.size, vectors)
    dev = dataset["dev"]
    kwargs = dict(batch_tokens=cfg.train.eval_batch_tokens, max_tokens=max_tokens)
    batches = eval_batches(dev, model.pad_id, distinct=distinct, **kwargs)
    assert all((b.distinct is not None) is distinct for b in batches)
    assert len(batches) > 3  # several batches, so their order and placement matter
    assert sorted(np.concatenate([b.docs for b in batches]).tolist()) == list(range(len(dev)))
    fresh_probs, fresh = evaluate(model, dev, **kwargs)
    for _ in range(2):  # the same batches used twice, as a run does at each evaluation
        probs, scores = evaluate(model, dev, batches=batches, **kwargs)
        assert np.array_equal(probs, fresh_probs) and scores == fresh
    assert model.training  # evaluation puts the model back in training mode


RUN_AND_REPORT_IMPORTS = """
import json, sys
from pathlib import Path
from clf.config.compose import compose
from clf.train.loop import train
run_dir = Path(sys.argv[1])
result = train(compose(sys.argv[2:] + [f"run_dir={run_dir}"]), run_dir)
print(json.dumps({"status": result.status, "dynamo": "torch._dynamo" in sys.modules}))
"""


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
if sys.argv[2] == "with-thread":  # a non-daemon thread that finishes its work after main returns
    started = threading.Event()
    def work():
        started.set()
        threading.Event().wait(1.0)
        (marker.parent / "thread-done").write_text("yes")
    threading.Thread(target=work).start()
    started.wait()
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

