"""Helpers shared by the test modules (plain functions and constants; fixtures live in conftest.py).

* ``make_dataset(directory, ...)``: writes train/dev/test CSVs (``inst_id,text,label``) of a
  clearly learnable sentiment task and returns their paths.
* ``run_clf(*args)`` / ``popen_clf(*args)``: ``python -m clf ARGS`` in a subprocess.
* ``train_args(dataset, run_dir, *extra)``: the overrides of a tiny, fast ``clf train`` run (``TINY``).
* ``one_line_error(result)``: the single stderr line of a failed command.
* successive halving: ``FULL``, ``HALVING``, ``GRID9``, ``check_rungs``, ``reference_run``, ``search_ended``;
  ``slurm_answers`` (a usable Slurm cluster); ``counting_path``, ``logged_calls`` (Slurm's commands
  wrapped on PATH, each call logged).
* waiting and comparing: ``wait_for``, ``wait_final``, ``states``, ``wait_for_checkpoint``,
  ``checkpoint_step``, ``communicate_all``, ``same_weights``, ``assert_weights_close``,
  ``attempt_times``; torchrun: ``torchrun``, ``finish``.
* ``command_log``: wrappers on PATH that record each call of some commands (sbatch, squeue, ...).
* data for other stages: ``write_homework_word2vec``, ``corpus_words``, ``make_vocab``,
  ``make_corpus``; aggregate's synthetic sweep: ``HEADS``, ``LRS``, ``SEEDS``, ``dev_f1_of``, ``curve_of``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import shlex
import shutil
import socket
import string
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch
from torch import nn

from clf.data.tokenizer import Tokenizer
from clf.data.vocab import UNK, Vocab
from clf.results.events import read_scalars
from clf.slurm.status import load_status
from clf.train import checkpoint


REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, what: str, every: float = 0.5):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds. A
    fixed interval: several waits catch a state that lasts a second or two (a run past step N)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def states(sweep: Path) -> dict[str, str]:
    return {run.name: run.state for run in load_status(sweep).runs}


def wait_final(sweep: Path, timeout: float = 300) -> dict[str, str]:
    """The states of a sweep's runs once every one has ended."""
    def ended() -> dict[str, str] | None:
        now = states(sweep)
        return now if all(v in ("completed", "failed", "cancelled") for v in now.values()) else None

    return wait_for(ended, timeout, f"every run of {sweep} to end")


def checkpoint_step(path: Path) -> int:
    """The step of the checkpoint ``path`` (it must be there and readable)."""
    return checkpoint.read(path)["state"]["step"]


def wait_for_checkpoint(process: subprocess.Popen, run_dir: Path, min_step: int, timeout: float = 300,
                        every: float = 0.01) -> int:
    """The step of ``run_dir``'s checkpoints/last.pt once it holds ``min_step`` or more, while
    ``process`` still runs. Before the first checkpoint there is no file; once there, last.pt is
    always whole (written to a temp file and renamed), so any other read error is a real one."""
    path = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + timeout
    seen = None  # the (inode, mtime, size) of the last.pt read last: each checkpoint is a new file
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, stderr = process.communicate(timeout=60)
            raise AssertionError(f"the run exited ({process.returncode}) before a checkpoint of step {min_step}:\n"
                                 f"{stderr}")
        try:
            stat = path.stat()
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            step = None
            if identity != seen:  # a new checkpoint: read its step (a stat costs far less than a load)
                step, seen = torch.load(path, map_location="cpu", weights_only=True)["state"]["step"], identity
        except FileNotFoundError:  # no checkpoint yet (or it was just replaced: read on the next pass)
            step = None
        if step is not None and step >= min_step:
            return step
        time.sleep(every)
    raise AssertionError(f"no checkpoint of step >= {min_step} in {path} within {timeout} s")


def communicate_all(processes: dict[str, subprocess.Popen], timeout: float) -> dict[str, tuple[int, str]]:
    """``{key: (returncode, stderr)}`` of processes started together, awaited within one
    ``timeout`` for all (not one each, so that the waits do not add up)."""
    deadline = time.monotonic() + timeout
    results = {}
    for key, process in processes.items():
        # a few seconds at least: a process that has ended still has its pipes to drain
        _, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 5.0))
        results[key] = (process.returncode, stderr)
    return results


def logging_wrapper(directory: Path, name: str, log: Path, prefix: str = "") -> None:
    """``directory/name``: appends ``prefix`` and its arguments as a line to ``log``, then runs the
    real ``name`` (the first on PATH now)."""
    real = shutil.which(name)
    assert real, f"{name} is not on PATH"
    wrapper = directory / name
    wrapper.write_text(f'#!/bin/sh\nprintf \'%s\\n\' "{prefix}$*" >> {shlex.quote(str(log))}\n'
                       f'exec {shlex.quote(real)} "$@"\n')
    wrapper.chmod(0o755)


