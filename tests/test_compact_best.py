"""best.pt for inference (``train.best_precision``): the embedding table in half precision by
default, predictions within ``PROBABILITY_BOUND`` of the full-precision model's, and clf explain,
clf.api and a resumed run working on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY, make_dataset, one_line_error, run_clf

from clf.api import load_run
from clf.config.compose import compose
from clf.metrics import binary_metrics
from clf.train import checkpoint
from clf.train.compact import EMBEDDINGS, PROBABILITY_BOUND, inference_weights
from clf.train.loop import train

# the shipped tokens (lowercased words and bigrams), a table with bigram rows
SHIPPED_TOKENS = ["data.tokenizer.lowercase=true", "data.tokenizer.ngrams=2", "data.bigram_min_count=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    """The same training twice, best.pt in fp16 and in fp32 (nothing else differs)."""
    base = tmp_path_factory.mktemp("compact")
    data = make_dataset(base / "data", n_train=400, n_dev=150, n_test=300, seed=21)
    out = {}
    for precision in ("fp16", "fp32"):
        run_dir = base / precision
        cfg = compose([*data.overrides, *TINY, *SHIPPED_TOKENS, "train.epochs=3", "embeddings.dim=16",
                       f"data.cache_dir={base / 'cache'}", f"run_dir={run_dir}", f"train.best_precision={precision}"])
        assert train(cfg, run_dir).status == "completed"
        out[precision] = run_dir
    return out


def probabilities(run_dir, split: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions" / f"{split}.proba.csv")


def test_fp16_best_holds_the_fp32_table_rounded_and_the_rest_as_trained(runs):
    half = checkpoint.read(runs["fp16"] / "checkpoints" / "best.pt")
    full = checkpoint.read(runs["fp32"] / "checkpoints" / "best.pt")
    assert half["step"] == full["step"]
    assert half["model"][EMBEDDINGS].dtype == torch.float16 and full["model"][EMBEDDINGS].dtype == torch.float32
    assert torch.equal(half["model"][EMBEDDINGS], full["model"][EMBEDDINGS].half())
    for key in full["model"].keys() - {EMBEDDINGS}:
        assert torch.equal(half["model"][key], full["model"][key]), key
    sizes = {p: (runs[p] / "checkpoints" / "best.pt").stat().st_size for p in runs}
    assert sizes["fp16"] < 0.6 * sizes["fp32"]


def test_last_pt_keeps_full_precision_for_resuming(runs):
    last = checkpoint.read(runs["fp16"] / "checkpoints" / "last.pt")   # TINY keeps every checkpoint
    assert last["model"][EMBEDDINGS].dtype == torch.float32 and "optimizer" in last


@pytest.mark.parametrize("split", ["dev", "test"])
def test_predictions_within_the_bound_of_full_precision(runs, split):
    half, full = probabilities(runs["fp16"], split), probabilities(runs["fp32"], split)
    assert half["inst_id"].tolist() == full["inst_id"].tolist()
    gap = np.abs(half["probability"].to_numpy() - full["probability"].to_numpy())
    assert gap.max() <= PROBABILITY_BOUND
    assert gap.max() > 0   # the rounding is real: the two runs' outputs do differ
    flipped = (half["probability"] >= 0.5).to_numpy() != (full["probability"] >= 0.5).to_numpy()
    assert (np.abs(full["probability"].to_numpy()[flipped] - 0.5) <= PROBABILITY_BOUND).all()
    labels = pd.read_csv(runs["fp32"].parent / "data" / f"sentiment.{split}.csv")["label"].to_numpy()
    f1 = [binary_metrics(labels, p["probability"].to_numpy() >= 0.5)["f1"] for p in (half, full)]
    assert abs(f1[0] - f1[1]) <= 2 * flipped.sum() / len(labels) + 1e-12


def test_api_and_explain_read_the_fp16_best(runs, tmp_path):
    run = load_run(runs["fp16"])
    assert run.model.embeddings.weight.dtype == torch.float32   # cast back: computes in float32
    test = pd.read_csv(runs["fp16"].parent / "data" / "sentiment.test.csv")
    saved = probabilities(runs["fp16"], "test")["probability"].to_numpy()
    assert np.abs(run.predict(test["text"].tolist()) - saved).max() <= 1e-6   # the run's own outputs
    text = next(t for t in test["text"] if any(" " in token for token in run.tokenize(t)))   # with bigrams
    tokens, weights, probability = run.attention(text)
    assert weights.shape == (len(tokens), run.num_heads) and probability == pytest.approx(run.predict(text)[0])
    result = run_clf("explain", runs["fp16"], text, "--out", tmp_path / "a.png", check=True)
    assert result.stdout.startswith("label ") and (tmp_path / "a.png").stat().st_size > 0


def test_overflowing_table_stays_full_precision():
    state = {EMBEDDINGS: torch.tensor([[1.0, 7e4]]), "heads": torch.ones(2, 1)}
    kept = inference_weights(state, "fp16")
    assert kept[EMBEDDINGS].dtype == torch.float32 and torch.equal(kept[EMBEDDINGS], state[EMBEDDINGS])
    assert inference_weights({**state, EMBEDDINGS: torch.ones(1, 2)}, "fp16")[EMBEDDINGS].dtype == torch.float16


def test_bad_precision_is_one_line(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=20, n_dev=10, n_test=10)
    result = run_clf("train", *data.overrides, *TINY, f"run_dir={tmp_path / 'r'}", "train.best_precision=fp8")
    assert result.returncode == 2
    assert "train.best_precision='fp8' is not one of fp16, fp32" in one_line_error(result)
    assert not (tmp_path / "r").exists()
