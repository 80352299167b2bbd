"""A run's own record of its jobs: ``status.json`` (replaced atomically) and ``attempts.jsonl``
(one JSON line appended when an attempt starts and one when it ends).

``status.json``'s ``state`` is one of ``pending running requeued interrupted completed failed
cancelled``; ``error`` holds the failure's message. Its ``submission`` field says which
submission of the sweep wrote it, so ``clf status`` ignores a record left by an earlier one.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from clf.atomic import atomic_write_json
from clf.diskfull import writing_into
from clf.names import (ATTEMPTS, CANCELLED, COMPLETED, FAILED, FINAL_STATES, INTERRUPTED,  # noqa: F401 (re-exported)
                       PENDING, RECORD_RESERVE, REQUEUED, RUNNING)
from clf.names import JOB_STATUS as STATUS


def read_bytes(path: str | Path) -> bytes | None:
    """A file's bytes (None when unreadable), through ``os.read``: half the time of
    ``Path.read_bytes`` (no file object), which counts when ``clf status`` reads two files per run of
    a 5,000-run sweep."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object file, or None when missing, half-written or not an object (never raises)."""
    raw = read_bytes(path)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    return read_json(os.path.join(run_dir, STATUS))


def write_status(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(run_dir / STATUS, {**record, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def append_attempt(run_dir: Path, record: dict[str, Any]) -> None:
    """One line, written with a single ``write`` in append mode (lines never interleave). A write
    cut short (a full disk) is taken back, so no torn line is left for the next one to follow."""
    run_dir.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=False) + "\n").encode()
    path = run_dir / ATTEMPTS
    with writing_into(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


RESERVE_BYTES = 64 * 1024   # a status.json and an attempts line, many times over, in whole blocks


def reserve_room(run_dir: Path) -> None:
    """Keep room for this attempt's last record: a small file of real blocks that ``release_room``
    deletes just before that record is written, so that a run stopped by a full disk or quota can
    still say so (a failed reserve is no error: the disk may already be full)."""
    try:
        with open(run_dir / RECORD_RESERVE, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        (run_dir / RECORD_RESERVE).unlink(missing_ok=True)


def release_room(run_dir: Path) -> None:
    (run_dir / RECORD_RESERVE).unlink(missing_ok=True)


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``attempts.jsonl`` (a torn last line is skipped)."""
    try:
        lines = (run_dir / ATTEMPTS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
