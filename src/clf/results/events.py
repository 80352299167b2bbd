"""Scalar series from a run's TensorBoard event files, read directly and tolerantly.

An event file is a sequence of TFRecords (8-byte length, 4-byte CRC, the serialized ``Event``,
4-byte CRC). Records are parsed with TensorBoard's compiled ``Event`` proto only (no
TensorFlow stub, no pure-Python CRC), and only the records that can matter are parsed: summaries
that mention a wanted tag, and session logs; that makes reading a thousand runs quick. A
file still being written ends in a partial record; reading stops there. A resumed run starts a
new file whose ``SessionLog.START`` at step S purges the earlier points at steps >= S, as
TensorBoard does.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

_LENGTH = struct.Struct("<Q")
_HEADER_BYTES, _FOOTER_BYTES = 12, 4
_WALL_TIME_KEY, _STEP_KEY = 0x09, 0x10            # Event fields 1 (double) and 2 (varint)
_SUMMARY, _SESSION_LOG = 5, 7                     # Event payload field numbers
EVENT_PREFIX = "events.out.tfevents."


def payload_field(data: bytes, start: int, end: int) -> int:
    """Field number of the payload of the Event serialized in ``data[start:end]`` (summary = 5, ...).

    Serializers write fields in number order: wall_time (1) and step (2) come first.
    """
    pos = start + 9 if start < end and data[start] == _WALL_TIME_KEY else start
    if pos < end and data[pos] == _STEP_KEY:
        pos += 1
        while pos < end and data[pos] & 0x80:
            pos += 1
        pos += 1
    return data[pos] >> 3 if pos < end else 0


def candidate_records(data: bytes, needles: Sequence[bytes]) -> Iterator[bytes]:
    """The complete records that can matter: session logs, and summaries containing a needle.

    A trailing partial record (a file still being written) ends the iteration.
    """
    pos, size = 0, len(data)
    while pos + _HEADER_BYTES <= size:
        (length,) = _LENGTH.unpack_from(data, pos)
        start = pos + _HEADER_BYTES
        end = start + length
        if end + _FOOTER_BYTES > size:
            return
        pos = end + _FOOTER_BYTES
        field = payload_field(data, start, end)
        if field == _SESSION_LOG:
            yield data[start:end]
        elif field == _SUMMARY:
            for needle in needles:
                if data.find(needle, start, end) >= 0:
                    yield data[start:end]
                    break


def _file_order(path: Path) -> tuple[int, str]:
    """Event files sort by the creation time in their name (``events.out.tfevents.<time>.<host>...``)."""
    parts = path.name.split(".")
    stamp = parts[3] if len(parts) > 3 else ""
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def _scalar(value) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        tensor = value.tensor
        if tensor.float_val:
            return float(tensor.float_val[0])
        if tensor.double_val:
            return float(tensor.double_val[0])
    return None


def read_scalars(tb_dir: Path, tags: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``tag -> (steps, values)`` sorted by step, for the ``tags`` found in ``tb_dir``'s event files.

    Missing directories and unreadable files give no points, never an error.
    """
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    wanted = set(tags)
    needles = [tag.encode() for tag in wanted]
    points: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    try:
        files = sorted((tb_dir / name for name in os.listdir(tb_dir) if name.startswith(EVENT_PREFIX)), key=_file_order)
    except OSError:
        files = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for record in candidate_records(data, needles):
            try:
                event = Event.FromString(record)
            except DecodeError:
                continue
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                for series in points.values():
                    for step in [s for s in series if s >= event.step]:
                        del series[step]
            elif event.HasField("summary"):
                for value in event.summary.value:
                    if value.tag in wanted and (number := _scalar(value)) is not None:
                        points[value.tag][int(event.step)] = number
    out = {}
    for tag, series in points.items():
        if series:
            steps = np.array(sorted(series), dtype=np.int64)
            out[tag] = (steps, np.array([series[s] for s in steps.tolist()], dtype=np.float64))
    return out