def command_log(directory: Path, *commands: str) -> tuple[dict[str, str], Callable[[str], list[str]]]:
    """``(env, calls)``: ``env`` puts wrappers of ``commands`` first on PATH, each recording its
    arguments as a line and then running the real command; ``calls(name)`` lists the lines."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in commands:
        logging_wrapper(directory, name, directory / f"{name}.calls")

    def calls(name: str) -> list[str]:
        log = directory / f"{name}.calls"
        return log.read_text().splitlines() if log.exists() else []

    return {"PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}, calls


def same_weights(a: Path, b: Path) -> None:
    wa = checkpoint.read(a / "checkpoints" / "last.pt")["model"]
    wb = checkpoint.read(b / "checkpoints" / "last.pt")["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def attempt_times(sweep: Path) -> tuple[list[str], list[str]]:
    """(start times, end times) of every attempt of every run of a sweep (ISO, sortable)."""
    starts, ends = [], []
    for attempts in (sweep / "runs").glob("*/attempts.jsonl"):
        for line in attempts.read_text().splitlines():
            record = json.loads(line)
            if record["event"] == "start":
                starts.append(record["time"])
            else:
                ends.append(record["end"])
    return starts, ends


class HomeworkWord2Vec(nn.Module):
    """The homework's skip-gram model: its state dict is what word2vec.pt holds."""

    def __init__(self, vocab_size: int, embedding_size: int) -> None:
        super().__init__()
        self.target_embeddings = nn.Embedding(vocab_size, embedding_size)
        self.context_embeddings = nn.Embedding(vocab_size, embedding_size)


def write_homework_word2vec(directory: Path, words: list[str], dim: int = 10, seed: int = 0) -> torch.Tensor:
    """Write the three files exactly as the homework notebook does; return the target vectors."""
    directory.mkdir(parents=True, exist_ok=True)
    word_to_index = {w: i for i, w in enumerate(words)}
    index_to_word = {i: w for w, i in word_to_index.items()}
    with open(directory / "word_to_index.txt", "w") as f:
        json.dump(word_to_index, f)
    with open(directory / "index_to_word.txt", "w") as f:
        json.dump(index_to_word, f)  # json turns the int keys into strings
    torch.manual_seed(seed)
    model = HomeworkWord2Vec(len(words), dim)
    torch.save(model.state_dict(), directory / "word2vec.pt")
    return model.target_embeddings.weight.detach().clone()


