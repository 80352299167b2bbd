"""Token ids -> the text file gensim's ``corpus_file`` mode reads: one document per line,
words separated by single spaces, ``<UNK>`` tokens left out.

Leaving ``<UNK>`` out is what gensim does with words under ``min_count`` (they are skipped
before the context window is applied). The bytes are assembled with numpy from a table of the
vocabulary's UTF-8 words, a chunk of documents at a time, with no Python object per token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

from clf.data.cache import TokenizedSplit
from clf.data.vocab import Vocab
from clf.errors import ClfError

CHUNK_TOKENS = 1 << 20
_SEPARATORS = re.compile(r"[ \t\n\v\f\r]")     # what gensim's C++ reader splits words on


class _WordTable:
    """Each vocabulary word as UTF-8 bytes followed by one space, in one flat array."""

    def __init__(self, vocab: Vocab) -> None:
        spaced = next((w for w in vocab.words if _SEPARATORS.search(w)), None)
        if spaced is not None:
            raise ClfError(f"the token {spaced!r} holds whitespace, which gensim's corpus file cannot hold; "
                           "use a data.tokenizer.pattern whose tokens have none")
        encoded = [word.encode("utf-8") + b" " for word in vocab.words]
        self.lengths = np.array([len(b) for b in encoded], dtype=np.int64)
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def lines(self, ids: np.ndarray, doc_of_token: np.ndarray) -> bytes:
        """The words of ``ids``; the space after each document's last word becomes a newline."""
        n = self.lengths[ids]
        ends = np.cumsum(n)
        source = np.repeat(self.starts[ids] - (ends - n), n) + np.arange(ends[-1] if len(ends) else 0)
        out = self.blob[source]
        last = np.flatnonzero(np.diff(doc_of_token, append=-1) != 0)
        out[ends[last] - 1] = ord("\n")
        return out.tobytes()


def _write_split(f: BinaryIO, split: TokenizedSplit, table: _WordTable, unk: int) -> int:
    offsets = np.asarray(split.offsets)
    written, first = 0, 0
    while first < len(split):
        last = max(int(np.searchsorted(offsets, offsets[first] + CHUNK_TOKENS, side="right")) - 1, first + 1)
        last = min(last, len(split))
        ids = np.asarray(split.ids[offsets[first]:offsets[last]])
        doc = np.repeat(np.arange(first, last), np.diff(offsets[first:last + 1]))
        keep = ids != unk
        if keep.any():
            f.write(table.lines(ids[keep], doc[keep]))
            written += int(keep.sum())
        first = last
    return written


def write_corpus_file(path: Path, splits: list[TokenizedSplit], vocab: Vocab) -> int:
    """Write the documents of ``splits`` to ``path``; returns the number of words written."""
    table = _WordTable(vocab)
    with open(path, "wb", buffering=1 << 22) as f:
        return sum(_write_split(f, split, table, vocab.unk_id) for split in splits)
