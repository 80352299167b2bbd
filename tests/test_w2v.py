"""``clf w2v``: real gensim on small generated text; output in the homework's format, loadable by
the classifier; the classifier's tokenizer and token cache; <UNK>; determinism; atomicity."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import HOMEWORK_TOKENS, make_rows, one_line_error, popen_clf, run_clf, write_csv

from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab
from clf.embeddings import CONTEXT, TARGET, load_word2vec
from clf.errors import ClfError
from clf.w2v.config import compose_w2v
from clf.w2v.output import FILES
from clf.w2v.stage import run

TOPIC_A = ["good", "great", "excellent", "wonderful", "superb", "lovely"]
TOPIC_B = ["bad", "awful", "terrible", "boring", "worst", "dreadful"]
FILLER = ["the", "a", "movie", "film", "and", "it", "was", "this", "plot", "very"]
RARE = ["zebra", "quokka", "axolotl"]                   # once each: under min_count


def topic_text(rng: random.Random) -> str:
    topic = TOPIC_A if rng.random() < 0.5 else TOPIC_B
    words = [rng.choice(topic if rng.random() < 0.6 else FILLER) for _ in range(rng.randint(6, 14))]
    return " ".join(words).capitalize() + rng.choice([".", "!", " ..."])


def topic_rows(n: int, seed: int, labels: bool = True) -> list[dict]:
    rng = random.Random(seed)
    rows = [{"inst_id": i, "text": topic_text(rng), "label": rng.randint(0, 1)} for i in range(n)]
    return rows if labels else [{"inst_id": r["inst_id"], "text": r["text"]} for r in rows]


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    """train (300 docs) + unlabeled (300) of two clear topics; dev and test carry words of their own."""
    root = tmp_path / "data"
    train_rows = topic_rows(300, 1)
    train_rows[0]["text"] += " " + " ".join(RARE) + " Straße naïve"
    train_rows[1]["text"] += " Straße naïve"
    dev = [dict(r, text=r["text"] + " devonlyword") for r in make_rows(60, 2)]
    test = [dict(r, text=r["text"] + " testonlyword") for r in make_rows(60, 3)]
    return {"train": write_csv(root / "train.csv", train_rows),
            "unlabeled": write_csv(root / "unlabeled.csv.gz", topic_rows(300, 4, labels=False)),
            "dev": write_csv(root / "dev.csv", dev), "test": write_csv(root / "test.csv", test)}


def data_args(data: dict[str, Path]) -> list[str]:
    """The data, tokenized as the homework does (the references below use Tokenizer(): case kept)."""
    return ["data=csv", *HOMEWORK_TOKENS] + [f"data.{name}={path}" for name, path in data.items()]


FAST = ["vector_size=16", "epochs=5", "min_count=2", "workers=1"]


def train_w2v(data, out: Path, *extra: str) -> Path:
    return run(compose_w2v([*data_args(data), f"out={out}", *FAST, *extra]))


def texts_of(path: Path) -> list[str]:
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)["text"].tolist()


def test_output_is_the_homework_format_and_loads(data, tmp_path):
    out = train_w2v(data, tmp_path / "vec")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    vocab, vectors = load_word2vec(out)
    state = torch.load(out / "word2vec.pt", weights_only=True)
    assert set(state) == {TARGET, CONTEXT}
    for key in (TARGET, CONTEXT):
        assert state[key].dtype == torch.float32 and tuple(state[key].shape) == (vocab.size, 16)
    assert torch.equal(vectors, state[TARGET]) and not torch.equal(state[TARGET], state[CONTEXT])
    w2i = json.loads((out / "word_to_index.txt").read_text())
    i2w = json.loads((out / "index_to_word.txt").read_text())
    assert len(w2i) == len(i2w) == vocab.size and all(i2w[str(i)] == w for w, i in w2i.items())
    # the vocabulary: train + unlabeled tokens seen >= min_count times (homework tokenizer), <UNK> last
    tokenize = Tokenizer()
    documents = [tokenize(t) for split in ("train", "unlabeled") for t in texts_of(data[split])]
    assert vocab.words == Vocab.build(documents, min_count=2).words and vocab.words[-1] == UNK
    assert {"Straße", "naïve", "good", "Good"} <= set(vocab.words)
    assert not {"devonlyword", "testonlyword", *RARE} & set(vocab.words)
    info = json.loads((out / "w2v.json").read_text())
    assert info["corpus"]["docs"] == 600 and info["corpus"]["tokens"] == sum(map(len, documents))
    assert info["corpus"]["tokens"] - info["corpus"]["tokens_in_vocabulary"] == sum(
        1 for doc in documents for t in doc if t not in vocab.index)
    assert info["vocabulary_size"] == vocab.size and info["config"]["vector_size"] == 16
    assert info["seconds"]["train"] > 0 and info["engine"]["workers"] == 1


def test_unk_rows_are_zero_and_every_other_row_trained(data, tmp_path):
    out = train_w2v(data, tmp_path / "vec")
    state = torch.load(out / "word2vec.pt", weights_only=True)
    vocab = Vocab.load(out)
    for key in (TARGET, CONTEXT):
        norms = state[key].norm(dim=1)
        assert norms[vocab.unk_id] == 0
        assert bool((norms[torch.arange(vocab.size) != vocab.unk_id] > 0).all())


def test_vectors_learn_which_words_go_together(data, tmp_path):
    out = train_w2v(data, tmp_path / "vec", "epochs=30", "vector_size=24")
    vocab, vectors = load_word2vec(out)
    unit = torch.nn.functional.normalize(vectors, dim=1)
    a, b = (unit[[vocab.index[w] for w in words]] for words in (TOPIC_A, TOPIC_B))
    within = ((a @ a.T).sum() - len(TOPIC_A) + (b @ b.T).sum() - len(TOPIC_B)) / (2 * 30)
    across = (a @ b.T).mean()
    assert within > across + 0.2, (float(within), float(across))
    report = (out / "neighbours.txt").read_text()
    good_line = next(line for line in report.splitlines() if line.startswith("good:"))
    assert sum(w in good_line for w in TOPIC_A) > sum(w in good_line.split(": ", 1)[1] for w in TOPIC_B)
    assert "actor: (not in the vocabulary)" in report


def test_classifier_uses_the_output_and_the_same_token_cache(data, tmp_path, cache_dir):
    out = train_w2v(data, tmp_path / "vec")
    tokens = cache_dir / "tokens"
    train_entries = sorted(p.name for p in tokens.glob("train-*"))
    assert len(train_entries) == 1 and len(list(tokens.glob("unlabeled-*"))) == 1
    assert not list(tokens.glob("dev-*")) and not list(tokens.glob("test-*"))
    run_dir = tmp_path / "run"
    result = run_clf("train", *data_args({k: v for k, v in data.items() if k != "unlabeled"}),
                     "embeddings=word2vec", f"embeddings.dir={out}", "embeddings.freeze=true", "model.num_heads=2",
                     "train.epochs=1", "train.batch_size=32", "train.progress=none", "device=cpu",
                     "train.num_threads=1", f"run_dir={run_dir}")
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["test_f1"] is not None
    assert sorted(p.name for p in tokens.glob("train-*")) == train_entries   # reused, not re-tokenized


def test_deterministic_runs_repeat_bit_for_bit(data, tmp_path):
    common = [*data_args(data), *FAST[:-1], "deterministic=true", "workers=2"]
    outs = []
    for i, hash_seed in enumerate(("1", "2")):
        out = tmp_path / f"vec{i}"
        result = run_clf("w2v", *common, f"out={out}", env={"PYTHONHASHSEED": hash_seed})
        assert result.returncode == 0, result.stderr
        outs.append(torch.load(out / "word2vec.pt", weights_only=True))
    assert json.loads((tmp_path / "vec0" / "w2v.json").read_text())["engine"]["workers"] == 1
    for key in (TARGET, CONTEXT):
        assert torch.equal(outs[0][key], outs[1][key])
    other = train_w2v(data, tmp_path / "other", "deterministic=true", "seed=2")
    assert not torch.equal(torch.load(other / "word2vec.pt", weights_only=True)[TARGET], outs[0][TARGET])


def test_complete_output_of_same_config_is_kept_and_changes_retrain(data, tmp_path):
    out = train_w2v(data, tmp_path / "vec", "deterministic=true")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    train_w2v(data, out, "deterministic=true", "probes=[good]")          # probes do not change vectors
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    train_w2v(data, out, "deterministic=true", "epochs=2")
    assert json.loads((out / "w2v.json").read_text())["config"]["epochs"] == 2
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".vec")]


def test_out_that_is_not_ours_is_never_replaced(data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(ClfError, match="not a clf w2v output"):
        train_w2v(data, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("override,message", [
    ("nosuch=1", "Key 'nosuch' not in 'W2VConfig'"),
    ("+nosuch=1", "Key 'nosuch' not in 'W2VConfig'"),
    ("window=abc", "could not be converted to Integer"),
    ("vector_size=0", "vector_size=0 must be positive"),
    ("sample=-1", "sample=-1.0 must not be negative"),
    ("splits=[train,dev]", "dev and test text is never used"),
])
def test_bad_config_is_one_line_exit_2_nothing_written(data, tmp_path, override, message):
    result = run_clf("w2v", *data_args(data), f"out={tmp_path / 'vec'}", override)
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("clf w2v: error: ") and message in line
    assert not (tmp_path / "vec").exists()


def test_missing_out_and_missing_data_are_one_line_errors(data, tmp_path):
    assert "needs out=DIR" in one_line_error(run_clf("w2v", *data_args(data)))
    result = run_clf("w2v", "data=csv", f"data.train={tmp_path / 'nope.csv'}", f"out={tmp_path / 'vec'}")
    assert result.returncode == 2 and "nope.csv: no such file" in one_line_error(result)
    assert not (tmp_path / "vec").exists()


def wait_for_epoch(process) -> None:
    """Read the job's log until the first epoch is done (the job is then mid-way)."""
    for line in process.stderr:
        if "epoch 1/" in line:
            return
    raise AssertionError(f"the job ended before its first epoch (exit {process.wait()})")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_job_leaves_old_or_nothing_and_rerun_finishes(data, tmp_path, sig):
    out, scratch = tmp_path / "vec", tmp_path / "scratch"
    scratch.mkdir()
    args = ["w2v", *data_args(data), f"out={out}", *FAST, "epochs=2000"]
    process = popen_clf(*args, env={"TMPDIR": str(scratch)})
    wait_for_epoch(process)
    process.send_signal(sig)
    code = process.wait(timeout=60)
    process.stderr.close()
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".vec")]
    if sig == signal.SIGTERM:
        assert code == 130 and list(scratch.iterdir()) == []       # the corpus file is removed too
    else:
        assert code == -signal.SIGKILL
    short = [a for a in args if not a.startswith("epochs=")] + ["epochs=3"]
    result = run_clf(*short)
    assert result.returncode == 0, result.stderr
    assert load_word2vec(out)[1].shape[1] == 16


