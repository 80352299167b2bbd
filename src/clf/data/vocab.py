"""Word <-> id mapping in the homework's files: ``word_to_index.txt`` and ``index_to_word.txt``.

Both are JSON objects (word -> id, and id as a string -> word). Ids run 0..V-1 and ``<UNK>``
is one of the words. The model adds one padding row after them (id V).

A vocabulary read from these files remembers their bytes, and ``save`` writes those back (every
run copies its embeddings' vocabulary into its run dir: re-serialising IMDB's 56k words took
longer than the write).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from clf.atomic import atomic_write_bytes
from clf.errors import ClfError

UNK = "<UNK>"
WORD_TO_INDEX = "word_to_index.txt"
INDEX_TO_WORD = "index_to_word.txt"


class SourceFiles(NamedTuple):
    """The bytes of the two files a vocabulary of ``size`` words was read from."""

    size: int
    word_to_index: bytes
    index_to_word: bytes


@dataclass
class Vocab:
    """Ids 0..size-1 for ``words``; unknown tokens map to ``unk_id``; ``pad_id`` == size."""

    words: list[str]
    index: dict[str, int] = field(repr=False)
    # the two files' bytes when read from them (``load``), for ``save``; None when built
    files: SourceFiles | None = field(default=None, repr=False, compare=False)
    # values computed from the words, kept (a vocabulary is never changed once made): the
    # fingerprint, clf.data.ngrams' split into words and bigrams
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if UNK not in self.index:
            raise ClfError(f"vocabulary has no {UNK!r} entry")

    @property
    def size(self) -> int:
        return len(self.words)

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    @property
    def pad_id(self) -> int:
        return len(self.words)

    def fingerprint(self) -> str:
        if "fingerprint" not in self.derived:
            digest = hashlib.sha256()
            for word in self.words:
                digest.update(word.encode("utf-8", "surrogatepass") + b"\x00")
            self.derived["fingerprint"] = digest.hexdigest()[:24]
        return self.derived["fingerprint"]

    @classmethod
    def from_words(cls, words: list[str]) -> "Vocab":
        return cls(words=words, index={w: i for i, w in enumerate(words)})

    @classmethod
    def build(cls, documents: Iterable[list[str]], min_count: int = 1, max_size: int | None = None) -> "Vocab":
        """Words seen >= ``min_count`` times, most frequent first (ties by word), then ``<UNK>``."""
        counts: Counter[str] = Counter()
        for tokens in documents:
            counts.update(tokens)
        return cls.from_counts(counts, min_count, max_size)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_count: int = 1, max_size: int | None = None) -> "Vocab":
        """``build`` from token counts already made (e.g. by ``clf.data.encode.count_tokens``)."""
        kept = sorted((w for w, c in counts.items() if c >= min_count and w != UNK), key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[: max(max_size - 1, 0)]
        return cls.from_words(kept + [UNK])

    @classmethod
    def load(cls, directory: str | Path) -> "Vocab":
        """Read the homework's two index files and check that they agree."""
        directory = Path(directory)
        w2i_path, i2w_path = directory / WORD_TO_INDEX, directory / INDEX_TO_WORD
        w2i_bytes, i2w_bytes = _read_bytes(w2i_path), _read_bytes(i2w_path)
        word_to_index = _read_json_object(w2i_path, w2i_bytes)
        index_to_word = _read_json_object(i2w_path, i2w_bytes)
        size = len(word_to_index)
        words: list[str | None] = [None] * size
        for word, idx in word_to_index.items():
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < size:
                raise ClfError(f"id {idx!r} of word {word!r} is not an integer in 0..{size - 1}", w2i_path)
            if words[idx] is not None:
                raise ClfError(f"id {idx} is given to both {words[idx]!r} and {word!r}", w2i_path)
            words[idx] = word
        if len(index_to_word) != size:
            raise ClfError(f"has {len(index_to_word)} entries but {WORD_TO_INDEX} has {size}", i2w_path)
        for key, word in index_to_word.items():
            if not key.lstrip("-").isdigit() or not 0 <= int(key) < size or words[int(key)] != word:
                expected = words[int(key)] if key.isdigit() and int(key) < size else None
                raise ClfError(f"entry {key!r}: {word!r} disagrees with {WORD_TO_INDEX} ({expected!r})", i2w_path)
        if UNK not in word_to_index:
            raise ClfError(f"has no {UNK!r} entry (the homework maps unknown tokens to it)", w2i_path)
        return cls(words=words, index=word_to_index, files=SourceFiles(size, w2i_bytes, i2w_bytes))  # type: ignore[arg-type]

    def file_bytes(self) -> SourceFiles:
        """Both files' content: the bytes they were read from, if this vocabulary was read from
        files and still has their words, else serialised."""
        if self.files is not None and len(self.words) == len(self.index) == self.files.size:
            return self.files
        return SourceFiles(self.size, json.dumps(self.index, ensure_ascii=False).encode("utf-8"),
                           json.dumps({str(i): w for i, w in enumerate(self.words)}, ensure_ascii=False).encode("utf-8"))

    def save(self, directory: str | Path) -> None:
        """Write both files in the homework's format (atomically)."""
        directory, files = Path(directory), self.file_bytes()
        atomic_write_bytes(directory / WORD_TO_INDEX, files.word_to_index)
        atomic_write_bytes(directory / INDEX_TO_WORD, files.index_to_word)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ClfError("no such file", path)
    return path.read_bytes()


def _read_json_object(path: Path, data: bytes) -> dict:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClfError(f"not valid JSON ({exc})", path) from None
    if not isinstance(obj, dict) or not obj:
        raise ClfError("expected a non-empty JSON object", path)
    return obj
