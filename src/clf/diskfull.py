"""A full file system or quota (ENOSPC, EDQUOT) as one line a user can act on.

On a shared cluster the home and scratch quotas fill up mid-run. Python reports that as an
``OSError`` from deep inside a write, often without a file name (a failed ``write`` or ``fsync``).
``DiskFull`` names the file being written, the free space of its file system and what to do; it is
a ``ClfError``, so ``clf`` prints it as one line and exits 2. Writers remove their temp files before
raising it (``clf.atomic``), so nothing half-written is left and the previous files stay whole.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from clf.errors import ClfError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
RUN_AGAIN = ("run the same command again (a run resumes from its last checkpoint; a sweep's runs: "
             "`clf resubmit --failed SWEEP`)")


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _mount_point(path: Path) -> Path:
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def free_space(path: str | Path) -> str:
    """'12.0 KB free of 8.0 MB on /scratch' for the file system holding ``path`` (or its nearest parent)."""
    existing = Path(path).absolute()
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        fs = os.statvfs(existing)
    except OSError:
        return "free space unknown"
    return (f"{_size(fs.f_bavail * fs.f_frsize)} free of {_size(fs.f_blocks * fs.f_frsize)} "
            f"on {_mount_point(existing)}")


class DiskFull(ClfError):
    """A write failed because the file system or the quota is full."""

    def __init__(self, path: str | Path, exc: OSError) -> None:
        self.path, self.errno = Path(path), exc.errno
        self.what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
        self.space = free_space(path)
        super().__init__(self._message(RUN_AGAIN), path)

    def _message(self, then: str) -> str:
        return f"{self.what} while writing it ({self.space}); free space (or ask for more quota), then {then}"

    def in_sweep(self, sweep: str | Path) -> str:
        """The message with the sweep's own resubmit command (for a run's record in a sweep)."""
        return f"{self.path}: " + self._message(f"`clf resubmit --failed {sweep}` (the run resumes from its last "
                                                "checkpoint)")


def as_disk_full(exc: BaseException, path: str | Path) -> BaseException:
    """``exc`` as ``DiskFull`` (naming the file written, else ``path``) when it is one, else ``exc``."""
    if isinstance(exc, DiskFull) or not is_disk_full(exc):
        return exc
    assert isinstance(exc, OSError)
    return DiskFull(written_file(exc) or path, exc)


def written_file(exc: OSError) -> str | None:
    """The file a failed write was writing: a copy's error names its source first, its target second."""
    return exc.filename2 or exc.filename


@contextmanager
def writing_into(path: str | Path, staged_in: Path | None = None) -> Iterator[None]:
    """Inside, a full disk raises ``DiskFull`` naming the file (or ``path``, when the error names
    none); a file under ``staged_in`` (a temp directory that becomes ``path``) is named under ``path``."""
    try:
        yield
    except (OSError, DiskFull) as exc:
        converted = as_disk_full(exc, path)
        if converted is exc and not isinstance(exc, DiskFull):
            raise
        assert isinstance(converted, DiskFull)
        if staged_in is not None and converted.path.is_relative_to(staged_in):
            converted = DiskFull(Path(path) / converted.path.relative_to(staged_in), OSError(converted.errno, ""))
        if converted is exc:
            raise
        raise converted from None  # the message says it all


class LogFileHandler(logging.FileHandler):
    """A log file (``train.log``) that stops, without a traceback on stderr, when its disk is full:
    the same records still reach stderr, and the error that ends the run says what happened."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if is_disk_full(sys.exc_info()[1] or Exception()):
            logging.getLogger().removeHandler(self)
            return
        super().handleError(record)
