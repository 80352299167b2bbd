"""On-disk token-id cache: one directory per (file content, tokenizer, vocabulary).

Each entry holds ``ids.npy`` (flat int32), ``offsets.npy`` (int64), ``labels.npy``,
``inst_ids.npy`` and ``meta.json`` with the key and a CRC of every array. An entry is built in
a private temp directory and renamed into place, so jobs of a sweep that start together on
shared storage never see a half-written entry; when two build the same entry, the first
rename wins and the others use it. An entry whose key, shapes or CRCs do not match is
rebuilt, never trusted. Arrays are memory-mapped on load.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from clf.atomic import fsync_dir

log = logging.getLogger(__name__)
FORMAT = 1
T = TypeVar("T")
ARRAYS = ("ids", "offsets", "labels", "inst_ids")


@dataclass
class TokenizedSplit:
    """A split as token ids: document ``i`` is ``ids[offsets[i]:offsets[i+1]]``."""

    name: str
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None
    inst_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def head(self, n: int) -> "TokenizedSplit":
        """The first ``n`` documents (a view)."""
        n = min(n, len(self))
        return TokenizedSplit(self.name, self.ids[: self.offsets[n]], self.offsets[: n + 1],
                              None if self.labels is None else self.labels[:n], self.inst_ids[:n])


class CacheInvalid(Exception):
    pass


def default_cache_root() -> Path:
    env = os.environ.get("CLF_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "clf"


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def load(entry: Path, key: str, name: str) -> TokenizedSplit:
    """Memory-map a cache entry after checking its key, shapes and checksums."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("key") != key or meta.get("format") != FORMAT:
            raise CacheInvalid("key mismatch")
        arrays = {}
        for array_name in ARRAYS:
            if meta["crc"].get(array_name) is None:
                arrays[array_name] = None
                continue
            array = np.load(entry / f"{array_name}.npy", mmap_mode="r", allow_pickle=False)
            if _crc(array) != meta["crc"][array_name]:
                raise CacheInvalid(f"{array_name}.npy checksum mismatch")
            arrays[array_name] = array
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CacheInvalid(str(exc)) from None
    ids, offsets, labels, inst_ids = (arrays[a] for a in ARRAYS)
    n = meta["n_docs"]
    if (len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(ids) or len(inst_ids) != n
            or (labels is not None and len(labels) != n)):
        raise CacheInvalid("inconsistent shapes")
    return TokenizedSplit(name, ids, offsets, labels, inst_ids)


def _write(directory: Path, key: str, split: TokenizedSplit) -> None:
    crcs = {}
    for array_name in ARRAYS:
        array = getattr(split, array_name)
        crcs[array_name] = None if array is None else _crc(array)
        if array is not None:
            with open(directory / f"{array_name}.npy", "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
    meta = {"format": FORMAT, "key": key, "n_docs": len(split), "n_tokens": int(len(split.ids)), "crc": crcs}
    with open(directory / "meta.json", "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())


def _replace(entry: Path, tmp: Path) -> None:
    """Publish ``tmp`` in place of an invalid ``entry``. Builders race here: whoever moves the
    entry aside removes what it moved, even when another builder's entry lands first (that one
    stays: it is valid too), so that no stale directory is left behind."""
    stale = entry.with_name(f".{entry.name}.stale-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        os.rename(entry, stale)
    except FileNotFoundError:  # another builder moved it aside first
        pass
    try:
        os.rename(tmp, entry)
    except OSError:  # another builder published meanwhile
        pass
    finally:
        shutil.rmtree(stale, ignore_errors=True)


def publish(root: Path, key: str, write: Callable[[Path], None], valid: Callable[[Path], bool]) -> Path:
    """Publish the directory ``write(tmp)`` fills as ``root / key``; if a ``valid`` one appeared
    meanwhile, keep it (another job published first); an invalid one is replaced."""
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    try:
        write(tmp)
        try:
            os.rename(tmp, entry)
        except OSError:
            if not valid(entry):
                _replace(entry, tmp)
        fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def cached_entry(root: Path, name: str, what: str, load: Callable[[Path], T], write: Callable[[Path, T], None],
                 build: Callable[[], T], use_stored: bool = True) -> T:
    """``load(root / name)``, or ``build()`` a value, publish it there with ``write`` and return
    the stored copy (``use_stored``) or the value itself. An entry that ``load`` rejects
    (CacheInvalid) is rebuilt; a cache that cannot be written leaves the value uncached."""
    entry = root / name
    if entry.exists():
        try:
            return load(entry)
        except CacheInvalid as exc:
            log.warning("%s %s is invalid (%s); rebuilding it", what, entry, exc)
    value = build()

    def valid(path: Path) -> bool:
        try:
            load(path)
            return True
        except CacheInvalid:
            return False

    try:
        publish(root, name, lambda directory: write(directory, value), valid)
        return load(entry) if use_stored else value
    except (OSError, CacheInvalid) as exc:
        log.warning("could not use the %s in %s (%s); continuing without it", what, root, exc)
        return value


def load_or_build(root: Path, key: str, name: str, build: Callable[[], TokenizedSplit]) -> TokenizedSplit:
    """The cached split for ``key``, or ``build()`` it, store it, and return the stored copy."""
    return cached_entry(root, key, "token cache", lambda entry: load(entry, key, name),
                        lambda directory, split: _write(directory, key, split), build)
