"""``clf status --wait`` polls a shared Slurm controller at most every 30 s, backing off.

The waiting loop is driven with canned sweep states and a recording ``time.sleep``, so the test
takes no time; the intervals themselves come from ``clf.slurm.polling``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from clf.commands import status as status_command
from clf.slurm.polling import poll_intervals


def test_slurm_intervals_are_at_least_30_s_and_back_off():
    slurm = list(itertools.islice(poll_intervals(["slurm", "local"]), 10))
    assert min(slurm) >= 30 and slurm == sorted(slurm) and slurm[-1] > slurm[0] and max(slurm) <= 120
    local = list(itertools.islice(poll_intervals(["local"]), 10))
    assert local[0] <= 1 and max(local) <= 5


@dataclass
class FakeRun:
    state: str


@dataclass
class FakeManifest:
    executor: str


@dataclass
class FakeStatus:
    manifest: FakeManifest
    runs: list = field(default_factory=list)

    def to_json(self):
        return {"runs": [r.state for r in self.runs]}


@pytest.mark.parametrize("executor, first", [("slurm", 30.0), ("local", 1.0)])
def test_wait_sleeps_the_backed_off_intervals(monkeypatch, capsys, executor, first):
    answers = iter(["running"] * 5 + ["completed"])
    monkeypatch.setattr("clf.slurm.status.load_statuses",
                        lambda sweeps: [FakeStatus(FakeManifest(executor), [FakeRun(next(answers))]) for _ in sweeps])
    slept: list[float] = []
    monkeypatch.setattr(status_command.time, "sleep", slept.append)
    assert status_command.main(["--wait", "--json", "sweep"]) == 0
    assert len(slept) == 5 and slept[0] == first and slept == sorted(slept) and slept[-1] > slept[0]
