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
from helpers import TINY, clf_env, make_dataset

from clf.config.compose import compose
from clf.model import build_model
from clf.train.evaluate import eval_batches, evaluate
from clf.train.loop import prepare_data


@pytest.mark.parametrize("max_tokens", [None, 9])
def test_dev_batches_made_once_score_as_batches_made_each_time(tmp_path, max_tokens):
    data = make_dataset(tmp_path / "data", n_train=200, n_dev=150, n_test=20)
    cfg = compose([*data.overrides, *TINY, f"model.max_tokens={max_tokens or 'null'}", "train.eval_batch_tokens=300"])
    dataset, vectors = prepare_data(cfg)
    torch.manual_seed(3)
    model = build_model(cfg, dataset.vocab.size, vectors)
    dev = dataset["dev"]
    kwargs = dict(batch_tokens=cfg.train.eval_batch_tokens, max_tokens=max_tokens)
    batches = eval_batches(dev, model.pad_id, **kwargs)
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
