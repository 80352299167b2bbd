"""Read a CSV of documents and check it row by row.

Every problem is a ClfError naming the file, the row (1-based, header not counted) and what is
wrong, so a user can fix the file in one go.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clf.errors import ClfError

if TYPE_CHECKING:  # imported where used: a run whose token cache is warm never parses a CSV
    import pandas as pd


@dataclass
class Records:
    """Documents of one split: ids as in the file, raw texts, labels (int8, or None)."""

    inst_ids: np.ndarray
    texts: list[str]
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.texts)


def read_bytes(path: Path) -> bytes:
    """File content, gunzipped when the name ends in ``.gz``."""
    if not path.is_file():
        raise ClfError("no such file", path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ClfError(f"not a valid gzip file ({exc})", path) from None
    return raw


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """All cells as strings; empty or undecodable files and malformed CSV are errors."""
    import pandas as pd

    path = Path(path)
    raw = read_bytes(path)
    if not raw.strip():
        raise ClfError("file is empty", path)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ClfError(
            f"line {line}: byte 0x{raw[exc.start]:02x} is not valid {encoding} "
            f"(set data.encoding= if the file uses another encoding)", path) from None
    except LookupError:
        raise ClfError(f"unknown encoding {encoding!r}", path) from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ClfError(f"malformed CSV: {' '.join(str(exc).split())}", path) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns the extra leading fields of rows longer than the header into an index,
        # shifting every column: the file is malformed, not data to guess at
        raise ClfError(f"malformed CSV: row 1 has more fields than the header's {len(frame.columns)}", path)
    if len(frame) == 0:
        raise ClfError("no data rows (only a header)", path)
    return frame


def _row(i: int, ids: np.ndarray | None = None) -> str:
    return f"row {i + 1}" + (f" (inst_id={ids[i]})" if ids is not None else "")


def _require_columns(frame: pd.DataFrame, path: Path, columns: list[str]) -> None:
    for column in columns:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise ClfError(f"missing column {column!r} (columns: {found})", path)


def parse_inst_ids(values: pd.Series, path: Path) -> np.ndarray:
    """Integers when every id is one, else strings; empty and duplicate ids are errors."""
    import pandas as pd

    stripped = values.str.strip()
    empty = np.flatnonzero((stripped == "").to_numpy())
    if len(empty):
        raise ClfError(f"{_row(int(empty[0]))}: empty inst_id", path)
    as_int = pd.to_numeric(stripped, errors="coerce")
    if as_int.notna().all() and (as_int == as_int.round()).all():
        ids = as_int.to_numpy().astype(np.int64)
    else:
        ids = stripped.to_numpy().astype(str)
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first, twin = rows[0], rows[1:][ids[rows[1:]] == ids[rows[0]]][0]
        raise ClfError(f"duplicate inst_id {ids[first].item()!r} in rows {first + 1} and {twin + 1}", path)
    return ids


def parse_labels(values: pd.Series, path: Path, ids: np.ndarray) -> np.ndarray:
    """Labels must be 0 or 1 (written as 0/1, 0.0/1.0)."""
    import pandas as pd

    numbers = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy()
    bad = np.flatnonzero(~np.isin(numbers, (0.0, 1.0)))
    if len(bad):
        i = int(bad[0])
        raise ClfError(f"{_row(i, ids)}: label {values.iloc[i]!r} is not 0 or 1", path)
    return numbers.astype(np.int8)


def check_texts(texts: pd.Series, path: Path, ids: np.ndarray) -> list[str]:
    empty = np.flatnonzero((texts.str.strip() == "").to_numpy())
    if len(empty):
        raise ClfError(f"{_row(int(empty[0]), ids)}: empty (or NaN) text", path)
    return texts.tolist()


def read_records(path: str | Path, *, id_column: str, text_column: str, label_column: str,
                 encoding: str = "utf-8", require_labels: bool = True) -> Records:
    """Read the homework's CSV layout (``inst_id,text,label``; labels optional for test)."""
    path = Path(path)
    frame = read_table(path, encoding)
    _require_columns(frame, path, [id_column, text_column] + ([label_column] if require_labels else []))
    ids = parse_inst_ids(frame[id_column], path)
    texts = check_texts(frame[text_column], path, ids)
    labels = None
    if label_column in frame.columns:
        column = frame[label_column]
        unlabeled = not require_labels and bool((column.str.strip() == "").all())
        labels = None if unlabeled else parse_labels(column, path, ids)
    return Records(inst_ids=ids, texts=texts, labels=labels)
