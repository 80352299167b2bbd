"""A resumed run's TensorBoard: its event files keep what was logged up to the checkpoint, nothing after.

A run killed at step K after its checkpoint at step S < K leaves points of steps S+1..K in its event
file; the resumed run logs those steps again. ``SummaryWriter(purge_step=S + 1)`` alone does not
hide them from every reader, because it only appends a ``SessionLog.START`` at step S+1 to the new
file and leaves the old points on disk, and TensorBoard's loaders treat that differently:

* ``tensorboard --load_fast=false`` (``plugin_event_accumulator``, behind the multiplexer and the
  scalars and time-series routes) takes the first ``SessionLog.START`` of a run for the start of
  its session, not a restart, and purges nothing; the first writer of a run wrote no START, so
  every step logged past the checkpoint was listed twice (issue 19: ``F1/dev`` at step 40 twice
  after a kill at 40 and a resume from 30);
* ``tensorboard --load_fast=true`` (the Rust data server) ignores session logs; a point at step s
  drops the series' points at steps >= s, files being read in name order: right only while the
  resumed run's file sorts after the killed run's;
* the legacy ``event_accumulator`` and ``clf.results.events`` purge at any START.

So, before the resumed run's writer opens its file, ``prepare_resumed_logdir`` rewrites each event
file that holds records past the checkpoint's step without them (the records at or before it,
flushed before the checkpoint was written, are copied byte for byte; a trailing partial record
was written after the checkpoint), atomically, under a temp name no reader globs for, and makes the
new file sort after the existing ones. The files then hold at most one point per (tag, step) and
every reader shows the same series. The writer still gets ``purge_step`` (and a new run a START at
step 0, so that the resume's START counts as a restart): a server that was already running when the
run was killed purges what it had read past the checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from pathlib import Path

from clf.atomic import atomic_write_bytes

log = logging.getLogger("clf.train")

EVENT_PREFIX = "events.out.tfevents."
_LENGTH = struct.Struct("<Q")
_HEADER_BYTES, _FOOTER_BYTES = 12, 4  # length and its CRC; the data's CRC


def records(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """``(start, end)`` of each complete TFRecord in ``data`` (header to footer), and where the
    complete records end (``len(data)`` unless a partial record trails)."""
    spans, pos = [], 0
    while pos + _HEADER_BYTES <= len(data):
        (length,) = _LENGTH.unpack_from(data, pos)
        end = pos + _HEADER_BYTES + length + _FOOTER_BYTES
        if end > len(data):
            break
        spans.append((pos, end))
        pos = end
    return spans, pos


def _step(record: bytes) -> int | None:
    """The step of the ``Event`` in a record (None: not an Event; such a record is kept)."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event

    try:
        return Event.FromString(record[_HEADER_BYTES:-_FOOTER_BYTES]).step
    except DecodeError:
        return None


def drop_events_after(tb_dir: Path, step: int) -> list[Path]:
    """Rewrite the event files of ``tb_dir`` without their records of steps > ``step``; the files
    rewritten. Files with nothing past ``step`` are left as they are."""
    rewritten = []
    for path in sorted(tb_dir.glob(f"{EVENT_PREFIX}*")) if tb_dir.is_dir() else ():
        data = path.read_bytes()
        spans, complete = records(data)
        kept = [(a, b) for a, b in spans if (s := _step(data[a:b])) is None or s <= step]
        if len(kept) == len(spans) and complete == len(data):
            continue
        atomic_write_bytes(path, b"".join(data[a:b] for a, b in kept), temp_stem="tb-rewrite")
        log.info("%s: %d events past step %d dropped%s (the resumed run logs them again)", path.name,
                 len(spans) - len(kept), step, ", and a partial one" if complete < len(data) else "")
        rewritten.append(path)
    return rewritten


def sort_after_existing(tb_dir: Path, timeout: float = 2.0) -> None:
    """Wait (``timeout`` seconds at most) until an event file created now, named
    ``events.out.tfevents.<second>.<host>.<pid>.<n>``, sorts after those in ``tb_dir``: readers
    take files in name order, and a killed run that lived less than a second (or a host whose
    clock is behind) would otherwise have the resumed run's points read before the older ones."""
    names = [p.name for p in tb_dir.glob(f"{EVENT_PREFIX}*")] if tb_dir.is_dir() else []
    if not names:
        return
    newest, deadline = max(names), time.monotonic() + timeout

    def new_name() -> str:
        return f"{EVENT_PREFIX}{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."

    while new_name() <= newest:
        if time.monotonic() >= deadline:
            log.warning("%s: %s sorts after the event file this run starts (a clock behind?); TensorBoard "
                        "may show the older points after the resumed ones", tb_dir, newest)
            return
        time.sleep(0.05)


def prepare_resumed_logdir(tb_dir: Path, step: int) -> None:
    """Before a run resumed from its checkpoint at ``step`` opens its writer (rank 0, under the
    run's lock): no event past ``step`` left on disk, and the new event file sorting last."""
    drop_events_after(tb_dir, step)
    sort_after_existing(tb_dir)
