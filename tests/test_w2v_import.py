"""``clf w2v import``: word2vec text/binary and GloVe files written here -> the homework's
directory; restriction to a data source's vocabulary; one-line errors naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import one_line_error, run_clf, write_csv

from clf.cli import main
from clf.data.vocab import UNK
from clf.embeddings import CONTEXT, TARGET, load_word2vec
from clf.errors import ClfError
from clf.w2v.importers import read_vectors

WORDS = ["the", "good", "bad", "movie", "Straße", "東京", "film"]


@pytest.fixture
def table() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    return WORDS, rng.normal(size=(len(WORDS), 4)).astype(np.float32)


def text_lines(words, vectors) -> list[str]:
    return [f"{w} " + " ".join(repr(float(x)) for x in row) for w, row in zip(words, vectors)]


def write_text(path: Path, words, vectors, header: bool) -> Path:
    lines = ([f"{len(words)} {vectors.shape[1]}"] if header else []) + text_lines(words, vectors)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_binary(path: Path, words, vectors, newline: bool = True, compress: bool = False) -> Path:
    body = f"{len(words)} {vectors.shape[1]}\n".encode()
    for word, row in zip(words, vectors):
        body += word.encode() + b" " + row.astype("<f4").tobytes() + (b"\n" if newline else b"")
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def import_(path: Path, fmt: str, out: Path, *extra: str) -> int:
    """``clf w2v import`` in this process (exit status); the CLI's own tests run it as a subprocess."""
    return main(["w2v", "import", str(path), "--format", fmt, "--out", str(out), *map(str, extra)])


def check_output(out: Path, words, vectors) -> None:
    vocab, target = load_word2vec(out)
    assert vocab.words == list(words) + [UNK]
    assert torch.equal(target[:-1], torch.from_numpy(vectors)) and target[-1].abs().sum() == 0
    state = torch.load(out / "word2vec.pt", weights_only=True)
    assert state[CONTEXT].shape == state[TARGET].shape and state[CONTEXT].abs().sum() == 0
    assert state[TARGET].dtype == torch.float32
    w2i = json.loads((out / "word_to_index.txt").read_text(encoding="utf-8"))
    assert w2i == {w: i for i, w in enumerate(vocab.words)}


@pytest.mark.parametrize("fmt", ["word2vec-text", "glove", "word2vec-bin", "word2vec-bin-gz", "word2vec-bin-c"])
def test_import_formats(tmp_path, table, fmt):
    words, vectors = table
    if fmt == "word2vec-text":
        path = write_text(tmp_path / "v.txt", words, vectors, header=True)
    elif fmt == "glove":
        path = write_text(tmp_path / "v.txt", words, vectors, header=False)
    else:
        path = write_binary(tmp_path / "v.bin", words, vectors, newline=fmt.endswith("-c"),
                            compress=fmt.endswith("-gz"))
    assert import_(path, fmt.removesuffix("-gz").removesuffix("-c"), tmp_path / "out") == 0
    check_output(tmp_path / "out", words, vectors)
    info = json.loads((tmp_path / "out" / "w2v.json").read_text())
    assert info["kind"] == "imported" and info["source"]["entries_read"] == len(words)
    assert (tmp_path / "out" / "neighbours.txt").read_text().startswith("good: ")


def test_gensim_written_files_read_the_same(tmp_path, table):
    from gensim.models import KeyedVectors

    words, vectors = table
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    for binary in (True, False):
        path = tmp_path / f"gensim-{binary}"
        kv.save_word2vec_format(str(path), binary=binary)
        imported = read_vectors(path, "word2vec-bin" if binary else "word2vec-text")
        assert imported.words == words and np.array_equal(imported.vectors, vectors)


def test_limit_and_unk_in_the_file(tmp_path, table):
    words, vectors = table
    path = write_text(tmp_path / "v.txt", words[:3] + [UNK] + words[3:], np.insert(vectors, 3, 7.0, axis=0),
                      header=False)
    assert import_(path, "glove", tmp_path / "out") == 0
    vocab, target = load_word2vec(tmp_path / "out")
    assert vocab.size == len(words) + 1 and vocab.unk_id == 3 and bool((target[3] == 7.0).all())
    assert import_(path, "glove", tmp_path / "few", "--limit", "2") == 0
    assert load_word2vec(tmp_path / "few")[0].words == words[:2] + [UNK]


def test_vocab_from_a_data_source(tmp_path, table):
    words, vectors = table
    rows = [{"inst_id": i, "text": "the good movie, the STRASSE film. Straße!", "label": i % 2} for i in range(6)]
    train = write_csv(tmp_path / "train.csv", rows)
    path = write_binary(tmp_path / "v.bin", words, vectors)
    assert import_(path, "word2vec-bin", tmp_path / "out", "--vocab-from", "csv", f"data.train={train}",
                   "data.tokenizer.lowercase=false", "min_count=3") == 0   # case kept (the default lowercases)
    kept = ["the", "good", "movie", "Straße", "film"]
    check_output(tmp_path / "out", kept, vectors[[words.index(w) for w in kept]])
    info = json.loads((tmp_path / "out" / "w2v.json").read_text())
    assert info["vocab_from"]["covered"] == 5 and info["vocab_from"]["vocabulary_size"] == 7   # + STRASSE, <UNK>
    assert import_(path, "word2vec-bin", tmp_path / "none", "--vocab-from", "csv", f"data.train={train}",
                   "data.tokenizer.lowercase=true", "min_count=3") == 0
    assert "straße" not in load_word2vec(tmp_path / "none")[0].index


