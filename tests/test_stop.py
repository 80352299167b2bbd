"""clf.stop: the one stop protocol, with real signals sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from clf.stop import Stopped, StopRequest


@pytest.fixture(autouse=True)
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_install_records_a_request_and_interrupts_nothing():
    stop = StopRequest().install()
    os.kill(os.getpid(), signal.SIGUSR2)
    assert stop.requested and stop.signal_name == "SIGUSR2"
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.signal_name == "SIGTERM"


def test_a_second_ctrl_c_interrupts_at_once():
    stop = StopRequest().install()
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.signal_name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2])
def test_raising_stops_at_once_and_gives_back_the_previous_handlers(sig):
    stop = StopRequest().install()
    cleaned = []
    with pytest.raises(Stopped) as caught:
        with stop.raising():
            try:
                os.kill(os.getpid(), sig)
            finally:
                cleaned.append(True)
    assert caught.value.signal_name == signal.Signals(sig).name and cleaned == [True]
    assert isinstance(caught.value, KeyboardInterrupt)  # `clf` turns it into EXIT_INTERRUPTED
    assert signal.getsignal(sig) == stop._handle
    stop.signal_name = None
    os.kill(os.getpid(), sig)  # after the block: a request again, no exception
    assert stop.signal_name == signal.Signals(sig).name


def test_a_request_received_before_raising_raises_on_entry():
    stop = StopRequest()
    stop.request("SIGTERM")
    with pytest.raises(Stopped, match="SIGTERM"):
        with stop.raising():
            pytest.fail("the body must not run")
