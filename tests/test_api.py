"""clf.api on a tiny model trained here: loading, predict, attention."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clf.api import load_run
from clf.errors import ClfError
from clf.metrics import binary_metrics


@pytest.fixture(scope="module")
def run(tiny_run):
    return load_run(tiny_run)


def dev_frame(run) -> pd.DataFrame:
    return pd.read_csv(run.config.data.dev)


def test_predict_reproduces_the_runs_dev_predictions_and_f1(run, tiny_run):
    dev = dev_frame(run)
    probs = run.predict(dev["text"].tolist())
    assert probs.dtype == np.float32 and probs.shape == (len(dev),)
    saved = pd.read_csv(tiny_run / "predictions" / "dev.csv")
    assert saved["inst_id"].tolist() == dev["inst_id"].tolist()
    assert ((probs >= 0.5).astype(int) == saved["predicted_label"].to_numpy()).all()
    assert binary_metrics(dev["label"].to_numpy(), probs >= 0.5)["f1"] == pytest.approx(run.metrics["dev_f1"])
    assert run.dev_f1 == pytest.approx(run.metrics["dev_f1"]) and run.step == run.metrics["best_step"]


def test_the_model_learned_the_signal(run):
    probs = run.predict(["the movie was great and wonderful", "the movie was awful and boring"])
    assert probs[0] > 0.5 > probs[1]


def test_attention_of_one_text(run):
    text = "This movie, it was GREAT... and the plot? awful_ness"
    tokens, weights, probability = run.attention(text)
    assert tokens == ["This", "movie", "it", "was", "GREAT", "and", "the", "plot", "awful_ness"]
    assert weights.shape == (len(tokens), run.num_heads)
    assert weights.sum(axis=0) == pytest.approx(np.ones(run.num_heads), abs=1e-5)
    assert (weights >= 0).all()
    assert probability == pytest.approx(float(run.predict(text)[0]), abs=1e-6)


def test_attention_is_the_homework_computation(run):
    """softmax over tokens of (embedding . head), and sigmoid(w . concat of weighted averages + b)."""
    text = "really good story and the actors loved it"
    tokens, weights, probability = run.attention(text)
    state = run.model.state_dict()
    ids = torch.tensor([run.vocab.index.get(t, run.vocab.unk_id) for t in tokens])
    vectors = state["embeddings.weight"][ids]                       # [T, D]
    attention = torch.softmax(vectors @ state["heads"], dim=0)        # [T, H]
    summary = (attention.T @ vectors).flatten()                       # [H * D]
    logit = summary @ state["output.weight"][0] + state["output.bias"][0]
    assert weights == pytest.approx(attention.numpy(), abs=1e-5)
    assert probability == pytest.approx(torch.sigmoid(logit).item(), abs=1e-5)


def test_batches_over_a_split_match_single_texts(run):
    dev = dev_frame(run)
    split = run.split("dev")
    assert split.inst_ids.tolist() == dev["inst_id"].tolist()
    seen = np.zeros(len(split), dtype=bool)
    for batch in run.batches(split, batch_tokens=64):  # small batches: many, padded
        for row, doc in enumerate(batch.docs):
            tokens, weights, probability = run.attention(dev["text"][doc])
            assert batch.mask[row].sum() == len(tokens)
            assert batch.probabilities[row] == pytest.approx(probability, abs=1e-5)
            assert batch.attention[row, : len(tokens)] == pytest.approx(weights, abs=1e-5)
            assert not batch.attention[row, len(tokens):].any()
            seen[doc] = True
    assert seen.all()


def test_text_without_tokens(run):
    tokens, weights, probability = run.attention("?! ...")
    assert tokens == [] and weights.shape == (0, run.num_heads)
    assert probability == pytest.approx(torch.sigmoid(run.model.output.bias).item(), abs=1e-6)


def test_last_checkpoint_and_embedding_size_from_the_weights(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    config = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(config.replace("dim: 16", "dim: 300"))  # as a word2vec run's config
    last = load_run(copy, checkpoint="last")
    assert last.model.dim == 16
    assert last.step is None  # last.pt keeps its step inside the training state
    assert last.predict(["good"]).shape == (1,)


def test_refuses_pickled_objects_and_bad_dirs(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    torch.save({"format": 1, "model": {"x": Path("not a tensor")}}, copy / "checkpoints" / "best.pt")
    with pytest.raises(ClfError, match="cannot load the model"):
        load_run(copy)
    with pytest.raises(ClfError, match="no such run directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(ClfError, match="no config.yaml"):
        load_run(tmp_path)
    (copy / "checkpoints" / "best.pt").unlink()
    with pytest.raises(ClfError, match="no such file"):
        load_run(copy)