def bad_text(tmp_path: Path, lines: list[str], name: str = "bad.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = ["the 0.1 0.2 0.3", "good 1 2 3", "bad -1 -2 -3"]
TEXT_ERRORS = {
    "wrong-dim": ("glove", GOOD + ["movie 1 2"], "line 4: 'movie' has 2 values, expected 3"),
    "too-many": ("glove", GOOD[:1] + ["movie 1 2 3 4"], "line 2: 'movie' has 4 values, expected 3"),
    "not-a-number": ("glove", GOOD + ["movie 1 x 3"], "line 4: 'x' in the vector of 'movie' is not a number"),
    "nan": ("glove", GOOD + ["movie 1 nan 3"], "line 4: the vector of 'movie' holds NaN or infinity"),
    "duplicate": ("glove", GOOD + ["good 1 1 1"], "line 4: duplicate word 'good' (first at line 2)"),
    "empty-line": ("glove", GOOD[:2] + [""] + GOOD[2:], "line 3: empty line"),
    "empty-word": ("glove", GOOD + [" 1 2 3"], "line 4: empty word"),
    "header-in-glove": ("glove", ["3 3"] + GOOD, "line 1: looks like a word2vec header ('3 3'); use --format word2vec-text"),
    "no-header": ("word2vec-text", GOOD, "line 1: expected the word2vec header 'WORDS DIMENSIONS', found 'the 0.1 0.2 0.3'"),
    "count": ("word2vec-text", ["4 3"] + GOOD, "the header announces 4 words but the file has 3"),
    "header-dim": ("word2vec-text", ["3 2"] + GOOD, "line 2: 'the' has 3 values, expected 2"),
}


@pytest.mark.parametrize("case", sorted(TEXT_ERRORS))
def test_text_errors_name_file_and_line_and_write_nothing(tmp_path, capsys, case):
    fmt, lines, message = TEXT_ERRORS[case]
    path = bad_text(tmp_path, lines)
    assert import_(path, fmt, tmp_path / "out") == 2
    assert capsys.readouterr().err == f"clf w2v: error: {path}: {message}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bad.txt"]


def test_damaged_gzip_is_a_clear_error(tmp_path, table):
    path = write_binary(tmp_path / "v.bin.gz", *table, compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ClfError, match=r"v.bin.gz: cannot be read \(Compressed file ended"):
        read_vectors(path, "word2vec-bin")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"the 1 2\ngo\xffod 1 2\n")
    with pytest.raises(ClfError, match=r"bad.txt: line 2: not valid UTF-8"):
        read_vectors(path, "glove")


def binary_case(tmp_path: Path, table, case: str) -> tuple[Path, str]:
    words, vectors = table
    path = write_binary(tmp_path / "v.bin", words, vectors)
    data = path.read_bytes()
    header = len(f"{len(words)} 4\n")
    record = len("the ") + 16 + 1
    if case == "truncated":
        path.write_bytes(data[:-10])
        return path, f"entry 7 (byte {len(data) - len('film ') - 17}): the file ends inside the vector of 'film'"
    if case == "missing-entries":
        path.write_bytes(data.replace(b"7 4\n", b"9 4\n", 1))
        return path, f"entry 8 (byte {len(data)}): the file ends (the header announces 9 words)"
    if case == "trailing":
        path.write_bytes(data + b"junk 1234")
        return path, f"byte {len(data)}: more data after the 7 words the header announces"
    if case == "duplicate":
        path.write_bytes(data[:header + record] + data[header:])
        return path, f"entry 2 (byte {header + record}): duplicate word 'the' (first at entry 1 (byte {header}))"
    if case == "nan":
        bad = np.array(vectors[0])
        bad[2] = np.inf
        path.write_bytes(data[:header + 4] + bad.astype("<f4").tobytes() + data[header + 4 + 16:])
        return path, f"entry 1 (byte {header}): the vector of 'the' holds NaN or infinity"
    path.write_bytes(b"seven 4\n" + data[header:])
    return path, "line 1: expected the word2vec header 'WORDS DIMENSIONS', found 'seven 4'"


@pytest.mark.parametrize("case", ["truncated", "missing-entries", "trailing", "duplicate", "nan", "header"])
def test_binary_errors_name_file_and_entry(tmp_path, table, case):
    path, message = binary_case(tmp_path, table, case)
    with pytest.raises(ClfError) as info:
        read_vectors(path, "word2vec-bin")
    assert str(info.value) == f"{path}: {message}"


def test_binary_error_through_the_cli_writes_nothing(tmp_path, table):
    path, message = binary_case(tmp_path, table, "truncated")
    result = run_clf("w2v", "import", path, "--format", "word2vec-bin", "--out", tmp_path / "out")
    assert result.returncode == 2 and one_line_error(result) == f"clf w2v: error: {path}: {message}"
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors(tmp_path, table, capsys):
    assert import_(tmp_path / "missing.txt", "glove", tmp_path / "out") == 2
    assert capsys.readouterr().err.endswith("missing.txt: no such file\n")
    result = run_clf("w2v", "import", tmp_path / "x", "--format", "fasttext", "--out", tmp_path / "out")
    assert result.returncode == 2 and "invalid choice: 'fasttext'" in result.stderr
    words, vectors = table
    path = write_text(tmp_path / "v.txt", words, vectors, header=False)
    assert import_(path, "glove", tmp_path / "out", "--limit", "0") == 2
    assert capsys.readouterr().err == "clf w2v: error: --limit 0 must be positive\n"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    assert import_(path, "glove", tmp_path / "mine") == 2
    assert "not a clf w2v output" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