def test_killed_job_keeps_the_previous_output(data, tmp_path):
    out = train_w2v(data, tmp_path / "vec", "epochs=1")
    process = popen_clf("w2v", *data_args(data), f"out={out}", *FAST, "epochs=2000", env={"TMPDIR": str(tmp_path)})
    wait_for_epoch(process)
    process.kill()
    process.wait(timeout=60)
    process.stderr.close()
    assert json.loads((out / "w2v.json").read_text())["config"]["epochs"] == 1
    load_word2vec(out)


def test_sentences_are_the_documents_without_unk_cut_at_gensims_limit(monkeypatch):
    from clf.data.cache import TokenizedSplit
    from clf.w2v import sentences

    vocab = Vocab.from_words(["the", "Straße", "東京", "a", UNK])
    docs = [[0, 4, 1, 2], [4, 4], [], [3], [0, 0, 1, 4, 3, 3, 2, 0]]
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    split = TokenizedSplit("train", np.array(sum(docs, []), dtype=np.int32), offsets, None, np.arange(len(docs)))
    expected = [[vocab.words[i] for i in d if i != vocab.unk_id] for d in docs]
    expected = [d for d in expected if d]
    assert sentences.sentences([split, split], vocab) == expected * 2
    monkeypatch.setattr(sentences, "MAX_WORDS", 3)
    assert sentences.sentences([split], vocab) == [["the", "Straße", "東京"], ["a"], ["the", "the", "Straße"],
                                                   ["a", "a", "東京"], ["the"]]
