"""Published word vectors -> words and a [N, D] float32 matrix.

Formats: ``word2vec-text`` (header ``WORDS DIM``, then ``word v1 ... vD`` per line),
``word2vec-bin`` (the same header, then per word: the word, a space, D little-endian float32;
Google News' vectors), ``glove`` (``word v1 ... vD`` per line, no header). gzip-compressed
files are read as they are. Every problem is a ClfError naming the file and the line (text) or
the entry and its byte offset (binary): malformed lines, a wrong number of values, non-numbers,
NaN or infinity, duplicate words, truncated files.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from clf.errors import ClfError

FORMATS = ("word2vec-text", "word2vec-bin", "glove")
MAX_WORD_BYTES = 4096
BLOCK = 1 << 22

Keep = Callable[[str], bool]


@dataclass
class Imported:
    """The kept words in file order, their vectors, and how many entries the file had."""

    words: list[str]
    vectors: np.ndarray
    entries: int


@dataclass
class _Collector:
    """Kept rows, and where each word was first seen (to name both places of a duplicate)."""

    path: Path
    keep: Keep | None
    dim: int
    seen: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def wants(self, word: str, where: str) -> bool:
        if not word:
            raise ClfError(f"{where}: empty word", self.path)
        first = self.seen.setdefault(word, where)
        if first is not where:
            raise ClfError(f"{where}: duplicate word {word!r} (first at {first})", self.path)
        return self.keep is None or self.keep(word)

    def add(self, word: str, vector: np.ndarray, where: str) -> None:
        if not np.isfinite(vector).all():
            raise ClfError(f"{where}: the vector of {word!r} holds NaN or infinity", self.path)
        self.words.append(word)
        self.rows.append(vector)

    def result(self) -> Imported:
        vectors = np.stack(self.rows) if self.rows else np.zeros((0, self.dim), dtype=np.float32)
        return Imported(self.words, vectors.astype(np.float32, copy=False), len(self.seen))


def open_binary(path: Path) -> BinaryIO:
    """The file, gunzipped on the fly when it starts with gzip's magic bytes."""
    if not path.is_file():
        raise ClfError("no such file", path)
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb", buffering=BLOCK)


def _header(line: bytes, path: Path) -> tuple[int, int]:
    """``WORDS DIM`` of a word2vec file."""
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or 0 in (int(parts[0]), int(parts[1])):
        shown = line[:60].decode("utf-8", "replace").strip()
        raise ClfError(f"line 1: expected the word2vec header 'WORDS DIMENSIONS', found {shown!r}", path)
    return int(parts[0]), int(parts[1])


def _floats(values: list[str], word: str, where: str, path: Path) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise ClfError(f"{where}: {bad!r} in the vector of {word!r} is not a number", path) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lines(f: BinaryIO, path: Path, first: int) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(f, first):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClfError(f"line {number}: not valid UTF-8 (byte {exc.start + 1} of the line)", path) from None
        yield number, line.rstrip("\r\n").rstrip(" ")


def _read_text(path: Path, keep: Keep | None, limit: int | None, header: bool) -> Imported:
    with open_binary(path) as f:
        expected, dim = _header(f.readline(), path) if header else (None, None)
        collector: _Collector | None = None
        n = 0
        for number, line in _lines(f, path, 2 if header else 1):
            if limit is not None and n >= limit:
                break
            if not line:
                raise ClfError(f"line {number}: empty line", path)
            word, *values = line.split(" ")
            if dim is None:
                if len(values) == 1 and word.isdigit() and values[0].isdigit():
                    raise ClfError(f"line {number}: looks like a word2vec header ({line!r}); use --format "
                                   "word2vec-text", path)
                dim = len(values)
            where = f"line {number}"
            if len(values) != dim:
                raise ClfError(f"{where}: {word!r} has {len(values)} values, expected {dim}", path)
            collector = collector or _Collector(path, keep, dim)
            if collector.wants(word, where):
                collector.add(word, _floats(values, word, where, path), where)
            n += 1
    if expected is not None and limit is None and n != expected:
        raise ClfError(f"the header announces {expected} words but the file has {n}", path)
    if collector is None:
        raise ClfError("no vectors in the file", path)
    return collector.result()


class _Bytes:
    """A binary stream read in blocks, with the absolute offset of the read position."""

    def __init__(self, f: BinaryIO, start: int) -> None:
        self.f, self.buf, self.pos, self.base = f, b"", 0, start

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def ensure(self, n: int) -> bool:
        """At least ``n`` bytes ahead, unless the file ends first; False then."""
        if len(self.buf) - self.pos < n:
            self.base += self.pos
            self.buf = self.buf[self.pos:] + self.f.read(max(n, BLOCK))
            self.pos = 0
        return len(self.buf) - self.pos >= n

    def next_data(self) -> int | None:
        """Offset of the next byte that is not whitespace; None at the end of the file."""
        while True:
            rest = self.buf[self.pos:]
            if rest.strip():
                return self.offset + len(rest) - len(rest.lstrip())
            self.base += len(self.buf)
            self.buf, self.pos = self.f.read(BLOCK), 0
            if not self.buf:
                return None


def _read_binary(path: Path, keep: Keep | None, limit: int | None) -> Imported:
    with open_binary(path) as f:
        header = f.readline()
        expected, dim = _header(header, path)
        size = 4 * dim
        stream = _Bytes(f, len(header))
        collector = _Collector(path, keep, dim)
        count = expected if limit is None else min(expected, limit)
        for number in range(1, count + 1):
            stream.ensure(MAX_WORD_BYTES + 2 + size)
            while stream.buf[stream.pos:stream.pos + 1] == b"\n":   # the C tool ends each vector with one
                stream.pos += 1
            where = f"entry {number} (byte {stream.offset})"
            space = stream.buf.find(b" ", stream.pos, stream.pos + MAX_WORD_BYTES + 1)
            if space < 0:
                problem = "the file ends" if len(stream.buf) == stream.pos else "no space after the word"
                raise ClfError(f"{where}: {problem} (the header announces {expected} words)", path)
            try:
                word = stream.buf[stream.pos:space].decode("utf-8")
            except UnicodeDecodeError:
                raise ClfError(f"{where}: the word is not valid UTF-8", path) from None
            stream.pos = space + 1
            if len(stream.buf) - stream.pos < size:
                raise ClfError(f"{where}: the file ends inside the vector of {word!r}", path)
            if collector.wants(word, where):
                vector = np.frombuffer(stream.buf, dtype="<f4", count=dim, offset=stream.pos).astype(np.float32)
                collector.add(word, vector, where)
            stream.pos += size
        extra = stream.next_data() if limit is None else None
        if extra is not None:
            raise ClfError(f"byte {extra}: more data after the {expected} words the header announces", path)
    return collector.result()


def read_vectors(path: str | Path, fmt: str, keep: Keep | None = None, limit: int | None = None) -> Imported:
    """Words (in file order) for which ``keep`` is true, and their vectors; at most ``limit`` entries read."""
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise ClfError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    try:
        if fmt == "word2vec-bin":
            return _read_binary(path, keep, limit)
        return _read_text(path, keep, limit, header=fmt == "word2vec-text")
    except (OSError, EOFError, zlib.error) as exc:     # unreadable, or a damaged gzip stream
        raise ClfError(f"cannot be read ({' '.join(str(exc).split()) or type(exc).__name__})", path) from None
