"""The Great Lakes class profiles' time limits fit ARC's class reservations (jobs of at most 2 h
on `standard`, 1 h on `gpu`: its.umich.edu, "Course access"), so class jobs can use the reserved
nodes; longer runs checkpoint and requeue."""

from __future__ import annotations

from pathlib import Path

import pytest

from clf.config.compose import compose

CONF = Path(__file__).resolve().parents[1] / "conf" / "cluster"
CLASS_RESERVATION_MIN = {"standard": 120, "gpu": 60}
PROFILES = sorted(p.stem for p in CONF.glob("greatlakes-*.yaml"))


@pytest.mark.parametrize("profile", PROFILES)
def test_class_profiles_fit_the_class_reservations(profile):
    cluster = compose([f"cluster={profile}"]).cluster
    limit = CLASS_RESERVATION_MIN.get(cluster.partition)
    if limit is not None:
        assert cluster.timeout_min <= limit, f"{profile}: {cluster.timeout_min} min > the reservation's {limit} min"
    assert cluster.signal_delay_s + 120 < cluster.timeout_min * 60  # room to train between requeues


def test_reserved_partitions_have_profiles():
    assert {compose([f"cluster={p}"]).cluster.partition for p in PROFILES} >= set(CLASS_RESERVATION_MIN)
