"""A job whose run has ended survives Slurm's USR2 warning arriving while Python shuts down.

Python restores SIG_DFL at exit for the signals it handled, so a warning that came in the last
second of a job killed the finished process (exit 140) and Slurm recorded a completed run's job
as FAILED (seen in test_slurm's time-limit scenario). The run's work is stubbed here; the real
jobs are in test_slurm.py and test_greatlakes.py.

The window is held open by an object finalized with ``__main__``'s globals (after Python has
restored the default handlers): it says so on a pipe and waits for the test, which sends USR2
only then and lets it go on after. The same job without ``ignore_late_warnings`` dies of that
signal, which shows the signal did arrive in the window.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    from clf.slurm import job

    run_dir, opened, go, protected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "protected"
    if not protected:
        job.ignore_late_warnings = lambda: None
    job._command = lambda spec, stop: ("completed", None)  # the run's work, done
    spec = job.RunSpec(sweep_dir=run_dir, name="run", run_dir=run_dir + "/run", submission=0,
                       kind="command", argv=("noop",))
    assert job.run_job(spec)["status"] == "completed"

    class Window:
        # what __del__ uses is bound here: module globals may be gone when it runs
        def __init__(self, opened, go):
            self.opened, self.go = opened, go

        def __del__(self, write=os.write, read=os.read, finalizing=sys.is_finalizing):
            write(self.opened, b"open, finalizing %d\\n" % finalizing())
            read(self.go, 1)  # the test has sent USR2
            write(self.opened, b"closed after the signal\\n")

    window = Window(opened, go)
""")


def read_line(fd: int, timeout: float) -> bytes:
    """One line from ``fd`` (less if it ends first); fail after ``timeout`` seconds."""
    deadline, data = time.monotonic() + timeout, b""
    while not data.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise AssertionError(f"no line within {timeout} s (so far {data!r})")
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("mode", ["protected", "control"])
def test_a_late_usr2_does_not_kill_a_finished_job(tmp_path, mode):
    opened_r, opened_w = os.pipe()
    go_r, go_w = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), str(opened_w), str(go_r), mode],
                               pass_fds=(opened_w, go_r), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(opened_w)
    os.close(go_r)
    try:
        line = read_line(opened_r, 60)
        assert line == b"open, finalizing 1\n", (line, process.communicate(timeout=60)[1].decode()[-2000:])
        os.kill(process.pid, signal.SIGUSR2)  # it is blocked in the window, waiting for the go
        try:
            os.write(go_w, b"x")
        except BrokenPipeError:  # the signal killed it already
            pass
        _, stderr = process.communicate(timeout=60)
        after = read_line(opened_r, 60)  # what it said after the signal; b"" if it died of it
    finally:
        os.close(opened_r)
        os.close(go_w)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    if mode == "protected":
        assert (process.returncode, after) == (0, b"closed after the signal\n"), stderr.decode()[-2000:]
        assert '"reason": "completed"' in (tmp_path / "run" / "attempts.jsonl").read_text()
    else:  # without ignore_late_warnings, the signal sent in the window kills the finished job
        assert (process.returncode, after) == (-signal.SIGUSR2, b""), stderr.decode()[-2000:]
