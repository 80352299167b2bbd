"""TensorBoard continuity (issue 19): a run SIGKILLed after it logged past its checkpoint, then
resumed, shows each scalar series with at most one point per step, and the same series as an
uninterrupted run, in its event files, through TensorBoard's loaders, and through the HTTP API of
a real ``tensorboard --logdir`` (the Rust data server, ``--load_fast=true``, and the Python
loader, ``--load_fast=false``; loopback only). Why purge_step alone was not enough:
``clf.train.tb_resume``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from helpers import free_port, make_dataset, popen_clf, run_clf, train_args, wait_for
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

from clf.train import checkpoint
from clf.train.retention import remove_stale_temp_files
from clf.train.tb_resume import EVENT_PREFIX, drop_events_after, records, sort_after_existing

# 400 documents in batches of 16: 25 steps an epoch, 150 steps; dev F1 every 10 steps and at each
# epoch's end; checkpoints at 50 and 100 only, so that a run killed 10-40 steps after one has
# logged (and flushed: the writer's thread writes each event as it comes) points past it
EXTRA = ["train.epochs=6", "train.checkpoint_every=50", "train.checkpoint_seconds=3600"]
TOTAL_STEPS, CHECKPOINT_EVERY = 150, 50
TAGS = ("Loss/train_sum", "Loss/train_mean", "LR", "Throughput/docs_per_second", "F1/dev", "Accuracy/dev")
DETERMINISTIC = tuple(tag for tag in TAGS if tag != "Throughput/docs_per_second")  # wall-clock rate


def event_points(tb_dir: Path) -> list[tuple[str, int, float]]:
    """Every scalar point of every event file, as the files hold them (nothing purged), read by
    TensorBoard's own record loader (a trailing partial record, a writer still busy, ends a file)."""
    points = []
    for path in sorted(tb_dir.glob(f"{EVENT_PREFIX}*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag in TAGS:
                    points.append((value.tag, event.step, float(tensor_util.make_ndarray(value.tensor))))
    return points


def kill_after_logging_past(data, run_dir: Path, checkpoint_at: int) -> None:
    """Start (or resume) the run, SIGKILL it once its event files hold dev F1 of a step past its
    checkpoint of step ``checkpoint_at`` (before the next checkpoint)."""
    process = popen_clf(*train_args(data, run_dir, *EXTRA))

    def logged_past() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the run exited ({process.returncode}) before it was killed:\n"
                                 f"{process.communicate()[1]}")
        steps = [step for tag, step, _ in event_points(run_dir / "tb") if tag == "F1/dev"]
        return bool(steps) and checkpoint_at < max(steps) < checkpoint_at + CHECKPOINT_EVERY

    wait_for(logged_past, 300, f"dev F1 past step {checkpoint_at} in {run_dir}/tb", every=0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert checkpoint.read(run_dir / "checkpoints" / "last.pt")["state"]["step"] == checkpoint_at
    # what makes the test able to fail: the killed run's files hold points past its checkpoint
    assert max(step for tag, step, _ in event_points(run_dir / "tb") if tag == "F1/dev") > checkpoint_at


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(logdir, A, B): A trained uninterrupted; B killed past its checkpoint at 50, resumed, killed
    past its checkpoint at 100, resumed to the end."""
    root = tmp_path_factory.mktemp("tb-resume")
    data = make_dataset(root.parent / f"{root.name}-data")
    a, b = root / "A", root / "B"
    reference = popen_clf(*train_args(data, a, *EXTRA))
    for checkpoint_at in (50, 100):
        kill_after_logging_past(data, b, checkpoint_at)
    result = run_clf(*train_args(data, b, *EXTRA))
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    _, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stderr
    return root, a, b


def assert_one_point_per_step_and_as_uninterrupted(series_a: dict, series_b: dict, where: str) -> None:
    """``series_x``: tag -> [(step, value)] in the order the reader gives them."""
    for tag in TAGS:
        steps_b = [step for step, _ in series_b[tag]]
        assert steps_b, f"{where}: no {tag}"
        assert sorted(set(steps_b)) == steps_b, f"{where}: {tag} has steps twice or out of order: {steps_b}"
        assert steps_b == [step for step, _ in series_a[tag]], f"{where}: {tag}"
        assert steps_b[-1] == TOTAL_STEPS
        if tag in DETERMINISTIC:
            assert series_b[tag] == series_a[tag], f"{where}: {tag} differs from the uninterrupted run's"


@pytest.mark.slow
def test_event_files_hold_one_point_per_step(runs):
    _, a, b = runs
    for run_dir in (a, b):
        counts = Counter((tag, step) for tag, step, _ in event_points(run_dir / "tb"))
        assert {tag for tag, _ in counts} == set(TAGS)
        assert [key for key, n in counts.items() if n > 1] == [], run_dir.name
    assert not [p for p in (b / "tb").iterdir() if not p.name.startswith(EVENT_PREFIX)]  # no temp file left
    series = {run: {tag: sorted((s, v) for t, s, v in event_points(run / "tb") if t == tag) for tag in TAGS}
              for run in (a, b)}
    assert_one_point_per_step_and_as_uninterrupted(series[a], series[b], "event files")


@pytest.mark.slow
def test_tensorboard_loaders_show_one_point_per_step(runs):
    """The multiplexer behind ``--load_fast=false`` (plugin_event_accumulator) and the legacy
    EventAccumulator."""
    root, a, b = runs
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"scalars": 0})
    multiplexer.AddRunsFromDirectory(str(root))
    multiplexer.Reload()
    assert {"A/tb", "B/tb"} <= set(multiplexer.Runs())
    plugin = {run: {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in multiplexer.Tensors(run, tag)]
                    for tag in TAGS} for run in ("A/tb", "B/tb")}
    assert_one_point_per_step_and_as_uninterrupted(plugin["A/tb"], plugin["B/tb"], "plugin_event_multiplexer")

    legacy = {}
    for run_dir in (a, b):
        accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
        accumulator.Reload()
        legacy[run_dir] = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in TAGS}
    assert_one_point_per_step_and_as_uninterrupted(legacy[a], legacy[b], "EventAccumulator")


class TensorBoardServer:
    """``tensorboard --logdir`` on 127.0.0.1, its scalars and time-series routes."""

    def __init__(self, logdir: Path, load_fast: str, work: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = work / f"tensorboard-{load_fast}.log"
        env = dict(os.environ, TMPDIR=str(work))  # its TensorBoardInfo file
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                 "--port", self.url.rsplit(":", 1)[1], f"--load_fast={load_fast}", "--reload_interval=1"],
                stdout=out, stderr=subprocess.STDOUT, env=env)

    def get(self, route: str, form: dict[str, str] | None = None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with urllib.request.urlopen(self.url + route, data=data, timeout=30) as response:
            return json.loads(response.read())

    def scalars(self, run: str, tag: str) -> list[tuple[int, float]]:
        rows = self.get("/data/plugin/scalars/scalars?" + urllib.parse.urlencode({"run": run, "tag": tag}))
        return [(step, value) for _, step, value in rows]  # [wall_time, step, value]

    def time_series(self, tag: str) -> dict[str, list[tuple[int, float]]]:
        """What the dashboard's time-series view asks for: run -> [(step, value)]."""
        (answer,) = self.get("/data/plugin/timeseries/timeSeries",
                             {"requests": json.dumps([{"plugin": "scalars", "tag": tag}])})
        return {run: [(p["step"], p["value"]) for p in points] for run, points in answer["runToSeries"].items()}

    def loaded(self, runs: tuple[str, ...]) -> bool:
        """Every tag of every run listed, the final step's F1/dev among them (files are read in
        order, so the series is complete then). False while the server is not listening yet."""
        if self.process.poll() is not None:
            raise AssertionError(f"tensorboard exited ({self.process.returncode}):\n{self.log.read_text()}")
        try:
            tags = self.get("/data/plugin/scalars/tags")
        except urllib.error.URLError as exc:
            if isinstance(exc, urllib.error.HTTPError) or not isinstance(exc.reason, ConnectionRefusedError):
                raise
            return False
        if not all(set(TAGS) <= set(tags.get(run, {})) for run in runs):
            return False
        return all(self.scalars(run, "F1/dev")[-1][0] == TOTAL_STEPS for run in runs)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_server_shows_one_point_per_step(runs, tmp_path, load_fast):
    root, _, _ = runs
    server = TensorBoardServer(root, load_fast, tmp_path)
    try:
        wait_for(lambda: server.loaded(("A/tb", "B/tb")), 120, f"tensorboard --load_fast={load_fast} to load the runs",
                 every=0.2)
        by_route = {run: {tag: server.scalars(run, tag) for tag in TAGS} for run in ("A/tb", "B/tb")}
        assert_one_point_per_step_and_as_uninterrupted(by_route["A/tb"], by_route["B/tb"], f"scalars, {load_fast}")
        series = {tag: server.time_series(tag) for tag in TAGS}
        assert_one_point_per_step_and_as_uninterrupted({tag: series[tag]["A/tb"] for tag in TAGS},
                                                       {tag: series[tag]["B/tb"] for tag in TAGS},
                                                       f"timeSeries, {load_fast}")
    finally:
        server.close()


def write_points(tb_dir: Path, steps: list[int], **kwargs) -> Path:
    """An event file of F1/dev and Loss/train_sum at ``steps``, as the trainer's writer makes it."""
    before = set(tb_dir.glob(f"{EVENT_PREFIX}*"))
    with SummaryWriter(str(tb_dir), **kwargs) as writer:
        for step in steps:
            writer.add_scalar("F1/dev", step / 100, step)
            writer.add_scalar("Loss/train_sum", 2.0 - step / 100, step)
    (path,) = set(tb_dir.glob(f"{EVENT_PREFIX}*")) - before
    return path


def events_of(path: Path) -> list[bytes]:
    return [event.SerializeToString() for event in EventFileLoader(str(path)).Load()]


def test_drop_events_after_keeps_what_came_before_byte_for_byte(tmp_path):
    tb_dir = tmp_path / "tb"
    killed = write_points(tb_dir, [10, 20, 30, 40])
    untouched = write_points(tb_dir, [5, 20], filename_suffix=".other")
    before, untouched_before = killed.read_bytes(), untouched.stat()
    start, end = records(before)[0][-1]
    killed.write_bytes(before + before[start:end - 3])  # and a record cut short by the kill
    expected = [e for e in events_of(killed) if Event.FromString(e).step <= 20]
    assert len(expected) < len(events_of(killed))

    assert drop_events_after(tb_dir, 20) == [killed]
    after = killed.read_bytes()
    assert before.startswith(after) and len(after) < len(before)  # the records kept, as they were
    assert events_of(killed) == expected
    assert (untouched.stat().st_ino, untouched.stat().st_mtime_ns) == (untouched_before.st_ino,
                                                                         untouched_before.st_mtime_ns)
    assert sorted(p.name for p in tb_dir.iterdir()) == sorted([killed.name, untouched.name])
    assert drop_events_after(tb_dir, 20) == []
    assert drop_events_after(tmp_path / "no-tb", 20) == []


def test_a_killed_rewrite_leaves_no_file_tensorboard_reads(tmp_path, monkeypatch):
    tb_dir = tmp_path / "tb"
    killed = write_points(tb_dir, [10, 20, 30])
    before = killed.read_bytes()

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # killed between the temp file and the rename

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        drop_events_after(tb_dir, 10)
    monkeypatch.undo()
    assert killed.read_bytes() == before
    assert [p.name for p in tb_dir.iterdir()] == [killed.name]
    (tb_dir / ".tb-rewrite.tmp-123-abcd").write_bytes(before)  # as a SIGKILL would leave it
    assert "tfevents" not in ".tb-rewrite.tmp-123-abcd"  # TensorBoard reads *tfevents* files only
    assert remove_stale_temp_files(tmp_path) == [tb_dir / ".tb-rewrite.tmp-123-abcd"]


def test_the_resumed_event_file_sorts_after_the_killed_ones(tmp_path, caplog):
    tb_dir = tmp_path / "tb"
    tb_dir.mkdir()
    now = int(time.time())
    (tb_dir / f"{EVENT_PREFIX}{now:010d}.zzz.1.0").write_bytes(b"")  # a killed run started this second
    sort_after_existing(tb_dir)
    assert int(time.time()) > now
    written = write_points(tb_dir, [1])
    assert max(p.name for p in tb_dir.glob(f"{EVENT_PREFIX}*")) == written.name

    (tb_dir / f"{EVENT_PREFIX}{now + 3600:010d}.zzz.1.0").write_bytes(b"")  # a clock an hour ahead
    with caplog.at_level(logging.WARNING, logger="clf.train"):
        sort_after_existing(tb_dir, timeout=0.1)
    assert "sorts after the event file this run starts" in caplog.text
