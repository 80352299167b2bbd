"""Shared fixtures: small learnable CSV datasets, an isolated token cache, and helpers that run
``clf`` as a subprocess or compose configs in-process.

Everything here is generic on purpose, so tests of other subcommands (w2v, aggregate, explain,
api, slurm) can use it too:

* ``cache_dir`` (autouse): ``$CLF_CACHE_DIR`` points at a fresh temp dir for every test, so no
  test reads or writes ``~/.cache/clf`` and subprocesses inherit the same cache.
* ``make_dataset(directory, ...)``: writes train/dev/test CSVs (``inst_id,text,label``) of a
  clearly learnable sentiment task and returns their paths; ``dataset`` is one such set.
* ``run_clf(*args)``: ``python -m clf ARGS`` in a subprocess; returns CompletedProcess.
* ``train_args(dataset, run_dir, *extra)``: the overrides of a tiny, fast ``clf train`` run.
* ``compose_cfg(*overrides)``: the composed, validated config (in-process).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

POSITIVE_WORDS = ["good", "great", "excellent", "love", "wonderful", "best", "happy", "superb"]
NEGATIVE_WORDS = ["bad", "awful", "terrible", "hate", "poor", "worst", "sad", "boring"]
NEUTRAL_WORDS = [f"w{i}" for i in range(60)] + ["the", "a", "movie", "film", "plot", "and", "it", "was"]
PUNCTUATION = [".", ",", "!", "?", "...", " -", ";"]


@dataclass
class DatasetPaths:
    """Paths of a generated dataset, and the ``data=csv`` overrides that name them."""

    directory: Path
    train: Path
    dev: Path
    test: Path

    @property
    def overrides(self) -> list[str]:
        return ["data=csv", f"data.train={self.train}", f"data.dev={self.dev}", f"data.test={self.test}"]


def make_document(rng: random.Random, label: int, min_words: int = 4, max_words: int = 14) -> str:
    """Neutral filler plus 1-3 sentiment words of the label's class (perfectly learnable)."""
    cue = POSITIVE_WORDS if label == 1 else NEGATIVE_WORDS
    words = [rng.choice(NEUTRAL_WORDS) for _ in range(rng.randint(min_words, max_words))]
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(cue))
    text = ""
    for word in words:
        text += (" " if text else "") + word
        if rng.random() < 0.15:
            text += rng.choice(PUNCTUATION)
    return text[0].upper() + text[1:]


def make_rows(n: int, seed: int, first_id: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.randint(0, 1)
        rows.append({"inst_id": first_id + i, "text": make_document(rng, label), "label": label})
    return rows


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None,
              rename: dict[str, str] | None = None) -> Path:
    """Write ``rows`` as CSV (gzipped when ``path`` ends in .gz); ``rename`` maps column names."""
    columns = columns or list(rows[0].keys())
    rename = rename or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([rename.get(c, c) for c in columns])
    for row in rows:
        writer.writerow([row[c] for c in columns])
    data = buffer.getvalue().encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def make_dataset(directory: Path, n_train: int = 400, n_dev: int = 120, n_test: int = 120, seed: int = 0,
                 gz: bool = False, test_labels: bool = True, rename: dict[str, str] | None = None) -> DatasetPaths:
    """Write ``sentiment.{train,dev,test}.csv[.gz]`` in the homework's layout under ``directory``."""
    directory = Path(directory)
    suffix = ".csv.gz" if gz else ".csv"
    train = write_csv(directory / f"sentiment.train{suffix}", make_rows(n_train, seed), rename=rename)
    dev = write_csv(directory / f"sentiment.dev{suffix}", make_rows(n_dev, seed + 1, first_id=100_000), rename=rename)
    test_columns = ["inst_id", "text", "label"] if test_labels else ["inst_id", "text"]
    test = write_csv(directory / f"sentiment.test{suffix}", make_rows(n_test, seed + 2, first_id=200_000),
                     columns=test_columns, rename=rename)
    return DatasetPaths(directory, train, dev, test)


# overrides of a tiny, fast, deterministic run (append more to change any of them)
TINY = ["embeddings.dim=12", "model.num_heads=2", "optim.lr=0.03", "train.batch_size=16", "train.epochs=2",
        "train.log_every=5", "train.eval_every=10", "train.checkpoint_every=10", "train.num_threads=1",
        "train.progress=none", "device=cpu", "data.min_count=1", "optim.schedule=none",
        "optim.warmup_steps=0",
        "train.keep_checkpoints=all"]  # tests compare final weights and optimizer states of last.pt


def train_args(dataset: DatasetPaths, run_dir: Path, *extra: str) -> list[str]:
    return ["train", *dataset.overrides, *TINY, f"run_dir={run_dir}", *extra]


def clf_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env.setdefault("PYTHONHASHSEED", "0")
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_clf(*args: str, timeout: float = 300, cwd: Path | None = None, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m clf ARGS`` with this test's environment ($CLF_CACHE_DIR included) plus ``env``."""
    result = subprocess.run([sys.executable, "-m", "clf", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=cwd, env=clf_env(**(env or {})))
    if check and result.returncode != 0:
        raise AssertionError(f"clf {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result


def popen_clf(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) -> subprocess.Popen:
    """``python -m clf ARGS`` started in the background (stderr piped, for error messages)."""
    return subprocess.Popen([sys.executable, "-m", "clf", *map(str, args)], stdout=stdout, stderr=stderr,
                            text=True, cwd=cwd, env=clf_env(**(env or {})))


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory):
    """$CLF_CACHE_DIR for module- and session-scoped fixtures (tests get their own below)."""
    old = os.environ.get("CLF_CACHE_DIR")
    os.environ["CLF_CACHE_DIR"] = str(tmp_path_factory.mktemp("clf-session-cache"))
    yield
    if old is None:
        os.environ.pop("CLF_CACHE_DIR", None)
    else:
        os.environ["CLF_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """A fresh token cache for each test, inherited by subprocesses through $CLF_CACHE_DIR."""
    path = tmp_path_factory.mktemp("clf-cache")
    monkeypatch.setenv("CLF_CACHE_DIR", str(path))
    return path


@pytest.fixture
def dataset(tmp_path) -> DatasetPaths:
    """A small learnable dataset (400 train, 120 dev, 120 test documents) in tmp_path/data."""
    return make_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run trained once per session by clf's own loop on learnable data (4 heads)."""
    from clf.config.compose import compose
    from clf.train.loop import train

    base = tmp_path_factory.mktemp("tiny")
    run_dir = base / "tiny-run"
    data = make_dataset(base / "tiny-data", n_train=240, n_dev=60, n_test=60, seed=630)
    cfg = compose([*data.overrides, *TINY, "model.num_heads=4", "embeddings.dim=16", "train.epochs=4",
                   f"data.cache_dir={base / 'tiny-cache'}", f"run_dir={run_dir}", "seed=1"])
    assert train(cfg, run_dir).status == "completed"
    return run_dir


@pytest.fixture
def compose_cfg():
    """``compose_cfg(*overrides)`` -> validated config (conf/ of this checkout)."""
    from clf.config.compose import compose

    return lambda *overrides: compose(list(overrides))


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single non-empty stderr line of a failed run (asserts there is exactly one)."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    return lines[0]
