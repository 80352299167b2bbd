"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A process killed at any instant leaves either the previous file or the new one, never a
partial file. A full disk or quota removes the temp file and raises ``clf.diskfull.DiskFull``
naming the file: the previous one is still there, whole.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from clf.diskfull import writing_into


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_name(path: Path, stem: str | None = None) -> Path:
    return path.with_name(f".{stem or path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")


def remove_temp_files(directory: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the temp files (and directories) that killed atomic writes left in ``directory``:
    those of ``names`` only, or all. Only for a directory no live process is writing into."""
    wanted = None if names is None else set(names)
    removed = []
    for path in directory.glob(".*.tmp-*") if directory.is_dir() else ():
        target = path.name[1:].rsplit(".tmp-", 1)[0]
        if wanted is None or target in wanted:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], temp_stem: str | None = None) -> Path:
    """Call ``write(f)`` on a temp file next to ``path``, then move it into place atomically.

    The temp file is ``.<name>.tmp-<pid>-<random>``, ``<name>`` being ``temp_stem`` where given
    (for files whose own name a reader globs for, e.g. TensorBoard's ``*tfevents*``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path, temp_stem)
    with writing_into(path):
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes, temp_stem: str | None = None) -> Path:
    return atomic_write(path, lambda f: f.write(data), temp_stem)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save`` into memory first, so the file on disk is written in one go."""
    import torch  # here, not at the top: commands that never save tensors start faster

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory that replaces ``path`` as a whole when the block succeeds.

    If ``path`` already exists it is swapped out and removed only after the new one is in
    place, so a crash leaves either the old directory or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    with writing_into(path, staged_in=tmp):
        try:
            yield tmp
            for child in tmp.rglob("*"):
                if child.is_file():
                    with open(child, "rb") as f:
                        os.fsync(f.fileno())
            old = None
            if path.exists():
                old = _tmp_name(path)
                os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