def corpus_words(dataset) -> list[str]:
    counts = Counter(t for path in (dataset.train,) for text in pd.read_csv(path)["text"]
                     for t in Tokenizer()(text))
    words = sorted(counts)
    return [UNK] + words[: len(words) * 3 // 4]  # a quarter of the words unknown


HEADS, LRS, SEEDS = (2, 4), (1e-3, 1e-2), (0, 1, 2)


def dev_f1_of(heads: int, lr: float, seed: int) -> float:
    return round(0.6 + 0.05 * heads + (0.02 if lr == 1e-2 else 0.0) + 0.013 * ((seed * 7) % 3), 6)


def curve_of(f1: float) -> list[tuple[int, float]]:
    return [(10, f1 - 0.2), (20, f1), (30, f1 - 0.01)]


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


# the homework's tokens (case-kept words, no bigrams), which the tests' references (Tokenizer(), the
# homework's computations) produce; the defaults lowercase and add bigrams (tests/test_ngrams.py)
HOMEWORK_TOKENS = ["data.tokenizer.lowercase=false", "data.tokenizer.ngrams=1"]

# overrides of a tiny, fast, deterministic run (append more to change any of them)
TINY = [*HOMEWORK_TOKENS, "embeddings.dim=12", "model.num_heads=2", "optim.lr=0.03", "train.batch_size=16", "train.epochs=2",
        "train.log_every=5", "train.eval_every=10", "train.checkpoint_every=10", "train.num_threads=1",
        "train.progress=none", "device=cpu", "data.min_count=1", "optim.schedule=none",
        "optim.warmup_steps=0",
        "train.keep_checkpoints=all"]  # tests compare final weights and optimizer states of last.pt


# a run long enough (about 10 s) to be caught mid-training: checkpoints every 50 steps
LONG_TRAIN = ["train.max_steps=2000", "train.eval_every=100", "train.checkpoint_every=50", "train.log_every=50"]


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


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single non-empty stderr line of a failed run (asserts there is exactly one)."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*clf_args: str) -> subprocess.Popen:
    """``torchrun --nproc-per-node=2 -m clf ARGS``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
               f"--master-port={free_port()}", "-m", "clf", *clf_args]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=clf_env())


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read(run_dir / "checkpoints" / "last.pt")["model"]


def assert_weights_close(a: Path, b: Path, atol: float = 1e-5) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        diff = (wa[key].to_dense() - wb[key].to_dense()).abs().max().item()
        assert torch.allclose(wa[key].to_dense(), wb[key].to_dense(), atol=atol, rtol=0), f"{key}: max diff {diff}"


def finish(process: subprocess.Popen) -> str:
    """Wait for a torchrun that must succeed; its stderr (the workers' errors in the message)."""
    _, stderr = process.communicate(timeout=600)
    errors = [line for line in stderr.splitlines() if "error:" in line or "Error" in line]
    assert process.returncode == 0, "\n".join(errors) or stderr[-3000:]
    return stderr


ASCII_WORD = string.ascii_letters + string.digits + "_"


def random_word(rng: random.Random, length: int, alphabet: str = ASCII_WORD) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def make_vocab(rng: random.Random) -> tuple[Vocab, list[str]]:
    """A vocabulary of ASCII words of every length 1..24 (8, 9, 16, 17 with shared prefixes),
    non-ASCII words, and near-miss words that are NOT in it."""
    base = "abcdefghijklmnopqrstuvwxyz"
    words = {base[:n] for n in range(1, 25)} | {base[:n].upper() for n in (8, 9, 16, 17)}
    words |= {random_word(rng, n) for n in range(1, 25) for _ in range(30)}
    words |= {random_word(rng, n) for n in (8, 9, 16, 17) for _ in range(50)}
    words |= {"café", "東京", "Straße", "naïve", "ü", "Ünïcödé", "Łódź", "ġħ", "abcdefgh" + "é",
              "e" * 8 + "é" * 9, "数据" * 5, "_", "__init__", "0", "00000000", "0" * 17}
    words.discard(UNK)
    word_list = sorted(words)
    rng.shuffle(word_list)
    vocab = Vocab.from_words(word_list[:len(word_list) // 2] + [UNK] + word_list[len(word_list) // 2:])
    near_misses = []
    for word in word_list[:400]:
        near_misses += [word + rng.choice(ASCII_WORD), rng.choice(ASCII_WORD) + word, word[:-1],
                        word[:-1] + rng.choice(ASCII_WORD), word + "é"]
    near_misses += [base[:n] + "X" for n in range(1, 25)] + ["abcdefghijklmnoq", "abcdefghijklmnopqX"]
    return vocab, word_list + near_misses


SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", ".", ", ", "!!! ", "'", "-", "/", "<br />", "😀", "…", "—",
              "\u00a0", "\u2061", "«", "»", "$", "\x00", ""]


NON_ASCII_WORD_CHARS = "éüßÅ東京çñ٣ǅĀġŁ"


def make_corpus(rng: random.Random, words: list[str], n_docs: int) -> list[str]:
    texts = []
    for _ in range(n_docs):
        parts = []
        for _ in range(rng.randint(0, 25)):
            r = rng.random()
            if r < 0.6:
                piece = rng.choice(words)
            elif r < 0.75:
                piece = random_word(rng, rng.randint(1, 30))
            elif r < 0.85:
                piece = random_word(rng, rng.randint(1, 10), ASCII_WORD + NON_ASCII_WORD_CHARS)
            else:
                piece = random_word(rng, rng.randint(1, 5), "!?.,;:()[]{}<>'\"/\\|@#$%^&*+=~`-–—…😀🎬\u00a0\u2028")
            parts.append(piece)
            parts.append(rng.choice(SEPARATORS))
        texts.append("".join(parts))
    texts += ["", " ", "!!! ... ???", "😀", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq"]
    return texts


def require_slurm() -> None:
    """Skip the calling test module without a usable Slurm cluster (fail in CI, which starts one)."""
    if not slurm_answers():
        message = "no usable Slurm cluster (sinfo); slurm/local/install.sh && slurm/local/start.sh start one"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def slurm_diagnosis(roots: list[Path], tail_lines: int = 25) -> str:
    """The cluster's nodes and recent jobs, and the last lines of every job log under ``roots``."""
    commands = [["sinfo", "--Node", "--long"], ["squeue", "--all", "--long"],
                ["sacct", "--allocations", "--starttime", "now-15minutes", "--format",
                 "JobID%-14,JobName%-12,State%-14,ExitCode,NodeList,Start,End,Reason%-20"]]
    parts = []
    for command in commands:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            parts.append(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            parts.append(f"$ {' '.join(command)}\n{exc}")
    for root in roots:
        for log in sorted(Path(root).rglob("*_log.*")):
            lines = log.read_text(errors="replace").splitlines()[-tail_lines:]
            parts.append(f"--- {log} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts)


def slurm_answers() -> bool:
    """A Slurm cluster answers ``sinfo`` with a usable node (the local one: slurm/local/start.sh)."""
    import shutil

    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and any(s.strip("*~#") in ("idle", "mixed", "allocated", "completing")
                                       for s in out.stdout.split())


FAKE_MAX_ARRAY_SIZE = "CLF_FAKE_MAX_ARRAY_SIZE"


def counting_path(bin_dir: Path, log: Path, commands: tuple[str, ...] = ("squeue", "sacct")) -> dict[str, str]:
    """An environment whose PATH wraps ``commands`` in scripts that log each call (a line ``NAME
    ARGS``) to ``log`` and exec the real command; and ``scontrol``, whose ``show config`` then says
    MaxArraySize=$CLF_FAKE_MAX_ARRAY_SIZE when that is set (``clf submit`` splits sweeps as on a site
    with small arrays, and the shared cluster's configuration is left alone)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log.touch()
    for command in commands:
        logging_wrapper(bin_dir, command, log, prefix=f"{command} ")
    scontrol = shlex.quote(shutil.which("scontrol") or "scontrol")
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\nif [ -n "${FAKE_MAX_ARRAY_SIZE}" ] && [ "$1" = show ] && [ "$2" = config ]; then\n'
           f'  {scontrol} "$@" | sed "s/^MaxArraySize .*/MaxArraySize = ${FAKE_MAX_ARRAY_SIZE}/"\n'
           f'else\n  exec {scontrol} "$@"\nfi\n')
    (bin_dir / "scontrol").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def logged_calls(log: Path) -> list[list[str]]:
    """The calls ``counting_path``'s wrappers logged, each split into words."""
    return [line.split() for line in log.read_text().splitlines()]


# --- successive halving (test_halving.py, test_halving_slurm.py) ---
# 400 training documents in batches of 16: 25 steps an epoch; with TINY, evaluations every 10 steps
FULL = ["train.max_steps=90", "optim.schedule=linear", "optim.warmup_steps=5", "train.checkpoint_seconds=3600"]
HALVING = ["search=halving", "search.eta=3", "search.min_steps=10", *FULL]   # rungs 10 / 30 / 90
GRID9 = ["optim.lr=0.003,0.01,0.03", "model.num_heads=1,2,4"]


def halving_record(sweep: Path) -> dict:
    return json.loads((sweep / "halving.json").read_text())


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def manifest_runs(sweep: Path) -> dict[str, dict]:
    return {run["name"]: run for run in json.loads((sweep / "sweep.json").read_text())["runs"]}


def runs_with(sweep: Path, override: str) -> list[str]:
    """The names of the sweep's runs given ``override`` (a long path in a run's name is cut short)."""
    return [name for name, run in manifest_runs(sweep).items() if override in run["overrides"]]


def search_ended(sweep: Path) -> dict | None:
    record = halving_record(sweep) if (sweep / "halving.json").exists() else {}
    return record if record.get("finished") else None


def reference_run(tmp_path: Path, sweep: Path, name: str) -> Path:
    """The run ``name`` of the sweep trained uninterrupted to the full budget (no search=...)."""
    overrides = [o for o in manifest_runs(sweep)[name]["overrides"] if not o.startswith("search")]
    run_dir = tmp_path / "reference"  # a plain name: run names hold '=' and ',
    run_clf("train", *overrides, f"run_dir={run_dir}", check=True)
    return run_dir


def check_rungs(sweep: Path, record: dict, counts: list[int]) -> None:
    """Rungs of ``counts`` runs; each decision kept the best by the dev F1 the runs' TensorBoard
    curves show up to the rung's budget."""
    assert [len(rung["runs"]) for rung in record["rungs"]] == counts
    assert record["budgets"] == [10, 30, 90]
    order = list(manifest_runs(sweep))
    for rung, after in zip(record["rungs"], record["rungs"][1:] + [None]):
        best = {}
        for name in rung["runs"]:
            steps, values = read_scalars(sweep / "runs" / name / "tb", ["F1/dev"])["F1/dev"]
            best[name] = float(max(v for s, v in zip(steps, values) if s <= rung["budget"]))
            assert rung["scores"][name] == pytest.approx(best[name], abs=1e-6), name
        ranked = sorted(best, key=lambda n: (-round(best[n], 6), order.index(n)))
        assert rung["kept"] == ranked[:len(after["runs"]) if after else 1]
        if after:
            assert after["runs"] == rung["kept"]
